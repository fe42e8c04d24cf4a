"""Elementwise activations; each returns a new array (one temporary,
updated in place) and leaves its input untouched."""

from __future__ import annotations

import math

import numpy as np


def _erf():
    try:
        from scipy.special import erf
    except ImportError as exc:  # scipy is in the "model" and "test" extras
        raise ImportError("exact GELU needs scipy (scipy.special.erf): pip install scipy") from exc
    return erf


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU (Hendrycks & Gimpel 2016): ``x * Phi(x) = x/2 * (1 + erf(x/sqrt(2)))``."""
    erf = _erf()
    t = x * (1.0 / math.sqrt(2.0))
    erf(t, out=t)
    t += 1.0
    t *= x
    t *= 0.5
    return t


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Tanh GELU: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``."""
    t = x * x
    t *= 0.044715
    t += 1.0
    t *= x
    t *= math.sqrt(2.0 / math.pi)
    np.tanh(t, out=t)
    t += 1.0
    t *= x
    t *= 0.5
    return t


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU / swish: ``x * sigmoid(x)``, with ``sigmoid(x) = (1 + tanh(x/2)) / 2``
    (no overflow for large ``|x|``)."""
    t = x * 0.5
    np.tanh(t, out=t)
    t += 1.0
    t *= x
    t *= 0.5
    return t


ACTIVATIONS = {"gelu": gelu, "gelu_tanh": gelu_tanh, "silu": silu}
