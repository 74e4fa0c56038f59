"""Tests of diffprog.optim.solvers.more_first_order (spec OPT-21, 26, 27, 51, 53, 54)."""

import numpy as np
import pytest

import diffprog.numpy as dnp
from diffprog.optim.projections import projection_simplex
from diffprog.optim.solvers.first_order import gradient_descent, projected_gradient
from diffprog.optim.solvers.more_first_order import (
    anderson_acceleration,
    armijo_sgd,
    frank_wolfe,
    lmo,
    majorize_minimize,
    mirror_descent,
    prox_grad_fixed_point_fun,
    prox_quadratic_majorizer,
    quadratic_majorizer,
    sign_gradient_descent,
    steepest_descent_direction,
)


def _soft(x, lam, s):
    return np.sign(x) * np.maximum(np.abs(x) - lam * s, 0.0)


# ------------------------------------------------------------------ OPT-21 armijo_sgd
def _ls(w, a, b):
    return 0.5 * dnp.mean((a @ w - b) ** 2)


def test_opt21_armijo_sgd_interpolating_least_squares():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 5)) * np.array([1.0, 2.0, 0.5, 3.0, 1.0])
    x_true = rng.normal(size=5)
    y = A @ x_true  # interpolation: every sample loss is minimized at x_true
    r = armijo_sgd(_ls, np.zeros(5), (A, y), batch_size=10, maxiter=3000, tol=1e-9, rng=1)
    assert float(_ls(r.solution, A, y)) <= 1e-10
    assert np.allclose(r.solution, x_true, atol=1e-5)
    assert r.converged


def test_opt21_armijo_sgd_accepts_only_armijo_steps_on_minibatch():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(40, 3))
    y = A @ np.array([1.0, -2.0, 0.5])
    c = 0.5
    r = armijo_sgd(_ls, np.zeros(3), (A, y), batch_size=5, maxiter=50, tol=0.0, c=c,
                   stepsize0=100.0, rng=3)
    h = r.history
    assert len(h["stepsize"]) == 50 and all(h["accepted"])
    for k in range(50):
        w, idx, gam = h["params"][k], h["batch"][k], h["stepsize"][k]
        a, b = A[idx], y[idx]
        g = a.T @ (a @ w - b) / len(idx)
        f0 = float(_ls(w, a, b))
        f1 = float(_ls(w - gam * g, a, b))
        assert f1 <= f0 - c * gam * float(g @ g) + 1e-12


def test_opt21_armijo_sgd_errors():
    A = np.ones((4, 2))
    with pytest.raises(ValueError, match="batch_size"):
        armijo_sgd(_ls, np.zeros(2), (A, np.ones(4)), batch_size=10)
    with pytest.raises(ValueError, match="disagree"):
        armijo_sgd(_ls, np.zeros(2), (A, np.ones(3)), batch_size=2)
    with pytest.raises(ValueError, match="c must"):
        armijo_sgd(_ls, np.zeros(2), (A, np.ones(4)), batch_size=2, c=1.5)


# ------------------------------------------------------------------ OPT-26 steepest descent
def test_opt26_steepest_direction_l2_linf_l1():
    g = np.array([0.5, -2.0, 0.0, 1.5])
    assert np.allclose(steepest_descent_direction(g, 2), -g / np.linalg.norm(g))
    v = steepest_descent_direction(g, np.inf)
    assert np.array_equal(v, -np.sign(g))
    assert np.isclose(g @ v, -np.abs(g).sum())  # attains −‖g‖₁ (dual of ℓ∞)
    v1 = steepest_descent_direction(g, 1)
    assert np.count_nonzero(v1) == 1 and v1[1] == 1.0  # one coordinate moves
    assert np.isclose(g @ v1, -np.abs(g).max())  # attains −‖g‖_∞ (dual of ℓ1)
    # optimality against random feasible directions
    rng = np.random.default_rng(0)
    for norm, v_opt in ((2, steepest_descent_direction(g, 2)), (np.inf, v), (1, v1)):
        for _ in range(200):
            u = rng.normal(size=4)
            u /= np.linalg.norm(u, ord=norm)
            assert g @ u >= g @ v_opt - 1e-12
    assert np.array_equal(steepest_descent_direction(np.zeros(3), 1), np.zeros(3))
    tree = steepest_descent_direction({"a": np.array([1.0, -3.0]), "b": 2.0}, "linf")
    assert np.array_equal(tree["a"], [-1.0, 1.0]) and float(tree["b"]) == -1.0
    with pytest.raises(ValueError, match="unknown norm"):
        steepest_descent_direction(g, 3)


