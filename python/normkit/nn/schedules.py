"""Depth-dependent normalization layouts.

* Mix-LN (Li, Yin & Liu 2024, "Mix-LN: Unleashing the Power of Deeper
  Layers by Combining Pre-LN and Post-LN"): the first floor(alpha * L)
  blocks are Post-LN, the remaining ones Pre-LN.
* LayerNorm Scaling (Sun et al. 2025, "The Curse of Depth in Large Language
  Models"): in block l (1-based) every pre-norm output is multiplied
  by 1/sqrt(l); the final norm is left alone.
"""

from __future__ import annotations

import math
from fractions import Fraction

LAYOUTS = ("pre", "post", "mix")


def mix_ln_positions(n_layers: int, alpha: float = 0.25) -> list[str]:
    """``norm_position`` of each block under Mix-LN.

    Examples
    --------
    >>> from normkit.nn import mix_ln_positions
    >>> mix_ln_positions(8, alpha=0.25)
    ['post', 'post', 'pre', 'pre', 'pre', 'pre', 'pre', 'pre']
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"mix_ln_positions: alpha must lie in [0, 1], got {alpha}")
    # Decimal reading of alpha so that e.g. 0.29 * 100 gives 29, not 28.
    n_post = math.floor(Fraction(repr(float(alpha))) * n_layers)
    return ["post"] * n_post + ["pre"] * (n_layers - n_post)


def norm_positions(layout: str, n_layers: int, alpha: float = 0.25) -> list[str]:
    """Per-block positions for ``layout`` "pre", "post" or "mix" (Mix-LN).

    Examples
    --------
    >>> from normkit.nn import norm_positions
    >>> norm_positions("post", 3), norm_positions("mix", 4, alpha=0.5)
    (['post', 'post', 'post'], ['post', 'post', 'pre', 'pre'])
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "mix":
        return mix_ln_positions(n_layers, alpha)
    return [layout] * n_layers


def layernorm_scaling(n_layers: int) -> list[float]:
    """The LayerNorm Scaling factor 1/sqrt(l) of blocks l = 1..n_layers.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import layernorm_scaling
    >>> np.round(layernorm_scaling(4), 4)
    array([1.    , 0.7071, 0.5774, 0.5   ])
    """
    return [1.0 / math.sqrt(layer) for layer in range(1, n_layers + 1)]
