"""Public shape and indexing functions of :mod:`diffprog.numpy` (book §8.4.4: linear maps).

Everything here is built on the few linear primitives of :mod:`.structural` (reshape, transpose,
broadcast, getitem, concatenate, pad), so each function is differentiable in both modes and
transposable. Copy-like operations (``flip``, ``roll``, ``tile``, ``repeat``, ``take``,
``take_along_axis``, ``diagonal``, non-constant ``pad``) are gathers with a precomputed index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import dtype_of, shape_of
from .structural import (
    broadcast_to_p,
    concatenate_p,
    concrete_index,
    convert_nondiff_p,
    convert_p,
    getitem_p,
    normalize_axis,
    pad_p,
    reshape_p,
    split_p,
    transpose_p,
)

__all__ = [
    "reshape", "ravel", "transpose", "moveaxis", "swapaxes", "squeeze", "expand_dims",
    "broadcast_to", "concatenate", "stack", "hstack", "vstack", "split", "tile", "repeat",
    "flip", "roll", "pad", "take", "take_along_axis", "diagonal", "triu", "tril", "astype",
    "atleast_1d", "atleast_2d", "getitem", "shape", "ndim", "size",
]


def _ax(axis, nd, fname):
    if not isinstance(axis, (int, np.integer)) or not -max(nd, 1) <= axis < max(nd, 1):
        raise ValueError(f"{fname}: axis {axis!r} is out of bounds for an array of ndim {nd}")
    return int(axis) % max(nd, 1)


def shape(a: Any) -> tuple:
    """``numpy.shape`` (works on traced values). Example: ``shape(np.zeros((2, 3)))`` → (2, 3).
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    return shape_of(a)


def ndim(a: Any) -> int:
    """``numpy.ndim``. Example: ``ndim(np.zeros((2, 3)))`` → 2. Book §2.3.3 (a linear map; its
    adjoint is its transpose rule, §8.4.4)."""
    return len(shape_of(a))


def size(a: Any) -> int:
    """``numpy.size``. Example: ``size(np.zeros((2, 3)))`` → 6. Book §2.3.3 (a linear map; its
    adjoint is its transpose rule, §8.4.4)."""
    return int(np.prod(shape_of(a)))


def reshape(a: Any, newshape: Any, order: str = "C") -> Any:
    """``numpy.reshape`` (C order); its transpose is the reshape back (book §8.4.4).

    Example: ``reshape(np.arange(6.), (2, 3)).shape`` → ``(2, 3)``.
    """
    if order != "C":
        raise ValueError(f"reshape: only order='C' is supported, got {order!r}")
    s = shape_of(a)
    newshape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    target = _resolve_shape(s, newshape)
    if target == s:
        return a
    return reshape_p.bind(a, shape=target)


