"""Second-order derivatives, Gauss-Newton, Fisher (AD-50…AD-65, AD-70, AD-71; Book §9.1–9.3)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.core.pytree import ravel_pytree
from diffprog.derivatives import fd_second_directional
from diffprog.derivatives.curvature import (
    empirical_fisher,
    fisher,
    fisher_supervised,
    fvp,
    gauss_newton,
    gn_factor,
    gnvp,
    make_gnvp,
    ohvp,
    output_hessian,
    second_derivative,
)
from diffprog.scipy.special import expit, logsumexp, softmax

RNG = np.random.default_rng(0)
P = 5
_A = RNG.standard_normal((P, P))
Q = _A @ _A.T + np.eye(P)
W0 = RNG.standard_normal(P)
V0 = RNG.standard_normal(P)


def quad_cos(w):
    return 0.5 * dnp.vdot(w, dnp.matmul(Q, w)) + dnp.sum(dnp.cos(w))


# ----------------------------------------------------------------------------- HVPs (AD-50…AD-55)


@pytest.mark.parametrize("method", ["fwd-rev", "rev-rev", "rev-fwd", "fwd-fwd"])
def test_ad50_53_all_hvp_methods_match_closed_form(method):
    expected = Q @ V0 - np.cos(W0) * V0
    np.testing.assert_allclose(diffprog.hvp(quad_cos, W0, V0, method=method), expected,
                               rtol=0, atol=1e-10)


def test_ad53_fwd_fwd_uses_p_nested_jvps():
    f = diffprog.count_calls(quad_cos)
    diffprog.hvp(f, W0, V0, method="fwd-fwd")
    assert f.calls == P


def test_hvp_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="hvp: method"):
        diffprog.hvp(quad_cos, W0, V0, method="rev-rev-rev")


def test_ad51_fwd_rev_peak_memory_not_above_rev_rev_on_a_chain():
    w = np.linspace(0.1, 1.0, 4000)

    def chain(x):
        for _ in range(50):
            x = dnp.sin(x) * 0.9
        return dnp.sum(x)

    peaks = {}
    for method in ("fwd-rev", "rev-rev"):
        with diffprog.profile() as p:
            out = diffprog.hvp(chain, w, w, method=method)
        peaks[method] = p.peak_bytes
        del out
    assert peaks["fwd-rev"] <= peaks["rev-rev"] * 1.05


def test_ad54_hessian_symmetric_and_closed_form():
    H = diffprog.hessian(quad_cos)(W0)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(H, Q - np.diag(np.cos(W0)), rtol=0, atol=1e-12)


def test_ad55_vjp_equals_grad_of_projection():
    B = RNG.standard_normal((5, 5))

    def g(w):
        return dnp.tanh(dnp.matmul(B, w)) * dnp.exp(0.1 * w)

    u = RNG.standard_normal(5)
    lhs = diffprog.vjp(g, W0)[1](u)[0]
    rhs = diffprog.grad(lambda w: dnp.vdot(u, g(w)))(W0)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- AD-70, AD-71

B43 = RNG.standard_normal((3, 4))
B23 = RNG.standard_normal((2, 3))


def f43(w):
    return dnp.sin(dnp.matmul(B43, w)) * dnp.sum(w ** 2)


def g32(t):
    return dnp.tanh(dnp.matmul(B23, t)) + t[0] * t[1]


def test_ad70_second_derivative_symmetric_composition_and_fd():
    w, v1, v2 = RNG.standard_normal((3, 4))
    d12 = second_derivative(f43, w, v1, v2)
    d21 = second_derivative(f43, w, v2, v1)
    np.testing.assert_allclose(d12, d21, rtol=0, atol=1e-12)
    # Prop 9.7: ∂²(g∘f)[v1,v2] = ∂g(f)[∂²f[v1,v2]] + ∂²g(f)[∂f[v1], ∂f[v2]]
    lhs = second_derivative(lambda x: g32(f43(x)), w, v1, v2)
    fw = f43(w)
    rhs = (diffprog.jvp(g32, (fw,), (d12,))[1]
           + second_derivative(g32, fw, diffprog.jvp(f43, (w,), (v1,))[1],
                               diffprog.jvp(f43, (w,), (v2,))[1]))
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)
    # polarization: ∂²f[v1,v2] = (∂²f[v1+v2, v1+v2] − ∂²f[v1−v2, v1−v2]) / 4
    fd = (fd_second_directional(f43, w, v1 + v2, delta=1e-4)
          - fd_second_directional(f43, w, v1 - v2, delta=1e-4)) / 4
    np.testing.assert_allclose(d12, fd, rtol=0, atol=1e-5)


def test_ad71_output_hessian_eq_9_2():
    w = RNG.standard_normal(4)
    u = RNG.standard_normal(2)
    lhs = output_hessian(lambda x: g32(f43(x)), w, u)
    J = diffprog.jacfwd(f43)(w)
    fw = f43(w)
    gu = diffprog.vjp(g32, fw)[1](u)[0]            # ∂g(f(w))* u
    rhs = output_hessian(f43, w, gu) + J.T @ output_hessian(g32, fw, u) @ J
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-8)
    v = RNG.standard_normal(4)
    np.testing.assert_allclose(ohvp(lambda x: g32(f43(x)), w, u, v), lhs @ v, rtol=0,
                               atol=1e-10)


# ----------------------------------------------------------------------------- Gauss-Newton

C = RNG.standard_normal((3, 4))


def f_nl(w):  # nonlinear R^4 → R^3
    return dnp.stack([w[0] * w[1] - w[2] ** 2, dnp.sin(w[1] * w[3]), dnp.vdot(C[2], w) ** 3])


def ce_loss(t):  # softmax cross-entropy with label 0: convex in t
    return logsumexp(t) - t[0]


WG = np.array([0.7, -1.2, 0.9, 1.5])


def test_ad56a_gn_psd_for_convex_loss_while_hessian_is_indefinite():
    H = diffprog.hessian(lambda w: ce_loss(f_nl(w)))(WG)
    assert np.linalg.eigvalsh(H).min() < -1e-3  # the Hessian itself is indefinite here
    GN = gauss_newton(f_nl, ce_loss, WG)
    np.testing.assert_allclose(GN, GN.T, rtol=0, atol=1e-12)
    assert np.linalg.eigvalsh(GN).min() >= -1e-10


def test_ad56b_hessian_minus_gn_is_the_residual_sum():
    H = diffprog.hessian(lambda w: ce_loss(f_nl(w)))(WG)
    GN = gauss_newton(f_nl, ce_loss, WG)
    g_l = diffprog.grad(ce_loss)(f_nl(WG))
    resid = sum(g_l[j] * diffprog.hessian(lambda w, j=j: f_nl(w)[j])(WG) for j in range(3))
    np.testing.assert_allclose(H - GN, resid, rtol=0, atol=1e-8)


def test_ad56c_gn_equals_hessian_for_linear_f_and_works_on_pytrees():
    A = RNG.standard_normal((3, 4))
    c = RNG.standard_normal(3)
    lin = lambda w: dnp.matmul(A, w) + c  # noqa: E731
    np.testing.assert_allclose(gauss_newton(lin, ce_loss, WG),
                               diffprog.hessian(lambda w: ce_loss(lin(w)))(WG), rtol=0,
                               atol=1e-12)
    # pytree parameters: same matrix over ravel_pytree(w)
    tree = {"a": WG[:2], "b": WG[2:]}
    f_tree = lambda w: f_nl(dnp.concatenate([w["a"], w["b"]]))  # noqa: E731
    np.testing.assert_allclose(gauss_newton(f_tree, ce_loss, tree),
                               gauss_newton(f_nl, ce_loss, WG), rtol=0, atol=1e-12)


def test_ad57_gn_chain_rule():
    Bg = RNG.standard_normal((4, 4))
    g = lambda w: dnp.tanh(dnp.matmul(Bg, w))  # noqa: E731
    w = RNG.standard_normal(4)
    Jg = diffprog.jacfwd(g)(w)
    lhs = gauss_newton(lambda x: f_nl(g(x)), ce_loss, w)
    rhs = Jg.T @ gauss_newton(f_nl, ce_loss, g(w)) @ Jg
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)


def test_ad58_gnvp_equals_gn_matvec_and_counts_passes():
    v = RNG.standard_normal(4)
    GN = gauss_newton(f_nl, ce_loss, WG)
    np.testing.assert_allclose(gnvp(f_nl, ce_loss, WG, v), GN @ v, rtol=0, atol=1e-10)
    G = make_gnvp(f_nl, ce_loss, WG)
    np.testing.assert_allclose(G(v), GN @ v, rtol=0, atol=1e-10)
    # instrumented: 2 forward passes (JVP + VJP's forward) and 1 backward pass through f
    f = diffprog.count_calls(lambda w: dnp.tanh(dnp.matmul(C, w)))
    with diffprog.profile() as p:
        gnvp(f, ce_loss, WG, v)
    assert f.calls == 2
    assert p.jvp_calls["tanh"] == 1 and p.vjp_calls["tanh"] == 1
    f.calls = 0
    G = make_gnvp(f, ce_loss, WG)
    G(v)
    assert f.calls == 2
    G(v)
    assert f.calls == 3  # the VJP of f is reused


def test_gnvp_on_pytrees():
    tree = {"a": WG[:2], "b": WG[2:]}
    f_tree = lambda w: f_nl(dnp.concatenate([w["a"], w["b"]]))  # noqa: E731
    v = {"a": np.array([1.0, -2.0]), "b": np.array([0.5, 3.0])}
    out = gnvp(f_tree, ce_loss, tree, v)
    flat = gauss_newton(f_nl, ce_loss, WG) @ ravel_pytree(v)[0]
    np.testing.assert_allclose(ravel_pytree(out)[0], flat, rtol=0, atol=1e-10)


def test_ad59_gn_factor_vvt_vjp_count_and_softmax_rank():
    V = gn_factor(f_nl, ce_loss, WG)
    GN = gauss_newton(f_nl, ce_loss, WG)
    np.testing.assert_allclose(V @ V.T, GN, rtol=0, atol=1e-10)
    assert V.shape[1] <= 2  # softmax CE: ∇²ℓ = diag(p) − ppᵀ is singular, rank ≤ M−1
    assert np.all(np.isfinite(V))
    f = lambda w: dnp.tanh(dnp.matmul(C, w))  # noqa: E731
    with diffprog.profile() as p:
        V2 = gn_factor(f, lambda t: 0.5 * dnp.sum(t ** 2) + dnp.sum(t ** 4), WG)
    assert p.vjp_calls["tanh"] == 3  # M VJPs
    np.testing.assert_allclose(V2 @ V2.T,
                               gauss_newton(f, lambda t: 0.5 * dnp.sum(t ** 2)
                                            + dnp.sum(t ** 4), WG), rtol=0, atol=1e-10)


def test_gn_factor_rejects_a_nonconvex_loss():
    with pytest.raises(ValueError, match="gn_factor"):
        gn_factor(f_nl, lambda t: -dnp.sum(t ** 2), WG)


# An MLP with canonical softmax cross-entropy (logits), for AD-60 and AD-65.
M_CLS, D_IN = 3, 2
XB = RNG.standard_normal((6, D_IN))
EYE = np.eye(M_CLS)
YB = EYE[RNG.integers(0, M_CLS, size=6)]
W_MLP = {"W1": 0.8 * RNG.standard_normal((3, D_IN)), "b1": 0.1 * RNG.standard_normal(3),
         "W2": 0.8 * RNG.standard_normal((M_CLS, 3))}


def mlp(w, x):
    return dnp.matmul(w["W2"], dnp.tanh(dnp.matmul(w["W1"], x) + w["b1"]))


def nll_ce(theta, y):  # y one-hot
    return logsumexp(theta) - dnp.vdot(theta, y)


def sample_labels(theta, rng, n):
    p = np.asarray(softmax(np.asarray(theta)))
    return EYE[rng.choice(M_CLS, size=n, p=p)]


def test_ad60_batched_gn_is_mean_of_per_example_gn():
    GN = gauss_newton(mlp, nll_ce, W_MLP, batch=(XB, YB))
    per = [gauss_newton(lambda w, x=x: mlp(w, x), lambda t, y=y: nll_ce(t, y), W_MLP)
           for x, y in zip(XB, YB, strict=True)]
    np.testing.assert_allclose(GN, np.mean(per, axis=0), rtol=0, atol=1e-12)
    v = {k: RNG.standard_normal(a.shape) for k, a in W_MLP.items()}
    out = gnvp(mlp, nll_ce, W_MLP, v, batch=(XB, YB))
    np.testing.assert_allclose(ravel_pytree(out)[0], GN @ ravel_pytree(v)[0], rtol=0,
                               atol=1e-10)
    out = make_gnvp(mlp, nll_ce, W_MLP, batch=(XB, YB))(v)
    np.testing.assert_allclose(ravel_pytree(out)[0], GN @ ravel_pytree(v)[0], rtol=0,
                               atol=1e-10)


def test_batch_must_be_a_pair():
    with pytest.raises(ValueError, match="gauss_newton: batch"):
        gauss_newton(mlp, nll_ce, W_MLP, batch=XB)


# ----------------------------------------------------------------------------- Fisher (AD-61…65)


def bern_log_prob(w, s):
    return s * dnp.log(expit(w[0])) + (1 - s) * dnp.log(expit(-w[0]))


def bern_sample(w, rng, n):
    return (rng.random(n) < expit(float(w[0]))).astype(float)


@pytest.mark.parametrize("form", ["score", "hessian"])
def test_ad61_bernoulli_fisher_exact_and_monte_carlo(form):
    w = np.array([0.7])
    s = 1 / (1 + np.exp(-0.7))
    F = fisher(bern_log_prob, w, support=[0.0, 1.0], form=form)
    np.testing.assert_allclose(F, [[s * (1 - s)]], rtol=0, atol=1e-12)
    F_mc = fisher(bern_log_prob, w, sample_fn=bern_sample, num_samples=100_000, rng=1,
                  form=form)
    assert abs(F_mc[0, 0] / (s * (1 - s)) - 1) <= 0.02


def test_ad61_gaussian_mean_fisher_is_one():
    log_prob = lambda w, s: -0.5 * (s - w[0]) ** 2 - 0.5 * np.log(2 * np.pi)  # noqa: E731
    sample = lambda w, rng, n: float(w[0]) + rng.standard_normal(n)  # noqa: E731
    F = fisher(log_prob, np.array([0.3]), sample_fn=sample, num_samples=100_000,
               rng=np.random.default_rng(2))
    assert abs(F[0, 0] - 1) <= 0.02
    np.testing.assert_allclose(
        fisher(log_prob, np.array([0.3]), sample_fn=sample, num_samples=10, rng=3,
               form="hessian"), [[1.0]], rtol=0, atol=1e-12)


def test_fisher_rng_is_explicit_and_reproducible():
    a = fisher(bern_log_prob, np.array([0.2]), sample_fn=bern_sample, num_samples=500, rng=7)
    b = fisher(bern_log_prob, np.array([0.2]), sample_fn=bern_sample, num_samples=500, rng=7)
    np.testing.assert_array_equal(a, b)


def test_ad62_categorical_score_covariance_equals_expected_hessian():
    K = 4
    A = RNG.standard_normal((K, 3))

    def log_prob(w, s):  # categorical with nonlinear logits A tanh(w); s one-hot
        logits = dnp.matmul(A, dnp.tanh(w))
        return dnp.vdot(logits, s) - logsumexp(logits)

    w = RNG.standard_normal(3)
    support = list(np.eye(K))
    F1 = fisher(log_prob, w, support=support)
    F2 = fisher(log_prob, w, support=support, form="hessian")
    np.testing.assert_allclose(F1, F2, rtol=0, atol=1e-12)


def test_ad63_empirical_fisher_differs_from_fisher():
    sig = 0.9
    z = np.log(sig / (1 - sig))
    X = np.array([[1.0, 0.5], [2.0, -1.0], [0.5, 3.0]])
    w = np.array([1.0, 1.0])
    X = X * (z / (X @ w))[:, None]  # every example has σ(x_iᵀw) = 0.9
    Y = np.ones(3)
    nll = lambda t, y: dnp.logaddexp(0.0, t) - y * t  # noqa: E731
    f = lambda w_, x: dnp.vdot(w_, x)  # noqa: E731
    EF = empirical_fisher(lambda w_, s: nll(f(w_, s[0]), s[1]), w, (X, Y))
    F = fisher_supervised(f, nll, w, X, support=[0.0, 1.0])
    np.testing.assert_allclose(EF, F * (1 - sig) / sig, rtol=1e-10, atol=0)
    assert np.linalg.norm(F) / np.linalg.norm(EF) == pytest.approx(9.0, rel=1e-8)


def test_ad64_logistic_supervised_fisher_closed_form_and_fvp():
    X = RNG.standard_normal((7, 3))
    w = RNG.standard_normal(3)
    nll = lambda t, y: dnp.logaddexp(0.0, t) - y * t  # noqa: E731
    f = lambda w_, x: dnp.vdot(w_, x)  # noqa: E731
    s = 1 / (1 + np.exp(-X @ w))
    closed = (X.T * (s * (1 - s))) @ X / len(X)
    F = fisher_supervised(f, nll, w, X, support=[0.0, 1.0])
    np.testing.assert_allclose(F, closed, rtol=0, atol=1e-12)
    v = RNG.standard_normal(3)
    np.testing.assert_allclose(fvp(f, nll, w, v, X, support=[0.0, 1.0]), closed @ v, rtol=0,
                               atol=1e-12)


def test_ad65_fisher_equals_gn_for_softmax_cross_entropy_mlp():
    GN = gauss_newton(mlp, nll_ce, W_MLP, batch=(XB, YB))
    F = fisher_supervised(mlp, nll_ce, W_MLP, XB, support=list(EYE))
    np.testing.assert_allclose(F, GN, rtol=0, atol=1e-12)
    F_h = fisher_supervised(mlp, nll_ce, W_MLP, XB, support=list(EYE), form="hessian")
    np.testing.assert_allclose(F_h, GN, rtol=0, atol=1e-12)
    # Monte Carlo: 10⁵ sampled labels in total, relative Frobenius error ≤ 3 %
    F_mc = fisher_supervised(mlp, nll_ce, W_MLP, XB, sample_fn=sample_labels,
                             num_samples=100_000 // len(XB), rng=0)
    assert np.linalg.norm(F_mc - GN) / np.linalg.norm(GN) <= 0.03
    v = {k: RNG.standard_normal(a.shape) for k, a in W_MLP.items()}
    out = fvp(mlp, nll_ce, W_MLP, v, XB, support=list(EYE))
    np.testing.assert_allclose(ravel_pytree(out)[0], GN @ ravel_pytree(v)[0], rtol=0,
                               atol=1e-10)


def test_fisher_differs_from_gn_outside_exponential_families():
    # Bernoulli with probability σ(t)² (not natural parameters): Fisher != GN.
    X = RNG.standard_normal((4, 2))
    w = np.array([0.3, -0.4])
    f = lambda w_, x: dnp.vdot(w_, x)  # noqa: E731

    def nll(t, y):
        p = expit(t) ** 2
        return -(y * dnp.log(p) + (1 - y) * dnp.log(1 - p))

    F = fisher_supervised(f, nll, w, X, support=[0.0, 1.0])
    GN = gauss_newton(f, nll, w, batch=(X, np.ones(4)))
    assert np.abs(F - GN).max() > 1e-3


def test_fisher_bad_inputs():
    with pytest.raises(ValueError, match="fisher: give either"):
        fisher(bern_log_prob, np.array([0.0]))
    with pytest.raises(ValueError, match="fisher: form"):
        fisher(bern_log_prob, np.array([0.0]), support=[0.0, 1.0], form="outer")
    with pytest.raises(ValueError, match="fisher_supervised: give either"):
        fisher_supervised(mlp, nll_ce, W_MLP, XB)
    with pytest.raises(TypeError, match="rng"):
        fisher(bern_log_prob, np.array([0.0]), sample_fn=bern_sample, rng="seed")
