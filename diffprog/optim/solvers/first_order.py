"""First-order solvers: GD, heavy ball, Nesterov, projected / proximal gradient, FISTA,
proximal point (Book §15.3, §16.1, §16.3, §16.4; notes 003 §14.1.4, 004 §A.1.1, A.1.3).

All solvers take ``fun(w, *args) → scalar`` (``w`` any pytree) and return an
:class:`~diffprog.optim.solvers.base.OptResult`. Projections follow the JAXopt convention
``projection(x, hyperparams)`` and proximal operators ``prox(x, hyperparams, scaling)`` =
``prox_{scaling·Ω}(x)``; both act on the (flattened) parameter vector.

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> res = gradient_descent(lambda w: dnp.sum((w - 3.0) ** 2), np.zeros(2), stepsize=0.25)
    >>> np.allclose(res.solution, 3.0)
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import (
    OptResult,
    Problem,
    check_finite,
    check_maxiter,
    check_positive,
    new_history,
    record,
)
from .line_search import _armijo_vg, _strong_wolfe

__all__ = [
    "gradient_descent",
    "heavy_ball",
    "nesterov_agd",
    "accelerated_gradient",
    "projected_gradient",
    "proximal_gradient",
    "fista",
    "proximal_point",
]


def _schedule(stepsize: Any) -> Callable[[int], float] | None:
    if callable(stepsize):
        return stepsize
    if isinstance(stepsize, (int, float, np.floating)):
        g = check_positive("stepsize", stepsize)
        return lambda t: g
    return None


def gradient_descent(fun: Callable, w0: Any, stepsize: Any = "armijo", maxiter: int = 1000,
                     tol: float = 1e-6, smoothness: float | None = None, args: tuple = (),
                     callback: Callable | None = None, stepsize0: float = 1.0) -> OptResult:
    """Gradient descent ``w⁺ = w − γ_t ∇L(w)`` (Book §16.1, (16.1)–(16.2); OPT-10, OPT-23).

    ``stepsize``: a positive float (constant γ), a schedule ``t ↦ γ_t`` (t = 0, 1, …),
    ``"armijo"`` (backtracking from ``stepsize0``, OPT-18), ``"wolfe"`` (strong Wolfe, OPT-19),
    ``"exact"`` (closed form for quadratics, OPT-20) or ``None`` with ``smoothness=β`` (γ = 1/β).
    A warning is issued if the constant step is ≥ 2/β. Stops when ``‖∇L(w)‖₂ ≤ tol``.
    Rates (γ ≤ 1/β): convex ``L(w_T) − L* ≤ ‖w0−w*‖²/(2γT)``; μ-strongly convex
    ``(1−γμ)^T`` linear.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2
        >>> res = gradient_descent(f, np.ones(2), stepsize=1.0, maxiter=175, tol=0.0)
        >>> bool(np.linalg.norm(res.solution) <= 1e-8)
        True
    """
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    if stepsize is None:
        if smoothness is None:
            raise ValueError("stepsize=None needs smoothness=β (then γ = 1/β)")
        stepsize = 1.0 / check_positive("smoothness", smoothness)
    sched = _schedule(stepsize)
    if sched is None and stepsize not in ("armijo", "wolfe", "exact"):
        raise ValueError(f"unknown stepsize rule {stepsize!r}; use a float, a schedule, "
                         "'armijo', 'wolfe' or 'exact'")
    if sched is not None and smoothness is not None and not callable(stepsize):
        if float(stepsize) >= 2.0 / smoothness:
            warnings.warn(f"stepsize {stepsize} ≥ 2/β = {2.0 / smoothness}: GD may diverge",
                          RuntimeWarning, stacklevel=2)
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    hist["stepsize"] = []
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    converged, status, t = gn <= tol, "converged", 0
    gamma_prev = stepsize0
    while not converged and t < maxiter:
        if sched is not None:
            gamma = float(sched(t))
            if not gamma > 0:
                raise ValueError(f"schedule returned a non-positive stepsize {gamma} at t={t}")
            x = x - gamma * g
            f, g = prob.value_and_grad(x)
        elif stepsize == "armijo":
            g_old = g
            gamma, f_new, g_new, _, ok = _armijo_vg(
                prob.value_and_grad, x, g, f, gn * gn,
                stepsize0=min(stepsize0, 4 * gamma_prev) if t else stepsize0)
            if not ok:
                status = "line search failed"
                break
            gamma_prev = gamma
            x = x - gamma * g_old
            f, g = f_new, g_new
        elif stepsize == "wolfe":
            g_old, f_old = g, f
            gamma, f, g, _, ok = _strong_wolfe(prob.value_and_grad, x, -g_old, f, g_old,
                                               stepsize0=gamma_prev)
            if not ok and not gamma > 0:
                status = "line search failed"
                f, g = f_old, g_old
                break
            gamma_prev = gamma
            x = x - gamma * g_old
        else:  # exact, quadratic closed form
            Hg = prob.hvp(x, g)
            curv = float(g @ Hg)
            if not curv > 0:
                raise ValueError("exact line search needs ⟨g, ∇²L g⟩ > 0 (convex quadratic)")
            gamma = gn * gn / curv
            x = x - gamma * g
            f, g = prob.value_and_grad(x)
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            raise FloatingPointError(f"gradient_descent diverged at iteration {t + 1} "
                                     f"(value {f}); reduce the stepsize")
        t += 1
        gn = float(np.linalg.norm(g))
        record(hist, x, f, gn)
        hist["stepsize"].append(gamma)
        if callback is not None:
            callback(prob.unravel(x))
        converged = gn <= tol
    if not converged and status == "converged":
        status = "maxiter reached"
    return prob.result(x, f, gn, t, converged, status, hist)


def heavy_ball(fun: Callable, w0: Any, stepsize: float, momentum: float, maxiter: int = 1000,
               tol: float = 1e-6, args: tuple = ()) -> OptResult:
    """Polyak's heavy ball (Book §16.1.3; OPT-24): ``v⁺ = νv − γ∇L(w)``, ``w⁺ = w + v⁺``.

    ``momentum=0`` gives GD. Optimal on quadratics with ``γ = 4/(√β+√μ)²``,
    ``ν = ((√κ−1)/(√κ+1))²``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = heavy_ball(lambda w: dnp.sum(w ** 2), np.ones(2), 0.25, 0.1, tol=1e-10)
        >>> bool(r.converged)
        True
    """
    gamma = check_positive("stepsize", stepsize)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    maxiter = check_maxiter(maxiter)
    prob = Problem(fun, w0, args)
    x = prob.x0
    v = np.zeros_like(x)
    hist = new_history()
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    t = 0
    while gn > tol and t < maxiter:
        v = momentum * v - gamma * g
        x = x + v
        f, g = prob.value_and_grad(x)
        check_finite("heavy_ball objective", f)
        gn = float(np.linalg.norm(g))
        t += 1
        record(hist, x, f, gn)
    return prob.result(x, f, gn, t, gn <= tol, "converged" if gn <= tol else "maxiter reached",
                       hist)


def nesterov_agd(fun: Callable, w0: Any, stepsize: float, maxiter: int = 1000,
                 tol: float = 1e-6, strongly_convex: bool = False,
                 mu: float | None = None, args: tuple = ()) -> OptResult:
    """Nesterov's accelerated gradient (Book §16.1.3; OPT-25).

    Iterates for t = 1, 2, …: ``y = w_{t−1} + (t−2)/(t+1)·(w_{t−1} − w_{t−2})``,
    ``w_t = y − γ∇L(y)`` (with ``w_{−1} = w_0``). For convex β-smooth L and γ = 1/β:
    ``L(w_t) − L* ≤ 2β‖w0−w*‖²/(t+1)²`` (O(1/t²) vs GD's O(1/t)). With
    ``strongly_convex=True`` and ``mu`` the momentum is constant ``(√κ−1)/(√κ+1)``,
    ``κ = 1/(γμ)``. ``history["value"]`` holds ``L(w_t)`` (one extra evaluation per step).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = nesterov_agd(lambda w: dnp.sum(w ** 2), np.ones(3), 0.5, tol=1e-10)
        >>> bool(r.converged)
        True
    """
    gamma = check_positive("stepsize", stepsize)
    maxiter = check_maxiter(maxiter)
    if strongly_convex:
        if mu is None:
            raise ValueError("strongly_convex=True needs mu")
        kappa = 1.0 / (gamma * check_positive("mu", mu))
        beta_sc = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    prob = Problem(fun, w0, args)
    x = prob.x0
    x_prev = x
    hist = new_history()
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    t = 0
    while gn > tol and t < maxiter:
        t += 1
        mom = beta_sc if strongly_convex else (t - 2) / (t + 1)
        y = x + mom * (x - x_prev)
        _, gy = prob.value_and_grad(y)
        x_prev, x = x, y - gamma * gy
        f, g = prob.value_and_grad(x)
        if not math.isfinite(f):
            raise FloatingPointError(f"nesterov_agd diverged at iteration {t}")
        gn = float(np.linalg.norm(g))
        record(hist, x, f, gn)
    return prob.result(x, f, gn, t, gn <= tol, "converged" if gn <= tol else "maxiter reached",
                       hist)


accelerated_gradient = nesterov_agd


def projected_gradient(fun: Callable, w0: Any, projection: Callable,
                       hyperparams_proj: Any = None, stepsize: float | None = None,
                       maxiter: int = 1000, tol: float = 1e-8, args: tuple = ()) -> OptResult:
    """Projected gradient descent ``w⁺ = proj_C(w − γ∇L(w))`` (Book §16.3, Def 16.2; OPT-38).

    ``projection(x, hyperparams_proj)`` acts on the flat parameter vector (JAXopt convention).
    ``stepsize=None`` selects γ by backtracking on the sufficient-decrease condition
    ``L(w⁺) ≤ L(w) + ⟨∇L(w), w⁺−w⟩ + ‖w⁺−w‖²/(2γ)``. Stops when the fixed-point residual
    ``‖w − proj_C(w − γ∇L(w))‖/γ ≤ tol`` (OPT-09). ``w0`` is projected first.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> box = lambda x, hp: np.clip(x, hp[0], hp[1])
        >>> r = projected_gradient(lambda w: dnp.sum((w - 2.0) ** 2), np.zeros(2), box, (0, 1))
        >>> np.allclose(r.solution, 1.0)
        True
    """
    return _prox_grad(fun, w0, lambda x, hp, s: projection(x, hp), hyperparams_proj, stepsize,
                      maxiter, tol, args, acceleration=False)


def proximal_gradient(fun: Callable, w0: Any, prox: Callable | None = None,
                      hyperparams_prox: Any = None, stepsize: float | None = None,
                      maxiter: int = 1000, tol: float = 1e-8, acceleration: bool = False,
                      args: tuple = ()) -> OptResult:
    """Proximal gradient ``w⁺ = prox_{γΩ}(w − γ∇L(w))`` (Book §16.4.1; 004 (A.1.34)–(A.1.38);
    OPT-43), FISTA with ``acceleration=True`` (OPT-52: ``t⁺ = (1+√(1+4t²))/2``,
    ``y = w⁺ + (t−1)/t⁺·(w⁺ − w)``).

    ``prox(x, hyperparams_prox, scaling)`` returns ``prox_{scaling·Ω}(x)`` (None: Ω = 0, GD).
    ``stepsize=None``: backtracking (start 1, halve until the quadratic upper bound holds,
    then keep γ). Stops when ``‖w − prox(w − γ∇L(w))‖/γ ≤ tol``. O(1/T) for smooth convex L
    (O(1/T²) with acceleration).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> st = lambda x, lam, s: np.sign(x) * np.maximum(np.abs(x) - lam * s, 0.0)
        >>> r = proximal_gradient(lambda w: 0.5 * dnp.sum((w - 3.0) ** 2), np.zeros(2), st, 1.0)
        >>> np.allclose(r.solution, 2.0)
        True
    """
    if prox is None:
        def prox(x, hp, s):
            return x
    return _prox_grad(fun, w0, prox, hyperparams_prox, stepsize, maxiter, tol, args,
                      acceleration)


def fista(fun: Callable, w0: Any, prox: Callable | None = None, hyperparams_prox: Any = None,
          stepsize: float | None = None, maxiter: int = 1000, tol: float = 1e-8,
          args: tuple = ()) -> OptResult:
    """FISTA: :func:`proximal_gradient` with ``acceleration=True`` (Beck–Teboulle; OPT-52).
    Book §16.4 (proximal gradient, accelerated).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = fista(lambda w: 0.5 * dnp.sum((w - 1.0) ** 2), np.zeros(2))
        >>> np.allclose(r.solution, 1.0)
        True
    """
    return proximal_gradient(fun, w0, prox, hyperparams_prox, stepsize, maxiter, tol,
                             acceleration=True, args=args)


def _prox_grad(fun, w0, prox, hp, stepsize, maxiter, tol, args, acceleration) -> OptResult:
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    fixed = stepsize is not None
    gamma = check_positive("stepsize", stepsize) if fixed else 1.0
    prob = Problem(fun, w0, args)
    x = np.asarray(prox(prob.x0, hp, gamma), dtype=float)
    y = x
    tk = 1.0
    hist = new_history()
    hist["stepsize"] = []
    fy, gy = prob.value_and_grad(y)
    res = math.inf
    it = 0
    record(hist, x, fy, res)
    while it < maxiter:
        while True:
            x_new = np.asarray(prox(y - gamma * gy, hp, gamma), dtype=float)
            if fixed:
                break
            diff = x_new - y
            f_new = prob.value(x_new)
            if f_new <= fy + float(gy @ diff) + float(diff @ diff) / (2 * gamma) + 1e-12 * abs(fy):
                break
            gamma *= 0.5
            if gamma < 1e-20:
                raise FloatingPointError("proximal_gradient: backtracking failed (non-smooth "
                                         "or non-finite objective?)")
        check_finite("proximal_gradient iterate", x_new)
        res = float(np.linalg.norm(x_new - y)) / gamma
        it += 1
        if acceleration:
            t_new = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
            y = x_new + ((tk - 1) / t_new) * (x_new - x)
            tk = t_new
        else:
            y = x_new
        x = x_new
        fy, gy = prob.value_and_grad(y)
        hist["stepsize"].append(gamma)
        fx = fy if not acceleration else prob.value(x)
        record(hist, x, fx, res)
        if res <= tol:
            break
    f = prob.value(x)
    return prob.result(x, f, res, it, res <= tol, "converged" if res <= tol
                       else "maxiter reached", hist)


def proximal_point(fun: Callable, w0: Any, stepsize: float, inner_solver: Callable | None = None,
                   maxiter: int = 100, tol: float = 1e-8, args: tuple = ()) -> OptResult:
    """Proximal point method ``w⁺ = argmin_v L(v) + ‖v − w‖²/(2γ)`` = ``prox_{γL}(w)``
    (Book §15.3; OPT-22).

    ``inner_solver(f, v0) → OptResult`` solves each subproblem (default: :func:`lbfgs` with
    tol 1e-10). Stable for any γ > 0 (GD with the same γ may diverge). Stops when
    ``‖w⁺ − w‖/γ ≤ tol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = proximal_point(lambda w: dnp.sum((w - 1.0) ** 2), np.zeros(2), stepsize=1e6)
        >>> np.allclose(r.solution, 1.0)
        True
    """
    from ...numpy import sum as dsum
    from .quasi_newton import lbfgs

    gamma = check_positive("stepsize", stepsize)
    maxiter = check_maxiter(maxiter)
    if inner_solver is None:
        def inner_solver(f, v0):
            return lbfgs(f, v0, tol=1e-10, maxiter=1000)
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    res = math.inf
    it = 0
    nfev = 0
    while it < maxiter:
        xc = x

        def sub(v, xc=xc):
            return prob.f(v) + dsum((v - xc) ** 2) / (2 * gamma)

        r = inner_solver(sub, xc)
        nfev += r.num_fun_evals
        x = np.asarray(r.solution, dtype=float).reshape(-1)
        res = float(np.linalg.norm(x - xc)) / gamma
        it += 1
        record(hist, x, prob.value(x), res)
        if res <= tol:
            break
    out = prob.result(x, prob.value(x), res, it, res <= tol,
                      "converged" if res <= tol else "maxiter reached", hist)
    out.num_fun_evals += nfev
    return out
