"""Elementwise activations; each returns a new array (one temporary,
updated in place) and leaves its input untouched. The formulas avoid
``1 + erf`` / ``1 + tanh`` cancellation for negative inputs, so float32
results keep their relative accuracy in the left tail."""

from __future__ import annotations

import math

import numpy as np


def _special(name: str):
    try:
        import scipy.special
    except ImportError as exc:  # scipy is in the "model" and "test" extras
        raise ImportError(f"normkit.nn activations need scipy (scipy.special.{name}): pip install scipy") from exc
    return getattr(scipy.special, name)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU (Hendrycks & Gimpel 2016): ``x * Phi(x)``, written as
    ``x/2 * erfc(-x/sqrt(2))`` (equal to ``x/2 * (1 + erf(x/sqrt(2)))``)."""
    t = x * (-1.0 / math.sqrt(2.0))
    _special("erfc")(t, out=t)
    t *= x
    t *= 0.5
    return t


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Tanh GELU: ``x/2 * (1 + tanh(u))`` with ``u = sqrt(2/pi) (x + 0.044715 x^3)``,
    computed as ``x * sigmoid(2u)`` (the same function)."""
    t = x * x
    t *= 0.044715
    t += 1.0
    t *= x
    t *= 2.0 * math.sqrt(2.0 / math.pi)
    _special("expit")(t, out=t)
    t *= x
    return t


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU / swish: ``x * sigmoid(x)``."""
    t = _special("expit")(x)
    t *= x
    return t
