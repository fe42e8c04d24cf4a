"""Sentence embeddings from token states: masked mean pooling and L2
normalization (the sentence-transformers Pooling + Normalize modules)."""

from __future__ import annotations

import numpy as np

from .. import rms_norm


def mean_pool(hidden: np.ndarray, attention_mask) -> np.ndarray:
    """Mean of ``hidden`` (batch, length, width) over the tokens whose
    ``attention_mask`` is 1; a sequence without tokens gives zeros (the
    count is clamped to 1e-9, as sentence-transformers does).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import mean_pool
    >>> hidden = np.arange(12.0).reshape(1, 3, 4)  # the third token is padding
    >>> mean_pool(hidden, [[1, 1, 0]])
    array([[2., 3., 4., 5.]])
    """
    mask = np.asarray(attention_mask).astype(hidden.dtype)
    if mask.shape != hidden.shape[:2]:
        raise ValueError(f"attention_mask: expected shape {hidden.shape[:2]}, got {mask.shape}")
    total = np.einsum("btw,bt->bw", hidden, mask)
    return total / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x / sqrt(sum x^2 + eps^2)`` along the last axis, through the RMSNorm
    kernel: with n entries, rms_norm(x, eps=eps^2/n) / sqrt(n) is exactly
    that. A zero row stays zero (torch's F.normalize clamps the norm at eps;
    both agree except for norms within a few eps of 0).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import l2_normalize
    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    x = np.asarray(x)
    n = x.shape[-1]
    y = rms_norm(x, eps=eps * eps / n)
    y *= 1.0 / np.sqrt(n)
    return y
