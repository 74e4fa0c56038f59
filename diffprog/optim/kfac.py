"""Kronecker-factored curvature (KFAC) for dense layers (book §17.3.2; notes §A.1.2).

For a dense layer ``z = W a`` (``W`` of shape ``(out, in)``) the per-example gradient is
``∇_W ℓ = g aᵀ`` with ``g = ∂ℓ/∂z``, so with row-major ``vec(W)`` the Fisher block is
``E[(g ⊗ a)(g ⊗ a)ᵀ] = E[g gᵀ ⊗ a aᵀ]``. KFAC approximates it by ``G ⊗ A`` with
``G = E[g gᵀ]`` and ``A = E[a aᵀ]`` (exact for a single example), and inverts it through the
factors: ``(G ⊗ A)⁻¹ vec(V) = vec(G⁻¹ V A⁻¹)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["kfac_factors", "kfac_block", "kfac_precondition"]


def kfac_factors(activations: Any, output_grads: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(A, G) = (mean_i a_i a_iᵀ, mean_i g_i g_iᵀ)`` from per-example layer inputs ``a_i``
    (rows of ``activations``, shape ``(N, in)``) and output gradients ``g_i`` (``(N, out)``),
    with ``g_i`` computed for labels sampled from the model (true Fisher). Book §17.3.2.

    Example::

        >>> A, G = kfac_factors(np.array([[1.0, 2.0]]), np.array([[3.0]]))
        >>> A.tolist(), G.tolist()
        ([[1.0, 2.0], [2.0, 4.0]], [[9.0]])
    """
    a = np.atleast_2d(np.asarray(activations, dtype=float))
    g = np.atleast_2d(np.asarray(output_grads, dtype=float))
    if a.shape[0] != g.shape[0]:
        raise ValueError(
            f"kfac_factors: activations ({a.shape[0]} rows) and output_grads ({g.shape[0]} "
            "rows) need one row per example"
        )
    return a.T @ a / a.shape[0], g.T @ g / g.shape[0]


def kfac_block(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The Kronecker approximation ``G ⊗ A`` of the Fisher block of ``W`` (row-major
    ``vec(W)``, ``W`` of shape ``(out, in)``). Book §17.3.2.

    Example::

        >>> kfac_block(np.eye(2), np.array([[2.0]])).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """
    return np.kron(np.asarray(G), np.asarray(A))


def kfac_precondition(A: np.ndarray, G: np.ndarray, V: np.ndarray,
                      damping: float = 0.0) -> np.ndarray:
    """``(G + √λ I)⁻¹ V (A + √λ I)⁻¹``: the KFAC-preconditioned gradient ``V`` of ``W`` (its
    Kronecker structure makes the inverse cheap), with Tikhonov damping ``λ ≥ 0`` split
    between the factors. Book §17.3.2.

    Example::

        >>> kfac_precondition(np.eye(2), 2 * np.eye(1), np.array([[2.0, 4.0]])).tolist()
        [[1.0, 2.0]]
    """
    if damping < 0:
        raise ValueError(f"kfac_precondition: damping must be >= 0, got {damping}")
    A, G, V = np.asarray(A), np.asarray(G), np.asarray(V)
    r = np.sqrt(damping)
    left = np.linalg.solve(G + r * np.eye(G.shape[0]), V)
    return np.linalg.solve((A + r * np.eye(A.shape[0])).T, left.T).T
