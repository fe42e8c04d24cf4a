"""Exact conversions between Pre-LN, Pre-RMSNorm and Pre-CRMSNorm
transformers (Jiang et al. 2023, "Pre-RMSNorm and Pre-CRMSNorm
Transformers: Equivalent and Efficient Pre-LN Transformers").

Vocabulary: a "reader" is a Linear that takes a normalized copy of the
residual stream (attention qkv, MLP up/gate, the output head); a "writer"
adds into the stream (embedding tables, attention out, MLP down).

Pre-LN -> Pre-RMSNorm:
  1. Fold each norm's gain g, bias b and LayerNorm Scaling factor s into
     its readers: W' = W diag(s g), b' = b_W + s W b.
  2. Re-center every writer along the model width (W - row mean of each
     column, bias - its mean, embedding rows - their mean). The stream is
     then zero-mean, and LayerNorm(x) = RMSNorm(x) for zero-mean x (same
     eps, inside the root).
Pre-RMSNorm -> Pre-CRMSNorm: a zero-mean x of width d is kept
  as its first d - 1 entries z (x_d = -sum z). Writers drop their last
  output; readers get W[:, :d-1] - W[:, d-1:]; RMSNorm becomes CRMSNorm.

What stays identical: the model output after the final norm and the head.
The final LayerNorm's gain and bias are folded into the head; a model
without head keeps them on its final RMSNorm (bias added after the kernel),
and its CRMSNorm form gets a (d-1) -> d head that restores the width-d
output ``diag(g) [u, -sum u] + b``. A final norm is required: without it
the output is the raw stream, which re-centering changes.
"""

from __future__ import annotations

import copy

import numpy as np

from .block import Block
from .layers import CRMSNorm, Linear, RMSNorm
from .stack import Embeddings, Stack, Transformer


def pre_ln_to_pre_rmsnorm(model: Transformer) -> Transformer:
    """The Pre-RMSNorm model computing exactly what Pre-LN ``model`` does
    (the input is left unchanged).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import pre_ln_to_pre_rmsnorm, random_transformer
    >>> model = random_transformer(width=8, n_heads=2, layout="pre", norm="layer")
    >>> converted = pre_ln_to_pre_rmsnorm(model)
    >>> converted.stack.blocks[0].norm_kind
    'rms'
    >>> ids = np.array([[5, 7, 9]])
    >>> bool(np.abs(converted(ids) - model(ids)).max() < 1e-12)
    True
    """
    _require_pre(model, "layer", "pre_ln_to_pre_rmsnorm")
    dtype = model.dtype

    def new_norm(norm):
        return RMSNorm(eps=norm.eps, dtype=dtype)

    blocks = [_map_block(b, lambda lin, norm, b=b: _fold(lin, norm, b.norm_scale), _center_writer, new_norm)
              for b in model.stack.blocks]
    final, head = model.stack.final_norm, model.stack.head
    if head is not None:
        head, final = _fold(head, final, 1.0), new_norm(final)
    else:
        final = RMSNorm(final.weight, final.bias, eps=final.eps, dtype=dtype)
    embeddings = _map_tables(model.embeddings, lambda t: t - t.mean(axis=1, keepdims=True))
    return Transformer(embeddings, Stack(blocks, final, head))


def pre_rmsnorm_to_pre_crmsnorm(model: Transformer) -> Transformer:
    """The Pre-CRMSNorm model (width d - 1) computing exactly what
    Pre-RMSNorm ``model`` does. ``model`` must have a zero-mean residual
    stream (every writer re-centered), as ``pre_ln_to_pre_rmsnorm`` gives.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import pre_ln_to_pre_rmsnorm, pre_rmsnorm_to_pre_crmsnorm, random_transformer
    >>> model = random_transformer(width=8, n_heads=2, layout="pre", norm="layer")
    >>> compressed = pre_rmsnorm_to_pre_crmsnorm(pre_ln_to_pre_rmsnorm(model))
    >>> compressed.embeddings.word.shape  # (vocab, width - 1)
    (100, 7)
    >>> ids = np.array([[5, 7, 9]])
    >>> bool(np.abs(compressed(ids) - model(ids)).max() < 1e-12)
    True
    """
    name = "pre_rmsnorm_to_pre_crmsnorm"
    _require_pre(model, "rms", name)
    _require_zero_mean_writers(model, name)
    dtype = model.dtype

    def new_norm(norm):
        return CRMSNorm(eps=norm.eps, dtype=dtype)

    blocks = [_map_block(b, lambda lin, norm, b=b: _compress_reader(_fold(lin, norm, b.norm_scale)),
                         _compress_writer, new_norm)
              for b in model.stack.blocks]
    final, head = model.stack.final_norm, model.stack.head
    if head is None:  # the identity reads the final norm's output
        width = model.embeddings.word.shape[1]
        head = Linear(np.eye(width, dtype=dtype))
    head = _compress_reader(_fold(head, final, 1.0))
    embeddings = _map_tables(model.embeddings, lambda t: t[:, :-1])
    return Transformer(embeddings, Stack(blocks, new_norm(final), head))


