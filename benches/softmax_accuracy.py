"""Softmax accuracy against float64, per instruction set and algorithm:
max elementwise relative error over results in float32's normal range,
and max absolute error over the smaller ones, on rows of 1..4096
elements (scales 1 and 30), one 64K row and one 16M row (scale 10);
log-softmax error in units of max(1e-5, ulp(result)).

    for isa in scalar avx2 avx512; do NORMKIT_ISA=$isa python benches/softmax_accuracy.py; done

Until issue 11's round 37, results from 1.18e-38 to about 1.7e-38 were up
to 41% low on the SIMD paths (their shifted terms exp(x) / 2^n(max) fell
below the normal range); this script is what showed it.
"""


import numpy as np

import normkit
from normkit.compare import cpu_model

# Below the normal range, only absolute error counts.
TINY = np.finfo(np.float32).tiny


def softmax64(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax64(x):
    x = x.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def relative_error(y, reference):
    """(max relative error over normal results, max absolute error below)."""
    above = reference >= TINY
    error = np.abs(y - reference)
    return float(np.max(error[above] / reference[above])), float(np.max(error[~above], initial=0.0))


def main():
    rng = np.random.default_rng(1)
    isa = normkit.cpu_info()["active"]
    print(f"cpu: {cpu_model()}")
    lengths = list(range(1, 301, 7)) + [1024, 4096]
    rows = [scale * rng.standard_normal((50, n)).astype(np.float32) for n in lengths for scale in (1, 30)]
    row64k = 10 * rng.standard_normal((1, 1 << 16)).astype(np.float32)
    row16m = 10 * rng.standard_normal((1, 1 << 24)).astype(np.float32)
    for algorithm in normkit.SOFTMAX_ALGORITHMS:
        errors = [relative_error(normkit.softmax(x, algorithm=algorithm), softmax64(x)) for x in rows]
        short, short_abs = max(e for e, _ in errors), max(a for _, a in errors)
        e64k, a64k = relative_error(normkit.softmax(row64k, algorithm=algorithm), softmax64(row64k))
        e16m, a16m = relative_error(normkit.softmax(row16m, algorithm=algorithm), softmax64(row16m))
        print(f"{isa} softmax {algorithm}: relative, normal results: rows <= 4096 {short:.2e}, 64K {e64k:.2e}, 16M {e16m:.2e};"
              f" absolute, subnormal results: {short_abs:.1e}, {a64k:.1e}, {a16m:.1e}")
    worst = 0.0
    for x in rows:
        reference = log_softmax64(x)
        unit = np.maximum(1e-5, np.spacing(np.abs(reference).astype(np.float32)))
        worst = max(worst, float(np.max(np.abs(normkit.log_softmax(x) - reference) / unit)))
    print(f"{isa} log_softmax: max error / max(1e-5, ulp of the result) = {worst:.2f}")


if __name__ == "__main__":
    main()
