"""The native softmax call on 8192 float32 elements (32 KiB in and 32 KiB
out: in L2, not L1) in rows of several lengths, minus a 1x1 call (the
call's fixed cost): the kernel's time per 16-element register, in cycles
at the clock ``issue_rates.c`` measures (``--ghz``). Medians of 31
interleaved rounds (issue 11, round 18: softmax 64x128 per call).

    python benches/probes/softmax_kernel_time.py --ghz 3.6
"""
import argparse
import statistics as st
import time

import numpy as np

import normkit
from normkit import _native
from normkit.compare import cpu_model

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--ghz", type=float, required=True, help="the core clock (benches/probes/issue_rates.c)")
ghz = parser.parse_args().ghz
normkit.set_num_threads(1)
print(f"cpu: {cpu_model()}; isa {normkit.cpu_info()['active']}")
SHAPES = [(1, 1), (64, 128), (32, 256), (8, 1024), (1, 8192), (128, 64)]
CALLS, ROUNDS = 2000, 31


def per_call(f, x, y) -> float:
    start = time.perf_counter_ns()
    for _ in range(CALLS):
        f(x, y)
    return (time.perf_counter_ns() - start) / CALLS


arrays = {s: (np.random.default_rng(0).uniform(-10, 10, s).astype(np.float32), np.empty(s, np.float32)) for s in SHAPES}
times = {s: [] for s in SHAPES}
copies = []
for _ in range(ROUNDS):
    for s in SHAPES:
        times[s].append(per_call(lambda x, y: _native.softmax(x, y, "auto"), *arrays[s]))
    copies.append(per_call(lambda x, y: np.copyto(y, x), *arrays[(64, 128)]))
fixed = st.median(times[(1, 1)])
print(f"copyto 64x128: {st.median(copies):.0f} ns; native 1x1 (fixed cost): {fixed:.0f} ns")
for s in SHAPES[1:]:
    total = st.median(times[s])
    kernel = total - fixed
    registers = s[0] * s[1] / 16
    print(f"native softmax {s[0]}x{s[1]}: {total:.0f} ns; minus the fixed cost {kernel:.0f} ns = "
          f"{kernel / registers:.2f} ns per 16-element register = {kernel / registers * ghz:.1f} cycles at {ghz} GHz")
