"""Tests for diffprog.optim.dual_solvers: spec rows OPT-42, OPT-74, OPT-75, OPT-77, OPT-80."""

from __future__ import annotations

import numpy as np

import diffprog
import diffprog.numpy as dnp
from diffprog.optim.dual_solvers import (
    Composite,
    dual_value,
    fenchel_dual_solve,
    fenchel_duality_gap,
    generalized_conjugate,
    linear_multiclass_dual,
    make_fenchel_young_loss,
    multiclass_adjoint,
    multiclass_forward,
    multiclass_logistic_term,
    primal_value,
    ridge_term,
    squared_loss_term,
)
from diffprog.optim.duality import conjugate_squared_simplex, sparsemax
from diffprog.optim.projections import projection_box, projection_simplex
from diffprog.optim.prox import make_indicator, make_prox_from_projection
from diffprog.scipy.special import logsumexp, softmax, xlogy


# ------------------------------------------------------------------------------------ OPT-74
def test_opt74_weak_duality_ridge_random_pairs():
    rng = np.random.default_rng(0)
    A, y, lam = rng.normal(size=(5, 3)), rng.normal(size=5), 0.7
    loss, reg = squared_loss_term(y), ridge_term(lam)
    W = 3 * rng.normal(size=(10_000, 3))
    Al = 3 * rng.normal(size=(10_000, 5))
    # vectorized closed forms, checked against the helper on a subset
    P = 0.5 * np.sum((W @ A.T - y) ** 2, 1) + 0.5 * lam * np.sum(W * W, 1)
    D = -np.sum((Al @ A) ** 2, 1) / (2 * lam) - (0.5 * np.sum(Al * Al, 1) - Al @ y)
    assert np.all(P - D >= 0)
    for i in range(50):
        g = fenchel_duality_gap(loss, reg, A, W[i], Al[i])
        assert abs(g - (P[i] - D[i])) <= 1e-9 * max(1.0, abs(g))
        assert primal_value(loss.value, reg.value, lambda v: A @ v, W[i]) >= dual_value(
            loss.conj, lambda a: reg.conj(A.T @ a), Al[i])


