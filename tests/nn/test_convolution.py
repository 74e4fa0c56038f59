"""Convolution as a parameterized linear map and its transpose (book §4.3.1): NET-14."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import correlate

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn.convolution import Conv, conv, conv_transpose


def _rng(seed=0):
    return np.random.default_rng(seed)


def _toeplitz_1d(W, L, stride):
    """The matrix of x ↦ conv(x, W) (1-D, VALID) on flattened (L·C_in) → (O·C_out), by hand."""
    K, cin, cout = W.shape
    O = (L - K) // stride + 1
    T = np.zeros((O * cout, L * cin))
    for o in range(O):
        for k in range(K):
            i = o * stride + k
            T[o * cout:(o + 1) * cout, i * cin:(i + 1) * cin] = W[k].T
    return T


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_net14_conv1d_equals_toeplitz_matrix(stride):
    g = _rng(stride)
    L, W = 11, g.standard_normal((3, 2, 4))
    x = g.standard_normal((L, 2))
    T = _toeplitz_1d(W, L, stride)
    np.testing.assert_allclose(conv(x, W, stride).ravel(), T @ x.ravel(), rtol=1e-13)
    y = g.standard_normal(conv(x, W, stride).shape)
    np.testing.assert_allclose(conv_transpose(y, W, stride, input_shape=(L,)).ravel(),
                               T.T @ y.ravel(), rtol=1e-13, atol=1e-14)


def test_net14_conv2d_matches_scipy_correlate_and_brute_force():
    g = _rng(4)
    img, ker = g.standard_normal((6, 7)), g.standard_normal((3, 2))
    np.testing.assert_allclose(conv(img[..., None], ker[..., None, None])[..., 0],
                               correlate(img, ker, mode="valid"), rtol=1e-12)
    # multi-channel, stride (2, 1), explicit padding: brute force over the definition
    x, W = g.standard_normal((5, 6, 2)), g.standard_normal((3, 2, 2, 3))
    xp = np.pad(x, ((1, 0), (0, 2), (0, 0)))
    y = conv(x, W, stride=(2, 1), padding=((1, 0), (0, 2)))
    O1, O2 = (xp.shape[0] - 3) // 2 + 1, xp.shape[1] - 2 + 1
    ref = np.zeros((O1, O2, 3))
    for a in range(O1):
        for b in range(O2):
            for k1 in range(3):
                for k2 in range(2):
                    ref[a, b] += xp[2 * a + k1, b + k2] @ W[k1, k2]
    np.testing.assert_allclose(y, ref, rtol=1e-12)


def test_net14_conv_is_linear_in_x_and_in_w():
    g = _rng(5)
    x1, x2 = g.standard_normal((2, 8, 8, 3)), g.standard_normal((2, 8, 8, 3))
    W1, W2 = g.standard_normal((3, 3, 3, 2)), g.standard_normal((3, 3, 3, 2))
    a, b = 1.7, -0.4
    np.testing.assert_allclose(conv(a * x1 + b * x2, W1, 2, "SAME"),
                               a * conv(x1, W1, 2, "SAME") + b * conv(x2, W1, 2, "SAME"),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv(x1, a * W1 + b * W2), a * conv(x1, W1) + b * conv(x1, W2),
                               rtol=1e-12, atol=1e-12)


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["VALID", "SAME", 1, 2]), st.integers(0, 10_000))
def test_net14_dot_product_test_and_vjp_is_transposed_conv(n, k, s, padding, seed):
    g = _rng(seed)
    spatial = tuple(int(v) for v in g.integers(k, k + 6, size=n))
    x = g.standard_normal((2, *spatial, 2))
    W = g.standard_normal((*(k,) * n, 2, 3))
    y = conv(x, W, s, padding)
    if padding == "SAME":
        assert y.shape[1:-1] == tuple(-(-L // s) for L in spatial)
    u = g.standard_normal(y.shape)
    xt = conv_transpose(u, W, s, padding, input_shape=spatial)
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, u), np.vdot(x, xt), rtol=1e-10, atol=1e-10)
    (vjp_x,) = diffprog.vjp(lambda x: conv(x, W, s, padding), x)[1](u)
    np.testing.assert_allclose(vjp_x, xt, rtol=1e-10, atol=1e-12)


def test_net14_conv_gradients_both_modes():
    g = _rng(6)
    x, W = g.standard_normal((4, 7, 2)), g.standard_normal((3, 2, 2))
    check_grads(lambda x, W: conv(x, W, 2, "SAME"), (x, W), order=2)
    x2, W2 = g.standard_normal((5, 4, 1)), g.standard_normal((2, 2, 1, 2))
    check_grads(lambda x, W: conv(x, W, 1, 1), (x2, W2), order=2)
    y = g.standard_normal((3, 2))
    check_grads(lambda y, W: conv_transpose(y, W, 2), (y, W), order=1)


def test_conv_module_jit_vmap_float32_and_errors():
    layer = Conv.init(0, 2, 3, (3, 3), stride=2, padding="SAME")
    x = _rng(7).standard_normal((4, 9, 9, 2))
    y = layer(x)
    assert y.shape == (4, 5, 5, 3)
    np.testing.assert_allclose(y, conv(x, layer.W, 2, "SAME") + layer.b, rtol=1e-14)
    np.testing.assert_allclose(diffprog.jit(lambda m, x: m(x))(layer, x), y, rtol=1e-13)
    np.testing.assert_allclose(diffprog.vmap(layer)(x), y, rtol=1e-13)
    check_grads(lambda m, x: m(x), (layer, x[:1]), order=1)
    l32 = Conv.init(0, 2, 3, 3, dtype=np.float32)
    x32 = np.ones((1, 6, 2), np.float32)
    assert l32(x32).dtype == np.float32
    g32 = diffprog.grad(lambda m: dnp.sum(m(x32) ** 2))(l32)
    assert g32.W.dtype == np.float32 and g32.W.shape == (3, 2, 3)
    with pytest.raises(ValueError, match="Conv: input 'x' must have last dimension 2"):
        layer(np.ones((1, 9, 9, 3)))
    with pytest.raises(ValueError, match="conv: argument 'padding'"):
        conv(np.ones((5, 2)), np.ones((2, 2, 2)), padding="FULL")
    with pytest.raises(ValueError, match="conv: argument 'stride'"):
        conv(np.ones((5, 2)), np.ones((2, 2, 2)), stride=0)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv(np.ones((2, 2)), np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match="conv: argument 'W'"):
        conv(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="conv_transpose: 'SAME' padding needs"):
        conv_transpose(np.ones((3, 2)), np.ones((2, 2, 2)), padding="SAME")
    with pytest.raises(ValueError, match="conv_transpose: input spatial shape"):
        conv_transpose(np.ones((3, 2)), np.ones((2, 2, 2)), input_shape=(7,))
