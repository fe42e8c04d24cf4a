"""normkit next to NumPy, SciPy, PyTorch CPU and ONNX Runtime, and the
softmax algorithms next to each other, as time / copy of the same bytes.

    OPENBLAS_NUM_THREADS=1 python benches/compare.py            # both tables
    python benches/compare.py --peers --markdown                # the form of docs/guide/performance.md
    python benches/compare.py --algorithms --rounds 15
    python benches/compare.py --peers --json docs/plots/peers.json  # for docs/plots/make_plots.py

One thread everywhere (normkit, torch, ONNX Runtime). Medians over
interleaved rounds; the machine is shared, so run it twice and compare.
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


def peer_cases(rng: np.random.Generator) -> list[compare.Case]:
    x = rng.standard_normal((4096, 1024)).astype(np.float32)
    long_row = rng.standard_normal((1, 1 << 24)).astype(np.float32)
    small = rng.standard_normal((64, 128)).astype(np.float32)
    hidden = (1e4 + rng.standard_normal((4096, 1024))).astype(np.float32)
    offset = compare.layer_norm_case(hidden)
    offset.label += " (1e4 + N(0,1))"
    return [
        compare.softmax_case(x),
        compare.softmax_case(long_row),
        compare.softmax_case(small),
        compare.log_softmax_case(x),
        compare.layer_norm_case(x),
        offset,
        compare.layer_norm_case(x.astype(np.float64)),
        compare.rms_norm_case(x),
        compare.rms_norm_case(x.astype(np.float64)),
        compare.l1_norm_int8_case(compare.quantize_int8(x)),
    ]


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
                      normkit._native.auto_algorithm(cols, 4),
                      *[f"{median[a] / median['copy']:.2f}x" for a in algorithms]])
    return compare._render(header, table, markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", action="store_true", help="only the table against the peers")
    parser.add_argument("--algorithms", action="store_true", help="only the softmax algorithm table")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the table against the peers as JSON")
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall time, or the process's CPU time (leaves out waiting for a core on a busy machine)")
    args = parser.parse_args()
    both = not (args.peers or args.algorithms)
    info = normkit.cpu_info()
    print(f"cpu: {compare.cpu_model()}")
    print(f"normkit {normkit.__version__}, isa {info['active']}, numpy {np.__version__}, "
          f"peers {compare.available_peers()}, 1 thread, {args.rounds} rounds, {args.clock} clock\n")
    rng = np.random.default_rng(0)
    if args.peers or both:
        results = compare.measure_all(peer_cases(rng), rounds=args.rounds, clock=CLOCKS[args.clock])
        print(compare.format_table(results, args.markdown) + "\n" + compare.footnotes(results), "\n")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"cpu": compare.cpu_model(), "isa": info["active"], "normkit": normkit.__version__,
                           "numpy": np.__version__, "peers": compare.available_peers(), "threads": 1,
                           "rounds": args.rounds, "clock": args.clock, "load_average": f"{os.getloadavg()[0]:.1f}", "cases": compare.results_as_dicts(results)}, f, indent=1)
    if args.algorithms or both:
        normkit.set_num_threads(1)
        print("softmax algorithms, time / copy")
        print(algorithm_table(rng, args.rounds, args.markdown, CLOCKS[args.clock]))


if __name__ == "__main__":
    main()
