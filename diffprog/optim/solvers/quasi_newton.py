"""Quasi-Newton solvers: BFGS and L-BFGS (Book §17.4.1–17.4.2; OPT-69, OPT-70).

Both maintain an approximation ``B ≈ ∇²L⁻¹`` (inverse Hessian) from the pairs
``s = w⁺ − w``, ``y = ∇L(w⁺) − ∇L(w)``, ``ρ = 1/⟨s, y⟩``, and step ``w⁺ = w − γ B∇L(w)`` with a
strong-Wolfe line search (which guarantees ``⟨s, y⟩ > 0``).

BFGS update (corrected, spec OPT-69 erratum — the book prints the second factor as
``(I − ρsyᵀ)``, which breaks symmetry and the secant equation)::

    B⁺ = (I − ρ s yᵀ) B (I − ρ y sᵀ) + ρ s sᵀ,      so that  B⁺ y = s.

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> rosen = lambda w: 100 * (w[1] - w[0] ** 2) ** 2 + (1 - w[0]) ** 2
    >>> r = lbfgs(rosen, np.array([-1.2, 1.0]), tol=1e-10)
    >>> np.allclose(r.solution, 1.0)
    True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import OptResult, Problem, check_maxiter, check_positive, new_history, record
from .line_search import _strong_wolfe

__all__ = ["bfgs", "lbfgs", "bfgs_update", "two_loop_recursion"]


def bfgs_update(B: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Corrected BFGS inverse-Hessian update ``B⁺ = (I − ρsyᵀ)B(I − ρysᵀ) + ρssᵀ`` (OPT-69).
    Book §17.4.1 (BFGS).

    Satisfies the secant equation ``B⁺y = s`` and keeps B symmetric positive definite when
    ``⟨s, y⟩ > 0`` (raises ``ValueError`` otherwise).

    Example::

        >>> import numpy as np
        >>> s, y = np.array([1.0, 0.0]), np.array([2.0, 1.0])
        >>> np.allclose(bfgs_update(np.eye(2), s, y) @ y, s)
        True
    """
    s = np.asarray(s, dtype=float)
    y = np.asarray(y, dtype=float)
    sy = float(s @ y)
    if not sy > 0:
        raise ValueError(f"BFGS update needs ⟨s, y⟩ > 0, got {sy}")
    rho = 1.0 / sy
    By = B @ y
    # expanded form of (I − ρsyᵀ)B(I − ρysᵀ) + ρssᵀ (O(P²))
    return (B - rho * (np.outer(s, By) + np.outer(By, s))
            + (rho * rho * float(y @ By) + rho) * np.outer(s, s))


def two_loop_recursion(g: np.ndarray, s_list: Any, y_list: Any,
                       gamma: float | None = None) -> np.ndarray:
    """L-BFGS two-loop recursion: ``B g`` for the BFGS matrix built from the stored pairs
    (oldest first) on ``B0 = γI`` (default ``γ = ⟨s,y⟩/⟨y,y⟩`` of the newest pair; OPT-70).
    Book §17.4.2 (L-BFGS).

    Example::

        >>> import numpy as np
        >>> s, y = np.array([1.0, 0.0]), np.array([2.0, 1.0])
        >>> np.allclose(two_loop_recursion(y, [s], [y], 1.0), s)
        True
    """
    q = np.array(g, dtype=float)
    m = len(s_list)
    if m == 0:
        return q * (1.0 if gamma is None else gamma)
    rhos = [1.0 / float(s_list[i] @ y_list[i]) for i in range(m)]
    alphas = [0.0] * m
    for i in range(m - 1, -1, -1):
        alphas[i] = rhos[i] * float(s_list[i] @ q)
        q -= alphas[i] * y_list[i]
    if gamma is None:
        gamma = float(s_list[-1] @ y_list[-1]) / float(y_list[-1] @ y_list[-1])
    r = gamma * q
    for i in range(m):
        b = rhos[i] * float(y_list[i] @ r)
        r += (alphas[i] - b) * s_list[i]
    return r


def _check_common(maxiter, tol, c1, c2):
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    if not (0 < c1 < c2 < 1):
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    return maxiter


