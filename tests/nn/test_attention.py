"""Attention, masks, self-attention and multi-head attention (book §4.8.1–4.8.3, NET-42..47, 61,
62). Reference values come from closed forms and from independent NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.attention import (
    MultiHeadAttention,
    attention,
    attention_weights,
    causal_mask,
    padding_mask,
    projected_self_attention,
    self_attention,
)
from diffprog.nn.positional import check_permutation_equivariance


def np_softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_attention(q, k, v, scale=None, mask=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * q @ np.swapaxes(k, -1, -2)
    if mask is not None:
        s = np.where(mask, s, -1e300)
    return np_softmax(s) @ v


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- NET-42


def test_net42_rows_are_probability_vectors(rng):
    q, k = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 6, 3))
    A = attention_weights(q, k)
    assert A.shape == (2, 4, 6)
    np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-14)
    assert np.all((A > 0) & (A < 1))


def test_net42_equal_values_and_zero_queries(rng):
    k = rng.normal(size=(5, 3))
    v_row = rng.normal(size=4)
    out = attention(rng.normal(size=(2, 3)), k, np.tile(v_row, (5, 1)))
    np.testing.assert_allclose(out, np.tile(v_row, (2, 1)), atol=1e-14)
    v = rng.normal(size=(5, 4))
    out0 = attention(np.zeros((3, 3)), k, v)
    np.testing.assert_allclose(out0, np.tile(v.mean(0), (3, 1)), atol=1e-14)


def test_net42_matches_numpy_rectangular(rng):
    q, k, v = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 7, 4)), rng.normal(size=(3, 7, 5))
    np.testing.assert_allclose(attention(q, k, v), np_attention(q, k, v), atol=1e-13)


def test_net42_gradients_match_finite_differences(rng):
    q, k, v = rng.normal(size=(2, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    check_grads(attention, (q, k, v), order=2)
    check_grads(lambda q, k, v: attention(q, k, v, mask=causal_mask(4)[:2]), (q, k, v), order=2)


# ----------------------------------------------------------------------------- NET-43


def _scores_with_negatives_and_zeros():
    # q kᵀ has negative, zero and positive entries (scale=1)
    q = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    k = np.array([[-2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    return q, k


def test_net43_causal_mask_lower_triangular_no_nan():
    q, k = _scores_with_negatives_and_zeros()
    s = q @ k.T
    assert (s < 0).any() and (s == 0).any()
    A = attention_weights(q, k, mask=causal_mask(3), scale=1.0)
    assert not np.isnan(A).any()
    np.testing.assert_array_equal(np.triu(A, 1), 0.0)
    np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(A[1, :2], np_softmax(s[1, :2]), atol=1e-15)


def test_net43_masked_entries_have_zero_gradient(rng):
    q, k = _scores_with_negatives_and_zeros()
    v = rng.normal(size=(3, 2))
    mask = causal_mask(3)
    # row 0 may attend to key 0 only: its output does not depend on keys/values 1 and 2
    gk, gv = diffprog.grad(lambda k, v: attention(q, k, v, mask=mask, scale=1.0)[0].sum(),
                           argnums=(0, 1))(k, v)
    np.testing.assert_array_equal(gk[1:], 0.0)
    np.testing.assert_array_equal(gv[1:], 0.0)
    # the weights themselves: d A_ij / d scores = 0 for masked (i, j)
    S = q @ k.T

    def weights_of_scores(S):
        return attention_weights(S, np.eye(3), mask=mask, scale=1.0)

    J = diffprog.jacobian(weights_of_scores)(S)  # (3, 3, 3, 3)
    blocked = ~mask
    assert np.all(J[:, :, blocked] == 0.0)
    assert np.all(J[blocked] == 0.0)


def test_net43_fully_masked_row_returns_zeros_forward_and_backward(rng):
    q, k, v = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    mask = np.ones((3, 4), bool)
    mask[1] = False
    out = attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(out[[0, 2]], np_attention(q, k, v)[[0, 2]], atol=1e-14)
    grads = diffprog.grad(lambda q, k, v: (attention(q, k, v, mask=mask) ** 2).sum(),
                          argnums=(0, 1, 2))(q, k, v)
    assert all(np.isfinite(g).all() for g in grads)
    np.testing.assert_array_equal(grads[0][1], 0.0)
    f = diffprog.jit(diffprog.value_and_grad(
        lambda q: (attention(q, k, v, mask=mask) ** 2).sum()))
    val, gq = f(q)
    assert np.isfinite(val) and np.isfinite(gq).all()
    check_grads(lambda q, k, v: attention(q, k, v, mask=mask), (q, k, v), order=2)


def test_net43_erratum_hadamard_mask_fails():
    """NET-43 erratum: the book's softargmax((QKᵀ) ∘ M) with m_ij = −∞ is wrong."""
    q, k = _scores_with_negatives_and_zeros()
    S = q @ k.T
    M = np.where(causal_mask(3), 1.0, -np.inf)
    with np.errstate(invalid="ignore"):
        literal = np_softmax(S * M)
    correct = attention_weights(q, k, mask=causal_mask(3), scale=1.0)
    # row 0: score 0·(−∞) = NaN; row 1: a negative score times −∞ = +∞
    assert np.isnan(literal).any()
    assert not np.allclose(np.nan_to_num(literal), correct)
    assert not np.isnan(correct).any()


