"""Spec rows OPT-01..OPT-09, OPT-16, OPT-17 (oracles, function-class constants, diagnostics)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.optim.diagnostics import (
    StoppingCriterion,
    check_convex,
    check_jensen,
    check_lipschitz,
    check_smooth,
    check_strictly_convex,
    check_strongly_convex,
    classify_rate,
    condition_number,
    convergence_order,
    duality_gap,
    estimate_smoothness,
    estimate_strong_convexity,
    fixed_point_residual,
    grad_norm,
    iterations_to_accuracy,
    objective_gap,
    operator_norm,
    progress_ratios,
)
from diffprog.optim.oracles import (
    Oracle,
    StochasticOracle,
    check_grad,
    empirical_risk,
    fd_grad,
    linear_erm,
    value,
)
from diffprog.optim.projections import projection_simplex
from diffprog.optim.prox import make_prox_from_projection, prox_lasso
from diffprog.optim.schedules_extra import linear_decay_schedule, strongly_convex_sgd_schedule


def _quad(A, b):
    return lambda w: 0.5 * w @ (A @ w) + b @ w


def _spd(rng, p):
    M = rng.standard_normal((p, p))
    return M @ M.T + 0.5 * np.eye(p)


def _mlp_loss(w):
    W1, W2 = w[:12].reshape(3, 4), w[12:15]
    X = np.array([[0.1, -0.3, 0.5, 1.0], [0.7, 0.2, -0.4, 0.3]])
    h = dnp.tanh(X @ W1.T)
    return dnp.sum((h @ W2 - np.array([0.5, -1.0])) ** 2)


# ------------------------------------------------------------------ OPT-01
def test_opt01_quadratic_grad_and_hvp():
    rng = np.random.default_rng(0)
    A, b, w, v = (
        _spd(rng, 5),
        rng.standard_normal(5),
        rng.standard_normal(5),
        rng.standard_normal(5),
    )
    o = Oracle(_quad(A, b))
    np.testing.assert_allclose(o.grad(w), A @ w + b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(o.hvp(w, v), A @ v, rtol=0, atol=1e-12)
    assert value(_quad(A, b), w) == pytest.approx(0.5 * w @ A @ w + b @ w, abs=1e-12)
    assert o.counts["grad"] == 1 and o.counts["hvp"] == 1


def test_opt01_mlp_hvp_matches_fd_and_hessian():
    rng = np.random.default_rng(1)
    w, v = rng.standard_normal(15), rng.standard_normal(15)
    o = Oracle(_mlp_loss)
    hv = o.hvp(w, v)
    h = 1e-5
    fd = (o.grad(w + h * v) - o.grad(w - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=0, atol=1e-6)
    np.testing.assert_allclose(o.hessian(w) @ v, hv, rtol=0, atol=1e-10)


def test_opt01_order_is_enforced():
    o = Oracle(lambda w: (w**2).sum(), order=1)
    with pytest.raises(ValueError, match="order 2"):
        o.hvp(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="Oracle"):
        Oracle(lambda w: w, order=3)


# ------------------------------------------------------------------ OPT-02
def _ls_oracle(batch_size, rng=0, n=40):
    r = np.random.default_rng(5)
    X, y = r.standard_normal((n, 3)), r.standard_normal(n)
    return (
        StochasticOracle(lambda w, b: 0.5 * (b[0] @ w - b[1]) ** 2, (X, y), batch_size, rng=rng),
        X,
        y,
    )


def test_opt02_unbiased_over_singleton_batches():
    o, X, y = _ls_oracle(1)
    w = np.array([0.3, -1.0, 2.0])
    mean = np.mean([o(w, [i]) for i in range(o.n)], axis=0)
    full = X.T @ (X @ w - y) / len(y)
    np.testing.assert_allclose(o.full_grad(w), full, atol=1e-12)
    np.testing.assert_allclose(mean, full, rtol=0, atol=1e-12)


def test_opt02_variance_scales_as_one_over_m():
    w = np.array([0.3, -1.0, 2.0])
    o1, _, _ = _ls_oracle(1, rng=1)
    o16, _, _ = _ls_oracle(16, rng=2)
    G = o1.per_sample_grads(w)
    full = G.mean(0)
    idx = np.asarray(o16.sample_indices())
    np.testing.assert_allclose(o16(w, idx), G[idx].mean(0), atol=1e-12)
    v1 = np.mean([np.sum((G[o1.sample_indices()].mean(0) - full) ** 2) for _ in range(10_000)])
    v16 = np.mean([np.sum((G[o16.sample_indices()].mean(0) - full) ** 2) for _ in range(10_000)])
    assert v1 / v16 == pytest.approx(16, rel=0.1)


def test_opt02_bad_inputs():
    with pytest.raises(ValueError, match="without replacement"):
        StochasticOracle(lambda w, b: b, np.ones(3), batch_size=4, replace=False)
    with pytest.raises(ValueError, match="batch_size"):
        StochasticOracle(lambda w, b: b, np.ones(3), batch_size=0)
    with pytest.raises(TypeError, match="rng"):
        StochasticOracle(lambda w, b: b, np.ones(3), rng="seed")


# ------------------------------------------------------------------ OPT-03
def test_opt03_forward_fd_calls_and_error():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(np.sin(x))

    x = np.linspace(-1, 1, 7)
    g = fd_grad(f, x, eps=1e-6, scheme="forward")
    assert len(calls) == x.size + 1
    assert np.max(np.abs(g - np.cos(x))) <= 1e-5


def test_opt03_check_grad_flags_one_percent():
    f = lambda x: np.sum(np.sin(x))  # noqa: E731
    x = np.linspace(-1, 1, 5)
    assert check_grad(f, np.cos, x)
    assert not check_grad(f, lambda x: 1.01 * np.cos(x), x)


# ------------------------------------------------------------------ OPT-04
def test_opt04_linear_erm_gradient_closed_form():
    rng = np.random.default_rng(3)
    A, y, x = rng.standard_normal((30, 4)), np.sign(rng.standard_normal(30)), rng.standard_normal(4)
    loss = lambda s, t: dnp.log1p(dnp.exp(-s * t))  # noqa: E731
    R = linear_erm(loss, A, y)
    s = A @ x
    lprime = -y / (1 + np.exp(s * y))
    np.testing.assert_allclose(R.grad(x), A.T @ lprime / 30, rtol=0, atol=1e-12)
    np.testing.assert_allclose(R.per_sample_grads(x).mean(0), R.grad(x), atol=1e-12)
    E = empirical_risk(lambda p, t: (p - t) ** 2, lambda w, X: X @ w, A, y)
    assert E.value(x) == pytest.approx(np.mean((s - y) ** 2), abs=1e-12)


# ------------------------------------------------------------------ OPT-05 / OPT-06
def test_opt05_smoothness_of_diag_quadratic():
    f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2  # noqa: E731
    assert estimate_smoothness(f, np.ones(2)) == pytest.approx(1.0, abs=1e-12)
    assert estimate_smoothness(f, np.ones(2), method="power", n_iter=500) == pytest.approx(
        1.0, abs=1e-6
    )


def test_opt05_least_squares_operator_norm():
    rng = np.random.default_rng(4)
    A, y = rng.standard_normal((50, 20)), rng.standard_normal(50)
    smax = np.linalg.svd(A, compute_uv=False)[0]
    assert operator_norm(A) == pytest.approx(smax, rel=1e-12)
    beta = estimate_smoothness(lambda x: 0.5 * dnp.sum((A @ x - y) ** 2), np.zeros(20), rng=1)
    assert abs(beta - smax**2) <= 1e-8 * smax**2
    H = _spd(rng, 6)
    ev = np.linalg.eigvalsh(H)
    q = _quad(H, np.zeros(6))
    assert estimate_smoothness(q, np.zeros(6), method="power", n_iter=2000) == pytest.approx(
        ev[-1], abs=1e-6
    )
    with pytest.raises(ValueError, match="operator_norm"):
        operator_norm(np.ones(3))


def test_opt06_strong_convexity_and_condition_number():
    f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2  # noqa: E731
    assert estimate_strong_convexity(f, np.ones(2)) == pytest.approx(0.1, abs=1e-8)
    assert condition_number(f, np.ones(2)) == pytest.approx(10.0, abs=1e-8)
    rng = np.random.default_rng(6)
    H = _spd(rng, 6)
    ev = np.linalg.eigvalsh(H)
    q = _quad(H, np.zeros(6))
    assert estimate_strong_convexity(q, np.zeros(6)) == pytest.approx(ev[0], abs=1e-8)
    mu_p = estimate_strong_convexity(q, np.zeros(6), method="power", n_iter=3000)
    assert mu_p == pytest.approx(ev[0], abs=1e-6)
    saddle = lambda w: w[0] ** 2 - w[1] ** 2  # noqa: E731
    assert estimate_strong_convexity(saddle, np.ones(2)) < 0
    assert condition_number(saddle, np.ones(2)) == np.inf


# ------------------------------------------------------------------ OPT-07
def test_opt07_half_squared_norm_strong_convexity():
    f = lambda u: 0.5 * dnp.sum(u**2)  # noqa: E731
    s = lambda r: r.normal(size=4)  # noqa: E731
    assert check_strongly_convex(f, 1.0, s, n_pairs=300)
    assert not check_strongly_convex(f, 1.01, s, n_pairs=300)
    assert check_strongly_convex(lambda u: 3.0 * f(u), 3.0, s, n_pairs=100)  # λL is λμ-s.c.
    assert check_strongly_convex(f, 1.0, s, forms=("hessian",), n_pairs=5)
    assert check_strictly_convex(f, s)


def test_opt07_negentropy_pinsker_l1():
    f = lambda u: float(np.sum(u * np.log(u)))  # noqa: E731
    gf = lambda u: np.log(u) + 1.0  # noqa: E731
    s = lambda r: r.dirichlet(np.ones(2))  # noqa: E731
    assert check_strongly_convex(f, 1.0, s, norm=1, grad_f=gf, n_pairs=10_000)
    assert not check_strongly_convex(f, 1.05, s, norm=1, grad_f=gf, n_pairs=10_000)


def test_opt07_convexity_smoothness_lipschitz():
    s1 = lambda r: r.uniform(-3, 3, size=1)  # noqa: E731
    assert not check_convex(lambda w: dnp.sum(dnp.sin(w)), s1)
    lse = lambda w: dnp.log(dnp.sum(dnp.exp(w)))  # noqa: E731
    s3 = lambda r: r.normal(scale=3, size=3)  # noqa: E731
    assert check_convex(lse, s3)
    assert check_smooth(lse, 1.0, s3)
    assert check_jensen(lse, s3)
    assert not check_jensen(lambda w: -dnp.sum(w**2), s3)
    assert not check_strictly_convex(lambda w: dnp.sum(w), s3)
    assert check_lipschitz(diffprog.grad(lse), 1.0, s3)
    assert not check_lipschitz(lambda w: 2 * w, 1.9, s3)
    # erratum Def 15.4 (β, not β/2): the gradient of ½‖w‖² is 1-Lipschitz but not 0.5-Lipschitz
    assert not check_lipschitz(lambda w: w, 0.5, s3)


# ------------------------------------------------------------------ OPT-08
def test_opt08_gd_diag_quadratic_is_linear():
    d = np.array([0.1, 1.0])
    w, errs = np.ones(2), []
    for _ in range(200):
        errs.append(np.linalg.norm(w))
        w = w - 1.0 * d * w
    r = progress_ratios(errs)
    assert r[-1] == pytest.approx(0.9, abs=1e-6)
    assert classify_rate(errs) == "linear"
    assert iterations_to_accuracy(errs, 1e-8) == 175


def test_opt08_newton_logistic_superlinear():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 3))
    y = np.where(X @ np.array([1.0, -1.0, 0.5]) + rng.standard_normal(60) > 0, 1.0, -1.0)
    f = lambda w: dnp.mean(dnp.log1p(dnp.exp(-y * (X @ w))))  # noqa: E731
    w, ws = np.zeros(3), []
    for _ in range(12):
        ws.append(w)
        w = w - np.linalg.solve(diffprog.hessian(f)(w), diffprog.grad(f)(w))
    errs = [np.linalg.norm(v - w) for v in ws]
    assert classify_rate(errs) == "superlinear"


def test_opt08_gd_quartic_sublinear_and_synthetic():
    w, errs = 1.0, []
    for _ in range(2000):
        errs.append(abs(w))
        w = w - 0.1 * 4 * w**3
    r = progress_ratios(errs)
    assert r[-1] > 0.999 and classify_rate(errs) == "sublinear"
    t = np.arange(1, 300, dtype=float)
    assert classify_rate(t**-2.0) == "sublinear"
    assert classify_rate(0.7**t) == "linear"
    assert classify_rate(np.exp(-(t[:6] ** 2))) == "superlinear"
    quad = np.exp(-(2.0 ** np.arange(6)))
    assert classify_rate(quad) == "superlinear"
    assert convergence_order(quad) == pytest.approx(2.0, abs=1e-9)
    assert classify_rate(1.1 ** t[:20]) == "divergent"
    assert iterations_to_accuracy([1.0, 0.5], 0.1) is None
    with pytest.raises(ValueError, match="classify_rate"):
        classify_rate([1.0, np.nan, 0.1])


# ------------------------------------------------------------------ OPT-09
def test_opt09_lasso_fixed_point_residual():
    rng = np.random.default_rng(8)
    A, y, lam = rng.standard_normal((20, 5)), rng.standard_normal(20), 2.0
    gfun = lambda x: A.T @ (A @ x - y)  # noqa: E731
    tau, x = 1.0 / operator_norm(A) ** 2, np.zeros(5)
    for _ in range(20_000):
        x_new = np.asarray(prox_lasso(x - tau * gfun(x), lam, tau))
        if np.linalg.norm(x_new - x) <= 1e-13:
            break
        x = x_new
    for g in (0.01, 0.1, 1.0):
        assert fixed_point_residual(x, gfun, prox_lasso, g, lam) <= 1e-8
    assert fixed_point_residual(np.zeros(5) + 1.0, gfun, prox_lasso, 0.1, lam) > 1e-3


def test_opt09_simplex_qp_variational_inequality():
    rng = np.random.default_rng(9)
    Q, c = _spd(rng, 4), rng.standard_normal(4)
    gfun = lambda w: Q @ w + c  # noqa: E731
    w, step = np.full(4, 0.25), 1.0 / np.linalg.eigvalsh(Q)[-1]
    for _ in range(20_000):
        w = np.asarray(projection_simplex(w - step * gfun(w)))
    g = gfun(w)
    assert min(g[j] - g @ w for j in range(4)) >= -1e-8
    prox = make_prox_from_projection(projection_simplex)
    assert fixed_point_residual(w, gfun, prox, 0.5) <= 1e-8


def test_opt09_norms_gaps_and_status():
    assert grad_norm({"a": np.array([3.0]), "b": np.array([4.0])}) == 5.0
    assert fixed_point_residual(np.array([1.0]), lambda w: 2 * w, stepsize=0.5) == 1.0
    assert objective_gap(1.5, 1.0) == 0.5 and duality_gap(2.0, 1.5) == 0.5
    sc = StoppingCriterion(tol=1e-6, maxiter=10)
    assert sc.status(3, 1e-8) == "converged" and sc.status(10, 1.0) == "maxiter"
    assert sc.status(2, float("nan")) == "nonfinite" and sc.status(2, 1.0) == "running"
    with pytest.raises(ValueError, match="stepsize"):
        fixed_point_residual(np.ones(1), lambda w: w, stepsize=0.0)
    with pytest.raises(ValueError, match="maxiter"):
        StoppingCriterion(maxiter=-1)


# ------------------------------------------------------------------ OPT-16 / OPT-17
def test_opt16_strongly_convex_sgd_schedule():
    s = strongly_convex_sgd_schedule(0.5)
    assert [s(k) for k in (0, 1, 3)] == [2.0, 1.0, 0.5]
    # Theorem 24 (R with the squared distance, erratum) on f_i = ½(x − ξ_i)², μ = 1
    rng = np.random.default_rng(10)
    xi = np.array([-1.0, 1.0])
    s1, x0, K = strongly_convex_sgd_schedule(1.0), 0.5, 50
    C = 1.5  # |x − ξ_i| ≤ 1.5 on [−1.5, 1.5] which the iterates never leave
    R = max(x0**2, C**2)
    sq = []
    for _ in range(2000):
        x = x0
        for k in range(K):
            x = x - s1(k) * (x - xi[rng.integers(2)])
        sq.append(x**2)
    assert np.mean(sq) <= R / (K + 1)
    with pytest.raises(ValueError, match="mu"):
        strongly_convex_sgd_schedule(0.0)


def test_opt17_linear_decay_schedule():
    D, G, K = 2.0, 4.0, 16
    s = linear_decay_schedule(D, G, K)
    assert s(0) == pytest.approx(D / (G * np.sqrt(K)))
    assert s(K) == 0.0 and s(K + 5) == 0.0
    vals = np.array([s(k) for k in range(K + 1)])
    np.testing.assert_allclose(np.diff(vals), -s(0) / K, atol=1e-15)
    with pytest.raises(ValueError, match="'K'"):
        linear_decay_schedule(1.0, 1.0, 0)
