"""Tests of diffprog.optim.solvers (spec OPT-18..25, 38, 43, 52, 55..64, 69..70, 102..103)."""

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.optim.solvers import (
    backtracking_armijo,
    bfgs,
    bfgs_update,
    exact_linesearch,
    fista,
    gauss_newton,
    gda,
    gda_unrolled,
    gradient_descent,
    heavy_ball,
    lbfgs,
    levenberg_marquardt,
    natural_gradient,
    nesterov_agd,
    newton,
    newton_direction,
    projected_gradient,
    proximal_gradient,
    proximal_point,
    sag,
    sgd_with_averaging,
    two_loop_recursion,
    wolfe_linesearch,
)


def soft_threshold(x, lam, scaling):
    return np.sign(x) * np.maximum(np.abs(x) - lam * scaling, 0.0)


def box(x, hp):
    return np.clip(x, hp[0], hp[1])


def rosen(w):
    return dnp.sum(100 * (w[1:] - w[:-1] ** 2) ** 2 + (1 - w[:-1]) ** 2)


@pytest.fixture
def ridge():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 8))
    y = rng.normal(size=40)
    lam = 0.5
    w_star = np.linalg.solve(A.T @ A + lam * np.eye(8), A.T @ y)
    return A, y, lam, w_star


def ridge_fun(A, y, lam):
    return lambda w: 0.5 * dnp.sum((A @ w - y) ** 2) + 0.5 * lam * dnp.sum(w ** 2)


# ---------------------------------------------------------------- line searches
def test_armijo_largest_step():
    f = lambda w: dnp.sum(w ** 4) + dnp.sum(w ** 2)  # noqa: E731
    w = np.array([1.0, -0.7])
    g = np.asarray(diffprog.grad(f)(w))
    r = backtracking_armijo(f, w, g, rho=0.5, c=1e-4)
    fw = float(f(w))
    assert float(f(w - r.stepsize * g)) <= fw - 1e-4 * r.stepsize * g @ g
    assert float(f(w - 2 * r.stepsize * g)) > fw - 1e-4 * 2 * r.stepsize * g @ g
    with pytest.raises(ValueError):
        backtracking_armijo(f, w, -g)
    with pytest.raises(ValueError):
        backtracking_armijo(f, w, g, rho=1.5)


def test_wolfe_rosenbrock():
    w = np.array([-1.2, 1.0])
    g = np.asarray(diffprog.grad(rosen)(w))
    r = wolfe_linesearch(rosen, w, g, c1=1e-4, c2=0.9)
    assert r.success
    gam = r.stepsize
    assert float(rosen(w - gam * g)) <= float(rosen(w)) - 1e-4 * gam * g @ g
    gn = np.asarray(diffprog.grad(rosen)(w - gam * g))
    assert abs(gn @ g) <= 0.9 * g @ g


def test_exact_linesearch_quadratic():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(5, 5))
    A = M @ M.T + np.eye(5)
    f = lambda w: 0.5 * w @ (A @ w)  # noqa: E731
    w = rng.normal(size=5)
    g = A @ w
    for quad in (True, False):
        r = exact_linesearch(f, w, g, quadratic=quad)
        assert abs(r.stepsize - g @ g / (g @ A @ g)) <= 1e-10
    g2 = A @ (w - r.stepsize * g)
    assert abs(g @ g2) <= 1e-10
    res = gradient_descent(f, w, stepsize="exact", maxiter=5, tol=0)
    P = np.array(res.history["params"])
    G = P @ A
    assert np.all(np.abs(np.sum(G[:-1] * G[1:], axis=1)) <= 1e-10)


# ---------------------------------------------------------------- gradient descent
def test_gd_ridge_closed_form(ridge):
    A, y, lam, w_star = ridge
    beta = np.linalg.eigvalsh(A.T @ A).max() + lam
    f = ridge_fun(A, y, lam)
    for step in (None, "armijo", "wolfe"):
        r = gradient_descent(f, np.zeros(8), stepsize=step, smoothness=beta, tol=1e-10,
                             maxiter=5000)
        assert r.converged
        np.testing.assert_allclose(r.solution, w_star, atol=1e-9)