def test_opt26_sign_gd_moves_each_coordinate_by_h():
    c = np.array([1.0, -0.73, 0.26, 2.0])
    h = 0.1
    r = sign_gradient_descent(lambda w: 0.5 * dnp.sum((w - c) ** 2), np.zeros(4), h,
                              maxiter=40, tol=0.0)
    P = np.array(r.history["params"])
    for k in range(len(P) - 1):
        far = np.abs(P[k] - c) >= h
        assert np.allclose(np.abs(P[k + 1] - P[k])[far], h)
    assert np.all(np.abs(P[-1] - c) <= h + 1e-12)


# ------------------------------------------------------------------ OPT-27 MM
def test_opt27_mm_quadratic_bound_equals_gd_one_over_L():
    Q = np.diag([1.0, 4.0, 10.0])
    b = np.array([1.0, -1.0, 2.0])

    def f(w):
        return 0.5 * w @ (Q @ w) - b @ w

    w0 = np.array([3.0, -2.0, 1.0])
    mm = majorize_minimize(quadratic_majorizer(f, 10.0), w0, fun=f, maxiter=30, tol=0.0)
    gd = gradient_descent(f, w0, stepsize=0.1, maxiter=30, tol=0.0)
    assert np.allclose(np.array(mm.history["params"]), np.array(gd.history["params"]),
                       atol=1e-12)
    assert np.all(np.diff(mm.history["value"]) <= 1e-12)


def test_opt27_ista_objective_non_increasing():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 15))
    y = rng.normal(size=30)
    lam = 0.5
    L = np.linalg.norm(A, 2) ** 2

    def smooth(w):
        return 0.5 * dnp.sum((A @ w - y) ** 2)

    def obj(w):
        return 0.5 * np.sum((A @ w - y) ** 2) + lam * np.sum(np.abs(w))

    def ista(w):  # plain NumPy ISTA step, τ = 1/‖A‖²
        return _soft(w - A.T @ (A @ w - y) / L, lam, 1.0 / L)

    r = majorize_minimize(ista, np.zeros(15), fun=obj, maxiter=1000, tol=0.0)
    v = np.array(r.history["value"])
    assert len(v) == 1001
    assert np.all(np.diff(v) <= 1e-12 * np.maximum(1.0, np.abs(v[:-1])))
    # the autodiff-based majorizer gives the same steps
    step = prox_quadratic_majorizer(smooth, _soft, L, lam)
    w = rng.normal(size=15)
    assert np.allclose(step(w), ista(w), atol=1e-12)


def test_opt27_mm_warns_on_non_majorizer():
    f = lambda w: dnp.sum(w ** 2)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="not a majorizer"):
        majorize_minimize(lambda w: 2.0 * w + 1.0, np.ones(2), fun=f, maxiter=3)
    with pytest.raises(TypeError):
        majorize_minimize(None, np.ones(2))


