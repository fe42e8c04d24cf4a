"""Per-call time of the public functions on small arrays, next to the
native call alone: the Python-side overhead (issue 11: softmax 64x128
through the public API <= 2 us per call).

    NORMKIT_NUM_THREADS=1 python benches/call_overhead.py [--repeats 200] [--clock cpu]

Each figure is the median (and min / max) over ``--repeats`` timeit
repeats of ``--number`` calls, the candidates interleaved repeat by repeat.
``--clock cpu`` times with the process's CPU time, which leaves out the
time the process waits for a core on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import time
import timeit

import numpy as np

import normkit
from normkit import _native
from normkit.compare import cpu_model


def candidates(shape: tuple) -> dict:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y, r, s = np.empty_like(x), x[::-1].copy(), np.empty_like(x)
    return {
        "np.copyto(y, x)": lambda: np.copyto(y, x),
        "_native.softmax(x, y, 'auto')": lambda: _native.softmax(x, y, "auto"),
        "normkit.softmax(x, out=y)": lambda: normkit.softmax(x, out=y),
        "normkit.softmax(x)": lambda: normkit.softmax(x),
        "normkit.log_softmax(x, out=y)": lambda: normkit.log_softmax(x, out=y),
        "_native.norm(x, y, 'rms', ...)": lambda: _native.norm(x, y, "rms", 1e-6, None, None),
        "normkit.rms_norm(x, out=y)": lambda: normkit.rms_norm(x, out=y),
        "normkit.rms_norm(x)": lambda: normkit.rms_norm(x),
        "normkit.layer_norm(x, out=y)": lambda: normkit.layer_norm(x, out=y),
        "normkit.add_rms_norm(x, r, out=(y, s))": lambda: normkit.add_rms_norm(x, r, out=(y, s)),
        "normkit.add_layer_norm(x, r)": lambda: normkit.add_layer_norm(x, r),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    normkit.set_num_threads(1)
    print(f"cpu: {cpu_model()}; isa {normkit.cpu_info()['active']}; load average {os.getloadavg()[0]:.2f}")
    timer = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"median (min-max) µs per call over {args.repeats} repeats of {args.number} calls, {args.clock} clock")
    for shape in [(64, 128), (1, 4)]:
        funcs = candidates(shape)
        times = {name: [] for name in funcs}
        for _ in range(args.repeats):
            for name, f in funcs.items():
                times[name].append(timeit.timeit(f, timer=timer, number=args.number) / args.number * 1e6)
        print(f"\n{shape[0]}x{shape[1]} float32")
        for name, t in times.items():
            print(f"  {name:32s} {np.median(t):6.2f} ({min(t):.2f}-{max(t):.2f})")


if __name__ == "__main__":
    main()
