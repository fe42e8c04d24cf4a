"""normkit next to NumPy, SciPy, PyTorch CPU and ONNX Runtime, and the
softmax algorithms next to each other, as time / copy of the same bytes.

    OPENBLAS_NUM_THREADS=1 python benches/compare.py            # every table, 1 thread
    python benches/compare.py --peers --threads 2               # normkit, ONNX Runtime and torch on 2 threads
    python benches/compare.py --peers --markdown                # the form of docs/guide/performance.md
    python benches/compare.py --half                            # only the bfloat16 / float16 rows (issue 12)
    python benches/compare.py --algorithms --rounds 15
    python benches/compare.py --peers --json docs/plots/peers.json  # for docs/plots/make_plots.py

The cases of issue 11's targets, in float32 and float64 (``--dtypes``):
softmax 4096x1024, 64x30522 (vocabulary logits), 1x16777216 and 64x128
(per call, µs), log_softmax 4096x1024, layer_norm / rms_norm / crms_norm
on rows of 1024, 384 and 64, the fused add_rms_norm / add_layer_norm
against two copies, and the int8 L1 norm against an int8 copy; then
issue 12's half-precision rows: bfloat16 and float16 in and out,
4096x1024, against normkit's own float32 kernel on the same values.

``--threads N`` sets normkit's pool (``normkit.set_num_threads``), ONNX
Runtime's ``intra_op_num_threads`` and torch's ``set_num_threads``; NumPy
and SciPy run single-threaded as they are. Every ratio is over a copy
timed in the same round; the table gives the median and the min-max over
the interleaved rounds. The machine may be shared: the load average is
printed before and after, and the JSON records both.
Peers that are not installed are left out (pip install ".[bench]" torch).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import normkit
from normkit import compare

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def peer_cases(rng: np.random.Generator, dtype: np.dtype, threads: int) -> list[compare.Case]:
    """Issue 11's cases in ``dtype`` (float32 or float64)."""
    normal = lambda *shape: rng.standard_normal(shape).astype(dtype)
    x = normal(4096, 1024)
    cases = [
        compare.softmax_case(x, threads),
        compare.softmax_case((4 * normal(64, 30522)).astype(dtype), threads),
        compare.softmax_case(normal(1, 1 << 24), threads),
        compare.softmax_case(normal(64, 128), threads),
        compare.log_softmax_case(x, threads),
    ]
    for rows in (x, normal(8192, 384), normal(65536, 64)):
        cases += [compare.layer_norm_case(rows, threads), compare.rms_norm_case(rows, threads),
                  compare.crms_norm_case(rows, threads)]
    offset = compare.layer_norm_case((1e4 + rng.standard_normal((4096, 1024))).astype(dtype), threads)
    offset.label += " (1e4 + N(0,1))"
    residual = normal(4096, 1024)
    cases += [offset, compare.add_norm_case("rms", x, residual, threads),
              compare.add_norm_case("layer", x, residual, threads)]
    if dtype == np.float32:
        cases.append(compare.l1_norm_int8_case(compare.quantize_int8(x)))
    return cases


def half_cases(rng: np.random.Generator, threads: int) -> list[compare.Case]:
    """Issue 12's rows: each of ``compare.HALF_OPS`` on 4096x1024 in
    float16 and bfloat16 (when ml_dtypes is installed)."""
    x = rng.standard_normal((4096, 1024)).astype(np.float32)
    return [compare.half_case(op, x, dtype, threads) for dtype in compare.half_dtypes().values()
            for op in compare.HALF_OPS]


#: Issue 11's targets: the largest time / copy per case (label without its
#: dtype), in float32 and float64; the fused forms against two copies, the
#: int8 L1 norm against an int8 copy. And for every case: normkit at most
#: 0.8x ONNX Runtime's time; softmax 64x128 at most 2 µs per call.
TARGETS = {
    "softmax 4096x1024": 1.3, "softmax 64x30522": 1.4, "softmax 1x16777216": 1.4, "log_softmax 4096x1024": 1.3,
    **{f"{norm} {shape}": limit for shape, limit in (("4096x1024", 1.05), ("8192x384", 1.15), ("65536x64", 1.5))
       for norm in ("layer_norm", "rms_norm", "crms_norm")},
    "add_rms_norm 4096x1024": 1.15, "add_layer_norm 4096x1024": 1.15, "l1_norm int8": 2.0,
}
VERSUS_ORT = 0.8
SMALL_CALL = ("softmax 64x128", 2e-6)


def targets_table(results: list, markdown: bool) -> str:
    """Each case of ``TARGETS`` (and softmax 64x128 in µs, and every case
    against ONNX Runtime) with its measured median and whether the target
    is met."""
    rows = []
    for case, timing in results:
        key = " ".join(case.label.split()[:2])
        if "(" in case.label or "normkit" not in timing:
            continue  # the offset-data layer_norm row has no target of its own
        nk = timing["normkit"]
        cells = [case.label, "-", "-", "-", "-"]
        if key in TARGETS:
            cells[1:3] = [f"{nk.ratio_to_copy:.2f}x ({nk.ratio_min:.2f}-{nk.ratio_max:.2f})",
                          f"<= {TARGETS[key]}x: {'met' if nk.ratio_to_copy <= TARGETS[key] else 'missed'}"]
        elif key == SMALL_CALL[0]:
            cells[1:3] = [f"{nk.seconds * 1e6:.1f} µs", f"<= {SMALL_CALL[1] * 1e6:.0f} µs: "
                          f"{'met' if nk.seconds <= SMALL_CALL[1] else 'missed'}"]
        if "onnxruntime" in timing:
            median, low, high = compare.relative(nk, timing["onnxruntime"])
            cells[3:5] = [f"{median:.2f}x ({low:.2f}-{high:.2f})", f"<= {VERSUS_ORT}x: {'met' if median <= VERSUS_ORT else 'missed'}"]
        rows.append(cells)
    return compare._render(["case", "normkit", "target", "normkit / onnxruntime", "target"], rows, markdown)