# ------------------------------------------------------------------ OPT-51 Anderson
def test_opt51_anderson_linear_contraction_fewer_iterations():
    rng = np.random.default_rng(0)
    Qm, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    M = Qm @ np.diag(np.linspace(0.0, 0.98, 20)) @ Qm.T
    b = rng.normal(size=20)
    x_star = np.linalg.solve(np.eye(20) - M, b)

    def T(x):
        return M @ x + b

    plain = majorize_minimize(T, np.zeros(20), maxiter=5000, tol=1e-9)
    aa = anderson_acceleration(T, np.zeros(20), history=5, tol=1e-9, maxiter=5000)
    assert plain.converged and aa.converged
    assert aa.iterations < plain.iterations / 3
    assert np.allclose(aa.solution, x_star, atol=1e-7)
    assert np.allclose(plain.solution, x_star, atol=1e-7)


def test_opt51_anderson_ista_lasso_kappa_1000():
    rng = np.random.default_rng(1)
    n, p = 60, 20
    U, _ = np.linalg.qr(rng.normal(size=(n, p)))
    V, _ = np.linalg.qr(rng.normal(size=(p, p)))
    A = U @ np.diag(np.sqrt(np.geomspace(1.0, 1000.0, p))) @ V.T  # κ(AᵀA) = 1000
    y = A @ (rng.normal(size=p) * (rng.random(p) < 0.5)) + 0.01 * rng.normal(size=n)
    lam = 0.1
    L = 1000.0

    def ista(w):
        return _soft(w - A.T @ (A @ w - y) / L, lam, 1.0 / L)

    plain = majorize_minimize(ista, np.zeros(p), maxiter=30000, tol=1e-8)
    aa = anderson_acceleration(ista, np.zeros(p), history=5, maxiter=30000, tol=1e-8)
    assert aa.converged and plain.converged
    assert aa.iterations < plain.iterations
    assert np.allclose(aa.solution, plain.solution, atol=1e-5)
    # subgradient optimality of the lasso at the Anderson solution
    w = aa.solution
    g = A.T @ (A @ w - y)
    on = w != 0
    assert np.allclose(g[on], -lam * np.sign(w[on]), atol=1e-4)
    assert np.all(np.abs(g[~on]) <= lam + 1e-4)


def test_opt51_prox_grad_fixed_point_fun_wrapper():
    c = np.array([3.0, -0.2, 1.0])
    T = prox_grad_fixed_point_fun(lambda w: 0.5 * dnp.sum((w - c) ** 2), _soft, 0.5, 0.5)
    r = anderson_acceleration(T, np.zeros(3), tol=1e-12)
    assert np.allclose(r.solution, _soft(c, 0.5, 1.0))
    with pytest.raises(ValueError, match="history"):
        anderson_acceleration(T, np.zeros(3), history=-1)


# ------------------------------------------------------------------ OPT-53 Frank-Wolfe
def _simplex_qp(seed=0, p=10):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(p, p))
    Q = B @ B.T / p + 0.1 * np.eye(p)
    q = rng.normal(size=p)
    return Q, q, float(np.linalg.eigvalsh(Q).max())


def test_opt53_lmo_simplex_vertex_and_others():
    g = np.array([0.3, -1.0, 0.5, -1.0])
    assert np.array_equal(lmo("simplex")(g), [0, 1, 0, 0])
    assert np.array_equal(lmo("l1_ball", radius=2.0)(g), [0, 2, 0, 0])
    assert np.allclose(lmo("l2_ball")(g), -g / np.linalg.norm(g))
    assert np.array_equal(lmo("linf_ball")(g), -np.sign(g))
    assert np.array_equal(lmo("box", lower=-1.0, upper=3.0)(g), [-1, 3, -1, 3])
    with pytest.raises(ValueError, match="unknown set"):
        lmo("cube")
    with pytest.raises(TypeError, match="unexpected"):
        lmo("simplex", radius=2)


