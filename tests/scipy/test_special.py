"""Tests of diffprog.scipy.special: values from closed forms, derivatives against closed forms
and central finite differences (first and second order, forward and reverse mode)."""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pytest
import scipy.special as ss
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.scipy
from diffprog.derivatives import check_grads
from diffprog.scipy import special as sp

RNG = np.random.default_rng(0)


def no_warnings():
    """Context manager turning every warning into an error."""
    cm = warnings.catch_warnings()

    class _C:
        def __enter__(self):
            cm.__enter__()
            warnings.simplefilter("error")

        def __exit__(self, *exc):
            return cm.__exit__(*exc)

    return _C()


def fd(f, x, h=1e-5):
    """Central finite difference of a scalar function at a scalar point."""
    return (f(x + h) - f(x - h)) / (2 * h)


# ----------------------------------------------------------------------------- every function:
# first and second derivatives, both modes, against central finite differences

UNARY_CASES = [
    ("expit", sp.expit, (-3.0, 3.0)),
    ("logit", sp.logit, (0.2, 0.8)),
    ("log_expit", sp.log_expit, (-3.0, 3.0)),
    ("erf", sp.erf, (-1.5, 1.5)),
    ("erfc", sp.erfc, (-1.5, 1.5)),
    ("erfinv", sp.erfinv, (-0.8, 0.8)),
    ("gammaln", sp.gammaln, (0.5, 4.0)),
    ("digamma", sp.digamma, (0.5, 4.0)),
    ("polygamma1", lambda x: sp.polygamma(1, x), (0.5, 4.0)),
    ("polygamma3", lambda x: sp.polygamma(3, x), (0.5, 4.0)),
    ("entr", sp.entr, (0.2, 2.0)),
]


