r"""Generic maximum-likelihood estimation (book §3.2.1, Ex. 3.1).

``λ̂_N = argmax_λ Π_i p_λ(y_i) = argmin_λ −(1/N) Σ_i log p_λ(y_i)``, minimized with a
quasi-Newton or Newton solver from :mod:`diffprog.optim`. For exponential families, moment
matching (:func:`diffprog.proba.fit_exp_family`) gives the same answer in closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.solvers.newton import newton
from diffprog.optim.solvers.quasi_newton import bfgs, lbfgs

__all__ = ["fit_mle", "negative_log_likelihood"]


def negative_log_likelihood(log_prob_fn: Callable[[Any, Any], Any], params: Any,
                            data: Any) -> Any:
    r"""``−(1/N) Σ_i log p_λ(y_i)`` with ``log_prob_fn(λ, y)`` vectorized over ``data``'s first
    axis (book §3.2.1).

    Example:
        >>> from diffprog.proba import Normal
        >>> nll = negative_log_likelihood(lambda m, y: Normal(m, 1.0).log_prob(y), 0.0,
        ...                               np.zeros(3))
        >>> round(float(nll), 12)
        0.918938533205
    """
    return -dnp.mean(log_prob_fn(params, data))


def fit_mle(log_prob_fn: Callable[[Any, Any], Any], params0: Any, data: Any,
            solver: str = "bfgs", tol: float = 1e-10, maxiter: int = 1000) -> Any:
    r"""Maximum likelihood ``λ̂ = argmin_λ −(1/N) Σ_i log p_λ(y_i)`` (book §3.2.1).

    ``log_prob_fn(λ, y)`` takes the parameter pytree and the data array (observations on the
    first axis); reparameterize constrained parameters yourself (e.g. ``σ = exp(s)``).
    ``solver``: ``"bfgs"``, ``"lbfgs"`` or ``"newton"``. Raises ``ValueError`` when the
    solver does not converge. Book Ex. 3.1: for the Normal, ``μ̂`` is the sample mean and
    ``σ̂²`` the (1/N) sample variance.

    Example:
        >>> from diffprog.proba import Normal
        >>> import diffprog.numpy as dnp
        >>> lp = lambda p, y: Normal(p[0], dnp.exp(p[1])).log_prob(y)
        >>> p = fit_mle(lp, np.zeros(2), np.array([1.0, 2.0, 4.0, 7.0]))
        >>> round(float(p[0]), 6), round(float(np.exp(2 * p[1])), 6)
        (3.5, 5.25)
    """
    solvers = {"bfgs": bfgs, "lbfgs": lbfgs, "newton": newton}
    if solver not in solvers:
        raise ValueError(f"fit_mle: argument 'solver' must be one of {sorted(solvers)}, got "
                         f"{solver!r}")
    if not callable(log_prob_fn):
        raise TypeError("fit_mle: argument 'log_prob_fn' must be callable (params, y) -> log p")
    data = np.asarray(data)
    if data.ndim == 0 or data.shape[0] == 0:
        raise ValueError("fit_mle: argument 'data' must stack observations on its first axis")
    kwargs: dict[str, Any] = {}
    if solver == "newton":
        kwargs = {"linesearch": "armijo", "hessian_fix": "clip"}
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # line-search trials
        res = solvers[solver](lambda p: negative_log_likelihood(log_prob_fn, p, data), params0,
                              tol=tol, maxiter=maxiter, **kwargs)
    if not res.converged:
        raise ValueError(f"fit_mle: the solver did not converge ({res.status})")
    return res.solution
