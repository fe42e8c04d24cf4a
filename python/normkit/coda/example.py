"""The Roman glass cups data and a short worked analysis.

47 Roman glass cups x 11 oxides (percent of SiO2, Al2O3, Fe2O3, MgO, CaO,
Na2O, K2O, TiO2, P2O5, MnO, Sb2O5; columns named by element) from
M. J. Baxter, C. C. Beardah, H. E. M. Cool and C. M. Jackson (2005),
"Compositional data analysis of some alkaline glasses", Mathematical
Geology 37:183-196, as distributed in the R package easyCODA
(Greenacre, ``data(cups)``). A copy ships inside normkit
(``normkit/data/cups.csv``). Erb (2020) discusses the partial correlations
of these data.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np

from .partial import partial_correlations
from .proportionality import proportionality_rho
from .transforms import clr


def load_cups() -> tuple[np.ndarray, list[str]]:
    """The cups data as a ``(47, 11)`` float64 array and the part names.

    Examples
    --------
    >>> from normkit.coda import load_cups
    >>> x, names = load_cups()
    >>> x.shape, names
    ((47, 11), ['Si', 'Al', 'Fe', 'Mg', 'Ca', 'Na', 'K', 'Ti', 'P', 'Mn', 'Sb'])
    """
    text = resources.files("normkit").joinpath("data", "cups.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    names = rows[0][1:]  # the first column holds the cup numbers
    values = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    return values, names


def _top_pairs(matrix: np.ndarray, names: list[str], count: int, absolute: bool) -> list[tuple[str, str, float]]:
    """The ``count`` largest upper-triangle entries (by absolute value if asked)."""
    i, j = np.triu_indices(len(names), k=1)
    values = matrix[i, j]
    order = np.argsort(-(np.abs(values) if absolute else values))[:count]
    return [(names[i[k]], names[j[k]], float(matrix[i[k], j[k]])) for k in order]


def example_cups(count: int = 5) -> str:
    """A short analysis of the cups data: clr variances (share of the total
    log-ratio variance), the strongest partial correlations (Erb 2020) and
    the most proportional pairs (rho, Erb & Notredame 2016). Returns the
    report as text (``python -m normkit`` prints it).

    Examples
    --------
    >>> from normkit.coda import example_cups
    >>> lines = example_cups().splitlines()
    >>> lines[0]
    'Roman glass cups (Baxter et al. 2005): 47 cups x 11 oxides'
    >>> lines[1]
    'total clr variance 0.2361; clr variance (share) by part:'
    """
    x, names = load_cups()
    variances = clr(x).var(axis=0, ddof=1)
    total = variances.sum()
    pc = partial_correlations(x)
    rho = proportionality_rho(x)
    lines = [f"Roman glass cups (Baxter et al. 2005): {x.shape[0]} cups x {x.shape[1]} oxides"]
    lines.append(f"total clr variance {total:.4f}; clr variance (share) by part:")
    for k in np.argsort(-variances):
        lines.append(f"  {names[k]:>3} {variances[k]:.4f} ({variances[k] / total:6.1%})")
    lines.append("strongest partial correlations, |rho|, all other parts controlled for (Erb 2020):")
    for a, b, value in _top_pairs(pc.correlations, names, count, absolute=True):
        lines.append(f"  {a:>3}-{b:<3} {value:+.3f}")
    lines.append("most proportional pairs, largest rho (Erb & Notredame 2016):")
    for a, b, value in _top_pairs(rho, names, count, absolute=False):
        lines.append(f"  {a:>3}-{b:<3} {value:+.3f}")
    return "\n".join(lines)
