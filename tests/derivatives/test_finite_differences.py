"""Tests of finite differences and complex-step derivatives (spec AD-01..AD-12, Book ch. 7)."""

from __future__ import annotations

import doctest
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprog.derivatives import (
    complex_step_jvp,
    fd_coefficients,
    fd_directional_derivative,
    fd_error_study,
    fd_grad,
    fd_jacobian,
    fd_jvp,
    fd_second_directional,
)
from diffprog.derivatives import finite_differences as fdmod

LOGISTIC_1 = 0.7310585786300049  # softplus'(1), spec AD-01


def softplus(z):
    """softplus written as log(1 + exp(z)): holomorphic, so complex-step capable."""
    return np.log(1 + np.exp(z))


class Counter:
    """Counting wrapper around f (Table 7.1)."""

    def __init__(self, f):
        self.f = f
        self.calls = 0
        self.complex_calls = 0

    def __call__(self, x):
        self.calls += 1
        if np.iscomplexobj(x):
            self.complex_calls += 1
        return self.f(x)


def slope(errors, deltas):
    return math.log(errors[0] / errors[1]) / math.log(deltas[0] / deltas[1])


# ----------------------------------------------------------------------------------------------
# AD-04 fd_coefficients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "k", "expected"),
    [
        ((0, 1, 2), 1, (Fraction(-3, 2), 2, Fraction(-1, 2))),
        (
            (-2, -1, 0, 1, 2),
            1,
            (Fraction(1, 12), Fraction(-2, 3), 0, Fraction(2, 3), Fraction(-1, 12)),
        ),
        ((0, 1, 2), 2, (1, -2, 1)),
        ((-1, 0, 1), 2, (1, -2, 1)),
        (
            (-2, -1, 0, 1, 2),
            2,
            (Fraction(-1, 12), Fraction(4, 3), Fraction(-5, 2), Fraction(4, 3), Fraction(-1, 12)),
        ),
        ((0, 1, 2, 3), 1, (Fraction(-11, 6), 3, Fraction(-3, 2), Fraction(1, 3))),
        ((0, 1), 1, (-1, 1)),
        ((-1, 1), 1, (Fraction(-1, 2), Fraction(1, 2))),
    ],
)
def test_fd_coefficients_table_ad04(offsets, k, expected):
    exact = fd_coefficients(offsets, k, exact=True)
    assert all(isinstance(c, Fraction) for c in exact)
    assert exact == tuple(Fraction(e) for e in expected)
    approx = fd_coefficients(offsets, k)
    assert isinstance(approx, np.ndarray) and approx.dtype == np.float64
    np.testing.assert_allclose(approx, [float(e) for e in expected], rtol=0, atol=1e-15)


def test_fd_coefficients_errata_section_7_5():
    # The book prints (-3/2, 2, -1/2)/delta^2 for the forward k = p = 2 second derivative.
    # Those are the first-derivative weights; the correct second-derivative weights are (1,-2,1).
    assert fd_coefficients((0, 1, 2), 2, exact=True) == (1, -2, 1)
    assert fd_coefficients((0, 1, 2), 1, exact=True) == (Fraction(-3, 2), 2, Fraction(-1, 2))
    assert fd_coefficients((0, 1, 2), 2, exact=True) != (Fraction(-3, 2), 2, Fraction(-1, 2))
    # and the misprinted stencil is visibly wrong on exp at 0 (second derivative 1):
    d = 1e-3
    wrong = (-1.5 * np.exp(0.0) + 2 * np.exp(d) - 0.5 * np.exp(2 * d)) / d**2
    right = fd_directional_derivative(
        np.exp, 0.0, 1.0, order=2, scheme="forward", accuracy=2, delta=d
    )
    assert abs(right - 1.0) < 1e-2
    assert abs(wrong - 1.0) > 100


def test_fd_coefficients_central_centre_weight_is_zero_for_odd_order():
    for p in (1, 2, 3, 4):
        offs = list(range(-p, p + 1))
        for k in (1, 3):
            if 2 * p + 1 > k:
                assert fd_coefficients(offs, k, exact=True)[p] == 0


