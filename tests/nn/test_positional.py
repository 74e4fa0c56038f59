"""Positional encodings (book §4.8.7, NET-56..61, NET-76): closed forms, explicit matrices,
complex arithmetic and brute-force permutations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.attention import MultiHeadAttention, causal_mask, self_attention
from diffprog.nn.positional import (
    LearnedPositionalEncoding,
    check_permutation_equivariance,
    rope,
    rope_frequencies,
    sinusoidal_positional_encoding,
    sinusoidal_shift_matrix,
)
from diffprog.nn.transformer import TransformerBlock, TransformerLayer

# ----------------------------------------------------------------------------- NET-58


def test_net58_values_d4():
    P = sinusoidal_positional_encoding(2, 4, base=1e4)
    np.testing.assert_allclose(P[0], [0.0, 1.0, 0.0, 1.0], atol=0)
    np.testing.assert_allclose(P[1], [0.8414709848, 0.5403023059, 0.0099998333, 0.9999500004],
                               atol=1e-10)


def test_net58_range_start_and_figure_setting():
    P = sinusoidal_positional_encoding(100, 50, base=30.0)  # Fig. 4.8
    assert P.shape == (100, 50)
    assert np.all(np.abs(P) <= 1.0)
    full = sinusoidal_positional_encoding(20, 6)
    np.testing.assert_allclose(sinusoidal_positional_encoding(5, 6, start=15), full[15:],
                               atol=1e-15)
    assert sinusoidal_positional_encoding(3, 4, dtype=np.float32).dtype == np.float32
    # frequencies decrease with j: column 2m oscillates faster than column 2m + 2
    i = np.arange(1, 50)
    assert np.all(np.diff(1e4 ** (-np.arange(0, 8, 2) / 8)) < 0)
    P8 = sinusoidal_positional_encoding(50, 8)
    assert np.abs(np.diff(P8[i, 0])).mean() > np.abs(np.diff(P8[i, 2])).mean()


def test_net58_erratum_one_based_index_breaks_pairs():
    """NET-58 erratum: with 0-based j the columns (2m, 2m+1) are a (sin, cos) pair of one
    frequency (sin² + cos² = 1); the book's formula read with 1-based j pairs columns of two
    different frequencies."""
    L, D, N = 30, 6, 1e4
    P = sinusoidal_positional_encoding(L, D, N)
    np.testing.assert_allclose(P[:, 0::2] ** 2 + P[:, 1::2] ** 2, 1.0, atol=1e-14)
    i = np.arange(L)[:, None]
    j = np.arange(1, D + 1)  # 1-based
    P1 = np.where(j % 2 == 0, np.sin(i * N ** (-j / D)), np.cos(i * N ** (-(j - 1) / D)))
    assert not np.allclose(P1[:, 0::2] ** 2 + P1[:, 1::2] ** 2, 1.0, atol=1e-3)
    assert not np.allclose(P1[0], P[0])


def test_net58_errors():
    with pytest.raises(ValueError, match="sinusoidal_positional_encoding: argument 'D'"):
        sinusoidal_positional_encoding(3, 0)
    with pytest.raises(ValueError, match="'base'"):
        sinusoidal_positional_encoding(3, 4, base=-1.0)
    with pytest.raises(ValueError, match="'start'"):
        sinusoidal_positional_encoding(3, 4, start=-1)


# ----------------------------------------------------------------------------- NET-59


@given(st.integers(0, 200), st.integers(-50, 50), st.sampled_from([2, 4, 10]))
def test_net59_shift_matrix(i, delta, D):
    delta = max(delta, -i)
    P = sinusoidal_positional_encoding(i + 60, D)
    R = sinusoidal_shift_matrix(delta, D)
    np.testing.assert_allclose(R @ P[i], P[i + delta], atol=1e-11)
    np.testing.assert_allclose(R.T @ R, np.eye(D), atol=1e-14)


def test_net59_independent_of_position_and_odd_d():
    P = sinusoidal_positional_encoding(40, 8)
    R = sinusoidal_shift_matrix(5, 8)
    np.testing.assert_allclose(P[:35] @ R.T, P[5:], atol=1e-12)
    with pytest.raises(ValueError, match="must be even"):
        sinusoidal_shift_matrix(1, 5)


# ----------------------------------------------------------------------------- NET-60


def _block_matrix(m, D, base=10000.0):
    blocks = np.zeros((D, D))
    for j in range(1, D // 2 + 1):
        th = base ** (-2 * (j - 1) / D)
        blocks[2 * j - 2:2 * j, 2 * j - 2:2 * j] = [[np.cos(m * th), -np.sin(m * th)],
                                                    [np.sin(m * th), np.cos(m * th)]]
    return blocks


def test_net60_matrix_free_equals_explicit_and_complex():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 8))
    pos = np.array([0, 3, 7, 100, 2048])
    y = rope(x, pos)
    explicit = np.stack([_block_matrix(m, 8) @ x[n] for n, m in enumerate(pos)])
    np.testing.assert_allclose(y, explicit, atol=1e-12)
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * pos[:, None] * rope_frequencies(8))
    np.testing.assert_allclose(y[:, 0::2], z.real, atol=1e-12)
    np.testing.assert_allclose(y[:, 1::2], z.imag, atol=1e-12)
    np.testing.assert_allclose(rope(x), rope(x, np.arange(5)), atol=0)


@given(st.integers(0, 500), st.integers(0, 500))
def test_net60_norm_preserving_and_relative(m, n):
    rng = np.random.default_rng(m + 1000 * n)
    q, k = rng.normal(size=(1, 6)), rng.normal(size=(1, 6))
    rq, rk = rope(q, np.array([m])), rope(k, np.array([n]))
    np.testing.assert_allclose(np.linalg.norm(rq), np.linalg.norm(q), rtol=1e-13)
    shifted = rope(q, np.array([m + 7])) @ rope(k, np.array([n + 7])).T
    assert abs((rq @ rk.T - shifted).item()) < 1e-12


def test_net60_errors_float32_grads_and_jit():
    with pytest.raises(ValueError, match="rope: the last dimension of 'x' must be even"):
        rope(np.ones((2, 3)))
    with pytest.raises(ValueError, match="positions"):
        rope(np.ones((2, 4)), np.arange(3))
    with pytest.raises(ValueError, match="rope: argument 'x'"):
        rope(np.ones(4))
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    assert rope(x.astype(np.float32)).dtype == np.float32
    check_grads(lambda x: rope(x, np.array([1, 5, 9])), (x,), order=2)
    # traced positions (under jit) give the concrete result
    f = diffprog.jit(lambda x, p: rope(x, p))
    np.testing.assert_allclose(f(x, np.array([1.0, 5.0, 9.0])), rope(x, np.array([1, 5, 9])),
                               atol=1e-13)


# ----------------------------------------------------------------------------- NET-57


def test_net57_learned_positional_encoding():
    pe = LearnedPositionalEncoding.init(0, 6, 3)
    np.testing.assert_array_equal(pe(4), pe.table[:4])
    np.testing.assert_array_equal(pe(2, start=3), pe.table[3:5])
    g = diffprog.grad(lambda pe: (pe(2, start=1) ** 2).sum())(pe)
    np.testing.assert_allclose(g.table[1:3], 2 * pe.table[1:3], atol=0)
    np.testing.assert_array_equal(g.table[[0, 3, 4, 5]], 0.0)
    with pytest.raises(ValueError, match="max_len=6"):
        pe(7)
    with pytest.raises(ValueError, match="max_len=6"):
        pe(3, start=4)
    assert LearnedPositionalEncoding.init(0, 4, 2, dtype=np.float32).table.dtype == np.float32


# ----------------------------------------------------------------------------- NET-56, NET-76


def test_net76_equivariance_checker_passes_without_pe_or_mask():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 8))
    layer = TransformerLayer.init(rng, 8, 2, 16)
    block = TransformerBlock.init(rng, 2, 8, 2, 16, norm="pre")
    mha = MultiHeadAttention.init(rng, 8, 2)
    for fn in (self_attention, mha, layer, block):
        assert check_permutation_equivariance(fn, x, rng)
    assert check_permutation_equivariance(block, rng.normal(size=(3, 6, 8)), rng)


def test_net76_equivariance_checker_fails_with_mask_or_pe():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 8))
    block = TransformerBlock.init(rng, 2, 8, 2, 16)
    assert not check_permutation_equivariance(lambda x: block(x, mask=causal_mask(6)), x, rng)
    assert not check_permutation_equivariance(lambda x: block(x, rope=True), x, rng)


def test_net56_adding_positional_encoding_breaks_equivariance():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 8))
    block = TransformerBlock.init(rng, 1, 8, 2, 16)
    P = sinusoidal_positional_encoding(6, 8)
    assert check_permutation_equivariance(block, x, rng)
    assert not check_permutation_equivariance(lambda x: block(x + P), x, rng)
    learned = LearnedPositionalEncoding.init(rng, 6, 8, std=1.0)
    assert not check_permutation_equivariance(lambda x: block(x + learned(6)), x, rng)


def test_net76_checker_errors():
    with pytest.raises(TypeError, match="'fn'"):
        check_permutation_equivariance(3, np.ones((2, 2)), 0)
    with pytest.raises(ValueError, match="'axis'"):
        check_permutation_equivariance(lambda x: x, np.ones((2, 2)), 0, axis=3)
