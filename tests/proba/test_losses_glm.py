"""Probabilistic losses, MLE and GLMs (book §3.2–3.4.5): FUND-51–53, 59, 60, 63, 69, 72, 74,
83–87. GLM fits are compared with scikit-learn (an independent implementation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from sklearn.linear_model import LogisticRegression, PoissonRegressor

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.optim import adam, apply_updates
from diffprog.proba import (
    Bernoulli,
    MultivariateNormal,
    Normal,
    bernoulli_family,
    binary_logistic_loss,
    categorical_family,
    empirical_risk,
    fit_glm,
    fit_mle,
    gaussian_nll,
    glm_objective,
    linear_model,
    logistic,
    logit,
    poisson_family,
    poisson_loss,
    predict_distribution,
    predict_mean,
    predict_proba,
    psd_from_factor,
    sigmoid,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    squared_loss,
)

# ------------------------------------------------------------------------- FUND-51 / 52 / 53


def test_fund51_logistic_values_stability_and_derivative():
    assert float(logistic(0.0)) == 0.5
    assert math.isclose(float(logistic(math.log(4))), 0.8, rel_tol=1e-15)
    with np.errstate(all="raise"):
        assert float(logistic(1000.0)) == 1.0 and float(logistic(-1000.0)) == 0.0
    assert sigmoid is logistic
    x = np.linspace(-6, 6, 7)
    s = np.asarray(logistic(x))
    np.testing.assert_allclose(diffprog.vmap(diffprog.grad(logistic))(x), s * (1 - s), atol=1e-15)


def test_fund52_logit_inverse_and_misprint():
    assert math.isclose(float(logit(0.8)), 1.386294361120, abs_tol=1e-12)
    assert not math.isclose(float(logit(0.8)), math.log(0.8 / 1.8), abs_tol=1e-3)  # log π/(1+π)
    x = np.linspace(-15, 15, 7)  # beyond, 1 − σ(x) keeps too few digits in float64
    np.testing.assert_allclose(logit(logistic(x)), x, rtol=1e-8, atol=1e-12)
    assert float(logit(0.0)) == -np.inf and float(logit(1.0)) == np.inf


def test_fund53_univariate_logistic_least_squares_reference_values():
    def L(w, b, x, t, lam=0.1):
        y = logistic(w * x + b)
        return 0.5 * (y - t) ** 2 + lam * 0.5 * w ** 2

    val = float(L(2.0, 0.5, 1.5, 1.0))
    gw, gb, gx = diffprog.grad(L, argnums=(0, 1, 2))(2.0, 0.5, 1.5, 1.0)
    assert math.isclose(val, 0.200429603436, abs_tol=1e-12)
    assert math.isclose(float(gw), 0.198748967598, abs_tol=1e-12)
    assert math.isclose(float(gb), -0.000834021602, abs_tol=1e-12)
    assert math.isclose(float(gx), -0.001668043203, abs_tol=1e-12)
    check_grads(L, (2.0, 0.5, 1.5, 1.0), order=2)


# ------------------------------------------------------------------------- FUND-63 / 69 / 72


def test_fund63_binary_logistic_loss_on_logits():
    t = math.log(4)
    assert math.isclose(float(binary_logistic_loss(t, 1)), 0.223143551314, abs_tol=1e-12)
    assert math.isclose(float(binary_logistic_loss(t, 0)), 1.609437912434, abs_tol=1e-12)
    assert math.isclose(float(binary_logistic_loss(0.0, 1)), math.log(2), rel_tol=1e-15)
    assert sigmoid_binary_cross_entropy is binary_logistic_loss
    for th in (1000.0, -1000.0):
        for y in (0, 1):
            assert np.isfinite(float(binary_logistic_loss(th, y)))
    th = np.array([-2.0, 0.3, 4.0])
    y = np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(diffprog.grad(lambda t: dnp.sum(binary_logistic_loss(t, y)))(th),
                               np.asarray(logistic(th)) - y, atol=1e-15)
    np.testing.assert_allclose(binary_logistic_loss(th, y), -np.asarray(
        Bernoulli(logits=th).log_prob(y)), atol=1e-15)


def test_fund69_gaussian_nll_and_misprint():
    assert math.isclose(float(gaussian_nll(1.3, 1.3)), 0.918938533205, abs_tol=1e-12)
    mu, y, s = 0.4, 2.1, 1.7
    assert math.isclose(float(gaussian_nll(mu, y, s)), -float(Normal(mu, s).log_prob(y)),
                        rel_tol=1e-14)
    assert math.isclose(float(gaussian_nll(mu, y, s)), -st.norm(mu, s).logpdf(y), rel_tol=1e-13)
    printed = (y - mu) ** 2 / s ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)  # 1/σ² misprint
    assert not math.isclose(float(gaussian_nll(mu, y, s)), printed, rel_tol=1e-3)
    # σ = 1: squared loss + ½ log 2π
    ys = np.array([-2.0, 0.0, 2.0])
    np.testing.assert_allclose(gaussian_nll(0.5, ys), squared_loss(np.full(3, 0.5), ys)
                               + 0.5 * math.log(2 * math.pi), atol=1e-15)
    check_grads(lambda m, s: gaussian_nll(m, ys, s), (0.5, 1.3), order=2)
    with pytest.raises(ValueError, match="gaussian_nll: argument 'sigma'"):
        gaussian_nll(0.0, 1.0, sigma=0.0)


def test_fund72_poisson_loss_minima_and_gradient():
    for y, v in [(1, 1.0), (4, 1.632876385868), (10, 2.078561643135)]:
        assert math.isclose(float(poisson_loss(math.log(y), y)), v, abs_tol=1e-12)
        assert abs(float(diffprog.grad(poisson_loss)(math.log(y), float(y)))) < 1e-12
        grid = np.linspace(math.log(y) - 2, math.log(y) + 2, 401)
        assert float(np.min(poisson_loss(grid, y))) >= v - 1e-15
    th = np.array([0.2, 1.5])
    np.testing.assert_allclose(diffprog.grad(lambda t: dnp.sum(poisson_loss(t, 3.0)))(th),
                               np.exp(th) - 3.0, atol=1e-14)
    np.testing.assert_allclose(poisson_loss(th, 3.0), -st.poisson(np.exp(th)).logpmf(3),
                               rtol=1e-13)


# ------------------------------------------------------------------------- FUND-59 / 60


def test_fund59_fit_mle_normal_example_3_1():
    data = np.array([1.0, 2.0, 4.0, 7.0])

    def lp(p, y):
        return Normal(p[0], dnp.exp(p[1])).log_prob(y)

    for solver in ("bfgs", "lbfgs", "newton"):
        p = fit_mle(lp, np.zeros(2), data, solver=solver)
        assert abs(float(p[0]) - 3.5) < 1e-6
        assert abs(math.exp(2 * float(p[1])) - 5.25) < 1e-6  # 1/N variance, not 7.0
    mu, s = st.norm.fit(data)
    assert math.isclose(mu, 3.5) and math.isclose(s ** 2, 5.25)
    with pytest.raises(ValueError, match="fit_mle: argument 'solver'"):
        fit_mle(lp, np.zeros(2), data, solver="sgd")
    with pytest.raises(ValueError, match="fit_mle: argument 'data'"):
        fit_mle(lp, np.zeros(2), np.array([]))


def test_fund60_mle_consistency_with_many_samples():
    y = Normal(1.0, 2.0).sample(0, 100_000)

    def lp(p, y):
        return Normal(p[0], dnp.exp(p[1])).log_prob(y)

    p = fit_mle(lp, np.zeros(2), y)
    assert abs(float(p[0]) - 1.0) < 0.03
    assert abs(math.exp(2 * float(p[1])) - 4.0) < 0.1
    # the KL estimate (1/N) Σ log p(y_i) − log p_λ̂(y_i) is small and ≥ the true KL(p, p_λ̂) ≈ 0
    kl_hat = float(np.mean(Normal(1.0, 2.0).log_prob(y) - lp(p, y)))
    assert abs(kl_hat) < 1e-3


# ------------------------------------------------------------------------- FUND-74


def test_fund74_empirical_risk_gradient_is_mean_of_per_example_gradients():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 3)), rng.integers(0, 2, 6).astype(float)
    w = rng.normal(size=3)
    R = empirical_risk(binary_logistic_loss, lambda w, X: X @ w, X, Y)
    g = R.grad(w)
    per = [diffprog.grad(lambda w, i=i: binary_logistic_loss(X[i] @ w, Y[i]))(w) for i in range(6)]
    np.testing.assert_allclose(g, np.mean(per, axis=0), atol=1e-14)
    assert math.isclose(float(R.value(w)), float(np.mean(binary_logistic_loss(X @ w, Y))),
                        rel_tol=1e-14)


# ------------------------------------------------------------------------- FUND-83 … 87


def _binary_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    p = 1 / (1 + np.exp(-(X @ np.array([1.0, -2.0]) + 0.3)))
    return X, (rng.random(n) < p).astype(float)


def test_fund83_glm_gradient_and_predictions():
    X, Y = _binary_data()
    w = (np.array([0.2, -0.1]), 0.05)
    obj = glm_objective(bernoulli_family)
    gW, gb = diffprog.grad(obj)(w, X, Y)
    resid = np.asarray(logistic(X @ w[0] + w[1])) - Y
    np.testing.assert_allclose(gW, X.T @ resid, atol=1e-12)
    assert math.isclose(float(gb), resid.sum(), rel_tol=1e-12)
    np.testing.assert_allclose(float(obj(w, X, Y)), np.sum(binary_logistic_loss(
        X @ w[0] + w[1], Y)), rtol=1e-13)
    # categorical: predict_mean (∇A = softargmax θ) == predict_proba vector
    rng = np.random.default_rng(1)
    Xc = rng.normal(size=(5, 3))
    wc = (rng.normal(size=(3, 4)), rng.normal(size=4))
    fam = categorical_family(4)
    mean = np.asarray(predict_mean(fam)(wc, Xc))
    proba = np.stack([predict_proba(fam)(wc, Xc, np.full(5, k)) for k in range(4)], axis=-1)
    np.testing.assert_allclose(mean, proba, atol=1e-14)
    Yc = rng.integers(0, 4, 5)
    gW, gb = diffprog.grad(glm_objective(fam))(wc, Xc, Yc)
    np.testing.assert_allclose(gW, Xc.T @ (mean - np.eye(4)[Yc]), atol=1e-12)
    d = predict_distribution(poisson_family)((np.zeros(3), np.log(2.0)), Xc)
    np.testing.assert_allclose(d.variance(), 2.0, rtol=1e-14)


def test_fund84_logistic_regression_matches_sklearn():
    X, Y = _binary_data()
    W, b = fit_glm(bernoulli_family, X, Y)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, Y)
    np.testing.assert_allclose(W, sk.coef_[0], atol=1e-4)
    assert abs(float(b) - sk.intercept_[0]) < 1e-4


def test_fund85_softmax_regression_matches_sklearn_probabilities():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 2))
    logits = X @ np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]]) + np.array([0.2, 0.0, -0.2])
    Y = np.array([rng.choice(3, p=np.exp(t) / np.exp(t).sum()) for t in logits])
    W, b = fit_glm(categorical_family(3), X, Y)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, Y)
    P = np.asarray(predict_mean(categorical_family(3))((W, b), X))
    np.testing.assert_allclose(P, sk.predict_proba(X), atol=1e-4)
    # the logits agree up to a per-row shift
    diff = (X @ W + b) - sk.decision_function(X)
    np.testing.assert_allclose(diff - diff.mean(axis=1, keepdims=True), 0.0, atol=1e-3)


def test_fund86_poisson_regression_matches_sklearn():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2)) * 0.5
    Y = rng.poisson(np.exp(X @ np.array([0.7, -0.4]) + 0.5)).astype(float)
    W, b = fit_glm(poisson_family, X, Y)
    sk = PoissonRegressor(alpha=0.0, tol=1e-12, max_iter=10_000).fit(X, Y)
    np.testing.assert_allclose(W, sk.coef_, atol=1e-4)
    assert abs(float(b) - sk.intercept_) < 1e-4
    np.testing.assert_allclose(predict_mean(poisson_family)((W, b), X), sk.predict(X), rtol=1e-4)


def test_fund87_multivariate_regression_with_learned_covariance():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(40, 2)) * np.array([0.5, 1.5])
    eps = 1e-3

    def model(w, X):
        Wm, bm, Ws, bs = w
        mu = X @ Wm + bm
        S = dnp.reshape(X @ Ws + bs, (X.shape[0], 2, 2))
        return mu, psd_from_factor(S, eps=eps)

    def nll(w, X, Y):
        mu, cov = model(w, X)
        return -dnp.mean(MultivariateNormal(mu, cov=cov).log_prob(Y))

    w = (0.1 * rng.normal(size=(3, 2)), np.zeros(2), 0.1 * rng.normal(size=(3, 4)),
         np.array([1.0, 0.0, 0.0, 1.0]))
    mu, cov = model(w, X)
    ref = -np.mean([st.multivariate_normal(m, c).logpdf(y)
                    for m, c, y in zip(mu, cov, Y, strict=True)])
    assert math.isclose(float(nll(w, X, Y)), ref, rel_tol=1e-10)
    # NLL formula: ½⟨y−μ, Σ⁻¹(y−μ)⟩ + ½ log det Σ + (M/2) log 2π
    r = Y[0] - mu[0]
    direct = 0.5 * r @ np.linalg.solve(cov[0], r) + 0.5 * np.log(np.linalg.det(cov[0])) \
        + np.log(2 * np.pi)
    assert math.isclose(-float(MultivariateNormal(mu[0], cov=cov[0]).log_prob(Y[0])), direct,
                        rel_tol=1e-12)
    check_grads(lambda w: nll(w, X[:6], Y[:6]), (w,), order=1)
    opt = adam(1e-2)
    state = opt.init(w)
    start = float(nll(w, X, Y))
    for _ in range(60):
        g = diffprog.grad(nll)(w, X, Y)
        upd, state = opt.update(g, state, w)
        w = apply_updates(w, upd)
        _, cov = model(w, X)
        assert np.linalg.eigvalsh(np.asarray(cov)).min() > 0  # Σ stays PD (≥ ε)
    assert float(nll(w, X, Y)) < start


def test_glm_bad_inputs():
    with pytest.raises(ValueError, match="fit_glm: argument 'X'"):
        fit_glm(bernoulli_family, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="fit_glm: 'Y'"):
        fit_glm(bernoulli_family, np.ones((3, 2)), np.ones(4))
    X = np.array([[-1.0], [1.0]])
    with pytest.raises(ValueError, match="separable"):
        fit_glm(bernoulli_family, X, np.array([0.0, 1.0]), maxiter=30)
    W, b = fit_glm(bernoulli_family, X, np.array([0.0, 1.0]), l2=0.1)
    assert np.all(np.isfinite(W))
    assert linear_model((np.ones(2), 1.0), np.ones((3, 2))).tolist() == [3.0, 3.0, 3.0]
    assert float(softmax_cross_entropy(np.array([1.0, 2.0, 3.0]), 0)) == pytest.approx(
        2.407605964444, abs=1e-12)
