r"""Differentiable convex primitives used as examples of convex functions (book §3.4.2 and the
lecture notes' "Convex function" examples; convexity checks live in
:func:`diffprog.optim.check_convex` and :func:`diffprog.optim.estimate_strong_convexity`).

Gradients: ``(x log x)' = log x + 1`` (``−inf`` at 0); ``∇ sum_largest`` is the indicator of
the top-k coordinates (at ties, the coordinates that ``sort`` places last win: an element of
the Clarke subdifferential); ``∇λ_max(X) = qqᵀ`` for a simple top eigenvalue with unit
eigenvector ``q``; ``∇ log det X = X⁻¹``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.losses import _concrete
from diffprog.scipy.special import xlogy

__all__ = ["xlogx", "sum_largest", "lambda_max", "logdet"]

Array = Any


def xlogx(x: Array) -> Array:
    r"""``x log x`` with ``0 log 0 = 0`` (convex on ``R₊``; derivative ``log x + 1``, ``−inf`` at
    0; ``nan`` for ``x < 0``). Book §3.4.3 (entropy is ``−Σ x log x``).

    Example:
        >>> xlogx(np.array([0.0, 1.0, np.e])).round(12).tolist()
        [0.0, 0.0, 2.718281828459]
    """
    return xlogy(x, x)


def sum_largest(x: Array, k: int) -> Array:
    r"""Sum of the ``k`` largest coordinates over the last axis (convex; book §3.4.2 examples).

    Gradient: the indicator of the top-k coordinates (ties: see the module docstring).

    Example:
        >>> float(sum_largest(np.array([3.0, 1.0, 2.0]), 2))
        5.0
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"sum_largest: argument 'k' must be an int, got {type(k).__name__}")
    n = dnp.shape(x)[-1] if dnp.ndim(x) else 0
    if not 1 <= k <= n:
        raise ValueError(f"sum_largest: argument 'k' must be in [1, {n}], got {k}")
    return dnp.sum(dnp.sort(x, axis=-1)[..., n - int(k):], axis=-1)


def _square(fname: str, X: Array) -> None:
    if dnp.ndim(X) < 2 or dnp.shape(X)[-1] != dnp.shape(X)[-2]:
        raise ValueError(f"{fname}: argument 'X' must be a (..., n, n) matrix, got shape "
                         f"{tuple(dnp.shape(X))}")


def _sym(X: Array) -> Array:
    """``½(X + Xᵀ)``: the functions read a symmetric matrix, so gradients come out symmetric."""
    return 0.5 * (X + dnp.swapaxes(X, -1, -2))


def lambda_max(X: Array) -> Array:
    r"""Largest eigenvalue of a symmetric matrix (convex in ``X``; gradient ``qqᵀ``). Book §3.4.2.

    The symmetric part ``½(X + Xᵀ)`` is read (so finite differences along any direction agree
    with the symmetric gradient).

    Example:
        >>> float(lambda_max(np.diag([1.0, 3.0])))
        3.0
    """
    _square("lambda_max", X)
    return dnp.linalg.eigvalsh(_sym(X))[..., -1]


def logdet(X: Array) -> Array:
    r"""``log det X`` for symmetric positive definite ``X`` via Cholesky, ``2 Σ log L_ii``
    (concave; ``−log det`` is convex; gradient ``X⁻¹``). Book §3.3.6.

    Raises ``ValueError`` for a concrete ``X`` that is not positive definite.

    Example:
        >>> round(float(logdet(2.0 * np.eye(3))), 12)  # 3 log 2
        2.07944154168
    """
    _square("logdet", X)
    c = _concrete(X)
    if c is not None:
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise ValueError("logdet: argument 'X' must be symmetric positive definite") from None
    L = dnp.linalg.cholesky(_sym(X))
    return 2.0 * dnp.sum(dnp.log(dnp.diagonal(L, 0, -2, -1)), axis=-1)
