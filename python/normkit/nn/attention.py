"""Multi-head self-attention with padding and causal masks.

The attention weights are ``softmax(q k^T / sqrt(d_head))`` over the keys a
query may see, computed in place by normkit's fused softmax (the scale and
the padding / causal masks are applied inside the kernel, the masks read as
their distinct rows); the projections are BLAS GEMMs.
"""

from __future__ import annotations

import math

import numpy as np

from ..softmax import softmax
from .layers import Linear


def _concat_bias(layers: tuple[Linear, ...]) -> np.ndarray | None:
    if all(layer.bias is None for layer in layers):
        return None
    dtype = layers[0].dtype
    return np.concatenate(
        [layer.bias if layer.bias is not None else np.zeros(layer.out_features, dtype) for layer in layers]
    )


def padding_mask(attention_mask, batch: int, length: int) -> np.ndarray | None:
    """``attention_mask`` (batch, length) of 1 = token / 0 = padding as a
    boolean array, checked; ``None`` stays ``None``."""
    if attention_mask is None:
        return None
    mask = np.asarray(attention_mask)
    if mask.shape != (batch, length):
        raise ValueError(f"attention_mask: expected shape {(batch, length)}, got {mask.shape}")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "biu" or not np.isin(mask, (0, 1)).all():
            raise ValueError("attention_mask: expected 0/1 (or boolean) entries")
        mask = mask.astype(bool)
    return mask


class MultiHeadSelfAttention:
    """Self-attention with ``n_heads`` heads.

    ``qkv`` is one fused Linear whose outputs are the query, key and value
    projections side by side (3 * n_heads * d_head outputs); ``out`` maps
    the concatenated heads back to the model width. ``causal=True`` lets
    position i see keys 0..i only. Masked keys get probability exactly 0;
    a query that sees no key at all (a left-padded position under a causal
    mask, or a sequence of padding only) gets all-zero weights, so its
    context is 0, never NaN (``jax.nn.softmax(where=)`` semantics).

    Examples
    --------
    With zero query and key projections every allowed key gets the same
    weight, so each output is the mean of the values it may see:

    >>> import numpy as np
    >>> from normkit.nn import Linear, MultiHeadSelfAttention
    >>> qkv = Linear(np.vstack([np.zeros((4, 2)), np.eye(2)]))  # q, k = 0; v = x
    >>> x = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # (batch, length, width)
    >>> MultiHeadSelfAttention(qkv, Linear(np.eye(2)), n_heads=1)(x, attention_mask=[[1, 1, 0]])
    array([[[2., 3.],
            [2., 3.],
            [2., 3.]]])
    >>> MultiHeadSelfAttention(qkv, Linear(np.eye(2)), n_heads=1, causal=True)(x)
    array([[[1., 2.],
            [2., 3.],
            [3., 4.]]])
    """

    def __init__(self, qkv: Linear, out: Linear, n_heads: int, *, causal: bool = False):
        if n_heads < 1 or qkv.out_features % (3 * n_heads):
            raise ValueError(f"attention: {qkv.out_features} qkv outputs do not split into 3 x {n_heads} heads")
        if out.in_features * 3 != qkv.out_features:
            raise ValueError(f"attention: out takes {out.in_features} inputs, expected {qkv.out_features // 3}")
        if out.dtype != qkv.dtype:
            raise TypeError(f"attention: qkv is {qkv.dtype} but out is {out.dtype}")
        self.qkv, self.out, self.n_heads, self.causal = qkv, out, int(n_heads), bool(causal)

    @classmethod
    def from_projections(cls, query: Linear, key: Linear, value: Linear, out: Linear, n_heads: int, *, causal=False):
        """Builds the fused ``qkv`` layer from separate projections."""
        weight = np.concatenate([query.weight, key.weight, value.weight])
        return cls(Linear(weight, _concat_bias((query, key, value))), out, n_heads, causal=causal)

    @property
    def readers(self) -> tuple[str, ...]:
        return ("qkv",)

    @property
    def head_dim(self) -> int:
        return self.qkv.out_features // (3 * self.n_heads)

    def __call__(self, x: np.ndarray, attention_mask=None) -> np.ndarray:
        """``x`` of shape (batch, length, width); ``attention_mask`` (batch,
        length) with 1 for tokens and 0 for padding (keys), or ``None``."""
        x = np.asarray(x, dtype=self.qkv.dtype)
        if x.ndim != 3:
            raise ValueError(f"attention: expected input of shape (batch, length, width), got {x.shape}")
        batch, length, _ = x.shape
        heads, d_head = self.n_heads, self.head_dim
        # (3, batch, heads, length, d_head) views of one GEMM's output.
        q, k, v = self.qkv(x).reshape(batch, length, 3, heads, d_head).transpose(2, 0, 3, 1, 4)
        scores = q @ k.transpose(0, 1, 3, 2)
        visible = self._visible(padding_mask(attention_mask, batch, length), length)
        softmax(scores, axis=-1, scale=1.0 / math.sqrt(d_head), where=visible, out=scores)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, heads * d_head)
        return self.out(context)

    def _visible(self, keep: np.ndarray | None, length: int) -> np.ndarray | None:
        """The keys each query may see, broadcasting against (batch, heads,
        query, key); None when it sees them all."""
        visible = None
        if keep is not None and not keep.all():
            visible = keep[:, None, None, :]
        if self.causal:
            past = np.tril(np.ones((length, length), dtype=bool))
            visible = past if visible is None else visible & past
        return visible
