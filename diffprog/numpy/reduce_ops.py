"""Public reductions and scans of :mod:`diffprog.numpy` (book §2.3).

``sum`` is linear (transpose: broadcast); ``mean``, ``var`` and ``std`` are compositions;
``prod`` differentiates through exclusive products (exact at zeros); ``max``/``min`` split ties
equally; ``sort`` follows the stable permutation; ``argsort``/``argmax``/``argmin`` have zero
derivative (integer outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.primitive import Primitive
from ._base import dtype_of, shape_of
from .reductions import argmax_p, argmin_p, argsort_p, cumsum_p, lse_p, max_p, min_p, sort_p
from .structural import convert_nondiff_p, normalize_axis, sum_p

all_p = Primitive("all", lambda a, *, axis, keepdims: np.all(a, axis=axis, keepdims=keepdims),
                  nondiff=True)
any_p = Primitive("any", lambda a, *, axis, keepdims: np.any(a, axis=axis, keepdims=keepdims),
                  nondiff=True)
count_nonzero_p = Primitive("count_nonzero", lambda a, *, axis: np.count_nonzero(a, axis=axis),
                            nondiff=True)

__all__ = ["sum", "mean", "prod", "max", "min", "amax", "amin", "var", "std", "cumsum",
           "cumprod", "sort", "argsort", "argmax", "argmin", "all", "any", "count_nonzero",
           "logsumexp_prim"]


def _axes(a, axis, fname):
    return normalize_axis(axis, len(shape_of(a)), fname)


def sum(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
    """``numpy.sum``: linear, its transpose broadcasts the cotangent back (book §8.4.4).

    Example: ``sum(np.ones((2, 3)), axis=1)`` → ``array([3., 3.])``.
    """
    if dtype is not None:
        from .shape_ops import astype

        a = astype(a, dtype)
    if dtype_of(a).kind == "b":
        a = convert_nondiff_p.bind(a, dtype=np.dtype(int))
    return sum_p.bind(a, axis=_axes(a, axis, "sum"), keepdims=bool(keepdims))


def mean(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.mean`` = ``sum / n``. Example: ``mean(np.array([1., 3.]))`` → ``2.0``. Book §8.4.1
    (primitive functions)."""
    s = shape_of(a)
    axes = normalize_axis(axis, len(s), "mean")
    n = 1
    for i in axes:
        n *= s[i]
    if n == 0:
        raise ValueError("mean: mean of an empty selection")
    total = sum_p.bind(a, axis=axes, keepdims=bool(keepdims))
    dt = dtype_of(a)
    if dt.kind in "iub":
        return total / float(n)
    return total * dt.type(1.0 / n)


