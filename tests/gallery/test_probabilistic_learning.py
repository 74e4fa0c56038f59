"""The curves of Figs. 3.1–3.4 (autodiff mean functions, exponential-family losses) against their
closed forms (Book §3.3)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, gammaln, logsumexp

from diffprog.gallery.probabilistic_learning import _curves


def test_fig_3_1_to_3_4_curves_match_the_closed_forms():
    bern, cat, gauss, pois = _curves()
    s = bern[1]
    np.testing.assert_allclose(bern[2]["μ"], expit(s), rtol=1e-12)
    for y in (0, 1):
        np.testing.assert_allclose(bern[3][y], np.logaddexp(0, s) - s * y, rtol=1e-12)
    theta = np.stack([s, np.ones_like(s), np.zeros_like(s)], 1)
    p = np.exp(theta - logsumexp(theta, axis=1, keepdims=True))
    for j in range(3):
        np.testing.assert_allclose(cat[2][f"π_{j + 1}"], p[:, j], rtol=1e-12)
        np.testing.assert_allclose(cat[3][j + 1], logsumexp(theta, axis=1) - theta[:, j],
                                   rtol=1e-12)
    np.testing.assert_allclose(gauss[2]["μ"], s, atol=1e-15)
    for y in (-2.0, 0.0, 2.0):
        np.testing.assert_allclose(gauss[3][y], 0.5 * (y - s) ** 2 + 0.5 * math.log(2 * math.pi),
                                   rtol=1e-12)
    np.testing.assert_allclose(pois[2]["μ"], np.exp(s), rtol=1e-12)
    for y in (1, 4, 10):
        np.testing.assert_allclose(pois[3][y], -y * s + np.exp(s) + gammaln(y + 1), rtol=1e-12)