def test_fd_coefficients_accepts_fractions_and_numpy():
    c = fd_coefficients(np.array([-1, 0, 1]), 2)
    np.testing.assert_array_equal(c, [1.0, -2.0, 1.0])
    c = fd_coefficients((Fraction(-1, 2), Fraction(1, 2)), 1, exact=True)
    assert c == (-1, 1)


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(-6, 6), min_size=2, max_size=7, unique=True),
    data=st.data(),
)
def test_fd_coefficients_exact_on_polynomials(offsets, data):
    """Property: with n points the stencil differentiates every polynomial of degree < n exactly."""
    n = len(offsets)
    k = data.draw(st.integers(1, n - 1))
    coeffs = data.draw(st.lists(st.integers(-9, 9), min_size=n, max_size=n))
    x0 = Fraction(data.draw(st.integers(-5, 5)), data.draw(st.integers(1, 4)))
    h = Fraction(1, data.draw(st.integers(1, 5)))

    def poly(x, deriv=0):
        total = Fraction(0)
        for j, c in enumerate(coeffs):
            if j >= deriv:
                total += (
                    c * Fraction(math.factorial(j), math.factorial(j - deriv)) * x ** (j - deriv)
                )
        return total

    a = fd_coefficients(offsets, k, exact=True)
    approx = sum(ai * poly(x0 + i * h) for ai, i in zip(a, offsets, strict=True)) / h**k
    assert approx == poly(x0, k)


@pytest.mark.parametrize(
    ("offsets", "k", "exc", "match"),
    [
        ((0, 1, 1), 1, ValueError, "distinct"),
        ((0, 1, 2), 0, ValueError, "deriv_order"),
        ((0, 1, 2), -1, ValueError, "deriv_order"),
        ((0, 1), 2, ValueError, "at least 3 offsets"),
        ((), 1, ValueError, "empty"),
        ((0, 1, 2), 1.5, TypeError, "deriv_order"),
        ((0, 1, 2), True, TypeError, "deriv_order"),
        ("012", 1, TypeError, "offsets"),
        ((0, "a", 2), 1, TypeError, "offsets"),
        ((0, 1j, 2), 1, TypeError, "offsets"),
        ((0, float("inf")), 1, ValueError, "finite"),
        (np.zeros((2, 2)), 1, ValueError, "1-D"),
        (5, 1, TypeError, "offsets"),
    ],
)
def test_fd_coefficients_bad_inputs(offsets, k, exc, match):
    with pytest.raises(exc, match=match) as info:
        fd_coefficients(offsets, k)
    assert "fd_coefficients" in str(info.value)


# ----------------------------------------------------------------------------------------------
# AD-01..AD-03, AD-05, AD-06: first directional derivatives
# ----------------------------------------------------------------------------------------------


def test_forward_difference_softplus_ad01():
    e2 = abs(fd_jvp(softplus, 1.0, 1.0, delta=1e-2, scheme="forward") - LOGISTIC_1)
    e4 = abs(fd_jvp(softplus, 1.0, 1.0, delta=1e-4, scheme="forward") - LOGISTIC_1)
    assert 9.0e-4 < e2 < 1.05e-3 and 9.0e-6 < e4 < 1.05e-5
    assert abs(slope([e2, e4], [1e-2, 1e-4]) - 1.0) < 0.02


def test_backward_difference_opposite_sign_ad02():
    d = np.array([1e-2, 5e-3])
    fwd = np.array([fd_jvp(np.exp, 1.0, 1.0, delta=x, scheme="forward") for x in d]) - np.e
    bwd = np.array([fd_jvp(np.exp, 1.0, 1.0, delta=x, scheme="backward") for x in d]) - np.e
    assert np.all(fwd > 0) and np.all(bwd < 0)
    np.testing.assert_allclose(-bwd, fwd, rtol=0.02)  # same size, opposite sign
    np.testing.assert_allclose(bwd, -(d / 2) * np.e, rtol=0.02)  # leading term -(delta/2) f''
    assert abs(slope(np.abs(bwd), d) - 1.0) < 0.05


