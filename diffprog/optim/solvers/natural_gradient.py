"""Natural gradient descent with a user-supplied metric (Book §17.3; OPT-66).

``w⁺ = w − γ(F(w) + ηI)⁻¹∇L(w)``, where ``F(w)`` is the Fisher information of the model
(e.g. :func:`diffprog.derivatives.fisher`) or, for exponential-family outputs, the equal
Gauss–Newton matrix (:func:`diffprog.derivatives.gauss_newton`; Prop 9.6: NGD = GN).

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> A = np.diag([10.0, 1.0])
    >>> r = natural_gradient(lambda w: 0.5 * w @ (A @ w), np.ones(2), lambda w: A, reg=0.0,
    ...                      maxiter=1)
    >>> np.allclose(r.solution, 0.0)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import OptResult, Problem, check_maxiter, check_positive, new_history, record

__all__ = ["natural_gradient"]


def natural_gradient(fun: Callable, w0: Any, metric: Callable, reg: float = 1e-8,
                     stepsize: float = 1.0, maxiter: int = 100, tol: float = 1e-8,
                     args: tuple = ()) -> OptResult:
    """Natural gradient descent ``w⁺ = w − γ(F(w) + ηI)⁻¹∇L(w)`` (Book §17.3.1; OPT-66).

    ``metric(w)`` returns the P×P Fisher / GGN matrix at the (pytree) parameters ``w``.
    Stops when ``‖∇L‖₂ ≤ tol``.

    Example: with the Gauss-Newton matrix as the metric, one natural-gradient step on a linear
    least-squares problem lands on its solution.
    """
    gamma = check_positive("stepsize", stepsize)
    check_positive("reg", reg, allow_zero=True)
    maxiter = check_maxiter(maxiter)
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    it = 0
    while gn > tol and it < maxiter:
        F = np.asarray(metric(prob.unravel(x)), dtype=float).reshape(x.size, x.size)
        d = np.linalg.solve(F + reg * np.eye(x.size), g)
        x = x - gamma * d
        f, g = prob.value_and_grad(x)
        if not np.isfinite(f):
            raise FloatingPointError(f"natural_gradient diverged at iteration {it + 1}")
        gn = float(np.linalg.norm(g))
        it += 1
        record(hist, x, f, gn)
    return prob.result(x, f, gn, it, gn <= tol, "converged" if gn <= tol else "maxiter reached",
                       hist)
