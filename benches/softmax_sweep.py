"""Each softmax algorithm on each instruction set the CPU has, by row
length, as time / copy of the same bytes: the data of the docs'
"time / copy by row length" plot (where two-pass starts to win).

    NORMKIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benches/softmax_sweep.py --json docs/plots/softmax_sweep.json
    ... --rounds 9 --clock cpu   # as for the committed plot, on a busy machine

float32 rows of 16 to 16M elements, 4M elements per call (16M for the
longest row); one thread; medians over interleaved rounds of every
algorithm and ``numpy.copyto`` on the same array. The instruction set is
chosen once per process, so each level runs in a child process with
``NORMKIT_ISA`` set. The machine is shared: run it twice and compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import normkit
from normkit import compare

ROW_LENGTHS = [1 << k for k in range(4, 25, 2)]  # 16 .. 16M
ELEMENTS_PER_CALL = 1 << 22
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def sweep_active_isa(rounds: int, clock) -> list[dict]:
    """Seconds per call of a copy and of every algorithm, per row length,
    on the level this process runs."""
    normkit.set_num_threads(1)
    algorithms = [a for a in normkit.SOFTMAX_ALGORITHMS if a != "auto"]
    rng = np.random.default_rng(0)
    points = []
    for cols in ROW_LENGTHS:
        x = rng.standard_normal((max(1, ELEMENTS_PER_CALL // cols), cols)).astype(np.float32)
        y = np.empty_like(x)
        kernels = {"copy": lambda: np.copyto(y, x)}
        for a in algorithms:
            kernels[a] = lambda a=a: normkit.softmax(x, algorithm=a, out=y)
        seconds = compare.interleaved_medians(kernels, rounds, clock=clock)
        points.append({"rows": x.shape[0], "cols": cols,
                       "auto": normkit._native.auto_algorithm(cols, x.itemsize),
                       "seconds": seconds})
        print(f"{normkit.cpu_info()['active']:>7} {x.shape[0]:>7}x{cols:<9}"
              + " ".join(f"{a} {seconds[a] / seconds['copy']:.2f}x" for a in algorithms), file=sys.stderr)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", required=True, help="where to write the results")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall time, or the process's CPU time (leaves out waiting for a core on a busy machine)")
    parser.add_argument("--isa", help=argparse.SUPPRESS)  # set in the child processes
    args = parser.parse_args()
    if args.isa:  # a child: one level, results to --json
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(sweep_active_isa(args.rounds, CLOCKS[args.clock]), f)
        return
    info = normkit.cpu_info()
    result = {"cpu": compare.cpu_model(), "normkit": normkit.__version__, "numpy": np.__version__,
              "threads": 1, "rounds": args.rounds, "clock": args.clock, "dtype": "float32",
              "elements_per_call": ELEMENTS_PER_CALL, "isa": {}}
    load_before = os.getloadavg()[0]
    for isa in info["available"]:
        child_json = f"{args.json}.{isa}.tmp"
        subprocess.run([sys.executable, __file__, "--isa", isa, "--json", child_json, "--rounds", str(args.rounds),
                        "--clock", args.clock],
                       env={**os.environ, "NORMKIT_ISA": isa, "NORMKIT_NUM_THREADS": "1"}, check=True)
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
