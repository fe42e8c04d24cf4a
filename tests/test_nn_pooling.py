"""Mean pooling over the attention mask and L2 normalization."""

from __future__ import annotations

import numpy as np
import pytest

from normkit.nn.pooling import l2_normalize, mean_pool


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_pool_ignores_padding(dtype):
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5, 8)).astype(dtype)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    pooled = mean_pool(hidden, mask)
    assert pooled.dtype == dtype
    np.testing.assert_allclose(pooled[0], hidden[0].mean(0), rtol=1e-6)
    np.testing.assert_allclose(pooled[1], hidden[1, :2].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(pooled[2], 0.0)  # no token: zeros, not NaN
    with pytest.raises(ValueError, match="attention_mask"):
        mean_pool(hidden, mask[:, :4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_normalize(dtype):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(6, 384)) * np.array([1e-3, 1, 10, 1e3, 1e-20, 1])[:, None]).astype(dtype)
    x[5] = 0.0
    y = l2_normalize(x)
    assert y.dtype == dtype
    xd = x.astype(np.float64)
    expected = xd / np.maximum(np.linalg.norm(xd, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(y[:4], expected[:4], rtol=2e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_array_equal(y[5], 0.0)
    assert np.linalg.norm(y[4].astype(np.float64)) < 1.0  # a norm of 1e-20 < eps is not blown up