def _resolve_shape(s, newshape):
    total = int(np.prod(s))
    newshape = tuple(int(n) for n in newshape)
    unknown = [i for i, n in enumerate(newshape) if n == -1]
    known = int(np.prod([n for n in newshape if n != -1]))
    if len(unknown) > 1 or any(n < -1 for n in newshape):
        raise ValueError(f"reshape: invalid new shape {newshape}")
    if unknown:
        if known == 0 or total % known:
            raise ValueError(f"reshape: cannot reshape array of shape {s} into {newshape}")
        newshape = tuple(total // known if n == -1 else n for n in newshape)
    if int(np.prod(newshape)) != total:
        raise ValueError(f"reshape: cannot reshape array of shape {s} into {newshape}")
    return newshape


def ravel(a: Any) -> Any:
    """``numpy.ravel``: flatten to 1-D. Example: ``ravel(np.ones((2, 2))).shape`` → ``(4,)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    return reshape(a, (-1,))


def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """``numpy.transpose``: permute axes (reversed by default); transposes to the inverse
    permutation. Book §8.4.4. Example: ``transpose(np.ones((2, 3))).shape`` → ``(3, 2)``."""
    nd = len(shape_of(a))
    perm = tuple(range(nd))[::-1] if axes is None else tuple(_ax(i, nd, "transpose") for i in axes)
    if sorted(perm) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes!r} is not a permutation of {nd} axes")
    if perm == tuple(range(nd)):
        return a
    return transpose_p.bind(a, axes=perm)


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """``numpy.moveaxis``. Example: ``moveaxis(np.ones((2, 3, 4)), 0, -1).shape`` → (3, 4, 2).
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    nd = len(shape_of(a))
    src = [_ax(s, nd, "moveaxis") for s in np.atleast_1d(source)]
    dst = [_ax(d, nd, "moveaxis") for d in np.atleast_1d(destination)]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return transpose(a, order)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """``numpy.swapaxes``. Example: ``swapaxes(np.ones((2, 3)), 0, 1).shape`` → ``(3, 2)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    nd = len(shape_of(a))
    perm = list(range(nd))
    i, j = _ax(axis1, nd, "swapaxes"), _ax(axis2, nd, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def squeeze(a: Any, axis: Any = None) -> Any:
    """``numpy.squeeze``. Example: ``squeeze(np.ones((1, 3))).shape`` → ``(3,)``. Book §2.3.3 (a
    linear map; its adjoint is its transpose rule, §8.4.4)."""
    s = shape_of(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(s) if n == 1)
    else:
        axes = normalize_axis(axis, len(s), "squeeze")
        for i in axes:
            if s[i] != 1:
                raise ValueError(f"squeeze: cannot squeeze axis {i} of size {s[i]}")
    return reshape(a, tuple(n for i, n in enumerate(s) if i not in axes))


def expand_dims(a: Any, axis: Any) -> Any:
    """``numpy.expand_dims``. Example: ``expand_dims(np.ones(3), 0).shape`` → ``(1, 3)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    s = list(shape_of(a))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = len(s) + len(axes)
    for ax in sorted(_ax(x, nd, "expand_dims") for x in axes):
        s.insert(ax, 1)
    return reshape(a, tuple(s))


def atleast_1d(a: Any) -> Any:
    """``numpy.atleast_1d``. Example: ``atleast_1d(1.0).shape`` → ``(1,)``. Book §2.3.3 (a linear
    map; its adjoint is its transpose rule, §8.4.4)."""
    return reshape(a, (1,)) if len(shape_of(a)) == 0 else a


def atleast_2d(a: Any) -> Any:
    """``numpy.atleast_2d``. Example: ``atleast_2d(np.ones(3)).shape`` → ``(1, 3)``. Book §2.3.3 (a
    linear map; its adjoint is its transpose rule, §8.4.4)."""
    s = shape_of(a)
    return reshape(a, (1,) * (2 - len(s)) + s) if len(s) < 2 else a


def broadcast_to(a: Any, shape: Sequence[int]) -> Any:
    """``numpy.broadcast_to``; its transpose sums over the broadcast axes (book §8.4.4).

    Example: ``broadcast_to(np.ones(3), (2, 3)).shape`` → ``(2, 3)``.
    """
    shape = tuple(shape)
    s = shape_of(a)
    if s == shape:
        return a
    try:
        np.broadcast_shapes(s, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {s} to {shape}") from None
    return broadcast_to_p.bind(a, shape=shape)


def astype(a: Any, dtype: Any) -> Any:
    """Convert to ``dtype``; a conversion to an integer or boolean type has zero derivative.

    Book §2.3. Example: ``astype(np.ones(2), np.float32).dtype`` → ``float32``.
    """
    dt = np.dtype(dtype)
    if dt == dtype_of(a):
        return a
    if dt.kind not in "fc":
        return convert_nondiff_p.bind(a, dtype=dt)
    return convert_p.bind(a, dtype=dt)


def getitem(a: Any, idx: Any) -> Any:
    """``a[idx]`` with basic or advanced indexing; transposes to a scatter-add (book §8.4.4).

    Example: ``getitem(np.arange(4.), slice(1, 3))`` → ``array([1., 2.])``.
    """
    return getitem_p.bind(a, idx=concrete_index(idx))


def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Any:
    """``numpy.concatenate``; transposes to slicing (book §8.4.4).

    Example: ``concatenate([np.ones(2), np.zeros(1)])`` → ``array([1., 1., 0.])``.
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    if axis is None:
        arrays = [ravel(x) for x in arrays]
        axis = 0
    nd = len(shape_of(arrays[0]))
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    return concatenate_p.bind(*arrays, axis=_ax(axis, nd, "concatenate"))


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    """``numpy.stack``. Example: ``stack([np.ones(2), np.zeros(2)]).shape`` → ``(2, 2)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("stack: need at least one array")
    nd = len(shape_of(arrays[0])) + 1
    ax = _ax(axis, nd, "stack")
    return concatenate_p.bind(*[expand_dims(x, ax) for x in arrays], axis=ax)


def hstack(arrays: Sequence[Any]) -> Any:
    """``numpy.hstack``. Example: ``hstack([np.ones(2), np.zeros(1)]).shape`` → ``(3,)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    arrays = [atleast_1d(x) for x in arrays]
    return concatenate(arrays, axis=0 if len(shape_of(arrays[0])) == 1 else 1)


def vstack(arrays: Sequence[Any]) -> Any:
    """``numpy.vstack``. Example: ``vstack([np.ones(2), np.zeros(2)]).shape`` → ``(2, 2)``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    return concatenate([atleast_2d(x) for x in arrays], axis=0)


def split(a: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``numpy.split`` into views (slices). Book §2.3.3 (a linear map; its adjoint is its
    transpose rule, §8.4.4): pieces that tile the axis are the results of one primitive,
    ``split_p``, whose transpose is one ``concatenate`` of the pieces' cotangents (which
    :func:`diffprog.jit` then has their producers write in place); overlapping pieces
    (decreasing indices) are slices.

    Example: ``[p.shape for p in split(np.ones(5), [2])]`` → ``[(2,), (3,)]``."""
    s = shape_of(a)
    ax = _ax(axis, len(s), "split")
    n = s[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections < 1:
            raise ValueError(f"split: argument 'indices_or_sections' must be a positive number "
                             f"of sections or a list of indices, got {indices_or_sections}")
        if n % indices_or_sections:
            raise ValueError(
                f"split: array of size {n} along axis {ax} does not split into "
                f"{indices_or_sections} equal sections"
            )
        step = n // indices_or_sections
        bounds = [i * step for i in range(int(indices_or_sections) + 1)]
    else:
        bounds = [0, *[int(i) for i in indices_or_sections], n]
    cuts = [min(max(b + n if b < 0 else b, 0), n) for b in bounds[1:-1]]   # slice semantics
    if all(lo <= hi for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)):  # a tiling
        return list(split_p.bind(a, axis=ax, bounds=(0, *cuts, n)))
    pre = (slice(None),) * ax                      # overlapping pieces (decreasing indices)
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    return [getitem_p.bind(a, idx=pre + (slice(lo, hi),)) for lo, hi in pairs]


def _gather_axes(a, index_per_axis):
    """``a[ix_(*index_per_axis)]`` where ``None`` keeps an axis whole."""
    s = shape_of(a)
    idx = [np.arange(n) if i is None else np.asarray(i) for i, n in zip(index_per_axis, s,
                                                                          strict=True)]
    return getitem_p.bind(a, idx=np.ix_(*idx))


def flip(a: Any, axis: Any = None) -> Any:
    """``numpy.flip``. Example: ``flip(np.arange(3.))`` → ``array([2., 1., 0.])``. Book §2.3.3 (a
    linear map; its adjoint is its transpose rule, §8.4.4)."""
    nd = len(shape_of(a))
    axes = normalize_axis(axis, nd, "flip")
    return getitem_p.bind(
        a, idx=tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd))
    )


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """``numpy.roll``. Example: ``roll(np.arange(3.), 1)`` → ``array([2., 0., 1.])``. Book §2.3.3
    (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    s = shape_of(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), s)
    shifts = np.broadcast_to(shift, np.shape(axis)).ravel() if np.ndim(axis) else [shift]
    axes = np.atleast_1d(axis)
    per = [None] * len(s)
    for sh, ax in zip(shifts, axes, strict=True):
        ax = _ax(int(ax), len(s), "roll")
        base = np.arange(s[ax]) if per[ax] is None else per[ax]
        per[ax] = np.roll(base, int(sh))
    return _gather_axes(a, per)


def tile(a: Any, reps: Any) -> Any:
    """``numpy.tile``. Example: ``tile(np.array([1., 2.]), 2)`` → ``array([1., 2., 1., 2.])``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    s = shape_of(a)
    nd = max(len(s), len(reps))
    a = reshape(a, (1,) * (nd - len(s)) + s)
    s = shape_of(a)
    reps = (1,) * (nd - len(reps)) + reps
    return _gather_axes(a, [np.tile(np.arange(n), r) for n, r in zip(s, reps, strict=True)])


def repeat(a: Any, repeats: Any, axis: int | None = None) -> Any:
    """``numpy.repeat``. Example: ``repeat(np.array([1., 2.]), 2)`` → ``[1., 1., 2., 2.]``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    if axis is None:
        a = ravel(a)
        axis = 0
    s = shape_of(a)
    ax = _ax(axis, len(s), "repeat")
    per: list = [None] * len(s)
    per[ax] = np.repeat(np.arange(s[ax]), repeats)
    return _gather_axes(a, per)


def _index_array(indices):
    """An integer index array: concrete, or abstract under ``jit`` (a dynamic parameter)."""
    if isinstance(indices, list):
        indices = np.asarray(indices)
    return concrete_index((indices,))[0]


def take(a: Any, indices: Any, axis: int | None = None) -> Any:
    """``numpy.take`` (a gather; transposes to a scatter-add). Book §2.3.3 (a linear map; its
    adjoint is its transpose rule, §8.4.4).

    Example: ``take(np.array([1., 2., 3.]), [2, 0])`` → ``array([3., 1.])``.
    """
    indices = _index_array(indices)
    if axis is None:
        return getitem_p.bind(ravel(a), idx=(indices,))
    s = shape_of(a)
    ax = _ax(axis, len(s), "take")
    return getitem_p.bind(a, idx=(slice(None),) * ax + (indices,))


def take_along_axis(arr: Any, indices: Any, axis: int) -> Any:
    """``numpy.take_along_axis``. Book §2.3.3 (a linear map; its adjoint is its transpose rule,
    §8.4.4).

    Example: ``take_along_axis(np.array([[1., 2.]]), np.array([[1]]), 1)`` → ``[[2.]]``.
    """
    indices = _index_array(indices)
    s = shape_of(arr)
    ax = _ax(axis, len(s), "take_along_axis")
    if len(shape_of(indices)) != len(s):
        raise ValueError("take_along_axis: indices must have the same number of dimensions")
    idx = list(np.indices(shape_of(indices), sparse=True))
    idx[ax] = indices
    return getitem_p.bind(arr, idx=tuple(idx))


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``numpy.diagonal`` (diagonal moved to the last axis). Book §2.3.3 (a linear map; its adjoint
    is its transpose rule, §8.4.4).

    Example: ``diagonal(np.eye(2))`` → ``array([1., 1.])``.
    """
    s = shape_of(a)
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    n, m = shape_of(a)[-2:]
    i = np.arange(max(0, -offset), min(n, m - offset))
    return getitem_p.bind(a, idx=(Ellipsis, i, i + offset)) if len(s) >= 2 else a


def _tri_mask(a, k, upper):
    n, m = shape_of(a)[-2:]
    mask = np.triu(np.ones((n, m), dtype=bool), k) if upper else np.tril(
        np.ones((n, m), dtype=bool), k)
    from .ufuncs import where

    return where(mask, a, 0.0)


def triu(m: Any, k: int = 0) -> Any:
    """``numpy.triu``: upper triangle. Example: ``triu(np.ones((2, 2)))`` → ``[[1, 1], [0, 1]]``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    return _tri_mask(m, k, True)


def tril(m: Any, k: int = 0) -> Any:
    """``numpy.tril``: lower triangle. Example: ``tril(np.ones((2, 2)))`` → ``[[1, 0], [1, 1]]``.
    Book §2.3.3 (a linear map; its adjoint is its transpose rule, §8.4.4)."""
    return _tri_mask(m, k, False)


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0) -> Any:
    """``numpy.pad`` for modes constant, edge, reflect, symmetric and wrap.

    Constant padding transposes to slicing (book §8.4.4); the other modes are gathers.
    Example: ``pad(np.ones(2), 1)`` → ``array([0., 1., 1., 0.])``.
    """
    s = shape_of(array)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (len(s), 2))
    pw = tuple((int(lo), int(hi)) for lo, hi in pw)
    if mode == "constant":
        out = pad_p.bind(array, pad_width=pw)
        if np.any(np.asarray(constant_values) != 0):
            const = np.pad(np.zeros(s, dtype=dtype_of(array)), pw, constant_values=constant_values)
            out = out + const
        return out
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ValueError(f"pad: unsupported mode {mode!r}")
    per = [np.pad(np.arange(n), w, mode=mode) for n, w in zip(s, pw, strict=True)]
    return _gather_axes(array, per)
