"""Convex primitives (lecture notes "Convex function" examples): FUND-88."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check_grads
from diffprog.optim import check_convex
from diffprog.proba import lambda_max, logdet, sum_largest, xlogx


def test_fund88_xlogx_values_and_derivative():
    np.testing.assert_allclose(xlogx(np.array([0.0, 1.0, 2.0])), [0.0, 0.0, 2 * math.log(2)],
                               atol=1e-15)
    x = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(diffprog.vmap(diffprog.grad(xlogx))(x), np.log(x) + 1, atol=1e-14)
    assert float(diffprog.grad(xlogx)(0.0)) == -np.inf  # documented: (x log x)' → −∞ at 0
    check_grads(xlogx, (x,), order=2)
    assert check_convex(lambda v: xlogx(v).sum(), lambda r: r.uniform(0.01, 5, 3), n_pairs=50)


def test_fund88_sum_largest():
    x = np.array([3.0, 1.0, 2.0])
    assert float(sum_largest(x, 2)) == 5.0
    np.testing.assert_array_equal(diffprog.grad(lambda v: sum_largest(v, 2))(x), [1.0, 0.0, 1.0])
    rng = np.random.default_rng(0)
    for _ in range(10):
        v = rng.normal(size=6)
        assert math.isclose(float(sum_largest(v, 3)), np.sort(v)[-3:].sum(), rel_tol=1e-14)
    check_grads(lambda v: sum_largest(v, 3), (rng.normal(size=6),), order=2)
    # ties: the gradient is an element of the Clarke subdifferential (entries in [0, 1], sum k)
    g = np.asarray(diffprog.grad(lambda v: sum_largest(v, 2))(np.array([1.0, 2.0, 1.0])))
    assert g[1] == 1.0 and np.all((g >= 0) & (g <= 1)) and g.sum() == 2.0
    assert check_convex(lambda v: sum_largest(v, 2), lambda r: r.normal(size=4), n_pairs=50)
    with pytest.raises(ValueError, match="sum_largest: argument 'k'"):
        sum_largest(x, 4)
    with pytest.raises(TypeError, match="sum_largest: argument 'k'"):
        sum_largest(x, 1.5)


def test_fund88_lambda_max():
    X = np.diag([1.0, 3.0])
    assert float(lambda_max(X)) == 3.0
    np.testing.assert_allclose(diffprog.grad(lambda_max)(X), np.diag([0.0, 1.0]), atol=1e-15)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 4))
    S = A + A.T
    w, V = np.linalg.eigh(S)
    np.testing.assert_allclose(diffprog.grad(lambda_max)(S), np.outer(V[:, -1], V[:, -1]),
                               atol=1e-12)
    check_grads(lambda_max, (S,), order=2)

    def sym(r):
        B = r.normal(size=(3, 3))
        return B + B.T

    assert check_convex(lambda_max, sym, n_pairs=50)
    # the symmetric part is read: [[1, 2], [0, 1]] → [[1, 1], [1, 1]], λ_max = 2
    assert math.isclose(float(lambda_max(np.array([[1.0, 2.0], [0.0, 1.0]]))), 2.0, rel_tol=1e-15)
    with pytest.raises(ValueError, match="lambda_max: argument 'X'"):
        lambda_max(np.ones((2, 3)))


def test_fund88_logdet():
    assert math.isclose(float(logdet(2 * np.eye(3))), 3 * math.log(2), rel_tol=1e-15)
    np.testing.assert_allclose(diffprog.grad(logdet)(2 * np.eye(3)), 0.5 * np.eye(3), atol=1e-15)
    rng = np.random.default_rng(2)
    A = rng.normal(size=(3, 3))
    X = A @ A.T + np.eye(3)
    assert math.isclose(float(logdet(X)), np.linalg.slogdet(X)[1], rel_tol=1e-13)
    np.testing.assert_allclose(diffprog.grad(logdet)(X), np.linalg.inv(X), atol=1e-12)
    check_grads(logdet, (X,), order=2)

    def spd(r):
        B = r.normal(size=(3, 3))
        return B @ B.T + 0.5 * np.eye(3)

    assert check_convex(lambda M: -logdet(M), spd, n_pairs=50)
    with pytest.raises(ValueError, match="logdet: argument 'X' must be symmetric positive"):
        logdet(np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="logdet: argument 'X' must be a"):
        logdet(np.ones(3))
