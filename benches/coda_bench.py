"""normkit.coda benchmark: clr, partial correlations (pseudo-inverse) and
basis shrinkage on wide compositional data (default 1,000 samples x 2,000
parts), with peers a user would otherwise call.

    python benches/coda_bench.py [--samples 1000] [--parts 2000] [--repeats 3]

Times are medians of ``--repeats`` runs (wall clock, BLAS threads as set by
the environment, e.g. OPENBLAS_NUM_THREADS). Peak memory is measured in a
separate run of each step with tracemalloc (NumPy reports its buffers to
it), so tracing does not slow the timed runs; the process's peak RSS is
printed at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

import numpy as np
import scipy.linalg

from normkit import coda
from normkit.compare import cpu_model


def wide_compositions(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Log-normal counts-like data with a 20-factor correlation structure."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 20)) @ rng.normal(size=(20, d)) * 0.3
    return np.exp(factors + rng.normal(size=(n, d)) + rng.normal(size=d))


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def scipy_pinv_route(x):
    """The direct route: form the clr covariance, scipy.linalg.pinv, standardize."""
    omega = scipy.linalg.pinv(np.cov(coda.clr(x), rowvar=False))
    d = np.sqrt(np.diag(omega))
    return -omega / np.outer(d, d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--parts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = wide_compositions(args.samples, args.parts)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    input_mib = x.nbytes / 2**20
    steps = [
        ("clr", lambda: coda.clr(x)),
        ("partial_correlations (SVD of clr data)", lambda: coda.partial_correlations(x)),
        ("shrunk_partial_correlations (bshrink)", lambda: coda.shrunk_partial_correlations(x)),
        ("all three", lambda: (coda.clr(x), coda.partial_correlations(x), coda.shrunk_partial_correlations(x))),
        ("peer: scipy.linalg.pinv(np.cov(clr))", lambda: scipy_pinv_route(x)),
    ]
    try:
        import skbio.stats.composition as skbio

        steps.insert(1, ("peer: scikit-bio clr", lambda: skbio.clr(x)))
    except ImportError:
        pass
    print(f"cpu: {cpu_model()}")
    print(f"{args.samples} samples x {args.parts} parts (input {input_mib:.1f} MiB), median of {args.repeats}")
    print(f"{'step':<44} {'seconds':>9} {'peak MiB':>9}")
    for name, fn in steps:
        seconds = median_seconds(fn, args.repeats)
        print(f"{name:<44} {seconds:9.3f} {peak_mib(fn):9.1f}")
    result = coda.shrunk_partial_correlations(x)
    print(f"shrinkage intensities: lambda_cor={result.lambda_cor:.4f} lambda_var={result.lambda_var:.4f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS: {rss:.0f} MiB ({rss_before:.0f} MiB after imports and input)")


if __name__ == "__main__":
    main()
