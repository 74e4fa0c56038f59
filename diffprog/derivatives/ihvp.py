"""Inverse-Hessian-vector products ``v = ∇²f(w)⁻¹ u`` (Book §9.4).

Matrix-free: a Krylov solver (:func:`diffprog.scipy.sparse.linalg.cg` for positive-definite
Hessians, ``gmres`` / ``bicgstab`` for invertible indefinite ones) applied to HVPs; or the direct
route: materialize H with P HVPs and factorize it (O(P³)). ``damping`` λ solves
``(∇²f(w) + λI) v = u`` (the "additional regularization" of Newton methods).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from .. import numpy as dnp
from ..core.api import hvp
from ..core.pytree import ravel_pytree, tree_map
from ..scipy.sparse import linalg as _sla

__all__ = ["ihvp", "make_ihvp"]

_SOLVERS = ("cg", "gmres", "bicgstab", "direct")


def _check(solver: str, damping: float, fname: str) -> None:
    if solver not in _SOLVERS:
        raise ValueError(f"{fname}: solver must be one of {_SOLVERS}, got {solver!r}")
    if not np.isfinite(damping) or damping < 0:
        raise ValueError(f"{fname}: damping must be a finite number >= 0, got {damping!r}")


def ihvp(f: Callable, w: Any, u: Any, solver: str = "cg", maxiter: int | None = None,
         tol: float | None = None, damping: float = 0.0, method: str = "fwd-rev",
         x0: Any = None) -> Any:
    """Solve ``(∇²f(w) + damping·I) v = u`` for v (Book §9.4.1, Def 9.3; §9.4.2–9.4.3).

    ``solver``:

    - ``"cg"`` (default): conjugate gradient on HVPs (Alg 9.1), for a positive-definite Hessian
      (strictly convex f, or enough ``damping``). If CG meets ``⟨p, Hp⟩ ≤ 0`` a
      :class:`~diffprog.scipy.sparse.linalg.CGBreakdownError` is raised (never a garbage v).
    - ``"gmres"`` / ``"bicgstab"``: for any invertible (e.g. indefinite, saddle-point) Hessian.
    - ``"direct"``: materialize H with P HVPs (``H e_j``), then an LU solve: O(P³).

    ``tol``: relative residual tolerance ``‖Hv − u‖ ≤ tol·‖u‖`` (default 1e-12); ``maxiter``
    defaults to 10·P. ``method`` selects the HVP method (see :func:`diffprog.hvp`). ``w``, ``u``
    and the result are pytrees of the same structure. A ``RuntimeError`` is raised if an
    iterative solver does not converge.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: 0.5 * (2 * w[0] ** 2 + 4 * w[1] ** 2)     # H = diag(2, 4)
        >>> ihvp(f, np.zeros(2), np.array([2.0, 4.0]))
        array([1., 1.])
    """
    _check(solver, damping, "ihvp")
    tol = 1e-12 if tol is None else float(tol)
    damping = float(damping)

    def matvec(v):
        hv = hvp(f, w, v, method=method)
        if damping:
            hv = tree_map(lambda a, b: a + damping * b, hv, v)
        return hv

    if solver == "direct":
        u_flat, unravel = ravel_pytree(u)
        w_flat, unravel_w = ravel_pytree(w)
        P = int(np.size(np.asarray(w_flat)))
        cols = []
        for j in range(P):
            e = np.zeros(P)
            e[j] = 1.0
            cols.append(ravel_pytree(matvec(unravel_w(e)))[0])
        H = dnp.stack(cols, axis=1)
        try:
            return unravel(dnp.linalg.solve(H, u_flat))
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"ihvp: solver='direct' failed, the Hessian is singular ({exc}); "
                "add damping") from exc
    kwargs = {"tol": tol, "maxiter": maxiter, "x0": x0}
    if solver == "cg":
        v, info = _sla.cg(matvec, u, raise_on_breakdown=False, **kwargs)
        if info < 0:
            raise _sla.CGBreakdownError(
                "ihvp: CG broke down (<p, Hp> <= 0): the Hessian is not positive definite at w; "
                "use damping > 0, solver='gmres' or solver='bicgstab'")
    elif solver == "gmres":
        v, info = _sla.gmres(matvec, u, **kwargs)
    else:
        v, info = _sla.bicgstab(matvec, u, **kwargs)
    if info < 0:
        raise RuntimeError(f"ihvp: solver={solver!r} broke down (info={info}); try another "
                           "solver or damping > 0")
    if info > 0:
        raise RuntimeError(f"ihvp: solver={solver!r} did not converge in {info} iterations "
                           f"to tol={tol}; raise maxiter or tol, or add damping")
    return v


def make_ihvp(f: Callable, w: Any, solver: str = "cg", maxiter: int | None = None,
              tol: float | None = None, damping: float = 0.0,
              method: str = "fwd-rev") -> Callable:
    """The inverse Hessian ``u ↦ (∇²f(w) + damping·I)⁻¹ u`` as a linear operator
    (Book §9.4.1). With ``solver="direct"`` H is materialized and factorized once (P HVPs +
    O(P³)) and each application costs O(P²); iterative solvers run per application.

    Example::

        >>> import numpy as np
        >>> Hinv = make_ihvp(lambda w: (w ** 2).sum(), np.zeros(2), solver="direct")
        >>> Hinv(np.array([2.0, 4.0]))
        array([1., 2.])
    """
    _check(solver, damping, "make_ihvp")
    if solver != "direct":
        return lambda u: ihvp(f, w, u, solver=solver, maxiter=maxiter, tol=tol,
                              damping=damping, method=method)
    w_flat, unravel_w = ravel_pytree(w)
    P = int(np.size(np.asarray(w_flat)))
    cols = []
    for j in range(P):
        e = np.zeros(P)
        e[j] = 1.0
        cols.append(np.asarray(ravel_pytree(hvp(f, w, unravel_w(e), method=method))[0]))
    H = np.stack(cols, axis=1) + float(damping) * np.eye(P)
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            lu = scipy.linalg.lu_factor(H)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError) as exc:
            raise np.linalg.LinAlgError(
                f"make_ihvp: the Hessian is singular ({exc}); add damping") from exc

    def apply(u: Any) -> Any:
        u_flat, unravel = ravel_pytree(u)
        return unravel(scipy.linalg.lu_solve(lu, np.asarray(u_flat)))

    return apply
