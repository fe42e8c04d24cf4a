"""Exact conversions Pre-LN -> Pre-RMSNorm -> Pre-CRMSNorm (Jiang et al. 2023).

What is compared: the model output, i.e. the final norm's output (mapped by
the output head when the model has one), for the same token ids and
padding mask. The Pre-LN model's own output is LayerNorm_f(h) (width d);
the Pre-RMSNorm model gives RMSNorm_f(h') with the folded gain/bias, and
the Pre-CRMSNorm model works in width d - 1 and returns the same width-d
vectors through its folded head. The embeddings are converted too (the
inputs are token ids, not hidden states).

Tolerances (max abs difference, outputs of magnitude up to ~5): 1e-10 in
float64 for both converted forms; 1e-5 in float32 for Pre-RMSNorm. The
float32 Pre-CRMSNorm form gets max(1e-5, 2e-6 sqrt(d)): its implicit last
coordinate, -sum(z), adds up d - 1 independent rounding errors, so its error
grows like sqrt(d) (measured ~1e-6 sqrt(d): 6e-6 at d = 64, 1.3e-5 at
d = 128, 2.4e-5 at d = 768), a property of the representation, not a bug.
"""

from __future__ import annotations

import numpy as np
import pytest

from normkit.nn.build import random_transformer
from normkit.nn.convert import pre_ln_to_pre_rmsnorm, pre_rmsnorm_to_pre_crmsnorm
from normkit.nn.schedules import layernorm_scaling

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def crms_tolerance(dtype, width: int) -> float:
    return TOL[dtype] if dtype == np.float64 else max(TOL[dtype], 2e-6 * np.sqrt(width))

CONFIGS = [
    dict(width=16, n_heads=2, n_layers=1),
    dict(width=48, n_heads=4, n_layers=3, mlp="swiglu", causal=True),
    dict(width=64, n_heads=8, n_layers=2, mlp="gelu_tanh", head=30),
    dict(width=96, n_heads=6, n_layers=4, scaled=True, head=50),
    dict(width=128, n_heads=4, hidden=200, n_layers=2, mlp="swiglu", scaled=True, causal=True),
    dict(width=256, n_heads=8, n_layers=2, head=40),
]


def inputs(seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 100, (3, 11))
    mask = np.ones((3, 11), np.int64)
    mask[1, 6:] = 0
    return ids, mask


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_three_forms_give_the_same_output(config, dtype):
    ln = random_transformer(dtype=dtype, seed=11, **config)
    rms = pre_ln_to_pre_rmsnorm(ln)
    crms = pre_rmsnorm_to_pre_crmsnorm(rms)
    ids, mask = inputs()
    y_ln, y_rms, y_crms = ln(ids, mask), rms(ids, mask), crms(ids, mask)
    width = config["width"]
    for y, tol in ((y_rms, TOL[dtype]), (y_crms, crms_tolerance(dtype, width))):
        assert y.dtype == dtype and y.shape == y_ln.shape
        np.testing.assert_allclose(y, y_ln, rtol=0, atol=tol)
    # The forms are what they claim: norm types and widths.
    assert {b.norm_kind for b in rms.stack.blocks} == {"rms"} and rms.stack.final_norm.kind == "rms"
    assert {b.norm_kind for b in crms.stack.blocks} == {"crms"} and crms.stack.final_norm.kind == "crms"
    assert crms.embeddings.word.shape[1] == width - 1
    assert all(b.attention.out.out_features == width - 1 for b in crms.stack.blocks)
    # The Pre-RMSNorm residual stream is zero-mean (every hidden state).
    _, hidden = rms(ids, mask, output_hidden_states=True)
    for h in hidden:
        assert np.abs(h.mean(axis=-1)).max() <= TOL[dtype] * np.abs(h).max()


def test_source_model_is_left_unchanged():
    ln = random_transformer(width=32, n_heads=4, n_layers=2, scaled=True)
    ids, mask = inputs()
    before = ln(ids, mask)
    weights = [b.attention.qkv.weight.copy() for b in ln.stack.blocks]
    pre_rmsnorm_to_pre_crmsnorm(pre_ln_to_pre_rmsnorm(ln))
    # Not bitwise: the norm kernels' summation order follows the rows' memory
    # alignment, so reruns may differ in the last bit.
    np.testing.assert_allclose(ln(ids, mask), before, rtol=0, atol=1e-13)
    for b, w in zip(ln.stack.blocks, weights):
        np.testing.assert_array_equal(b.attention.qkv.weight, w)
    assert [b.norm_kind for b in ln.stack.blocks] == ["layer", "layer"]
    assert [b.norm_scale for b in ln.stack.blocks] == layernorm_scaling(2)


def test_conversion_is_not_the_identity():
    """Guard against a vacuous test: a plain Pre-RMSNorm model with the
    Pre-LN weights (no folding, no re-centering) differs clearly."""
    ln = random_transformer(width=32, n_heads=4, n_layers=2)
    naive = random_transformer(width=32, n_heads=4, n_layers=2, norm="rms")
    ids, mask = inputs()
    assert np.abs(naive(ids, mask) - ln(ids, mask)).max() > 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(layout="post"), "pre-norm"),
    (dict(layout="mix", n_layers=4), "pre-norm"),
    (dict(final_norm=False), "final norm"),
    (dict(norm="rms"), "norm type 'layer'"),
])
def test_pre_ln_conversion_rejects_other_models(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pre_ln_to_pre_rmsnorm(random_transformer(**kwargs))


def test_crms_conversion_needs_a_zero_mean_stream():
    with pytest.raises(ValueError, match="zero-mean"):
        pre_rmsnorm_to_pre_crmsnorm(random_transformer(norm="rms"))
    with pytest.raises(ValueError, match="norm type 'rms'"):
        pre_rmsnorm_to_pre_crmsnorm(random_transformer())