def test_net43_additive_form_agrees(rng):
    q, k, v = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    s = q @ k.T / np.sqrt(3) + np.where(causal_mask(4), 0.0, -np.inf)
    np.testing.assert_allclose(attention(q, k, v, mask=causal_mask(4)), np_softmax(s) @ v,
                               atol=1e-14)


def test_mask_validation():
    q = np.ones((2, 3))
    with pytest.raises(TypeError, match="attention: argument 'mask' must be boolean"):
        attention(q, q, q, mask=np.ones((2, 2)))
    with pytest.raises(ValueError, match="attention: argument 'mask'"):
        attention(q, q, q, mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="queries and keys"):
        attention(q, np.ones((2, 4)), q)
    with pytest.raises(ValueError, match="keys and values"):
        attention(q, q, np.ones((3, 3)))
    with pytest.raises(ValueError, match="'q' must have shape"):
        attention(np.ones(3), q, q)
    with pytest.raises(ValueError, match="scale"):
        attention(q, q, q, scale=np.inf)


# ----------------------------------------------------------------------------- NET-44


def test_net44_scale(rng):
    q, k, v = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    np.testing.assert_allclose(attention(q, k, v), attention(q / 2.0, k, v, scale=1.0),
                               atol=1e-14)
    np.testing.assert_allclose(attention(q, k, v, scale=1.0), np_attention(q, k, v, scale=1.0),
                               atol=1e-14)


# ----------------------------------------------------------------------------- NET-45, 46


def test_net45_self_attention(rng):
    x = rng.normal(size=(5, 3))
    out = self_attention(x, scale=1.0)
    A = np_softmax(x @ x.T)  # the book's a_ij = exp⟨x_i,x_j⟩ / Σ exp⟨x_i,x_j'⟩
    np.testing.assert_allclose(out, A @ x, atol=1e-13)
    np.testing.assert_allclose(self_attention(x), attention(x, x, x), atol=0)
    assert check_permutation_equivariance(self_attention, x, rng)


def test_net46_projected_self_attention(rng):
    W_q, W_k, W_v = rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.normal(size=(3, 4))
    for L in (3, 17):
        x = rng.normal(size=(L, 3))
        out = projected_self_attention(x, W_q, W_k, W_v)
        assert out.shape == (L, 4)
        np.testing.assert_allclose(out, np_attention(x @ W_q, x @ W_k, x @ W_v), atol=1e-13)
    x = rng.normal(size=(4, 3))
    I3 = np.eye(3)
    np.testing.assert_allclose(projected_self_attention(x, I3, I3, I3), self_attention(x),
                               atol=1e-15)
    with pytest.raises(ValueError, match="W_v"):
        projected_self_attention(x, I3, I3, np.ones(3))


# ----------------------------------------------------------------------------- NET-47


def _np_mha(mha, x, c=None, mask=None, rotate=None):
    """Algorithm 4.2 from the raw weight matrices, with NumPy only (sum form Σ_i Y_i W_i^O)."""
    c = x if c is None else c
    H, dk, dv = mha.num_heads, mha.d_k, mha.d_v
    out = 0.0
    for i in range(H):
        q = x @ mha.q_proj.W[:, i * dk:(i + 1) * dk]
        k = c @ mha.k_proj.W[:, i * dk:(i + 1) * dk]
        v = c @ mha.v_proj.W[:, i * dv:(i + 1) * dv]
        if rotate is not None:
            q, k = rotate(q), rotate(k)
        Y = np_attention(q, k, v, mask=mask)
        out = out + Y @ mha.o_proj.W[i * dv:(i + 1) * dv]
    return out


