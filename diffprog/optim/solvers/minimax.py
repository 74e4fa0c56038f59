"""Gradient descent–ascent for zero-sum games (004 §A.3.1 (A.3.24)–(A.3.36); OPT-102..104).

Convention of the notes: the leader θ *maximizes* and the follower η *minimizes* ``L(θ, η)``.

- :func:`gda` simultaneous (one joint gradient per step) or alternating:
  ``θ⁺ = θ + h∇_θL(θ,η)``, ``η⁺ = η − T·h∇_ηL(θ,η)`` (``timescale = T``; alternating uses θ⁺
  in the η step). On bilinear ``L = θη`` simultaneous GDA spirals outward (modulus √(1+h²)).
- :func:`gda_unrolled` (Stackelberg, many inner steps): ``inner_steps`` descent steps on η,
  then ``θ⁺ = θ + h∇_θL(θ, η⁺)`` (Danskin gradient of ``θ ↦ min_η L``).

Example::

    >>> import numpy as np
    >>> L = lambda th, et: -0.5 * th ** 2 + 2 * th * et + 0.5 * et ** 2
    >>> r = gda_unrolled(L, 1.0, 1.0, 0.05, inner_steps=200, maxiter=2000)
    >>> bool(abs(float(r.solution[0])) < 1e-8)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...core.api import grad
from .base import OptResult, check_maxiter, check_positive, flatten

__all__ = ["gda", "gda_unrolled"]


def _setup(fun, theta0, eta0, stepsize, maxiter):
    check_positive("stepsize", stepsize)
    maxiter = check_maxiter(maxiter)
    th, un_th = flatten(theta0)
    et, un_et = flatten(eta0)

    def F(a, b):
        return fun(un_th(a), un_et(b))

    return th, et, un_th, un_et, F, maxiter


def gda(fun: Callable, theta0: Any, eta0: Any, stepsize: float, timescale: float = 1.0,
        mode: str = "simultaneous", maxiter: int = 1000, tol: float = 1e-10) -> OptResult:
    """Gradient descent–ascent (004 (A.3.26)–(A.3.28), two-timescale (A.3.29)–(A.3.36)).
    Optimization notes (§ min-max games): min-max games (gradient descent-ascent).

    ``θ⁺ = θ + h∇_θL``, ``η⁺ = η − T h∇_ηL``; ``mode`` ``"simultaneous"`` or ``"alternating"``.
    ``solution = (θ, η)``; ``history["params"]`` holds the concatenated iterates. Stops when
    the joint gradient norm ≤ ``tol``.

    Example::

        >>> import numpy as np
        >>> r = gda(lambda a, b: a * b, 1.0, 0.0, 0.1, maxiter=100)
        >>> bool(np.hypot(*map(float, r.solution)) > 1.0)  # spirals outward
        True
    """
    if mode not in ("simultaneous", "alternating"):
        raise ValueError(f"unknown mode {mode!r}; use 'simultaneous' or 'alternating'")
    T = check_positive("timescale", timescale)
    th, et, un_th, un_et, F, maxiter = _setup(fun, theta0, eta0, stepsize, maxiter)
    gth, get = grad(F, 0), grad(F, 1)
    nfev = 0
    hist = {"params": [np.concatenate([th, et])], "grad_norm": []}
    gn = math.inf
    it = 0
    for it in range(1, maxiter + 1):
        a = np.asarray(gth(th, et), dtype=float).reshape(-1)
        b = np.asarray(get(th, et), dtype=float).reshape(-1)
        nfev += 2
        gn = float(np.sqrt(a @ a + b @ b))
        hist["grad_norm"].append(gn)
        if gn <= tol:
            it -= 1
            break
        th = th + stepsize * a
        if mode == "alternating":
            b = np.asarray(get(th, et), dtype=float).reshape(-1)
            nfev += 1
        et = et - T * stepsize * b
        if not (np.all(np.isfinite(th)) and np.all(np.isfinite(et))):
            raise FloatingPointError(f"gda diverged at iteration {it}")
        hist["params"].append(np.concatenate([th, et]))
    return OptResult(solution=(un_th(th), un_et(et)), value=float(F(th, et)), grad_norm=gn,
                     iterations=it, num_fun_evals=nfev, num_grad_evals=nfev,
                     converged=gn <= tol, status="converged" if gn <= tol else "maxiter reached",
                     history=hist)


def gda_unrolled(fun: Callable, theta0: Any, eta0: Any, stepsize: float, inner_steps: int = 10,
                 inner_stepsize: float | None = None, maxiter: int = 1000,
                 tol: float = 1e-10) -> OptResult:
    """Stackelberg GDA with an unrolled inner loop (004 (A.3.24)–(A.3.25); OPT-102).
    Optimization notes (§ min-max games): min-max games (Stackelberg variant).

    ``η^{t+1} = η^t − h'∇_ηL(θ_k, η^t)`` for ``inner_steps`` steps (warm-started at η_k), then
    ``θ_{k+1} = θ_k + h∇_θL(θ_k, η_{k+1})``. ``inner_stepsize`` defaults to ``stepsize``.
    Costs ``inner_steps + 1`` gradient evaluations per θ update. Stops when
    ``‖∇_θL‖ ≤ tol`` and ``‖∇_ηL‖ ≤ tol``.

    Example::

        >>> import numpy as np
        >>> r = gda_unrolled(lambda a, b: -a ** 2 + a * b + b ** 2, 1.0, 0.0, 0.1, 50)
        >>> bool(abs(float(r.solution[0])) < 1e-8)
        True
    """
    if int(inner_steps) != inner_steps or inner_steps < 1:
        raise ValueError(f"inner_steps must be a positive integer, got {inner_steps!r}")
    th, et, un_th, un_et, F, maxiter = _setup(fun, theta0, eta0, stepsize, maxiter)
    h_in = stepsize if inner_stepsize is None else check_positive("inner_stepsize",
                                                                  inner_stepsize)
    gth, get = grad(F, 0), grad(F, 1)
    nfev = 0
    hist = {"params": [np.concatenate([th, et])], "grad_norm": []}
    gn = math.inf
    it = 0
    for it in range(1, maxiter + 1):
        for _ in range(int(inner_steps)):
            b = np.asarray(get(th, et), dtype=float).reshape(-1)
            et = et - h_in * b
        a = np.asarray(gth(th, et), dtype=float).reshape(-1)
        nfev += int(inner_steps) + 1
        gn = float(max(np.linalg.norm(a), np.linalg.norm(b)))
        hist["grad_norm"].append(gn)
        if gn <= tol:
            break
        th = th + stepsize * a
        if not (np.all(np.isfinite(th)) and np.all(np.isfinite(et))):
            raise FloatingPointError(f"gda_unrolled diverged at iteration {it}")
        hist["params"].append(np.concatenate([th, et]))
    return OptResult(solution=(un_th(th), un_et(et)), value=float(F(th, et)), grad_norm=gn,
                     iterations=it, num_fun_evals=nfev, num_grad_evals=nfev,
                     converged=gn <= tol, status="converged" if gn <= tol else "maxiter reached",
                     history=hist)
