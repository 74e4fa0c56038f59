"""Activations and probability maps (book §4.4, §4.8.4): spec rows NET-17..29 and NET-49."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn import activations as A

finite = st.floats(-30.0, 30.0, allow_nan=False)
vectors = st.lists(st.floats(-20.0, 20.0, allow_nan=False), min_size=1, max_size=6).map(np.array)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# ----------------------------------------------------------------------------- NET-17 relu


def test_net17_relu_values_and_kink_convention():
    """NET-17: relu([-2,0,3]) = [0,0,3]; relu' = 1 on u>0, 0 on u<0 and (convention) at 0."""
    np.testing.assert_array_equal(A.relu(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
    d = diffprog.vmap(diffprog.grad(A.relu))(np.array([-1.5, 0.0, 0.7]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 1.0])
    check_grads(A.relu, (np.array([-1.3, 0.4, 2.2]),), order=2)
    assert A.relu(np.array([-1.0, 2.0], np.float32)).dtype == np.float32


# ----------------------------------------------------------------------------- NET-18 softplus


def test_net18_softplus_values_stability_and_derivative():
    """NET-18: closed form, positivity, no overflow, softplus' = logistic."""
    assert A.softplus(1.0) == pytest.approx(math.log1p(math.e), abs=1e-15)
    assert A.softplus(1.0) == pytest.approx(1.3132616875182228, abs=1e-15)
    assert A.softplus(-50.0) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(A.softplus(1000.0)) == 1000.0
    u = np.linspace(-30, 30, 61)
    g = diffprog.vmap(diffprog.grad(A.softplus))(u)
    np.testing.assert_allclose(g, 1.0 / (1.0 + np.exp(-u)), rtol=1e-12, atol=1e-15)
    check_grads(A.softplus, (np.array([-2.0, 0.3, 4.0]),), order=2)
    assert A.softplus(np.array([1.0], np.float32)).dtype == np.float32


# ----------------------------------------------------------------------------- NET-19 max


def test_net19_max_pool_value_gradient_and_ties():
    """NET-19: max([1,5,2]) = 5; gradient is the one-hot of the (first) maximizer."""
    assert float(A.max_pool(np.array([1.0, 5.0, 2.0]))) == 5.0
    np.testing.assert_array_equal(diffprog.grad(A.max_pool)(np.array([1.0, 5.0, 2.0])),
                                  [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(diffprog.grad(A.max_pool)(np.array([2.0, 2.0, 1.0])),
                                  [1.0, 0.0, 0.0])
    X = np.array([[1.0, 4.0], [3.0, -2.0], [0.0, 0.5]])
    np.testing.assert_array_equal(A.max_pool(X, axis=0), X.max(axis=0))
    assert A.max_pool(X, keepdims=True).shape == (3, 1)
    check_grads(A.max_pool, (np.array([0.3, 1.7, -0.4]),), order=2)


# ----------------------------------------------------------------------------- NET-20..22 lse


def test_net20_logsumexp_values_identities_and_gradient():
    """NET-20: values, shift stability, lse((u,0)) = softplus(u), ∇lse = softargmax."""
    u = np.array([1.0, 2.0, 3.0])
    naive = math.log(sum(math.exp(x) for x in u))
    assert float(A.logsumexp(u)) == pytest.approx(naive, abs=1e-14)
    assert float(A.logsumexp(u)) == pytest.approx(3.4076059644443806, abs=1e-14)
    assert float(A.logsumexp(u + 1000.0)) == pytest.approx(1003.4076059644444, abs=1e-12)
    assert float(A.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf
    g = diffprog.grad(A.logsumexp)(u)
    np.testing.assert_allclose(g, np.exp(u) / np.exp(u).sum(), rtol=1e-14)
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(A.logsumexp(X, axis=0), np.log(np.exp(X).sum(0)), rtol=1e-14)
    check_grads(A.logsumexp, (np.array([0.5, -1.0, 2.0]),), order=2)
    u32 = np.array([1.0, 2.0, 3.0], np.float32)
    assert A.logsumexp(u32, temperature=0.5).dtype == np.float32
    assert float(A.logsumexp(u32)) == pytest.approx(3.4076059644443806, rel=1e-6)
    check_grads(lambda v: A.logsumexp(v, temperature=0.3), (np.array([0.5, -1.0, 2.0]),),
                order=2)


@given(finite)
def test_net20_logsumexp_of_u_and_zero_is_softplus(u):
    """NET-20: logsumexp((u, 0)) == softplus(u) == log(1 + e^u)."""
    expected = max(u, 0.0) + math.log1p(math.exp(-abs(u)))
    assert float(A.logsumexp(np.array([u, 0.0]))) == pytest.approx(expected, rel=1e-13, abs=1e-15)
    assert float(A.softplus(u)) == pytest.approx(expected, rel=1e-13, abs=1e-15)


@given(vectors)
def test_net20_gradient_of_logsumexp_is_softargmax(u):
    """NET-20/26: ∇ logsumexp = softargmax (checked against the closed-form ratio of exps)."""
    e = np.exp(u - u.max())
    np.testing.assert_allclose(diffprog.grad(A.logsumexp)(u), e / e.sum(), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(A.softargmax(u), e / e.sum(), rtol=1e-12, atol=1e-15)


def test_net21_logsumexp_temperature_values():
    """NET-21: γ·lse(u/γ) for γ ∈ {1, 0.1, 0.01}; gradient softargmax(u/γ); γ ≤ 0 raises."""
    u = np.array([1.0, 2.0, 3.0])
    v1 = float(A.logsumexp(u, temperature=1.0))
    assert 3.0 <= v1 <= 3.0 + math.log(3.0)
    assert 3.0 + math.log(3.0) == pytest.approx(4.09861228866811, abs=1e-14)
    expected = 3.0 + 0.1 * math.log1p(math.exp(-10.0) + math.exp(-20.0))
    assert float(A.logsumexp(u, temperature=0.1)) == pytest.approx(expected, abs=1e-15)
    assert float(A.logsumexp(u, temperature=0.1)) == pytest.approx(3.0000045400960276, abs=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(A.logsumexp(u, temperature=0.01)) == 3.0
    g = diffprog.grad(lambda v: A.logsumexp(v, temperature=0.5))(u)
    e = np.exp(u / 0.5)
    np.testing.assert_allclose(g, e / e.sum(), rtol=1e-13)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="logsumexp: argument 'temperature'"):
            A.logsumexp(u, temperature=bad)
    with pytest.raises(TypeError, match="temperature"):
        A.logsumexp(u, temperature=np.ones(2))


def test_net21_temperature_bounds_on_random_vectors():
    """NET-21: max(u) ≤ lse_γ(u) ≤ max(u) + γ log M on 10⁴ random vectors."""
    rng = np.random.default_rng(0)
    U = rng.normal(scale=5.0, size=(10_000, 7))
    for gamma in (0.05, 1.0, 3.0):
        v = A.logsumexp(U, temperature=gamma)
        m = U.max(axis=1)
        assert np.all(m <= v + 1e-12)
        assert np.all(v <= m + gamma * math.log(7) + 1e-12)


@given(vectors, st.floats(0.01, 10.0))
def test_net21_temperature_bounds_property(u, gamma):
    """NET-21 (hypothesis): max ≤ lse_γ ≤ max + γ log M, and γ → 0 tends to max."""
    v = float(A.logsumexp(u, temperature=gamma))
    assert u.max() - 1e-12 <= v <= u.max() + gamma * math.log(u.size) + 1e-12


def test_net22_log_domain_sum():
    """NET-22: log Σ x_i = logsumexp(log x), finite where the naive form gives −inf."""
    x = np.array([0.5, 2.0, 7.25])
    assert float(A.logsumexp(np.log(x))) == pytest.approx(math.log(x.sum()), abs=1e-14)
    logs = np.array([-1000.0, -1000.0])
    with np.errstate(divide="ignore"):
        assert np.log(np.sum(np.exp(logs))) == -np.inf
    assert float(A.logsumexp(logs)) == pytest.approx(-1000.0 + math.log(2.0), abs=1e-12)
    assert float(A.logsumexp(logs)) == pytest.approx(-999.3068528194401, abs=1e-12)


# ----------------------------------------------------------------------------- NET-23, 24 sigmoids


def test_net23_step_values_and_zero_derivative():
    """NET-23: step([-1,0,2]) = [0,1,1] (step(0) = 1); derivative 0 everywhere, also at 0."""
    np.testing.assert_array_equal(A.step(np.array([-1.0, 0.0, 2.0])), [0.0, 1.0, 1.0])
    d = diffprog.vmap(diffprog.grad(A.step))(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 0.0])
    assert A.step(np.array([1.0], np.float32)).dtype == np.float32
    assert A.step(np.array([-3, 4])).dtype == np.float64
    check_grads(A.step, (np.array([-1.2, 0.4, 2.0]),), order=2)


def test_net24_logistic_values_forms_and_derivative():
    """NET-24: σ(0)=½, σ(1), three equivalent forms, no overflow, σ' = σ(u)σ(−u)."""
    assert float(A.logistic(0.0)) == 0.5
    assert float(A.sigmoid(1.0)) == pytest.approx(0.7310585786300049, abs=1e-16)
    u = np.linspace(-30, 30, 121)
    s = A.logistic(u)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-u)), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(s, np.exp(u) / (1 + np.exp(u)), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(s, 0.5 + 0.5 * np.tanh(u / 2), rtol=1e-14, atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(A.logistic(-1000.0)) == 0.0
        assert float(A.logistic(1000.0)) == 1.0
    assert np.all((s[u < 0] > 0) & (s[u < 0] < 0.5))
    assert np.all((s[u >= 0] >= 0.5) & (s[u >= 0] <= 1))
    g = diffprog.vmap(diffprog.grad(A.logistic))(u)
    np.testing.assert_allclose(g, s * (1 / (1 + np.exp(u))), rtol=1e-13, atol=1e-300)
    check_grads(A.sigmoid, (np.array([-3.0, 0.2, 5.0]),), order=2)


@given(finite)
def test_net24_logistic_symmetry(u):
    """NET-24: logistic(−u) = 1 − logistic(u); [softargmax((u,0))]_1 = logistic(u)."""
    assert float(A.logistic(-u)) == pytest.approx(1.0 - float(A.logistic(u)), abs=1e-15)
    assert float(A.softargmax(np.array([u, 0.0]))[0]) == pytest.approx(float(A.logistic(u)),
                                                                        rel=1e-13, abs=1e-300)


def test_net24_log_sigmoid_silu_tanh():
    """NET-24 (log-sigmoid, silu, tanh): closed forms, stability and gradient checks."""
    u = np.array([-40.0, -1.0, 0.0, 2.5])
    np.testing.assert_allclose(A.log_sigmoid(u), -np.log1p(np.exp(-u)), rtol=1e-14)
    assert float(A.log_sigmoid(-1000.0)) == -1000.0
    np.testing.assert_allclose(A.silu(u), u / (1 + np.exp(-u)), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(A.tanh(u), 2 / (1 + np.exp(-2 * u)) - 1, rtol=1e-14, atol=1e-15)
    x = np.array([-1.2, 0.3, 2.0])
    for f in (A.log_sigmoid, A.silu, A.tanh):
        check_grads(f, (x,), order=2)
    assert A.silu(x.astype(np.float32)).dtype == np.float32


# ----------------------------------------------------------------------------- NET-25..29 maps


def test_net25_argmax_onehot_and_one_hot():
    """NET-25: [1,3,2] → e_2; ties → first index; output in {0,1}, sums to 1; zero gradient."""
    np.testing.assert_array_equal(A.argmax_onehot(np.array([1.0, 3.0, 2.0])), [0, 1, 0])
    tie = A.argmax_onehot(np.array([2.0, 2.0, 1.0]))
    np.testing.assert_array_equal(tie, [1.0, 0.0, 0.0])
    X = np.random.default_rng(1).normal(size=(5, 4))
    H = A.argmax_onehot(X, axis=0)
    np.testing.assert_array_equal(H, np.eye(5)[X.argmax(0)].T)
    assert set(np.unique(H)) <= {0.0, 1.0}
    np.testing.assert_array_equal(H.sum(0), np.ones(4))
    c = np.array([0.3, -2.0, 5.0])
    g = diffprog.grad(lambda v: dnp.sum(A.argmax_onehot(v) * c))(np.array([1.0, 3.0, 2.0]))
    np.testing.assert_array_equal(g, np.zeros(3))
    check_grads(A.argmax_onehot, (np.array([1.0, 3.0, 2.0]),), order=2)
    np.testing.assert_array_equal(A.one_hot(np.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="one_hot: argument 'j'"):
        A.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="one_hot: argument 'j'"):
        A.one_hot(np.array([1.0]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        A.one_hot(np.array([0]), 0)


def test_net26_softargmax_values_invariance_temperature():
    """NET-26: values, sums to 1, shift invariance, Jacobian diag(π) − ππᵀ, γ → 0 → argmax."""
    u = np.array([1.0, 2.0, 3.0])
    p = A.softargmax(u)
    np.testing.assert_allclose(p, [0.09003057, 0.24472847, 0.66524096], atol=5e-9)
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(A.softargmax(u + 1e3), p, rtol=1e-13)
    J = diffprog.jacobian(A.softargmax)(u)
    np.testing.assert_allclose(J, np.diag(p) - np.outer(p, p), atol=1e-15)
    np.testing.assert_allclose(A.softargmax(u, temperature=1e-3), A.argmax_onehot(u), atol=1e-300)
    np.testing.assert_allclose(A.softargmax(u, temperature=2.0),
                               np.exp(u / 2) / np.exp(u / 2).sum(), rtol=1e-14)
    assert A.softmax is A.softargmax
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(A.softargmax(X, axis=0).sum(0), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(np.exp(A.log_softmax(X, axis=0, temperature=0.7)),
                               A.softargmax(X, axis=0, temperature=0.7), rtol=1e-14)
    assert A.softargmax(u.astype(np.float32)).dtype == np.float32
    check_grads(lambda v: A.softargmax(v, temperature=0.5), (np.array([0.1, -0.4, 0.9]),),
                order=2)
    check_grads(A.log_softmax, (np.array([0.1, -0.4, 0.9]),), order=2)
    with pytest.raises(ValueError, match="softargmax: argument 'temperature'"):
        A.softargmax(u, temperature=0.0)
    with pytest.raises(ValueError, match="log_softmax: argument 'temperature'"):
        A.log_softmax(u, temperature=-2.0)
    with pytest.raises(ValueError, match="softargmax: argument 'u'"):
        A.softargmax(1.0)


def test_net26_temperature_is_differentiable():
    """NET-26/21: d/dγ [γ lse(u/γ)] = lse(u/γ) − ⟨softargmax(u/γ), u/γ⟩ (an entropy)."""
    u = np.array([1.0, 2.0, 3.0])
    gamma = 0.7
    dg = diffprog.grad(lambda g: A.logsumexp(u, temperature=g))(gamma)
    p = np.exp(u / gamma) / np.exp(u / gamma).sum()
    assert dg == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)


def test_net27_softargmax_inverse_and_center():
    """NET-27: inverse returns u − mean(u); softargmax ∘ inverse = identity on relint."""
    u = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(A.center(u), [-1.0, 0.0, 1.0], atol=0)
    np.testing.assert_allclose(A.softargmax_inverse(A.softargmax(u)), [-1.0, 0.0, 1.0],
                               atol=1e-12)
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(A.softargmax(A.softargmax_inverse(pi)), pi, rtol=1e-13)
    r = A.softargmax_inverse(pi)
    assert r.sum() == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="softargmax_inverse: argument 'pi' must have entries"):
        A.softargmax_inverse(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        A.softargmax_inverse(np.array([0.5, 0.6]))
    check_grads(A.center, (u,), order=2)


def test_net28_simplex_membership():
    """NET-28: softargmax → relint(Δ); argmax → vertices (in Δ, not relint); sigmoids → cube."""
    u = np.array([0.3, -1.0, 2.0])
    assert A.in_relint_simplex(A.softargmax(u))
    assert A.in_simplex(A.argmax_onehot(u))
    assert not A.in_relint_simplex(A.argmax_onehot(u))
    s = A.sigmoid(u)
    assert np.all((s >= 0) & (s <= 1)) and not A.in_simplex(s)
    rows = A.in_simplex(np.array([[0.5, 0.5], [0.7, 0.7], [-0.1, 1.1]]))
    np.testing.assert_array_equal(rows, [True, False, False])
    with pytest.raises(TypeError, match="in_simplex: argument 'pi'"):
        diffprog.grad(lambda v: float(A.in_simplex(v)))(u)


def test_net29_sparseargmax():
    """NET-29: projection onto Δ: exact zeros, invariance to u + c1, axis argument."""
    np.testing.assert_array_equal(A.sparseargmax(np.array([3.0, 0.0, 0.0])), [1.0, 0.0, 0.0])
    u = np.array([0.5, 1.2, -0.3])
    p = A.sparseargmax(u)
    np.testing.assert_allclose(p, [0.15, 0.85, 0.0], atol=1e-15)  # τ = 0.35 by hand
    assert A.in_simplex(p) and not A.in_relint_simplex(p)
    np.testing.assert_allclose(A.sparseargmax(u + 7.0), p, atol=1e-14)
    X = np.stack([u, np.array([0.2, 0.1, 0.0])], axis=1)
    np.testing.assert_allclose(A.sparseargmax(X, axis=0)[:, 0], p, atol=1e-15)
    # brute force: the projection minimizes ‖u − π‖² over a fine grid of the simplex
    grid = [(a, b, 1 - a - b) for a in np.linspace(0, 1, 201) for b in np.linspace(0, 1, 201)
            if a + b <= 1 + 1e-12]
    best = min(grid, key=lambda q: np.sum((u - np.array(q)) ** 2))
    np.testing.assert_allclose(p, best, atol=5e-3)


# ----------------------------------------------------------------------------- NET-49 gelu


def test_net49_gelu_exact_and_tanh():
    """NET-49: gelu = uΦ(u); gelu(0) = 0, gelu(1) = Φ(1); tanh approximation within 1e-3."""
    assert float(A.gelu(0.0)) == 0.0
    assert float(A.gelu(1.0)) == pytest.approx(0.8413447460685429, abs=1e-15)
    u = np.linspace(-6, 6, 49)
    np.testing.assert_allclose(A.gelu(u), [x * _normal_cdf(x) for x in u], rtol=1e-14,
                               atol=1e-300)
    approx = A.gelu(u, approximate=True)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_allclose(approx, 0.5 * u * (1 + np.tanh(c * (u + 0.044715 * u**3))),
                               rtol=1e-14, atol=1e-300)
    assert np.max(np.abs(approx - A.gelu(u))) < 1e-3
    # derivative: Φ(u) + u φ(u)
    d = diffprog.vmap(diffprog.grad(A.gelu))(u)
    phi = np.exp(-u**2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(d, [_normal_cdf(x) for x in u] + u * phi, rtol=1e-12, atol=1e-15)
    x = np.array([-2.0, 0.3, 1.5])
    check_grads(A.gelu, (x,), order=2)
    check_grads(lambda v: A.gelu(v, approximate=True), (x,), order=2)
    assert A.gelu(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match="gelu: argument 'approximate'"):
        A.gelu(x, approximate="tanh")


@given(finite)
def test_net49_gelu_odd_part_is_identity(u):
    """NET-49: gelu(u) − gelu(−u) == u (exact erf form)."""
    assert float(A.gelu(u) - A.gelu(-u)) == pytest.approx(u, abs=1e-13)


# ----------------------------------------------------------------------------- bad input, jit


@pytest.mark.parametrize("fn", [A.logsumexp, A.softargmax, A.log_softmax, A.max_pool,
                                A.argmax_onehot, A.sparseargmax, A.center])
def test_reductions_reject_scalars_and_bad_axes(fn):
    """Bad input (NET-20..29): scalars and out-of-range axes raise naming the function."""
    name = fn.__name__
    with pytest.raises(ValueError, match=name):
        fn(np.float64(1.0))
    with pytest.raises((ValueError, TypeError), match=name):
        fn(np.ones(3), axis=2)
    with pytest.raises(TypeError, match=name):
        fn(np.array(["a", "b"]))


def test_activations_compose_with_jit_and_vmap():
    """NET-17..29: activations run under jit and vmap with the same values as eagerly."""
    X = np.random.default_rng(2).normal(size=(4, 3))
    for f in (A.relu, A.gelu, A.silu, A.step, A.softargmax, A.argmax_onehot, A.sparseargmax,
              lambda v: A.logsumexp(v, temperature=0.3)):
        np.testing.assert_allclose(diffprog.jit(f)(X), f(X), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(diffprog.vmap(f)(X), f(X), rtol=1e-13, atol=1e-15)
