"""``logsumexp`` over the last axis of large float arrays takes an unshifted path (one ``exp``
and a matrix-vector product); rows outside its range fall back to the max-shifted formula.
Checked against SciPy's ``logsumexp`` in float64."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp as scipy_lse

import diffprog
import diffprog.numpy as dnp
from diffprog.numpy.reductions import _lse_rows_unshifted
from diffprog.scipy.special import logsumexp


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_last_axis_logsumexp_of_large_arrays_matches_scipy(dtype, rtol):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 30, 69)) * 3).astype(dtype)
    got = logsumexp(x, axis=-1)
    assert got.dtype == dtype and got.shape == (40, 30)
    np.testing.assert_allclose(got, scipy_lse(x.astype(np.float64), axis=-1), rtol=rtol,
                               atol=rtol)
    kept = logsumexp(x, axis=2, keepdims=True)
    np.testing.assert_allclose(kept[..., 0], got, rtol=0, atol=0)
    assert _lse_rows_unshifted(x) is not None                 # the fast path was taken


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_outside_the_unshifted_range_fall_back(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 69)).astype(dtype)
    big = 100.0 if dtype == np.float32 else 800.0
    x[3] += big                                          # Σ eˣ overflows
    x[7] -= big                                          # Σ eˣ under the subnormal floor
    x[11, :] = -np.inf                                   # log 0
    x[13, 2] = np.inf
    assert _lse_rows_unshifted(x) is None
    with np.errstate(invalid="ignore"):
        got = logsumexp(x, axis=-1)
        ref = scipy_lse(x.astype(np.float64), axis=-1)
    assert got[11] == -np.inf and got[13] == np.inf
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=2e-6 if dtype == np.float32
                               else 1e-13)


def test_logsumexp_gradient_on_the_fast_path_is_the_softmax():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 80))
    w = rng.normal(size=64)
    g = diffprog.grad(lambda x: dnp.sum(logsumexp(x, axis=-1) * w))(x)
    p = np.exp(x - scipy_lse(x, axis=-1, keepdims=True))
    np.testing.assert_allclose(g, w[:, None] * p, rtol=1e-12)