def test_opt53_frank_wolfe_simplex_qp_gap_and_solution():
    Q, q, beta = _simplex_qp()
    p = len(q)

    def f(w):
        return 0.5 * dnp.sum(w * (Q @ w)) + dnp.sum(q * w)

    w0 = np.eye(p)[0]
    T = 2000
    r = frank_wolfe(f, w0, lmo("simplex"), maxiter=T, tol=0.0)
    P = np.array(r.history["params"])
    assert np.all(P >= -1e-15) and np.allclose(P.sum(axis=1), 1.0)  # iterates stay in Δ
    pg = projected_gradient(f, np.ones(p) / p, lambda x, hp: projection_simplex(x),
                            stepsize=1.0 / beta, maxiter=20000, tol=1e-12)
    f_star = float(f(pg.solution))
    D2 = 2.0  # squared diameter of Δ
    vals = np.array(r.history["value"])
    gaps = np.array(r.history["gap"])
    ts = np.arange(len(vals))
    assert np.all(gaps >= vals - f_star - 1e-10)  # the FW gap bounds the primal gap
    assert np.all(vals - f_star <= 2 * beta * D2 / (ts + 2) + 1e-12)
    best_gap = np.minimum.accumulate(gaps)
    assert np.all(best_gap[1:] <= 27 * beta * D2 / (ts[1:] + 2))  # O(1/t)
    assert best_gap[-1] < 1e-2
    assert np.linalg.norm(r.solution - pg.solution) < 3e-2
    # short-step variant converges to the projected-gradient solution
    rs = frank_wolfe(f, w0, lmo("simplex"), maxiter=20000, tol=1e-7, stepsize="short",
                     smoothness=beta)
    assert abs(rs.value - f_star) <= 1e-7
    with pytest.raises(ValueError, match="smoothness"):
        frank_wolfe(f, w0, lmo("simplex"), stepsize="short")


# ------------------------------------------------------------------ OPT-54 mirror descent
def test_opt54_entropic_md_simplex_lp_best_vertex():
    c = np.array([0.7, 0.2, 0.9, 0.25, 0.5])
    r = mirror_descent(lambda w: dnp.sum(c * w), np.ones(5) / 5, stepsize=1.0, maxiter=2000,
                       tol=1e-12)
    P = np.array(r.history["params"])
    assert np.all(P >= 0) and np.allclose(P.sum(axis=1), 1.0, atol=1e-12)  # stays in Δ
    assert r.converged
    assert np.allclose(r.solution, np.eye(5)[1], atol=1e-9)
    assert np.all(np.diff(r.history["value"]) <= 1e-15)
    # one step is exponentiated gradient
    w1 = np.ones(5) / 5 * np.exp(-c)
    assert np.allclose(P[1], w1 / w1.sum())


def test_opt54_md_euclidean_and_custom_mirror_map():
    Q, q, beta = _simplex_qp(3, 6)

    def f(w):
        return 0.5 * dnp.sum(w * (Q @ w)) + dnp.sum(q * w)

    w0 = np.ones(6) / 6
    eu = mirror_descent(f, w0, "euclidean", projection_simplex, stepsize=1.0 / beta,
                        maxiter=20000, tol=1e-13)
    pg = projected_gradient(f, w0, lambda x, hp: projection_simplex(x), stepsize=1.0 / beta,
                            maxiter=20000, tol=1e-12)
    assert np.allclose(eu.solution, pg.solution, atol=1e-8)
    ent = mirror_descent(f, w0, stepsize=0.5 / beta, maxiter=20000, tol=1e-13)
    assert abs(ent.value - pg.value) < 1e-8
    # custom pair: entropic maps given explicitly + normalization
    cu = mirror_descent(f, w0, (np.log, np.exp), lambda y: y / y.sum(), stepsize=0.5 / beta,
                        maxiter=50, tol=0.0)
    ent50 = mirror_descent(f, w0, stepsize=0.5 / beta, maxiter=50, tol=0.0)
    assert np.allclose(cu.solution, ent50.solution, atol=1e-12)
    with pytest.raises(ValueError, match="w0"):
        mirror_descent(f, -w0)
    with pytest.raises(ValueError, match="mirror_map"):
        mirror_descent(f, w0, mirror_map="kl")
