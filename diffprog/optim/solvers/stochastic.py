"""Finite-sum stochastic solvers: SAG and averaged SGD (notes 003 §14.2.3–14.2.5; Book §16.2;
OPT-29, OPT-34).

Objective ``f(w) = (1/n) Σ_i f_i(w)``. Per-sample gradients come from ``grad_i(w, i)`` or, if
only ``fun_i(w, i)`` (scalar) is given, from ``diffprog.grad``.

Example::

    >>> import numpy as np
    >>> c = np.array([1.0, 2.0, 3.0])
    >>> r = sag(None, 3, np.zeros(1), 0.5, grad_i=lambda w, i: w - c[i], maxiter=2000,
    ...         rng=np.random.default_rng(0))
    >>> bool(abs(float(r.solution[0]) - 2.0) < 1e-8)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...core.api import grad as _grad
from .base import OptResult, check_maxiter, check_positive, flatten

__all__ = ["sag", "sgd_with_averaging"]


def _grad_fn(fun_i, grad_i, unravel):
    if grad_i is not None:
        return lambda x, i: np.asarray(grad_i(unravel(x), i), dtype=float).reshape(-1)
    if fun_i is None:
        raise ValueError("give fun_i (scalar per-sample loss) or grad_i")
    g = _grad(lambda x, i: fun_i(unravel(x), i))
    return lambda x, i: np.asarray(g(x, i), dtype=float).reshape(-1)


def sag(fun_i: Callable | None, n: int, w0: Any, stepsize: float, maxiter: int = 10000,
        rng: Any = None, grad_i: Callable | None = None, record_every: int | None = None
        ) -> OptResult:
    """Stochastic average gradient (003 §14.2.5; OPT-34), O(n·p) gradient table.

    ``h ← ∇f_{i(k)}(x_k)``, ``g ← g − G_{i(k)} + h``, ``G_{i(k)} ← h``, ``x⁺ = x − τ g/n``
    (the average; 003 prints the sum). Fixed step τ ~ 1/L. Linear rate under strong convexity.
    ``history["params"]`` is recorded every ``record_every`` steps (default n, once per epoch).

    Example: ``sag(loss_i, w0, n, step)`` on a ridge regression reaches the closed-form solution.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    tau = check_positive("stepsize", stepsize)
    maxiter = check_maxiter(maxiter)
    rng = np.random.default_rng(rng)
    x, unravel = flatten(w0)
    gi = _grad_fn(fun_i, grad_i, unravel)
    G = np.zeros((int(n), x.size))
    g = np.zeros(x.size)
    every = int(record_every or n)
    hist = {"params": [x.copy()]}
    for k in range(1, maxiter + 1):
        i = int(rng.integers(n))
        h = gi(x, i)
        g += h - G[i]
        G[i] = h
        x = x - tau * g / n
        if k % every == 0:
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(f"sag diverged at step {k}; reduce the stepsize")
            hist["params"].append(x.copy())
    return OptResult(solution=unravel(x), value=float("nan"), grad_norm=float(np.linalg.norm(
        g / n)), iterations=maxiter, num_fun_evals=maxiter, num_grad_evals=maxiter,
        converged=False, status="maxiter reached", history=hist)


def sgd_with_averaging(fun_i: Callable | None, n: int, w0: Any, stepsize: Any,
                       maxiter: int = 10000, rng: Any = None, grad_i: Callable | None = None,
                       record_every: int | None = None) -> OptResult:
    """SGD with Cesàro averaging of the iterates (SGA; 003 §14.2.4; Book §16.2.2; OPT-29).

    ``x̃_{k+1} = x̃_k − τ_k ∇f_{i(k)}(x̃_k)`` and the running average
    ``x̄_{k+1} = x̄_k + (x̃_{k+1} − x̄_k)/(k+1)`` (no storage). ``stepsize``: float or schedule
    ``k ↦ τ_k``. ``solution`` is the average; ``history["last"]`` the last raw iterate.

    Example: ``sgd_with_averaging(grad_i, w0, n, step)`` returns the running average of the
    iterates.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if callable(stepsize):
        sched = stepsize
    else:
        const = check_positive("stepsize", stepsize)

        def sched(k):
            return const
    maxiter = check_maxiter(maxiter)
    rng = np.random.default_rng(rng)
    x, unravel = flatten(w0)
    gi = _grad_fn(fun_i, grad_i, unravel)
    avg = x.copy()
    every = int(record_every or n)
    hist = {"params": [avg.copy()], "raw": [x.copy()]}
    for k in range(1, maxiter + 1):
        i = int(rng.integers(n))
        x = x - float(sched(k - 1)) * gi(x, i)
        avg = avg + (x - avg) / (k + 1)
        if k % every == 0:
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(f"sgd diverged at step {k}; reduce the stepsize")
            hist["params"].append(avg.copy())
            hist["raw"].append(x.copy())
    hist["last"] = unravel(x)
    return OptResult(solution=unravel(avg), value=float("nan"), grad_norm=float("nan"),
                     iterations=maxiter, num_fun_evals=maxiter, num_grad_evals=maxiter,
                     status="maxiter reached", history=hist)