def test_net47_loop_and_batched_agree(rng):
    mha = MultiHeadAttention.init(rng, 12, 3)
    x = rng.normal(size=(2, 5, 12))
    for mask in (None, causal_mask(5)):
        yb = mha(x, mask=mask)
        yl = mha(x, mask=mask, impl="loop")
        assert yb.shape == (2, 5, 12)
        np.testing.assert_allclose(yb, yl, atol=1e-12, rtol=0)
        np.testing.assert_allclose(yb, _np_mha(mha, x, mask=mask), atol=1e-12)


def test_net47_concat_form_equals_sum_form(rng):
    mha = MultiHeadAttention.init(rng, 8, 2, d_k=3, d_v=5)
    x = rng.normal(size=(4, 8))
    heads = [np_attention(x @ mha.q_proj.W[:, 3 * i:3 * i + 3],
                          x @ mha.k_proj.W[:, 3 * i:3 * i + 3],
                          x @ mha.v_proj.W[:, 5 * i:5 * i + 5]) for i in range(2)]
    concat = np.concatenate(heads, axis=-1) @ mha.o_proj.W
    np.testing.assert_allclose(mha(x), concat, atol=1e-13)
    np.testing.assert_allclose(concat, _np_mha(mha, x), atol=1e-13)


def test_net47_cross_attention_and_batched_masks(rng):
    mha = MultiHeadAttention.init(rng, 6, 2, use_bias=True)
    mha = mha.replace(q_proj=mha.q_proj.replace(b=rng.normal(size=6)),
                      v_proj=mha.v_proj.replace(b=rng.normal(size=6)))
    x, c = rng.normal(size=(2, 3, 6)), rng.normal(size=(2, 7, 6))
    pm = padding_mask(np.array([4, 7]), 7)  # (2, 1, 7)
    yb = mha(x, c, mask=pm)
    yl = mha(x, c, mask=pm, impl="loop")
    assert yb.shape == (2, 3, 6)
    np.testing.assert_allclose(yb, yl, atol=1e-12)
    # padded keys are ignored: same result as cutting the first context to its 4 real tokens
    np.testing.assert_allclose(yb[0], mha(x[0], c[0, :4]), atol=1e-12)


def test_net47_permutation_equivariance_and_gradients(rng):
    mha = MultiHeadAttention.init(rng, 4, 2)
    x = rng.normal(size=(5, 4))
    assert check_permutation_equivariance(mha, x, rng)
    assert not check_permutation_equivariance(lambda x: mha(x, mask=causal_mask(5)), x, rng)
    check_grads(lambda m, x: m(x, mask=causal_mask(5)), (mha, x), order=2)
    check_grads(lambda m, x: m(x), (mha, x), order=1)


def test_mha_float32_and_jit(rng):
    mha = MultiHeadAttention.init(rng, 8, 2, dtype=np.float32)
    x = rng.normal(size=(2, 4, 8)).astype(np.float32)
    y = mha(x, mask=causal_mask(4), rope=True)
    assert y.dtype == np.float32
    f = diffprog.jit(diffprog.grad(lambda m, x: (m(x, mask=causal_mask(4)) ** 2).sum()))
    g = f(mha, x)
    ge = diffprog.grad(lambda m, x: (m(x, mask=causal_mask(4)) ** 2).sum())(mha, x)
    for a, b in zip(diffprog.tree_leaves(g), diffprog.tree_leaves(ge), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mha_errors(rng):
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention.init(0, 5, 2)
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention.init(0, 4, 0)
    mha = MultiHeadAttention.init(0, 4, 2)
    with pytest.raises(ValueError, match="impl"):
        mha(np.ones((2, 4)), impl="fast")
    with pytest.raises(ValueError, match="last dimension 4"):
        mha(np.ones((2, 3)))
    with pytest.raises(ValueError, match="positions"):
        mha(np.ones((2, 4)), rope=True, positions=np.arange(3))


# ----------------------------------------------------------------------------- NET-61


def _explicit_rope_matrix(m, D, base=10000.0):
    R = np.zeros((D, D))
    for j in range(D // 2):
        th = base ** (-2 * j / D)
        c, s = np.cos(m * th), np.sin(m * th)
        R[2 * j:2 * j + 2, 2 * j:2 * j + 2] = [[c, -s], [s, c]]
    return R


def test_net61_rope_in_attention_hand_computation(rng):
    mha = MultiHeadAttention.init(rng, 4, 1)
    x = rng.normal(size=(3, 4))
    y = mha(x, rope=True)
    W_q, W_k, W_v, W_o = mha.q_proj.W, mha.k_proj.W, mha.v_proj.W, mha.o_proj.W
    q = np.stack([_explicit_rope_matrix(m, 4) @ (x[m] @ W_q) for m in range(3)])
    k = np.stack([_explicit_rope_matrix(m, 4) @ (x[m] @ W_k) for m in range(3)])
    expected = np_attention(q, k, x @ W_v) @ W_o  # V is not rotated
    np.testing.assert_allclose(y, expected, atol=1e-13)


def test_net61_rope_scores_invariant_to_position_offset(rng):
    mha = MultiHeadAttention.init(rng, 8, 2)
    x = rng.normal(size=(2, 5, 8))
    y0 = mha(x, rope=True, mask=causal_mask(5))
    y1 = mha(x, rope=True, positions=np.arange(5) + 37, mask=causal_mask(5))
    np.testing.assert_allclose(y0, y1, atol=1e-12)
    np.testing.assert_allclose(y0, mha(x, rope=True, mask=causal_mask(5), impl="loop"),
                               atol=1e-12)
    assert not np.allclose(y0, mha(x, mask=causal_mask(5)))


# ----------------------------------------------------------------------------- NET-62


def test_net62_causal_mask():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False],
                                       [True, True, True]]
    assert causal_mask(0).shape == (0, 0)
    with pytest.raises(ValueError, match="causal_mask"):
        causal_mask(-1)


