"""``diffprog.scipy.sparse``: matrix-free linear algebra (book §9.4).

Only :mod:`diffprog.scipy.sparse.linalg` is provided: the Krylov solvers ``cg``, ``gmres`` and
``bicgstab`` that take a matrix-vector product and never form the matrix::

    >>> import numpy as np
    >>> from diffprog.scipy.sparse.linalg import cg
    >>> x, info = cg(np.diag([2.0, 4.0]), np.array([2.0, 4.0]))
    >>> np.round(x, 12), info
    (array([1., 1.]), 0)
"""

from __future__ import annotations

from . import linalg

__all__ = ["linalg"]
