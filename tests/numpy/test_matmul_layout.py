"""Stacked products with a column-major right operand (``q @ kᵀ``) take a row-major copy of it
(``row_major_operand``): the values must be those of the plain product, and the copy must be
made exactly for small stacked products with ``k ≤ min(m, n)``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.numpy.contraction import _matmul_impl, row_major_operand


def _einsum_product(a, b):
    """The product summed term by term in float64 (independent of BLAS)."""
    return np.einsum("...ik,...kj->...ij", a.astype(np.float64), b.astype(np.float64))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40),
       st.sampled_from([np.float32, np.float64]), st.booleans(), st.integers(0, 2**31 - 1))
def test_transposed_right_operand_gives_the_product(s, m, k, n, dtype, broadcast, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((s, m, k)).astype(dtype)
    b = rng.standard_normal((1 if broadcast else s, n, k)).astype(dtype).swapaxes(-1, -2)
    got = _matmul_impl(a, b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert got.dtype == dtype
    np.testing.assert_allclose(got, _einsum_product(a, b), rtol=tol, atol=tol * np.sqrt(k))


def test_copy_only_for_small_column_major_right_operands():
    a = np.ones((4, 64, 32), np.float32)
    kt = np.ones((4, 64, 32), np.float32).swapaxes(-1, -2)       # (4, 32, 64), column-major
    copied = row_major_operand(a, kt)
    assert copied is not kt and copied.flags.c_contiguous
    # already row-major, large products, k > min(m, n), a column-major left operand: untouched
    assert row_major_operand(a, np.ascontiguousarray(kt)).base is None
    big_a = np.ones((2, 256, 256), np.float32)
    big_b = np.ones((2, 256, 256), np.float32).swapaxes(-1, -2)
    assert row_major_operand(big_a, big_b) is big_b
    wide_k = np.ones((4, 32, 64), np.float32).swapaxes(-1, -2)  # k = 64 > m = n = 32
    assert row_major_operand(np.ones((4, 32, 64), np.float32), wide_k) is wide_k
    at = np.ones((4, 32, 64), np.float32).swapaxes(-1, -2)
    assert row_major_operand(at, kt) is kt
    # a stack broadcast from one matrix (stride 0) is not materialized
    shared = np.broadcast_to(np.ones((1, 64, 32), np.float32).swapaxes(-1, -2), (4, 32, 64))
    assert row_major_operand(a, shared) is shared
    # 2-D products and other dtypes are left to NumPy
    kt0 = kt[0]
    assert row_major_operand(a[0], kt0) is kt0
    ints = np.ones((4, 32, 64), np.int64).swapaxes(-1, -2)
    assert row_major_operand(np.ones((4, 64, 32), np.int64), ints) is ints


@pytest.mark.parametrize("jit", [False, True])
def test_attention_scores_gradient_through_the_copy(jit):
    """``sum((q @ kᵀ)²)``: gradients ``2 S k`` and ``2 Sᵀ q`` from the closed form."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((3, 2, 8, 4))
    k = rng.standard_normal((3, 2, 8, 4))

    def f(q, k):
        s = dnp.matmul(q, dnp.swapaxes(k, -1, -2))
        return dnp.sum(s * s)

    g = diffprog.grad(f, argnums=(0, 1))
    gq, gk = (diffprog.jit(g) if jit else g)(q, k)
    s = np.einsum("bhid,bhjd->bhij", q, k)
    np.testing.assert_allclose(gq, 2 * np.einsum("bhij,bhjd->bhid", s, k), rtol=1e-12)
    np.testing.assert_allclose(gk, 2 * np.einsum("bhij,bhid->bhjd", s, q), rtol=1e-12)
