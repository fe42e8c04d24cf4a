"""The performance page's plots, from committed benchmark output: reads the
JSON files in this folder and writes PNGs into ``docs/_static/``. Runs no
benchmark (regenerate the JSON first, see docs/guide/performance.md):

    python docs/plots/make_plots.py

* ``softmax_sweep.png`` from ``softmax_sweep.json`` (``benches/softmax_sweep.py``):
  time / copy and ns per element by row length, one line per algorithm,
  one column per instruction set.
* ``peers.png`` from ``peers.json`` (``benches/compare.py --peers --json``):
  time / copy of normkit and each peer per case.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "_static"
ALGORITHM_STYLE = {  # one colour and marker per algorithm, the same in every panel
    "three_pass_reload": ("tab:blue", "o"),
    "three_pass_recompute": ("tab:orange", "s"),
    "two_pass": ("tab:green", "^"),
    "online": ("tab:red", "v"),
}


def _row_label(cols: int) -> str:
    for shift, unit in ((20, "M"), (10, "K")):
        if cols >= 1 << shift and cols % (1 << shift) == 0:
            return f"{cols >> shift}{unit}"
    return str(cols)


def softmax_sweep(data: dict, path: Path) -> None:
    """Top row: time / copy; bottom row: ns per element; x: row length."""
    levels = list(data["isa"])
    fig, axes = plt.subplots(2, len(levels), figsize=(5.2 * len(levels), 7.5), sharex=True, squeeze=False)
    for column, isa in enumerate(levels):
        points = data["isa"][isa]
        cols = [p["cols"] for p in points]
        ratio_ax, ns_ax = axes[0][column], axes[1][column]
        for algorithm, (colour, marker) in ALGORITHM_STYLE.items():
            ratio = [p["seconds"][algorithm] / p["seconds"]["copy"] for p in points]
            ns = [p["seconds"][algorithm] / (p["rows"] * p["cols"]) * 1e9 for p in points]
            ratio_ax.plot(cols, ratio, color=colour, marker=marker, label=algorithm)
            ns_ax.plot(cols, ns, color=colour, marker=marker, label=algorithm)
        ns_ax.plot(cols, [p["seconds"]["copy"] / (p["rows"] * p["cols"]) * 1e9 for p in points],
                   color="black", linestyle="--", label="copy")
        # What "auto" picks at each length: a ring around that algorithm's point.
        ratio_ax.scatter(cols, [p["seconds"][p["auto"]] / p["seconds"]["copy"] for p in points], s=160,
                         facecolors="none", edgecolors="black", linewidths=1.2, label="auto picks", zorder=3)
        ratio_ax.set_title(isa)
        ratio_ax.set_ylabel("time / copy of the same bytes")
        ns_ax.set_ylabel("ns per element")
        ns_ax.set_xlabel(f"row length ({data['dtype']} elements)")
        for ax in (ratio_ax, ns_ax):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(cols, [_row_label(c) for c in cols], fontsize=7)
            ax.grid(True, which="both", alpha=0.3)
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            low, high = ax.get_ylim()
            if high / low < 30:  # few decades: label the minor ticks too
                ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
                ax.tick_params(axis="y", which="minor", labelsize=6)
        ratio_ax.legend(fontsize=7)
    fig.suptitle(f"softmax by row length, {data['bytes_per_call'] >> 20} MiB per call (one row where longer), {data['threads']} thread(s), "
                 f"median of {data['rounds']} rounds ({data['clock']} clock), load average {data['load_average']}\n{data['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def peers(data: dict, path: Path) -> None:
    """One group of bars per case: normkit and each peer, as time / copy."""
    cases = data["cases"]
    names: list[str] = []
    for case in cases:
        names += [name for name in case["impls"] if name not in names]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(cases) + 1.8))
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        positions = [i + k * height for i, case in enumerate(cases) if name in case["impls"]]
        values = [case["impls"][name]["ratio_to_copy"] for case in cases if name in case["impls"]]
        notes = [case["impls"][name]["note"] for case in cases if name in case["impls"]]
        bars = ax.barh(positions, values, height=height, label=name)
        for bar, value, note in zip(bars, values, notes):
            ax.annotate(f"{value:.2f}x" + ("*" if note else ""), (value, bar.get_y() + bar.get_height() / 2),
                        xytext=(2, 0), textcoords="offset points", va="center", fontsize=6)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cases))], [case["case"] for case in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("time / copy of the same array (log scale; * allocates its result or, for the float32 "
                  "layer_norm, reads 4x the bytes)", fontsize=8)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.set_title(f"normkit and its peers, {data.get('threads', 1)} thread(s), median of {data['rounds']} rounds ({data['clock']} clock), "
                 f"isa {data['isa']}, "
                 f"load average {data['load_average']}\n"
                 f"{data['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    STATIC.mkdir(exist_ok=True)
    for name, plot in (("softmax_sweep", softmax_sweep), ("peers", peers)):
        source = HERE / f"{name}.json"
        plot(json.loads(source.read_text(encoding="utf-8")), STATIC / f"{name}.png")
        print(f"{source.name} -> {STATIC / (name + '.png')}")


if __name__ == "__main__":
    main()
