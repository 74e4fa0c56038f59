"""Newton's method: damped, regularized, line search, matrix-free CG or GMRES (Book §17.1;
OPT-55..59).

``w⁺ = w − γ(∇²L(w) + ηI)⁻¹∇L(w)``. ``linear_solver="dense"`` builds the Hessian
(``diffprog.hessian``); ``"cg"`` solves with conjugate gradient on Hessian-vector products only
(``diffprog.hvp``, :func:`diffprog.scipy.sparse.linalg.cg`; book §9.4, Alg 9.1) and ``"gmres"``
with restarted GMRES on the same products (indefinite Hessians), truncated with
the forcing term ``min(0.5, √‖∇L‖)·‖∇L‖`` (as scipy's Newton-CG). ``linesearch="armijo"``
backtracks from γ=1 with ``L(w−γd) ≤ L(w) − cγ⟨∇L, d⟩`` (two phases: damped, then γ = 1 and
quadratic convergence).

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, -1.0])
    >>> r = newton(lambda w: 0.5 * w @ (A @ w) - b @ w, np.zeros(2), maxiter=1)
    >>> np.allclose(r.solution, np.linalg.solve(A, b))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...scipy.sparse.linalg import cg, gmres
from .base import OptResult, Problem, check_maxiter, check_positive, new_history, record
from .line_search import _armijo_vg

__all__ = ["newton", "newton_direction"]


def newton_direction(H: Any, g: np.ndarray, reg: float = 0.0, hessian_fix: str | None = None,
                     delta: float = 1e-8) -> np.ndarray:
    """``d = (H + ηI)⁻¹ g`` for a dense H (Book (17.2); OPT-56/57).
    Book §17.1.3 (approximate direction).

    ``hessian_fix``: ``"abs"`` (``Q|Λ|Qᵀ``), ``"clip"`` (``Q max(Λ, δ) Qᵀ``) or None.

    Example::

        >>> import numpy as np
        >>> newton_direction(np.diag([2.0, -2.0]), np.array([2.0, 2.0]), hessian_fix="abs")
        array([1., 1.])
    """
    H = np.asarray(H, dtype=float)
    check_positive("reg", reg, allow_zero=True)
    if hessian_fix is not None:
        lam, Q = np.linalg.eigh(0.5 * (H + H.T))
        if hessian_fix == "abs":
            lam = np.abs(lam)
        elif hessian_fix == "clip":
            lam = np.maximum(lam, delta)
        else:
            raise ValueError(f"unknown hessian_fix {hessian_fix!r}; use 'abs' or 'clip'")
        return Q @ ((Q.T @ g) / (lam + reg))
    return np.linalg.solve(H + reg * np.eye(H.shape[0]), g)


def newton(fun: Callable, w0: Any, stepsize: float = 1.0, linesearch: str | None = None,
           reg: float = 0.0, linear_solver: str = "dense", hessian_fix: str | None = None,
           solver_tol: float | None = None, solver_maxiter: int | None = None,
           maxiter: int = 100, tol: float = 1e-8, args: tuple = (),
           callback: Callable | None = None) -> OptResult:
    """Newton's method (Book §17.1.1–17.1.5; 004 (A.1.22)–(A.1.28); OPT-55..59).

    ``w⁺ = w − γ(∇²L(w) + ηI)⁻¹∇L(w)`` with ``γ = stepsize`` (``< 1``: damped / "underdamped"
    Newton) or from ``linesearch="armijo"``; ``reg = η``; ``linear_solver`` ``"dense"``
    (Cholesky/LU on the materialized Hessian), ``"cg"`` (matrix-free; negative curvature
    stops CG early and falls back to the gradient) or ``"gmres"`` (matrix-free minimal
    residual, also for indefinite ``∇²L + ηI``; a non-descent direction falls back to the
    gradient); ``solver_tol`` defaults to the forcing term ``min(½, √‖∇L‖)``;
    ``hessian_fix`` ``"abs"``/``"clip"`` (dense only). Local quadratic convergence near a
    nondegenerate minimizer. Stops when ``‖∇L‖₂ ≤ tol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = newton(lambda w: dnp.sum(dnp.sqrt(1 + w ** 2)), np.array([1.5]),
        ...            linesearch="armijo", tol=1e-12)
        >>> bool(abs(r.solution[0]) < 1e-10)
        True
    """
    maxiter = check_maxiter(maxiter)
    gamma0 = check_positive("stepsize", stepsize)
    check_positive("reg", reg, allow_zero=True)
    check_positive("tol", tol, allow_zero=True)
    if linesearch not in (None, "armijo"):
        raise ValueError(f"unknown linesearch {linesearch!r}; use None or 'armijo'")
    if linear_solver not in ("dense", "cholesky", "cg", "gmres"):
        raise ValueError(f"newton: unknown linear_solver {linear_solver!r}; use 'dense', "
                         "'cholesky', 'cg' or 'gmres'")
    if hessian_fix is not None and linear_solver in ("cg", "gmres"):
        raise ValueError("hessian_fix needs a dense Hessian (linear_solver='dense')")
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    hist["stepsize"] = []
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    it, status = 0, "maxiter reached"
    while gn > tol and it < maxiter:
        if linear_solver in ("cg", "gmres"):
            xc = x

            def matvec(v, xc=xc):
                return prob.hvp(xc, v) + reg * v

            eta = min(0.5, math.sqrt(gn)) if solver_tol is None else solver_tol
            krylov = cg if linear_solver == "cg" else gmres
            d, info = krylov(matvec, g, tol=eta, maxiter=solver_maxiter or 20 * x.size)
            d = np.asarray(d, dtype=float)
            if not float(g @ d) > 0:
                d = g.copy()
        else:
            try:
                d = newton_direction(prob.hessian(x), g, reg, hessian_fix)
            except np.linalg.LinAlgError as exc:
                raise FloatingPointError(f"newton: singular Hessian at iteration {it}; use "
                                         "reg>0, hessian_fix or linesearch='armijo'") from exc
            if not np.all(np.isfinite(d)):
                raise FloatingPointError(f"newton: non-finite direction at iteration {it}")
        slope = float(g @ d)
        if linesearch == "armijo":
            if not slope > 0:
                raise ValueError("Newton direction is not a descent direction (Hessian not "
                                 "positive definite): use reg>0 or hessian_fix")
            gamma, f_new, g_new, _, ok = _armijo_vg(prob.value_and_grad, x, d, f, slope,
                                                     stepsize0=gamma0)
            if not ok:
                status = "line search failed"
                break
            x = x - gamma * d
            f, g = f_new, g_new
        else:
            gamma = gamma0
            x = x - gamma * d
            f, g = prob.value_and_grad(x)
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            raise FloatingPointError(f"newton diverged at iteration {it + 1}; use "
                                     "linesearch='armijo' or a smaller stepsize")
        gn = float(np.linalg.norm(g))
        it += 1
        hist["stepsize"].append(gamma)
        record(hist, x, f, gn)
        if callback is not None:
            callback(prob.unravel(x))
    conv = gn <= tol
    return prob.result(x, f, gn, it, conv, "converged" if conv else status, hist)