@given(st.integers(1, 6), st.integers(0, 5))
def test_net62_causal_attention_ignores_future(L, t):
    t = min(t, L - 1)
    rng = np.random.default_rng(L)
    mha = MultiHeadAttention.init(rng, 4, 2)
    x = rng.normal(size=(L, 4))
    x2 = x.copy()
    x2[t + 1:] = rng.normal(size=x2[t + 1:].shape)
    y, y2 = mha(x, mask=causal_mask(L)), mha(x2, mask=causal_mask(L))
    np.testing.assert_allclose(y[:t + 1], y2[:t + 1], atol=1e-14)


def test_padding_mask():
    assert padding_mask(np.array([1, 2]), 3)[:, 0].tolist() == [[True, False, False],
                                                                [True, True, False]]
    valid = np.array([[True, False]])
    assert padding_mask(valid).shape == (1, 1, 2)
    with pytest.raises(ValueError, match="lengths must lie"):
        padding_mask(np.array([4]), 3)
    with pytest.raises(TypeError, match="padding_mask"):
        padding_mask(np.array([1.5]), 3)


def test_net47_per_head_attention_weights(rng):
    mha = MultiHeadAttention.init(rng, 6, 3)
    x = rng.normal(size=(2, 4, 6))
    A = mha.attention_weights(x, mask=causal_mask(4))
    assert A.shape == (2, 3, 4, 4)
    for i in range(3):
        q = x @ mha.q_proj.W[:, 2 * i:2 * i + 2]
        k = x @ mha.k_proj.W[:, 2 * i:2 * i + 2]
        s = np.where(causal_mask(4), q @ np.swapaxes(k, -1, -2) / np.sqrt(2), -np.inf)
        np.testing.assert_allclose(A[:, i], np_softmax(s), atol=1e-14)
    # the output is Σ_i A_i V_i W_i^O
    v = x @ mha.v_proj.W
    heads = [A[:, i] @ v[..., 2 * i:2 * i + 2] for i in range(3)]
    np.testing.assert_allclose(np.concatenate(heads, -1) @ mha.o_proj.W,
                               mha(x, mask=causal_mask(4)), atol=1e-13)


def test_net43_traced_mask_under_jit(rng):
    """NET-43: a boolean mask passed as a jit argument (padding + causal, one row empty)."""
    mha = MultiHeadAttention.init(rng, 4, 2)
    x = rng.normal(size=(2, 3, 4))
    mask = padding_mask(np.array([2, 0]), 3) & causal_mask(3)

    def loss(m, x, mask):
        return (m(x, mask=mask) ** 2).sum()

    v, g = diffprog.jit(diffprog.value_and_grad(loss))(mha, x, mask)
    ve, ge = diffprog.value_and_grad(loss)(mha, x, mask)
    assert abs(v - ve) < 1e-14
    for a, b in zip(diffprog.tree_leaves(g), diffprog.tree_leaves(ge), strict=True):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=1e-14)
    np.testing.assert_array_equal(mha(x, mask=mask)[1], 0.0)  # every key of row 1 is padding