def _qn_loop(prob: Problem, direction: Callable, update: Callable, reset: Callable,
             maxiter: int, tol: float, c1: float, c2: float, callback, hist) -> OptResult:
    x = prob.x0
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    it, status = 0, "maxiter reached"
    first = True
    while gn > tol and it < maxiter:
        p = direction(g)
        if not float(g @ p) < 0:  # lost positive definiteness numerically: restart
            reset()
            p = -g
            first = True
        step0 = min(1.0, 1.0 / float(np.linalg.norm(p))) if first else 1.0
        a, fn, gnew, _, ok = _strong_wolfe(prob.value_and_grad, x, p, f, g, step0, c1, c2)
        if not ok and (a == 0 or not fn < f):
            if not first:  # retry once along the steepest descent direction
                reset()
                first = True
                continue
            status = "line search failed"
            break
        first = False
        s = a * p
        y = gnew - g
        x = x + s
        df = f - fn
        f, g = fn, gnew
        gn = float(np.linalg.norm(g))
        it += 1
        if float(s @ y) > 1e-12 * float(np.linalg.norm(s)) * float(np.linalg.norm(y)):
            update(s, y)
        record(hist, x, f, gn)
        if callback is not None:
            callback(prob.unravel(x))
        if not math.isfinite(f):
            raise FloatingPointError(f"objective became non-finite at iteration {it}")
        if df <= 0 and float(np.linalg.norm(s)) <= 1e-16 * (1 + float(np.linalg.norm(x))):
            status = "no progress"
            break
    conv = gn <= tol
    return prob.result(x, f, gn, it, conv, "converged" if conv else status, hist)


def bfgs(fun: Callable, w0: Any, B0: np.ndarray | None = None, maxiter: int = 1000,
         tol: float = 1e-6, c1: float = 1e-4, c2: float = 0.9, scale_init: bool = True,
         args: tuple = (), callback: Callable | None = None) -> OptResult:
    """BFGS with a strong-Wolfe line search (Book §17.4.1; OPT-69).

    ``w⁺ = w − γ B∇L(w)``, then ``B⁺ = (I − ρsyᵀ)B(I − ρysᵀ) + ρssᵀ`` (corrected update, see
    :func:`bfgs_update`). ``B0`` defaults to I, rescaled to ``(⟨s,y⟩/⟨y,y⟩)I`` before the first
    update when ``scale_init`` (Nocedal & Wright (6.20)). O(P²) memory. Stops when
    ``‖∇L‖₂ ≤ tol``. ``history["inv_hessian"]`` holds B after every update and
    ``history["secant_residual"]`` ``‖B⁺y − s‖/‖s‖``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = bfgs(lambda w: dnp.sum((w - 1.0) ** 2) + w[0] * w[1], np.zeros(2), tol=1e-10)
        >>> np.allclose(r.solution, 2 / 3)
        True
    """
    maxiter = _check_common(maxiter, tol, c1, c2)
    prob = Problem(fun, w0, args)
    n = prob.x0.size
    Binit = np.eye(n) if B0 is None else np.array(B0, dtype=float)
    if Binit.shape != (n, n):
        raise ValueError(f"B0 must have shape {(n, n)}, got {Binit.shape}")
    state = {"B": Binit.copy(), "fresh": B0 is None and scale_init}
    hist = new_history()
    hist["inv_hessian"] = []
    hist["secant_residual"] = []

    def direction(g):
        return -(state["B"] @ g)

    def update(s, y):
        B = state["B"]
        if state["fresh"]:
            B = (float(s @ y) / float(y @ y)) * np.eye(n)
            state["fresh"] = False
        B = bfgs_update(B, s, y)
        state["B"] = B
        hist["inv_hessian"].append(B.copy())
        hist["secant_residual"].append(float(np.linalg.norm(B @ y - s) / np.linalg.norm(s)))

    def reset():
        state["B"] = Binit.copy()
        state["fresh"] = B0 is None and scale_init

    res = _qn_loop(prob, direction, update, reset, maxiter, tol, c1, c2, callback, hist)
    res.history["final_inv_hessian"] = state["B"]
    return res


def lbfgs(fun: Callable, w0: Any, memory: int = 10, maxiter: int = 1000, tol: float = 1e-6,
          c1: float = 1e-4, c2: float = 0.9, args: tuple = (),
          callback: Callable | None = None) -> OptResult:
    """Limited-memory BFGS (Book §17.4.2; OPT-70).

    Keeps the last ``memory`` pairs ``(s, y)`` and applies the BFGS inverse Hessian (with
    ``B0 = ⟨s,y⟩/⟨y,y⟩·I``) to ``∇L`` by the two-loop recursion (:func:`two_loop_recursion`);
    B is never materialized (O(mP) memory and time per step). Strong-Wolfe line search; the
    first step has length ``min(1, 1/‖∇L‖)``. Stops when ``‖∇L‖₂ ≤ tol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = lbfgs(lambda w: dnp.sum((w - 2.0) ** 2), np.zeros(5), tol=1e-10)
        >>> np.allclose(r.solution, 2.0)
        True
    """
    if int(memory) != memory or memory < 1:
        raise ValueError(f"memory must be a positive integer, got {memory!r}")
    maxiter = _check_common(maxiter, tol, c1, c2)
    prob = Problem(fun, w0, args)
    S: deque = deque(maxlen=int(memory))
    Y: deque = deque(maxlen=int(memory))
    hist = new_history()

    def direction(g):
        return -two_loop_recursion(g, S, Y)

    def update(s, y):
        S.append(s)
        Y.append(y)

    def reset():
        S.clear()
        Y.clear()

    return _qn_loop(prob, direction, update, reset, maxiter, tol, c1, c2, callback, hist)
