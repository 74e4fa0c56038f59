"""``diffprog.numpy.split``: NumPy's pieces (views), one multi-output primitive whose transpose
is one concatenation (book §8.4.4), and overlapping pieces through plain slicing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.core.primitive import UndefinedPrimal
from diffprog.numpy.structural import split_p


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.lists(st.integers(-9, 9), max_size=4), st.integers(0, 1))
def test_pieces_equal_numpy_split(n, indices, axis):
    x = np.arange(3.0 * n).reshape((3, n) if axis else (n, 3))
    got = dnp.split(x, indices, axis=axis)
    expected = np.split(x, indices, axis=axis)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_equal_sections_including_an_empty_axis():
    assert [p.shape for p in dnp.split(np.ones((0, 2)), 3)] == [(0, 2)] * 3
    with pytest.raises(ValueError, match="split: array of size 5 along axis 0"):
        dnp.split(np.ones(5), 2)
    with pytest.raises(ValueError, match="split: argument 'indices_or_sections' must be a "
                                         "positive number of sections"):
        dnp.split(np.ones(4), 0)


def test_gradient_is_one_concatenation_of_the_pieces_cotangents():
    """``f(x) = Σ sin(x₀)² + 3 Σ x₂`` over the pieces ``x[:, :2], x[:, 2:5], x[:, 5:]``: the
    cotangent is ``[sin(2x₀), 0, 3]`` blockwise (closed form), eager and jitted; the VJP binds
    ``concatenate`` once and no ``getitem`` scatter."""
    x = np.random.default_rng(0).normal(size=(2, 7))

    def f(x):
        a, _, c = dnp.split(x, [2, 5], axis=1)
        return dnp.sum(dnp.sin(a) ** 2) + 3.0 * dnp.sum(c)

    expected = np.concatenate([np.sin(2 * x[:, :2]), np.zeros((2, 3)), np.full((2, 2), 3.0)],
                              axis=1)
    np.testing.assert_allclose(diffprog.grad(f)(x), expected, rtol=1e-14)
    np.testing.assert_allclose(diffprog.jit(diffprog.grad(f))(x), expected, rtol=1e-14)
    names = [eq.prim.name for eq in diffprog.jit(diffprog.grad(f))._entry_for((x,), {})
             .program.eqns]
    assert names.count("split") == 1 and names.count("concatenate") == 1
    assert "getitem" not in names and "index_add" not in names


def test_transpose_rule_fills_symbolic_zero_cotangents():
    (ct,) = split_p.transpose((None, np.ones((2, 1), np.float32), None),
                              UndefinedPrimal((2, 4), np.float32), axis=1, bounds=(0, 2, 3, 4))
    np.testing.assert_array_equal(ct, [[0, 0, 1, 0], [0, 0, 1, 0]])
    assert ct.dtype == np.float32


def test_linear_transpose_and_vmap_of_split():
    x = np.arange(12.0).reshape(3, 4)
    f_t = diffprog.linear_transpose(lambda x: dnp.split(x, [1], axis=1)[1] * 2.0, x)
    (ct,) = f_t(np.ones((3, 3)))
    np.testing.assert_array_equal(ct, np.hstack([np.zeros((3, 1)), np.full((3, 3), 2.0)]))
    got = diffprog.vmap(lambda r: dnp.split(r, [1, 3])[1], in_axes=1)(x)
    np.testing.assert_array_equal(got, x[1:3].T)
