"""Cache-blocked evaluation of fused NumPy kernels (book §8.3.3: a derivative should cost a small
constant times the function, and memory traffic is part of that cost).

A fused primitive written with NumPy (a GELU, a masked softmax) is a sequence of ufunc passes,
each reading and writing its whole operand. On activations of a few megabytes every pass streams
through main memory or the last-level cache. Run on consecutive blocks of about
:data:`BLOCK_BYTES` per operand instead, the same passes stay in the core's private L2 cache:
measured on the tanh GELU of a 2048 × 512 float32 activation, the derivative takes 1.3 ms blocked
against 3.7 ms unblocked (PyTorch's fused C++ kernel: 1.8 ms).

:func:`run_blocked` applies ``kernel(out_block, *in_blocks, *extra)`` to blocks of the leading
axis of C-contiguous operands of one shape, keeping a trailing ``row`` shape whole (for kernels
that reduce over rows, such as a softmax); anything else (broadcasting operands, strided views) is
run as one block, so the kernel must also accept whole arrays.

:func:`add_outer` adds a rank-one matrix ``α c rᵀ`` to a block in place: subtracting a per-row
value or adding a per-column one. NumPy broadcasts such operands one short row at a time (about
three times the cost of a same-shape operation on a 512 × 128 block); BLAS ``ger`` does it in one
pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["BLOCK_BYTES", "run_blocked", "add_outer"]

#: bytes of each operand per block: a handful of operands and temporaries fit a 1–2 MiB L2
BLOCK_BYTES = 1 << 18


def run_blocked(kernel: Callable, out: np.ndarray, arrays: tuple, *, row_ndim: int = 0,
                extra: tuple = ()) -> np.ndarray:
    """Run ``kernel(out_block, *array_blocks, *extra)`` over cache-sized blocks; return ``out``.

    ``out`` and every entry of ``arrays`` are split into blocks along the flattened leading axes,
    keeping the last ``row_ndim`` axes whole; ``extra`` is passed unsplit (a mask broadcasting
    against one row, a constant). When the operands are not all C-contiguous arrays of ``out``'s
    shape, the kernel runs once on the whole arrays. The kernel writes each block of the result
    into ``out_block`` and may allocate block-sized temporaries.

    Example::

        >>> import numpy as np
        >>> x = np.arange(6.0)
        >>> run_blocked(lambda o, a: np.multiply(a, 2.0, out=o), np.empty(6), (x,))
        array([ 0.,  2.,  4.,  6.,  8., 10.])
    """
    shape = out.shape
    if (out.nbytes <= BLOCK_BYTES or not out.flags.c_contiguous
            or any(type(a) is not np.ndarray or a.shape != shape or not a.flags.c_contiguous
                   for a in arrays)):
        kernel(out, *arrays, *extra)
        return out
    row = shape[len(shape) - row_ndim:] if row_ndim else ()
    row_bytes = math.prod(row) * out.itemsize
    per = max(1, BLOCK_BYTES // max(row_bytes, 1))
    flat = [a.reshape((-1,) + row) for a in (out, *arrays)]
    n = flat[0].shape[0]
    for s in range(0, n, per):
        e = s + per
        kernel(*[f[s:e] for f in flat], *extra)
    return out


_GER: dict = {}


def _ger(dtype):
    """BLAS ``?ger`` for float32 / float64 (looked up once), else None."""
    if not _GER:
        from scipy.linalg import blas

        _GER.update({np.dtype(np.float32): blas.sger, np.dtype(np.float64): blas.dger})
    return _GER.get(dtype)


def add_outer(out: np.ndarray, col: np.ndarray, row: np.ndarray, alpha: float = 1.0) -> None:
    """``out += α · col ⊗ row`` in place, for a 2-D ``out (n, d)``, ``col (n,)``, ``row (d,)``.

    A C-contiguous float32 or float64 ``out`` is updated by BLAS ``ger`` (on its transpose, a
    Fortran-ordered ``d × n`` matrix); anything else by NumPy broadcasting.

    Example::

        >>> import numpy as np
        >>> a = np.zeros((2, 3))
        >>> add_outer(a, np.array([1.0, 2.0]), np.ones(3), -1.0)
        >>> a.tolist()
        [[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]]
    """
    ger = _ger(out.dtype)
    if (ger is not None and out.ndim == 2 and out.flags.c_contiguous and out.size
            and col.dtype == out.dtype and row.dtype == out.dtype):
        ger(alpha, row, col, a=out.T, overwrite_a=1)
        return
    out += alpha * np.multiply.outer(col, row)
