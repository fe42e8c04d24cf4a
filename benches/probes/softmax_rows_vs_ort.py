"""Softmax on rows of one length, from a few rows (in L2) to many (in L3
or memory): normkit's time over ONNX Runtime's and over a copy of the
same bytes, one thread, interleaved rounds (`normkit.compare`).

    python benches/probes/softmax_rows_vs_ort.py [--cols 30522] [--rows 1,4,16,64,256] [--rounds 11] [--sample-seconds 0.2]

Issue 11 round 22: where on a row length normkit falls behind ONNX
Runtime, by how much of the array the caches hold. Needs onnxruntime.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import normkit
from normkit import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cols", type=int, default=30522)
    parser.add_argument("--rows", default="1,2,4,8,16,32,64,128,256")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--sample-seconds", type=float, default=0.2)
    args = parser.parse_args()
    if not compare.available_peers().get("onnxruntime"):
        raise SystemExit("needs onnxruntime and onnx (pip install onnxruntime onnx)")
    normkit.set_num_threads(1)
    rng = np.random.default_rng(22)
    print(f"{compare.cpu_model()}, one thread, {args.rounds} rounds of {args.sample_seconds} s, CPU clock")
    print(f"{'rows x cols':>14} {'MB in':>7} {'normkit/copy':>13} {'ORT/copy':>9} {'normkit/ORT (min-max)':>24}")
    for rows in (int(r) for r in args.rows.split(",")):
        x = (4 * rng.standard_normal((rows, args.cols))).astype(np.float32)
        case = compare.softmax_case(x, threads=1)
        case.impls = {name: fn for name, fn in case.impls.items() if name in ("normkit", "onnxruntime")}
        if "onnxruntime" not in case.impls:
            raise SystemExit(f"ONNX Runtime could not run this case: {case.skipped}")
        timing = compare.measure(case, args.rounds, args.sample_seconds, clock=time.process_time)
        median, low, high = compare.relative(timing["normkit"], timing["onnxruntime"])
        print(f"{rows:>6}x{args.cols:<7} {x.nbytes / 1e6:7.2f} {timing['normkit'].ratio_to_copy:12.2f}x "
              f"{timing['onnxruntime'].ratio_to_copy:8.2f}x {median:10.3f}x ({low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main()