def test_gd_derived_iteration_count():
    f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2  # noqa: E731
    r = gradient_descent(f, np.ones(2), stepsize=1.0, maxiter=200, tol=0)
    norms = [np.abs(p).max() for p in r.history["params"]]
    assert next(t for t, n in enumerate(norms) if n <= 1e-8) == 175


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gd_errors():
    f = lambda w: dnp.sum(w ** 2)  # noqa: E731
    with pytest.raises(ValueError):
        gradient_descent(f, np.ones(2), stepsize=-1.0)
    with pytest.raises(ValueError):
        gradient_descent(f, np.ones(2), stepsize="bogus")
    with pytest.raises(FloatingPointError):
        gradient_descent(f, np.ones(2), stepsize=10.0, maxiter=2000)
    with pytest.raises(FloatingPointError):
        gradient_descent(f, np.array([np.nan, 1.0]))
    with pytest.warns(RuntimeWarning):
        gradient_descent(f, np.ones(2), stepsize=1.0, smoothness=2.0, maxiter=3)


def test_gd_pytree_params():
    f = lambda p: dnp.sum((p["a"] - 1.0) ** 2) + (p["b"] + 2.0) ** 2  # noqa: E731
    r = gradient_descent(f, {"a": np.zeros(3), "b": np.array(0.0)}, stepsize=0.25, tol=1e-10)
    np.testing.assert_allclose(r.solution["a"], 1.0, atol=1e-9)
    np.testing.assert_allclose(r.solution["b"], -2.0, atol=1e-9)


def _rank_deficient_ls():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(30, 20)) @ np.diag(np.r_[np.logspace(0, -2, 15), np.zeros(5)])
    y = rng.normal(size=30)
    x_star = np.linalg.pinv(A) @ y
    f_star = 0.5 * np.sum((A @ x_star - y) ** 2)
    beta = np.linalg.eigvalsh(A.T @ A).max()
    return (lambda w: 0.5 * dnp.sum((A @ w - y) ** 2)), x_star, f_star, beta


def test_gd_and_nesterov_rates():
    f, x_star, f_star, beta = _rank_deficient_ls()
    x0 = np.ones(20)
    R2 = np.sum((x0 - x_star) ** 2)
    T = 300
    gd = gradient_descent(f, x0, stepsize=1 / beta, maxiter=T, tol=0)
    ag = nesterov_agd(f, x0, stepsize=1 / beta, maxiter=T, tol=0)
    gap_gd = np.array(gd.history["value"]) - f_star
    gap_ag = np.array(ag.history["value"]) - f_star
    t = np.arange(1, T + 1)
    assert np.all(gap_gd[1:] <= beta * R2 / (2 * t) + 1e-12)
    assert np.all(gap_ag[1:] <= 2 * beta * R2 / (t + 1) ** 2 + 1e-12)
    assert gap_ag[-1] < gap_gd[-1]


def test_heavy_ball_zero_momentum_is_gd():
    f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2  # noqa: E731
    a = heavy_ball(f, np.ones(2), 1.0, 0.0, maxiter=20, tol=0)
    b = gradient_descent(f, np.ones(2), stepsize=1.0, maxiter=20, tol=0)
    np.testing.assert_allclose(a.history["params"], b.history["params"], atol=1e-15)


# ---------------------------------------------------------------- proximal / projected
def _lasso():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(50, 20))
    y = A @ np.r_[rng.normal(size=5), np.zeros(15)] + 0.1 * rng.normal(size=50)
    lam = 5.0
    beta = np.linalg.eigvalsh(A.T @ A).max()
    return A, y, lam, beta


def _lasso_residual(A, y, lam, x):
    g = A.T @ (y - A @ x)  # must lie in lam * ∂‖x‖₁
    nz = x != 0
    r1 = np.abs(g[nz] - lam * np.sign(x[nz]))
    r2 = np.maximum(np.abs(g[~nz]) - lam, 0)
    return max(r1.max(initial=0), r2.max(initial=0))


@pytest.mark.parametrize("accel", [False, True])
def test_lasso_optimality(accel):
    A, y, lam, beta = _lasso()
    f = lambda w: 0.5 * dnp.sum((A @ w - y) ** 2)  # noqa: E731
    r = proximal_gradient(f, np.zeros(20), soft_threshold, lam, stepsize=1 / beta,
                          acceleration=accel, tol=1e-10, maxiter=20000)
    assert r.converged
    assert _lasso_residual(A, y, lam, r.solution) <= 1e-8
    assert np.sum(r.solution == 0) > 0
    if not accel:  # monotone decrease with γ = 1/β
        obj = [v + lam * np.abs(p).sum() for v, p in zip(r.history["value"],
                                                         r.history["params"], strict=True)]
        assert np.all(np.diff(obj) <= 1e-10)
    r2 = fista(f, np.zeros(20), soft_threshold, lam, tol=1e-10, maxiter=20000)  # backtracking
    assert _lasso_residual(A, y, lam, r2.solution) <= 1e-8


