"""Scatter-add (``index_add`` and the transpose of integer indexing): the sorted fast path for
an integer array on the leading axis against ``np.add.at`` and a one-hot matrix product."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.numpy.structural import _scatter_add


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.lists(st.integers(-9, 8), min_size=1, max_size=30),
       st.integers(0, 3), st.integers(0, 2 ** 31 - 1))
def test_sorted_scatter_add_equals_np_add_at(n, raw, width, seed):
    idx = np.array([i % n - (n if i < 0 else 0) for i in raw])     # in [-n, n)
    rng = np.random.default_rng(seed)
    trailing = (width,) if width else ()
    v = rng.normal(size=idx.shape + trailing)
    out = rng.normal(size=(n,) + trailing)
    ref = out.copy()
    np.add.at(ref, (idx,), v)
    _scatter_add(out, (idx,), v)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)


def test_out_of_range_indices_raise_like_numpy():
    with pytest.raises(IndexError):
        _scatter_add(np.zeros((3, 2)), (np.array([0, 3]),), np.ones((2, 2)))
    with pytest.raises(IndexError):
        _scatter_add(np.zeros((3, 2)), (np.array([-4, 1]),), np.ones((2, 2)))


def test_embedding_gradient_equals_the_one_hot_product():
    """∂/∂E of Σ w ⊙ E[tokens] is onehot(tokens)ᵀ w (book §4.8.5: an embedding lookup is a
    product with a one-hot matrix)."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(11, 5))
    tokens = rng.integers(0, 11, size=(4, 7))
    w = rng.normal(size=(4, 7, 5))
    g = diffprog.grad(lambda E: dnp.sum(E[tokens] * w))(table)
    onehot = np.eye(11)[tokens.reshape(-1)]
    np.testing.assert_allclose(g, onehot.T @ w.reshape(-1, 5), rtol=1e-13, atol=1e-14)
    jg = diffprog.jit(diffprog.grad(lambda E: dnp.sum(E[tokens] * w)))(table)
    np.testing.assert_allclose(jg, g, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64, np.float16])
def test_scatter_add_both_paths_keep_dtype_and_match_np_add_at(dtype):
    """Float and complex values take the sparse product, others the sorted ``reduceat``."""
    rng = np.random.default_rng(3)
    idx = rng.integers(-7, 7, size=(5, 9))
    v = (rng.normal(size=(5, 9, 4)) * 10).astype(dtype)
    if np.dtype(dtype).kind == "c":
        v = v + 1j * rng.normal(size=v.shape)
    out = np.ones((7, 4), dtype)
    ref = out.copy()
    np.add.at(ref, (idx,), v)
    _scatter_add(out, (idx,), v)
    assert out.dtype == dtype
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


def test_scatter_add_with_empty_trailing_axes():
    out = np.zeros((3, 0))
    _scatter_add(out, (np.array([0, 2, 2]),), np.zeros((3, 0)))
    assert out.shape == (3, 0)
