"""Each softmax algorithm on each instruction set the CPU has, by row
length, as time / copy of the same bytes: the data of the docs'
"time / copy by row length" plot, and where two-pass starts to win
(``auto``'s crossover: ``Algorithm::auto_for`` and the
``AUTO_TWO_PASS_MIN_BYTES*`` constants in rust/softmax/mod.rs).

    NORMKIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benches/softmax_sweep.py --json docs/plots/softmax_sweep.json
    ... --rounds 9 --clock cpu   # as for the committed plot, on a busy machine
    ... --dtype float64 --levels avx512,avx2 --from-bytes 65536   # the crossover, every power of two
    ... --threads 2 --clock wall --levels avx512 --from-bytes 1048576   # two threads (long rows split)
    ... --call-bytes 67108864 --sample-seconds 0.2 --rounds 15   # calls of 64 MiB, rows from memory

Rows of 64 bytes to 64 MiB (float32: 16 to 16M elements), every other
power of two by default or every power from ``--from-bytes``; 16 MiB per
call unless ``--call-bytes`` says otherwise (one row where longer; a
call that fits in the last-level cache is partly read back from it when
it repeats, which favours three-pass reload); one thread unless
``--threads`` says otherwise; float32, float64, float16 or bfloat16
(``ml_dtypes``);
medians over interleaved rounds of every algorithm and
``numpy.copyto`` on the same array. The
instruction set is chosen once per process, so each level runs in a
child process with ``NORMKIT_ISA`` set. The machine is shared: run it
twice and compare.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

import normkit
from normkit import compare

MAX_ROW_BYTES = 1 << 26
BYTES_PER_CALL = 1 << 24
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def row_bytes(from_bytes: int | None) -> list[int]:
    """Row sizes up to 64 MiB: every power of two from ``from_bytes``, or
    every other one from 64 bytes."""
    if from_bytes is None:
        return [1 << k for k in range(6, 27, 2)]
    if from_bytes < 16 or from_bytes & (from_bytes - 1) or from_bytes > MAX_ROW_BYTES:
        raise SystemExit(f"--from-bytes must be a power of two from 16 to {MAX_ROW_BYTES}")
    return [1 << k for k in range(from_bytes.bit_length() - 1, MAX_ROW_BYTES.bit_length())]


def sweep_active_isa(rounds: int, sample_seconds: float, clock, dtype: np.dtype, sizes: list[int], threads: int,
                     call_bytes: int) -> list[dict]:
    """Seconds per call of a copy and of every algorithm, per row length,
    on the level this process runs."""
    normkit.set_num_threads(threads)
    algorithms = [a for a in normkit.SOFTMAX_ALGORITHMS if a != "auto"]
    rng = np.random.default_rng(0)
    points = []
    for size in sizes:
        cols = size // dtype.itemsize
        x = rng.standard_normal((max(1, call_bytes // size), cols)).astype(dtype)
        y = np.empty_like(x)
        kernels = {"copy": lambda: np.copyto(y, x)}
        for a in algorithms:
            kernels[a] = lambda a=a: normkit.softmax(x, algorithm=a, out=y)
        seconds = compare.interleaved_medians(kernels, rounds, sample_seconds, clock)
        points.append({"rows": x.shape[0], "cols": cols,
                       "auto": normkit._native.auto_algorithm(cols, x.itemsize, x.shape[0]),
                       "seconds": seconds})
        print(f"{normkit.cpu_info()['active']:>7} {dtype.name} {x.shape[0]:>7}x{cols:<9}"
              + " ".join(f"{a} {seconds[a] / seconds['copy']:.2f}x" for a in algorithms), file=sys.stderr)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", required=True, help="where to write the results")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sample-seconds", type=float, default=0.02, help="time per sample of each kernel")
    parser.add_argument("--call-bytes", type=int, default=BYTES_PER_CALL, metavar="B",
                        help="bytes of input per call (default 16 MiB; rows longer than B take one row per call)")
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall time, or the process's CPU time (leaves out waiting for a core on a busy machine)")
    parser.add_argument("--dtype", choices=["float32", "float64", "bfloat16", "float16"], default="float32")
    parser.add_argument("--threads", type=int, default=1, help="normkit's threads (more than 1 needs --clock wall)")
    parser.add_argument("--levels", help="comma-separated instruction sets (default: every one the CPU has)")
    parser.add_argument("--from-bytes", type=int, metavar="B",
                        help="every power-of-two row size from B bytes (default: every other one from 64)")
    parser.add_argument("--isa", help=argparse.SUPPRESS)  # set in the child processes
    args = parser.parse_args()
    if args.call_bytes < 1 or not (0 < args.sample_seconds < math.inf):
        raise SystemExit("--call-bytes and --sample-seconds must be positive (and finite)")
    if args.threads < 1 or (args.threads > 1 and args.clock == "cpu"):
        raise SystemExit("--threads must be 1 or more, and 1 with --clock cpu (it sums the threads' time)")
    if args.dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise SystemExit("--dtype bfloat16 needs ml_dtypes (pip install ml_dtypes)") from None
        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(args.dtype)
    sizes = row_bytes(args.from_bytes)
    if args.isa:  # a child: one level, results to --json
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(sweep_active_isa(args.rounds, args.sample_seconds, CLOCKS[args.clock], dtype, sizes, args.threads,
                                       args.call_bytes), f)
        return
    info = normkit.cpu_info()
    levels = info["available"] if args.levels is None else args.levels.split(",")
    unknown = [isa for isa in levels if isa not in info["available"]]
    if unknown:
        raise SystemExit(f"not on this CPU: {', '.join(unknown)} (it has {', '.join(info['available'])})")
    result = {"cpu": compare.cpu_model(), "normkit": normkit.__version__, "numpy": np.__version__,
              "threads": args.threads, "rounds": args.rounds, "clock": args.clock, "dtype": args.dtype,
              "bytes_per_call": args.call_bytes, "sample_seconds": args.sample_seconds, "isa": {}}
    load_before = os.getloadavg()[0]
    for isa in levels:
        child_json = f"{args.json}.{isa}.tmp"
        child_args = ["--rounds", str(args.rounds), "--clock", args.clock, "--dtype", args.dtype,
                      "--threads", str(args.threads), "--call-bytes", str(args.call_bytes),
                      "--sample-seconds", str(args.sample_seconds)]
        if args.from_bytes is not None:
            child_args += ["--from-bytes", str(args.from_bytes)]
        subprocess.run([sys.executable, __file__, "--isa", isa, "--json", child_json, *child_args],
                       env={**os.environ, "NORMKIT_ISA": isa, "NORMKIT_NUM_THREADS": str(args.threads)}, check=True)
        with open(child_json, encoding="utf-8") as f:
            result["isa"][isa] = json.load(f)
        os.remove(child_json)
    # The machine is shared: how busy it was (1-minute load average, before
    # and after) goes with the numbers.
    result["load_average"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(f"cpu: {result['cpu']}; wrote {args.json}")


if __name__ == "__main__":
    main()
