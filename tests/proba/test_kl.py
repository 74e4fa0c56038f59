"""KL divergences (book §3.1.1–3.1.2, §3.2.2): FUND-55, FUND-57.

Closed forms are checked against brute-force sums (discrete) and quadrature (continuous).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as ss
from hypothesis import given
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

import diffprog
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
    kl_divergence,
    kl_log_probs,
)

PI3 = np.array([0.3, 0.6, 0.1])


def test_fund55_discrete_kl_values_and_properties():
    u = np.ones(3) / 3
    assert math.isclose(float(kl_divergence(PI3, u)), 0.200666563811, abs_tol=1e-12)
    assert float(kl_divergence(PI3, PI3)) == 0.0
    assert not math.isclose(float(kl_divergence(PI3, u)), float(kl_divergence(u, PI3)))
    assert float(kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0]))) == np.inf
    assert float(kl_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5]))) == math.log(2)
    np.testing.assert_allclose(kl_divergence(PI3, u), ss.rel_entr(PI3, u).sum(), atol=1e-15)
    # log-probability variant
    assert math.isclose(float(kl_log_probs(np.log(PI3), np.log(u))), 0.200666563811,
                        abs_tol=1e-12)
    assert float(kl_log_probs(np.log(np.array([0.5, 0.5])), np.array([0.0, -np.inf]))) == np.inf
    # batched over leading axes
    P = np.stack([PI3, u])
    np.testing.assert_allclose(kl_divergence(P, u), [0.200666563811, 0.0], atol=1e-12)


@given(hnp.arrays(np.float64, 5, elements=hs.floats(0.01, 1.0)),
       hnp.arrays(np.float64, 5, elements=hs.floats(0.01, 1.0)))
def test_fund55_kl_nonnegative_property(a, b):
    p, q = a / a.sum(), b / b.sum()
    assert float(kl_divergence(p, q)) >= -1e-15


def test_fund55_kl_gradient_and_distribution_objects_agree():
    u = np.ones(3) / 3
    check_grads(lambda p: kl_divergence(p, u), (PI3,), order=2)
    t1, t2 = np.array([0.2, 1.0, -0.5]), np.array([1.0, 0.0, 0.3])
    ref = float(kl_divergence(np.asarray(ss.softmax(t1)), np.asarray(ss.softmax(t2))))
    for p, q in [(Categorical(logits=t1), Categorical(logits=t2)),
                 (Categorical(probs=ss.softmax(t1)), Categorical(probs=ss.softmax(t2)))]:
        assert math.isclose(float(kl_divergence(p, q)), ref, rel_tol=1e-12)
    for p, q in [(Bernoulli(probs=0.8), Bernoulli(probs=0.3)),
                 (Bernoulli(logits=math.log(4)), Bernoulli(logits=math.log(3 / 7)))]:
        brute = 0.8 * math.log(0.8 / 0.3) + 0.2 * math.log(0.2 / 0.7)
        assert math.isclose(float(p.kl(q)), brute, rel_tol=1e-12)
    ks = np.arange(200)
    pp, qq = Poisson(rate=3.0), Poisson(rate=5.5)
    brute = float(np.sum(np.asarray(pp.prob(ks)) * (np.asarray(pp.log_prob(ks))
                                                    - np.asarray(qq.log_prob(ks)))))
    assert math.isclose(float(kl_divergence(pp, qq)), brute, rel_tol=1e-12)
    check_grads(lambda a, b: kl_divergence(Categorical(logits=a), Categorical(logits=b)),
                (t1, t2), order=2)


CONT_PAIRS = [
    (Normal(0.3, 1.5), Normal(-1.0, 0.7)),
    (Gumbel(0.3, 1.5), Gumbel(-1.0, 0.9)),
    (Exponential(1.5), Exponential(0.4)),
    (Gamma(3.0, 2.0), Gamma(1.5, 0.8)),
]


@pytest.mark.parametrize("p, q", CONT_PAIRS, ids=lambda d: type(d).__name__)
def test_fund57_continuous_kl_closed_form_matches_quadrature(p, q):
    def integrand(y):
        lp = float(p.log_prob(y))
        return 0.0 if lp == -np.inf else math.exp(lp) * (lp - float(q.log_prob(y)))

    lo = 0.0 if isinstance(p, Exponential | Gamma) else -40.0  # p < 1e-300 beyond the bounds
    with np.errstate(over="ignore"):
        ref = si.quad(integrand, lo, 200.0, epsabs=1e-12, epsrel=1e-12, limit=400)[0]
    assert abs(float(kl_divergence(p, q)) - ref) < 1e-8
    assert float(kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-14)
    assert float(kl_divergence(p, q)) > 0


def test_fund57_kl_normal_identity_and_gradients():
    assert float(kl_divergence(Normal(0.0, 1.0), Normal(0.0, 1.0))) == 0.0
    check_grads(lambda m1, s1, m2, s2: kl_divergence(Normal(m1, s1), Normal(m2, s2)),
                (0.3, 1.5, -1.0, 0.7), order=2)


def test_fund57_mvn_and_dirichlet_kl():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(2, 2, 2))
    c1, c2 = A @ A.T + 0.5 * np.eye(2), B @ B.T + 0.5 * np.eye(2)
    m1, m2 = rng.normal(size=(2, 2))
    p, q = MultivariateNormal(m1, cov=c1), MultivariateNormal(m2, cov=c2)
    # closed form via explicit inverse/det (reference only)
    ref = 0.5 * (np.trace(np.linalg.solve(c2, c1)) + (m2 - m1) @ np.linalg.solve(c2, m2 - m1) - 2
                 + np.log(np.linalg.det(c2) / np.linalg.det(c1)))
    assert math.isclose(float(kl_divergence(p, q)), ref, rel_tol=1e-12)
    # diagonal MVN = sum of univariate KLs
    d1, d2 = MultivariateNormal(m1, cov=np.diag([1.0, 4.0])), MultivariateNormal(
        m2, cov=np.diag([2.0, 0.5]))
    uni = kl_divergence(Normal(m1, np.sqrt([1.0, 4.0])), Normal(m2, np.sqrt([2.0, 0.5])))
    assert math.isclose(float(kl_divergence(d1, d2)), float(np.sum(uni)), rel_tol=1e-12)
    # 2-D quadrature on the MVN
    def integrand(y2, y1):
        y = np.array([y1, y2])
        lp = float(p.log_prob(y))
        return math.exp(lp) * (lp - float(q.log_prob(y)))

    quad = si.dblquad(integrand, m1[0] - 9, m1[0] + 9, m1[1] - 9, m1[1] + 9, epsabs=1e-9)[0]
    assert abs(quad - ref) < 1e-6
    # Dirichlet vs Monte Carlo (5 standard errors)
    a, b = np.array([1.5, 2.0, 3.0]), np.array([2.0, 1.0, 1.0])
    pd, qd = Dirichlet(a), Dirichlet(b)
    x = pd.sample(1, 200_000)
    r = np.asarray(pd.log_prob(x)) - np.asarray(qd.log_prob(x))
    assert abs(float(kl_divergence(pd, qd)) - r.mean()) < 5 * r.std() / math.sqrt(r.size)
    check_grads(lambda mu, S: kl_divergence(MultivariateNormal(mu, cov=S @ S.T + np.eye(2)), q),
                (m1, A), order=1)


def test_kl_monte_carlo_fallback_and_errors():
    p, q = Logistic(0.0, 1.0), Normal(0.0, 2.0)
    with pytest.raises(NotImplementedError, match="pass rng="):
        kl_divergence(p, q)
    est = float(kl_divergence(p, q, rng=0, num_samples=200_000))
    ref = si.quad(lambda y: float(p.prob(y)) * (float(p.log_prob(y)) - float(q.log_prob(y))),
                  -60, 60)[0]
    assert abs(est - ref) < 0.01
    with pytest.raises(TypeError, match="kl_divergence"):
        kl_divergence(Normal(0.0, 1.0), np.ones(2) / 2)
    with pytest.raises(ValueError, match="kl_divergence: probability vectors"):
        kl_divergence(np.ones(2) / 2, np.ones(3) / 3)
    # gradient w.r.t. distribution objects (a pytree)
    g = diffprog.grad(lambda d: kl_divergence(d, Normal(0.0, 1.0)))(Normal(1.0, 1.0))
    assert float(g.loc) == 1.0 and abs(float(g.scale)) < 1e-15

