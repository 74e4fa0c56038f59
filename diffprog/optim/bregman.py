"""Bregman projections and proximal operators (book §18.3, Def 18.3, Prop 18.5, Example 18.4).

``bproj_{f,C}(v) = argmin_{u∈C} B_f(u, v)`` and ``bprox_{f,g}(v) = argmin_u B_f(u, v) + g(u)``
with ``B_f(u, v) = f(u) − f(v) − ⟨∇f(v), u − v⟩``. With ``f = ½‖·‖²`` they are the Euclidean
projection and proximal operator; with the entropy ``f = ⟨u, log u − 1⟩`` the projection onto
the simplex is a normalization, so ``bproj_Δ(e^θ) = softmax(θ)`` ("softmax is the KL
projection onto the simplex"). General ``f`` is handled by projected / proximal gradient on
``u ↦ B_f(u, v)``, whose gradient is ``∇f(u) − ∇f(v)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.api import grad

__all__ = ["kl_projection_simplex", "bregman_projection", "bregman_prox"]


def kl_projection_simplex(v: Any, axis: int = -1) -> Any:
    """KL (Bregman-entropy) projection onto the simplex: ``v / Σ v`` for ``v > 0`` (book
    Example 18.4), so ``kl_projection_simplex(exp θ) = softmax(θ)``. Differentiable.
    Book §18.3.

    Example::

        >>> kl_projection_simplex(np.array([1.0, 3.0]))
        array([0.25, 0.75])
    """
    if np.any(np.asarray(_value(v)) <= 0):
        raise ValueError("kl_projection_simplex: v must be positive (it lies in dom f = R₊)")
    return v / dnp.sum(v, axis=axis, keepdims=True)


def _value(x):
    from ..numpy._base import primal

    return primal(x)


_NAMED = {
    "squared": lambda u: 0.5 * dnp.sum(u * u),
    "entropy": lambda u: dnp.sum(u * (dnp.log(u) - 1.0)),
}


def _generator(f):
    if isinstance(f, str):
        if f not in _NAMED:
            raise ValueError(f"bregman: unknown generator {f!r}; expected {sorted(_NAMED)} or a "
                             "callable")
        return _NAMED[f]
    if not callable(f):
        raise TypeError(f"bregman: f must be a name or a callable, got {type(f).__name__}")
    return f


def bregman_projection(f: str | Callable, projection: Callable | str, maxiter: int = 2000,
                       tol: float = 1e-12) -> Callable:
    """``v ↦ argmin_{u∈C} B_f(u, v)`` (book Def 18.3). ``projection`` is the Euclidean
    projection onto C (``projection(x)``) or ``"simplex"``. For ``f = "squared"`` this *is*
    the Euclidean projection; for ``f = "entropy"`` and the simplex it is
    :func:`kl_projection_simplex`; other generators are solved by projected gradient on
    ``B_f(·, v)``. Book §18.3.

    Example::

        >>> bregman_projection("entropy", "simplex")(np.exp(np.array([0.0, np.log(3.0)])))
        array([0.25, 0.75])
    """
    from .projections import projection_simplex
    from .solvers import projected_gradient

    fn = _generator(f)
    proj = projection_simplex if projection == "simplex" else projection
    if not callable(proj):
        raise TypeError("bregman_projection: projection must be a callable or 'simplex'")

    def apply(v):
        if f == "squared":
            return proj(v)
        if f == "entropy" and projection == "simplex":
            return kl_projection_simplex(v)
        gv = grad(fn)(v)
        obj = lambda u: fn(u) - dnp.sum(gv * u)  # B_f(u, v) up to terms constant in u
        res = projected_gradient(obj, np.asarray(_value(v), dtype=float),
                                 lambda x, _hp: proj(x), maxiter=maxiter, tol=tol)
        return res.solution

    return apply


def bregman_prox(f: str | Callable, prox_g: Callable, maxiter: int = 2000,
                 tol: float = 1e-12) -> Callable:
    """``v ↦ argmin_u B_f(u, v) + g(u)`` (book Def 18.3) given ``prox_g(x, scaling)``, the
    Euclidean proximal operator of ``g``. For ``f = "squared"`` it is ``prox_g(v, 1)``;
    otherwise proximal gradient on ``B_f(·, v) + g``. With ``Ω = f + g``,
    ``∇Ω*(θ) = bprox_{f,g}(∇f*(θ))`` (Prop 18.5). Book §18.3.

    Example::

        >>> from diffprog.optim import prox_lasso
        >>> bregman_prox("squared", lambda x, s: prox_lasso(x, 1.0, s))(np.array([3.0, 0.5]))
        array([2., 0.])
    """
    from .solvers import proximal_gradient

    fn = _generator(f)

    def apply(v):
        if f == "squared":
            return prox_g(v, 1.0)
        gv = grad(fn)(v)
        obj = lambda u: fn(u) - dnp.sum(gv * u)
        res = proximal_gradient(obj, np.asarray(_value(v), dtype=float),
                                lambda x, _hp, s: prox_g(x, s), maxiter=maxiter, tol=tol)
        return res.solution

    return apply

