"""Tests of diffprog.optim.regression and diffprog.optim.games
(spec OPT-49, 50, 82, 83, 84, 101, 104, 105, 106)."""

import math

import numpy as np
import pytest

import diffprog.numpy as dnp
from diffprog.optim.games import (
    ZeroSumGame,
    check_pl,
    gda_jacobian,
    is_differential_stackelberg,
    is_saddle_point,
    is_stackelberg,
    local_condition_numbers,
    pl_constant,
    pl_linear_rate_bound,
    two_timescale_parameters,
)
from diffprog.optim.prox import prox_lasso
from diffprog.optim.regression import (
    ista,
    lasso,
    lasso_lambda_max,
    lasso_optimality_residual,
    min_norm_solution,
    penalized_least_squares,
    pinv,
    regularization_path,
    ridge,
)
from diffprog.optim.solvers import gda, gradient_descent


def _data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal(n)


# ---------------------------------------------------------------- OPT-83 ridge
@pytest.mark.parametrize("shape", [(50, 20), (20, 50)])
def test_opt83_ridge_primal_dual_closed_forms(shape):
    A, y = _data(*shape)
    lam = 0.7
    n, p = shape
    closed_primal = np.linalg.solve(A.T @ A + lam * np.eye(p), A.T @ y)
    closed_dual = A.T @ np.linalg.solve(A @ A.T + lam * np.eye(n), y)
    xp = ridge(A, y, lam, method="primal")
    xd = ridge(A, y, lam, method="dual")
    np.testing.assert_allclose(xp, closed_primal, atol=1e-10)
    np.testing.assert_allclose(xd, closed_dual, atol=1e-10)
    np.testing.assert_allclose(xp, xd, atol=1e-10)
    for m in ("auto", "cholesky", "svd"):
        np.testing.assert_allclose(ridge(A, y, lam, method=m), xp, atol=1e-10)
    np.testing.assert_allclose(ridge(A, y, lam, method="cg"), ridge(A, y, lam, "cholesky"),
                               atol=1e-8)
    # normal equations of ½‖Ax−y‖² + (λ/2)‖x‖²
    assert np.max(np.abs(A.T @ A @ xp + lam * xp - A.T @ y)) < 1e-10


def test_opt83_ridge_errors():
    A, y = _data(5, 3)
    with pytest.raises(ValueError, match="method"):
        ridge(A, y, 1.0, method="nope")
    with pytest.raises(ValueError, match="λ"):
        ridge(A, y, -1.0)
    with pytest.raises(ValueError, match="length"):
        ridge(A, y[:3], 1.0)


# ---------------------------------------------------------------- OPT-84 pinv
def test_opt84_pinv_and_min_norm_rank_deficient():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((8, 3)) @ rng.standard_normal((3, 6))  # rank 3, 8×6
    y = rng.standard_normal(8)
    P = pinv(A)
    np.testing.assert_allclose(P, np.linalg.pinv(A), atol=1e-12)
    np.testing.assert_allclose(A @ P @ A, A, atol=1e-10)
    np.testing.assert_allclose(P @ A @ P, P, atol=1e-10)
    np.testing.assert_allclose((A @ P).T, A @ P, atol=1e-10)
    np.testing.assert_allclose((P @ A).T, P @ A, atol=1e-10)
    x = min_norm_solution(A, y)
    np.testing.assert_allclose(x, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-10)
    # special cases: injective and surjective
    B, _ = _data(7, 3, seed=2)
    np.testing.assert_allclose(pinv(B), np.linalg.solve(B.T @ B, B.T), atol=1e-10)
    np.testing.assert_allclose(pinv(B.T), B @ np.linalg.inv(B.T @ B), atol=1e-10)


# ---------------------------------------------------------------- OPT-82 path
def test_opt82_ridge_path_converges_to_pinv():
    A, y = _data(5, 12, seed=3)  # underdetermined
    lams = 10.0 ** -np.arange(1, 11)
    P = regularization_path(A, y, lams, penalty="l2")
    errs = np.linalg.norm(P - np.linalg.pinv(A) @ y, axis=1)
    assert np.all(np.diff(errs) < 0) and errs[-1] < 1e-8
    np.testing.assert_allclose(P[3], ridge(A, y, lams[3]), atol=1e-10)
    np.testing.assert_allclose(penalized_least_squares(A, y, 1e-3, "l2"), P[2], atol=1e-10)


