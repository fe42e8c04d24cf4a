"""Linear and normalization layers holding NumPy weights.

Every normalization runs through the normkit kernels (``layer_norm``,
``rms_norm``, ``crms_norm`` and the fused ``add_*`` variants); a layer only
keeps its parameters and the epsilon. The weights' dtype (float32 or
float64) is the dtype the layer computes in: inputs are cast to it.
"""

from __future__ import annotations

import numpy as np

from .. import add_layer_norm, add_rms_norm, crms_norm, layer_norm, rms_norm

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def as_param(name: str, value, dtype=None) -> np.ndarray:
    """A float32/float64 C-contiguous parameter array, or a clear error."""
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def _optional_vector(name: str, value, dtype) -> np.ndarray | None:
    if value is None:
        return None
    arr = as_param(name, value, dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    return arr


class Linear:
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out, in), the
    PyTorch layout, so checkpoints load without transposing.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import Linear
    >>> layer = Linear(np.array([[1.0, 2.0], [0.0, -1.0]]), bias=np.array([0.5, 0.0]))
    >>> layer(np.array([[1.0, 1.0]]))
    array([[ 3.5, -1. ]])
    """

    def __init__(self, weight, bias=None):
        self.weight = as_param("Linear.weight", weight)
        if self.weight.ndim != 2:
            raise ValueError(f"Linear.weight: expected shape (out, in), got {self.weight.shape}")
        self.bias = _optional_vector("Linear.bias", bias, self.weight.dtype)
        if self.bias is not None and self.bias.shape[0] != self.weight.shape[0]:
            raise ValueError(
                f"Linear.bias: length {self.bias.shape[0]} does not match the {self.weight.shape[0]} outputs"
            )

    @property
    def dtype(self) -> np.dtype:
        return self.weight.dtype

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input has {x.shape[-1]} features, expected {self.in_features}")
        # One GEMM over all leading dimensions (BLAS reads weight.T in place).
        y = x.reshape(-1, self.in_features) @ self.weight.T
        if self.bias is not None:
            y += self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class _Norm:
    """Shared parameter handling of the normalization layers."""

    kind = ""

    def __init__(self, weight=None, bias=None, *, eps: float, dtype=None):
        name = type(self).__name__
        self.weight = _optional_vector(f"{name}.weight", weight, dtype)
        self.bias = _optional_vector(f"{name}.bias", bias, dtype if self.weight is None else self.weight.dtype)
        if self.weight is not None and self.bias is not None and self.weight.shape != self.bias.shape:
            raise ValueError(f"{name}: weight {self.weight.shape} and bias {self.bias.shape} differ")
        # The parameters' dtype; without parameters ``dtype``, else the input's.
        params = [p for p in (self.weight, self.bias) if p is not None]
        self.dtype = params[0].dtype if params else None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype not in _FLOATS:
            raise TypeError(f"{name}: dtype must be float32 or float64, got {self.dtype}")
        self.eps = float(eps)

    def _input(self, x) -> np.ndarray:
        return np.asarray(x, dtype=self.dtype)


class LayerNorm(_Norm):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis
    (biased variance, eps inside the root, as PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import LayerNorm
    >>> norm = LayerNorm(np.ones(3), np.zeros(3))
    >>> np.round(norm(np.array([1.0, 2.0, 3.0])), 4)
    array([-1.2247,  0.    ,  1.2247])
    >>> normed, total = norm.add(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]))
    >>> total
    array([2., 3., 4.])
    """

    kind = "layer"

    def __init__(self, weight=None, bias=None, *, eps: float = 1e-5, dtype=None):
        super().__init__(weight, bias, eps=eps, dtype=dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return layer_norm(self._input(x), self.weight, self.bias, eps=self.eps)

    def add(self, x: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(norm(x + residual), x + residual)`` in one fused kernel."""
        return add_layer_norm(self._input(x), self._input(residual), self.weight, self.bias, eps=self.eps)


class RMSNorm(_Norm):
    """``x / sqrt(mean(x^2) + eps) * weight (+ bias)`` over the last axis.

    The optional ``bias`` (added after the kernel) only appears where an
    exact conversion keeps a LayerNorm's bias with no linear layer to fold
    it into: the final norm of a model without output head.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import RMSNorm
    >>> np.round(RMSNorm()(np.array([3.0, 4.0])), 4)  # x / sqrt(12.5)
    array([0.8485, 1.1314])
    """

    kind = "rms"

    def __init__(self, weight=None, bias=None, *, eps: float = 1e-6, dtype=None):
        super().__init__(weight, bias, eps=eps, dtype=dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._add_bias(rms_norm(self._input(x), self.weight, eps=self.eps))

    def add(self, x: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(norm(x + residual), x + residual)`` in one fused kernel."""
        normed, total = add_rms_norm(self._input(x), self._input(residual), self.weight, eps=self.eps)
        return self._add_bias(normed), total

    def _add_bias(self, y: np.ndarray) -> np.ndarray:
        if self.bias is not None:
            y += self.bias
        return y


class CRMSNorm(RMSNorm):
    """Compressed RMSNorm (Jiang et al. 2023): ``x`` holds the first
    ``n`` entries of a zero-mean vector of ``n + 1`` entries, whose last
    entry is ``-sum(x)``;
    ``y = x / sqrt((sum x^2 + (sum x)^2) / (n + 1) + eps) * weight (+ bias)``.

    Examples
    --------
    The RMSNorm of the zero-mean vector ``[1, -1, 0]``, without its last entry:

    >>> import numpy as np
    >>> from normkit.nn import CRMSNorm, RMSNorm
    >>> np.round(CRMSNorm()(np.array([1.0, -1.0])), 4)
    array([ 1.2247, -1.2247])
    >>> np.round(RMSNorm()(np.array([1.0, -1.0, 0.0])), 4)
    array([ 1.2247, -1.2247,  0.    ])
    """

    kind = "crms"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._add_bias(crms_norm(self._input(x), self.weight, eps=self.eps))

    def add(self, x: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(norm(x + residual), x + residual)`` (no fused kernel: the sum
        is formed first)."""
        total = self._input(x) + self._input(residual)
        return self(total), total


NORMS = {"layer": LayerNorm, "rms": RMSNorm, "crms": CRMSNorm}


def make_norm(kind: str, weight=None, bias=None, *, eps: float, dtype=None) -> _Norm:
    """The normalization layer named ``kind``: "layer", "rms" or "crms".

    Examples
    --------
    >>> from normkit.nn import make_norm
    >>> norm = make_norm("rms", eps=1e-6)
    >>> type(norm).__name__, norm.kind
    ('RMSNorm', 'rms')
    """
    if kind not in NORMS:
        raise ValueError(f"norm type must be one of {tuple(NORMS)}, got {kind!r}")
    return NORMS[kind](weight, bias, eps=eps, dtype=dtype)
