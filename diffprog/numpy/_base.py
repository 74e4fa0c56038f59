"""Helpers shared by the differentiable NumPy namespace: shapes, zeros, unbroadcasting."""

from __future__ import annotations

import numpy as np

from ..core.primitive import Tracer, UndefinedPrimal

__all__ = [
    "shape_of",
    "dtype_of",
    "primal",
    "zeros_like",
    "tangent_zeros",
    "is_undefined",
    "float_dtype",
]


class ConcretizationError(TypeError):
    """A value-dependent operation met an abstract (``jit``) traced value."""


def primal(x):
    """The concrete NumPy value under any number of tracers (for value-dependent code).

    Raises :class:`ConcretizationError` under ``jit``, where values are abstract.
    """
    while isinstance(x, Tracer):
        if not x.concrete:
            raise ConcretizationError(
                "diffprog: this operation needs a concrete value, but its input is abstract "
                "(traced by jit or vmap, or inside the body of cond/scan/while_loop: only shapes "
                "and dtypes are known). Mark the argument static (jit's static_argnums), or use "
                "diffprog.cond / diffprog.numpy.where instead of value-dependent Python code"
            )
        x = x.value
    return x


def _walk(x):
    while isinstance(x, Tracer):
        x = x.value
    return x


def shape_of(x) -> tuple:
    if isinstance(x, (np.ndarray, np.generic, UndefinedPrimal)):
        return x.shape
    return np.shape(_walk(x))


def dtype_of(x) -> np.dtype:
    if isinstance(x, (np.ndarray, np.generic, UndefinedPrimal)):
        return x.dtype
    return np.result_type(_walk(x))


def float_dtype(dt) -> np.dtype:
    dt = np.dtype(dt)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def zeros_like(x, dtype=None, shape=None):
    """Zeros with the shape and dtype of ``x`` (a constant: its derivative is zero).

    Book §2 (NumPy ``zeros_like``). Example: ``zeros_like(np.ones(2))`` → ``array([0., 0.])``.
    """
    if isinstance(x, tuple) and not isinstance(x, UndefinedPrimal):
        return tuple(zeros_like(a) for a in x)
    return np.zeros(shape_of(x) if shape is None else shape,
                    dtype=dtype_of(x) if dtype is None else dtype)


def tangent_zeros(x):
    """Zero tangent for ``x``: its shape, its floating dtype (float64 for integer arrays).
    Book §8.1.1 (tangents).

    Example: ``tangent_zeros(np.arange(2))`` → ``array([0., 0.])``.
    """
    return np.zeros(shape_of(x), dtype=float_dtype(dtype_of(x)))


def is_undefined(x) -> bool:
    return type(x) is UndefinedPrimal
