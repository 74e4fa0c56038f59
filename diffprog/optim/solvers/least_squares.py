"""Nonlinear least squares: Gauss–Newton and Levenberg–Marquardt (Book §17.2; OPT-63, OPT-64).

Minimize ``L(w) = ½‖r(w)‖²`` for a residual map ``r: ℝ^P → ℝ^M`` (``w`` any pytree). With
``J = ∂r(w)`` (by ``diffprog.jacfwd`` when P ≤ M, else ``jacrev``), ``∇L = Jᵀr`` and the
Gauss–Newton matrix ``JᵀJ``:

- Gauss–Newton: ``w⁺ = w − γ(JᵀJ + ηI)⁻¹Jᵀr`` (η = 0: least-squares solve of ``J d = r``).
- Levenberg–Marquardt: ``w⁺ = w − (JᵀJ + ηI)⁻¹Jᵀr`` with η adapted by the gain ratio
  (Nielsen's rule): accept and shrink η on a good step, reject and grow it otherwise. η → ∞
  gives ``(1/η)∇L`` (a GD step), η = 0 gives GN.

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> res = lambda w: dnp.stack([10 * (w[1] - w[0] ** 2), 1 - w[0]])
    >>> r = levenberg_marquardt(res, np.array([-1.2, 1.0]))
    >>> np.allclose(r.solution, 1.0, atol=1e-8)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...core.api import jacfwd, jacrev
from .base import OptResult, check_maxiter, check_positive, flatten, new_history, record

__all__ = ["gauss_newton", "levenberg_marquardt"]


class _LSProblem:
    def __init__(self, residual_fun: Callable, w0: Any, args: tuple) -> None:
        if not callable(residual_fun):
            raise TypeError("residual_fun must be callable")
        self.x0, self.unravel = flatten(w0)
        unravel = self.unravel
        self.r = lambda x: residual_fun(unravel(x), *args)
        self.nfev = 0
        self.njev = 0
        self._jac = None

    def residual(self, x):
        self.nfev += 1
        r = np.asarray(self.r(x), dtype=float).reshape(-1)
        return r

    def jac(self, x, m):
        self.njev += 1
        if self._jac is None:
            self._jac = jacfwd(self.r) if x.size <= m else jacrev(self.r)
        return np.asarray(self._jac(x), dtype=float).reshape(m, x.size)

    def result(self, x, r, gnorm, it, conv, status, hist) -> OptResult:
        return OptResult(solution=self.unravel(x), value=0.5 * float(r @ r), grad_norm=gnorm,
                         iterations=it, num_fun_evals=self.nfev + self.njev,
                         num_grad_evals=self.njev, converged=conv, status=status,
                         history=hist)


def gauss_newton(residual_fun: Callable, w0: Any, reg: float = 0.0, stepsize: float = 1.0,
                 maxiter: int = 100, tol: float = 1e-10, xtol: float = 1e-15,
                 args: tuple = ()) -> OptResult:
    """Gauss–Newton for ``½‖r(w)‖²`` (Book §17.2.1 (17.3), Kelley 1995; OPT-63).

    ``w⁺ = w − γ(JᵀJ + ηI)⁻¹Jᵀr`` (``reg = η``; η = 0 uses ``lstsq(J, r)``). A linear residual
    is solved in one iteration. Stops when ``‖Jᵀr‖₂ ≤ tol`` or ``‖Δw‖ ≤ xtol(‖w‖ + xtol)``.

    Example::

        >>> import numpy as np
        >>> A = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]); y = np.array([1.0, 2.0, 2.0])
        >>> r = gauss_newton(lambda w: A @ w - y, np.zeros(2), maxiter=1)
        >>> np.allclose(r.solution, np.linalg.lstsq(A, y, rcond=None)[0])
        True
    """
    maxiter = check_maxiter(maxiter)
    gamma = check_positive("stepsize", stepsize)
    check_positive("reg", reg, allow_zero=True)
    prob = _LSProblem(residual_fun, w0, args)
    x = prob.x0
    r = prob.residual(x)
    hist = new_history()
    it, status, gn = 0, "maxiter reached", math.inf
    while it < maxiter:
        J = prob.jac(x, r.size)
        g = J.T @ r
        gn = float(np.linalg.norm(g))
        record(hist, x, 0.5 * float(r @ r), gn)
        if gn <= tol:
            status = "converged"
            break
        if reg == 0:
            d = np.linalg.lstsq(J, r, rcond=None)[0]
        else:
            d = np.linalg.solve(J.T @ J + reg * np.eye(x.size), g)
        x = x - gamma * d
        r = prob.residual(x)
        if not np.all(np.isfinite(r)):
            raise FloatingPointError(f"gauss_newton: residual not finite at iteration {it + 1}")
        it += 1
        if float(np.linalg.norm(d)) <= xtol * (float(np.linalg.norm(x)) + xtol):
            status = "converged (step)"
            gn = float(np.linalg.norm(prob.jac(x, r.size).T @ r))
            break
    return prob.result(x, r, gn, it, status.startswith("converged"), status, hist)


def levenberg_marquardt(residual_fun: Callable, w0: Any, damping: float | None = None,
                        adaptive: bool = True, maxiter: int = 500, tol: float = 1e-10,
                        xtol: float = 1e-15, ftol: float = 0.0, tau: float = 1e-3,
                        args: tuple = ()) -> OptResult:
    """Levenberg–Marquardt (Book §17.2.1, Levenberg 1944, Marquardt 1963; OPT-64).

    ``w⁺ = w − (JᵀJ + ηI)⁻¹Jᵀr``. ``damping`` = initial η (default ``tau·max diag(JᵀJ)``);
    with ``adaptive`` η follows Nielsen's rule with gain ratio
    ``ρ = (L(w) − L(w⁺)) / (½dᵀ(ηd + Jᵀr))``: accepted steps (ρ > 0) multiply η by
    ``max(1/3, 1 − (2ρ−1)³)``, rejected ones by ν (ν doubles). Each iteration costs one
    residual evaluation (plus one Jacobian when the step is accepted). Stops when
    ``‖Jᵀr‖∞ ≤ tol``, ``‖Δw‖ ≤ xtol(‖w‖ + xtol)`` or the relative decrease ≤ ``ftol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> t = np.linspace(0, 1, 8); y = 2.0 * np.exp(-1.5 * t)
        >>> r = levenberg_marquardt(lambda w: w[0] * dnp.exp(w[1] * t) - y, np.array([1.0, 0.0]))
        >>> np.allclose(r.solution, [2.0, -1.5])
        True
    """
    maxiter = check_maxiter(maxiter)
    if damping is not None:
        check_positive("damping", damping, allow_zero=not adaptive)
    check_positive("tau", tau)
    prob = _LSProblem(residual_fun, w0, args)
    x = prob.x0
    r = prob.residual(x)
    F = 0.5 * float(r @ r)
    J = prob.jac(x, r.size)
    A = J.T @ J
    g = J.T @ r
    eta = tau * float(np.max(np.diag(A))) if damping is None else float(damping)
    nu = 2.0
    hist = new_history()
    hist["damping"] = []
    gn = float(np.max(np.abs(g))) if g.size else 0.0
    record(hist, x, F, float(np.linalg.norm(g)))
    it, status = 0, "maxiter reached"
    if gn <= tol:
        status = "converged"
    while status == "maxiter reached" and it < maxiter:
        it += 1
        try:
            d = np.linalg.solve(A + eta * np.eye(x.size), g)
        except np.linalg.LinAlgError:
            d = np.linalg.lstsq(A + eta * np.eye(x.size), g, rcond=None)[0]
        if float(np.linalg.norm(d)) <= xtol * (float(np.linalg.norm(x)) + xtol):
            status = "converged (step)"
            break
        x_new = x - d
        r_new = prob.residual(x_new)
        F_new = 0.5 * float(r_new @ r_new) if np.all(np.isfinite(r_new)) else math.inf
        pred = 0.5 * float(d @ (eta * d + g))
        rho = (F - F_new) / pred if pred > 0 else -1.0
        hist["damping"].append(eta)
        if rho > 0:
            dec = F - F_new
            x, r, F = x_new, r_new, F_new
            J = prob.jac(x, r.size)
            A = J.T @ J
            g = J.T @ r
            if adaptive:
                eta *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
            gn = float(np.max(np.abs(g)))
            record(hist, x, F, float(np.linalg.norm(g)))
            if gn <= tol or F == 0.0:
                status = "converged"
            elif ftol > 0 and dec <= ftol * F:
                status = "converged (ftol)"
        else:
            if adaptive:
                eta *= nu
                nu *= 2.0
            if not math.isfinite(eta) or eta > 1e300:
                status = "damping overflow"
                break
    return prob.result(x, r, float(np.linalg.norm(g)), it, status.startswith("converged"),
                       status, hist)
