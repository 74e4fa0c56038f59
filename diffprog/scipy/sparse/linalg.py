"""Matrix-free Krylov solvers: ``cg``, ``gmres``, ``bicgstab`` (book §9.4.2).

Each solver takes the operator either as a square matrix or as a function ``matvec(x) -> A x``
(never forming A), a right-hand side ``b`` that is a flat array or any pytree of arrays, and
returns ``(x, info)`` like :mod:`scipy.sparse.linalg`:

- ``info == 0``: converged, ``‖b − A x‖₂ ≤ max(tol·‖b‖₂, atol)``;
- ``info > 0``: not converged after ``info`` iterations (``x`` is the last iterate);
- ``info < 0``: breakdown (CG: a direction with ``⟨p, A p⟩ ≤ 0``, so A is not positive definite;
  BiCGSTAB: a zero inner product). ``x`` is then the last *valid* iterate, never garbage.

**Tolerance semantics.** Algorithm 9.1 of the book stops when the *squared* residual norm
``⟨r, r⟩ ≤ ε``. Here the test is on the (unsquared) Euclidean norm, relative to ``‖b‖`` as in
SciPy: ``‖r‖₂ ≤ max(tol·‖b‖₂, atol)``. Alg. 9.1's ``ε`` corresponds to ``tol=0, atol=sqrt(ε)``.

The solvers are written with :mod:`diffprog.numpy` operations, so they can be differentiated by
unrolling (the stopping tests read concrete values, so the number of iterations is fixed by the
primal computation). For the same reason they cannot be traced by :func:`diffprog.jit` (a
``TypeError`` explains that Python control flow met a traced value); call them outside ``jit``.
They are real-valued (float) solvers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import numpy as dnp
from ...core.primitive import Tracer
from ...core.pytree import ravel_pytree

__all__ = ["cg", "gmres", "bicgstab", "CGBreakdownError"]


class CGBreakdownError(ArithmeticError):
    """Raised by ``cg(..., raise_on_breakdown=True)`` when ``⟨p, A p⟩ ≤ 0`` (book §9.4.2).

    Example::

        >>> issubclass(CGBreakdownError, ArithmeticError)
        True
    """


def _concrete(x) -> np.ndarray:
    while isinstance(x, Tracer):
        x = x.primal_value
    return np.asarray(x)


def _setup(fname: str, A: Any, b: Any, x0: Any, maxiter: int | None, tol: float, atol: float):
    """Flatten b (a pytree), wrap A as a flat matvec, check shapes."""
    b_flat, unravel = ravel_pytree(b)
    n = int(np.size(_concrete(b_flat)))
    if callable(A):
        def matvec(x):
            return ravel_pytree(A(unravel(x)))[0]
    else:
        shape = np.shape(_concrete(A) if isinstance(A, Tracer) else np.asarray(A))
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"{fname}: the matrix argument A must be square (n, n), got shape {shape}; "
                "pass a square matrix or a matvec function"
            )
        if shape[0] != n:
            raise ValueError(
                f"{fname}: A has shape {shape} but b has {n} entries; they must agree"
            )
        if not isinstance(A, Tracer):
            A = np.asarray(A, dtype=float)

        def matvec(x):
            return dnp.matmul(A, x)
    if x0 is None:
        x = np.zeros(n, dtype=np.result_type(_concrete(b_flat).dtype, float))
    else:
        x = ravel_pytree(x0)[0]
        if int(np.size(_concrete(x))) != n:
            raise ValueError(f"{fname}: x0 has {np.size(_concrete(x))} entries, b has {n}")
    if maxiter is not None and int(maxiter) < 0:
        raise ValueError(f"{fname}: maxiter must be >= 0, got {maxiter}")
    if tol < 0 or atol < 0:
        raise ValueError(f"{fname}: tol and atol must be >= 0, got tol={tol}, atol={atol}")
    bnorm = math.sqrt(float(np.vdot(_concrete(b_flat), _concrete(b_flat))))
    thresh = max(tol * bnorm, atol)
    return matvec, b_flat, x, unravel, n, thresh


def _norm(r) -> float:
    rc = _concrete(r)
    return math.sqrt(float(np.vdot(rc, rc)))


def cg(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-10, atol: float = 0.0,
       maxiter: int | None = None, callback: Callable | None = None,
       raise_on_breakdown: bool = False) -> tuple[Any, int]:
    """Conjugate gradient for ``A x = b`` with A symmetric positive definite (book §9.4.2, Alg 9.1).

    ``r₀ = b − A x₀``, ``p₀ = r₀``; each step ``α = ⟨r,r⟩/⟨p,Ap⟩``, ``x += αp``, ``r −= αAp``,
    ``β = ⟨r_new,r_new⟩/⟨r,r⟩``, ``p = r + βp``. Exact within n steps in exact arithmetic, and in
    at most k steps if A has k distinct eigenvalues.

    ``A``: square matrix or function ``x ↦ A x`` (on the pytree structure of ``b``). Stops when
    ``‖r‖₂ ≤ max(tol·‖b‖₂, atol)`` (the book's Alg 9.1 tests the *squared* norm ``⟨r,r⟩ ≤ ε``;
    use ``tol=0, atol=sqrt(ε)`` for that). ``maxiter`` defaults to ``10·n`` (ill-conditioned
    systems may need more than n). ``callback(xk)`` is called after each iteration.

    Returns ``(x, info)``: ``info = 0`` converged, ``> 0`` iterations done without converging,
    ``-1`` breakdown: ``⟨p, Ap⟩ ≤ 0`` (A not positive definite). Then ``x`` is the last valid
    iterate; with ``raise_on_breakdown=True`` a :class:`CGBreakdownError` is raised instead.

    Example::

        >>> import numpy as np
        >>> x, info = cg(np.array([[4.0, 1.0], [1.0, 3.0]]), np.array([1.0, 2.0]))
        >>> np.allclose(x, [1 / 11, 7 / 11]), info
        (True, 0)
    """
    if not callable(A):
        Ac = _concrete(A) if isinstance(A, Tracer) else np.asarray(A)
        if Ac.ndim == 2 and Ac.shape[0] == Ac.shape[1] and not np.allclose(
                Ac, Ac.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(Ac).max(initial=0)))):
            raise ValueError("cg: the matrix argument A must be symmetric; use gmres or "
                             "bicgstab for non-symmetric systems")
    matvec, b, x, unravel, n, thresh = _setup("cg", A, b, x0, maxiter, tol, atol)
    maxiter = 10 * n if maxiter is None else int(maxiter)
    r = b if x0 is None else b - matvec(x)
    rr = dnp.vdot(r, r)
    if math.sqrt(float(rr)) <= thresh:
        return unravel(x), 0
    p = r
    info = maxiter
    for k in range(maxiter):
        Ap = matvec(p)
        pAp = dnp.vdot(p, Ap)
        if not float(pAp) > 0.0:  # also catches NaN
            if raise_on_breakdown:
                raise CGBreakdownError(
                    f"cg: breakdown at iteration {k}: <p, A p> = {float(pAp):.3e} <= 0, so the "
                    "operator A is not positive definite; add damping or use gmres/bicgstab"
                )
            info = -1
            break
        alpha = rr / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = dnp.vdot(r, r)
        if callback is not None:
            callback(unravel(x))
        if math.sqrt(float(rr_new)) <= thresh:
            info = 0
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return unravel(x), info


def gmres(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-10, atol: float = 0.0,
          restart: int | None = None, maxiter: int | None = None,
          callback: Callable | None = None) -> tuple[Any, int]:
    """Restarted GMRES for ``A x = b`` with any invertible A, e.g. an indefinite Hessian
    (book §9.4.2).

    Minimal-residual Krylov method: Arnoldi (modified Gram-Schmidt) builds an orthonormal basis
    ``V_k`` of the Krylov space and the Hessenberg matrix ``H_k``; Givens rotations solve
    ``min_y ‖β e₁ − H_k y‖`` and ``x = x₀ + V_k y``. Restarts every ``restart`` (default
    ``min(n, 50)``) steps. ``maxiter`` counts *matvecs in Arnoldi steps* (default ``10·n``),
    not restart cycles as in SciPy. Stopping test: ``‖b − A x‖₂ ≤ max(tol·‖b‖₂, atol)``
    checked on the true residual. ``callback(xk)`` is called after each restart cycle.

    Returns ``(x, info)`` with ``info = 0`` on convergence, else the number of iterations done.

    Example::

        >>> import numpy as np
        >>> x, info = gmres(np.array([[1.0, 2.0], [2.0, -1.0]]), np.array([3.0, 1.0]))  # indefinite
        >>> np.round(x, 10), info
        (array([1., 1.]), 0)
    """
    matvec, b, x, unravel, n, thresh = _setup("gmres", A, b, x0, maxiter, tol, atol)
    maxiter = 10 * n if maxiter is None else int(maxiter)
    restart = min(n, 50) if restart is None else int(restart)
    if restart < 1:
        raise ValueError(f"gmres: restart must be >= 1, got {restart}")
    total = 0
    while True:
        r = b - matvec(x) if (x0 is not None or total > 0) else b
        beta = dnp.sqrt(dnp.vdot(r, r))
        if float(beta) <= thresh:
            return unravel(x), 0
        if total >= maxiter:
            return unravel(x), total
        V = [r / beta]
        R: list[list] = []  # columns of the rotated (upper-triangular) Hessenberg matrix
        cs: list = []
        sn: list = []
        g: list = [beta]
        for j in range(restart):
            w = matvec(V[j])
            total += 1
            h = []
            for i in range(j + 1):
                hij = dnp.vdot(V[i], w)
                w = w - hij * V[i]
                h.append(hij)
            hnext = dnp.sqrt(dnp.vdot(w, w))
            for i in range(j):
                t = cs[i] * h[i] + sn[i] * h[i + 1]
                h[i + 1] = -sn[i] * h[i] + cs[i] * h[i + 1]
                h[i] = t
            d = dnp.sqrt(h[j] * h[j] + hnext * hnext)
            if float(d) == 0.0:  # A V[j] = 0: A is singular on the Krylov space
                break
            c, s = h[j] / d, hnext / d
            h[j] = d
            cs.append(c)
            sn.append(s)
            g.append(-s * g[j])
            g[j] = c * g[j]
            R.append(h)
            happy = float(hnext) <= 1e-14 * max(1.0, float(d))
            if abs(float(g[j + 1])) <= thresh or happy or total >= maxiter:
                break
            V.append(w / hnext)
        k = len(R)
        if k == 0:
            return unravel(x), -1
        y: list = [None] * k
        for i in reversed(range(k)):
            acc = g[i]
            for m in range(i + 1, k):
                acc = acc - R[m][i] * y[m]
            y[i] = acc / R[i][i]
        for i in range(k):
            x = x + y[i] * V[i]
        if callback is not None:
            callback(unravel(x))


def bicgstab(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-10, atol: float = 0.0,
             maxiter: int | None = None, callback: Callable | None = None) -> tuple[Any, int]:
    """BiCGSTAB (van der Vorst 1992) for ``A x = b`` with a general invertible A (book §9.4.2,
    an alternative to GMRES with constant memory).

    Two matvecs per iteration; stops when ``‖b − A x‖₂ ≤ max(tol·‖b‖₂, atol)``; ``maxiter``
    defaults to ``10·n``. Returns ``(x, info)``: ``0`` converged, ``> 0`` iterations done without
    converging, ``-1`` breakdown (``⟨r̂, r⟩ = 0`` or ``⟨r̂, Ap⟩ = 0`` or ``ω = 0``), in which case
    ``x`` is the last valid iterate.

    Example::

        >>> import numpy as np
        >>> x, info = bicgstab(np.array([[3.0, 1.0], [-1.0, 2.0]]), np.array([4.0, 1.0]))
        >>> np.round(x, 10), info
        (array([1., 1.]), 0)
    """
    matvec, b, x, unravel, n, thresh = _setup("bicgstab", A, b, x0, maxiter, tol, atol)
    maxiter = 10 * n if maxiter is None else int(maxiter)
    r = b if x0 is None else b - matvec(x)
    if _norm(r) <= thresh:
        return unravel(x), 0
    rhat = r
    rho_prev = alpha = omega = None
    p = v = None

    def bad(z) -> bool:
        zc = float(z)
        return not math.isfinite(zc) or zc == 0.0

    for k in range(maxiter):
        rho = dnp.vdot(rhat, r)
        if bad(rho):
            return unravel(x), -1
        if k == 0:
            p = r
        else:
            p = r + ((rho / rho_prev) * (alpha / omega)) * (p - omega * v)
        v = matvec(p)
        den = dnp.vdot(rhat, v)
        if bad(den):
            return unravel(x), -1
        alpha = rho / den
        s = r - alpha * v
        if _norm(s) <= thresh:
            x = x + alpha * p
            if callback is not None:
                callback(unravel(x))
            return unravel(x), 0
        t = matvec(s)
        tt = dnp.vdot(t, t)
        if bad(tt):
            return unravel(x), -1
        omega = dnp.vdot(t, s) / tt
        if bad(omega):
            return unravel(x), -1
        x = x + alpha * p + omega * s
        r = s - omega * t
        if callback is not None:
            callback(unravel(x))
        if _norm(r) <= thresh:
            return unravel(x), 0
        rho_prev = rho
    return unravel(x), maxiter
