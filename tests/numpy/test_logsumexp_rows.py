"""``logsumexp`` and ``softmax`` over the last axis of large float arrays take an unshifted path
(one ``exp`` and a matrix-vector product); rows outside its range fall back to the max-shifted
formula. Checked against SciPy's ``logsumexp`` and ``softmax`` in float64."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp as scipy_lse
from scipy.special import softmax as scipy_softmax

import diffprog
import diffprog.numpy as dnp
from diffprog.numpy.reductions import _lse_rows_unshifted
from diffprog.scipy.special import logsumexp, softmax


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


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 3e-6), (np.float64, 1e-13)])
def test_softmax_fast_path_and_fallback_match_scipy(dtype, rtol):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(60, 69)) * 3).astype(dtype)
    np.testing.assert_allclose(softmax(x, axis=-1), scipy_softmax(x.astype(np.float64), axis=-1),
                               rtol=rtol, atol=1e-12)
    y = x.copy()
    y[4] += 100.0 if dtype == np.float32 else 800.0       # overflow: max-shifted fallback
    y[9] -= 100.0 if dtype == np.float32 else 800.0       # underflow: max-shifted fallback
    got = softmax(y, axis=-1)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, scipy_softmax(y.astype(np.float64), axis=-1), rtol=rtol,
                               atol=1e-12)
    np.testing.assert_allclose(softmax(x, axis=0), scipy_softmax(x.astype(np.float64), axis=0),
                               rtol=rtol, atol=1e-12)


def test_logsumexp_reverse_pass_under_jit_is_one_softmax():
    """Under jit the gradient of a log-sum-exp binds the softmax primitive (no max, exp, sum,
    divide chain); values against SciPy, second order against finite differences."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 70))
    f = lambda v: dnp.sum(logsumexp(v, axis=-1) ** 2)       # noqa: E731
    g = diffprog.jit(diffprog.grad(f))
    lse = scipy_lse(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(g(x), 2 * lse * np.exp(x - lse), rtol=1e-12)
    names = [eq.prim.name for eq in g._entry_for((x,), {}).program.eqns]
    assert "softmax" in names and "max" not in names and "exp" not in names
    d = rng.normal(size=x.shape)
    h = 1e-6
    fd = (g(x + h * d) - g(x - h * d)) / (2 * h)
    _, hvp = diffprog.jvp(diffprog.grad(f), (x,), (d,))
    np.testing.assert_allclose(hvp, fd, rtol=1e-5, atol=1e-7)


def test_softmax_under_vmap_matches_scipy_on_every_axis():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3, 5))
    over_last = diffprog.vmap(lambda r: softmax(r, axis=-1), in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(over_last, scipy_softmax(x, axis=-1), rtol=1e-14)
    over_first = diffprog.vmap(lambda r: softmax(r, axis=0))(x)
    np.testing.assert_allclose(over_first, scipy_softmax(x, axis=1), rtol=1e-14)
    w = rng.normal(size=(3, 5))
    per_example = diffprog.vmap(diffprog.grad(lambda r: dnp.sum(softmax(r, axis=-1) * w)))(x)
    p = scipy_softmax(x, axis=-1)
    np.testing.assert_allclose(per_example, p * (w - (p * w).sum(-1, keepdims=True)),
                               rtol=1e-12)
