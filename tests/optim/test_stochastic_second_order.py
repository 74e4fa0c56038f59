"""Spec rows OPT-35, 36, 37, 60, 61, 65, 71 (ch. 15–18): stochastic and second-order solvers."""

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import gauss_newton as ggn
from diffprog.optim import StochasticOracle, projection_simplex
from diffprog.optim.solvers import gauss_newton as gn_solver
from diffprog.optim.solvers import newton
from diffprog.optim.solvers.stochastic_second_order import (
    diag_hessian_preconditioner,
    preconditioned_gradient_descent,
    preconditioned_step,
    prox_linear,
    psgd,
    stochastic_gauss_newton,
    stochastic_newton,
    stochastic_projected_gradient,
    stochastic_proximal_gradient,
    subsampled_oracles,
)


def _soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


# ----------------------------------------------------------------------------- OPT-35

def test_opt35_stochastic_projected_gradient_iterates_feasible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) + np.arange(5)
    oracle = StochasticOracle(lambda w, x: 0.5 * dnp.sum((w - x) ** 2, axis=1), X,
                              batch_size=4, rng=1)
    r = stochastic_projected_gradient(oracle, 3 * np.ones(5),
                                      lambda x, hp: projection_simplex(x), stepsize=0.3,
                                      maxiter=60)
    for w in r.history["params"]:
        assert np.all(w >= -1e-12) and abs(w.sum() - 1.0) < 1e-12
    # the simplex-constrained minimizer of the full loss is proj_Δ(mean X) = e_5 here
    np.testing.assert_allclose(r.solution, projection_simplex(X.mean(0)), atol=1e-8)


def test_opt35_stochastic_proximal_gradient_full_batch_matches_closed_form():
    # L = ½‖w − 3‖² with Ω = ‖·‖₁: prox-grad fixed point is soft(3, 1) = 2; noisy oracle too
    rng = np.random.default_rng(2)
    r = stochastic_proximal_gradient(lambda w: w - 3.0 + 0.01 * rng.normal(size=3), np.zeros(3),
                                     lambda x, lam, s: _soft(x, lam * s), 1.0,
                                     stepsize=lambda t: 1.0 / (t + 1), maxiter=300)
    np.testing.assert_allclose(r.solution, 2.0, atol=5e-3)
    with pytest.raises(TypeError):
        stochastic_proximal_gradient(42, np.zeros(2))


# ----------------------------------------------------------------------------- OPT-36

def test_opt36_preconditioned_step_identity_is_gd_and_inverse_hessian_is_one_step():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    w = np.array([5.0, -7.0])
    g = A @ w - b
    np.testing.assert_allclose(preconditioned_step(w, g, None, 0.1), w - 0.1 * g, atol=1e-15)
    np.testing.assert_allclose(preconditioned_step(w, g, np.ones(2), 0.1), w - 0.1 * g)
    wstar = np.linalg.solve(A, b)
    Ainv = np.linalg.inv(A)
    np.testing.assert_allclose(preconditioned_step(w, g, Ainv, 1.0), wstar, atol=1e-12)
    np.testing.assert_allclose(preconditioned_step(w, g, lambda v: Ainv @ v, 1.0), wstar,
                               atol=1e-12)
    tree = preconditioned_step({"a": w}, {"a": g}, Ainv)
    np.testing.assert_allclose(tree["a"], wstar, atol=1e-12)
    with pytest.raises(ValueError):
        preconditioned_step(w, g, np.eye(3))


# ----------------------------------------------------------------------------- OPT-37

@pytest.mark.parametrize("representation", ["diagonal", "dense"])
def test_opt37_psgd_learns_inverse_hessian(representation):
    A = np.diag([20.0, 1.0])
    r = psgd(lambda w: 0.5 * dnp.dot(w, dnp.dot(A, w)), np.ones(2), stepsize=0.02,
             representation=representation, precond_lr=0.02, maxiter=200, rng=0)
    P = r.history["precond"][-1]
    P = np.diag(P) if P.ndim == 1 else P
    assert np.linalg.norm(P @ A - np.eye(2)) < 0.1
    assert r.history["value"][-1] < 1e-4 * r.history["value"][0]


