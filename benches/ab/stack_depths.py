"""Two builds of normkit's native module in one process, each call made
under several depths of the C stack, one thread.

A kernel that keeps vector registers on the stack runs at a speed that can
follow where its caller left the stack pointer (issue 11, round 34: float32
RMSNorm rows of 16 and 64 took 1.13-1.25 times as long under some depths
as under others). An A/B of
two builds through one call site then compares one depth of each, and the
same build can win in one process and lose in the next. This reaches
every case through six wrappers that add C frames (nested ``map`` and
``functools.partial`` calls), alternating builds and wrappers round by
round:

    python benches/ab/stack_depths.py A.so B.so [ROUNDS [all|softmax]]

(build the modules as for ``threads.py``). Reported per case and build:
the fastest and slowest wrapper's median time and their ratio (the
spread, 1.00 when the depth does not matter), the ratio of B's mean over
the wrappers to A's, and whether the two builds' outputs are bit for bit
the same. By default the short norm rows and, for contrast, RMSNorm rows
of 384; ``all`` adds ``threads.py``'s cases; ``softmax`` takes instead
softmax and log_softmax of rows of 16 to 1024 elements (float32 and
float64). Defaults: 5 rounds.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time

import numpy as np

from normkit.compare import cpu_model
from threads import cases as threads_cases
from threads import load, same_outputs, time_per_call

SAMPLE_SECONDS = 0.03


def short_rows(rng: np.random.Generator):
    """(name, input, outputs, call(module)) for short float32 norm rows."""
    for kind, r, c in [("rms", 16384, 64), ("rms", 65536, 16), ("layer", 16384, 64), ("rms", 8192, 384)]:
        x = rng.standard_normal((r, c), dtype=np.float32)
        y = np.empty_like(x)
        w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
        if kind == "rms":
            yield f"rms_norm {r}x{c}", x, [y], lambda m, x=x, y=y, w=w: m.norm(x, y, "rms", 1e-6, w)
        else:
            yield f"layer_norm {r}x{c}", x, [y], lambda m, x=x, y=y, w=w, b=b: m.norm(x, y, "layer", 1e-5, w, b)


def softmax_rows(rng: np.random.Generator):
    """(name, input, outputs, call(module)) for softmax and log_softmax rows."""
    shapes = [(65536, 16, np.float32), (65536, 48, np.float32), (2048, 64, np.float32), (65536, 64, np.float32), (8192, 128, np.float32), (16384, 256, np.float32), (8192, 384, np.float32), (4096, 1024, np.float32), (65536, 32, np.float64), (8192, 384, np.float64), (4096, 1024, np.float64)]
    for r, c, dtype in shapes:
        x = rng.standard_normal((r, c)).astype(dtype)
        y = np.empty_like(x)
        name = f"{r}x{c} {np.dtype(dtype).name}"
        yield f"softmax {name}", x, [y], lambda m, x=x, y=y: m.softmax(x, y, "auto")
        yield f"log_softmax {name}", x, [y], lambda m, x=x, y=y: m.log_softmax(x, y)


def depths(call):
    """Six callables that run ``call()`` under different C stack depths."""
    wrappers = []
    for partials in range(2):
        f = lambda _=None: call()  # noqa: E731
        for _ in range(partials):
            f = functools.partial(lambda g, _=None: g(), f)
        for _ in range(3):
            wrappers.append(f)
            f = (lambda g: lambda _=None: list(map(g, (0,))))(f)
    return wrappers


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    a, b = load(sys.argv[1], "build_a"), load(sys.argv[2], "build_b")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    mode = sys.argv[4] if len(sys.argv) > 4 else ""
    for module in (a, b):
        module.set_num_threads(1)
    print(f"cpu: {cpu_model()}; 1 thread, {rounds} rounds, A={sys.argv[1]} B={sys.argv[2]}")
    rng = np.random.default_rng(0)
    if mode == "softmax":
        cases = list(softmax_rows(rng))
    else:
        cases = list(short_rows(rng)) + (list(threads_cases(rng)) if mode == "all" else [])
    for name, _, outputs, call in cases:
        same = same_outputs(call, a, b, outputs)
        runs = [("A", d, f) for d, f in enumerate(depths(lambda: call(a)))]
        runs += [("B", d, f) for d, f in enumerate(depths(lambda: call(b)))]
        start = time.perf_counter()
        call(a)
        calls = max(1, int(SAMPLE_SECONDS / (time.perf_counter() - start)))
        times: dict[tuple[str, int], list[float]] = {(w, d): [] for w, d, _ in runs}
        for k in range(rounds):
            # Rotate the order every round, and reverse it every other one.
            order = runs[k % len(runs):] + runs[:k % len(runs)]
            for w, d, f in order if k % 2 == 0 else order[::-1]:
                times[(w, d)].append(time_per_call(f, calls))
        medians = {w: [statistics.median(times[(w, d)]) for d in range(len(runs) // 2)] for w in "AB"}
        spread = {w: f"{min(m) * 1e6:9.1f}-{max(m) * 1e6:9.1f} us (spread {max(m) / min(m):.2f})" for w, m in medians.items()}
        ratio = statistics.mean(medians["B"]) / statistics.mean(medians["A"])
        print(f"{name:<24} A {spread['A']}  B {spread['B']}  B/A {ratio:.3f}  same bits: {same}", flush=True)


if __name__ == "__main__":
    main()
