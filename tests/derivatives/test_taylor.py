"""jet: higher-order directional derivatives along a curve (AD-87), against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import jet


def test_third_directional_derivative_of_exp_is_exp():
    y0, ys = jet(dnp.exp, (np.array(0.7),), ([np.array(1.0), 0.0, 0.0],))
    np.testing.assert_allclose([y0, *ys], np.exp(0.7), rtol=1e-12)


def test_curve_with_curvature_follows_the_chain_rule():
    x0, x1, x2 = np.array([0.3, -1.1]), np.array([0.5, 2.0]), np.array([-1.0, 0.25])
    _, (d1, d2) = jet(dnp.sin, (x0,), ([x1, x2],))
    np.testing.assert_allclose(d1, np.cos(x0) * x1, rtol=1e-12)
    np.testing.assert_allclose(d2, -np.sin(x0) * x1 ** 2 + np.cos(x0) * x2, rtol=1e-12)


def test_polynomials_are_reproduced_exactly_and_match_nested_grad():
    # f(x) = x^5: the k-th derivative along x(t) = x0 + t is 5!/(5-k)! x0^(5-k)
    x0 = np.array(1.3)
    _, ys = jet(lambda x: x ** 5, (x0,), ([np.array(1.0)] + [0.0] * 5,))
    expected = [math.factorial(5) / math.factorial(5 - k) * 1.3 ** (5 - k) for k in range(1, 6)]
    np.testing.assert_allclose(ys, [*expected, 0.0], rtol=1e-12, atol=1e-12)
    g3 = diffprog.grad(diffprog.grad(diffprog.grad(lambda x: dnp.sin(x) * x)))(x0)
    _, ys = jet(lambda x: dnp.sin(x) * x, (x0,), ([np.array(1.0), 0.0, 0.0],))
    assert ys[2] == pytest.approx(g3, rel=1e-12)


def test_several_arguments_and_bad_input():
    _, (d1,) = jet(lambda x, y: x * y, (np.array(2.0), np.array(3.0)),
                   ([np.array(1.0)], [np.array(0.5)]))
    assert d1 == pytest.approx(3.0 * 1.0 + 2.0 * 0.5)
    with pytest.raises(ValueError, match="jet: got 1 primals but 2 series"):
        jet(dnp.sin, (np.array(1.0),), ([1.0], [1.0]))
    with pytest.raises(ValueError, match="same length"):
        jet(lambda x, y: x * y, (1.0, 1.0), ([1.0], [1.0, 0.0]))