@pytest.mark.parametrize("name,f,dom", UNARY_CASES, ids=[c[0] for c in UNARY_CASES])
def test_unary_check_grads(name, f, dom):
    x = RNG.uniform(*dom, size=5)
    check_grads(f, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("f", [sp.xlogy, sp.xlog1py], ids=["xlogy", "xlog1py"])
def test_binary_check_grads(f):
    x = RNG.uniform(-2.0, 2.0, size=(2, 3))
    y = RNG.uniform(0.5, 3.0, size=(3,))  # broadcast: y's cotangent is summed
    check_grads(f, (x, y), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_check_grads(axis, keepdims):
    a = RNG.normal(size=(3, 4))
    check_grads(lambda a: sp.logsumexp(a, axis=axis, keepdims=keepdims), (a,), order=2)


def test_logsumexp_b_check_grads():
    a = RNG.normal(size=(3, 4))
    b = RNG.uniform(0.5, 2.0, size=(4,))
    check_grads(lambda a, b: sp.logsumexp(a, axis=1, b=b), (a, b), order=2)
    # negative weights: the log-absolute value is differentiable where the sum is not zero
    b2 = np.array([1.0, -3.0, 0.5, 2.0])
    a2 = np.array([[0.1, 0.3, -0.2, 0.0], [1.0, 2.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    check_grads(lambda a, b: sp.logsumexp(a, axis=1, b=b, return_sign=True)[0], (a2, b2),
                order=2)


@pytest.mark.parametrize("fn", [sp.softmax, sp.log_softmax], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_softmax_check_grads(fn, axis):
    x = RNG.normal(size=(3, 4))
    check_grads(lambda x: fn(x, axis=axis), (x,), order=2)


def test_check_grads_float32():
    x = RNG.uniform(0.5, 2.0, size=4).astype(np.float32)
    for f in (sp.expit, sp.erf, sp.gammaln, sp.digamma, sp.softmax, sp.logsumexp):
        check_grads(f, (x,), order=2)


# ----------------------------------------------------------------------------- logsumexp


def test_logsumexp_large_values_exact_and_no_overflow():
    x = np.array([1000.0, 1000.0])
    with no_warnings():
        val = sp.logsumexp(x)
        g = diffprog.grad(sp.logsumexp)(x)
        h = diffprog.hessian(sp.logsumexp)(x)
    assert val == 1000.0 + math.log(2.0)
    # the engine's logsumexp VJP is exp(x − lse): relative error ~|lse|·ε = 5e-14 here
    np.testing.assert_allclose(g, [0.5, 0.5], rtol=1e-13)
    np.testing.assert_allclose(h, [[0.25, -0.25], [-0.25, 0.25]], atol=1e-15)
    # derived value of the spec (FUND-13)
    assert abs(sp.logsumexp(np.array([1000.0, 1001.0, 1002.0])) - 1002.407605964444) < 1e-9


def test_logsumexp_matches_closed_form_and_axes():
    a = RNG.normal(size=(2, 3, 4))
    for axis in [None, 0, 1, -1, (0, 2)]:
        ref = np.log(np.sum(np.exp(a), axis=axis, keepdims=True))
        got = sp.logsumexp(a, axis=axis, keepdims=True)
        np.testing.assert_allclose(got, ref, rtol=1e-13)
        np.testing.assert_allclose(sp.logsumexp(a, axis=axis),
                                   np.squeeze(ref, axis=axis) if axis is not None else ref.item(),
                                   rtol=1e-13)


def test_logsumexp_gradient_is_softmax():
    a = np.array([1.0, 2.0, 3.0])
    p = np.exp(a) / np.sum(np.exp(a))
    np.testing.assert_allclose(diffprog.grad(sp.logsumexp)(a), p, rtol=1e-14)
    np.testing.assert_allclose(diffprog.hessian(sp.logsumexp)(a), np.diag(p) - np.outer(p, p),
                               atol=1e-15)


def test_logsumexp_with_b():
    a = np.array([1000.0, 1001.0])
    b = np.array([2.0, 3.0])
    with no_warnings():
        val = sp.logsumexp(a, b=b)
        ga, gb = diffprog.grad(lambda a, b: sp.logsumexp(a, b=b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(val, 1000.0 + math.log(2.0 + 3.0 * math.e), rtol=1e-15)
    s = 2.0 + 3.0 * math.e  # Σ b e^{a - 1000}
    np.testing.assert_allclose(ga, [2.0 / s, 3.0 * math.e / s], rtol=1e-13)
    np.testing.assert_allclose(gb, [1.0 / s, math.e / s], rtol=1e-13)
    # a zero weight on the largest entry is ignored by the shift
    with no_warnings():
        assert sp.logsumexp(np.array([1000.0, 0.0]), b=np.array([0.0, 1.0])) == 0.0
    # ... but its derivative is not lost: ∂/∂b_i = e^{a_i} / Σ_j b_j e^{a_j} also where b_i = 0
    gb = diffprog.grad(lambda b: sp.logsumexp(np.array([1.0, 0.0]), b=b))(np.array([0.0, 1.0]))
    np.testing.assert_allclose(gb, [math.e, 1.0], rtol=1e-14)
    check_grads(lambda a, b: sp.logsumexp(a, b=b), (np.array([1.0, 0.0, -0.5]),
                                                    np.array([0.0, 1.0, 2.0])), order=2)
    # b broadcasts against a
    a2 = RNG.normal(size=(2, 3))
    b2 = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(sp.logsumexp(a2, axis=1, b=b2),
                               np.log(np.sum(b2 * np.exp(a2), axis=1)), rtol=1e-13)


def test_logsumexp_negative_b_return_sign():
    a = np.array([1.0, 2.0])
    b = np.array([1.0, -1.0])
    out, sign = sp.logsumexp(a, b=b, return_sign=True)
    s = math.e - math.e ** 2
    assert sign == -1.0
    np.testing.assert_allclose(out, math.log(-s), rtol=1e-14)
    # d log|s| / da_i = b_i e^{a_i} / s ;  d/db_i = e^{a_i} / s
    ga, gb = diffprog.grad(lambda a, b: sp.logsumexp(a, b=b, return_sign=True)[0],
                           argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, b * np.exp(a) / s, rtol=1e-13)
    np.testing.assert_allclose(gb, np.exp(a) / s, rtol=1e-13)
    # positive sum: sign +1; SciPy semantics without return_sign: log of a negative sum is nan
    assert sp.logsumexp(a, b=np.array([1.0, 1.0]), return_sign=True)[1] == 1.0
    assert np.isnan(sp.logsumexp(a, b=b))
    # without b the sign is 1 (0 for an empty sum)
    out, sign = sp.logsumexp(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1, return_sign=True)
    np.testing.assert_array_equal(sign, [1.0, 1.0])
    assert sp.logsumexp(np.array([-np.inf, -np.inf]), return_sign=True)[1] == 0.0


def test_logsumexp_empty_and_bad_input():
    assert sp.logsumexp(np.zeros(0)) == -np.inf
    with pytest.raises(ValueError, match=r"logsumexp: b has shape \(4,\).*a of shape \(3,\)"):
        sp.logsumexp(np.zeros(3), b=np.ones(4))
    with pytest.raises(ValueError, match="logsumexp: axis 2"):
        sp.logsumexp(np.zeros(3), axis=2)
    with pytest.raises(TypeError, match="logsumexp: a must be a real numeric array"):
        sp.logsumexp(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="logsumexp: b must be a real"):
        sp.logsumexp(np.zeros(2), b=np.array([1j, 1.0]))


# ----------------------------------------------------------------------------- softmax family


def test_softmax_values_sum_and_jacobian():
    x = np.array([1.0, 2.0, 3.0])
    p = sp.softmax(x)
    np.testing.assert_allclose(p, np.exp(x) / np.sum(np.exp(x)), rtol=1e-15)
    np.testing.assert_allclose(p, [0.090030573170, 0.244728471055, 0.665240955775], atol=1e-12)
    assert abs(np.sum(p) - 1.0) < 1e-15
    expected = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(diffprog.jacfwd(sp.softmax)(x), expected, atol=1e-15)
    np.testing.assert_allclose(diffprog.jacrev(sp.softmax)(x), expected, atol=1e-15)
    # softargmax(log π) = π (spec FUND-14)
    pi = np.array([0.3, 0.6, 0.1])
    np.testing.assert_allclose(sp.softargmax(np.log(pi)), pi, rtol=1e-14)


def test_softmax_axis_semantics():
    x = RNG.normal(size=(2, 3))
    assert abs(np.sum(sp.softmax(x)) - 1.0) < 1e-14  # axis=None: over all entries (SciPy)
    np.testing.assert_allclose(np.sum(sp.softmax(x, axis=1), axis=1), [1.0, 1.0], rtol=1e-14)
    np.testing.assert_allclose(np.sum(sp.softmax(x, axis=0), axis=0), np.ones(3), rtol=1e-14)
    np.testing.assert_allclose(sp.log_softmax(x, axis=1), np.log(sp.softmax(x, axis=1)),
                               rtol=1e-13)
    with pytest.raises(ValueError, match="softmax: axis 5"):
        sp.softmax(x, axis=5)


def test_softmax_large_values():
    x = np.array([1000.0, 0.0, -1000.0])
    with no_warnings():
        p = sp.softmax(x)
        jac = diffprog.jacrev(sp.softmax)(x)
        half = sp.softmax(np.array([1000.0, 1000.0]))
        g = diffprog.grad(lambda x: sp.log_softmax(x)[0])(np.array([1000.0, 1000.0]))
    np.testing.assert_array_equal(p, [1.0, 0.0, 0.0])
    assert np.all(np.isfinite(jac))
    # shifted and normalized: exact, no |x|·ε loss
    np.testing.assert_array_equal(half, [0.5, 0.5])
    np.testing.assert_array_equal(g, [0.5, -0.5])


def test_log_softmax_stable_at_pm_1000():
    x = np.array([1000.0, -1000.0])
    with no_warnings():
        ls = sp.log_softmax(x)
        jac_f = diffprog.jacfwd(sp.log_softmax)(x)
        jac_r = diffprog.jacrev(sp.log_softmax)(x)
    np.testing.assert_array_equal(ls, [0.0, -2000.0])
    # d log_softmax = I − 1 pᵀ with p = (1, e^{-2000}) = (1, 0)
    expected = np.eye(2) - np.outer(np.ones(2), [1.0, 0.0])
    np.testing.assert_allclose(jac_f, expected, atol=1e-15)
    np.testing.assert_allclose(jac_r, expected, atol=1e-15)


def test_jacfwd_equals_jacrev():
    x = RNG.normal(size=4)
    fns = [sp.softmax, sp.log_softmax, sp.expit, sp.logit, sp.erf, sp.erfc, sp.gammaln,
           sp.digamma, sp.entr, sp.log_expit, lambda x: sp.logsumexp(x, b=np.arange(1.0, 5.0)),
           lambda x: sp.xlogy(x, 2.0 + x * x)]
    pos = np.abs(x) * 0.2 + 0.3  # in (0, 1) for logit, > 0 for gammaln/entr
    for f in fns:
        np.testing.assert_allclose(diffprog.jacfwd(f)(pos), diffprog.jacrev(f)(pos),
                                   rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- sigmoids


def test_expit_derivative_and_stability():
    x = np.linspace(-5.0, 5.0, 11)
    s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(sp.expit(x), s, rtol=1e-15)
    g = diffprog.jacfwd(sp.expit)(x)
    np.testing.assert_allclose(np.diag(g), s * (1 - s), rtol=1e-12)  # σ' = σ(1 − σ)
    np.testing.assert_allclose(np.diag(g), np.exp(-x) / (1 + np.exp(-x)) ** 2, rtol=1e-14)
    assert np.count_nonzero(g - np.diag(np.diag(g))) == 0  # separable: diagonal Jacobian
    big = np.array([-1000.0, 1000.0])
    with no_warnings():
        np.testing.assert_array_equal(sp.expit(big), [0.0, 1.0])
        np.testing.assert_array_equal(diffprog.grad(lambda x: np.sum(sp.expit(x)))(big),
                                      [0.0, 0.0])
    assert sp.expit(np.log(4.0)) == pytest.approx(0.8, rel=1e-15)
    # the right tail keeps full relative accuracy: σ'(40) = e^{-40}/(1 + e^{-40})²
    assert diffprog.grad(sp.expit)(40.0) == pytest.approx(math.exp(-40.0), rel=1e-14)
    assert sp.logistic is sp.expit


def test_logit_inverse_and_misprint():
    # Ex. 3.2 misprints logit(π) = log(π/(1 + π)); the correct value is log(π/(1 − π)).
    assert sp.logit(0.8) == pytest.approx(math.log(4.0), rel=1e-14)
    assert abs(sp.logit(0.8) - math.log(0.8 / 1.8)) > 1.0
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(sp.logit(sp.expit(x)), x, atol=1e-12)
    assert sp.logit(0.0) == -np.inf and sp.logit(1.0) == np.inf
    for p in (0.1, 0.5, 0.9):
        assert diffprog.grad(sp.logit)(p) == pytest.approx(1.0 / (p * (1 - p)), rel=1e-14)


def test_log_expit():
    x = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_allclose(sp.log_expit(x), -np.logaddexp(0.0, -x), rtol=1e-15)
    np.testing.assert_allclose(diffprog.jacfwd(sp.log_expit)(x), np.diag(ss.expit(-x)),
                               rtol=1e-14)
    with no_warnings():
        np.testing.assert_array_equal(sp.log_expit(np.array([-1000.0, 1000.0])), [-1000.0, 0.0])
        g = diffprog.grad(lambda x: np.sum(sp.log_expit(x)))(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(g, [1.0, 0.0])


# ----------------------------------------------------------------------------- error functions


def test_erf_derivatives():
    for x in (-1.3, 0.0, 0.7):
        d = 2 / math.sqrt(math.pi) * math.exp(-x * x)
        assert diffprog.grad(sp.erf)(x) == pytest.approx(d, rel=1e-14)
        assert diffprog.grad(sp.erfc)(x) == pytest.approx(-d, rel=1e-14)
        assert diffprog.grad(diffprog.grad(sp.erf))(x) == pytest.approx(-2 * x * d, abs=1e-14)
    assert diffprog.grad(sp.erf)(0.0) == pytest.approx(1.128379167096, abs=1e-12)
    np.testing.assert_allclose(sp.erf(1.0) + sp.erfc(1.0), 1.0, rtol=1e-15)


def test_erfinv_inverse_and_derivative():
    x = np.linspace(-1.5, 1.5, 7)
    np.testing.assert_allclose(sp.erfinv(sp.erf(x)), x, atol=1e-12)
    np.testing.assert_allclose(
        np.diag(diffprog.jacrev(lambda x: sp.erfinv(sp.erf(x)))(x)), np.ones_like(x), rtol=1e-10)
    for y in (-0.9, 0.0, 0.4):
        d = math.sqrt(math.pi) / 2 * math.exp(ss.erfinv(y) ** 2)
        assert diffprog.grad(sp.erfinv)(y) == pytest.approx(d, rel=1e-14)
        assert diffprog.grad(diffprog.grad(sp.erfinv))(y) == pytest.approx(
            fd(lambda t: float(diffprog.grad(sp.erfinv)(t)), y), rel=1e-7, abs=1e-9)


# ----------------------------------------------------------------------------- gamma family


def test_gammaln_digamma_polygamma_chain():
    x = np.array([0.3, 1.0, 2.5, 7.0, -1.5])  # negative non-integer: log|Γ|, ψ still apply
    np.testing.assert_allclose(sp.gammaln(x), ss.gammaln(x), rtol=1e-15)
    g = lambda f: (lambda x: np.diag(diffprog.jacfwd(f)(x)))  # noqa: E731
    np.testing.assert_allclose(g(sp.gammaln)(x), ss.digamma(x), rtol=1e-13)
    np.testing.assert_allclose(g(sp.digamma)(x), ss.polygamma(1, x), rtol=1e-13)
    np.testing.assert_allclose(g(lambda x: sp.polygamma(2, x))(x), ss.polygamma(3, x),
                               rtol=1e-13)
    # third derivative of gammaln, grad of grad of grad (reverse over reverse over reverse)
    d3 = diffprog.grad(diffprog.grad(diffprog.grad(sp.gammaln)))(2.5)
    assert d3 == pytest.approx(ss.polygamma(2, 2.5), rel=1e-13)
    # forward over reverse
    _, t = diffprog.jvp(diffprog.grad(sp.digamma), (2.5,), (1.0,))
    assert t == pytest.approx(ss.polygamma(2, 2.5), rel=1e-13)
    assert sp.gammaln(5.0) == pytest.approx(math.log(24.0), rel=1e-15)
    assert sp.psi is sp.digamma
    assert sp.polygamma(0, 2.5) == pytest.approx(ss.digamma(2.5), rel=1e-15)


def test_polygamma_bad_order():
    for n in (-1, 1.5, np.array([1, 2]), "1"):
        with pytest.raises(ValueError, match="polygamma: n must be a non-negative integer"):
            sp.polygamma(n, 1.0)
    with pytest.raises(TypeError, match="polygamma: n must be a static"):
        diffprog.grad(lambda n: sp.polygamma(n, 1.0))(1.0)
    assert sp.polygamma(2.0, 1.0) == pytest.approx(ss.polygamma(2, 1.0), rel=1e-15)


# ----------------------------------------------------------------------------- xlogy, entr


def test_xlogy_at_zero():
    assert sp.xlogy(0.0, 0.0) == 0.0 and sp.xlogy(0.0, 2.0) == 0.0
    gx, gy = diffprog.grad(sp.xlogy, argnums=(0, 1))(0.0, 2.0)
    assert gx == pytest.approx(math.log(2.0), rel=1e-15) and gy == 0.0
    gx, gy = diffprog.grad(sp.xlogy, argnums=(0, 1))(0.0, 0.0)
    assert gx == -np.inf and gy == 0.0
    gx, gy = diffprog.grad(sp.xlogy, argnums=(0, 1))(1.5, 2.0)
    assert gx == pytest.approx(math.log(2.0)) and gy == pytest.approx(0.75)
    # Hessian at x = 0 is symmetric: ∂x∂y = ∂y∂x = 1/y, ∂y² = −x/y² = 0
    h = diffprog.hessian(lambda v: sp.xlogy(v[0], v[1]))(np.array([0.0, 2.0]))
    np.testing.assert_allclose(h, [[0.0, 0.5], [0.5, 0.0]], atol=1e-15)
    # xlog1py: ∂x = log1p(y), ∂y = x/(1+y), 0 at x = 0
    assert sp.xlog1py(0.0, -1.0) == 0.0
    gx, gy = diffprog.grad(sp.xlog1py, argnums=(0, 1))(0.0, -1.0)
    assert gx == -np.inf and gy == 0.0
    gx, gy = diffprog.grad(sp.xlog1py, argnums=(0, 1))(2.0, 1e-3)
    assert gx == pytest.approx(math.log1p(1e-3), rel=1e-15)
    assert gy == pytest.approx(2.0 / 1.001, rel=1e-15)


def test_entr():
    p = np.array([0.3, 0.6, 0.1])
    assert np.sum(sp.entr(p)) == pytest.approx(0.897945724857, abs=1e-12)
    assert sp.entr(0.0) == 0.0 and sp.entr(-1.0) == -np.inf
    np.testing.assert_allclose(np.diag(diffprog.jacrev(sp.entr)(p)), -1.0 - np.log(p),
                               rtol=1e-14)
    with no_warnings():
        assert diffprog.grad(sp.entr)(0.0) == np.inf
        assert np.isnan(diffprog.grad(sp.entr)(-1.0))
        assert diffprog.grad(diffprog.grad(sp.entr))(0.5) == pytest.approx(-2.0, rel=1e-14)


# ----------------------------------------------------------------------------- dtypes and input


FLOAT32_CASES = [
    sp.expit, sp.logit, sp.log_expit, sp.erf, sp.erfc, sp.erfinv, sp.gammaln, sp.digamma,
    lambda x: sp.polygamma(1, x), sp.entr, sp.softmax, sp.log_softmax, sp.logsumexp,
    lambda x: sp.logsumexp(x, b=np.float32(2.0)), lambda x: sp.xlogy(x, x),
    lambda x: sp.xlog1py(x, x),
]


@pytest.mark.parametrize("f", FLOAT32_CASES)
def test_float32_in_float32_out(f):
    x = np.array([0.2, 0.5, 0.7], dtype=np.float32)
    assert np.result_type(f(x)) == np.float32
    g = diffprog.grad(lambda x: np.sum(f(x)) if np.ndim(f(x)) else f(x))
    assert np.result_type(g(x)) == np.float32


def test_integer_inputs_give_float64():
    assert np.result_type(sp.gammaln(np.array([1, 2, 3]))) == np.float64
    assert np.result_type(sp.polygamma(1, np.array([1, 2]))) == np.float64
    assert np.result_type(sp.softmax(np.array([1, 2]))) == np.float64


@pytest.mark.parametrize("f", [sp.expit, sp.erf, sp.gammaln, sp.softmax, sp.entr])
def test_bad_input_names_function(f):
    with pytest.raises(TypeError, match=rf"{f.__name__}: .* real numeric"):
        f(np.array([1 + 2j]))
    with pytest.raises(TypeError, match=rf"{f.__name__}: .* real numeric"):
        f(np.array(["x"]))


# ----------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=1, max_size=6),
    st.floats(-1e3, 1e3),
)
def test_shift_invariance(xs, c):
    x = np.array(xs)
    np.testing.assert_allclose(sp.logsumexp(x + c), sp.logsumexp(x) + c, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sp.softmax(x + c), sp.softmax(x), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(diffprog.grad(sp.logsumexp)(x + c), sp.softmax(x),
                               rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- module level


def test_names_and_aliases():
    assert sp.softargmax is sp.softmax
    assert sp.softmax is not sp.logsumexp
    assert diffprog.scipy.special is sp
    with pytest.raises(AttributeError):
        diffprog.scipy.no_such_module  # noqa: B018
    for name in sp.__all__:
        fn = getattr(sp, name)
        assert fn.__doc__ and "Book §" in fn.__doc__ and "Example" in fn.__doc__, name


def test_docstring_examples():
    for mod in (sp, diffprog.scipy):
        res = doctest.testmod(mod, verbose=False)
        assert res.failed == 0 and res.attempted > 0
