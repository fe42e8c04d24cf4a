"""Position-wise feed-forward layers: a GELU MLP and SwiGLU.

Both have "readers" (``up``, and ``gate`` for SwiGLU) that take the
normalized hidden state and one "writer" (``down``) that adds into the
residual stream; the exact conversions (``convert.py``) rely on that split.
"""

from __future__ import annotations

import numpy as np

from .activations import gelu, gelu_tanh, silu
from .layers import Linear

_GELUS = {"gelu": gelu, "gelu_tanh": gelu_tanh}


class MLP:
    """``down(act(up(x)))`` with ``act`` the exact ("gelu") or tanh
    ("gelu_tanh") GELU.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import MLP, Linear
    >>> mlp = MLP(Linear(np.eye(2)), Linear(np.eye(2)))
    >>> np.round(mlp(np.array([0.0, 1.0])), 4)  # GELU(1) = Phi(1)
    array([0.    , 0.8413])
    """

    def __init__(self, up: Linear, down: Linear, activation: str = "gelu"):
        if activation not in _GELUS:
            raise ValueError(f"MLP: activation must be one of {tuple(_GELUS)}, got {activation!r}")
        if up.out_features != down.in_features:
            raise ValueError(f"MLP: up has {up.out_features} outputs but down takes {down.in_features}")
        self.up, self.down, self.activation = up, down, activation

    @property
    def readers(self) -> tuple[str, ...]:
        return ("up",)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.down(_GELUS[self.activation](self.up(x)))


class SwiGLU:
    """``down(silu(gate(x)) * up(x))`` (Shazeer 2020, GLU variants).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import Linear, SwiGLU
    >>> swiglu = SwiGLU(Linear(np.eye(2)), Linear(np.eye(2)), Linear(np.eye(2)))
    >>> np.round(swiglu(np.array([0.0, 1.0])), 4)  # silu(1) * 1 = 1 / (1 + e^-1)
    array([0.    , 0.7311])
    """

    def __init__(self, gate: Linear, up: Linear, down: Linear):
        if gate.weight.shape != up.weight.shape:
            raise ValueError(f"SwiGLU: gate {gate.weight.shape} and up {up.weight.shape} differ")
        if up.out_features != down.in_features:
            raise ValueError(f"SwiGLU: up has {up.out_features} outputs but down takes {down.in_features}")
        self.gate, self.up, self.down = gate, up, down

    @property
    def readers(self) -> tuple[str, ...]:
        return ("gate", "up")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        g = silu(self.gate(x))
        g *= self.up(x)
        return self.down(g)
