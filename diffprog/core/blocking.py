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

Kernels use NumPy only. SciPy's BLAS wrappers (``scipy.linalg.blas``, e.g. ``?ger`` for rank-one
updates) call the OpenBLAS that SciPy bundles, whose thread pool is separate from NumPy's: with
the default threading the two pools spin against each other, and a training step measured 4.5×
slower.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["BLOCK_BYTES", "run_blocked"]

#: bytes of each operand per block: a handful of operands and temporaries fit a 1–2 MiB L2
BLOCK_BYTES = 1 << 18


def run_blocked(kernel: Callable, out: np.ndarray, arrays: tuple, *, row_ndim: int = 0,
                extra: tuple = ()) -> np.ndarray:
    """Run ``kernel(out_block, *array_blocks, *extra)`` over cache-sized blocks; return ``out``
    (book §8.3.3: the cost of a derivative includes its memory traffic).

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