def test_central_difference_softplus_ad03():
    e2 = abs(fd_jvp(softplus, 1.0, 1.0, delta=1e-2) - LOGISTIC_1)
    e4 = abs(fd_jvp(softplus, 1.0, 1.0, delta=1e-4) - LOGISTIC_1)
    assert 1.3e-6 < e2 < 1.7e-6 and 1.3e-10 < e4 < 1.7e-10
    d = [0.1, 0.05]
    errs = [abs(fd_jvp(np.exp, 1.0, 1.0, delta=x) - np.e) for x in d]
    assert abs(slope(errs, d) - 2.0) < 0.02


@pytest.mark.parametrize(
    ("scheme", "p", "order_expected", "tol"),
    [
        ("forward", 1, 1.0, 0.05),
        ("backward", 1, 1.0, 0.05),
        ("forward", 2, 2.0, 0.1),  # spec: 2.05
        ("backward", 2, 2.0, 0.1),
        ("forward", 3, 3.0, 0.15),
        ("central", 1, 2.0, 0.02),
        ("central", 2, 4.0, 0.02),
        ("central", 3, 6.0, 0.02),
    ],
)
def test_empirical_orders_first_derivative_ad05_ad06(scheme, p, order_expected, tol):
    d = [0.1, 0.05]
    errs = [abs(fd_jvp(np.exp, 1.0, 1.0, delta=x, scheme=scheme, accuracy=p) - np.e) for x in d]
    assert abs(slope(errs, d) - order_expected) < tol


def test_forward_p2_empirical_order_matches_spec_number():
    d = [0.1, 0.05]
    errs = [abs(fd_jvp(np.exp, 1.0, 1.0, delta=x, scheme="forward", accuracy=2) - np.e) for x in d]
    assert abs(slope(errs, d) - 2.05) < 0.01


@pytest.mark.parametrize(
    ("scheme", "p", "calls"),
    [
        ("forward", 1, 2),
        ("backward", 1, 2),
        ("central", 1, 2),
        ("forward", 2, 3),
        ("backward", 3, 4),
        ("central", 2, 4),
        ("central", 3, 6),
    ],
)
def test_fd_jvp_call_counts(scheme, p, calls):
    # forward/backward use p + 1 points; central 2p (the centre point is never evaluated)
    c = Counter(np.exp)
    fd_jvp(c, 1.0, 1.0, scheme=scheme, accuracy=p)
    assert c.calls == calls


def test_fd_jvp_arrays_any_shape():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((2, 3))
    v = rng.standard_normal((2, 3))

    def f(x):
        return np.tanh(np.einsum("kij,ij->k", A, x)).reshape(2, 2)

    z = np.einsum("kij,ij->k", A, w)
    true = ((1 - np.tanh(z) ** 2) * np.einsum("kij,ij->k", A, v)).reshape(2, 2)
    for scheme, tol in (("forward", 1e-6), ("backward", 1e-6), ("central", 1e-9)):
        got = fd_jvp(f, w, v, scheme=scheme)
        assert got.shape == (2, 2)
        np.testing.assert_allclose(got, true, atol=tol)
    np.testing.assert_allclose(fd_jvp(f, w, v, accuracy=3), true, atol=1e-11)


