"""Losses (FUND-15/63/72, OPT-85), dual norms and conjugates (OPT-72/73/76), Bregman (OPT-78),
Fenchel-Young losses (OPT-79/80/81)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.optim.duality import (
    bregman_divergence,
    conjugate_absolute_loss,
    conjugate_entropy,
    conjugate_hinge_loss,
    conjugate_l1,
    conjugate_logistic_loss,
    conjugate_logsumexp,
    conjugate_norm,
    conjugate_perceptron_loss,
    conjugate_squared_loss,
    conjugate_squared_norm,
    conjugate_squared_simplex,
    dual_norm,
    fenchel_young_loss,
    fenchel_young_predict,
    fy_logistic,
    fy_perceptron,
    fy_sparsemax,
    fy_squared,
    generalized_kl,
    negentropy,
    sparsemax,
    squared_euclidean,
)
from diffprog.optim.losses import (
    hinge_loss,
    logistic_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    poisson_loss,
    softmax_cross_entropy,
    squared_loss,
)
from diffprog.optim.projections import projection_simplex
from diffprog.scipy.special import logsumexp, softmax


def test_softmax_cross_entropy_fund15():
    th = np.array([1.0, 2.0, 3.0])
    assert abs(float(softmax_cross_entropy(th, 0)) - 2.407605964444) < 1e-11
    assert float(softmax_cross_entropy(th, np.array([1.0, 0, 0]))) == float(
        softmax_cross_entropy(th, 0)
    )
    g = diffprog.grad(softmax_cross_entropy)(th, 0)
    np.testing.assert_allclose(g, [-0.909969426830, 0.244728471055, 0.665240955775], atol=1e-11)
    T = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(
        softmax_cross_entropy(T, np.array([0, 2, 1, 1])),
        [softmax_cross_entropy(t, i) for t, i in zip(T, [0, 2, 1, 1], strict=True)],
    )
    with pytest.raises(ValueError):
        softmax_cross_entropy(th, 3)
    with pytest.raises(ValueError):
        softmax_cross_entropy(th, np.ones(2))


def test_binary_logistic_fund63_opt85():
    assert abs(float(logistic_loss(np.log(4.0), 1)) - 0.223143551314) < 1e-11
    assert abs(float(logistic_loss(np.log(4.0), 0)) - 1.609437912434) < 1e-11
    assert abs(float(logistic_loss(0.0, 1)) - np.log(2)) < 1e-15
    for s, y in [(1000.0, 1), (-1000.0, -1), (1000.0, -1)]:
        v = float(logistic_loss(s, y, labels="pm1"))
        assert np.isfinite(v)
        assert np.isfinite(float(diffprog.grad(lambda t, y=y: logistic_loss(t, y, "pm1"))(s)))
    assert float(logistic_loss(1000.0, -1, "pm1")) == 1000.0
    for s, y in [(0.3, 1), (-1.2, -1)]:
        g = float(diffprog.grad(lambda t, y=y: logistic_loss(t, y, "pm1"))(s))
        assert abs(g - (-y * np.exp(-s * y) / (1 + np.exp(-s * y)))) < 1e-12
        # the {0,1} and ±1 conventions agree with y01 = (y+1)/2
        l01 = float(logistic_loss(s, (y + 1) // 2))
        assert abs(l01 - float(logistic_loss(s, y, "pm1"))) < 1e-12
    check_grads(lambda s: logistic_loss(s, 1), (np.array([0.3, -2.0]),), order=2)
    with pytest.raises(ValueError):
        logistic_loss(0.0, 0, labels="pm1")
    with pytest.raises(ValueError):
        logistic_loss(0.0, 1, labels="bad")


def test_poisson_squared_hinge():
    for y, val in [(1.0, 1.0), (4.0, 1.632876385868), (10.0, 2.078561643135)]:
        assert abs(float(poisson_loss(np.log(y), y)) - val) < 1e-11
        assert abs(float(diffprog.grad(poisson_loss)(np.log(y), y))) < 1e-12
    check_grads(lambda t: poisson_loss(t, np.array([0.0, 3.0])), (np.array([0.2, -0.4]),), order=2)
    np.testing.assert_allclose(squared_loss(np.array([1.0, 2.0]), np.zeros(2)), [0.5, 2.0])
    np.testing.assert_allclose(
        diffprog.grad(lambda p: dnp.sum(squared_loss(p, np.ones(2))))(np.array([3.0, -1.0])),
        [2.0, -2.0],
    )
    np.testing.assert_allclose(hinge_loss(np.array([2.0, 0.5, -1.0]), 1), [0.0, 0.5, 2.0])
    np.testing.assert_allclose(
        diffprog.grad(lambda s: dnp.sum(hinge_loss(s, -1)))(np.array([0.5, -2.0])), [1.0, 0.0]
    )
    th = np.array([1.0, 3.0, 2.0])
    assert float(multiclass_hinge_loss(th, 1)) == 0.0
    assert float(multiclass_hinge_loss(th, 0)) == 3.0
    assert float(multiclass_perceptron_loss(th, 0)) == 2.0
    with pytest.raises(ValueError):
        poisson_loss(0.0, -1.0)
    with pytest.raises(ValueError):
        hinge_loss(0.0, 0)
    with pytest.raises(ValueError):
        squared_loss(np.zeros(3), np.zeros(2))


# ------------------------------------------------------------------ dual norms, conjugates


def test_dual_norms_opt72():
    rng = np.random.default_rng(1)
    v = rng.standard_normal(5)
    assert float(dual_norm(v, 1)) == np.max(np.abs(v))
    assert abs(float(dual_norm(v, 3)) - np.sum(np.abs(v) ** 1.5) ** (1 / 1.5)) < 1e-12
    assert float(dual_norm(v, "linf")) == np.sum(np.abs(v))
    U, V = rng.standard_normal((2, 2000, 5))
    for p in (1, 1.5, 2, 3, np.inf):
        q = 1 / (1 - 1 / p) if 1 < p < np.inf else (np.inf if p == 1 else 1)
        lhs = np.abs(np.sum(U * V, axis=1))
        rhs = np.linalg.norm(U, ord=q, axis=1) * np.linalg.norm(V, ord=p, axis=1)
        assert np.all(lhs <= rhs + 1e-12)
    with pytest.raises(ValueError):
        dual_norm(v, 0.5)
    with pytest.raises(ValueError):
        dual_norm(v, "l7")


def test_conjugates_of_norms_opt73():
    rng = np.random.default_rng(2)
    for p in (1, 2, np.inf):
        for _ in range(5):
            v = rng.standard_normal(3)
            # sup_u <u,v> - ½‖u‖_p² = ½‖v‖_*²: attained at an explicit maximiser, never exceeded
            h = lambda u, p=p, v=v: u @ v - 0.5 * np.linalg.norm(u, ord=p) ** 2  # noqa: E731
            c = float(conjugate_squared_norm(v, p))
            if p == 2:
                ustar = v
            elif p == np.inf:
                ustar = np.abs(v).sum() * np.sign(v)
            else:
                ustar = np.zeros(3)
                k = np.argmax(np.abs(v))
                ustar[k] = v[k]
            assert abs(h(ustar) - c) < 1e-12
            res = minimize(
                lambda u, h=h: -h(u),
                v,
                method="Powell",
                options={"xtol": 1e-12, "ftol": 1e-15, "maxiter": 20000},
            )
            assert -res.fun <= c + 1e-12 and -res.fun >= c - 1e-2
            U = rng.standard_normal((1000, 3)) * 3
            assert all(h(u) <= c + 1e-12 for u in U)
    assert float(conjugate_l1(np.array([1.0, -0.3]))) == 0.0
    assert float(conjugate_l1(np.array([1.1, 0.0]))) == np.inf
    assert float(conjugate_norm(np.array([0.6, 0.8]), 2)) == 0.0
    assert float(conjugate_norm(np.array([0.6, 0.9]), 2)) == np.inf


def _loss_sup(loss, alpha, t):
    """sup_θ ⟨−α, θ⟩ − ℓ(θ) numerically (LP for piecewise-linear losses, BFGS otherwise)."""
    res = minimize(
        lambda th: alpha @ th + loss(th),
        np.zeros_like(alpha),
        method="BFGS",
        options={"gtol": 1e-12},
    )
    return -res.fun


def _lp_sup(c, t, alpha):
    """sup_θ ⟨−α, θ⟩ − (max_i(θ_i + c_i) − ⟨θ, t⟩) as an LP in (θ, s): max ⟨t−α, θ⟩ − s."""
    m = len(t)
    A = np.hstack([np.eye(m), -np.ones((m, 1))])
    res = linprog(
        np.append(-(t - alpha), 1.0),
        A_ub=A,
        b_ub=-c,
        bounds=[(-50, 50)] * m + [(None, None)],
        method="highs",
    )
    return -res.fun


def test_table_18_1_opt76():
    rng = np.random.default_rng(3)
    t = np.array([0.0, 1.0, 0.0])
    for _ in range(5):
        mu = rng.dirichlet(np.ones(3))
        alpha = t - mu  # μ = t − α in the simplex: inside every classification domain
        assert (
            abs(
                conjugate_logistic_loss(alpha, t)
                - _loss_sup(lambda th: logsumexp(th) - th @ t, alpha, t)
            )
            < 1e-6
        )
        assert abs(conjugate_perceptron_loss(alpha, t) - _lp_sup(np.zeros(3), t, alpha)) < 1e-6
        assert abs(conjugate_hinge_loss(alpha, t) - _lp_sup(1 - t, t, alpha)) < 1e-6
        a = rng.standard_normal(3)
        y = rng.standard_normal(3)
        assert (
            abs(
                conjugate_squared_loss(a, y)
                - _loss_sup(lambda th, y=y: 0.5 * np.sum((th - y) ** 2), a, y)
            )
            < 1e-6
        )
        a = rng.uniform(-1, 1, 3)
        # absolute loss: LP in (θ, s) with s ≥ |θ − y|
        m = 3
        A = np.block([[np.eye(m), -np.eye(m)], [-np.eye(m), -np.eye(m)]])
        res = linprog(
            np.concatenate([a, np.ones(m)]),
            A_ub=A,
            b_ub=np.concatenate([y, -y]),
            bounds=[(None, None)] * (2 * m),
            method="highs",
        )
        assert abs(conjugate_absolute_loss(a, y) - (-res.fun)) < 1e-6
        # Fenchel-Young inequality ℓ(θ) + ℓ*(−α) ≥ −⟨α, θ⟩
        th = rng.standard_normal(3)
        assert logsumexp(th) - th @ t + conjugate_logistic_loss(alpha, t) >= -alpha @ th - 1e-12
        assert multiclass_hinge_loss(th, 1) + conjugate_hinge_loss(alpha, t) >= -alpha @ th - 1e-12
    # outside the domain: +inf, never finite
    bad = t - np.array([0.7, 0.7, -0.4])
    assert conjugate_logistic_loss(bad, t) == np.inf
    assert conjugate_perceptron_loss(bad, t) == np.inf
    assert conjugate_hinge_loss(bad, t) == np.inf
    assert conjugate_absolute_loss(np.array([1.5, 0.0, 0.0]), t) == np.inf
    res = linprog(
        np.append(-(t - bad), 1.0),
        A_ub=np.hstack([np.eye(3), -np.ones((3, 1))]),
        b_ub=np.zeros(3),
        bounds=[(-1e3, 1e3)] * 3 + [(None, None)],
        method="highs",
    )
    assert -res.fun > 100  # the sup grows with the box: unbounded


def test_fenchel_young_inequality_for_conjugate_pairs():
    rng = np.random.default_rng(4)
    pairs = [
        (lambda x: 0.5 * dnp.sum(x * x), lambda y: conjugate_squared_norm(y, 2)),
        (lambda x: logsumexp(x), conjugate_logsumexp),
        (negentropy, conjugate_entropy),  # on the simplex
    ]
    for f, fc in pairs[:2]:
        for _ in range(20):
            x = rng.standard_normal(4)
            y = rng.dirichlet(np.ones(4)) if f is pairs[1][0] else rng.standard_normal(4)
            assert float(f(x)) + float(fc(y)) >= x @ y - 1e-12
            g = diffprog.grad(f)(x)  # equality at y = ∇f(x)
            assert abs(float(f(x)) + float(fc(g)) - x @ g) < 1e-10
    for _ in range(20):
        mu, th = rng.dirichlet(np.ones(4)), rng.standard_normal(4)
        assert float(negentropy(mu)) + float(conjugate_entropy(th)) >= mu @ th - 1e-12
        p = np.asarray(softmax(th))
        assert abs(float(negentropy(p)) + float(conjugate_entropy(th)) - p @ th) < 1e-10
    np.testing.assert_allclose(
        diffprog.grad(conjugate_squared_simplex)(th), sparsemax(th), atol=1e-14
    )
    check_grads(conjugate_entropy, (th,), order=2)


# ------------------------------------------------------------------ Bregman


def test_bregman_opt78():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 5))
    sq = lambda u: 0.5 * dnp.sum(u * u)  # noqa: E731
    assert abs(float(bregman_divergence(sq, x, y)) - 0.5 * np.sum((x - y) ** 2)) < 1e-12
    assert abs(float(squared_euclidean(x, y)) - 0.5 * np.sum((x - y) ** 2)) < 1e-12
    ent = lambda u: dnp.sum(u * dnp.log(u))  # noqa: E731
    for _ in range(50):
        u, v = rng.uniform(0.01, 3, (2, 5))
        b = float(bregman_divergence(ent, u, v))
        assert b >= 0
        assert abs(b - float(generalized_kl(u, v))) < 1e-12
        # dual form B_f(u, v) = B_{f*}(∇f(v), ∇f(u)) with f* = Σ exp(θ − 1)
        fs = lambda th: dnp.sum(dnp.exp(th - 1.0))  # noqa: E731
        assert abs(b - float(bregman_divergence(fs, np.log(v) + 1, np.log(u) + 1))) < 1e-10
    assert float(generalized_kl(np.array([1.0, 0.0]), np.array([0.0, 1.0]))) == np.inf
    assert float(generalized_kl(np.array([0.0, 1.0]), np.array([1.0, 1.0]))) == 1.0
    with pytest.raises(ValueError):
        bregman_divergence(sq, x, y[:3])
    with pytest.raises(ValueError):
        generalized_kl(-x, y)


# ------------------------------------------------------------------ Fenchel-Young


NAMES = ["logistic", "sparsemax", "perceptron", "squared"]


def test_fy_instances_opt81():
    rng = np.random.default_rng(6)
    th = rng.standard_normal(4)
    for y in range(4):
        assert abs(float(fy_logistic(th, y)) - (float(logsumexp(th)) - th[y])) < 1e-12
        assert abs(float(fy_logistic(th, y)) - float(softmax_cross_entropy(th, y))) < 1e-12
        assert abs(float(fy_perceptron(th, y)) - (th.max() - th[y])) < 1e-12
    t = rng.standard_normal(4)
    assert abs(float(fy_squared(th, t)) - 0.5 * np.sum((th - t) ** 2)) < 1e-12
    # sparsemax FY loss is zero iff sparsemax(θ) = e_y
    th2 = np.array([0.0, 3.0, 0.5])
    assert np.array_equal(np.asarray(sparsemax(th2)), [0.0, 1.0, 0.0])
    assert float(fy_sparsemax(th2, 1)) == 0.0
    assert float(fy_sparsemax(th2, 0)) > 0
    th3 = np.array([0.0, 0.2, 0.1])
    assert all(float(fy_sparsemax(th3, y)) > 0 for y in range(3))
    # hinge = perceptron applied to θ + 1 − t
    t1 = np.eye(4)[2]
    assert abs(float(multiclass_hinge_loss(th, 2)) - float(fy_perceptron(th + 1 - t1, 2))) < 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_fy_nonneg_zero_at_prediction_and_gradient(name):
    rng = np.random.default_rng(7)
    for _ in range(200):
        th = rng.standard_normal(5) * 2
        t = rng.standard_normal(5) if name == "squared" else rng.dirichlet(np.ones(5) * 0.3)
        assert float(fenchel_young_loss(name, th, t)) >= -1e-12
        pred = np.asarray(fenchel_young_predict(name, th))
        assert abs(float(fenchel_young_loss(name, th, pred))) < 1e-12
        g = diffprog.grad(lambda s, t=t: fenchel_young_loss(name, s, t))(th)
        np.testing.assert_allclose(g, pred - t, atol=1e-12)
    # convex along random segments in θ
    t = np.eye(5)[1]
    for _ in range(50):
        a, b = rng.standard_normal((2, 5))
        lam = rng.uniform()
        mid = float(fenchel_young_loss(name, lam * a + (1 - lam) * b, t))
        assert (
            mid
            <= lam * float(fenchel_young_loss(name, a, t))
            + (1 - lam) * float(fenchel_young_loss(name, b, t))
            + 1e-12
        )


def test_fy_logistic_sparsemax_grads_and_bregman_sandwich():
    th = np.array([0.3, -1.0, 0.8, 0.1])
    t = np.array([0.2, 0.0, 0.5, 0.3])
    np.testing.assert_allclose(diffprog.grad(fy_logistic)(th, t), softmax(th) - t, atol=1e-14)
    np.testing.assert_allclose(
        diffprog.grad(fy_sparsemax)(th, t), projection_simplex(th) - t, atol=1e-14
    )
    check_grads(lambda s: fy_logistic(s, t), (th,), order=2)
    check_grads(lambda s: fy_sparsemax(s, t), (th,), order=1)
    # 0 ≤ B_Ω(t, ∇Ω*(θ)) ≤ ℓ_Ω(θ, t) for Ω = ½‖·‖² + ι_Δ
    p = np.asarray(sparsemax(th))
    assert 0 <= 0.5 * np.sum((t - p) ** 2) <= float(fy_sparsemax(th, t)) + 1e-12
    # generic (omega, omega_conj) pair reproduces the named one
    pair = (
        lambda u: dnp.sum(dnp.where(u > 0, u * dnp.log(dnp.maximum(u, 1e-300)), 0.0)),
        lambda s: logsumexp(s, axis=-1),
    )
    assert abs(float(fenchel_young_loss(pair, th, t)) - float(fy_logistic(th, t))) < 1e-12


def test_fy_errors():
    th = np.zeros(3)
    with pytest.raises(ValueError):
        fenchel_young_loss("nope", th, 0)
    with pytest.raises(ValueError):
        fenchel_young_loss("logistic", th, np.array([0.5, 0.6, 0.0]))
    with pytest.raises(ValueError):
        fenchel_young_loss("sparsemax", th, 3)
    with pytest.raises(ValueError):
        fenchel_young_loss("logistic", th, np.ones(2) / 2)
    with pytest.raises(TypeError):
        fenchel_young_loss((1, 2), th, 0)


def test_softmax_cross_entropy_with_integer_labels_under_jit_and_vmap():
    """Labels are data, not constants: a jitted loss called with new labels uses them."""
    import diffprog
    from diffprog.optim.losses import softmax_cross_entropy

    rng = np.random.default_rng(0)
    theta = rng.normal(size=(5, 4))
    f = diffprog.jit(lambda t, y: dnp.sum(softmax_cross_entropy(t, y)))
    for y in (np.array([0, 1, 2, 3, 0]), np.array([3, 3, 1, 0, 2])):
        lse = np.log(np.exp(theta).sum(-1))
        expected = float(np.sum(lse - theta[np.arange(5), y]))
        assert f(theta, y) == pytest.approx(expected, rel=1e-12)
        g = diffprog.jit(diffprog.grad(lambda t, y: dnp.sum(softmax_cross_entropy(t, y))))(
            theta, y)
        p = np.exp(theta) / np.exp(theta).sum(-1, keepdims=True)
        np.testing.assert_allclose(g, p - np.eye(4)[y], atol=1e-12)
    per_example = diffprog.vmap(softmax_cross_entropy)(theta, np.array([0, 1, 2, 3, 0]))
    np.testing.assert_allclose(per_example, softmax_cross_entropy(theta, np.array([0, 1, 2, 3, 0])),
                               rtol=1e-12)
