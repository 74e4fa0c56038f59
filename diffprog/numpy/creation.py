"""Array creation in :mod:`diffprog.numpy`: constants (zero derivative) and ``array``/``asarray``
that also stack traced values. Plain NumPy arrays are the array type of diffprog: nothing is
wrapped, so NumPy code and diffprog code exchange arrays freely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.primitive import Tracer
from ._base import dtype_of, shape_of

__all__ = [
    "array", "asarray", "zeros", "ones", "full", "empty", "eye", "identity", "arange",
    "linspace", "logspace", "meshgrid", "zeros_like", "ones_like", "full_like", "empty_like",
    "at", "copy", "tri", "diag", "indices",
]

zeros = np.zeros
ones = np.ones
full = np.full
empty = np.empty
eye = np.eye
identity = np.identity
arange = np.arange
linspace = np.linspace
logspace = np.logspace
meshgrid = np.meshgrid
tri = np.tri
indices = np.indices


def _contains_tracer(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_contains_tracer(o) for o in obj)
    return False


def _build(obj, dtype):
    from .shape_ops import astype, stack

    if isinstance(obj, Tracer):
        return obj if dtype is None else astype(obj, dtype)
    if isinstance(obj, (list, tuple)):
        parts = [_build(o, dtype) for o in obj]
        return stack([p if isinstance(p, Tracer) else np.asarray(p) for p in parts])
    return np.asarray(obj, dtype=dtype)


def array(obj: Any, dtype: Any = None, copy: bool = True) -> Any:
    """``numpy.array``; nested lists containing traced values are stacked (differentiably).
    Book §8.4.1 (constants have zero derivative).

    Example: ``array([1.0, 2.0])`` → ``array([1., 2.])``.
    """
    if _contains_tracer(obj):
        return _build(obj, dtype)
    return np.array(obj, dtype=dtype, copy=copy)


def asarray(obj: Any, dtype: Any = None) -> Any:
    """``numpy.asarray``; traced values pass through unchanged (see :func:`array`). Book §8.4.1
    (constants have zero derivative).

    Example: ``asarray(3.0).shape`` → ``()``.
    """
    if _contains_tracer(obj):
        return _build(obj, dtype)
    return np.asarray(obj, dtype=dtype)


def copy(a: Any) -> Any:
    """``numpy.copy`` (arrays are never mutated by diffprog, so a traced value is returned).
    Book §8.4.1 (constants have zero derivative).

    Example: ``copy(np.ones(2))`` → ``array([1., 1.])``.
    """
    return a if isinstance(a, Tracer) else np.copy(a)


def zeros_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Zeros shaped like ``a`` (a constant). Example: ``zeros_like(np.ones(2))`` → ``[0., 0.]``.
    Book §8.4.1 (constants have zero derivative)."""
    return np.zeros(shape_of(a), dtype=dtype_of(a) if dtype is None else dtype)


def ones_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Ones shaped like ``a`` (a constant). Example: ``ones_like(np.zeros(2))`` → ``[1., 1.]``.
    Book §8.4.1 (constants have zero derivative)."""
    return np.ones(shape_of(a), dtype=dtype_of(a) if dtype is None else dtype)


def full_like(a: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:
    """``numpy.full_like`` (a constant). Example: ``full_like(np.zeros(2), 3.)`` → ``[3., 3.]``.
    Book §8.4.1 (constants have zero derivative)."""
    return np.full(shape_of(a), fill_value, dtype=dtype_of(a) if dtype is None else dtype)


def empty_like(a: Any, dtype: Any = None) -> np.ndarray:
    """``numpy.empty_like`` (a constant). Book §8.4.1 (constants have zero derivative).

    Example: ``empty_like(np.ones(2)).shape`` → ``(2,)``.
    """
    return np.empty(shape_of(a), dtype=dtype_of(a) if dtype is None else dtype)


def diag(v: Any, k: int = 0) -> Any:
    """``numpy.diag``: extract a diagonal (2-D input) or build a diagonal matrix (1-D input).
    Book §8.4.1 (constants have zero derivative).

    Example: ``diag(np.array([1., 2.]))`` → ``[[1., 0.], [0., 2.]]``.
    """
    from .shape_ops import diagonal
    from .structural import index_add_p

    s = shape_of(v)
    if len(s) == 2:
        return diagonal(v, k)
    if len(s) != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {s}")
    n = s[0] + abs(k)
    i = np.arange(s[0])
    rows, cols = (i, i + k) if k >= 0 else (i - k, i)
    return index_add_p.bind(np.zeros((n, n), dtype=dtype_of(v)), v, idx=(rows, cols))


class _IndexUpdateRef:
    __slots__ = ("array", "idx")

    def __init__(self, array, idx):
        self.array = array
        self.idx = idx

    def set(self, values: Any) -> Any:
        """A copy of the array with ``array[idx] = values``."""
        from .structural import concrete_index, index_set_p

        return index_set_p.bind(self.array, values, idx=concrete_index(self.idx))

    def add(self, values: Any) -> Any:
        """A copy with ``array[idx] += values`` (repeated indices accumulate)."""
        from .structural import concrete_index, index_add_p

        return index_add_p.bind(self.array, values, idx=concrete_index(self.idx))

    def multiply(self, values: Any) -> Any:
        """A copy with ``array[idx] *= values`` (indices must not repeat)."""
        from .structural import concrete_index, index_set_p

        idx = concrete_index(self.idx)
        probe = np.zeros(shape_of(self.array), dtype=np.int64)
        np.add.at(probe, idx, 1)
        if probe.max(initial=0) > 1:
            raise ValueError("at[...].multiply: repeated indices are not supported")
        factor = index_set_p.bind(np.ones(shape_of(self.array), dtype=dtype_of(self.array)),
                                  values, idx=idx)
        return self.array * factor

    def get(self) -> Any:
        """``array[idx]``."""
        from .shape_ops import getitem

        return getitem(self.array, self.idx)


class _IndexUpdateHelper:
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.array, idx)


def at(a: Any) -> _IndexUpdateHelper:
    """Functional index updates, for any array: ``at(x)[idx].set(v)`` (traced values also offer
    ``x.at[idx]``). Returns new arrays; the input is never mutated. Book §6.

    Example: ``at(np.zeros(3))[1].set(5.0)`` → ``array([0., 5., 0.])``.
    """
    return _IndexUpdateHelper(a)