def test_projected_gradient_box(ridge):
    A, y, lam, _ = ridge
    f = ridge_fun(A, y, lam)
    r = projected_gradient(f, np.zeros(8), box, (-0.05, 0.05), tol=1e-10, maxiter=20000)
    x = r.solution
    assert np.all(np.abs(x) <= 0.05)
    g = np.asarray(diffprog.grad(f)(x))
    for gam in (0.01, 0.1, 1.0):  # fixed-point residual (OPT-09)
        assert np.linalg.norm(x - box(x - gam * g, (-0.05, 0.05))) <= 1e-8


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_proximal_point():
    rng = np.random.default_rng(5)
    M = rng.normal(size=(4, 4))
    A = M @ M.T + np.eye(4)
    b = rng.normal(size=4)
    f = lambda w: 0.5 * w @ (A @ w) - b @ w  # noqa: E731
    w0 = rng.normal(size=4)
    one = proximal_point(f, w0, stepsize=0.5, maxiter=1)
    np.testing.assert_allclose(one.solution, np.linalg.solve(np.eye(4) + 0.5 * A, w0 + 0.5 * b),
                               atol=1e-8)
    r = proximal_point(f, w0, stepsize=1e6, maxiter=20, tol=1e-12,
                       inner_solver=lambda g, v: newton(g, v, maxiter=3, tol=1e-12))
    np.testing.assert_allclose(r.solution, np.linalg.solve(A, b), atol=1e-8)
    with pytest.raises(FloatingPointError):
        gradient_descent(f, w0, stepsize=1e6, maxiter=50)


