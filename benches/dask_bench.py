"""normkit.dask benchmarks (issue 14). Not a test.

1. ``pcor``: Erb partial correlations of ``--samples`` x ``--parts`` float64
   compositions (default 2,000,000 x 500, 8 GB), generated lazily per chunk
   from a seeded random composition, on a LocalCluster of 2 single-threaded
   workers with ``memory_limit="3GiB"`` each. Reports wall time, samples/s,
   each worker's peak RSS against its limit and the client's peak RSS; then,
   in a fresh subprocess, the in-memory ``normkit.coda.partial_correlations``
   on ``--in-memory-samples`` rows (data generated first, not timed), its
   samples/s and the throughput ratio, and the largest difference between
   the two results on that size (dask on the same rows).

2. ``softmax``: one row of ``2**--row-log2`` float32 entries (default 2**30,
   4 GiB) in ``--chunk-mib`` MiB chunks (default 64), persisted in memory,
   threaded scheduler with 2 threads. Times ``normkit.softmax(x)`` (exact
   split row: a tree of (max, sum exp) partials, then one map) against two
   ``dask.array`` copies of the same data (the two reads); every output is
   reduced by a float64 sum per chunk so nothing is materialized on the client.
   Relative error against float64 on ``--check-chunks`` whole chunks.

    OPENBLAS_NUM_THREADS=1 python benches/dask_bench.py pcor [--samples N] [--parts D]
    OPENBLAS_NUM_THREADS=1 python benches/dask_bench.py softmax [--row-log2 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SEED = 14
FACTORS = 10


def _loadings(parts: int) -> np.ndarray:
    return np.random.default_rng([SEED, 0]).standard_normal((FACTORS, parts)) * 0.5


def composition_chunk(block_info=None, parts: int = 500) -> np.ndarray:
    """Rows ``[start, stop)`` of the seeded composition: log-normal parts
    with a 10-factor correlation structure; chunk ``i`` always gets the same
    rows, whoever computes it."""
    (start, stop), _ = block_info[None]["array-location"]
    rng = np.random.default_rng([SEED, 1, start])
    logs = rng.standard_normal((stop - start, FACTORS)) @ _loadings(parts)
    logs += rng.standard_normal((stop - start, parts))
    return np.exp(logs, out=logs)


def lazy_compositions(samples: int, parts: int, chunk_rows: int):
    import dask.array as da
    from dask.array.core import normalize_chunks

    chunks = normalize_chunks((chunk_rows, parts), (samples, parts))
    return da.map_blocks(composition_chunk, parts=parts, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def in_memory_pcor(samples: int, parts: int, chunk_rows: int) -> dict:
    """Run in a subprocess: the in-memory function on the same data."""
    import dask

    from normkit import coda

    t = time.perf_counter()
    a = lazy_compositions(samples, parts, chunk_rows).compute(scheduler="threads")
    generate = time.perf_counter() - t
    t = time.perf_counter()
    result = coda.partial_correlations(a)
    seconds = time.perf_counter() - t
    with dask.config.set(scheduler="sync"):
        on_dask = coda.partial_correlations(lazy_compositions(samples, parts, chunk_rows))
    return {
        "samples": samples,
        "generate_s": generate,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "peak_rss": _peak_rss_bytes(),
        "max_abs_diff_correlations_vs_dask": float(np.abs(result.correlations - on_dask.correlations).max()),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def bench_pcor(args) -> None:
    import dask
    import distributed

    from normkit import coda

    x = lazy_compositions(args.samples, args.parts, args.chunk_rows)
    print(f"pcor: {args.samples} x {args.parts} float64 ({_gib(args.samples * args.parts * 8)}), "
          f"{x.numblocks[0]} chunks of {args.chunk_rows} rows, 2 workers x 1 thread, memory_limit=3GiB")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="3GiB",
                                  host="127.0.0.1", dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        client.run(lambda: None)  # workers up before the clock starts
        t = time.perf_counter()
        result = coda.partial_correlations(x)
        seconds = time.perf_counter() - t
        peaks = client.run(_peak_rss_bytes)
        limits = {w: info["memory_limit"] for w, info in client.scheduler_info()["workers"].items()}
    client_peak = _peak_rss_bytes()
    print(f"  dask: {seconds:.1f} s, {args.samples / seconds:,.0f} samples/s (generation included), rank {result.rank}")
    for worker, peak in sorted(peaks.items()):
        print(f"  worker {worker}: peak RSS {_gib(peak)} of limit {_gib(limits[worker])}")
    print(f"  client: peak RSS {_gib(client_peak)}")
    if args.in_memory_samples:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.in_memory_threads))
        code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import dask_bench; "
                f"print(json.dumps(dask_bench.in_memory_pcor({args.in_memory_samples}, {args.parts}, {args.chunk_rows})))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        mem = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  in memory ({mem['samples']} samples, OPENBLAS_NUM_THREADS={mem['openblas_threads']}): "
              f"{mem['seconds']:.1f} s, {mem['samples_per_s']:,.0f} samples/s (generation {mem['generate_s']:.1f} s not "
              f"included), peak RSS {_gib(mem['peak_rss'])}; max |dask - in memory| of the correlations on that "
              f"size {mem['max_abs_diff_correlations_vs_dask']:.1e}")
        print(f"  throughput ratio dask / in memory: {args.samples / seconds / mem['samples_per_s']:.2f}")


def _chunk_sums(y):
    import dask.array as da

    return da.map_blocks(lambda b: np.array([b.sum(dtype=np.float64)]), y, chunks=((1,) * y.numblocks[0],),
                         dtype=np.float64).sum()


def bench_softmax(args) -> None:
    import dask
    import dask.array as da

    import normkit

    n = 2**args.row_log2
    chunk = args.chunk_mib * 2**20 // 4
    print(f"softmax: one float32 row of 2**{args.row_log2} entries ({_gib(4 * n)}), {n // chunk} chunks of "
          f"{args.chunk_mib} MiB, threaded scheduler, 2 threads")
    with dask.config.set(scheduler="threads", num_workers=2):
        x = (da.random.default_rng(SEED).standard_normal(n, chunks=chunk, dtype=np.float32) * 4).persist()
        x.sum().compute()  # resident before timing
        timings = {"softmax": [], "two copies": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            _chunk_sums(normkit.softmax(x)).compute()
            timings["softmax"].append(time.perf_counter() - t)
            t = time.perf_counter()
            dask.compute(_chunk_sums(x.map_blocks(np.copy)), _chunk_sums(x.map_blocks(np.copy)))
            timings["two copies"].append(time.perf_counter() - t)
        best = {k: min(v) for k, v in timings.items()}
        print(f"  softmax {best['softmax']:.2f} s ({n / best['softmax'] / 1e6:.0f} M entries/s); two copies "
              f"{best['two copies']:.2f} s; ratio {best['softmax'] / best['two copies']:.2f} (best of {args.repeats})")
        # Accuracy on whole chunks against float64.
        big_m = float(x.max().compute())
        s = float(da.exp(x.astype(np.float64) - big_m).sum().compute())
        y = normkit.softmax(x)
        picks = np.random.default_rng(SEED).choice(x.numblocks[0], size=min(args.check_chunks, x.numblocks[0]), replace=False)
        worst, errors = 0.0, []
        for i in picks:
            got, xi = dask.compute(y.blocks[int(i)], x.blocks[int(i)])
            want = np.exp(xi.astype(np.float64) - big_m) / s
            rel = np.abs(got - want) / want
            worst = max(worst, float(rel.max()))
            errors.append(rel)
        errors = np.concatenate(errors)
        print(f"  relative error vs float64 on {errors.size:,} entries ({len(picks)} chunks): max {worst:.2e}, "
              f"median {np.median(errors):.2e}, 99.9th percentile {np.quantile(errors, 0.999):.2e}")
    print(f"  peak RSS {_gib(_peak_rss_bytes())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    pcor = sub.add_parser("pcor")
    pcor.add_argument("--samples", type=int, default=2_000_000)
    pcor.add_argument("--parts", type=int, default=500)
    pcor.add_argument("--chunk-rows", type=int, default=20_000)
    pcor.add_argument("--in-memory-samples", type=int, default=200_000, help="0: skip the in-memory comparison")
    pcor.add_argument("--in-memory-threads", type=int, default=2, help="OPENBLAS_NUM_THREADS of the in-memory run")
    softmax = sub.add_parser("softmax")
    softmax.add_argument("--row-log2", type=int, default=30)
    softmax.add_argument("--chunk-mib", type=int, default=64)
    softmax.add_argument("--repeats", type=int, default=3)
    softmax.add_argument("--check-chunks", type=int, default=4)
    args = parser.parse_args()
    {"pcor": bench_pcor, "softmax": bench_softmax}[args.bench](args)


if __name__ == "__main__":
    main()
