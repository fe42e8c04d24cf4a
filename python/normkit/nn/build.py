"""Random models for tests and benchmarks.

Weights are drawn so that nothing is trivially symmetric: norm gains and
biases away from 1 and 0, embeddings with a non-zero mean (so that the
exact conversions have real re-centering to do).
"""

from __future__ import annotations

import numpy as np

from .attention import MultiHeadSelfAttention
from .block import Block
from .layers import Linear, make_norm
from .mlp import MLP, SwiGLU
from .schedules import layernorm_scaling, norm_positions
from .stack import Embeddings, Stack, Transformer

MLPS = ("gelu", "gelu_tanh", "swiglu")


def _linear(rng, n_out: int, n_in: int, dtype) -> Linear:
    weight = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in))
    return Linear(weight.astype(dtype), rng.normal(0.0, 0.1, n_out).astype(dtype))


def _norm(rng, kind: str, width: int, eps: float, dtype):
    gain = rng.normal(1.0, 0.2, width).astype(dtype)
    bias = rng.normal(0.0, 0.2, width).astype(dtype) if kind == "layer" else None
    return make_norm(kind, gain, bias, eps=eps, dtype=dtype)


def _mlp(rng, kind: str, width: int, hidden: int, dtype):
    if kind == "swiglu":
        return SwiGLU(_linear(rng, hidden, width, dtype), _linear(rng, hidden, width, dtype),
                      _linear(rng, width, hidden, dtype))
    if kind not in MLPS:
        raise ValueError(f"mlp must be one of {MLPS}, got {kind!r}")
    return MLP(_linear(rng, hidden, width, dtype), _linear(rng, width, hidden, dtype), kind)


def random_transformer(*, width: int = 64, n_heads: int = 4, hidden: int | None = None, n_layers: int = 2,
                       vocab: int = 100, max_length: int = 64, norm: str = "layer", layout: str = "pre",
                       mix_alpha: float = 0.25, scaled: bool = False, mlp: str = "gelu",
                       final_norm: bool | None = None, head: int | None = None, causal: bool = False,
                       eps: float = 1e-5, dtype=np.float64, seed: int = 0) -> Transformer:
    """A randomly initialised transformer.

    ``layout`` "pre", "post" or "mix" (Mix-LN with ``mix_alpha``);
    ``scaled`` applies LayerNorm Scaling to the pre-norm blocks; ``norm``
    "layer", "rms" or "crms"; ``final_norm`` defaults to "the last block is
    pre-norm"; ``head`` adds an output Linear with that many outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import random_transformer
    >>> model = random_transformer(width=16, n_heads=2, n_layers=4, layout="mix", mix_alpha=0.5, norm="rms")
    >>> [block.norm_position for block in model.stack.blocks]
    ['post', 'post', 'pre', 'pre']
    >>> model(np.array([[1, 2, 3]])).shape
    (1, 3, 16)
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    hidden = 4 * width if hidden is None else hidden
    positions = norm_positions(layout, n_layers, mix_alpha)
    scales = layernorm_scaling(n_layers) if scaled else [1.0] * n_layers
    blocks = []
    for position, scale in zip(positions, scales):
        attention = MultiHeadSelfAttention(_linear(rng, 3 * width, width, dtype), _linear(rng, width, width, dtype),
                                           n_heads, causal=causal)
        blocks.append(Block(attention, _mlp(rng, mlp, width, hidden, dtype),
                            _norm(rng, norm, width, eps, dtype), _norm(rng, norm, width, eps, dtype),
                            norm_position=position, norm_scale=scale if position == "pre" else 1.0))
    if final_norm is None:
        final_norm = bool(positions) and positions[-1] == "pre"
    embeddings = Embeddings((rng.normal(0.0, 1.0, (vocab, width)) + rng.normal(0.0, 0.5, width)).astype(dtype),
                            rng.normal(0.0, 0.3, (max_length, width)).astype(dtype))
    stack = Stack(blocks, _norm(rng, norm, width, eps, dtype) if final_norm else None,
                  _linear(rng, head, width, dtype) if head else None)
    return Transformer(embeddings, stack)