def algorithm_table(rng: np.random.Generator, rounds: int, markdown: bool, clock) -> str:
    """Each softmax algorithm on rows of 128 to 16M float32 elements (4M
    elements in all, 16 MB), as time / copy: where two-pass starts to win."""
    algorithms = [a for a in normkit.SOFTMAX_ALGORITHMS if a != "auto"]
    header = ["rows x cols", "copy µs", "auto picks", *algorithms]
    table = []
    for cols in [128, 1024, 16384, 1 << 18, 1 << 22, 1 << 24]:
        x = rng.standard_normal((max(1, (1 << 22) // cols), cols)).astype(np.float32)
        y = np.empty_like(x)
        kernels = {"copy": lambda: np.copyto(y, x)}
        for a in algorithms:
            kernels[a] = lambda a=a: normkit.softmax(x, algorithm=a, out=y)
        median = compare.interleaved_medians(kernels, rounds, clock=clock)
        table.append([f"{x.shape[0]}x{cols}", f"{median['copy'] * 1e6:.0f}",
                      normkit._native.auto_algorithm(cols, 4, x.shape[0]),
                      *[f"{median[a] / median['copy']:.2f}x" for a in algorithms]])
    return compare._render(header, table, markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", action="store_true", help="only the table against the peers")
    parser.add_argument("--half", action="store_true", help="only the half-precision table")
    parser.add_argument("--algorithms", action="store_true", help="only the softmax algorithm table")
    parser.add_argument("--threads", type=int, default=1, help="threads of normkit, ONNX Runtime and torch (default 1)")
    parser.add_argument("--dtypes", default="float32,float64", help="of the table against the peers (default: both)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sample-seconds", type=float, default=0.05,
                        help="each timed sample repeats the call for about this long (default 0.05)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the peer and half tables as JSON")
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall time, or the process's CPU time (leaves out waiting for a core on a busy "
                             "machine; one thread only, as it sums the threads' time)")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the table gives min, median and max)")
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu sums the CPU time of every thread: use it with --threads 1")
    everything = not (args.peers or args.half or args.algorithms)
    info = normkit.cpu_info()
    clock = CLOCKS[args.clock]
    load_before = os.getloadavg()
    print(f"cpu: {compare.cpu_model()}")
    print(f"normkit {normkit.__version__}, isa {info['active']}, numpy {np.__version__}, "
          f"peers {compare.available_peers()}, {args.threads} thread(s), {args.rounds} rounds of "
          f"{args.sample_seconds} s samples, {args.clock} clock, "
          f"load average {_load(load_before)}\n")
    rng = np.random.default_rng(0)
    tables = {}
    if args.peers or everything:
        for dtype in args.dtypes.split(","):
            results = compare.measure_all(peer_cases(rng, np.dtype(dtype), args.threads), rounds=args.rounds,
                                          sample_seconds=args.sample_seconds, clock=clock, threads=args.threads)
            print(f"{dtype}, {args.threads} thread(s)")
            print(compare.format_table(results, args.markdown, spread=True) + "\n" + compare.footnotes(results), "\n")
            print(f"issue 11's targets, {dtype}, {args.threads} thread(s) (medians, min-max over rounds)")
            print(targets_table(results, args.markdown), "\n")
            tables[dtype] = results
    if args.half or everything:
        results = compare.measure_all(half_cases(rng, args.threads), rounds=args.rounds,
                                      sample_seconds=args.sample_seconds, clock=clock, threads=args.threads)
        print(f"half precision (issue 12), {args.threads} thread(s)")
        print(compare.format_table(results, args.markdown, spread=True) + "\n" + compare.footnotes(results), "\n")
        tables["half"] = results
    load_after = os.getloadavg()
    print(f"load average before {_load(load_before)}, after {_load(load_after)}")
    if args.json and tables:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cpu": compare.cpu_model(), "isa": info["active"], "normkit": normkit.__version__,
                       "numpy": np.__version__, "peers": compare.available_peers(), "threads": args.threads,
                       "rounds": args.rounds, "sample_seconds": args.sample_seconds, "clock": args.clock,
                       "load_average": f"{load_before[0]:.1f}-{load_after[0]:.1f}",
                       "cases": [row for results in tables.values() for row in compare.results_as_dicts(results)]},
                      f, indent=1)
    if args.algorithms or everything:
        normkit.set_num_threads(1)
        print("softmax algorithms, time / copy, 1 thread")
        print(algorithm_table(rng, args.rounds, args.markdown, clock))


def _load(load: tuple) -> str:
    return "/".join(f"{v:.1f}" for v in load) + " (1/5/15 min)"


if __name__ == "__main__":
    main()