def test_opt37_psgd_errors():
    with pytest.raises(ValueError, match="low-rank"):
        psgd(lambda w: dnp.sum(w ** 2), np.ones(2), representation="kronecker")


# ----------------------------------------------------------------------------- OPT-60

def _logreg_problem(n=40, p=3, lam=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (rng.uniform(size=n) < 0.5).astype(float) * 2 - 1

    def loss_i(w, batch):
        Xb, yb = batch
        return dnp.logaddexp(0.0, -yb * dnp.dot(Xb, w)) + 0.5 * lam * dnp.sum(w ** 2)

    def full(w):
        return loss_i(w, (X, y)).mean()
    return X, y, loss_i, full


def test_opt60_per_sample_hessians_average_to_full_hessian():
    X, y, loss_i, full = _logreg_problem()
    w = np.array([0.3, -0.2, 0.5])
    Hs = [np.asarray(diffprog.hessian(lambda v, i=i: loss_i(v, (X[i:i + 1], y[i:i + 1])).sum())(w))
          for i in range(X.shape[0])]
    np.testing.assert_allclose(np.mean(Hs, axis=0), diffprog.hessian(full)(w), atol=1e-12)


def test_opt60_full_batch_reproduces_newton_iterates():
    X, y, loss_i, full = _logreg_problem()
    go, ho = subsampled_oracles(loss_i, (X, y))
    r = stochastic_newton(go, ho, np.zeros(3), maxiter=5, fun=full)
    ref = newton(full, np.zeros(3), maxiter=5, tol=0.0)
    for a, b in zip(r.history["params"], ref.history["params"], strict=False):
        np.testing.assert_allclose(a, b, atol=1e-13)
    np.testing.assert_allclose(r.solution, ref.solution, atol=1e-13)


def test_opt60_subsampled_hessian_linear_convergence():
    X, y, loss_i, full = _logreg_problem(n=40)
    wstar = newton(full, np.zeros(3), maxiter=50, tol=1e-14).solution
    go, ho = subsampled_oracles(loss_i, (X, y), grad_batch_size=None, hess_batch_size=10)
    r = stochastic_newton(go, ho, np.zeros(3), maxiter=25, rng=0)
    errs = np.array([np.linalg.norm(w - wstar) for w in r.history["params"]])
    assert errs[-1] < 1e-10
    # linear: after the first step, errors contract by a factor bounded away from 1
    ratios = errs[2:12] / errs[1:11]
    assert np.all(ratios < 0.8)
    assert np.all(errs[12:] <= errs[1] * 0.8 ** np.arange(11, len(errs) - 1) + 1e-13)
    with pytest.raises(ValueError):
        subsampled_oracles(loss_i, (X, y), hess_batch_size=100)


# ----------------------------------------------------------------------------- OPT-61

def test_opt61_prox_linear_quadratic_linear_one_step_is_least_squares():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(8, 3))
    y = rng.normal(size=8)
    r = prox_linear(lambda z: 0.5 * dnp.sum((z - y) ** 2), lambda w: dnp.dot(A, w),
                    np.ones(3), eta=1e-12, maxiter=1)
    np.testing.assert_allclose(r.solution, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-9)


def test_opt61_prox_linear_l1_objective_decreases_monotonically():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(15, 2))
    wtrue = np.array([1.0, -2.0])
    y = A @ wtrue
    y[:3] += 10.0  # outliers

    def f(w):
        return dnp.dot(A, w) + 0.1 * dnp.sin(w[0])   # mildly nonlinear model

    def ell(z):
        return dnp.sum(dnp.abs(z - y))

    r = prox_linear(ell, f, np.zeros(2), eta=1.0, prox_loss=lambda z, s: y + _soft(z - y, s),
                    maxiter=30)
    vals = np.array(r.history["value"])
    assert np.all(np.diff(vals) <= 1e-10 * np.abs(vals[:-1]))
    assert vals[-1] < 0.55 * vals[0]     # the 3 outliers of size 10 cost ≈ 30 at the optimum


