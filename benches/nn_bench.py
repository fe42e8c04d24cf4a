"""normkit.nn: forward time of the three exact forms of one random Pre-LN
transformer (Pre-LN, Pre-RMSNorm, Pre-CRMSNorm; Jiang et al. 2023), and of
their norm kernels alone on the same activation shapes; then the layouts
(Post-LN, Pre-LN, Mix-LN, Pre-LN + LayerNorm Scaling) at one size.

    python benches/nn_bench.py [--threads 1] [--repeats 15] [--dtype float32]

The three forms compute the same function (max abs difference to the
Pre-LN output printed). Times are medians of ``--repeats`` runs after one
warm-up, the contenders of a table alternating within each repeat so that
they see the same machine load; BLAS and normkit both use ``--threads``
threads (set before NumPy is imported).
"""

from __future__ import annotations

import argparse
import os


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    return parser.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import normkit  # noqa: E402
from normkit.compare import cpu_model, interleaved_medians  # noqa: E402
from normkit.nn.build import random_transformer  # noqa: E402
from normkit.nn.convert import pre_ln_to_pre_rmsnorm, pre_rmsnorm_to_pre_crmsnorm  # noqa: E402

# (width, heads, layers, mlp)
SIZES = [(256, 4, 4, "gelu"), (384, 12, 6, "gelu"), (768, 12, 4, "swiglu")]


def main() -> None:
    normkit.set_num_threads(ARGS.threads)
    dtype = np.dtype(ARGS.dtype)
    rng = np.random.default_rng(0)
    print(f"cpu: {cpu_model()}")
    print(f"normkit {normkit.cpu_info()['active']}, {ARGS.threads} thread(s), {dtype}, "
          f"batch {ARGS.batch} x {ARGS.length} tokens, medians of {ARGS.repeats}")
    print(f"{'model':>22} {'form':>13} {'forward ms':>11} {'vs Pre-LN':>9} {'norm kernel us':>15} {'max |diff|':>11}")
    for width, heads, layers, mlp in SIZES:
        ln = random_transformer(width=width, n_heads=heads, n_layers=layers, mlp=mlp, vocab=1000,
                                max_length=ARGS.length, dtype=dtype, seed=1)
        rms = pre_ln_to_pre_rmsnorm(ln)
        forms = {"Pre-LN": ln, "Pre-RMSNorm": rms, "Pre-CRMSNorm": pre_rmsnorm_to_pre_crmsnorm(rms)}
        ids = rng.integers(0, 1000, (ARGS.batch, ARGS.length))
        reference = ln(ids)
        # One norm call on activations of the forward's shape (the LN keeps
        # its gain and bias; the converted forms have them folded away).
        x = rng.normal(size=(ARGS.batch * ARGS.length, width)).astype(dtype)
        x -= x.mean(axis=1, keepdims=True)
        z = np.ascontiguousarray(x[:, :-1])  # the compressed stream
        final = ln.stack.final_norm
        kernels = interleaved_medians({
            "Pre-LN": lambda: normkit.layer_norm(x, final.weight, final.bias),
            "Pre-RMSNorm": lambda: normkit.rms_norm(x),
            "Pre-CRMSNorm": lambda: normkit.crms_norm(z),
        }, ARGS.repeats * 10)
        forwards = interleaved_medians({form: (lambda m=m: m(ids)) for form, m in forms.items()}, ARGS.repeats)
        label = f"d={width} h={heads} L={layers} {mlp}"
        for form, model in forms.items():
            t, diff = forwards[form], np.abs(model(ids) - reference).max()
            print(f"{label:>22} {form:>13} {t * 1e3:11.2f} {t / forwards['Pre-LN']:9.3f} "
                  f"{kernels[form] * 1e6:15.1f} {diff:11.1e}")
    time_layouts(dtype, rng)


def time_layouts(dtype, rng) -> None:
    width, heads, layers = 384, 12, 8
    ids = rng.integers(0, 1000, (ARGS.batch, ARGS.length))
    models = {}
    for norm in ("layer", "rms"):
        for layout, scaled in (("post", False), ("pre", False), ("mix", False), ("pre", True)):
            name = {"post": "Post", "pre": "Pre", "mix": "Mix"}[layout] + ("-LN" if norm == "layer" else "-RMSNorm")
            models[name + (" + LN Scaling" if scaled else "")] = random_transformer(
                width=width, n_heads=heads, n_layers=layers, vocab=1000, norm=norm, layout=layout,
                scaled=scaled, max_length=ARGS.length, dtype=dtype)
    print(f"\nlayouts, d={width} h={heads} L={layers} gelu: forward ms")
    times = interleaved_medians({name: (lambda m=m: m(ids)) for name, m in models.items()}, ARGS.repeats)
    for name, t in times.items():
        print(f"{name:>28} {t * 1e3:9.2f}")


if __name__ == "__main__":
    main()
