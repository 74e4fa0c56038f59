"""Penalized least squares: ridge, lasso / ISTA, pseudo-inverse, regularization paths.

Spec rows OPT-49, OPT-50, OPT-82, OPT-83, OPT-84 (003 §14.1; book §16.4 proximal gradient and
the LASSO example).

Convention (fixed once, see spec OPT-83 / O5): the ridge objective is
``½‖Ax − y‖² + (λ/2)‖x‖²`` whose minimizer is ``x_λ = (AᵀA + λI)⁻¹Aᵀy`` (the text prints
``λ‖x‖²`` but its formula corresponds to ``λ/2``). The lasso objective is
``½‖Ax − y‖² + λ‖x‖₁`` (sklearn's ``Lasso`` divides the data term by ``n``: ``alpha = λ/n``).

Example::

    >>> import numpy as np
    >>> A = np.eye(3); y = np.array([3.0, -0.5, 1.0])
    >>> np.allclose(lasso(A, y, 1.0), [2.0, 0.0, 0.0])
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import numpy as dnp
from .prox import prox_lasso, prox_non_negative_lasso
from .solvers import proximal_gradient
from .solvers.base import OptResult

__all__ = [
    "ridge",
    "pinv",
    "min_norm_solution",
    "ista",
    "lasso",
    "lasso_optimality_residual",
    "lasso_lambda_max",
    "penalized_least_squares",
    "regularization_path",
]

_RIDGE_METHODS = ("auto", "primal", "dual", "cholesky", "cg", "svd")


def _check_Ay(A: Any, y: Any, fname: str) -> tuple[int, int]:
    shA = np.shape(A)
    shy = np.shape(y)
    if len(shA) != 2:
        raise ValueError(f"{fname}: A must be a 2-D matrix, got shape {shA}")
    if len(shy) != 1 or shy[0] != shA[0]:
        raise ValueError(f"{fname}: y must be a vector of length A.shape[0] = {shA[0]}, "
                         f"got shape {shy}")
    return shA[0], shA[1]


def _check_lam(lam: Any, fname: str, positive: bool = False) -> None:
    try:
        lv = float(lam)
    except TypeError:  # a tracer (differentiating w.r.t. λ): no value checks
        return
    if not np.isfinite(lv) or lv < 0 or (positive and lv == 0):
        need = "> 0" if positive else "≥ 0"
        raise ValueError(f"{fname}: λ must be finite and {need}, got {lv}")


def ridge(A: Any, y: Any, lam: float, method: str = "auto", tol: float = 1e-12) -> Any:
    r"""Ridge regression ``argmin_x ½‖Ax − y‖² + (λ/2)‖x‖²`` (003 §14.1.2, Prop 45; OPT-83).

    Closed forms ``x_λ = (AᵀA + λI_p)⁻¹Aᵀy = Aᵀ(AAᵀ + λI_n)⁻¹y`` (the second one, the *dual*
    form, is cheaper for wide A; the text's ``A⁺(AA⁺+λI)⁻¹`` is a typo for ``Aᵀ(AAᵀ+λI)⁻¹``).
    Note the ``λ/2`` convention (sklearn ``Ridge(alpha)`` uses ``‖·‖² + α‖w‖²``, i.e. the same
    minimizer with ``α = λ``).

    ``method``: ``'primal'`` (p×p solve), ``'dual'`` (n×n solve), ``'auto'`` (primal if
    n ≥ p else dual), ``'cholesky'`` (Cholesky of the smaller Gram matrix), ``'cg'`` (conjugate
    gradient on ``(AᵀA+λI)x = Aᵀy``, matrix-free; λ > 0 or A of full column rank), ``'svd'``
    (``V diag(s/(s²+λ)) Uᵀy``, also valid for λ = 0 where it gives ``A⁺y``). Built from
    ``diffprog.numpy`` operations, so differentiable in A, y and λ (except ``'cg'``).

    Example::

        >>> import numpy as np
        >>> A = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]); y = np.array([1.0, 2.0, 3.0])
        >>> np.allclose(ridge(A, y, 1.0), [0.5, 0.8])
        True
    """
    n, p = _check_Ay(A, y, "ridge")
    _check_lam(lam, "ridge")
    if method not in _RIDGE_METHODS:
        raise ValueError(f"ridge: unknown method {method!r}; use one of {_RIDGE_METHODS}")
    At = dnp.transpose(A)
    if method == "svd":
        U, s, Vt = dnp.linalg.svd(A, full_matrices=False)
        return dnp.transpose(Vt) @ ((s / (s * s + lam)) * (dnp.transpose(U) @ y))
    if method == "auto":
        method = "primal" if n >= p else "dual"
    if method == "primal":
        return dnp.linalg.solve(At @ A + lam * np.eye(p), At @ y)
    if method == "dual":
        return At @ dnp.linalg.solve(A @ At + lam * np.eye(n), y)
    if method == "cholesky":
        if n >= p:
            L = dnp.linalg.cholesky(At @ A + lam * np.eye(p))
            z = dnp.linalg.solve(L, At @ y)
            return dnp.linalg.solve(dnp.transpose(L), z)
        L = dnp.linalg.cholesky(A @ At + lam * np.eye(n))
        z = dnp.linalg.solve(L, y)
        return At @ dnp.linalg.solve(dnp.transpose(L), z)
    # method == "cg"
    from ..scipy.sparse.linalg import cg

    An = np.asarray(A, dtype=float)
    yn = np.asarray(y, dtype=float)
    lam_f = float(lam)
    x, info = cg(lambda v: An.T @ (An @ v) + lam_f * v, An.T @ yn, tol=tol, maxiter=10 * p + 100)
    if info != 0:
        raise np.linalg.LinAlgError(f"ridge(method='cg'): CG did not converge (info={info}); "
                                    "is λ > 0 or A of full column rank?")
    return x


def pinv(A: Any, rcond: float | None = None) -> Any:
    r"""Moore–Penrose pseudo-inverse via the SVD (003 §14.1.2; OPT-84).

    ``A⁺ = V diag(1/s_i) Uᵀ`` over the singular values above ``rcond·s_max`` (default
    ``max(n,p)·eps``, as ``numpy.linalg.pinv``). Special cases: ``(AᵀA)⁻¹Aᵀ`` when ker A = {0},
    ``Aᵀ(AAᵀ)⁻¹`` when A is surjective, ``A⁻¹`` when A is square invertible. Satisfies the
    Moore–Penrose identities ``AA⁺A = A``, ``A⁺AA⁺ = A⁺``, ``(AA⁺)ᵀ = AA⁺``, ``(A⁺A)ᵀ = A⁺A``.

    Example::

        >>> import numpy as np
        >>> np.allclose(pinv(np.array([[2.0, 0.0], [0.0, 0.0]])), [[0.5, 0.0], [0.0, 0.0]])
        True
    """
    if np.ndim(A) != 2:
        raise ValueError(f"pinv: A must be a 2-D matrix, got shape {np.shape(A)}")
    if rcond is None:
        rcond = max(np.shape(A)) * np.finfo(float).eps
    return dnp.linalg.pinv(A, rcond=rcond)


def min_norm_solution(A: Any, y: Any, rcond: float | None = None) -> Any:
    r"""Minimum-norm least-squares solution ``x = A⁺y = argmin{‖x‖ : x ∈ argmin ‖Ax − y‖}``
    (003 §14.1.2; OPT-84). It is the λ → 0 limit of :func:`ridge` (003 Prop 44 with R = ‖·‖²),
    and equals ``numpy.linalg.lstsq(A, y)[0]`` also for rank-deficient A.

    Example::

        >>> import numpy as np
        >>> np.allclose(min_norm_solution(np.array([[1.0, 1.0]]), np.array([2.0])), [1.0, 1.0])
        True
    """
    _check_Ay(A, y, "min_norm_solution")
    return pinv(A, rcond) @ y


def _lsq(A: Any, y: Any) -> Callable:
    def f(x):
        r = A @ x - y
        return 0.5 * dnp.sum(r * r)
    return f


def ista(A: Any, y: Any, lam: float, tau: float | None = None, nonneg: bool = False,
         maxiter: int = 5000, tol: float = 1e-10, x0: Any = None,
         acceleration: bool = False) -> OptResult:
    r"""Iterative soft thresholding for the lasso (003 §14.1.4, Prop 47; 004 Ex. A.2/A.3;
    book §16.4.1; OPT-49).

    ``x⁺ = S_{λτ}(x − τAᵀ(Ax − y))`` with ``S_t(z) = sign(z) max(|z| − t, 0)`` (``nonneg=True``:
    ``max(z − λτ, 0)``, the non-negative lasso). ``τ`` defaults to ``1/‖A‖²_op``; then the
    surrogate ``f(x) − ½‖Ax−Ax'‖² + ‖x−x'‖²/(2τ)`` majorizes f and the objective decreases
    monotonically. Converges for ``τ < 2/‖A‖²_op`` (diverges beyond when the top singular
    direction is excited). ``acceleration=True`` gives FISTA. This is
    :func:`~diffprog.optim.solvers.proximal_gradient` with a fixed step and ``prox_lasso``.

    Returns an :class:`OptResult` (``history["value"]`` holds ``½‖Ax−y‖²`` per iterate; the full
    objective is in ``history["objective"]``).

    Example::

        >>> import numpy as np
        >>> r = ista(np.eye(2), np.array([3.0, 0.5]), 1.0)
        >>> np.allclose(r.solution, [2.0, 0.0])
        True
    """
    n, p = _check_Ay(A, y, "ista")
    _check_lam(lam, "ista")
    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    if tau is None:
        s_max = float(np.linalg.norm(A, 2))
        if s_max == 0.0:
            raise ValueError("ista: A is zero; the step 1/‖A‖² is undefined (pass tau)")
        tau = 1.0 / s_max ** 2
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"ista: tau must be finite and > 0, got {tau}")
    x0 = np.zeros(p) if x0 is None else np.asarray(x0, dtype=float)
    if x0.shape != (p,):
        raise ValueError(f"ista: x0 must have shape ({p},), got {x0.shape}")
    prox = prox_non_negative_lasso if nonneg else prox_lasso
    res = proximal_gradient(_lsq(A, y), x0, prox, float(lam), stepsize=float(tau),
                            maxiter=maxiter, tol=tol, acceleration=acceleration)
    l1 = float(lam)
    res.history["objective"] = [v + l1 * float(np.abs(x).sum())
                                for v, x in zip(res.history["value"], res.history["params"],
                                                strict=True)]
    return res


def lasso_lambda_max(A: Any, y: Any) -> float:
    r"""Smallest λ for which the lasso solution is 0: ``λ_max = ‖Aᵀy‖_∞`` (003 Prop 46; OPT-50).
    Book §16.4 (proximal gradient, lasso).

    Example: ``lasso_lambda_max(np.eye(2), np.array([3.0, -4.0]))`` → ``4.0``.
    """
    _check_Ay(A, y, "lasso_lambda_max")
    return float(np.max(np.abs(np.asarray(A, float).T @ np.asarray(y, float)), initial=0.0))


def lasso_optimality_residual(A: Any, y: Any, lam: float, x: Any,
                              nonneg: bool = False) -> float:
    r"""Violation of the lasso optimality condition ``Aᵀ(y − Ax) ∈ λ∂‖x‖₁`` (003 Prop 46;
    book §16.4.1; OPT-50), as an ∞-norm.

    With ``g = Aᵀ(y − Ax)``: for ``x_i ≠ 0`` the residual is ``|g_i − λ sign(x_i)|``; for
    ``x_i = 0`` it is ``max(|g_i| − λ, 0)``. ``nonneg=True`` checks the non-negative lasso
    (``x_i = 0`` needs only ``g_i ≤ λ``). Zero exactly at a minimizer.

    Example::

        >>> import numpy as np
        >>> lasso_optimality_residual(np.eye(2), np.array([3.0, 0.5]), 1.0, np.array([2.0, 0.0]))
        0.0
    """
    _check_Ay(A, y, "lasso_optimality_residual")
    A = np.asarray(A, dtype=float)
    x = np.asarray(x, dtype=float)
    g = A.T @ (np.asarray(y, dtype=float) - A @ x)
    nz = x != 0
    if nonneg and np.any(x < 0):
        return float("inf")
    r = np.where(nz, np.abs(g - lam * np.sign(x)),
                 np.maximum(g - lam, 0.0) if nonneg else np.maximum(np.abs(g) - lam, 0.0))
    return float(np.max(r, initial=0.0))


def _lasso_cd(A: np.ndarray, y: np.ndarray, lam: float, x0: np.ndarray, maxiter: int,
              tol: float) -> np.ndarray:
    x = x0.copy()
    col_sq = np.einsum("ij,ij->j", A, A)
    r = y - A @ x
    for _ in range(maxiter):
        delta = 0.0
        for j in range(A.shape[1]):
            if col_sq[j] == 0.0:
                continue
            old = x[j]
            z = old + A[:, j] @ r / col_sq[j]
            new = np.sign(z) * max(abs(z) - lam / col_sq[j], 0.0)
            if new != old:
                r -= A[:, j] * (new - old)
                x[j] = new
                delta = max(delta, abs(new - old))
        if delta <= tol:
            break
    return x


def lasso(A: Any, y: Any, lam: float, solver: str = "fista", maxiter: int = 10000,
          tol: float = 1e-12, x0: Any = None, nonneg: bool = False) -> np.ndarray:
    r"""Lasso ``argmin_x ½‖Ax − y‖² + λ‖x‖₁`` (003 §14.1.3, Prop 46; book §16.4.1; OPT-50).

    Convex, nonsmooth, sparse, possibly non-unique. Closed form only for orthogonal A
    (``A = I``: ``S_λ(y)``). For ``λ ≥ ‖Aᵀy‖_∞`` the solution is exactly 0. ``solver``:
    ``'ista'``, ``'fista'`` (both via :func:`ista`) or ``'cd'`` (cyclic coordinate descent with
    exact soft-thresholded coordinate updates, as sklearn). ``nonneg`` adds ``x ≥ 0`` (not with
    ``'cd'``). Check a solution with :func:`lasso_optimality_residual`.

    Example::

        >>> import numpy as np
        >>> np.allclose(lasso(np.eye(3), np.array([3.0, -2.0, 0.5]), 1.0), [2.0, -1.0, 0.0])
        True
    """
    n, p = _check_Ay(A, y, "lasso")
    _check_lam(lam, "lasso")
    if solver not in ("ista", "fista", "cd"):
        raise ValueError(f"lasso: unknown solver {solver!r}; use 'ista', 'fista' or 'cd'")
    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    if not nonneg and lam >= lasso_lambda_max(A, y):
        return np.zeros(p)
    if solver == "cd":
        if nonneg:
            raise ValueError("lasso: nonneg=True is not supported with solver='cd'")
        start = np.zeros(p) if x0 is None else np.asarray(x0, dtype=float)
        return _lasso_cd(A, y, float(lam), start, maxiter, tol)
    res = ista(A, y, lam, nonneg=nonneg, maxiter=maxiter, tol=tol, x0=x0,
               acceleration=(solver == "fista"))
    return np.asarray(res.solution)


def penalized_least_squares(A: Any, y: Any, lam: float, R: str | Callable = "l2",
                            maxiter: int = 10000, tol: float = 1e-10, x0: Any = None) -> Any:
    r"""Penalized least squares ``argmin_x ½‖Ax − y‖² + λR(x)`` (003 §14.1.1, Prop 44; OPT-82).

    ``R``: ``'l2'`` (``R = ½‖x‖²``: :func:`ridge`, closed form), ``'l1'`` (:func:`lasso`),
    ``'nonneg_l1'`` (non-negative lasso), or a smooth differentiable callable ``R(x) ≥ 0``
    (solved by :func:`~diffprog.optim.solvers.fista` with backtracking, no prox). For R ≥ 0
    coercive, as ``λ → 0`` the minimizers stay bounded and their accumulation points solve
    ``min_{Ax=y} R(x)`` (Prop 44): for ``'l2'`` the limit is :func:`min_norm_solution`.

    Example::

        >>> import numpy as np
        >>> x = penalized_least_squares(np.eye(2), np.array([2.0, 4.0]), 1.0, "l2")
        >>> np.allclose(x, [1.0, 2.0])
        True
    """
    n, p = _check_Ay(A, y, "penalized_least_squares")
    _check_lam(lam, "penalized_least_squares")
    if R == "l2":
        return ridge(A, y, lam)
    if R == "l1":
        return lasso(A, y, lam, maxiter=maxiter, tol=tol, x0=x0)
    if R == "nonneg_l1":
        return lasso(A, y, lam, maxiter=maxiter, tol=tol, x0=x0, nonneg=True)
    if not callable(R):
        raise ValueError(f"penalized_least_squares: R must be 'l2', 'l1', 'nonneg_l1' or a "
                         f"callable, got {R!r}")
    f_ls = _lsq(A, y)

    def obj(x):
        return f_ls(x) + lam * R(x)

    start = np.zeros(p) if x0 is None else np.asarray(x0, dtype=float)
    return proximal_gradient(obj, start, None, None, stepsize=None, maxiter=maxiter, tol=tol,
                             acceleration=True).solution


def regularization_path(A: Any, y: Any, lams: Sequence[float] | np.ndarray,
                        penalty: str = "l1", warm_start: bool = True, solver: str = "cd",
                        maxiter: int = 10000, tol: float = 1e-12) -> np.ndarray:
    r"""Solutions of penalized least squares along a sequence of λ (003 §14.1.1; OPT-82).

    Returns an array of shape ``(len(lams), p)``, row k the minimizer for ``lams[k]``.
    ``penalty='l1'``: the lasso path (piecewise linear in λ; coefficients enter as λ decreases
    below ``‖Aᵀy‖_∞``), solved with ``solver`` and warm starts from the previous λ (sort
    ``lams`` decreasingly for the warm starts to help). ``penalty='l2'``: the ridge path
    (closed form, via one SVD), converging to ``A⁺y`` as λ → 0.

    Example::

        >>> import numpy as np
        >>> P = regularization_path(np.eye(2), np.array([3.0, 1.0]), [4.0, 2.0, 0.0])
        >>> P.tolist()
        [[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]]
    """
    n, p = _check_Ay(A, y, "regularization_path")
    lams = np.asarray(lams, dtype=float).reshape(-1)
    if np.any(~np.isfinite(lams)) or np.any(lams < 0):
        raise ValueError("regularization_path: every λ must be finite and ≥ 0")
    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    out = np.zeros((lams.size, p))
    if penalty == "l2":
        U, s, Vt = np.linalg.svd(A, full_matrices=False)
        Uty = U.T @ y
        for k, lam in enumerate(lams):
            d = np.divide(s, s * s + lam, out=np.zeros_like(s), where=(s * s + lam) > 0)
            out[k] = Vt.T @ (d * Uty)
        return out
    if penalty != "l1":
        raise ValueError(f"regularization_path: penalty must be 'l1' or 'l2', got {penalty!r}")
    x = np.zeros(p)
    for k, lam in enumerate(lams):
        x = lasso(A, y, lam, solver=solver, maxiter=maxiter, tol=tol,
                  x0=x if warm_start else None)
        out[k] = x
    return out
