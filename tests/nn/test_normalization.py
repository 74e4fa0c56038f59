"""Batch and layer normalization (book §4.5): NET-30, NET-31, NET-32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn.normalization import (
    BatchNorm,
    BatchNormState,
    LayerNorm,
    batch_norm,
    layer_norm,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- NET-30 batch norm (training)
def test_net30_batch_norm_standardizes_columns():
    S = _rng(0).standard_normal((16, 5)) * 3.0 + 7.0
    Y = batch_norm(S, eps=0.0)
    np.testing.assert_allclose(Y.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Y.std(0), 1.0, rtol=1e-12)  # biased std (ddof=0)
    gamma, beta = np.arange(1.0, 6.0), -np.arange(5.0)
    mu, sd = S.mean(0), S.std(0)
    np.testing.assert_allclose(batch_norm(S, gamma, beta, eps=0.0), gamma * (S - mu) / sd + beta,
                               rtol=1e-12)
    eps = 0.3
    np.testing.assert_allclose(batch_norm(S, eps=eps), (S - mu) / np.sqrt(sd ** 2 + eps),
                               rtol=1e-12)


@given(st.lists(st.floats(0.1, 10.0), min_size=4, max_size=4),
       st.lists(st.floats(-10.0, 10.0), min_size=4, max_size=4))
def test_net30_batch_norm_invariant_to_per_feature_affine_maps(a, c):
    S = _rng(1).standard_normal((8, 4))
    np.testing.assert_allclose(batch_norm(S * np.array(a) + np.array(c), eps=0.0),
                               batch_norm(S, eps=0.0), atol=1e-10)


def test_net30_batch_norm_gradient_sums_to_zero_over_batch_and_matches_fd():
    g = _rng(2)
    S, T = g.standard_normal((6, 3)), g.standard_normal((6, 3))
    gS = diffprog.grad(lambda S: dnp.sum(batch_norm(S, eps=0.0) * T))(S)
    np.testing.assert_allclose(gS.sum(0), 0.0, atol=1e-12)
    gamma, beta = g.standard_normal(3), g.standard_normal(3)
    check_grads(lambda S, gm, bt: batch_norm(S, gm, bt, eps=1e-3), (S, gamma, beta), order=2)
    # statistics over several axes: (B, L, D) normalized over (0, 1) = over the B·L rows
    X = g.standard_normal((4, 5, 3))
    np.testing.assert_allclose(batch_norm(X, axis=(0, 1)),
                               batch_norm(X.reshape(20, 3)).reshape(4, 5, 3), rtol=1e-12)


def test_net30_batch_of_one_raises_in_training():
    with pytest.raises(ValueError, match="batch_norm: training mode needs a batch of at least 2"):
        batch_norm(np.ones((1, 3)))
    bn = BatchNorm.init(3)
    with pytest.raises(ValueError, match="BatchNorm: training mode needs a batch of at least 2"):
        bn(np.ones((1, 3)), bn.initial_state(), training=True)
    with pytest.raises(ValueError, match="batch_norm: argument 'eps'"):
        batch_norm(np.ones((2, 3)), eps=-1.0)
    with pytest.raises(ValueError, match="batch_norm: argument 'axis'"):
        batch_norm(np.ones((2, 3)), axis=2)


# ---------------------------------------------------------------- NET-31 running statistics
def test_net31_running_statistics_converge_and_eval_mode():
    g = _rng(3)
    # the running mean has std σ·√((1−m)/(1+m)/B) ≈ 0.0143σ, so 2e-2 is > 4.5 sd for σ ≤ 0.3
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, 0.3])
    bn = BatchNorm.init(3, momentum=0.9)
    state = bn.initial_state()
    for _ in range(1000):
        x = mean + std * g.standard_normal((256, 3))
        _, state = bn(x, state, training=True)
    np.testing.assert_allclose(state.running_mean, mean, atol=2e-2)
    np.testing.assert_allclose(state.running_std, std, atol=2e-2)
    # eval mode: a single example is fine and uses the running statistics
    bn = bn.replace(gamma=np.array([2.0, 1.0, -1.0]), beta=np.array([0.0, 1.0, 3.0]),
                    eps=0.0)
    s = np.array([[0.3, 0.4, -0.7]])
    y, same = bn(s, state, training=False)
    assert same is state and np.all(np.isfinite(y))
    np.testing.assert_allclose(
        y, (s - state.running_mean) / state.running_std * bn.gamma + bn.beta, rtol=1e-12)


def test_net31_state_update_formula_and_no_gradient_through_state():
    bn = BatchNorm.init(2, momentum=0.8)
    state = BatchNormState(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    x = _rng(4).standard_normal((5, 2))
    _, new = bn(x, state, training=True)
    np.testing.assert_allclose(new.running_mean, 0.8 * state.running_mean + 0.2 * x.mean(0),
                               rtol=1e-14)
    np.testing.assert_allclose(new.running_std, 0.8 * state.running_std + 0.2 * x.std(0),
                               rtol=1e-14)
    gx = diffprog.grad(lambda x: dnp.sum(bn(x, state, training=True)[1].running_mean))(x)
    np.testing.assert_array_equal(gx, 0.0)
    with pytest.raises(TypeError, match="BatchNorm: argument 'state'"):
        bn(x, (state.running_mean, state.running_std), training=True)
    with pytest.raises(ValueError, match="BatchNorm: input 'x' must have last dimension 2"):
        bn(np.ones((4, 3)), state, training=True)
    with pytest.raises(ValueError, match="BatchNorm.init: argument 'momentum'"):
        BatchNorm.init(2, momentum=1.0)


def test_batchnorm_module_gradients_jit_vmap_float32():
    g = _rng(5)
    bn = BatchNorm.init(3).replace(gamma=g.standard_normal(3), beta=g.standard_normal(3))
    state = BatchNormState(g.standard_normal(3), np.abs(g.standard_normal(3)) + 0.5)
    x = g.standard_normal((4, 3))
    check_grads(lambda m, x: m(x, state, training=True)[0], (bn, x), order=2)
    check_grads(lambda m, x: m(x, state, training=False)[0], (bn, x), order=2)
    f = diffprog.jit(lambda m, x, s: m(x, s, training=True))
    (yj, sj), (ye, se) = f(bn, x, state), bn(x, state, training=True)
    np.testing.assert_allclose(yj, ye, rtol=1e-13)
    np.testing.assert_allclose(sj.running_std, se.running_std, rtol=1e-13)
    # vmap over groups: each group is normalized with its own statistics
    X = g.standard_normal((3, 4, 3))
    Yv = diffprog.vmap(lambda x: bn(x, state, training=True)[0])(X)
    np.testing.assert_allclose(Yv, np.stack([bn(x, state, training=True)[0] for x in X]),
                               rtol=1e-13)
    # conv-style input (B, H, W, C): statistics over B, H, W
    Z = g.standard_normal((2, 3, 3, 3))
    np.testing.assert_allclose(bn(Z, state, training=True)[0],
                               batch_norm(Z, bn.gamma, bn.beta, bn.eps, axis=(0, 1, 2)),
                               rtol=1e-13)
    b32 = BatchNorm.init(3, dtype=np.float32)
    x32 = x.astype(np.float32)
    y32, s32 = b32(x32, b32.initial_state(), training=True)
    assert y32.dtype == np.float32 and s32.running_mean.dtype == np.float32
    g32 = diffprog.grad(lambda m: dnp.sum(m(x32, s32, training=True)[0] ** 3))(b32)
    assert g32.gamma.dtype == np.float32


# ---------------------------------------------------------------- NET-32 layer norm
def test_net32_layer_norm_rows_batch_independence_invariance_and_grads():
    g = _rng(6)
    S = g.standard_normal((5, 4)) * 2 + 1
    Y = layer_norm(S, eps=0.0)
    np.testing.assert_allclose(Y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(Y.std(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(Y, np.stack([layer_norm(s, eps=0.0) for s in S]), rtol=1e-14)
    np.testing.assert_allclose(layer_norm(3.0 * S - 2.0, eps=0.0), Y, atol=1e-12)
    # a second method: layer norm of S is batch norm of Sᵀ, transposed back
    np.testing.assert_allclose(layer_norm(S, eps=0.1), batch_norm(S.T, eps=0.1).T, rtol=1e-12)
    gamma, beta = g.standard_normal(4), g.standard_normal(4)
    check_grads(lambda S, gm, bt: layer_norm(S, gm, bt, eps=1e-3), (S, gamma, beta), order=2)
    ln = LayerNorm.init(4).replace(gamma=gamma, beta=beta)
    np.testing.assert_allclose(ln(S), layer_norm(S, gamma, beta), rtol=1e-14)
    # token-wise on (B, L, D)
    X = g.standard_normal((2, 3, 4))
    np.testing.assert_allclose(ln(X)[1, 2], ln(X[1, 2]), rtol=1e-14)
    with pytest.raises(ValueError, match="LayerNorm"):
        ln(np.ones((2, 5)))
    with pytest.raises(ValueError, match="layer_norm: argument 'eps'"):
        layer_norm(S, eps=-1.0)