def _require_pre(model: Transformer, kind: str, name: str) -> None:
    blocks = model.stack.blocks
    if not blocks:
        raise ValueError(f"{name}: the model has no blocks")
    for i, block in enumerate(blocks):
        if block.norm_position != "pre" or block.norm_kind != kind:
            raise ValueError(f"{name}: block {i} is {block.norm_position}-{block.norm_kind}; "
                             f"every block must be pre-norm with norm type {kind!r}")
    final = model.stack.final_norm
    if final is None or final.kind != kind:
        raise ValueError(f"{name}: the model needs a final norm of type {kind!r} (the compared output)")
    if model.embeddings.norm is not None:
        raise ValueError(f"{name}: a norm on the embeddings is not supported")


def _map_block(block: Block, reader, writer, new_norm) -> Block:
    """A copy of ``block`` with readers ``reader(linear, norm)``, writers
    ``writer(linear)`` and norms ``new_norm(norm)``; no scale left over."""
    attention = copy.copy(block.attention)
    attention.qkv = reader(block.attention.qkv, block.norm1)
    attention.out = writer(block.attention.out)
    mlp = copy.copy(block.mlp)
    for name in block.mlp.readers:
        setattr(mlp, name, reader(getattr(block.mlp, name), block.norm2))
    mlp.down = writer(block.mlp.down)
    return Block(attention, mlp, new_norm(block.norm1), new_norm(block.norm2), norm_position="pre")


def _map_tables(embeddings: Embeddings, fn) -> Embeddings:
    def apply(table):
        return None if table is None else _narrow(fn(_wide(table)), table.dtype)

    return Embeddings(apply(embeddings.word), apply(embeddings.position), apply(embeddings.token_type))


# The weight arithmetic runs in float64 and is rounded once at the end, so
# that a float32 model's writers come out zero-mean to float32 rounding.

def _wide(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.astype(np.float64)


def _narrow(a: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if a is None else a.astype(dtype)


def _linear(weight, bias, dtype) -> Linear:
    return Linear(_narrow(weight, dtype), _narrow(bias, dtype))


def _fold(linear: Linear, norm, scale: float) -> Linear:
    """``linear(scale * (g * x + b))`` as one Linear of x."""
    w = _wide(linear.weight)
    bias = np.zeros(linear.out_features) if linear.bias is None else _wide(linear.bias)
    if norm.bias is not None:
        bias = bias + scale * (w @ _wide(norm.bias))
    gain = scale if norm.weight is None else scale * _wide(norm.weight)
    return _linear(w * gain, bias, linear.dtype)


def _center_writer(linear: Linear) -> Linear:
    """Outputs re-centered: ``y - mean(y)`` over the model width."""
    w, b = _wide(linear.weight), _wide(linear.bias)
    return _linear(w - w.mean(axis=0, keepdims=True), None if b is None else b - b.mean(), linear.dtype)


def _compress_writer(linear: Linear) -> Linear:
    return Linear(linear.weight[:-1], None if linear.bias is None else linear.bias[:-1])


def _compress_reader(linear: Linear) -> Linear:
    """Reads [z, -sum z] from z: the last column is subtracted from the others."""
    w = _wide(linear.weight)
    return _linear(w[:, :-1] - w[:, -1:], linear.bias, linear.dtype)


def _require_zero_mean_writers(model: Transformer, name: str) -> None:
    tol = np.sqrt(np.finfo(model.dtype).eps)
    writers = [(f"embedding table {i}", t.T) for i, t in enumerate(model.embeddings.tables())]
    for i, block in enumerate(model.stack.blocks):
        for label, lin in (("attention out", block.attention.out), ("mlp down", block.mlp.down)):
            writers.append((f"block {i} {label}", lin.weight))
            if lin.bias is not None:
                writers.append((f"block {i} {label} bias", lin.bias[:, None]))
    for label, w in writers:
        if np.abs(w.mean(axis=0)).max(initial=0.0) > tol * max(np.abs(w).max(initial=0.0), 1.0):
            raise ValueError(f"{name}: {label} does not write zero-mean vectors; convert the Pre-LN model "
                             "with pre_ln_to_pre_rmsnorm first")
