"""Reductions and scans: max/min, prod, cumsum, cumprod, logsumexp, sort (book §2.3, §8.4.1).

``logsumexp`` is a primitive of its own, kept whole for numerical stability (book §8.4.1): it
evaluates ``m + log Σ exp(x - m)`` with ``m = max x`` and its gradient is the softmax.

Non-smooth conventions: at ties, ``max``/``min`` split the cotangent equally among the tied
entries (an element of the Clarke subdifferential); ``sort`` differentiates through the stable
sorting permutation, so tied entries receive the cotangents of their positions in stable order.
"""

from __future__ import annotations

import functools

import numpy as np

from ..core.primitive import Primitive
from ._base import shape_of
from .structural import getitem_p, reshape_p, sum_p

_add_reduce = np.add.reduce


def _keep_shape(shape, axis):
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def _expand(y, shape, axis, keepdims):
    """A reduced array with its reduced axes restored as size 1, ready to broadcast against an
    array of ``shape`` (every caller combines it with a full-shape array)."""
    if not keepdims:
        y = reshape_p.bind(y, shape=_keep_shape(shape, axis))
    return y


# ----------------------------------------------------------------------------- max / min
def _extremum(name, npfun):
    def impl(x, *, axis, keepdims):
        return npfun(x, axis=axis, keepdims=keepdims)

    def weights(x, ans, axis, keepdims):
        from .. import numpy as dnp

        shape = shape_of(x)
        mask = dnp.equal(x, _expand(ans, shape, axis, keepdims))
        mask = mask.astype(np.result_type(x.dtype if hasattr(x, "dtype") else float, np.float32))
        count = sum_p.bind(mask, axis=axis, keepdims=True)
        return mask / count

    prim = Primitive(name, impl)

    def jvp(primals, tangents, ans, *, axis, keepdims):
        (x,), (t,) = primals, tangents
        w = weights(x, ans, axis, keepdims)
        return sum_p.bind(w * t, axis=axis, keepdims=keepdims)

    def vjp(g, ans, x, *, axis, keepdims):
        w = weights(x, ans, axis, keepdims)
        return w * _expand(g, shape_of(x), axis, keepdims)

    prim.jvp = jvp
    prim.vjps = (vjp,)
    return prim


max_p = _extremum("max", np.max)
min_p = _extremum("min", np.min)


# ----------------------------------------------------------------------------- logsumexp
@functools.cache
def unshifted_range(dtype) -> tuple[float, float]:
    """``(lo, hi)``: the row sums ``Σ eˣ`` for which exponentiating unshifted scores is exact
    enough. ``lo`` is ``2⁴⁰`` times the smallest normal number, so any subnormal term is below
    ``2⁻⁴⁰`` of the sum; ``hi`` is the largest finite number (book §4.4.4: the softargmax is
    unchanged by a shift, which is only needed for range). Cached per dtype (``np.finfo``
    costs microseconds on a hot path).

    Example::

        >>> lo, hi = unshifted_range(np.float32)
        >>> 1e-26 < lo < 2e-26, hi == float(np.finfo(np.float32).max)
        (True, True)
    """
    info = np.finfo(dtype)
    return float(info.tiny) * 2.0 ** 40, float(info.max)


def _unshifted_rows(x, axis):
    """``(eˣ, Σ eˣ)`` over the last axis of a large C-contiguous float array, unshifted (one
    ``exp`` pass and a matrix-vector product: a row maximum and a sum over short rows are slow
    NumPy reductions); ``None`` when that does not apply or a row sum is outside
    ``unshifted_range`` (or not finite): the caller then shifts by the maximum."""
    if not (axis == (x.ndim - 1,) and x.dtype in (np.float32, np.float64)
            and x.flags.c_contiguous and x.shape[-1] and x.size >= 4096):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        s = np.matmul(e, np.ones(x.shape[-1], x.dtype))
    lo, hi = unshifted_range(x.dtype)
    if not (s.min(initial=np.inf) >= lo and s.max(initial=0.0) <= hi):
        return None
    return e, s


def _lse_rows_unshifted(x):
    """``log Σ exp(x)`` over the last axis by :func:`_unshifted_rows`, or ``None``."""
    rows = _unshifted_rows(x, (x.ndim - 1,))
    return None if rows is None else np.log(rows[1], out=rows[1])


def _lse_impl(x, *, axis, keepdims):
    x = np.asarray(x)
    out = _lse_rows_unshifted(x) if axis == (x.ndim - 1,) else None
    if out is not None:
        return out[..., None] if keepdims else out
    m = x.max(axis=axis, keepdims=True)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0.0)
    s = _add_reduce(np.exp(x - m), axis=axis, keepdims=True)
    if (s == 0).any():
        with np.errstate(divide="ignore"):
            out = np.log(s) + m
    else:
        out = np.log(s) + m
    if not keepdims:
        out = out.reshape([n for i, n in enumerate(out.shape) if i not in axis])
    return out