# ---------------------------------------------------------------- Newton
def _logreg(n=200, p=5, seed=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    yy = np.where(X @ rng.normal(size=p) + rng.normal(size=n) > 0, 1.0, -1.0)
    return lambda w: dnp.mean(dnp.log1p(dnp.exp(-yy * (X @ w)))) + 1e-3 * dnp.sum(w ** 2)


def test_newton_quadratic_one_step():
    A = np.array([[20.0, 1.0], [1.0, 1.0]])
    b = np.array([1.0, 2.0])
    r = newton(lambda w: 0.5 * w @ (A @ w) - b @ w, np.zeros(2), maxiter=1)
    np.testing.assert_allclose(r.solution, np.linalg.solve(A, b), atol=1e-12)


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_newton_quadratic_convergence(solver):
    f = _logreg()
    w_star = newton(f, np.zeros(5), tol=1e-14, maxiter=50).solution
    r = newton(f, np.zeros(5), linear_solver=solver, solver_tol=1e-12, tol=1e-13, maxiter=30)
    e = np.array([np.linalg.norm(p - w_star) for p in r.history["params"]])
    e = e[e > 1e-12]
    assert len(e) >= 3
    ratios = e[1:] / e[:-1] ** 2
    assert np.all(ratios <= 10.0)
    assert e[-1] / e[-2] < 1e-2  # superlinear


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_newton_linesearch_sqrt():
    f = lambda w: dnp.sum(dnp.sqrt(1 + w ** 2))  # noqa: E731
    with pytest.raises(FloatingPointError):
        newton(f, np.array([1.5]), maxiter=30)
    r = newton(f, np.array([1.5]), linesearch="armijo", tol=1e-12)
    assert abs(r.solution[0]) < 1e-10
    steps = r.history["stepsize"]
    assert steps[0] < 1 and steps[-1] == 1.0


def test_newton_direction_fixes():
    f = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4  # noqa: E731
    w = np.array([0.1, 0.1])
    H = np.asarray(diffprog.hessian(f)(w))
    g = np.asarray(diffprog.grad(f)(w))
    assert abs((w - newton_direction(H, g))[1] + 0.004) < 3e-4  # derived ≈ −0.004
    d = newton_direction(H, g, reg=3.0)
    assert g @ d > 0 and (w - d)[1] > 0.1
    d = newton_direction(H, g, hessian_fix="abs")
    assert float(f(w - d)) < float(f(w))
    with pytest.raises(ValueError):
        newton_direction(H, g, hessian_fix="bogus")


def test_newton_cg_matches_dense_direction():
    rng = np.random.default_rng(7)
    M = rng.normal(size=(50, 50))
    A = M @ M.T + 50 * np.eye(50)
    b = rng.normal(size=50)
    f = lambda w: 0.5 * w @ (A @ w) - b @ w + 0.01 * dnp.sum(w ** 4)  # noqa: E731
    w0 = rng.normal(size=50)
    r1 = newton(f, w0, maxiter=1, solver_tol=1e-14, linear_solver="cg")
    r2 = newton(f, w0, maxiter=1)
    np.testing.assert_allclose(r1.solution, r2.solution, atol=1e-8)
    assert r1.num_hvp_evals <= 50
    with pytest.raises(ValueError):
        newton(f, w0, linear_solver="gmresx")


# ---------------------------------------------------------------- quasi-Newton
def test_bfgs_secant_and_pd():
    r = bfgs(rosen, np.array([-1.2, 1.0]), tol=1e-10)
    assert r.converged and r.iterations < 100
    np.testing.assert_allclose(r.solution, 1.0, atol=1e-8)
    assert max(r.history["secant_residual"]) <= 1e-10
    for B in r.history["inv_hessian"]:
        np.testing.assert_allclose(B, B.T, atol=1e-12)
        assert np.linalg.eigvalsh(B).min() > 0
    rng = np.random.default_rng(8)
    B = np.eye(4)
    for _ in range(5):
        s, y = rng.normal(size=4), rng.normal(size=4)
        if s @ y < 0:
            y = -y
        B = bfgs_update(B, s, y)
        assert np.linalg.norm(B @ y - s) <= 1e-10 * np.linalg.norm(s)
    with pytest.raises(ValueError):
        bfgs_update(np.eye(2), np.array([1.0, 0]), np.array([-1.0, 0]))


def test_two_loop_equals_dense_bfgs():
    rng = np.random.default_rng(9)
    S = [rng.normal(size=6) for _ in range(4)]
    Y = [s + 0.3 * rng.normal(size=6) for s in S]
    gamma = 0.7
    B = gamma * np.eye(6)
    for s, y in zip(S, Y, strict=True):
        B = bfgs_update(B, s, y)
    v = rng.normal(size=6)
    np.testing.assert_allclose(two_loop_recursion(v, S, Y, gamma), B @ v, atol=1e-10)


def test_lbfgs_vs_gd_and_ridge(ridge):
    A, y, lam, w_star = ridge
    r = lbfgs(ridge_fun(A, y, lam), np.zeros(8), tol=1e-10)
    np.testing.assert_allclose(r.solution, w_star, atol=1e-9)
    f = _logreg(300, 20, 10)
    rl = lbfgs(f, np.zeros(20), tol=1e-8)
    rg = gradient_descent(f, np.zeros(20), stepsize="armijo", tol=1e-8, maxiter=20000)
    assert rl.converged and rg.converged
    assert 10 * rl.num_fun_evals <= rg.num_fun_evals
    with pytest.raises(ValueError):
        lbfgs(f, np.zeros(20), memory=0)


# ---------------------------------------------------------------- least squares
def test_gauss_newton_exponential_fit():
    t = np.linspace(0, 1, 10)
    y = 2.0 * np.exp(0.7 * t)
    r = gauss_newton(lambda w: w[0] * dnp.exp(w[1] * t) - y, np.array([1.8, 0.6]), maxiter=20)
    np.testing.assert_allclose(r.solution, [2.0, 0.7], atol=1e-10)
    A = np.vander(t, 3)
    lin = gauss_newton(lambda w: A @ w - y, np.zeros(3), maxiter=1)
    np.testing.assert_allclose(lin.solution, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-10)


def test_levenberg_marquardt_rosenbrock():
    res = lambda w: dnp.stack([10 * (w[1] - w[0] ** 2), 1 - w[0]])  # noqa: E731
    r = levenberg_marquardt(res, np.array([-1.2, 1.0]))
    np.testing.assert_allclose(r.solution, 1.0, atol=1e-8)
    # huge fixed damping: step ≈ (1/η)∇L
    w0 = np.array([-1.2, 1.0])
    big = levenberg_marquardt(res, w0, damping=1e8, adaptive=False, maxiter=1)
    g = np.asarray(diffprog.grad(lambda w: 0.5 * dnp.sum(res(w) ** 2))(w0))
    np.testing.assert_allclose(w0 - big.solution, g / 1e8, rtol=1e-5)


# ---------------------------------------------------------------- min-max
def test_gda_bilinear_spirals_out():
    r = gda(lambda a, b: a * b, 1.0, 1.0, 0.1, maxiter=200)
    radii = np.linalg.norm(np.array(r.history["params"]), axis=1)
    np.testing.assert_allclose(radii[1:] / radii[:-1], np.sqrt(1 + 0.01), rtol=1e-10)


def test_gda_quadratic_game_and_stackelberg():
    L = lambda th, et: -0.5 * th ** 2 + 2 * th * et + 0.5 * et ** 2  # noqa: E731
    r = gda(L, 1.0, 1.0, 0.05, maxiter=2000)
    P = np.array(r.history["params"])
    rad = np.linalg.norm(P, axis=1)
    np.testing.assert_allclose(rad[-1] / rad[-2], np.sqrt(0.9125), rtol=1e-3)
    st = gda_unrolled(L, 1.0, 1.0, 0.05, inner_steps=200, maxiter=2000)
    assert st.converged
    assert abs(float(st.solution[0])) < 1e-8 and abs(float(st.solution[1])) < 1e-8
    # Stackelberg variant also converges on a bilinear-plus-strongly-convex follower, where
    # simultaneous GDA with the same step spirals outward
    Lb = lambda th, et: th * et + 0.05 * et ** 2  # noqa: E731
    st2 = gda_unrolled(Lb, 1.0, 1.0, 0.15, inner_steps=300, inner_stepsize=1.0, maxiter=3000)
    assert abs(float(st2.solution[0])) < 1e-6
    sim = gda(Lb, 1.0, 1.0, 0.15, maxiter=500)  # det = 1.0075 > 1
    assert np.linalg.norm(sim.history["params"][-1]) > 1.0
    with pytest.raises(ValueError):
        gda(L, 1.0, 1.0, 0.1, mode="bogus")


# ---------------------------------------------------------------- stochastic, natural gradient
def test_sag_linear_rate_vs_sga():
    rng = np.random.default_rng(11)
    n, p, lam = 100, 5, 0.1
    X = rng.normal(size=(n, p))
    y = np.where(X @ rng.normal(size=p) > 0, 1.0, -1.0)

    def grad_i(w, i):
        s = y[i] * (X[i] @ w)
        return -y[i] * X[i] / (1 + np.exp(s)) + lam * w

    f = lambda w: dnp.mean(dnp.log1p(dnp.exp(-y * (X @ w)))) + 0.5 * lam * dnp.sum(w ** 2)  # noqa: E731
    w_star = newton(f, np.zeros(p), tol=1e-14).solution
    f_star = float(f(w_star))
    L = 0.25 * np.max(np.sum(X ** 2, axis=1)) + lam
    r = sag(None, n, np.zeros(p), 1 / (16 * L), grad_i=grad_i, maxiter=80 * n, rng=0)
    gaps = [float(f(w)) - f_star for w in r.history["params"]]
    assert gaps[-1] <= 1e-10
    a = sgd_with_averaging(None, n, np.zeros(p), 1 / (16 * L), grad_i=grad_i, maxiter=80 * n,
                           rng=0)
    assert float(f(a.solution)) - f_star > 1e-8
    # running average equals the mean of the raw iterates
    c = np.array([1.0, 2.0, 3.0])
    b = sgd_with_averaging(None, 3, np.zeros(1), 0.3, grad_i=lambda w, i: w - c[i], maxiter=30,
                           rng=1, record_every=1)
    np.testing.assert_allclose(b.solution, np.mean(b.history["raw"], axis=0), atol=1e-12)


def test_natural_gradient_equals_gauss_newton():
    t = np.linspace(0, 1, 10)
    y = 2.0 * np.exp(0.7 * t)
    res = lambda w: w[0] * dnp.exp(w[1] * t) - y  # noqa: E731
    f = lambda w: 0.5 * dnp.sum(res(w) ** 2)  # noqa: E731

    def ggn(w):
        J = np.asarray(diffprog.jacfwd(res)(w))
        return J.T @ J

    w0 = np.array([1.8, 0.6])
    a = natural_gradient(f, w0, ggn, reg=0.0, maxiter=1)
    b = gauss_newton(res, w0, maxiter=1)
    np.testing.assert_allclose(a.solution, b.solution, atol=1e-10)
