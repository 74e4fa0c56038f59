"""Distributions of diffprog.proba (book §3.1–3.3): FUND-54, 56, 58, 61, 62, 64–68, 70, 71, 73.

Reference values are closed forms, SciPy, numerical quadrature, brute-force sums, or the
"derived" numbers of the spec; moments are also checked against Monte Carlo samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from hypothesis import given
from hypothesis import strategies as hs

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.proba import (
    Bernoulli,
    Categorical,
    Dirichlet,
    Exponential,
    Gamma,
    Gumbel,
    Logistic,
    MultivariateNormal,
    Normal,
    Poisson,
    entropy,
    erf,
    expectation,
    in_simplex,
    logistic,
    mode,
    normal_cdf,
    psd_from_factor,
    softargmax,
    softmax_cross_entropy,
    variance,
)

PI3 = np.array([0.3, 0.6, 0.1])
CONTINUOUS = [
    (Normal(0.5, 2.0), st.norm(0.5, 2.0)),
    (Logistic(0.5, 2.0), st.logistic(0.5, 2.0)),
    (Gumbel(0.5, 2.0), st.gumbel_r(0.5, 2.0)),
    (Exponential(1.5), st.expon(scale=1 / 1.5)),
    (Gamma(3.0, 2.0), st.gamma(3.0, scale=0.5)),
]


def _mc_mean_ok(samples, mean, var, k=5.0):
    """|sample mean − mean| within k standard errors (CLT)."""
    n = samples.shape[0]
    return np.all(np.abs(samples.mean(axis=0) - mean) <= k * np.sqrt(var / n) + 1e-12)


# ------------------------------------------------------------------ FUND-54 / 58 / 66 PMFs


def test_fund54_expectation_variance_mode_of_pmf_vectors():
    assert int(mode(PI3)) == 1
    np.testing.assert_allclose(expectation(PI3, np.eye(3)), PI3, atol=1e-15)
    vals = np.array([0.0, 1.0])
    assert math.isclose(float(variance(np.array([0.2, 0.8]), vals)), 0.16, abs_tol=1e-15)
    assert math.isclose(float(Bernoulli(probs=0.8).variance()), 0.16, abs_tol=1e-15)
    # brute force with a vector statistic
    v = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 5.0]])
    e = sum(PI3[i] * v[i] for i in range(3))
    np.testing.assert_allclose(expectation(PI3, v), e, atol=1e-14)
    np.testing.assert_allclose(variance(PI3, v), sum(PI3[i] * (v[i] - e) ** 2 for i in range(3)),
                               atol=1e-13)
    with pytest.raises(ValueError, match="expectation: argument 'values'"):
        expectation(PI3, np.ones(4))


def test_fund58_entropy_values_maximum_and_one_hot():
    assert math.isclose(float(entropy(PI3)), 0.897945724857, abs_tol=1e-12)
    assert math.isclose(float(entropy(np.ones(5) / 5)), math.log(5), abs_tol=1e-14)
    h = float(entropy(np.array([0.0, 1.0, 0.0])))
    assert h == 0.0 and not math.isnan(h)
    rng = np.random.default_rng(0)
    for _ in range(20):  # uniform is the maximum
        assert float(entropy(rng.dirichlet(np.ones(5)))) <= math.log(5) + 1e-12
    assert math.isclose(float(entropy(Categorical(probs=PI3))), 0.897945724857, abs_tol=1e-12)
    assert math.isclose(float(Categorical(logits=np.log(PI3)).entropy()), 0.897945724857,
                        abs_tol=1e-12)


def test_fund58_continuous_entropy_matches_quadrature_and_scipy():
    for d, ref in CONTINUOUS:
        assert math.isclose(float(d.entropy()), float(ref.entropy()), rel_tol=1e-10), d
        lo, hi = ref.ppf(1e-15), ref.isf(1e-15)
        q = si.quad(lambda y, d=d: -float(d.prob(y)) * float(d.log_prob(y)), lo, hi,
                    limit=200)[0]
        assert math.isclose(float(d.entropy()), q, abs_tol=1e-7), d
    for lam in (0.5, 3.0, 40.0):
        assert math.isclose(float(Poisson(rate=lam).entropy()), st.poisson(lam).entropy(),
                            rel_tol=1e-12)
    a = np.array([0.7, 2.0, 3.5])
    assert math.isclose(float(Dirichlet(a).entropy()), st.dirichlet(a).entropy(), rel_tol=1e-12)
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    assert math.isclose(float(MultivariateNormal(np.zeros(2), cov=cov).entropy()),
                        st.multivariate_normal(np.zeros(2), cov).entropy(), rel_tol=1e-12)


def test_fund66_in_simplex():
    assert bool(in_simplex(PI3))
    assert not bool(in_simplex(np.array([0.5, 0.6, -0.1])))
    assert not bool(in_simplex(np.array([0.5, 0.6, 0.1])))
    z = np.random.default_rng(1).normal(size=(50, 4)) * 10
    assert np.all(in_simplex(np.asarray(softargmax(z, axis=-1))))


# ------------------------------------------------------------------- FUND-56 / 67 / 68


@pytest.mark.parametrize("d, ref", CONTINUOUS, ids=lambda x: type(x).__name__)
def test_fund56_pdf_integrates_to_one_and_cdf_is_its_integral(d, ref):
    lo, hi = ref.ppf(0.0), ref.isf(0.0)
    with np.errstate(over="ignore"):  # Gumbel's e^{−z} overflows far left: p = 0 there
        total = si.quad(lambda y: float(d.prob(y)), lo, hi, epsabs=1e-13, epsrel=1e-13,
                        limit=200)[0]
    assert abs(total - 1.0) < 1e-10
    ys = ref.ppf(np.linspace(0.01, 0.99, 9))
    np.testing.assert_allclose(d.log_prob(ys), ref.logpdf(ys), rtol=1e-12, atol=1e-12)
    if type(d) is not Gamma:  # Gamma has no closed-form CDF
        np.testing.assert_allclose(d.cdf(ys), ref.cdf(ys), rtol=1e-12, atol=1e-14)
        a, b = ys[1], ys[6]
        q = si.quad(lambda y: float(d.prob(y)), a, b, epsabs=1e-13)[0]
        assert abs(float(d.prob_interval(a, b)) - q) < 1e-10
        # d cdf / dy = pdf (FUND-64, FUND-67)
        dcdf = diffprog.grad(lambda y: d.cdf(y))
        for y in ys[::3]:
            assert math.isclose(float(dcdf(y)), float(d.prob(y)), rel_tol=1e-10)
    assert math.isclose(float(d.mean()), ref.mean(), rel_tol=1e-12)
    assert math.isclose(float(d.variance()), ref.var(), rel_tol=1e-12)


def test_fund67_normal_cdf_values_and_prob_interval():
    d = Normal(0.0, 1.0)
    assert float(d.cdf(0.0)) == 0.5
    assert math.isclose(float(d.cdf(1.0)), 0.841344746069, abs_tol=1e-12)
    assert math.isclose(float(d.cdf(1.96)), 0.975002104852, abs_tol=1e-12)
    assert math.isclose(float(d.prob_interval(-1.0, 1.0)), 0.682689492137, abs_tol=1e-12)
    # P(a<Y≤b) = ½[erf((b−μ)/(σ√2)) − erf((a−μ)/(σ√2))]
    d2 = Normal(1.0, 3.0)
    r2 = 3 * math.sqrt(2)
    ref = 0.5 * (math.erf((4.0 - 1) / r2) - math.erf((-2.0 - 1) / r2))
    assert math.isclose(float(d2.prob_interval(-2.0, 4.0)), ref, rel_tol=1e-13)
    assert float(d2.mode()) == 1.0
    # left tail keeps relative accuracy (erfc form)
    assert math.isclose(float(normal_cdf(-30.0)), st.norm.cdf(-30.0), rel_tol=1e-10)


def test_fund68_erf_and_normal_cdf_differentiable():
    assert float(erf(0.0)) == 0.0
    assert float(erf(np.inf)) == 1.0 and float(erf(-np.inf)) == -1.0
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(erf(-x), -np.asarray(erf(x)), atol=1e-15)
    assert math.isclose(float(diffprog.grad(erf)(0.0)), 1.128379167096, abs_tol=1e-12)
    assert math.isclose(float(diffprog.grad(normal_cdf)(0.7)), st.norm.pdf(0.7), rel_tol=1e-12)
    check_grads(normal_cdf, (np.array([-2.0, 0.3, 1.5]),), order=2)


# --------------------------------------------------------------------- FUND-62 / 65 / 71


def test_fund62_bernoulli_fig_3_1_values():
    for d in (Bernoulli(probs=0.8), Bernoulli(logits=math.log(4.0))):
        assert math.isclose(float(d.prob(1)), 0.8, abs_tol=1e-15)
        assert math.isclose(float(d.cdf(0)), 0.2, abs_tol=1e-15)
        assert math.isclose(float(d.variance()), 0.16, abs_tol=1e-15)
        assert math.isclose(float(d.mean()), 0.8, abs_tol=1e-15)
        assert float(d.mode()) == 1.0
        assert math.isclose(float(d.natural_parameters()), 1.386294361120, abs_tol=1e-12)
        assert math.isclose(float(d.log_partition()), 1.609437912434, abs_tol=1e-12)
        assert float(d.cdf(-0.5)) == 0.0 and float(d.cdf(1.0)) == 1.0
        assert float(d.log_prob(0.5)) == -np.inf
    ys = np.array([0, 1, 1, 0])
    np.testing.assert_allclose(Bernoulli(probs=0.8).log_prob(ys),
                               Bernoulli(logits=math.log(4.0)).log_prob(ys), atol=1e-15)
    # entropy: both parameterizations, 0 at the boundary (no nan)
    assert math.isclose(float(Bernoulli(logits=0.3).entropy()),
                        float(Bernoulli(probs=float(logistic(0.3))).entropy()), rel_tol=1e-13)
    assert float(Bernoulli(probs=0.0).entropy()) == 0.0
    # extreme logits stay finite
    assert np.isfinite(float(Bernoulli(logits=1000.0).log_prob(0)))


def test_fund65_categorical_fig_3_2_values():
    d = Categorical(probs=PI3)
    np.testing.assert_allclose(d.cdf(np.arange(3)), [0.3, 0.9, 1.0], atol=1e-15)
    np.testing.assert_allclose(d.mean(), PI3)
    assert int(d.mode()) == 1
    np.testing.assert_allclose(d.logits_parameter(),
                               [-1.203972804326, -0.510825623766, -2.302585092994], atol=1e-12)
    d2 = Categorical(logits=np.log(PI3))
    np.testing.assert_allclose(d2.probs_parameter(), PI3, atol=1e-15)
    np.testing.assert_allclose(d2.log_prob(np.arange(3)), np.log(PI3), atol=1e-15)
    np.testing.assert_allclose(d2.covariance(), np.diag(PI3) - np.outer(PI3, PI3), atol=1e-15)
    assert float(d.log_prob(3)) == -np.inf
    # underflowing softargmax: log-probabilities come from logits, not log(softargmax)
    big = Categorical(logits=np.array([0.0, 1000.0]))
    assert math.isclose(float(big.log_prob(0)), -1000.0, rel_tol=1e-15)
    # batched labels
    L = np.random.default_rng(0).normal(size=(4, 3))
    y = np.array([0, 2, 1, 1])
    np.testing.assert_allclose(-Categorical(logits=L).log_prob(y), softmax_cross_entropy(L, y),
                               atol=1e-13)


def test_fund71_poisson_pmf_sums_to_one_moments_cdf():
    d = Poisson(rate=10.0)
    ks = np.arange(201)
    p = np.asarray(d.prob(ks))
    assert abs(p.sum() - 1.0) < 1e-12
    assert abs((ks * p).sum() - 10.0) < 1e-10
    assert abs(((ks - 10.0) ** 2 * p).sum() - 10.0) < 1e-9
    np.testing.assert_allclose(d.log_prob(ks[:50]), st.poisson(10.0).logpmf(ks[:50]), rtol=1e-12)
    np.testing.assert_allclose(d.cdf(np.array([0, 3, 10.5, 25])),
                               st.poisson(10.0).cdf([0, 3, 10, 25]), rtol=1e-12)
    assert float(d.log_prob(2.5)) == -np.inf and float(d.log_prob(-1)) == -np.inf
    np.testing.assert_allclose(Poisson(log_rate=np.log(10.0)).log_prob(ks[:30]),
                               d.log_prob(ks[:30]), atol=1e-12)
    assert float(Poisson(rate=2.5).mode()) == 2.0
    # log y! through gammaln: no overflow at large y
    assert np.isfinite(float(Poisson(rate=1000.0).log_prob(1000)))


# ----------------------------------------------------------------------- FUND-64


def test_fund64_logistic_distribution_needs_one_over_sigma():
    d = Logistic(1.0, 2.0)
    assert float(d.cdf(1.0)) == 0.5
    total = si.quad(lambda u: float(d.prob(u)), -np.inf, np.inf, epsabs=1e-13)[0]
    assert abs(total - 1.0) < 1e-10
    # the printed density p_{0,1}((u−μ)/σ) (no 1/σ) integrates to σ = 2: we are not that one
    printed = si.quad(lambda u: float(Logistic(0.0, 1.0).prob((u - 1.0) / 2.0)), -np.inf,
                      np.inf)[0]
    assert abs(printed - 2.0) < 1e-8 and abs(total - printed) > 0.5
    # Rem. 3.1: U ~ Logistic(μ, σ), P(U ≤ u) = logistic((u−μ)/σ), checked by sampling
    u0 = 2.2
    s = d.sample(0, 200_000)
    p = float(logistic((u0 - 1.0) / 2.0))
    assert abs(np.mean(s <= u0) - p) < 5 * math.sqrt(p * (1 - p) / s.size)


# ----------------------------------------------------------------------- FUND-70 / 73


def test_fund70_mvn_matches_scipy_and_diagonal_case():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(3, 3))
    cov = psd_from_factor(S, eps=0.1)
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    mu = rng.normal(size=3)
    ys = rng.normal(size=(10, 3))
    ref = st.multivariate_normal(mu, cov).logpdf(ys)
    d = MultivariateNormal(mu, cov=cov)
    np.testing.assert_allclose(d.log_prob(ys), ref, rtol=1e-10, atol=1e-10)
    L = np.linalg.cholesky(cov)
    np.testing.assert_allclose(MultivariateNormal(mu, scale_tril=L).log_prob(ys), ref, rtol=1e-10)
    np.testing.assert_allclose(d.covariance(), cov)
    # diagonal Σ = independent normals
    sd = np.array([0.5, 1.0, 2.0])
    dd = MultivariateNormal(mu, cov=np.diag(sd ** 2))
    np.testing.assert_allclose(dd.log_prob(ys),
                               np.asarray(Normal(mu, sd).log_prob(ys)).sum(-1), atol=1e-12)
    # batched parameters
    mus = rng.normal(size=(4, 3))
    db = MultivariateNormal(mus, cov=cov)
    np.testing.assert_allclose(db.log_prob(ys[:4]),
                               [st.multivariate_normal(m, cov).logpdf(y)
                                for m, y in zip(mus, ys[:4], strict=True)], rtol=1e-10)
    # the pdf normalizer is (2π)^{-M/2} det(Σ)^{-1/2}, not 1/√(2π^M |Σ|) (misprint 5)
    at_mean = float(d.log_prob(mu))
    assert math.isclose(at_mean, -1.5 * math.log(2 * math.pi) - 0.5 * math.log(
        np.linalg.det(cov)), rel_tol=1e-12)
    assert not math.isclose(at_mean, -0.5 * math.log(2 * math.pi ** 3 * np.linalg.det(cov)),
                            rel_tol=1e-3)


def test_fund70_mvn_gradients_wrt_loc_and_factor():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 2))

    def f(mu, S):
        return dnp.sum(MultivariateNormal(mu, cov=psd_from_factor(S, eps=0.5)).log_prob(y))

    check_grads(f, (rng.normal(size=2), rng.normal(size=(2, 2))), order=2)

    def g(mu, L):  # scale_tril route
        return dnp.sum(MultivariateNormal(mu, scale_tril=dnp.tril(L)).log_prob(y))

    L0 = np.array([[1.5, 0.0], [0.3, 0.8]])
    check_grads(g, (rng.normal(size=2), L0), order=2)


def test_fund73_links_map_outputs_into_parameter_domains():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(100, 4)) * 20
    p = np.asarray(logistic(z))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(in_simplex(np.asarray(softargmax(z, axis=-1))))
    assert np.all(np.asarray(dnp.exp(z)) >= 0)
    for _ in range(20):
        cov = np.asarray(psd_from_factor(rng.normal(size=(4, 4)) * 5))
        assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() >= -1e-12 * max(
            1.0, np.abs(cov).max())
    with pytest.raises(ValueError, match="psd_from_factor: argument 'S'"):
        psd_from_factor(np.ones(3))


# ----------------------------------------------------------------------- FUND-61


def test_fund61_distribution_built_from_model_outputs_is_differentiable():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(8, 3)), rng.integers(0, 4, size=8)
    W = rng.normal(size=(3, 4))

    def via_distribution(W):
        return -dnp.mean(Categorical(logits=X @ W).log_prob(y))

    def explicit(W):
        t = X @ W
        m = dnp.max(t, axis=-1, keepdims=True)
        lse = dnp.log(dnp.sum(dnp.exp(t - m), axis=-1)) + m[:, 0]
        return dnp.mean(lse - t[np.arange(8), y])

    np.testing.assert_allclose(diffprog.grad(via_distribution)(W), diffprog.grad(explicit)(W),
                               atol=1e-13)
    # the gradient w.r.t. the distribution object itself is a Categorical pytree
    g = diffprog.grad(lambda d: dnp.sum(d.log_prob(y)))(Categorical(logits=X @ W))
    assert isinstance(g, Categorical) and g.logits.shape == (8, 4)


@pytest.mark.parametrize("make, args", [
    (lambda m, s: Normal(m, s), (0.3, 1.7)),
    (lambda m, s: Logistic(m, s), (0.3, 1.7)),
    (lambda m, s: Gumbel(m, s), (0.3, 1.7)),
    (lambda a, b: Gamma(a, b), (2.5, 1.7)),
], ids=["normal", "logistic", "gumbel", "gamma"])
def test_fund61_check_grads_log_prob_cdf_entropy_wrt_parameters(make, args):
    y = np.array([0.2, 1.1, 2.5])
    check_grads(lambda a, b: make(a, b).log_prob(y), args, order=2)
    check_grads(lambda a, b: make(a, b).entropy(), args, order=2)
    if not isinstance(make(*args), Gamma):
        check_grads(lambda a, b: make(a, b).cdf(y), args, order=2)


def test_fund61_check_grads_discrete_parameters():
    y = np.array([0, 1, 1])
    check_grads(lambda t: Bernoulli(logits=t).log_prob(y), (np.array([0.3, -1.0, 2.0]),))
    check_grads(lambda p: Bernoulli(probs=p).log_prob(y), (np.array([0.3, 0.6, 0.8]),))
    check_grads(lambda t: Bernoulli(logits=t).entropy(), (np.array([0.3, -1.0]),))
    check_grads(lambda t: Categorical(logits=t).log_prob(np.array([0, 2])),
                (np.array([[0.1, 0.5, -0.3], [1.0, 0.0, 2.0]]),))
    check_grads(lambda t: Categorical(logits=t).entropy(), (np.array([0.1, 0.5, -0.3]),))
    check_grads(lambda t: Poisson(log_rate=t).log_prob(np.array([0, 3, 7])),
                (np.array([0.1, 1.0, 2.0]),))
    check_grads(lambda r: Poisson(rate=r).cdf(np.array([0, 3, 7])), (np.array([0.5, 2.0, 6.0]),))
    check_grads(lambda r: Exponential(r).log_prob(np.array([0.5, 2.0])), (np.array(1.3),))
    check_grads(lambda a: Dirichlet(a).log_prob(np.array([0.2, 0.3, 0.5])),
                (np.array([1.5, 2.0, 0.7]),))


# ------------------------------------------------------------------ sampling moments


@pytest.mark.parametrize("d", [
    Bernoulli(probs=0.3), Poisson(rate=4.0), Normal(1.0, 2.0), Logistic(-1.0, 0.5),
    Gumbel(0.5, 1.5), Exponential(2.0), Gamma(2.5, 1.5),
], ids=lambda d: type(d).__name__)
def test_samples_match_mean_and_variance(d):
    s = np.asarray(d.sample(np.random.default_rng(7), 200_000), dtype=float)
    assert s.shape == (200_000,)
    m, v = float(d.mean()), float(d.variance())
    assert _mc_mean_ok(s, m, v)
    # sample variance: standard error √((μ₄ − σ⁴)/n), bounded via the sample fourth moment
    m4 = np.mean((s - s.mean()) ** 4)
    assert abs(s.var() - v) <= 5 * math.sqrt(max(m4 - v * v, 1e-12) / s.size)


def test_samples_multivariate_and_categorical_moments():
    g = np.random.default_rng(8)
    c = Categorical(probs=PI3)
    s = c.sample(g, 200_000)
    freq = np.bincount(s, minlength=3) / s.size
    assert np.all(np.abs(freq - PI3) <= 5 * np.sqrt(PI3 * (1 - PI3) / s.size))
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    d = MultivariateNormal(np.array([1.0, -1.0]), cov=cov)
    x = d.sample(g, 200_000)
    assert x.shape == (200_000, 2)
    assert _mc_mean_ok(x, d.mean(), np.diag(cov))
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * np.sqrt(2 * np.outer(np.diag(cov),
                                                                       np.diag(cov)) / 2e5))
    a = np.array([1.0, 2.0, 3.0])
    dd = Dirichlet(a)
    z = dd.sample(g, 100_000)
    assert np.all(in_simplex(z))
    assert _mc_mean_ok(z, dd.mean(), dd.variance())
    # shapes: shape + batch + event
    assert Normal(np.zeros(3), 1.0).sample(0, (2, 5)).shape == (2, 5, 3)
    assert Categorical(logits=np.zeros((4, 3))).sample(0, 6).shape == (6, 4)
    assert MultivariateNormal(np.zeros((4, 2)), cov=np.eye(2)).sample(0, 3).shape == (3, 4, 2)
    # same seed, same draw
    np.testing.assert_array_equal(Normal(0.0, 1.0).sample(5, 4), Normal(0.0, 1.0).sample(5, 4))


# ------------------------------------------------------------------ modes, float32


def test_modes_are_maximizers():
    for d, grid in [(Gamma(3.0, 2.0), np.linspace(0.01, 5, 5001)),
                    (Gumbel(0.5, 2.0), np.linspace(-5, 5, 5001)),
                    (Dirichlet(np.array([2.0, 4.0])), None)]:
        if grid is None:
            t = np.linspace(0.001, 0.999, 999)
            pts = np.stack([t, 1 - t], axis=-1)
            best = pts[np.argmax(d.log_prob(pts))]
            np.testing.assert_allclose(d.mode(), best, atol=1e-3)
        else:
            assert abs(float(d.mode()) - grid[np.argmax(d.log_prob(grid))]) < 1e-3
    assert float(Poisson(rate=3.7).mode()) == float(np.argmax(Poisson(rate=3.7).prob(
        np.arange(20))))


def test_float32_parameters_stay_float32():
    d = Normal(np.float32(0.5), np.float32(2.0))
    assert np.asarray(d.log_prob(np.float32(1.0))).dtype == np.float32
    b = Bernoulli(logits=np.array([0.3, 1.0], dtype=np.float32))
    assert np.asarray(b.log_prob(np.array([0, 1]))).dtype == np.float32
    m = MultivariateNormal(np.zeros(2, np.float32), cov=np.eye(2, dtype=np.float32))
    assert math.isclose(float(m.log_prob(np.zeros(2, np.float32))), -math.log(2 * math.pi),
                        rel_tol=1e-6)


# ------------------------------------------------------------------ property: KL, log_prob


@given(hs.floats(-5, 5), hs.floats(0.1, 5), hs.floats(-10, 10))
def test_normal_log_prob_matches_scipy_property(mu, sigma, y):
    assert math.isclose(float(Normal(mu, sigma).log_prob(y)), st.norm(mu, sigma).logpdf(y),
                        rel_tol=1e-12, abs_tol=1e-12)


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("make, match", [
    (lambda: Bernoulli(probs=1.2), "Bernoulli: argument 'probs' must be in \\[0, 1\\]"),
    (lambda: Bernoulli(probs=-0.1), "Bernoulli: argument 'probs'"),
    (lambda: Bernoulli(), "Bernoulli: pass exactly one of 'probs' and 'logits'"),
    (lambda: Bernoulli(probs=0.5, logits=0.0), "exactly one"),
    (lambda: Categorical(probs=np.array([0.5, 0.6, -0.1])), "Categorical: argument 'probs'"),
    (lambda: Categorical(probs=np.array([0.5, 0.6])), "simplex"),
    (lambda: Categorical(logits=1.0), "class axis"),
    (lambda: Poisson(rate=0.0), "Poisson: argument 'rate' must be > 0"),
    (lambda: Normal(0.0, 0.0), "Normal: argument 'scale' must be > 0"),
    (lambda: Normal(0.0, -1.0), "Normal: argument 'scale'"),
    (lambda: Logistic(0.0, -2.0), "Logistic: argument 'scale'"),
    (lambda: Gumbel(np.nan, 1.0), "Gumbel: argument 'loc' must be finite"),
    (lambda: Exponential(-1.0), "Exponential: argument 'rate'"),
    (lambda: Gamma(0.0, 1.0), "Gamma: argument 'concentration'"),
    (lambda: Dirichlet(np.array([1.0, -1.0])), "Dirichlet: argument 'concentration'"),
    (lambda: MultivariateNormal(np.zeros(2), cov=np.array([[1.0, 2.0], [2.0, 1.0]])),
     "MultivariateNormal: argument 'cov' must be symmetric positive definite"),
    (lambda: MultivariateNormal(np.zeros(2), cov=np.array([[1.0, 0.5], [0.0, 1.0]])),
     "symmetric"),
    (lambda: MultivariateNormal(np.zeros(3), cov=np.eye(2)), "shape"),
    (lambda: MultivariateNormal(np.zeros(2), scale_tril=np.array([[1.0, 1.0], [0.0, 1.0]])),
     "scale_tril"),
    (lambda: MultivariateNormal(np.zeros(2)), "exactly one of 'cov' and 'scale_tril'"),
])
def test_bad_parameters_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sampling_without_rng_is_an_error():
    for d in (Normal(0.0, 1.0), Bernoulli(probs=0.5), Categorical(probs=PI3),
              MultivariateNormal(np.zeros(2), cov=np.eye(2))):
        with pytest.raises(ValueError, match=f"{type(d).__name__}.sample: argument 'rng' is "
                                             "required"):
            d.sample()
    with pytest.raises(TypeError, match="Normal.sample: argument 'rng'"):
        Normal(0.0, 1.0).sample("seed")
    with pytest.raises(ValueError, match="Normal.sample: argument 'shape'"):
        Normal(0.0, 1.0).sample(0, (-1,))
    with pytest.raises(TypeError, match="Categorical.log_prob: argument 'y'"):
        Categorical(probs=PI3).log_prob(0.5)


def test_validation_is_skipped_for_traced_parameters():
    # a gradient of the scale may be negative: unflattening never re-validates
    g = diffprog.grad(lambda d: d.log_prob(0.0))(Normal(0.0, 2.0))
    assert isinstance(g, Normal) and float(g.scale) < 0
    # construction inside grad with traced values does not raise
    assert math.isclose(float(diffprog.grad(lambda s: Normal(0.0, s).log_prob(0.0))(2.0)), -0.5)


def test_float32_distributions_sample_float32():
    """Continuous samples come in the precision of the parameters when all are float32."""
    import diffprog.proba as P

    f32 = np.float32
    for d in (P.Normal(f32(0.5), f32(2.0)), P.Gamma(f32(2.0), f32(1.5)),
              P.Exponential(f32(2.0)), P.Logistic(f32(0.0), f32(1.0)),
              P.MultivariateNormal(np.zeros(2, f32), cov=np.eye(2, dtype=f32)),
              P.Dirichlet(np.array([1.5, 2.0, 3.0], f32))):
        s = d.sample(0, (3,))
        assert s.dtype == np.float32, type(d).__name__
        assert np.all(np.isfinite(s))
    assert P.Normal(0.5, 2.0).sample(0, (3,)).dtype == np.float64
    assert P.Categorical(logits=np.zeros(3, f32)).sample(0, (3,)).dtype.kind == "i"