def test_fd_jvp_scalar_output_is_scalar_and_python_float_input():
    out = fd_jvp(lambda x: x**3, 2.0, 1.0)
    assert np.ndim(out) == 0 and abs(out - 12.0) < 1e-8
    out = fd_jvp(lambda x: np.sum(x**2), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    assert np.ndim(out) == 0 and abs(out - 2.0) < 1e-8
    # integer points are promoted to float64
    assert abs(fd_jvp(lambda x: x**2, 3, 1) - 6.0) < 1e-8


def test_fd_jvp_zero_direction_gives_zero():
    out = fd_jvp(np.exp, np.ones(3), np.zeros(3))
    np.testing.assert_array_equal(out, np.zeros(3))


def test_fd_jvp_complex_point_is_real_directional_derivative():
    # f(z) = |z|^2 is not holomorphic but real-differentiable: d/dt |w + t v|^2 = 2 Re(conj(w) v)
    w, v = np.array([1.0 + 2.0j]), np.array([0.5 - 1.0j])
    out = fd_jvp(lambda z: np.abs(z) ** 2, w, v)
    np.testing.assert_allclose(out, 2 * np.real(np.conj(w) * v), atol=1e-8)


def test_default_delta_scaling_and_float32():
    eps64 = np.finfo(np.float64).eps
    w, v = np.array([3.0, -5.0]), np.array([0.0, 2.0])
    assert fdmod._default_delta(w, v, w.dtype, 1, 1) == pytest.approx(5.0 / 2.0 * eps64**0.5)
    assert fdmod._default_delta(w, v, w.dtype, 1, 2) == pytest.approx(5.0 / 2.0 * eps64 ** (1 / 3))
    # higher orders: eps^(1/(m + k)); second-derivative central (m = k = 2) -> eps^(1/4)
    assert fdmod._default_delta(w, v, w.dtype, 2, 2) == pytest.approx(2.5 * eps64**0.25)
    w32 = np.array([1.0, 2.0], dtype=np.float32)
    v32 = np.array([1.0, 0.0], dtype=np.float32)
    eps32 = float(np.finfo(np.float32).eps)
    assert fdmod._default_delta(w32, v32, w32.dtype, 1, 2) == pytest.approx(2.0 * eps32 ** (1 / 3))
    out = fd_jvp(np.sin, w32, v32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.cos(w32) * v32, atol=1e-4)
    # Python-scalar directions do not upcast a float32 point (NEP 50 weak scalars)
    assert isinstance(fd_jvp(np.sin, np.float32(1.0), 1.0), np.float32)
    out = fd_jvp(np.sin, w32, v32, scheme="forward")
    np.testing.assert_allclose(out, np.cos(w32) * v32, atol=2e-3)


def test_default_delta_near_optimal_float64():
    # central, default step: near the best achievable error (~1e-11 on softplus at 1)
    assert abs(fd_jvp(softplus, 1.0, 1.0) - LOGISTIC_1) < 1e-10
    assert abs(fd_jvp(softplus, 1.0, 1.0, scheme="forward") - LOGISTIC_1) < 3e-8
    assert abs(fd_jvp(softplus, 1.0, 1.0, accuracy=2) - LOGISTIC_1) < 1e-12
    # a large point: scale max(1, |w|) keeps the relative step sensible
    assert abs(fd_jvp(np.log, 1e6, 1.0) - 1e-6) < 1e-14


# ----------------------------------------------------------------------------------------------
# AD-07..AD-09: higher-order derivatives
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "k", "p", "expected"),
    [
        ("forward", 2, 2, 1.0),  # AD-07: (1,-2,1)/delta^2, order 1
        ("forward", 2, 3, 2.0),
        ("central", 2, 1, 2.0),  # AD-08: corrected 2p + 2 - 2 ceil(k/2)
        ("central", 2, 2, 4.0),
        ("central", 3, 2, 2.0),
        ("central", 4, 2, 2.0),
        ("central", 2, 3, 6.0),
        ("central", 4, 3, 4.0),
    ],
)
def test_empirical_orders_higher_derivatives_ad07_ad08(scheme, k, p, expected):
    d = [0.1, 0.05]
    errs = [
        abs(
            fd_directional_derivative(np.exp, 1.0, 1.0, order=k, scheme=scheme, accuracy=p, delta=x)
            - np.e
        )
        for x in d
    ]
    assert abs(slope(errs, d) - expected) < 0.1
    assert fdmod._truncation_order(scheme, k, p) == expected


def test_errata_central_truncation_order_formula():
    # The book's 2p+2-2ceil((k+1)/2) gives 0 for (k=2, p=1); the true order is 2.
    book = 2 * 1 + 2 - 2 * math.ceil((2 + 1) / 2)
    assert book == 0
    assert fdmod._truncation_order("central", 2, 1) == 2
    for k, p in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 2), (4, 2), (2, 3), (4, 3)]:
        assert fdmod._truncation_order("central", k, p) == 2 * p + 2 - 2 * math.ceil(k / 2)


def test_higher_derivative_call_counts():
    c = Counter(np.exp)
    fd_directional_derivative(c, 1.0, 1.0, order=2, scheme="forward", accuracy=2)
    assert c.calls == 3
    c = Counter(np.exp)
    fd_directional_derivative(c, 1.0, 1.0, order=3, scheme="central", accuracy=2)
    assert c.calls == 4  # odd order: the centre weight is zero
    c = Counter(np.exp)
    fd_directional_derivative(c, 1.0, 1.0, order=2, scheme="central", accuracy=2)
    assert c.calls == 5


