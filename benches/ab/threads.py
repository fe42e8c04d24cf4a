"""Two builds of normkit's native module in one process, at N threads.

benches/ab/run.sh compares kernels on one thread; this compares what the
native calls do around them (the thread pool, the split of rows), through
the native functions the public API calls:

    maturin build --release -o /tmp/a   # in a checkout of revision A
    maturin build --release -o /tmp/b   # in a checkout of revision B
    unzip -o -d /tmp/a /tmp/a/*.whl; unzip -o -d /tmp/b /tmp/b/*.whl
    python benches/ab/threads.py /tmp/a/normkit/_native.abi3.so /tmp/b/normkit/_native.abi3.so [ROUNDS [THREADS [GAP_US]]]

Both modules load under names of their own, so each has its own pool.
Every round times, per case, a NumPy copy of the input and both builds,
in alternating order, each over back-to-back calls for about 0.1 s (as
`benches/compare.py` samples), or with a sleep of GAP_US before every call.
Reported: the median (and range) over rounds of time(B) / time(A), how
many rounds B won, each build's median time / the copy, and whether the
two builds' outputs are bit for bit the same. Defaults: 11 rounds, 2 threads, no
gap.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time

import numpy as np

from normkit.compare import cpu_model


def load(path: str, package: str):
    spec = importlib.util.spec_from_file_location(package + "._native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_per_call(fn, calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def same_outputs(call, a, b, outputs) -> bool:
    """Whether builds ``a`` and ``b`` write the same bytes into ``outputs``."""
    call(a)
    from_a = [o.copy() for o in outputs]
    call(b)
    return all(p.tobytes() == q.tobytes() for p, q in zip(from_a, outputs))


def cases(rng: np.random.Generator):
    """(name, input, outputs, call(module)) for each case."""
    def rows(r: int, c: int) -> np.ndarray:
        return rng.standard_normal((r, c), dtype=np.float32)

    for r, c in [(4096, 1024), (64, 30522), (64, 2048), (1, 1 << 24)]:
        x = rows(r, c)
        y = np.empty_like(x)
        yield f"softmax {r}x{c}", x, [y], lambda m, x=x, y=y: m.softmax(x, y, "auto")
    x = rows(4096, 1024)
    y = np.empty_like(x)
    yield "log_softmax 4096x1024", x, [y], lambda m, x=x, y=y: m.log_softmax(x, y)
    for r, c in [(4096, 1024), (8192, 384), (65536, 64)]:
        x = rows(r, c)
        y = np.empty_like(x)
        w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
        yield f"rms_norm {r}x{c}", x, [y], lambda m, x=x, y=y, w=w: m.norm(x, y, "rms", 1e-6, w)
        yield f"layer_norm {r}x{c}", x, [y], lambda m, x=x, y=y, w=w, b=b: m.norm(x, y, "layer", 1e-5, w, b)
    x, residual = rows(4096, 1024), rows(4096, 1024)
    y, s = np.empty_like(x), np.empty_like(x)
    w = np.ones(1024, np.float32)
    yield "add_rms_norm 4096x1024", x, [y, s], lambda m: m.add_norm(x, residual, y, s, "rms", 1e-6, w)
    # The int8 target's shape and gain (127 / 4, no weight or bias) on
    # uniform bytes (compare.py quantizes N(0, 1)).
    x8 = rng.integers(-128, 128, (4096, 1024), dtype=np.int8)
    y8 = np.empty_like(x8)
    yield "l1_norm int8 4096x1024", x8, [y8], lambda m: m.l1_norm_i8(x8, y8, 127 / 4, None, None)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    a, b = load(sys.argv[1], "build_a"), load(sys.argv[2], "build_b")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 11
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    gap = float(sys.argv[5]) * 1e-6 if len(sys.argv) > 5 else 0.0
    for module in (a, b):
        module.set_num_threads(threads)

    def sample(fn, calls: int) -> float:
        if not gap:
            return time_per_call(fn, calls)
        # Only the calls are timed, not the sleeps (which overshoot).
        total = 0.0
        for _ in range(calls):
            time.sleep(gap)
            start = time.perf_counter()
            fn()
            total += time.perf_counter() - start
        return total / calls

    print(f"cpu: {cpu_model()}; {threads} threads, {rounds} rounds, a sleep of {gap * 1e6:.0f} us before each call")
    for name, x, outs, call in cases(np.random.default_rng(0)):
        same = same_outputs(call, a, b, outs)
        dst = np.empty_like(x)
        start = time.perf_counter()
        call(a)
        calls = max(1, int(0.1 / (time.perf_counter() - start + gap)))
        ratios, per_copy_a, per_copy_b, wins = [], [], [], 0
        for k in range(rounds):
            t_copy = sample(lambda: np.copyto(dst, x), calls)
            if k % 2 == 0:
                t_a = sample(lambda: call(a), calls)
                t_b = sample(lambda: call(b), calls)
            else:
                t_b = sample(lambda: call(b), calls)
                t_a = sample(lambda: call(a), calls)
            ratios.append(t_b / t_a)
            per_copy_a.append(t_a / t_copy)
            per_copy_b.append(t_b / t_copy)
            wins += t_b < t_a
        print(f"{name:<24} B/A {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})  "
              f"B faster {wins:>2}/{rounds}  A {statistics.median(per_copy_a):.2f}x a copy  "
              f"B {statistics.median(per_copy_b):.2f}x a copy  same bits: {same}")


if __name__ == "__main__":
    main()
