r"""Probabilistic learning with exponential families and generalized linear models (book §3.4.5).

A model ``f(x, w)`` outputs natural parameters ``θ_i = f(x_i, w)``; learning minimizes the NLL
``Σ_i A(θ_i) − ⟨θ_i, φ(y_i)⟩`` (the ``−log h(y_i)`` term is constant in ``w`` and dropped),
convex in ``θ`` but generally not in ``w``. Inference returns the mean ``∇A(θ)`` (book §3.3.2).
When ``f`` is linear in ``w`` (``θ = xW + b``), ``∇A ∘ f`` is a generalized linear model:
logistic (Bernoulli), softmax (categorical) and Poisson regression (book §3.3.3–3.3.7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.pytree import tree_leaves
from diffprog.optim.solvers.newton import newton

from .distribution import Distribution
from .exponential_family import ExponentialFamily

__all__ = [
    "fit_glm",
    "glm_objective",
    "linear_model",
    "predict_distribution",
    "predict_mean",
    "predict_proba",
]

Array = Any


def linear_model(w: tuple[Array, Array], X: Array) -> Array:
    r"""``θ = XW + b`` with ``w = (W, b)`` (rows of ``X`` are examples; book §3.4.5, GLM).

    Example:
        >>> linear_model((np.array([1.0, 2.0]), 0.5), np.array([[1.0, 1.0]])).tolist()
        [3.5]
    """
    W, b = w
    return X @ W + b


def glm_objective(family: ExponentialFamily,
                  model_fn: Callable[[Any, Any], Any] = linear_model) -> Callable[..., Any]:
    r"""``(w, X, Y) ↦ Σ_i A(θ_i) − ⟨θ_i, φ(y_i)⟩`` with ``θ_i = f(x_i, w)`` (book §3.4.5).

    For linear ``f`` its gradient is ``Xᵀ(∇A(Θ) − φ(Y))`` (a moment-matching residual).

    Example:
        >>> from diffprog.proba import poisson_family
        >>> obj = glm_objective(poisson_family)
        >>> float(obj((np.zeros(1), 0.0), np.ones((2, 1)), np.array([1.0, 1.0])))  # Σ e⁰ − 0
        2.0
    """

    def objective(w: Any, X: Array, Y: Array) -> Array:
        theta = model_fn(w, X)
        phi = family.sufficient_stat(Y)
        return dnp.sum(family.log_partition(theta)) - dnp.sum(family.inner(theta, phi))

    return objective


def predict_mean(family: ExponentialFamily,
                 model_fn: Callable[[Any, Any], Any] = linear_model) -> Callable[..., Any]:
    r"""``(w, X) ↦ ∇A(f(X, w)) = E[φ(Y) | X]``, the GLM prediction (book §3.3.2, §3.4.5).

    Example:
        >>> from diffprog.proba import bernoulli_family
        >>> float(predict_mean(bernoulli_family)((np.zeros(1), 0.0), np.ones((1, 1)))[0])
        0.5
    """
    return lambda w, X: family.mean(model_fn(w, X))


def predict_proba(family: ExponentialFamily,
                  model_fn: Callable[[Any, Any], Any] = linear_model) -> Callable[..., Any]:
    r"""``(w, X, y) ↦ p_θ(y)`` with ``θ = f(X, w)`` (book §3.3.1).

    Example:
        >>> from diffprog.proba import bernoulli_family
        >>> float(predict_proba(bernoulli_family)((np.zeros(1), 0.0), np.ones((1, 1)), 1)[0])
        0.5
    """
    return lambda w, X, y: family.prob(model_fn(w, X), y)


def predict_distribution(family: ExponentialFamily,
                         model_fn: Callable[[Any, Any], Any] = linear_model
                         ) -> Callable[[Any, Any], Distribution]:
    r"""``(w, X) ↦`` the predicted :class:`Distribution` (its variance, CDF, mode…; §3.4.5).

    Example:
        >>> from diffprog.proba import poisson_family
        >>> d = predict_distribution(poisson_family)((np.zeros(1), np.log(2.0)), np.ones((1, 1)))
        >>> d.variance().round(12).tolist()
        [2.0]
    """
    return lambda w, X: family.distribution(model_fn(w, X))


def fit_glm(family: ExponentialFamily, X: Array, Y: Array, l2: float = 0.0,
            tol: float = 1e-10, maxiter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    r"""Fit ``θ = XW + b`` by Newton's method on ``(1/N)[Σ_i A(θ_i) − ⟨θ_i, φ(y_i)⟩] +
    (l2/2)‖W‖²`` (book §3.4.5): logistic, softmax and Poisson regression.

    The shapes of ``W`` (``(D,) + event``) and ``b`` (``event``) follow ``φ(y)``. Families whose
    ``Θ`` is all of ``R^d`` (Bernoulli, categorical, Poisson, Normal with known σ) start at 0.
    Separable data have no minimizer without ``l2 > 0``. Returns ``(W, b)``.

    Example:
        >>> from diffprog.proba import poisson_family
        >>> W, b = fit_glm(poisson_family, np.zeros((3, 1)), np.array([1.0, 4.0, 10.0]))
        >>> round(float(np.exp(b)), 10)  # intercept only: the sample mean
        5.0
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"fit_glm: argument 'X' must be (N, D), got shape {X.shape}")
    phi = family.sufficient_stat(Y)
    leaves = tree_leaves(phi)
    if len(leaves) != 1 or np.shape(leaves[0])[:1] != (X.shape[0],):
        raise ValueError("fit_glm: 'Y' must hold one observation per row of 'X' (and the "
                         "family a single-array statistic)")
    if l2 < 0:
        raise ValueError(f"fit_glm: argument 'l2' must be >= 0, got {l2}")
    event = np.shape(phi)[1:]
    n = X.shape[0]
    objective = glm_objective(family)

    def loss(w: Any) -> Array:
        return objective(w, X, Y) / n + 0.5 * l2 * dnp.sum(w[0] * w[0])

    w0 = (np.zeros((X.shape[1],) + event), np.zeros(event))
    res = newton(loss, w0, linesearch="armijo", hessian_fix="clip", tol=tol, maxiter=maxiter)
    if not res.converged:
        raise ValueError(f"fit_glm: Newton's method did not converge ({res.status}); the data "
                         "may be separable: pass l2 > 0")
    W, b = res.solution
    return np.asarray(W), np.asarray(b)