def test_backward_higher_order_sign():
    # third derivative of x^4 at 1 is 24; backward stencils must keep the right sign
    f = lambda x: x**4
    for scheme, p in (("forward", 4), ("backward", 4), ("central", 2)):
        got = fd_directional_derivative(f, 1.0, 1.0, order=3, scheme=scheme, accuracy=p, delta=0.1)
        assert abs(got - 24.0) < 1e-8


def test_default_step_higher_orders_accurate():
    for k in (2, 3, 4):
        got = fd_directional_derivative(np.exp, 0.5, 1.0, order=k, accuracy=3)
        assert abs(got - np.exp(0.5)) < 1e-5 * 10 ** (k - 2)


def test_second_directional_ad09():
    c = Counter(np.exp)
    got = fd_second_directional(c, 1.0, 1.0, delta=1e-3)
    assert c.calls == 3
    err = abs(got - np.e)
    assert err == pytest.approx(np.e * 1e-6 / 12, rel=0.05)  # e * delta^2 / 12 ~ 2.3e-7
    # v^T H v for a quadratic plus cosines, arrays
    rng = np.random.default_rng(1)
    Q = rng.standard_normal((4, 4))
    Q = Q + Q.T
    w, v = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda x: 0.5 * x @ Q @ x + np.sum(np.cos(x))
    true = v @ (Q - np.diag(np.cos(w))) @ v
    np.testing.assert_allclose(fd_second_directional(f, w, v), true, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# AD-10 complex step
# ----------------------------------------------------------------------------------------------


def test_complex_step_softplus_ad10():
    for d in (1e-8, 1e-10, 1e-15, 1e-20, 1e-100):
        val, jvp = complex_step_jvp(softplus, 1.0, 1.0, delta=d)
        assert abs(jvp - LOGISTIC_1) <= 2.3e-16
        assert val == softplus(1.0)
    _, jvp = complex_step_jvp(softplus, 1.0, 1.0, delta=1e-5)
    assert abs(jvp - LOGISTIC_1) == pytest.approx(1.51e-12, rel=0.05)


def test_complex_step_arrays_and_call_count():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 4))
    w, v = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda x: np.sin(A @ x)
    c = Counter(f)
    val, jvp = complex_step_jvp(c, w, v, check_real=False)
    assert c.calls == 1 and c.complex_calls == 1
    np.testing.assert_allclose(val, f(w), rtol=1e-15)
    np.testing.assert_allclose(jvp, np.cos(A @ w) * (A @ v), rtol=1e-14, atol=1e-15)
    c = Counter(f)
    val2, jvp2 = complex_step_jvp(c, w, v)
    assert c.calls == 2 and c.complex_calls == 1
    np.testing.assert_array_equal(jvp2, jvp)


def test_complex_step_float32():
    w = np.array([0.5, 1.5], dtype=np.float32)
    v = np.ones(2, dtype=np.float32)
    val, jvp = complex_step_jvp(np.exp, w, v)
    np.testing.assert_allclose(jvp, np.exp(w), rtol=1e-6)


def test_complex_step_rejects_non_holomorphic():
    with pytest.raises(TypeError, match="complex_step_jvp.*holomorphic"):
        complex_step_jvp(lambda z: np.logaddexp(0.0, z), 1.0, 1.0)
    # abs drops the imaginary part: must not silently return 0
    with pytest.raises(TypeError, match="dropped the imaginary part"):
        complex_step_jvp(np.abs, 1.0, 1.0)
    with pytest.raises(TypeError, match="dropped the imaginary part"):
        complex_step_jvp(lambda z: np.real(z) ** 2, 1.0, 1.0)
    with pytest.raises(TypeError, match="dropped the imaginary part"):
        fd_grad(lambda z: float(np.sum(np.abs(z))), np.ones(2), scheme="complex")


def test_complex_step_rejects_non_real_function():
    with pytest.raises(ValueError, match="complex_step_jvp.*real-valued"):
        complex_step_jvp(lambda z: z + 1j, 1.0, 1.0)
    # a complex dtype with zero imaginary part on real input is fine
    val, jvp = complex_step_jvp(lambda z: z * (1 + 0j), 2.0, 1.0)
    assert val == 2.0 and jvp == 1.0


