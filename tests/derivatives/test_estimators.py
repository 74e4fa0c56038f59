"""Randomized estimators (spec AD-48, AD-82…AD-86; Book §8.7, §9.8).

Monte-Carlo tolerances are k·(standard deviation) of the estimator, with the variance derived in
closed form (or computed exactly by enumerating the labels); seeds are fixed, so every test is
deterministic. The spec's sample sizes (S=10⁴ for Hutchinson, 10⁵ for Bartlett and the forward
gradient) run in well under a second each with the vmap-ed implementation, so they are kept.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives.estimators import (
    Categorical,
    UnitNormal,
    forward_gradient,
    gn_diag_estimate,
    gn_diag_mc,
    gn_mc_factor,
    gn_trace,
    hessian_diag_estimate,
    hessian_trace,
    hutchinson_diag,
    hutchinson_trace,
)
from diffprog.scipy.special import log_softmax

P = 50


def _sym(p, seed):
    a = np.random.default_rng(seed).normal(size=(p, p))
    return (a + a.T) / 2


Q = _sym(P, 0)


def quad_cos(w):
    return 0.5 * w @ (Q @ w) + dnp.sum(dnp.cos(w))


W0 = np.random.default_rng(1).normal(size=P)
H0 = Q - np.diag(np.cos(W0))  # exact Hessian of quad_cos at W0


# ----------------------------------------------------------------- Hutchinson (AD-82, AD-83)
@pytest.mark.parametrize("fn", [hutchinson_trace, hutchinson_diag])
def test_rademacher_exact_for_diagonal_with_one_sample(fn):
    d = np.random.default_rng(3).normal(size=7)
    A = np.diag(d)
    for seed in range(5):
        est = fn(lambda v: A @ v, 7, rng=seed, num_samples=1)
        expected = d.sum() if fn is hutchinson_trace else d
        np.testing.assert_allclose(est, expected, rtol=0, atol=1e-14)


def test_trace_error_bound_random_symmetric():
    A = _sym(P, 5)
    off = np.sum(A**2) - np.sum(np.diag(A) ** 2)
    S = 10_000
    # Rademacher: Var⟨ω,Aω⟩ = 2 Σ_{i≠j} A_ij²; Gaussian: 2 ‖A‖_F²
    bounds = {"rademacher": 3 * np.sqrt(2 * off / S), "normal": 3 * np.sqrt(2 * np.sum(A**2) / S)}
    for dist, bound in bounds.items():
        for mv, batched in [(lambda v: A @ v, False), (lambda V: A @ V, True), (A, False)]:
            est = hutchinson_trace(mv, P, np.random.default_rng(7), S, dist=dist, batched=batched)
            assert abs(est - np.trace(A)) <= bound, (dist, est, np.trace(A), bound)


def test_trace_unbiased_over_repetitions():
    """The mean of many S=1 estimates matches tr A within 4 standard errors (both probes)."""
    A = _sym(10, 9)
    off = np.sum(A**2) - np.sum(np.diag(A) ** 2)
    R = 4000
    for dist, var in [("rademacher", 2 * off), ("normal", 2 * np.sum(A**2))]:
        gen = np.random.default_rng(11)
        ests = [hutchinson_trace(A, 10, gen, 1, dist=dist) for _ in range(R)]
        assert abs(np.mean(ests) - np.trace(A)) <= 4 * np.sqrt(var / R)
        assert np.var(ests) == pytest.approx(var, rel=0.15)  # the derived variance


def test_hessian_trace_from_hvps():
    off = np.sum(H0**2) - np.sum(np.diag(H0) ** 2)
    S = 10_000
    for method in ("fwd-rev", "rev-rev"):
        est = hessian_trace(quad_cos, W0, rng=2, num_samples=S, method=method)
        assert abs(est - np.trace(H0)) <= 3 * np.sqrt(2 * off / S)
    # chunking does not change the estimate (same probe stream)
    a = hessian_trace(quad_cos, W0, rng=4, num_samples=300)
    b = hessian_trace(quad_cos, W0, rng=4, num_samples=300, chunk_size=64)
    assert a == pytest.approx(b, rel=1e-12)


def test_hessian_diag_entrywise_bound():
    """AD-83: every entry within 4·sqrt(Σ_{j≠i} H_ij² / S) (derived Rademacher variance)."""
    S = 10_000
    est = hessian_diag_estimate(quad_cos, W0, rng=3, num_samples=S)
    sd = np.sqrt((np.sum(H0**2, axis=1) - np.diag(H0) ** 2) / S)
    assert np.all(np.abs(est - np.diag(H0)) <= 4 * sd)
    # and the generic matvec version on the same matrix
    est2 = hutchinson_diag(H0, P, rng=3, num_samples=S)
    assert np.all(np.abs(est2 - np.diag(H0)) <= 4 * sd)


def test_hessian_diag_exact_for_separable_function():
    w = np.linspace(-1, 1, 6)
    est = hessian_diag_estimate(lambda v: dnp.sum(dnp.sin(v) * v**2), w, rng=0, num_samples=1)
    exact = 2 * np.sin(w) + 4 * w * np.cos(w) - w**2 * np.sin(w)
    np.testing.assert_allclose(est, exact, atol=1e-13)


# ----------------------------------------------------------------- model for GN / Bartlett
D_IN, HID, K = 3, 4, 4
NP = HID * D_IN + K * HID


def mlp(w, x):
    A = dnp.reshape(w[: HID * D_IN], (HID, D_IN))
    B = dnp.reshape(w[HID * D_IN :], (K, HID))
    return B @ dnp.tanh(A @ x)


_r = np.random.default_rng(21)
WM, XM = _r.normal(size=NP), _r.normal(size=D_IN)


def exact_gn():
    J = np.asarray(diffprog.jacobian(lambda w: mlp(w, XM))(WM))  # (K, P)
    p = Categorical.probs(np.asarray(mlp(WM, XM)))
    return J.T @ (np.diag(p) - np.outer(p, p)) @ J


GN = exact_gn()


def test_gn_trace_and_diag_estimates():
    theta_loss = lambda t: -dnp.sum(np.eye(K)[1] * log_softmax(t))
    f = lambda w: mlp(w, XM)
    S = 10_000
    off = np.sum(GN**2, axis=1) - np.diag(GN) ** 2
    est = gn_trace(f, theta_loss, WM, rng=5, num_samples=S)
    assert abs(est - np.trace(GN)) <= 3 * np.sqrt(2 * off.sum() / S)
    d = gn_diag_estimate(f, theta_loss, WM, rng=6, num_samples=S)
    assert np.all(np.abs(d - np.diag(GN)) <= 4 * np.sqrt(off / S) + 1e-14)


# ----------------------------------------------------------------- Bartlett (AD-84…AD-86)
def test_bartlett_exact_enumeration_equals_gn():
    V = gn_mc_factor(mlp, "categorical", WM, XM, exact=True)
    assert V.shape == (NP, K)
    np.testing.assert_allclose(V @ V.T, GN, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gn_diag_mc(mlp, "categorical", WM, XM, exact=True), np.diag(GN),
                               rtol=0, atol=1e-12)


def _label_grads():
    """Per-label gradients g_k (rows) and probabilities p_k, for exact moments."""
    V = gn_mc_factor(mlp, "categorical", WM, XM, exact=True)
    p = Categorical.probs(np.asarray(mlp(WM, XM)))
    return V.T / np.sqrt(p)[:, None], p


def test_bartlett_factor_monte_carlo_within_3_percent():
    S = 100_000
    V = gn_mc_factor(mlp, "categorical", WM, XM, rng=0, num_samples=S)
    assert V.shape == (NP, S)
    rel = np.linalg.norm(V @ V.T - GN) / np.linalg.norm(GN)
    # derived: E‖Ĝ−G‖_F² = (1/S) Σ_ab Var(g_a g_b), computed exactly by enumeration
    g, p = _label_grads()
    outer = np.einsum("ka,kb->kab", g, g)
    var = np.einsum("k,kab->ab", p, outer**2) - GN**2
    sd_rel = np.sqrt(var.sum() / S) / np.linalg.norm(GN)
    assert rel <= min(0.03, 3 * sd_rel), (rel, sd_rel)
    # approximate GNVP V(Vᵀv)
    v = np.random.default_rng(2).normal(size=NP)
    assert np.linalg.norm(V @ (V.T @ v) - GN @ v) <= 0.05 * np.linalg.norm(GN @ v)


def test_bartlett_diag_individual_within_3_percent():
    S = 100_000
    d = gn_diag_mc(mlp, "categorical", WM, XM, rng=1, num_samples=S)
    assert np.linalg.norm(d - np.diag(GN)) / np.linalg.norm(np.diag(GN)) <= 0.03


def test_bartlett_diag_averaged_unbiased_and_noisier():
    """AD-86: mean over 10⁵ repetitions with S=4 within 3%; variance ≥ individual form."""
    S, R = 4, 100_000
    avg = gn_diag_mc(mlp, "categorical", WM, XM, rng=2, num_samples=S, averaged=True,
                     num_repeats=R)
    ind = gn_diag_mc(mlp, "categorical", WM, XM, rng=3, num_samples=S, num_repeats=R)
    assert avg.shape == ind.shape == (R, NP)
    dg = np.diag(GN)
    for est in (avg, ind):
        assert np.linalg.norm(est.mean(axis=0) - dg) / np.linalg.norm(dg) <= 0.03
    assert avg.var(axis=0).sum() >= ind.var(axis=0).sum()
    # derived: S·ḡ_a² = (1/S)[Σ_i γ_ia² + Σ_{i≠j} γ_ia γ_ja]; the cross terms are uncorrelated
    # with the squares and have variance 2S(S−1)·GN_aa² (E[γ]=0, Bartlett), so
    # Var(avg) − Var(ind) = 2(S−1)/S · Σ_a GN_aa² exactly (measured: 0.274 vs 0.280)
    gap = avg.var(axis=0).sum() - ind.var(axis=0).sum()
    assert gap == pytest.approx(2 * (S - 1) / S * np.sum(dg**2), rel=0.15)


def test_bartlett_averaged_single_call_and_sophia_case():
    d1 = gn_diag_mc(mlp, "categorical", WM, XM, rng=4, num_samples=1, averaged=True)
    d2 = gn_diag_mc(mlp, "categorical", WM, XM, rng=4, num_samples=1)
    np.testing.assert_allclose(d1, d2, atol=1e-14)  # S=1: both forms coincide
    assert d1.shape == (NP,) and np.all(d1 >= 0)


def test_bartlett_unit_normal_is_jtj():
    f = lambda w, x: dnp.tanh(dnp.reshape(w, (3, 2)) @ x)
    w, x = np.linspace(-0.5, 0.5, 6), np.array([1.0, -2.0])
    J = np.asarray(diffprog.jacobian(lambda w_: f(w_, x))(w))
    V = gn_mc_factor(f, UnitNormal(), w, x, rng=0, num_samples=100_000)
    G = J.T @ J
    assert np.linalg.norm(V @ V.T - G) / np.linalg.norm(G) <= 0.03
    with pytest.raises(ValueError, match="infinite support"):
        gn_mc_factor(f, "normal", w, x, exact=True)


# ----------------------------------------------------------------- forward gradient (AD-48)
def test_forward_gradient_unbiased():
    p, M = 10, 100_000
    r = np.random.default_rng(8)
    A = _sym(p, 8) + p * np.eye(p)
    b, w = r.normal(size=p), r.normal(size=p)
    f = lambda v: 0.5 * v @ (A @ v) + b @ v
    g = A @ w + b
    est = forward_gradient(f, w, rng=9, num_samples=M)
    assert est.shape == (p,)  # the erratum's missing z_i would give a scalar
    assert np.linalg.norm(est - g) / np.linalg.norm(g) <= 3 * np.sqrt((p + 1) / M)
    est2 = forward_gradient(f, w, rng=9, num_samples=M, chunk_size=30_000)
    np.testing.assert_allclose(est2, est, rtol=1e-12)


def test_forward_gradient_single_sample_mse():
    """Derived single-sample MSE (P+1)‖∇f‖² (Gaussian Z), over 20000 repetitions."""
    p = 5
    g = np.arange(1.0, p + 1)
    f = lambda v: g @ v
    gen = np.random.default_rng(10)
    errs = [np.sum((forward_gradient(f, np.zeros(p), gen) - g) ** 2) for _ in range(2000)]
    assert np.mean(errs) == pytest.approx((p + 1) * g @ g, rel=0.15)


# ----------------------------------------------------------------- bad inputs
def test_bad_inputs():
    A = np.eye(3)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        hutchinson_trace(A, 3, 0, num_samples=0)
    with pytest.raises(ValueError, match="dist must be one of"):
        hutchinson_diag(A, 3, 0, dist="uniform")
    with pytest.raises(ValueError, match="dist must be one of"):
        hessian_trace(quad_cos, W0, 0, dist="cauchy")
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        forward_gradient(lambda v: dnp.sum(v), np.ones(2), 0, num_samples=0)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        gn_mc_factor(mlp, "categorical", WM, XM, rng=0, num_samples=0)
    with pytest.raises(TypeError, match="rng must be"):
        hutchinson_trace(A, 3, None)
    with pytest.raises(ValueError, match="square"):
        hutchinson_trace(np.ones((2, 3)), 3, 0)
    with pytest.raises(ValueError, match="unknown exponential family"):
        gn_diag_mc(mlp, "poisson-ish", WM, XM, rng=0)
    with pytest.raises(TypeError, match="bare loss"):
        gn_mc_factor(mlp, lambda t, y: 0.0, WM, XM, rng=0)
    with pytest.raises(ValueError, match="exact=True applies"):
        gn_diag_mc(mlp, "categorical", WM, XM, averaged=True, exact=True)
    with pytest.raises(ValueError, match="real scalar"):
        forward_gradient(lambda v: v * 2.0, np.ones(2), 0, num_samples=3)


def test_rng_reproducible_and_generator_accepted():
    a = hutchinson_trace(Q, P, 123, 10)
    b = hutchinson_trace(Q, P, np.random.default_rng(123), 10)
    assert a == b