def var(a: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """``numpy.var`` = mean of squared deviations (``ddof`` as NumPy). Book §8.4.1 (primitive
    functions).

    Example: ``var(np.array([1., 3.]))`` → ``1.0``.
    """
    axes = _axes(a, axis, "var")
    s = shape_of(a)
    n = int(np.prod([s[i] for i in axes])) if axes else 1
    if n - ddof <= 0:
        raise ValueError(f"var: ddof={ddof} leaves no degrees of freedom (n={n})")
    d = a - mean(a, axis=axes, keepdims=True)
    return sum_p.bind(d * d, axis=axes, keepdims=bool(keepdims)) / float(n - ddof)


def std(a: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """``numpy.std`` = sqrt(var). Its derivative is infinite where the variance is zero.
    Book §8.4.1 (primitive functions).

    Example: ``std(np.array([1., 3.]))`` → ``1.0``.
    """
    from .ufuncs import sqrt

    return sqrt(var(a, axis=axis, keepdims=keepdims, ddof=ddof))


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.max``; at ties the derivative is split equally among the maximisers. Book §8.4.1
    (primitive functions).

    Example: ``max(np.array([1., 3.]))`` → ``3.0``.
    """
    return max_p.bind(a, axis=_axes(a, axis, "max"), keepdims=bool(keepdims))


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.min``; at ties the derivative is split equally among the minimisers. Book §8.4.1
    (primitive functions).

    Example: ``min(np.array([1., 3.]))`` → ``1.0``.
    """
    return min_p.bind(a, axis=_axes(a, axis, "min"), keepdims=bool(keepdims))


amax = max
amin = min


def logsumexp_prim(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Stable ``log Σ exp(a)`` as one primitive (book §8.4.1); see ``scipy.special.logsumexp``.

    Example: ``logsumexp_prim(np.zeros(2))`` → ``log 2``.
    """
    return lse_p.bind(a, axis=_axes(a, axis, "logsumexp"), keepdims=bool(keepdims))


def _exclusive_cumprod(a, axis, reverse):
    """Π_{j<i} a_j along ``axis`` (or Π_{j>i} with ``reverse``), built from differentiable ops."""
    from .shape_ops import concatenate, flip, getitem

    if reverse:
        return flip(_exclusive_cumprod(flip(a, axis), axis, False), axis)
    s = shape_of(a)
    nd = len(s)
    head = np.ones(tuple(1 if i == axis else n for i, n in enumerate(s)), dtype=dtype_of(a))
    body = getitem(a, tuple(slice(0, -1) if i == axis else slice(None) for i in range(nd)))
    return concatenate([head, cumprod(body, axis=axis)], axis=axis)


def prod(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.prod``. Derivative ``∂/∂a_i = Π_{j≠i} a_j`` computed from exclusive products, so it
    is exact when entries are zero (no division). Book §2.3.

    Example: ``prod(np.array([2., 3.]))`` → ``6.0``.
    """
    from .shape_ops import reshape

    axes = _axes(a, axis, "prod")
    s = shape_of(a)
    if len(axes) != 1:
        moved = a
        if axes:
            from .shape_ops import transpose

            keep = [i for i in range(len(s)) if i not in axes]
            moved = transpose(a, keep + list(axes))
            moved = reshape(moved, tuple(s[i] for i in keep) + (-1,))
        else:
            moved = reshape(a, (-1,))
        out = prod(moved, axis=-1 if axes else 0)
        if keepdims:
            out = reshape(out, tuple(1 if i in axes else n for i, n in enumerate(s)))
        if not axes and not keepdims:
            out = reshape(out, s)
        return out
    ax = axes[0]
    out = _prod_along(a, ax)
    if keepdims:
        out = reshape(out, tuple(1 if i == ax else n for i, n in enumerate(s)))
    return out


def _prod_along(a, ax):
    from ..core.custom import custom_jvp

    @custom_jvp
    def p(x):
        return np.prod(x, axis=ax)

    @p.defjvp
    def p_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        others = _exclusive_cumprod(x, ax, False) * _exclusive_cumprod(x, ax, True)
        return p(x), sum(others * t, axis=ax)

    return p(a)


def cumsum(a: Any, axis: int | None = None) -> Any:
    """``numpy.cumsum``: linear; its transpose is the reversed cumulative sum (book §8.4.4).

    Example: ``cumsum(np.array([1., 2., 3.]))`` → ``array([1., 3., 6.])``.
    """
    from .shape_ops import ravel

    if axis is None:
        a = ravel(a)
        axis = 0
    return cumsum_p.bind(a, axis=_axes(a, axis, "cumsum")[0])


def cumprod(a: Any, axis: int | None = None) -> Any:
    """``numpy.cumprod``. ``∂y_i/∂a_j = Π_{k≤i, k≠j} a_k`` (j ≤ i), evaluated without division
    (exact at zeros) from exclusive products; O(n²) along ``axis``. Book §2.3.

    Example: ``cumprod(np.array([1., 2., 3.]))`` → ``array([1., 2., 6.])``.
    """
    from ..core.custom import custom_jvp
    from .shape_ops import moveaxis, ravel, reshape

    if axis is None:
        a = ravel(a)
        axis = 0
    ax = _axes(a, axis, "cumprod")[0]

    @custom_jvp
    def cp(x):
        return np.cumprod(x, axis=ax)

    @cp.defjvp
    def cp_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        from .ufuncs import where

        xm = moveaxis(x, ax, -1)
        tm = moveaxis(t, ax, -1)
        n = shape_of(xm)[-1]
        lead = shape_of(xm)[:-1]
        # y_i = E_j x_j R[j, i] with E_j = Π_{k<j} x_k and R[j, i] = Π_{j<k≤i} x_k, so
        # ∂y_i = Σ_{j≤i} t_j E_j R[j, i]  (no division: exact at zeros)
        e = _exclusive_cumprod(xm, len(lead), False)
        rows = np.arange(n)[:, None]
        cols = np.arange(n)[None, :]
        r = cumprod(where(cols > rows, reshape(xm, lead + (1, n)), 1.0), axis=-1)
        r = where(cols >= rows, r, 0.0)
        tout = sum(reshape(tm * e, lead + (n, 1)) * r, axis=-2)
        return cp(x), moveaxis(tout, -1, ax)

    return cp(a)


def sort(a: Any, axis: int = -1) -> Any:
    """``numpy.sort`` (stable). Its derivative permutes the tangent by the stable sorting
    permutation (ties keep their stable order). Book §6 (sorting), §8.4.1.

    Example: ``sort(np.array([3., 1.]))`` → ``array([1., 3.])``.
    """
    from .shape_ops import ravel

    if axis is None:
        a = ravel(a)
        axis = 0
    return sort_p.bind(a, axis=_axes(a, axis, "sort")[0])


def argsort(a: Any, axis: int = -1) -> np.ndarray:
    """``numpy.argsort`` (stable); integer output, zero derivative. Book §5.1 (piecewise-constant
    functions have zero derivative).

    Example: ``argsort(np.array([3., 1.]))`` → ``array([1, 0])``.
    """
    return argsort_p.bind(a, axis=axis)


def argmax(a: Any, axis: int | None = None) -> Any:
    """``numpy.argmax``; integer output, zero derivative. Example: ``argmax([1., 3.])`` → 1.
    Book §5.1 (piecewise-constant functions have zero derivative)."""
    return argmax_p.bind(a, axis=axis)


def argmin(a: Any, axis: int | None = None) -> Any:
    """``numpy.argmin``; integer output, zero derivative. Example: ``argmin([1., 3.])`` → 0.
    Book §5.1 (piecewise-constant functions have zero derivative)."""
    return argmin_p.bind(a, axis=axis)


def all(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.all`` (boolean, not differentiable). Example: ``all([True, False])`` → False.
    Book §5.1 (piecewise-constant functions have zero derivative)."""
    return all_p.bind(a, axis=axis, keepdims=keepdims)


def any(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.any`` (boolean, not differentiable). Example: ``any([True, False])`` → True.
    Book §5.1 (piecewise-constant functions have zero derivative)."""
    return any_p.bind(a, axis=axis, keepdims=keepdims)


def count_nonzero(a: Any, axis: Any = None) -> Any:
    """``numpy.count_nonzero`` (integer, not differentiable). Book §5.1 (piecewise-constant
    functions have zero derivative).

    Example: ``count_nonzero(np.array([0., 2.]))`` → ``1``.
    """
    return count_nonzero_p.bind(a, axis=axis)