@pytest.mark.parametrize(
    ("w", "v", "delta", "exc", "match"),
    [
        (1.0 + 1j, 1.0, 1e-20, TypeError, "'w' must be real"),
        (1.0, 1j, 1e-20, TypeError, "'v' must be real"),
        (1.0, 1.0, 0.0, ValueError, "delta"),
        (1.0, 1.0, -1e-20, ValueError, "delta"),
        (1.0, 1.0, 1e-320, ValueError, "underflows"),
        (1.0, 1e-300, 1e-20, ValueError, "underflows"),
        (np.ones(2), np.ones(3), 1e-20, ValueError, "shape"),
    ],
)
def test_complex_step_bad_inputs(w, v, delta, exc, match):
    with pytest.raises(exc, match=match) as info:
        complex_step_jvp(np.exp, w, v, delta=delta)
    assert "complex_step_jvp" in str(info.value)


# ----------------------------------------------------------------------------------------------
# AD-11 gradients, Jacobians, Table 7.1
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "calls"), [("forward", 11), ("backward", 11), ("central", 20), ("complex", 10)]
)
def test_table_7_1_gradient_call_counts(scheme, calls):
    w = np.linspace(-1.0, 1.0, 10)
    c = Counter(lambda x: np.sum(np.sin(x) * x))
    g = fd_grad(c, w, scheme=scheme)
    assert c.calls == calls
    if scheme == "complex":
        assert c.complex_calls == 10
    np.testing.assert_allclose(g, np.cos(w) * w + np.sin(w), atol=1e-6)


@pytest.mark.parametrize(("scheme", "calls"), [("forward", 2), ("backward", 2), ("central", 2)])
def test_table_7_1_directional_call_counts(scheme, calls):
    c = Counter(lambda x: np.sum(np.sin(x)))
    fd_jvp(c, np.ones(10), np.ones(10), scheme=scheme)
    assert c.calls == calls
    c = Counter(lambda x: np.sum(np.sin(x)))
    complex_step_jvp(c, np.ones(10), np.ones(10), check_real=False)
    assert c.calls == 1


def test_fd_grad_least_squares_ad11():
    rng = np.random.default_rng(3)
    A, b, w = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    f = lambda w: 0.5 * np.sum((A @ w - b) ** 2)
    true = A.T @ (A @ w - b)
    np.testing.assert_allclose(fd_grad(f, w), true, atol=1e-6)
    np.testing.assert_allclose(fd_grad(f, w, scheme="complex"), true, atol=1e-12)
    np.testing.assert_allclose(fd_grad(f, w, scheme="forward"), true, atol=1e-5)


def test_fd_grad_matrix_input_and_scalar_input():
    W = np.arange(6.0).reshape(2, 3) / 10
    g = fd_grad(lambda W: np.sum(W**3), W)
    assert g.shape == (2, 3)
    np.testing.assert_allclose(g, 3 * W**2, atol=1e-9)
    g = fd_grad(lambda x: x**2, 1.5)
    assert np.ndim(g) == 0 and abs(g - 3.0) < 1e-9


def test_fd_jacobian_shapes_and_values():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal(4)
    f = lambda x: np.tanh(A @ x)
    J = fd_jacobian(f, w)
    assert J.shape == (2, 3, 4)
    true = (1 - np.tanh(A @ w) ** 2)[..., None] * A
    np.testing.assert_allclose(J, true, atol=1e-9)
    np.testing.assert_allclose(fd_jacobian(f, w, scheme="complex"), true, atol=1e-14)
    np.testing.assert_allclose(fd_jacobian(f, w, scheme="backward"), true, atol=1e-6)
    # matrix input: layout out.shape + w.shape
    W = rng.standard_normal((2, 2))
    J = fd_jacobian(lambda W: W @ W, W)
    assert J.shape == (2, 2, 2, 2)
    true = np.zeros((2, 2, 2, 2))
    for k in range(2):
        for m in range(2):
            E = np.zeros((2, 2))
            E[k, m] = 1
            true[:, :, k, m] = E @ W + W @ E
    np.testing.assert_allclose(J, true, atol=1e-9)