def test_opt82_lasso_path_piecewise_linear_and_entry_order():
    # orthogonal columns with scales d: x_i(λ) = S_λ(d_i q_iᵀy)/d_i², kinks at |d_i q_iᵀy|
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((10, 3)))
    d = np.array([1.0, 2.0, 0.5])
    A = Q * d
    c = np.array([3.0, -2.0, 1.0])  # = Aᵀy
    y = Q @ (c / d)
    lams = np.linspace(3.5, 0.0, 71)
    P = regularization_path(A, y, lams)
    expected = np.sign(c) * np.maximum(np.abs(c)[None] - lams[:, None], 0) / d ** 2
    np.testing.assert_allclose(P, expected, atol=1e-9)
    # entry order as λ decreases: 0 (at λ=3), then 1 (λ=2), then 2 (λ=1)
    first_nz = [int(np.argmax(np.abs(P[:, j]) > 0)) for j in range(3)]
    assert first_nz[0] < first_nz[1] < first_nz[2]
    # piecewise linear: second differences vanish except at kinks
    dd = np.abs(np.diff(P, 2, axis=0)).max(axis=1)
    kinks = {1.0, 2.0, 3.0}
    for k, val in enumerate(dd):
        near = any(abs(lams[k + 1] - t) < 0.051 for t in kinks)
        assert near or val < 1e-9
    # with a smooth callable R, penalized_least_squares agrees with ridge (R = ½‖x‖²)
    x = penalized_least_squares(A, y, 0.3, lambda v: 0.5 * dnp.sum(v * v))
    np.testing.assert_allclose(x, ridge(A, y, 0.3), atol=1e-7)


# ---------------------------------------------------------------- OPT-50 lasso
def test_opt50_lasso_identity_threshold_and_zero():
    y = np.array([3.0, -0.5, 1.0, -2.5])
    for s in ("ista", "fista", "cd"):
        np.testing.assert_allclose(lasso(np.eye(4), y, 1.0, solver=s), prox_lasso(y, 1.0),
                                   atol=1e-12)
    A, b = _data(30, 10, seed=5)
    lmax = lasso_lambda_max(A, b)
    assert np.all(lasso(A, b, lmax) == 0.0)
    assert np.all(ista(A, b, 1.01 * lmax).solution == 0.0)


def test_opt50_lasso_subgradient_optimality_random():
    A, y = _data(40, 15, seed=6)
    lam = 0.2 * lasso_lambda_max(A, y)
    xs = {s: lasso(A, y, lam, solver=s) for s in ("ista", "fista", "cd")}
    for s, x in xs.items():
        assert lasso_optimality_residual(A, y, lam, x) < 1e-8, s
        assert 0 < np.count_nonzero(x) < 15
    np.testing.assert_allclose(xs["ista"], xs["cd"], atol=1e-8)
    assert lasso_optimality_residual(A, y, lam, np.zeros(15)) > 0.1


# ---------------------------------------------------------------- OPT-49 ista
def test_opt49_ista_monotone_optimal_and_divergent():
    A, y = _data(30, 10, seed=7)
    lam = 0.3 * lasso_lambda_max(A, y)
    r = ista(A, y, lam)
    obj = np.array(r.history["objective"])
    assert np.all(np.diff(obj) <= 1e-12 * abs(obj[0]))
    assert lasso_optimality_residual(A, y, lam, r.solution) < 1e-8
    # non-negative variant
    rn = ista(A, y, lam, nonneg=True)
    assert np.all(rn.solution >= 0)
    assert lasso_optimality_residual(A, y, lam, rn.solution, nonneg=True) < 1e-8
    # τ = 2.05/‖A‖² diverges when the top singular direction is excited
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    ybig = 100 * s[0] * U[:, 0]
    rd = ista(A, ybig, 1e-3, tau=2.05 / s[0] ** 2, maxiter=400, tol=0.0)
    norms = [np.linalg.norm(x) for x in rd.history["params"]]
    assert norms[-1] > 1e3 * norms[5]
    with pytest.raises(ValueError, match="tau"):
        ista(A, y, lam, tau=-1.0)


# ---------------------------------------------------------------- OPT-101 games
def _quad_game(a=1.0, b=2.0, c=1.0):
    return lambda t, e: -0.5 * a * t ** 2 + b * t * e + 0.5 * c * e ** 2


def test_opt101_quadratic_game_saddle_and_stackelberg():
    L = _quad_game()
    assert is_saddle_point(L, 0.0, 0.0)
    assert is_stackelberg(L, 0.0, 0.0)
    assert not is_saddle_point(L, 0.1, 0.0)
    assert not is_stackelberg(L, 0.1, 0.0)
    g = ZeroSumGame(L)
    assert g.value(0.0, 0.0) == 0.0
    assert g.is_saddle_point(0.0, 0.0) and g.is_stackelberg(0.0, 0.0)
    gt, ge = g.grads(1.0, 1.0)
    assert float(gt) == pytest.approx(1.0) and float(ge) == pytest.approx(3.0)
    # wiring: ZeroSumGame.gda is solvers.gda
    r1 = g.gda(1.0, 1.0, 0.05, maxiter=50)
    r2 = gda(L, 1.0, 1.0, 0.05, maxiter=50)
    np.testing.assert_allclose(np.array(r1.history["params"]), np.array(r2.history["params"]))
    r3 = g.gda_unrolled(1.0, 1.0, 0.05, inner_steps=100, maxiter=2000)
    assert abs(float(r3.solution[0])) < 1e-8
    with pytest.raises(TypeError):
        ZeroSumGame(3.0)


