"""One test per already-implemented OPT spec row that had no test named after it.

Each test performs the row's acceptance check (spec ch15-18) with reference values from closed
forms or a second method.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.optim import (
    bfgs,
    bfgs_update,
    exact_linesearch,
    gauss_newton,
    gda,
    gda_unrolled,
    gradient_descent,
    heavy_ball,
    levenberg_marquardt,
    make_prox_from_projection,
    newton,
    newton_direction,
    projected_gradient,
    projection_box,
    projection_non_negative,
    projection_simplex,
    prox_group_lasso,
    prox_non_negative_lasso,
    prox_none,
    proximal_point,
    wolfe_linesearch,
)


def _rosen(w):
    return 100.0 * (w[1] - w[0] ** 2) ** 2 + (1.0 - w[0]) ** 2


def test_opt10_descent_lemma_with_one_over_beta():
    """γ = 1/β on a β-smooth quadratic: L(w⁺) − L(w) ≤ −γ/2‖∇L(w)‖² at every step."""
    H = np.diag([1.0, 4.0, 10.0])
    f = lambda w: 0.5 * dnp.sum(w * dnp.matmul(H, w))  # noqa: E731
    r = gradient_descent(f, np.ones(3), stepsize=None, smoothness=10.0, maxiter=50, tol=0.0)
    P = np.array(r.history["params"])
    for a, b in zip(P[:-1], P[1:], strict=True):
        g = H @ a
        assert 0.5 * b @ H @ b - 0.5 * a @ H @ a <= -0.05 * g @ g + 1e-12


def test_opt19_wolfe_on_rosenbrock():
    w = np.array([-1.2, 1.0])
    g = np.asarray(diffprog.grad(_rosen)(w))
    d = g  # the spec's convention: step w − γd
    c1, c2 = 1e-4, 0.9
    ls = wolfe_linesearch(_rosen, w, d, c1=c1, c2=c2)
    gam = ls.stepsize
    assert ls.success
    assert _rosen(w - gam * d) <= _rosen(w) - c1 * gam * g @ d
    g1 = np.asarray(diffprog.grad(_rosen)(w - gam * d))
    assert abs(g1 @ d) <= c2 * abs(g @ d)


def test_opt20_exact_linesearch_quadratic():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 5))
    A = M @ M.T + np.eye(5)
    f = lambda w: 0.5 * dnp.sum(w * dnp.matmul(A, w))  # noqa: E731
    w = rng.normal(size=5)
    g = A @ w
    h = exact_linesearch(f, w, g, quadratic=True).stepsize
    assert abs(h - g @ g / (g @ A @ g)) <= 1e-10 * abs(h)
    g1 = A @ (w - h * g)
    assert abs(g @ g1) <= 1e-10 * (g @ g)


def test_opt22_proximal_point_step_and_large_step():
    A, b = np.diag([1.0, 3.0]), np.array([1.0, -2.0])
    f = lambda w: 0.5 * dnp.sum(w * dnp.matmul(A, w)) - dnp.sum(b * w)  # noqa: E731
    w0, gam = np.array([2.0, 1.0]), 0.7
    r1 = proximal_point(f, w0, stepsize=gam, maxiter=1, tol=0.0)
    expected = np.linalg.solve(np.eye(2) + gam * A, w0 + gam * b)
    np.testing.assert_allclose(r1.solution, expected, atol=1e-10)
    r = proximal_point(f, w0, stepsize=1e6, maxiter=50)
    np.testing.assert_allclose(r.solution, np.linalg.solve(A, b), atol=1e-6)
    gd = gradient_descent(f, w0, stepsize=1e6, maxiter=5, tol=0.0)
    assert not np.all(np.abs(gd.solution) < 1e6)


def test_opt23_gd_first_hit_at_175():
    f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2  # noqa: E731
    # closed form: w_t = (0.9^t, 0)  ⇒ first t with 0.9^t ≤ 1e-8 is ceil(8/log10(1/0.9)) = 175
    t_star = int(np.ceil(np.log(1e-8) / np.log(0.9)))
    assert t_star == 175
    r = gradient_descent(f, np.ones(2), stepsize=1.0, maxiter=200, tol=0.0)
    norms = np.linalg.norm(np.array(r.history["params"]), axis=1)
    assert int(np.argmax(norms <= 1e-8)) == 175


def test_opt24_heavy_ball():
    H = np.diag([1.0, 0.01])
    f = lambda w: 0.5 * dnp.sum(w * dnp.matmul(H, w))  # noqa: E731
    w0 = np.ones(2)
    hb0 = heavy_ball(f, w0, stepsize=0.5, momentum=0.0, maxiter=20, tol=0.0)
    gd = gradient_descent(f, w0, stepsize=0.5, maxiter=20, tol=0.0)
    np.testing.assert_array_equal(hb0.solution, gd.solution)
    beta, mu = 1.0, 0.01
    kappa = beta / mu
    g = 4 / (np.sqrt(beta) + np.sqrt(mu)) ** 2
    nu = ((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)) ** 2

    def iters(res):
        n = np.linalg.norm(np.array(res.history["params"]), axis=1)
        return int(np.argmax(n <= 1e-8))

    hb = heavy_ball(f, w0, stepsize=g, momentum=nu, maxiter=3000, tol=0.0)
    gd = gradient_descent(f, w0, stepsize=1.0, maxiter=3000, tol=0.0)
    assert 0 < iters(hb) <= iters(gd) / 4


def test_opt38_projected_gradient_simplex():
    c = np.array([0.3, 1.2, -0.4, 0.9])
    r = projected_gradient(lambda w: 0.5 * dnp.sum((w - c) ** 2), np.ones(4) / 4,
                           lambda x, hp: projection_simplex(x), tol=1e-12, maxiter=10_000)
    np.testing.assert_allclose(r.solution, projection_simplex(c), atol=1e-10)
    w = r.solution
    assert np.linalg.norm(w - projection_simplex(w - (w - c))) <= 1e-10  # OPT-09 residual


def test_opt40_projection_non_negative_kkt():
    w = np.random.default_rng(1).normal(size=50)
    p = projection_non_negative(w)
    np.testing.assert_array_equal(projection_non_negative(p), p)
    assert np.all(p >= 0) and np.all(w - p <= 0) and abs((w - p) @ p) == 0.0


def test_opt44_prox_none():
    w = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(prox_none(w, None, 0.3), w)


def test_opt45_prox_of_indicator_is_projection():
    """Spec name `prox_indicator`; the existing equivalent is `make_prox_from_projection`."""
    prox = make_prox_from_projection(projection_box)
    x, hp = np.array([-2.0, 0.5, 3.0]), (np.zeros(3), np.ones(3))
    for g in (0.1, 1.0, 10.0):
        np.testing.assert_array_equal(prox(x, hp, g), projection_box(x, hp))


def test_opt47_prox_group_lasso():
    lam, gam = 1.0, 0.5
    x = np.array([0.3, 0.1, 3.0, 4.0, 0.0, 0.0])
    groups = [[0, 1], [2, 3], [4, 5]]
    out = np.asarray(prox_group_lasso(x, lam, gam, groups=groups))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:2], 0.0)  # ‖w_g‖ ≤ λγ → 0
    np.testing.assert_allclose(np.linalg.norm(out[2:4]), 5.0 - lam * gam, atol=1e-12)
    np.testing.assert_allclose(out[2:4] / np.linalg.norm(out[2:4]), x[2:4] / 5.0, atol=1e-12)
    np.testing.assert_array_equal(out[4:], 0.0)


def test_opt48_prox_non_negative_lasso():
    """Spec name `prox_nonneg_l1`; existing equivalent `prox_non_negative_lasso`."""
    out = np.asarray(prox_non_negative_lasso(np.array([3.0, -0.5, 1.0]), 1.0, 1.0))
    np.testing.assert_allclose(out, [2.0, 0.0, 0.0], atol=1e-15)
    grid = np.linspace(-1, 4, 50001)
    for xi, oi in zip([3.0, -0.5, 1.0], out, strict=True):  # brute-force argmin on v ≥ 0
        obj = 0.5 * (grid - xi) ** 2 + grid + np.where(grid >= 0, 0, np.inf)
        assert abs(grid[np.argmin(obj)] - oi) <= 1e-4


def test_opt55_newton_one_step_on_quadratic():
    rng = np.random.default_rng(2)
    M = rng.normal(size=(4, 4))
    A, b = M @ M.T + 19 * np.eye(4), rng.normal(size=4)
    f = lambda w: 0.5 * dnp.sum(w * dnp.matmul(A, w)) - dnp.sum(b * w)  # noqa: E731
    r = newton(f, np.ones(4), maxiter=1, tol=0.0)
    np.testing.assert_allclose(r.solution, np.linalg.solve(A, b), atol=1e-12)


def _saddle_f(w):
    return w[0] ** 2 - w[1] ** 2 + w[1] ** 4


def test_opt56_regularized_newton_direction():
    w = np.array([0.1, 0.1])
    g = np.asarray(diffprog.grad(_saddle_f)(w))
    H = np.asarray(diffprog.hessian(_saddle_f)(w))
    pure = w - newton_direction(H, g)
    assert abs(pure[1] - (0.1 - 0.196 / 1.88)) < 1e-12  # derived: 0.1 − (−0.196)/(−1.88)
    assert abs(pure[1] - (-0.004)) < 5e-4  # the spec's rounded value
    d = newton_direction(H, g, reg=3.0)
    assert g @ d > 0  # −d is a descent direction
    w1 = w - d
    assert abs(w1[1] - 1 / np.sqrt(2)) < abs(w[1] - 1 / np.sqrt(2))


def test_opt57_hessian_fix_abs():
    w = np.array([0.1, 0.1])
    g = np.asarray(diffprog.grad(_saddle_f)(w))
    H = np.asarray(diffprog.hessian(_saddle_f)(w))
    lam, Q = np.linalg.eigh(H)
    Habs = Q @ np.diag(np.abs(lam)) @ Q.T
    d = newton_direction(H, g, hessian_fix="abs")
    np.testing.assert_allclose(d, np.linalg.solve(Habs, g), atol=1e-12)
    assert np.linalg.eigvalsh(Habs).min() > 0
    assert _saddle_f(w - d) < _saddle_f(w)


def test_opt63_gauss_newton_exponential_fit():
    t = np.linspace(0, 1, 10)
    a, b = 2.0, -1.5
    y = a * np.exp(b * t)
    r = gauss_newton(lambda w: w[0] * dnp.exp(w[1] * t) - y, np.array([1.8, -1.3]), maxiter=20)
    np.testing.assert_allclose(r.solution, [a, b], atol=1e-10)
    A = np.vander(t, 3)
    r = gauss_newton(lambda w: dnp.matmul(A, w) - y, np.zeros(3), maxiter=1)
    np.testing.assert_allclose(r.solution, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-10)


def test_opt64_levenberg_marquardt_rosenbrock():
    res = lambda w: dnp.stack([10.0 * (w[1] - w[0] ** 2), 1.0 - w[0]])  # noqa: E731
    r = levenberg_marquardt(res, np.array([-1.2, 1.0]))
    np.testing.assert_allclose(r.solution, [1.0, 1.0], atol=1e-8)


def test_opt69_bfgs_secant_and_rosenbrock():
    rng = np.random.default_rng(3)
    B = np.eye(3)
    for _ in range(10):
        M = rng.normal(size=(3, 3))
        s = rng.normal(size=3)
        y = (M @ M.T + np.eye(3)) @ s  # ⟨s, y⟩ > 0 (a convex quadratic's gradient change)
        B = bfgs_update(B, s, y)
        assert np.linalg.norm(B @ y - s) <= 1e-10 * np.linalg.norm(s)
        np.testing.assert_allclose(B, B.T, atol=1e-12)
        assert np.linalg.eigvalsh(B).min() > 0
    r = bfgs(_rosen, np.array([-1.2, 1.0]), tol=1e-8, maxiter=100)
    assert r.converged and r.iterations < 100
    np.testing.assert_allclose(r.solution, [1.0, 1.0], atol=1e-7)


def _quad_game(a=1.0, b=2.0, c=1.0):
    # L(θ, η) = −a/2 θ² + bθη + c/2 η²: max over θ, min over η
    return lambda th, et: dnp.sum(-0.5 * a * th ** 2 + b * th * et + 0.5 * c * et ** 2)


def test_opt102_gda_unrolled_quadratic_game():
    r = gda_unrolled(_quad_game(), np.array([1.0]), np.array([1.0]), stepsize=0.05,
                     inner_steps=50, maxiter=5000, tol=1e-12)
    th, et = r.solution
    assert abs(float(np.ravel(th)[0])) <= 1e-8 and abs(float(np.ravel(et)[0])) <= 1e-8


@pytest.mark.parametrize("a,b,c", [(1.0, 2.0, 1.0), (0.5, 1.0, 2.0)])
def test_opt102_infinite_inner_loop_uses_schur_gradient(a, b, c):
    # inner loop solves min_η L exactly (η* = −bθ/c), so the θ step is θ + h·(−(a + b²/c))·θ
    h, th0 = 0.05, 0.7
    r = gda_unrolled(_quad_game(a, b, c), np.array([th0]), np.array([0.3]), stepsize=h,
                     inner_steps=3000, maxiter=1, tol=0.0)
    th1, et1 = r.solution
    assert abs(float(np.ravel(et1)[0]) - (-b * th0 / c)) < 1e-10
    assert abs(float(np.ravel(th1)[0]) - (th0 + h * (-(a + b * b / c)) * th0)) < 1e-10


def test_opt103_gda_contraction_and_bilinear_spiral():
    h = 0.05
    r = gda(_quad_game(), np.array([1.0]), np.array([1.0]), stepsize=h, maxiter=5000, tol=1e-12)
    th, et = r.solution
    assert max(abs(float(np.ravel(th)[0])), abs(float(np.ravel(et)[0]))) <= 1e-8
    # per-step Jacobian of simultaneous GDA for a=c=1, b=2: [[1−h, 2h], [−2h, 1−h]]
    J = np.array([[1 - h, 2 * h], [-2 * h, 1 - h]])
    assert abs(np.max(np.abs(np.linalg.eigvals(J))) - np.sqrt(0.9125)) < 1e-12
    P = np.array(r.history["params"])
    ratios = np.linalg.norm(P[1:20], axis=1) / np.linalg.norm(P[:19], axis=1)
    np.testing.assert_allclose(ratios, np.sqrt(0.9125), atol=1e-10)
    rb = gda(lambda t, e: dnp.sum(t * e), np.array([1.0]), np.array([1.0]), stepsize=h,
             maxiter=50, tol=0.0)
    Pb = np.array(rb.history["params"])
    rb_ratio = np.linalg.norm(Pb[1:], axis=1) / np.linalg.norm(Pb[:-1], axis=1)
    np.testing.assert_allclose(rb_ratio, np.sqrt(1 + h * h), atol=1e-10)