def test_fd_grad_per_coordinate_delta_and_array_delta():
    w = np.array([1e6, 1.0])
    f = lambda x: np.sum(np.log(x))
    np.testing.assert_allclose(fd_grad(f, w), 1 / w, rtol=1e-8)
    g = fd_grad(f, w, delta=np.array([1.0, 1e-6]))
    np.testing.assert_allclose(g, 1 / w, rtol=1e-6)


def test_fd_grad_warns_for_large_P():
    w = np.zeros(10_001)
    with pytest.warns(RuntimeWarning, match="P=10001"):
        fd_grad(lambda x: np.sum(x), w, scheme="forward")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fd_grad(lambda x: np.sum(x), np.zeros(10), scheme="forward")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"w": np.ones(3), "scheme": "fancy"}, ValueError, "scheme"),
        ({"w": np.ones(3), "delta": 0.0}, ValueError, "delta"),
        ({"w": np.ones(3), "delta": np.ones(2)}, ValueError, "delta"),
        ({"w": np.ones(3), "delta": np.array([1.0, -1.0, 1.0])}, ValueError, "delta"),
        ({"w": np.ones(0)}, ValueError, "at least one element"),
        ({"w": np.ones(2) + 0j}, TypeError, "real"),
        ({"w": np.array([True, False])}, TypeError, "bool"),
        ({"w": np.array([1.0, np.nan])}, ValueError, "finite"),
    ],
)
def test_fd_grad_bad_inputs(kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        fd_grad(lambda x: np.sum(x), **kwargs)
    assert "fd_grad" in str(info.value)


def test_fd_grad_rejects_vector_output_before_more_work():
    c = Counter(lambda x: x * 2)
    with pytest.raises(ValueError, match="fd_grad: f must return a scalar.*fd_jacobian"):
        fd_grad(c, np.ones(5))
    assert c.calls == 1
    with pytest.raises(TypeError, match="fd_jacobian.*callable"):
        fd_jacobian(3.0, np.ones(2))


# ----------------------------------------------------------------------------------------------
# AD-12 Fig 7.1
# ----------------------------------------------------------------------------------------------

FIG_7_1 = {  # delta: (forward, central, complex) absolute errors from the spec (derived)
    1e-1: (9.68e-3, 1.51e-4, 1.52e-4),
    1e-2: (9.82e-4, 1.51e-6, 1.51e-6),
    1e-4: (9.83e-6, 1.52e-10, 1.51e-10),
    1e-5: (9.83e-7, 1.02e-11, 1.51e-12),
    1e-6: (9.83e-8, 6.75e-11, 1.52e-14),
    1e-8: (9.39e-9, None, 0.0),  # spec's central 9.39e-9 is a copy of the forward entry
    1e-10: (1.08e-6, 3.16e-8, 1.1e-16),
    1e-12: (1.34e-4, 2.33e-5, 0.0),
    1e-16: (0.731, 0.731, 0.0),
}


def test_fig_7_1_error_table_ad12():
    deltas = list(FIG_7_1)
    res = fd_error_study(softplus, LOGISTIC_1, 1.0, deltas)
    assert set(res) == {"forward", "central", "complex"}
    for j, d in enumerate(deltas):
        for name, expected in zip(("forward", "central", "complex"), FIG_7_1[d], strict=True):
            got = res[name][j]
            if expected is None:
                continue
            if expected < 1e-15:
                assert got <= 2.3e-16, (name, d, got)
            else:
                assert expected / 2 <= got <= expected * 2, (name, d, got, expected)
    # central at 1e-8 is round-off dominated: ~eps/delta, well below forward's truncation there
    c8 = res["central"][deltas.index(1e-8)]
    assert 1e-10 < c8 < 1e-8
    # qualitative claims: forward best near 1e-8 (~1e-8), central best near 1e-5 (~1e-11),
    # complex <= 1e-15 for delta <= 1e-7, forward and central return 0 at 1e-16
    assert np.argmin(res["forward"]) == deltas.index(1e-8)
    assert np.argmin(res["central"]) == deltas.index(1e-5)
    small = [j for j, d in enumerate(deltas) if d <= 1e-7]
    assert np.all(res["complex"][small] <= 1e-15)
    assert res["forward"][-1] == pytest.approx(LOGISTIC_1) and res["central"][-1] == pytest.approx(
        LOGISTIC_1
    )


def test_fd_error_study_backward_and_arrays():
    res = fd_error_study(np.exp, np.e * np.ones(2), np.ones(2), [1e-3], ("backward",), v=np.ones(2))
    assert res["backward"][0] == pytest.approx(np.e * 1e-3 / 2, rel=0.01)
    with pytest.raises(ValueError, match="fd_error_study.*'v'"):
        fd_error_study(np.exp, np.e, np.ones(2), [1e-3])
    with pytest.raises(ValueError, match="fd_error_study.*deltas"):
        fd_error_study(np.exp, np.e, 1.0, [])
    with pytest.raises(ValueError, match="fd_error_study.*delta"):
        fd_error_study(np.exp, np.e, 1.0, [1e-3, -1.0])
    with pytest.raises(ValueError, match="fd_error_study.*scheme"):
        fd_error_study(np.exp, np.e, 1.0, [1e-3], ("sideways",))


# ----------------------------------------------------------------------------------------------
# bad inputs of the directional routines
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"order": 0}, ValueError, "'order'"),
        ({"order": -2}, ValueError, "'order'"),
        ({"order": 2.0}, TypeError, "'order'"),
        ({"accuracy": 0}, ValueError, "'accuracy'"),
        ({"order": 2, "scheme": "forward", "accuracy": 1}, ValueError, "too few points"),
        ({"order": 3, "scheme": "backward", "accuracy": 2}, ValueError, "too few points"),
        ({"order": 3, "scheme": "central", "accuracy": 1}, ValueError, r"2p\+1 > k"),
        ({"order": 5, "scheme": "central", "accuracy": 2}, ValueError, r"2p\+1 > k"),
        ({"delta": 0.0}, ValueError, "'delta'"),
        ({"delta": -1e-3}, ValueError, "'delta'"),
        ({"delta": float("nan")}, ValueError, "'delta'"),
        ({"delta": "1e-3"}, TypeError, "'delta'"),
        ({"delta": 1e-3j}, TypeError, "'delta'"),
        ({"scheme": "complex"}, ValueError, "'scheme'"),
        ({"v": np.ones(3)}, ValueError, "shape"),
        ({"w": np.array(["a", "b"])}, TypeError, "'w'"),
        ({"w": np.array([np.inf, 1.0])}, ValueError, "finite"),
        ({"f": "not a function"}, TypeError, "'f' must be callable"),
    ],
)
def test_fd_directional_derivative_bad_inputs(kwargs, exc, match):
    call = {"f": np.exp, "w": np.ones(2), "v": np.ones(2)} | kwargs
    with pytest.raises(exc, match=match) as info:
        fd_directional_derivative(call.pop("f"), call.pop("w"), call.pop("v"), **call)
    assert "fd_directional_derivative" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"scheme": "sideways"}, ValueError, "'scheme'"),
        ({"accuracy": 0}, ValueError, "'accuracy'"),
        ({"accuracy": True}, TypeError, "'accuracy'"),
        ({"delta": 0}, ValueError, "'delta'"),
        ({"delta": True}, TypeError, "'delta'"),
    ],
)
def test_fd_jvp_bad_inputs(kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        fd_jvp(np.exp, 1.0, 1.0, **kwargs)
    assert "fd_jvp" in str(info.value)


def test_fd_second_directional_bad_inputs():
    with pytest.raises(ValueError, match="fd_second_directional.*'delta'"):
        fd_second_directional(np.exp, 1.0, 1.0, delta=-1.0)
    with pytest.raises(ValueError, match="fd_second_directional.*shape"):
        fd_second_directional(np.exp, np.ones(2), np.ones((2, 1)))
    with pytest.raises(TypeError, match="fd_second_directional.*bool"):
        fd_second_directional(np.exp, True, 1.0)


def test_non_numeric_output_rejected():
    with pytest.raises(TypeError, match="fd_jvp: f must return a numeric array"):
        fd_jvp(lambda x: "nope", 1.0, 1.0)


def test_docstring_examples():
    result = doctest.testmod(fdmod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