def test_opt101_stackelberg_not_saddle_and_separable():
    L = lambda t, e: 0.5 * t ** 2 + t * e + 0.25 * e ** 2  # noqa: E731
    assert is_stackelberg(L, 0.0, 0.0)
    assert not is_saddle_point(L, 0.0, 0.0)
    sep = lambda t, e: -(t - 1.0) ** 2 + (e + 2.0) ** 2  # noqa: E731
    assert is_saddle_point(sep, 1.0, -2.0) and is_stackelberg(sep, 1.0, -2.0)


# ---------------------------------------------------------------- OPT-105
def test_opt105_is_differential_stackelberg():
    assert is_differential_stackelberg(_quad_game(), 0.0, 0.0)
    ok, det = is_differential_stackelberg(lambda t, e: t ** 2 + e ** 2, 0.0, 0.0,
                                          return_details=True)
    assert not ok and det["schur"][0, 0] == pytest.approx(2.0)
    L = lambda t, e: 0.5 * t ** 2 + t * e + 0.25 * e ** 2  # noqa: E731
    ok, det = is_differential_stackelberg(L, 0.0, 0.0, return_details=True)
    assert ok and det["schur"][0, 0] == pytest.approx(-1.0)
    assert not is_differential_stackelberg(_quad_game(), 0.1, 0.0)  # ∇ ≠ 0
    assert not is_differential_stackelberg(lambda t, e: -t ** 2 - e ** 2, 0.0, 0.0)
    # vector parameters
    Lv = lambda t, e: -0.5 * dnp.sum(t * t) + dnp.sum(t * e) + 0.5 * dnp.sum(e * e)  # noqa
    assert is_differential_stackelberg(Lv, np.zeros(2), np.zeros(2))


# ---------------------------------------------------------------- OPT-104
@pytest.mark.parametrize("a,b,c", [(1.0, 2.0, 1.0), (0.5, 1.0, 3.0), (2.0, 0.5, 0.25)])
def test_opt104_condition_numbers_and_two_timescale_contraction(a, b, c):
    L = _quad_game(a, b, c)
    d = local_condition_numbers(L, 0.0, 0.0)
    beta = max(a, c, abs(b))
    mu_eta, mu_theta = c, min(beta, a + b * b / c)
    assert d["beta"] == pytest.approx(beta)
    assert d["kappa_eta"] == pytest.approx(beta / mu_eta)
    assert d["kappa_theta"] == pytest.approx(beta / mu_theta)
    h, T = two_timescale_parameters(L, 0.0, 0.0)
    assert T == math.ceil(2 * beta / mu_eta) and h == pytest.approx(1 / (4 * beta * T))
    rho = float(max(abs(np.linalg.eigvals(gda_jacobian(L, 0.0, 0.0, h, T)))))
    assert rho < 1
    r = gda(L, 1.0, -1.0, h, timescale=T, maxiter=300, tol=0.0)
    z = np.linalg.norm(np.array(r.history["params"]), axis=1)
    observed = (z[-1] / z[100]) ** (1 / (len(z) - 101))
    assert observed < 1 and observed == pytest.approx(rho, rel=1e-2)


def test_opt104_errors_when_not_stackelberg():
    with pytest.raises(ValueError, match="Schur"):
        local_condition_numbers(lambda t, e: t ** 2 + e ** 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        local_condition_numbers(lambda t, e: -t ** 2 - e ** 2, 0.0, 0.0)


# ---------------------------------------------------------------- OPT-106
def test_opt106_check_pl_and_gd_linear_rate():
    f = lambda x: x ** 2 + 3 * dnp.sin(x) ** 2  # noqa: E731  nonconvex, PL with μ = 1/32
    xs = np.linspace(-20, 20, 401)
    mu, beta = 1 / 32, 8.0
    assert check_pl(f, mu, 0.0, xs)
    assert not check_pl(f, 1.0, 0.0, xs)
    assert pl_constant(lambda x: x ** 2, 0.0, xs) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="f_star"):
        pl_constant(f, 1.0, xs)
    r = gradient_descent(f, 3.0, stepsize=1 / beta, maxiter=200, tol=0.0)
    vals = np.array(r.history["value"])
    k = np.arange(vals.size)
    assert np.all(vals <= pl_linear_rate_bound(mu, beta, k, vals[0]) + 1e-15)
    assert vals[-1] < 1e-12
    pos = vals[:-1] > 0
    ratios = vals[1:][pos] / vals[:-1][pos]
    assert ratios.size >= 5 and np.all(ratios < 1 - mu / beta)
