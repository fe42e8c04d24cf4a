"""normkit.nn building blocks against plain float64 NumPy references
written independently here (loops over heads, explicit masks)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normkit.nn import activations
from normkit.nn.attention import MultiHeadSelfAttention
from normkit.nn.block import Block
from normkit.nn.build import random_transformer
from normkit.nn.layers import CRMSNorm, LayerNorm, Linear, RMSNorm, make_norm
from normkit.nn.mlp import MLP, SwiGLU
from normkit.nn.schedules import layernorm_scaling, mix_ln_positions, norm_positions

RNG = np.random.default_rng(1234)
TOL = {np.float32: 2e-5, np.float64: 1e-12}


# ---------------------------------------------------------------- references

def ref_norm(kind, x, weight, bias, eps):
    x = x.astype(np.float64)
    if kind == "layer":
        y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    elif kind == "rms":
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    else:  # crms: x holds n entries of a zero-mean vector of n + 1
        full = np.concatenate([x, -x.sum(-1, keepdims=True)], axis=-1)
        y = x / np.sqrt((full * full).mean(-1, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def ref_linear(lin, x):
    y = x @ lin.weight.astype(np.float64).T
    return y if lin.bias is None else y + lin.bias


def ref_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_attention(att, x, mask=None):
    batch, length, _ = x.shape
    qkv = ref_linear(att.qkv, x)
    d = att.head_dim
    heads = []
    for h in range(att.n_heads):
        q, k, v = (qkv[..., (j * att.n_heads + h) * d:(j * att.n_heads + h + 1) * d] for j in range(3))
        out = np.empty_like(q)
        for b in range(batch):
            for i in range(length):
                visible = np.ones(length, bool)
                if mask is not None:
                    visible &= mask[b].astype(bool)
                if att.causal:
                    visible[i + 1:] = False
                if not visible.any():  # nothing visible: zero weights (jax where=)
                    out[b, i] = 0.0
                    continue
                s = k[b, visible] @ q[b, i] / math.sqrt(d)
                out[b, i] = ref_softmax(s) @ v[b, visible]
        heads.append(out)
    return ref_linear(att.out, np.concatenate(heads, axis=-1))


def ref_gelu(x):
    return 0.5 * x * np.vectorize(math.erfc)(-x / math.sqrt(2))


def ref_mlp(mlp, x):
    if isinstance(mlp, SwiGLU):
        g = ref_linear(mlp.gate, x)
        return ref_linear(mlp.down, g / (1 + np.exp(-g)) * ref_linear(mlp.up, x))
    h = ref_linear(mlp.up, x)
    if mlp.activation == "gelu":
        h = ref_gelu(h)
    else:
        h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    return ref_linear(mlp.down, h)


def ref_block_norm(norm, x):
    return ref_norm(norm.kind, x, norm.weight, norm.bias, norm.eps)


def ref_block(block, h, mask=None):
    n1, n2 = (lambda x: ref_block_norm(block.norm1, x)), (lambda x: ref_block_norm(block.norm2, x))
    if block.norm_position == "post":
        h = n1(h + ref_attention(block.attention, h, mask))
        return n2(h + ref_mlp(block.mlp, h))
    s = block.norm_scale
    h = h + ref_attention(block.attention, s * n1(h), mask)
    return h + ref_mlp(block.mlp, s * n2(h))


def rand(*shape, dtype=np.float64, scale=1.0):
    return (RNG.normal(0, scale, shape)).astype(dtype)


# ---------------------------------------------------------------- layers

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_reference_and_keeps_dtype(dtype):
    lin = Linear(rand(7, 5, dtype=dtype), rand(7, dtype=dtype))
    x = rand(2, 3, 5)
    y = lin(x)
    assert y.dtype == dtype and y.shape == (2, 3, 7)
    np.testing.assert_allclose(y, ref_linear(lin, x.astype(dtype).astype(np.float64)), atol=TOL[dtype])
    assert Linear(rand(4, 5)).bias is None


def test_linear_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Linear.weight"):
        Linear(np.ones(3))
    with pytest.raises(ValueError, match="Linear.bias"):
        Linear(np.ones((3, 2)), np.ones(2))
    with pytest.raises(TypeError, match="Linear.weight"):
        Linear(np.ones((3, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="features"):
        Linear(np.ones((3, 2)))(np.ones((4, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["layer", "rms", "crms"])
@pytest.mark.parametrize("affine", [False, True])
def test_norm_layers_match_reference(kind, dtype, affine):
    width = 37
    weight = rand(width, dtype=dtype) if affine else None
    bias = rand(width, dtype=dtype) if affine else None
    norm = make_norm(kind, weight, bias, eps=1e-3, dtype=dtype)
    x = rand(3, 4, width, dtype=dtype, scale=2.0) + 0.5
    expected = ref_norm(kind, x, weight, bias, 1e-3)
    y = norm(x)
    assert y.dtype == dtype and norm.kind == kind
    np.testing.assert_allclose(y, expected, atol=TOL[dtype] * 10)
    r = rand(3, 4, width, dtype=dtype)
    normed, total = norm.add(x, r)
    np.testing.assert_allclose(total, x.astype(np.float64) + r, atol=TOL[dtype])
    np.testing.assert_allclose(normed, ref_norm(kind, x.astype(np.float64) + r, weight, bias, 1e-3),
                               atol=TOL[dtype] * 10)


def test_norm_dtype_follows_weights_or_input():
    assert LayerNorm(np.ones(4, np.float32))(np.ones((2, 4))).dtype == np.float32
    assert RMSNorm()(np.ones((2, 4), np.float32)).dtype == np.float32
    assert CRMSNorm(dtype=np.float64)(np.ones((2, 4), np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match="norm type"):
        make_norm("batch", eps=1e-5)
    with pytest.raises(ValueError, match="weight"):
        LayerNorm(np.ones(3), np.ones(4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations(dtype):
    x = np.concatenate([rand(200, scale=3.0), [0.0, -40.0, 40.0, -1e4, 1e4]]).astype(dtype)
    xd = x.astype(np.float64)
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(activations.gelu(x), ref_gelu(xd), **tol)
    np.testing.assert_allclose(activations.gelu_tanh(x),
                               0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))),
                               **tol)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(activations.silu(x), xd / (1 + np.exp(-xd)), **tol)
    grid = np.linspace(-16, 16, 100_001).astype(dtype)
    np.testing.assert_allclose(activations.gelu(grid), ref_gelu(grid.astype(np.float64)), **tol)
    special = np.array([np.inf, -np.inf, np.nan, 0.0], dtype)
    np.testing.assert_array_equal(activations.gelu(special), [np.inf, 0.0, np.nan, 0.0])
    for f in (activations.gelu, activations.gelu_tanh, activations.silu):
        before = x.copy()
        assert f(x).dtype == dtype
        np.testing.assert_array_equal(x, before)  # input untouched


# ---------------------------------------------------------------- attention

def make_attention(width=24, heads=3, causal=False, dtype=np.float64):
    return MultiHeadSelfAttention.from_projections(
        *(Linear(rand(width, width, dtype=dtype, scale=0.5), rand(width, dtype=dtype)) for _ in range(4)),
        heads, causal=causal)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_attention_matches_reference(dtype, causal, padded):
    att = make_attention(causal=causal, dtype=dtype)
    x = rand(3, 9, 24, dtype=dtype)
    mask = None
    if padded:
        mask = np.ones((3, 9), np.int64)
        mask[1, 5:] = 0
        mask[2, 1:] = 0
    y = att(x, mask)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref_attention(att, x.astype(np.float64), mask), atol=TOL[dtype] * 5)


def test_padding_keys_do_not_leak():
    att = make_attention()
    x = rand(1, 6, 24)
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    changed = x.copy()
    changed[0, 4:] = rand(2, 24, scale=100.0)
    np.testing.assert_allclose(att(x, mask)[0, :4], att(changed, mask)[0, :4], atol=1e-12)
    causal = make_attention(causal=True)
    changed = x.copy()
    changed[0, 3:] += 5.0
    np.testing.assert_allclose(causal(x)[0, :3], causal(changed)[0, :3], atol=1e-12)


def test_query_without_visible_key_gets_zero_weights():
    att = make_attention(causal=True)
    x = rand(1, 4, 24)
    mask = np.array([[0, 1, 1, 1]])  # left padding: query 0 sees nothing
    y = att(x, mask)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ref_attention(att, x, mask), atol=1e-12)


def test_attention_rejects_bad_arguments():
    att = make_attention()
    with pytest.raises(ValueError, match="attention_mask"):
        att(rand(2, 5, 24), np.ones((2, 4)))
    with pytest.raises(ValueError, match="attention_mask"):
        att(rand(2, 5, 24), np.full((2, 5), 2))
    with pytest.raises(ValueError, match="batch, length, width"):
        att(rand(5, 24))
    with pytest.raises(ValueError, match="heads"):
        MultiHeadSelfAttention(Linear(rand(30, 8)), Linear(rand(8, 10)), 4)


# ---------------------------------------------------------------- MLP, blocks

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "swiglu"])
def test_mlps_match_reference(kind, dtype):
    def lin(o, i):
        return Linear(rand(o, i, dtype=dtype, scale=0.4), rand(o, dtype=dtype))

    mlp = SwiGLU(lin(40, 16), lin(40, 16), lin(16, 40)) if kind == "swiglu" else MLP(lin(40, 16), lin(16, 40), kind)
    x = rand(2, 5, 16, dtype=dtype)
    y = mlp(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref_mlp(mlp, x.astype(np.float64)), atol=TOL[dtype] * 5)
    with pytest.raises(ValueError, match="activation"):
        MLP(lin(40, 16), lin(16, 40), "relu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm", ["layer", "rms", "crms"])
@pytest.mark.parametrize("layout", ["pre", "post", "mix"])
@pytest.mark.parametrize("scaled", [False, True])
def test_blocks_match_reference(dtype, norm, layout, scaled):
    model = random_transformer(width=32, n_heads=4, n_layers=4, norm=norm, layout=layout, scaled=scaled,
                               mlp="gelu_tanh" if norm == "rms" else "gelu", causal=norm == "crms",
                               dtype=dtype, seed=7)
    ids = RNG.integers(0, 100, (2, 7))
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3])
    out, hidden = model(ids, mask, output_hidden_states=True)
    assert out.dtype == dtype and len(hidden) == 5
    h = hidden[0].astype(np.float64)
    for block, expected in zip(model.stack.blocks, hidden[1:]):
        h = ref_block(block, h, mask)
        np.testing.assert_allclose(expected, h, atol=TOL[dtype] * 20)
    if model.stack.final_norm is not None:
        h = ref_block_norm(model.stack.final_norm, h)
    np.testing.assert_allclose(out, h, atol=TOL[dtype] * 20)


def test_layout_and_scaling_of_random_models():
    model = random_transformer(n_layers=8, layout="mix", scaled=True)
    assert [b.norm_position for b in model.stack.blocks] == ["post"] * 2 + ["pre"] * 6
    assert [b.norm_scale for b in model.stack.blocks] == [1.0, 1.0] + [1 / math.sqrt(l) for l in range(3, 9)]
    assert model.stack.final_norm is not None  # the last block is pre-norm
    assert random_transformer(layout="post").stack.final_norm is None


def test_schedules():
    assert mix_ln_positions(6) == ["post"] + ["pre"] * 5  # floor(0.25 * 6) = 1
    assert mix_ln_positions(8) == ["post"] * 2 + ["pre"] * 6
    assert mix_ln_positions(100, 0.29).count("post") == 29
    assert mix_ln_positions(4, 0.0) == ["pre"] * 4 and mix_ln_positions(4, 1.0) == ["post"] * 4
    assert norm_positions("post", 3) == ["post"] * 3
    assert layernorm_scaling(4) == [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 0.5]
    with pytest.raises(ValueError, match="alpha"):
        mix_ln_positions(4, 1.5)
    with pytest.raises(ValueError, match="layout"):
        norm_positions("sandwich", 3)


def test_block_rejects_scaled_post_norm():
    model = random_transformer(n_layers=1)
    b = model.stack.blocks[0]
    with pytest.raises(ValueError, match="pre-norm blocks only"):
        Block(b.attention, b.mlp, b.norm1, b.norm2, norm_position="post", norm_scale=0.5)
    with pytest.raises(ValueError, match="norm_position"):
        Block(b.attention, b.mlp, b.norm1, b.norm2, norm_position="middle")


def test_embeddings_reject_bad_ids():
    model = random_transformer(vocab=10, max_length=8)
    with pytest.raises(ValueError, match="input_ids"):
        model(np.array([[1, 10]]))
    with pytest.raises(ValueError, match="input_ids"):
        model(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="positions"):
        model(np.zeros((1, 9), np.int64))
