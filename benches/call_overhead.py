"""Per-call time of the public functions on small arrays, next to the
native call alone: the Python-side overhead (issue 11: softmax 64x128
through the public API <= 2 us per call).

    NORMKIT_NUM_THREADS=1 python benches/call_overhead.py [--repeats 200] [--clock cpu] [--baseline DIR]

Each figure is the median (and min / max) over ``--repeats`` timeit
repeats of ``--number`` calls, the candidates interleaved repeat by repeat.
``--clock cpu`` times with the process's CPU time, which leaves out the
time the process waits for a core on a busy machine.

``--baseline DIR`` also times the public calls of another build in the
same rounds: DIR holds that build's package renamed ``normkit_old`` (the
functions timed import their modules relatively, so they stay in that
build; ``normkit_old.dask`` and ``.compare`` would import the installed
``normkit``), for example from a wheel of an earlier revision::

    git worktree add /tmp/old REV && (cd /tmp/old && maturin build --release -o /tmp/wheel)
    mkdir -p /tmp/base && unzip -q /tmp/wheel/*.whl -d /tmp/unpacked && mv /tmp/unpacked/normkit /tmp/base/normkit_old
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import timeit

import numpy as np

import normkit
from normkit import _native
from normkit.compare import cpu_model


def public_calls(nk, prefix: str, x, y, r, s) -> dict:
    """The public calls of the package ``nk``, named with ``prefix``."""
    return {
        f"{prefix}.softmax(x, out=y)": lambda: nk.softmax(x, out=y),
        f"{prefix}.softmax(x)": lambda: nk.softmax(x),
        f"{prefix}.log_softmax(x, out=y)": lambda: nk.log_softmax(x, out=y),
        f"{prefix}.rms_norm(x, out=y)": lambda: nk.rms_norm(x, out=y),
        f"{prefix}.rms_norm(x)": lambda: nk.rms_norm(x),
        f"{prefix}.layer_norm(x, out=y)": lambda: nk.layer_norm(x, out=y),
        f"{prefix}.add_rms_norm(x, r, out=(y, s))": lambda: nk.add_rms_norm(x, r, out=(y, s)),
        f"{prefix}.add_layer_norm(x, r)": lambda: nk.add_layer_norm(x, r),
    }


def candidates(shape: tuple, baseline=None) -> dict:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y, r, s = np.empty_like(x), x[::-1].copy(), np.empty_like(x)
    calls = {
        "np.copyto(y, x)": lambda: np.copyto(y, x),
        "_native.softmax(x, y, 'auto')": lambda: _native.softmax(x, y, "auto"),
        "_native.norm(x, y, 'rms', ...)": lambda: _native.norm(x, y, "rms", 1e-6, None, None),
        **public_calls(normkit, "normkit", x, y, r, s),
    }
    if baseline is not None:
        calls.update(public_calls(baseline, "baseline", x, y, r, s))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--baseline", metavar="DIR", help="a directory holding another build as normkit_old")
    args = parser.parse_args()
    baseline = None
    if args.baseline:
        sys.path.insert(0, args.baseline)
        baseline = importlib.import_module("normkit_old")
        baseline.set_num_threads(1)
    normkit.set_num_threads(1)
    print(f"cpu: {cpu_model()}; isa {normkit.cpu_info()['active']}; load average {os.getloadavg()[0]:.2f}")
    timer = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"median (min-max) µs per call over {args.repeats} repeats of {args.number} calls, {args.clock} clock")
    for shape in [(64, 128), (1, 4)]:
        funcs = candidates(shape, baseline)
        times = {name: [] for name in funcs}
        for _ in range(args.repeats):
            for name, f in funcs.items():
                times[name].append(timeit.timeit(f, timer=timer, number=args.number) / args.number * 1e6)
        print(f"\n{shape[0]}x{shape[1]} float32")
        for name, t in times.items():
            print(f"  {name:39s} {np.median(t):6.2f} ({min(t):.2f}-{max(t):.2f})")


if __name__ == "__main__":
    main()