# ----------------------------------------------------------------------------- OPT-65

def _nls_problem(n=12, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    Y = np.tanh(X @ np.array([0.8, -0.5])) + 0.01 * rng.normal(size=n)

    def f(w, x):
        return dnp.tanh(dnp.dot(x, w))

    def loss(t, yy):
        return 0.5 * (t - yy) ** 2
    return X, Y, f, loss


def test_opt65_mean_of_per_sample_ggn_equals_full_batch_ggn():
    X, Y, f, loss = _nls_problem()
    w = np.array([0.3, 0.1])
    per = [ggn(lambda v, i=i: f(v, X[i]), lambda t, i=i: loss(t, Y[i]), w)
           for i in range(X.shape[0])]
    full = ggn(lambda v: dnp.tanh(dnp.dot(X, v)),
               lambda t: dnp.mean(0.5 * (t - Y) ** 2), w)
    # full-batch GGN of (1/n)Σℓ: ∇²ℓ_total = I/n
    np.testing.assert_allclose(np.mean(per, axis=0), full, atol=1e-12)
    np.testing.assert_allclose(ggn(f, loss, w, batch=(X, Y)), full, atol=1e-12)


def test_opt65_full_batch_matches_gauss_newton_solver():
    X, Y, f, loss = _nls_problem()
    r = stochastic_gauss_newton(f, loss, np.zeros(2), (X, Y), maxiter=4)
    ref = gn_solver(lambda w: dnp.tanh(dnp.dot(X, w)) - Y, np.zeros(2), maxiter=4, tol=0.0)
    np.testing.assert_allclose(r.solution, ref.solution, atol=1e-10)
    rs = stochastic_gauss_newton(f, loss, np.zeros(2), (X, Y), grad_batch_size=None,
                                 ggn_batch_size=6, reg=1e-6, maxiter=30, rng=0)
    np.testing.assert_allclose(rs.solution, ref.solution, atol=1e-4)


# ----------------------------------------------------------------------------- OPT-71

def test_opt71_diag_preconditioned_gd_one_step_axis_aligned_not_rotated():
    a, b = 100.0, 1.0

    def f(w):
        return 0.5 * a * w[0] ** 2 + 0.5 * b * w[1] ** 2

    B = diag_hessian_preconditioner(f)
    np.testing.assert_allclose(B(np.ones(2)), [1 / a, 1 / b])
    r = preconditioned_gradient_descent(f, np.array([1.0, -3.0]), ("at", B), stepsize=1.0)
    assert r.iterations == 1 and np.allclose(r.solution, 0.0, atol=1e-14)
    c, s = np.cos(0.5), np.sin(0.5)
    R = np.array([[c, -s], [s, c]])
    H = R @ np.diag([a, b]) @ R.T

    def frot(w):
        return 0.5 * dnp.dot(w, dnp.dot(H, w))

    w0 = np.array([1.0, -3.0])
    w1 = preconditioned_step(w0, H @ w0, diag_hessian_preconditioner(frot)(w0), 1.0)
    assert np.linalg.norm(w1) > 0.1
    # Hutchinson with Rademacher probes is exact on a diagonal Hessian
    Bh = diag_hessian_preconditioner(f, method="hutchinson", num_samples=4, rng=0)
    np.testing.assert_allclose(Bh(np.ones(2)), [1 / a, 1 / b], atol=1e-12)
    with pytest.raises(ValueError, match="becker_lecun"):
        diag_hessian_preconditioner(f, method="becker_lecun")
