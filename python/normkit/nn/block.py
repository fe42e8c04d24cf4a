"""A transformer block: self-attention and a feed-forward layer, each with
a residual connection and a normalization placed after ("post", the
original Transformer and BERT) or before ("pre", GPT-2 and later) it.

post:  h = norm1(h + attn(h));          h = norm2(h + mlp(h))
pre:   h = h + attn(s * norm1(h));      h = h + mlp(s * norm2(h))

``s`` is ``norm_scale``: 1, or 1/sqrt(l) in block l under LayerNorm Scaling
(Sun et al. 2025, "The Curse of Depth in Large Language Models").
The residual add and the following norm run as one fused kernel
(``norm.add``).
"""

from __future__ import annotations

import numpy as np

from .attention import MultiHeadSelfAttention

POSITIONS = ("post", "pre")


class Block:
    """One transformer block: ``attention`` and ``mlp``, each in a residual
    connection normalized by ``norm1`` / ``norm2`` (layers of the same kind),
    placed after (``norm_position="post"``) or before (``"pre"``) it; see
    the module docstring for the equations. ``norm_scale`` multiplies the
    pre-norm outputs (LayerNorm Scaling); pre-norm blocks only.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import random_transformer
    >>> block = random_transformer(width=8, n_heads=2, n_layers=1).stack.blocks[0]
    >>> block.norm_position, block.norm_kind
    ('pre', 'layer')
    >>> block(np.ones((1, 3, 8))).shape  # (batch, length, width)
    (1, 3, 8)
    """

    def __init__(self, attention: MultiHeadSelfAttention, mlp, norm1, norm2, *,
                 norm_position: str = "pre", norm_scale: float = 1.0):
        if norm_position not in POSITIONS:
            raise ValueError(f"Block: norm_position must be one of {POSITIONS}, got {norm_position!r}")
        if norm1.kind != norm2.kind:
            raise ValueError(f"Block: norm1 is {norm1.kind!r} but norm2 is {norm2.kind!r}")
        if norm_position == "post" and norm_scale != 1.0:
            raise ValueError("Block: norm_scale (LayerNorm Scaling) applies to pre-norm blocks only")
        self.attention, self.mlp, self.norm1, self.norm2 = attention, mlp, norm1, norm2
        self.norm_position, self.norm_scale = norm_position, float(norm_scale)

    @property
    def norm_kind(self) -> str:
        return self.norm1.kind

    def __call__(self, h: np.ndarray, attention_mask=None) -> np.ndarray:
        if self.norm_position == "post":
            return self._post(h, attention_mask)
        return self._pre(h, attention_mask)

    def _post(self, h, attention_mask):
        h, _ = self.norm1.add(self.attention(h, attention_mask), h)
        h, _ = self.norm2.add(self.mlp(h), h)
        return h

    def _pre(self, h, attention_mask):
        a = self._scaled(self.norm1(h))
        n, h = self.norm2.add(self.attention(a, attention_mask), h)
        return h + self.mlp(self._scaled(n))

    def _scaled(self, normed: np.ndarray) -> np.ndarray:
        if self.norm_scale != 1.0:
            normed *= self.norm_scale
        return normed