def test_opt74_weak_duality_logistic_random_pairs():
    rng = np.random.default_rng(1)
    n, d, m, lam = 6, 3, 4, 0.5
    X, y = rng.normal(size=(n, d)), rng.integers(0, m, size=n)
    T = np.eye(m)[y]
    term, reg = multiclass_logistic_term(y, m), ridge_term(lam)
    for _ in range(10_000 // 100):
        Ws = 2 * rng.normal(size=(100, m, d))
        mus = rng.dirichlet(np.ones(m), size=(100, n))  # μ = t − α ∈ Δ (dom ℓ*)
        Al = T - mus
        S = np.einsum("nd,kmd->knm", X, Ws)
        P = np.sum(np.log(np.sum(np.exp(S), -1)), 1) - np.einsum("knm,nm->k", S, T)
        P += 0.5 * lam * np.sum(Ws ** 2, (1, 2))
        AstarA = np.einsum("knm,nd->kmd", Al, X)
        D = -np.sum(AstarA ** 2, (1, 2)) / (2 * lam) - np.sum(xlogy(mus, mus), (1, 2))
        assert np.all(P >= D)
    # the helpers agree with the vectorized formulas
    P0 = primal_value(term.value, reg.value, lambda W: multiclass_forward(X, W), Ws[0])
    D0 = dual_value(term.conj, lambda a: reg.conj(multiclass_adjoint(X, a)), Al[0])
    assert abs(P0 - P[0]) < 1e-10 and abs(D0 - D[0]) < 1e-10


def test_opt74_generalized_conjugate_linear_and_nonlinear():
    rng = np.random.default_rng(2)
    A, lam = rng.normal(size=(4, 3)), 2.0
    R = lambda w: 0.5 * lam * dnp.sum(w * w)  # noqa: E731
    Rf = generalized_conjugate(R, lambda w: dnp.matmul(A, w), np.zeros(3))
    a = rng.normal(size=4)
    assert abs(Rf(a) - np.sum((A.T @ a) ** 2) / (2 * lam)) < 1e-9  # = R*(Aᵀα)
    # nonlinear f(w) = tanh(w): weak duality P(w) ≥ D(α) with ℓ = ½‖·−y‖²
    y = rng.normal(size=3)
    Rft = generalized_conjugate(R, dnp.tanh, np.zeros(3))
    loss = squared_loss_term(y)
    for _ in range(20):
        w, al = rng.normal(size=3), rng.normal(size=3)
        assert primal_value(loss.value, R, np.tanh, w) >= dual_value(loss.conj, Rft, al) - 1e-10


# ------------------------------------------------------------------------------------ OPT-75
def test_opt75_ridge_strong_duality_and_primal_recovery():
    rng = np.random.default_rng(3)
    n, p, lam = 8, 20, 0.3  # dim M < dim W: the dual is the cheaper problem
    A, y = rng.normal(size=(n, p)), rng.normal(size=n)
    r = fenchel_dual_solve(squared_loss_term(y), ridge_term(lam), A)
    alpha_star = np.linalg.solve(A @ A.T / lam + np.eye(n), y)
    w_ridge = np.linalg.solve(A.T @ A + lam * np.eye(p), A.T @ y)
    np.testing.assert_allclose(r.alpha, alpha_star, atol=1e-10)
    np.testing.assert_allclose(r.w, A.T @ alpha_star / lam, atol=1e-10)
    np.testing.assert_allclose(r.w, w_ridge, atol=1e-10)
    np.testing.assert_allclose(r.alpha, y - A @ r.w, atol=1e-10)
    assert 0 <= r.gap < 1e-10 or abs(r.gap) < 1e-10


def test_opt75_custom_solver_is_used():
    A, y = np.array([[1.0, 2.0]]), np.array([5.0])
    calls = []

    def solver(fun, x0):
        from diffprog.optim import gradient_descent
        calls.append(1)
        return gradient_descent(fun, x0, stepsize=0.1, maxiter=2000, tol=1e-12)

    r = fenchel_dual_solve(squared_loss_term(y), ridge_term(1.0), A, solver=solver)
    assert calls and abs(r.gap) < 1e-10
    np.testing.assert_allclose(r.w, np.linalg.solve(A.T @ A + np.eye(2), A.T @ y), atol=1e-8)


# ------------------------------------------------------------------------------------ OPT-77
def test_opt77_adjoint_identity():
    rng = np.random.default_rng(4)
    n, d, m = 7, 5, 3
    X, W, al = rng.normal(size=(n, d)), rng.normal(size=(m, d)), rng.normal(size=(n, m))
    for i in range(n):  # ⟨A_i w, α_i⟩ = ⟨w, A_i*α_i⟩ per sample
        lhs = (W @ X[i]) @ al[i]
        rhs = np.sum(W * np.outer(al[i], X[i]))
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    lhs = np.sum(multiclass_forward(X, W) * al)
    assert abs(lhs - np.sum(W * multiclass_adjoint(X, al))) <= 1e-12 * max(1.0, abs(lhs))


def test_opt77_logistic_dual_equals_primal():
    rng = np.random.default_rng(5)
    n, d, m, lam = 20, 4, 3, 0.5
    X, y = rng.normal(size=(n, d)), rng.integers(0, m, size=n)
    term, reg = multiclass_logistic_term(y, m), ridge_term(lam)
    r = linear_multiclass_dual(term, X, reg)
    assert -1e-12 <= r.gap <= 1e-8
    # second method: primal L-BFGS on W
    from diffprog.optim import lbfgs
    T = np.eye(m)[y]

    def primal(wf):
        W = dnp.reshape(wf, (m, d))
        S = dnp.matmul(X, dnp.transpose(W))
        return dnp.sum(logsumexp(S, axis=-1)) - dnp.sum(S * T) + 0.5 * lam * dnp.sum(W * W)

    pr = lbfgs(primal, np.zeros(m * d), tol=1e-10, maxiter=2000)
    assert abs(pr.value - r.dual) < 1e-8
    np.testing.assert_allclose(r.w.ravel(), pr.solution, atol=1e-6)


# ------------------------------------------------------------------------------------ OPT-42
def test_opt42_indicator_and_composite():
    lo, hi = np.zeros(3), np.ones(3)
    ind = make_indicator(projection_box, (lo, hi))
    assert ind(np.array([0.2, 0.5, 1.0])) == 0.0
    assert ind(np.array([0.2, 1.5, 0.0])) == np.inf
    prox = make_prox_from_projection(projection_box)
    x = np.array([-1.0, 0.3, 2.0])
    for g in (0.1, 1.0, 10.0):  # prox of ι_C = proj_C (OPT-45)
        np.testing.assert_array_equal(prox(x, (lo, hi), g), projection_box(x, (lo, hi)))
    c = np.array([2.0, -1.0, 0.5])
    comp = Composite(lambda w: 0.5 * dnp.sum((w - c) ** 2), ind, prox, (lo, hi))
    assert comp.value(np.array([0.5, 0.5, 0.5])) == 0.5 * np.sum((0.5 - c) ** 2)
    assert comp.value(np.array([2.0, 0.0, 0.0])) == np.inf
    np.testing.assert_array_equal(comp.prox(x, scaling=3.0), projection_box(x, (lo, hi)))
    # min L + ι_C ⇔ min_{w ∈ C} L: solution is proj_C(c)
    sol = comp.solve(np.zeros(3), tol=1e-12).solution
    np.testing.assert_allclose(sol, np.clip(c, 0, 1), atol=1e-10)
    assert Composite(lambda w: dnp.sum(w * w)).value(np.ones(2)) == 2.0


# ------------------------------------------------------------------------------------ OPT-80
def _negentropy(t):
    return dnp.sum(xlogy(t, t), axis=-1)


def _lse(th):
    return logsumexp(th, axis=-1)


def _softmax(th):
    return softmax(th, axis=-1)


def test_opt80_nonneg_and_zero_at_prediction():
    rng = np.random.default_rng(6)
    loss = make_fenchel_young_loss(_negentropy, _lse, _softmax)
    sp = make_fenchel_young_loss(lambda t: 0.5 * dnp.sum(t * t, axis=-1),
                                 conjugate_squared_simplex, projection_simplex)
    theta = 3 * rng.normal(size=(10_000, 4))
    t = rng.dirichlet(np.ones(4), size=10_000)
    assert np.all(np.asarray(loss(theta, t)) >= -1e-12)
    assert np.all(np.asarray(sp(theta, t)) >= -1e-12)
    assert np.max(np.abs(loss(theta, softmax(theta, axis=-1)))) <= 1e-12
    assert np.max(np.abs(sp(theta, sparsemax(theta)))) <= 1e-12
    # integer labels and logistic == LSE − θ_y
    yl = rng.integers(0, 4, size=10_000)
    np.testing.assert_allclose(loss(theta, yl), _lse(theta) - theta[np.arange(10_000), yl],
                               atol=1e-12)
    assert loss.predict is _softmax


def test_opt80_gradient_is_prediction_minus_target():
    rng = np.random.default_rng(7)
    th, t = rng.normal(size=4), rng.dirichlet(np.ones(4))
    loss = make_fenchel_young_loss(_negentropy, _lse, _softmax)
    g = diffprog.grad(lambda z: loss(z, t))(th)
    np.testing.assert_allclose(g, softmax(th) - t, atol=1e-12)
    # perceptron: Ω = ι_Δ, Ω* = max (non-smooth in code), ∇Ω* = one-hot argmax
    perc = make_fenchel_young_loss(lambda t: 0.0 * dnp.sum(t, axis=-1),
                                   lambda z: dnp.max(z, axis=-1),
                                   lambda z: np.eye(np.shape(z)[-1])[np.argmax(z, -1)])
    g = diffprog.grad(lambda z: perc(z, t))(th)
    np.testing.assert_allclose(g, np.eye(4)[np.argmax(th)] - t, atol=1e-12)


def test_opt80_convex_along_segments_and_bregman_sandwich():
    rng = np.random.default_rng(8)
    loss = make_fenchel_young_loss(_negentropy, _lse, _softmax)
    sp = make_fenchel_young_loss(lambda t: 0.5 * dnp.sum(t * t, axis=-1),
                                 conjugate_squared_simplex, projection_simplex)
    lam = np.linspace(0, 1, 11)[:, None]
    for f in (loss, sp):
        for _ in range(200):
            a, b, t = 3 * rng.normal(size=4), 3 * rng.normal(size=4), rng.dirichlet(np.ones(4))
            vals = np.asarray(f(a * (1 - lam) + b * lam, np.tile(t, (11, 1))))
            chord = (1 - lam[:, 0]) * vals[0] + lam[:, 0] * vals[-1]
            assert np.all(vals <= chord + 1e-10)
    theta = 3 * rng.normal(size=(2000, 4))
    t = rng.dirichlet(np.ones(4), size=2000)
    # Ω negentropy on Δ: B_Ω(t, softmax θ) = KL(t ‖ softmax θ)
    p = softmax(theta, axis=-1)
    kl = np.sum(xlogy(t, t) - xlogy(t, p), -1)
    assert np.all(kl >= -1e-12) and np.all(kl <= np.asarray(loss(theta, t)) + 1e-10)
    # Ω = ½‖·‖² + ι_Δ: B_Ω(t, sparsemax θ) = ½‖t − sparsemax θ‖² ≤ ℓ_Ω
    q = sparsemax(theta)
    bq = 0.5 * np.sum((t - q) ** 2, -1)
    assert np.all(bq <= np.asarray(sp(theta, t)) + 1e-10)
    # B_Ω(t, v) = ℓ_Ω(∇Ω(v), t) (squared Ω: ∇Ω = id)
    sq = make_fenchel_young_loss(lambda z: 0.5 * dnp.sum(z * z, axis=-1),
                                 lambda z: 0.5 * dnp.sum(z * z, axis=-1), lambda z: z)
    v, tt = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    np.testing.assert_allclose(sq(v, tt), 0.5 * np.sum((tt - v) ** 2, -1), atol=1e-12)