def _softmax_impl(x, *, axis):
    """``exp(x) / Σ exp(x)`` over ``axis``: unshifted over the last axis of a large float
    array when every row sum is in range (:func:`_unshifted_rows`), else shifted by the
    maximum."""
    x = np.asarray(x)
    rows = _unshifted_rows(x, axis)
    if rows is not None:
        e, s = rows
        np.divide(1.0, s, out=s)
        e *= s[..., None]
        return e
    m = x.max(axis=axis, keepdims=True)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    e /= _add_reduce(e, axis=axis, keepdims=True)
    return e


def _softmax_tangent(p, t, axis):
    """``p ⊙ (t − Σ p t)``: the JVP (``t`` a tangent) and the VJP (``t`` a cotangent; the
    Jacobian ``diag(p) − ppᵀ`` is symmetric) of a softmax with result ``p``."""
    return p * (t - sum_p.bind(p * t, axis=axis, keepdims=True))


#: ``softmax_p(x; axis) = exp(x) / Σ_axis exp(x)`` (the gradient of :data:`lse_p`): one
#: primitive, so that the reverse pass of a log-sum-exp under ``jit`` is one kernel.
softmax_p = Primitive("softmax", _softmax_impl)
softmax_p.jvp = lambda primals, tangents, ans, *, axis: _softmax_tangent(ans, tangents[0], axis)
softmax_p.vjps = (lambda g, ans, x, *, axis: _softmax_tangent(ans, g, axis),)


def _lse_weights(x, ans, axis, keepdims):
    """softmax(x) = exp(x - m) / Σ exp(x - m) with the constant shift m = max x (exact for any
    constant m, so its derivatives are exact too; no precision loss for large |logsumexp|)."""
    if type(x) is np.ndarray:  # plain values: the same formula in NumPy
        a = ans if keepdims else np.reshape(ans, _keep_shape(x.shape, axis))
        if type(a) is np.ndarray and np.abs(a).max(initial=0.0) < 64.0:
            # exp(x - lse) directly: relative error below 64 ε when |lse| < 64
            return np.exp(x - a)
        m = x.max(axis=axis, keepdims=True)
        if not np.isfinite(m).all():
            m = np.where(np.isfinite(m), m, 0.0)
        e = np.exp(x - m)
        return e / _add_reduce(e, axis=axis, keepdims=True)
    return softmax_p.bind(x, axis=axis)


lse_p = Primitive("logsumexp", _lse_impl)
lse_p.jvp = lambda primals, tangents, ans, *, axis, keepdims: sum_p.bind(
    _lse_weights(primals[0], ans, axis, keepdims) * tangents[0], axis=axis, keepdims=keepdims
)
lse_p.vjps = (
    lambda g, ans, x, *, axis, keepdims: _lse_weights(x, ans, axis, keepdims)
    * _expand(g, shape_of(x), axis, keepdims),
)


# ----------------------------------------------------------------------------- cumsum
def _flip_idx(nd, axis):
    return tuple(slice(None, None, -1) if i == axis else slice(None) for i in range(nd))


def _cumsum_t(ct, x, *, axis):
    idx = _flip_idx(len(x.shape), axis)
    return (getitem_p.bind(cumsum_p.bind(getitem_p.bind(ct, idx=idx), axis=axis), idx=idx),)


cumsum_p = Primitive("cumsum", lambda x, *, axis: np.cumsum(x, axis=axis), transpose=_cumsum_t)
cumsum_p.jvp = lambda primals, tangents, ans, *, axis: cumsum_p.bind(tangents[0], axis=axis)


# ----------------------------------------------------------------------------- sort
def _sort_impl(x, *, axis):
    return np.sort(x, axis=axis, kind="stable")


def _sort_index(x, axis):
    """The index that sorts ``x`` along ``axis`` (stable); traced under jit (a dynamic index)."""
    from .structural import concrete_index

    perm = concrete_index((argsort_p.bind(x, axis=axis),))[0]
    idx = list(np.indices(shape_of(x), sparse=True))
    idx[axis] = perm
    return tuple(idx)


sort_p = Primitive("sort", _sort_impl)
sort_p.jvp = lambda primals, tangents, ans, *, axis: getitem_p.bind(
    tangents[0], idx=_sort_index(primals[0], axis)
)

argsort_p = Primitive("argsort", lambda x, *, axis: np.argsort(x, axis=axis, kind="stable"),
                      nondiff=True)
argmax_p = Primitive("argmax", lambda x, *, axis: np.argmax(x, axis=axis), nondiff=True)
argmin_p = Primitive("argmin", lambda x, *, axis: np.argmin(x, axis=axis), nondiff=True)
