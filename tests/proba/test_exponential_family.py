"""Exponential families (book §3.4): FUND-75 … FUND-82, FUND-89, and the Table 3.1 misprints.

∇A and ∇²A (autodiff) are checked against closed forms and against Monte Carlo moments of the
sufficient statistic under ``family.distribution(θ).sample`` (fixed seed, 5 standard errors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.optim import check_convex, estimate_strong_convexity
from diffprog.proba import (
    Bernoulli,
    Categorical,
    MultivariateNormal,
    Normal,
    Poisson,
    bernoulli_family,
    binary_logistic_loss,
    categorical_family,
    covariance,
    dirichlet_family,
    discrete_family,
    discrete_log_partition,
    entropy,
    exp_family_nll,
    exponential_distribution_family,
    fit_exp_family,
    gamma_family,
    max_entropy,
    mean_function,
    multivariate_normal_family,
    natural_from_mean,
    normal_family,
    normal_location_family,
    poisson_family,
    softmax_cross_entropy,
    softplus,
)

RNG = np.random.default_rng(0)
COV2 = np.array([[2.0, 0.3], [0.3, 1.0]])
MU2 = np.array([1.0, -0.5])


def _original_log_prob(name, params, y):
    """The original-form densities, from SciPy (an independent implementation)."""
    if name == "bernoulli":
        return st.bernoulli(params).logpmf(y)
    if name == "categorical":
        return np.log(params[y])
    if name == "normal_location":
        return st.norm(params, 2.0).logpdf(y)
    if name == "normal":
        return st.norm(params[0], math.sqrt(params[1])).logpdf(y)
    if name == "mvn":
        return st.multivariate_normal(params[0], params[1]).logpdf(y)
    return st.poisson(params).logpmf(y)


CASES = [
    ("bernoulli", bernoulli_family, 0.8, RNG.integers(0, 2, 10)),
    ("categorical", categorical_family(3), np.array([0.3, 0.6, 0.1]), RNG.integers(0, 3, 10)),
    ("normal_location", normal_location_family(2.0), 1.5, RNG.normal(size=10) * 3),
    ("normal", normal_family, (1.5, 4.0), RNG.normal(size=10) * 3),
    ("mvn", multivariate_normal_family, (MU2, COV2), RNG.normal(size=(10, 2))),
    ("poisson", poisson_family, 3.5, RNG.integers(0, 12, 10)),
]


@pytest.mark.parametrize("name, fam, params, ys", CASES, ids=[c[0] for c in CASES])
def test_fund75_exp_family_log_prob_equals_original_form(name, fam, params, ys):
    theta = fam.to_natural(params)
    for y in ys:
        ref = float(_original_log_prob(name, params, y))
        assert math.isclose(float(fam.log_prob(theta, y)), ref, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("name, fam, params, ys", CASES, ids=[c[0] for c in CASES])
def test_fund76_natural_round_trip(name, fam, params, ys):
    back = fam.from_natural(fam.to_natural(params))
    if name == "categorical":
        np.testing.assert_allclose(back, params, atol=1e-12)
        # θ is defined up to +c·1 (the printed "log π + exp(A(θ))" shift is also harmless, but
        # the corrected θ = log π + A·1 is the one with A(θ) matching)
        np.testing.assert_allclose(fam.from_natural(fam.to_natural(params) + 3.7), params,
                                   atol=1e-12)
        return
    pairs = zip(back, params, strict=True) if isinstance(params, tuple) else [(back, params)]
    for a, b in pairs:
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-12, atol=1e-12)


def test_fund76_table_values_and_random_spd_round_trip():
    assert math.isclose(float(bernoulli_family.to_natural(0.8)), 1.386294361120, abs_tol=1e-12)
    np.testing.assert_allclose(normal_family.to_natural((1.5, 4.0)), [1.5 / 4, -1 / 8])
    assert float(normal_location_family(2.0).to_natural(3.0)) == 1.5
    for _ in range(5):
        S = RNG.normal(size=(3, 3))
        cov, mu = S @ S.T + 0.1 * np.eye(3), RNG.normal(size=3)
        m2, c2 = multivariate_normal_family.from_natural(multivariate_normal_family.to_natural(
            (mu, cov)))
        np.testing.assert_allclose(m2, mu, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c2, cov, rtol=1e-10, atol=1e-12)
    t1, t2 = multivariate_normal_family.to_natural((MU2, COV2))
    np.testing.assert_allclose(t1, np.linalg.solve(COV2, MU2), atol=1e-14)
    np.testing.assert_allclose(t2, -0.5 * np.linalg.inv(COV2), atol=1e-14)


def test_fund77_log_partition_values_and_misprints():
    # Bernoulli: generic discrete log-partition with Φ = [[0],[1]] equals softplus
    Phi = np.array([[0.0], [1.0]])
    for t in (-3.0, 0.0, 0.7, 40.0):
        assert math.isclose(float(discrete_log_partition(np.array([t]), Phi)), float(softplus(t)),
                            rel_tol=1e-14)
    # Normal location-scale at μ = 1.5, σ = 2: μ²/(2σ²) + log σ = 0.974397180560
    A = float(normal_family.log_partition(normal_family.to_natural((1.5, 4.0))))
    assert math.isclose(A, 0.974397180560, abs_tol=1e-12)
    assert not math.isclose(A, 1.255647180560, abs_tol=1e-3)  # printed μ²/σ² + log σ
    assert math.isclose(float(Normal(1.5, 2.0).log_partition()), A, rel_tol=1e-14)
    # MVN: A = ½ μᵀΣ⁻¹μ + ½ log det Σ; the printed −½ log det(−θ₂) is off by (M/2) log 2
    theta = multivariate_normal_family.to_natural((MU2, COV2))
    A = float(multivariate_normal_family.log_partition(theta))
    ref = 0.5 * MU2 @ np.linalg.solve(COV2, MU2) + 0.5 * np.log(np.linalg.det(COV2))
    assert math.isclose(A, ref, rel_tol=1e-13)
    t1, t2 = theta
    printed = -0.25 * t1 @ np.linalg.solve(t2, t1) - 0.5 * np.log(np.linalg.det(-t2))
    assert math.isclose(printed - A, math.log(2), rel_tol=1e-10)  # (M/2) log 2 with M = 2
    assert math.isclose(float(MultivariateNormal(MU2, cov=COV2).log_partition()), A,
                        rel_tol=1e-13)
    # Categorical: θ = log π + A(θ)·1 is consistent (A(log π) = 0), the printed exp(A) is not
    # the book's additive shift; either way softargmax recovers π
    pi = np.array([0.3, 0.6, 0.1])
    assert abs(float(categorical_family(3).log_partition(np.log(pi)))) < 1e-15


def test_fund77_log_partition_is_convex_midpoint():
    for fam, draw in [
        (bernoulli_family, lambda: RNG.normal() * 3),
        (categorical_family(4), lambda: RNG.normal(size=4) * 3),
        (poisson_family, lambda: RNG.normal()),
        (normal_family, lambda: np.array([RNG.normal(), -RNG.uniform(0.1, 2)])),
        (normal_location_family(1.5), lambda: RNG.normal()),
    ]:
        for _ in range(20):
            a, b = draw(), draw()
            mid = float(fam.log_partition(0.5 * (a + b)))
            assert mid <= 0.5 * (float(fam.log_partition(a)) + float(fam.log_partition(b))) + 1e-12
    for _ in range(10):  # MVN, pairs of negative-definite θ₂
        def draw():
            S = RNG.normal(size=(2, 2))
            return RNG.normal(size=2), -(S @ S.T + 0.2 * np.eye(2))

        (a1, a2), (b1, b2) = draw(), draw()
        f = multivariate_normal_family.log_partition
        mid = float(f((0.5 * (a1 + b1), 0.5 * (a2 + b2))))
        assert mid <= 0.5 * (float(f((a1, a2))) + float(f((b1, b2)))) + 1e-12


def test_fund78_mean_and_covariance_closed_forms():
    t = math.log(4.0)  # π = 0.8
    assert math.isclose(float(mean_function(bernoulli_family)(t)), 0.8, rel_tol=1e-14)
    assert math.isclose(float(covariance(bernoulli_family)(t)), 0.16, rel_tol=1e-13)
    for th in (-1.0, 0.5, 2.0):
        assert math.isclose(float(poisson_family.mean(th)), math.exp(th), rel_tol=1e-14)
        assert math.isclose(float(poisson_family.covariance(th)), math.exp(th), rel_tol=1e-14)
    th = RNG.normal(size=4)
    p = np.exp(th - th.max()) / np.exp(th - th.max()).sum()
    fam = categorical_family(4)
    np.testing.assert_allclose(fam.mean(th), p, atol=1e-15)
    np.testing.assert_allclose(fam.covariance(th), np.diag(p) - np.outer(p, p), atol=1e-15)
    # ∇A = E[φ] by brute-force enumeration: (φ(y))_y softmax(B(θ))
    Phi = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 4.0], [3.0, 9.0]])
    tt = np.array([0.3, -0.2])
    w = np.exp(Phi @ tt - (Phi @ tt).max())
    w /= w.sum()
    np.testing.assert_allclose(discrete_family(Phi).mean(tt), w @ Phi, atol=1e-14)
    ec = (Phi - w @ Phi).T @ np.diag(w) @ (Phi - w @ Phi)
    np.testing.assert_allclose(discrete_family(Phi).covariance(tt), ec, atol=1e-13)
    # Normal(loc-scale): ∇A = (μ, μ² + σ²); ∇²A = Cov(Y, Y²)
    mu, var = 1.5, 4.0
    th = normal_family.to_natural((mu, var))
    np.testing.assert_allclose(normal_family.mean(th), [mu, mu ** 2 + var], rtol=1e-13)
    cov_ref = np.array([[var, 2 * mu * var], [2 * mu * var, 4 * mu ** 2 * var + 2 * var ** 2]])
    np.testing.assert_allclose(normal_family.covariance(th), cov_ref, rtol=1e-12)
    # MVN: ∇_{θ₁}A = μ, ∇_{θ₂}A = Σ + μμᵀ, ∇²_{θ₁θ₁}A = Σ
    thm = multivariate_normal_family.to_natural((MU2, COV2))
    g1, g2 = multivariate_normal_family.mean(thm)
    np.testing.assert_allclose(g1, MU2, atol=1e-13)
    np.testing.assert_allclose(g2, COV2 + np.outer(MU2, MU2), atol=1e-13)
    H = multivariate_normal_family.covariance(thm)
    np.testing.assert_allclose(H[0][0], COV2, atol=1e-12)
    # batched θ: one mean per row
    tb = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(bernoulli_family.mean(tb), 1 / (1 + np.exp(-tb)), atol=1e-15)


MC_CASES = [
    ("bernoulli", bernoulli_family, 0.7),
    ("categorical", categorical_family(3), np.array([0.2, -0.4, 1.0])),
    ("normal_location", normal_location_family(2.0), 0.8),
    ("normal", normal_family, normal_family.to_natural((1.5, 4.0))),
    ("poisson", poisson_family, math.log(3.0)),
    ("exponential", exponential_distribution_family, -2.0),
    ("gamma", gamma_family, gamma_family.to_natural((3.0, 2.0))),
    ("dirichlet", dirichlet_family, np.array([0.5, 1.0, 2.0])),
]


@pytest.mark.parametrize("name, fam, theta", MC_CASES, ids=[c[0] for c in MC_CASES])
def test_fund78_grad_A_is_sampled_mean_and_hessian_is_sampled_covariance(name, fam, theta):
    n = 200_000
    y = fam.distribution(theta).sample(np.random.default_rng(11), n)
    phi = np.asarray(fam.sufficient_stat(y), dtype=float).reshape(n, -1)
    mean = np.asarray(fam.mean(theta), dtype=float).reshape(-1)
    cov = np.asarray(fam.covariance(theta), dtype=float).reshape(mean.size, mean.size)
    emp_mean = phi.mean(axis=0)
    emp_cov = np.cov(phi.T).reshape(mean.size, mean.size)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(emp_mean - mean) <= 5 * se_mean + 1e-12), (emp_mean, mean)
    # standard error of a sample covariance entry, from the sample fourth moments
    c = phi - emp_mean
    se_cov = np.sqrt(np.var(c[:, :, None] * c[:, None, :], axis=0) / n)
    assert np.all(np.abs(emp_cov - cov) <= 5 * se_cov + 1e-12), (emp_cov, cov)


def test_fund78_mvn_moments_by_sampling():
    n = 200_000
    theta = multivariate_normal_family.to_natural((MU2, COV2))
    y = multivariate_normal_family.distribution(theta).sample(3, n)
    g1, g2 = multivariate_normal_family.mean(theta)
    outer = y[:, :, None] * y[:, None, :]
    assert np.all(np.abs(y.mean(0) - g1) <= 5 * y.std(0) / math.sqrt(n))
    assert np.all(np.abs(outer.mean(0) - g2) <= 5 * outer.std(0) / math.sqrt(n))
    H11 = np.asarray(multivariate_normal_family.covariance(theta)[0][0])
    se = np.sqrt(np.var((y - y.mean(0))[:, :, None] * (y - y.mean(0))[:, None, :], 0) / n)
    assert np.all(np.abs(np.cov(y.T) - H11) <= 5 * se)


@pytest.mark.parametrize("fam, mu", [
    (bernoulli_family, 0.8),
    (poisson_family, 5.0),
    (normal_location_family(2.0), 0.7),
    (normal_family, np.array([1.5, 6.25])),
    (exponential_distribution_family, 0.25),
], ids=["bernoulli", "poisson", "normal_location", "normal", "exponential"])
def test_fund79_natural_from_mean_closed_form_and_solver_agree(fam, mu):
    t_closed = natural_from_mean(fam, mu)
    t_solve = natural_from_mean(fam, mu, method="solve")
    np.testing.assert_allclose(t_solve, t_closed, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fam.mean(t_solve), mu, rtol=1e-8, atol=1e-10)


def test_fund79_non_minimal_and_solver_only_families():
    mu = np.array([0.3, 0.6, 0.1])
    fam = categorical_family(3)
    for method in ("closed_form", "solve"):
        t = natural_from_mean(fam, mu, method=method)
        np.testing.assert_allclose(fam.from_natural(t), mu, atol=1e-8)
    # gamma and dirichlet: no closed form, Newton's method only
    tg = gamma_family.to_natural((3.0, 2.0))
    np.testing.assert_allclose(natural_from_mean(gamma_family, gamma_family.mean(tg)), tg,
                               atol=1e-8)
    td = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(natural_from_mean(dirichlet_family, dirichlet_family.mean(td)), td,
                               atol=1e-8)
    # MVN closed form
    m = multivariate_normal_family.mean(multivariate_normal_family.to_natural((MU2, COV2)))
    t1, t2 = natural_from_mean(multivariate_normal_family, m)
    g1, g2 = multivariate_normal_family.mean((t1, t2))
    np.testing.assert_allclose(g1, m[0], atol=1e-10)
    np.testing.assert_allclose(g2, m[1], atol=1e-10)
    with pytest.raises(ValueError, match="natural_from_mean"):
        natural_from_mean(bernoulli_family, 1.5, method="solve")  # outside the mean set (0, 1)
    with pytest.raises(NotImplementedError, match="no closed form"):
        natural_from_mean(gamma_family, np.array([0.0, 1.0]), method="closed_form")
    with pytest.raises(ValueError, match="argument 'method'"):
        natural_from_mean(poisson_family, 1.0, method="newton")


def test_fund80_max_entropy_example():
    Phi = np.arange(4.0)[:, None]
    r = max_entropy(Phi, np.array([1.0]))
    assert math.isclose(float(r.theta[0]), -0.419617624991, abs_tol=1e-9)
    np.testing.assert_allclose(r.probs, [0.421350946931, 0.276953179437, 0.182040800333,
                                         0.119655073299], atol=1e-10)
    H = float(entropy(r.probs))
    assert math.isclose(H, 1.283906814384, abs_tol=1e-9)
    other = np.array([0.5, 0.2, 0.1, 0.2])  # feasible: mean 1.0
    assert math.isclose(float(other @ np.arange(4)), 1.0)
    assert float(entropy(other)) < H and abs(float(entropy(other)) - 1.2206) < 1e-4
    # random feasible distributions (mixtures of the vertices of {p : E_p[Y] = 1}) never beat it
    V = np.array([[0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0], [2 / 3, 0.0, 0.0, 1 / 3]])
    for w in np.random.default_rng(5).dirichlet(np.ones(3), size=200):
        q = w @ V
        assert math.isclose(float(q @ np.arange(4)), 1.0, rel_tol=1e-12)
        assert float(entropy(q)) <= H + 1e-12
    with pytest.raises(ValueError, match="max_entropy"):
        max_entropy(Phi, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="natural_from_mean"):
        max_entropy(Phi, np.array([3.0]))  # on the boundary of conv φ(Y)


def test_fund81_nll_gradient_is_residual_and_hessian_independent_of_y():
    cases = [
        (bernoulli_family, 0.4, 1, 0),
        (categorical_family(3), np.array([0.2, -1.0, 0.5]), 2, 0),
        (poisson_family, 0.9, 4, 0),
        (normal_family, np.array([0.3, -0.4]), 1.7, -2.0),
    ]
    for fam, th, y1, y2 in cases:
        g = diffprog.grad(lambda t, y=y1, fam=fam: exp_family_nll(fam, t, y))(th)
        np.testing.assert_allclose(g, np.asarray(fam.mean(th)) - fam.sufficient_stat(y1),
                                   atol=1e-13)
        H1 = diffprog.hessian(lambda t, fam=fam, y=y1: exp_family_nll(fam, t, y))(th)
        H2 = diffprog.hessian(lambda t, fam=fam, y=y2: exp_family_nll(fam, t, y))(th)
        np.testing.assert_allclose(H1, H2, atol=1e-14)
        np.testing.assert_allclose(H1, fam.covariance(th), atol=1e-13)
        check_grads(lambda t, fam=fam, y=y1: exp_family_nll(fam, t, y), (np.asarray(th, float),))
    # the special cases: multiclass logistic (FUND-15), binary logistic (FUND-63), Poisson (72)
    th = np.array([1.0, 2.0, 3.0])
    assert math.isclose(float(exp_family_nll(categorical_family(3), th, 0)),
                        float(softmax_cross_entropy(th, 0)), rel_tol=1e-14)
    assert math.isclose(float(exp_family_nll(categorical_family(3), th, 0)), 2.407605964444,
                        abs_tol=1e-12)
    assert math.isclose(float(exp_family_nll(bernoulli_family, math.log(4), 1)),
                        float(binary_logistic_loss(math.log(4), 1)), rel_tol=1e-14)
    for y, v in [(1, 1.0), (4, 1.632876385868), (10, 2.078561643135)]:
        assert math.isclose(float(exp_family_nll(poisson_family, math.log(y), y)), v,
                            abs_tol=1e-12)
    # and −log p of the distribution objects
    assert math.isclose(float(exp_family_nll(poisson_family, 0.3, 5)),
                        -float(Poisson(log_rate=0.3).log_prob(5)), rel_tol=1e-14)


def test_fund82_fit_exp_family_moment_matching():
    assert math.isclose(float(poisson_family.from_natural(fit_exp_family(
        poisson_family, np.array([1, 4, 10])))), 5.0, rel_tol=1e-14)
    mu, var = normal_family.from_natural(fit_exp_family(normal_family, np.array([1.0, 2, 4, 7])))
    assert math.isclose(float(mu), 3.5, rel_tol=1e-14)
    assert math.isclose(float(var), 5.25, rel_tol=1e-13)  # 1/N variance, not 7.0
    ys = np.array([1, 0, 1, 1, 0, 1])
    assert math.isclose(float(bernoulli_family.from_natural(fit_exp_family(bernoulli_family, ys))),
                        ys.mean(), rel_tol=1e-14)
    yc = np.array([0, 2, 2, 1, 2])
    np.testing.assert_allclose(categorical_family(3).from_natural(
        fit_exp_family(categorical_family(3), yc)), [0.2, 0.2, 0.6], atol=1e-14)
    ym = RNG.normal(size=(50, 2))
    m, c = multivariate_normal_family.from_natural(fit_exp_family(multivariate_normal_family, ym))
    np.testing.assert_allclose(m, ym.mean(0), atol=1e-12)
    np.testing.assert_allclose(c, np.cov(ym.T, bias=True), atol=1e-12)
    # the fitted θ̂ satisfies the first-order condition ∇A(θ̂) = mean φ(y_i)
    yg = Poisson(rate=2.0).sample(0, 100)
    th = fit_exp_family(gamma_family, yg + 0.5)
    np.testing.assert_allclose(gamma_family.mean(th), [np.mean(np.log(yg + 0.5)),
                                                       np.mean(yg + 0.5)], atol=1e-9)
    with pytest.raises(ValueError, match="fit_exp_family"):
        fit_exp_family(poisson_family, np.array([]))


def test_fund89_convexity_checks_on_log_partitions_and_losses():
    def draw(n):
        return lambda r: r.normal(size=n) * 2

    assert check_convex(lambda t: dnp.sum(softplus(t)), draw(1), n_pairs=50)
    assert check_convex(lambda t: categorical_family(3).log_partition(t), draw(3), n_pairs=50)
    assert check_convex(lambda t: dnp.sum(poisson_family.log_partition(t)), draw(1), n_pairs=50)
    assert check_convex(lambda t: dnp.sum(poisson_family.nll(t, 4.0)), draw(1), n_pairs=50)
    assert check_convex(lambda t: dnp.sum(bernoulli_family.log_partition(t)), draw(1),
                        n_pairs=50)
    assert check_convex(lambda t: dnp.sum(normal_location_family(2.0).log_partition(t)),
                        draw(1), n_pairs=50)
    assert check_convex(normal_family.log_partition,
                        lambda r: np.array([r.normal(), -r.uniform(0.2, 2.0)]), n_pairs=50)
    assert not check_convex(lambda w: dnp.sum(dnp.sin(w)), lambda r: r.uniform(-3, 3, 1),
                            n_pairs=50)
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    mu = estimate_strong_convexity(lambda w: 0.5 * w @ A @ w, np.ones(2))
    assert math.isclose(mu, np.linalg.eigvalsh(A).min(), rel_tol=1e-8)


def test_exponential_family_objects_and_errors():
    d = poisson_family.distribution(math.log(3.0))
    assert isinstance(d, Poisson) and math.isclose(float(d.mean()), 3.0, rel_tol=1e-14)
    assert isinstance(bernoulli_family.distribution(0.0), Bernoulli)
    assert isinstance(categorical_family(3).distribution(np.zeros(3)), Categorical)
    with pytest.raises(ValueError, match="normal_location_family: argument 'sigma'"):
        normal_location_family(0.0)
    with pytest.raises(ValueError, match="discrete_family"):
        discrete_family(np.ones(3))
    with pytest.raises(ValueError, match="discrete_log_partition"):
        discrete_log_partition(np.ones(2), np.ones(3))
