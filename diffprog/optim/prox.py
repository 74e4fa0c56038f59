r"""Proximal operators, all differentiable with diffprog (Book §16.4.3).

``prox_{γΩ}(x) = argmin_v ½‖x − v‖² + γ Ω(v)``. Signatures follow JAXopt
(``prox(x, hyperparams, scaling)``): ``hyperparams`` holds the regularization strength(s) and
``scaling = γ`` is the step size. Written with :mod:`diffprog.numpy`, so ``diffprog.grad`` and
friends apply (derivatives are exact away from the kinks of the thresholds).

Example::

    >>> import numpy as np
    >>> from diffprog.optim.prox import prox_lasso
    >>> prox_lasso(np.array([3.0, -0.5, 1.0]), 1.0).tolist()
    [2.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.primitive import Tracer

__all__ = [
    "make_indicator",
    "make_prox_from_projection",
    "prox_elastic_net",
    "prox_group_lasso",
    "prox_l2",
    "prox_lasso",
    "prox_non_negative_lasso",
    "prox_none",
    "prox_nuclear_norm",
]

Array = Any


def _check_nonneg(name: str, value: Any, fname: str) -> None:
    if not isinstance(value, Tracer):
        v = np.asarray(value)
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"{fname}: {name} must be finite and >= 0, got {value!r}")


def _check_scaling(scaling: Any, fname: str) -> None:
    if not isinstance(scaling, Tracer):
        v = np.asarray(scaling)
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(
                f"{fname}: scaling (step size) must be finite and > 0, got {scaling!r}"
            )


def prox_none(x: Array, hyperparams: Any = None, scaling: float = 1.0) -> Array:
    r"""Proximal operator of ``Ω = 0``: the identity. Book §16.4.3.

    Example: ``prox_none(np.array([1., -2.]))`` → ``array([1., -2.])``.
    """
    del hyperparams, scaling
    return x


def prox_lasso(x: Array, l1reg: Array = 1.0, scaling: float = 1.0) -> Array:
    r"""Soft-thresholding, the prox of ``Ω = λ‖·‖₁``: ``sign(x) max(|x| − γλ, 0)``.

    Written ``max(x − γλ, 0) + min(x + γλ, 0)``; ties ``|x| = γλ`` map to 0. ``l1reg = λ ≥ 0``
    (scalar or array broadcastable to ``x``), ``scaling = γ > 0``. Book §16.4.3, 003 Prop 46.

    Example: ``prox_lasso(np.array([3., -0.5, 1.]), 1.0)`` → ``array([2., 0., 0.])``.
    """
    _check_nonneg("l1reg", l1reg, "prox_lasso")
    _check_scaling(scaling, "prox_lasso")
    t = l1reg * scaling
    return dnp.maximum(x - t, 0.0) + dnp.minimum(x + t, 0.0)


def prox_non_negative_lasso(x: Array, l1reg: Array = 1.0, scaling: float = 1.0) -> Array:
    r"""Prox of ``λ‖·‖₁ + ι_{≥0}``: ``max(x − γλ, 0)`` (004 Example A.3).
    Book §16.4.3 (proximal operators).

    Example: ``prox_non_negative_lasso(np.array([3., -0.5, 1.]), 1.0)`` → ``array([2., 0., 0.])``.
    """
    _check_nonneg("l1reg", l1reg, "prox_non_negative_lasso")
    _check_scaling(scaling, "prox_non_negative_lasso")
    return dnp.maximum(x - l1reg * scaling, 0.0)


def _block_shrink_factor(sq_norm: Array, t: Array) -> Array:
    """``max(1 − t/√sq, 0)``, equal to 0 (no NaN, zero derivative) when ``√sq ≤ t`` or sq = 0."""
    keep = sq_norm > t * t
    safe = dnp.where(keep, sq_norm, 1.0)
    return dnp.where(keep, 1.0 - t / dnp.sqrt(safe), 0.0)


def prox_l2(x: Array, l2reg: float = 1.0, scaling: float = 1.0) -> Array:
    r"""Block soft-thresholding, the prox of ``Ω = λ‖·‖₂`` (the norm, not squared), whole array.

    ``prox(x) = max(1 − γλ/‖x‖₂, 0) · x``; returns exactly 0 (no NaN) when ``‖x‖₂ ≤ γλ``.
    Book §16.4.3.

    Example: ``prox_l2(np.array([3., 4.]), 1.0)`` → ``array([2.4, 3.2])``.
    """
    _check_nonneg("l2reg", l2reg, "prox_l2")
    _check_scaling(scaling, "prox_l2")
    return _block_shrink_factor(dnp.sum(x * x), l2reg * scaling) * x


def _group_matrix(groups: Any, n: int) -> np.ndarray:
    """Membership matrix ``G`` (n_groups × n) from a label array or a list of index arrays."""
    if (
        isinstance(groups, np.ndarray)
        and groups.ndim == 1
        and groups.shape[0] == n
        and (np.issubdtype(groups.dtype, np.integer))
    ):
        labels = groups
        uniq = np.unique(labels)
        return (labels[None, :] == uniq[:, None]).astype(float)
    if not isinstance(groups, Sequence) and not isinstance(groups, np.ndarray):
        raise TypeError("prox_group_lasso: groups must be a label array or a list of index arrays")
    G = np.zeros((len(groups), n))
    for g, idx in enumerate(groups):
        idx = np.asarray(idx)
        if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("prox_group_lasso: each group must be a nonempty integer index array")
        if np.any(idx < 0) or np.any(idx >= n):
            raise ValueError(f"prox_group_lasso: group {g} has indices outside [0, {n})")
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"prox_group_lasso: group {g} repeats an index")
        G[g, idx] = 1.0
    counts = G.sum(axis=0)
    if np.any(counts != 1):
        raise ValueError("prox_group_lasso: groups must partition range(P) (disjoint and covering)")
    return G


def prox_group_lasso(
    x: Array, l2reg: float = 1.0, scaling: float = 1.0, groups: Any = None
) -> Array:
    r"""Prox of the group lasso ``Ω = λ Σ_g ‖x_g‖₂`` for a partition of the coordinates of a vector.

    ``[prox(x)]_g = max(1 − γλ/‖x_g‖₂, 0) · x_g`` (Yuan & Lin 2006). ``groups`` is either an
    integer label array of shape ``(P,)`` or a list of index arrays that partition ``range(P)``
    (validated); ``None`` means a single group (then this is :func:`prox_l2`). A zero group maps
    to 0 with no NaN. Book §16.4.3.

    Example: ``prox_group_lasso(np.array([3., 4., 0.1]), 1.0, groups=[[0, 1], [2]])`` →
    ``array([2.4, 3.2, 0.])``.
    """
    _check_nonneg("l2reg", l2reg, "prox_group_lasso")
    _check_scaling(scaling, "prox_group_lasso")
    if groups is None:
        return prox_l2(x, l2reg, scaling)
    if dnp.ndim(x) != 1:
        raise ValueError("prox_group_lasso: x must be a vector when groups are given")
    G = _group_matrix(groups, dnp.shape(x)[0])
    factors = _block_shrink_factor(G @ (x * x), l2reg * scaling)
    return x * (G.T @ factors)


def prox_elastic_net(
    x: Array, hyperparams: tuple[float, float] = (1.0, 1.0), scaling: float = 1.0
) -> Array:
    r"""Prox of the elastic net ``Ω = λ₁‖·‖₁ + (λ₂/2)‖·‖²₂``: ``S_{γλ₁}(x) / (1 + γλ₂)``.

    ``hyperparams = (λ₁, λ₂)``, both ≥ 0. Book §16.4.3.

    Example: ``prox_elastic_net(np.array([3., -0.5]), (1.0, 1.0))`` → ``array([1., 0.])``.
    """
    try:
        l1reg, l2reg = hyperparams
    except (TypeError, ValueError):
        raise TypeError("prox_elastic_net: hyperparams must be a pair (l1reg, l2reg)") from None
    _check_nonneg("l2reg", l2reg, "prox_elastic_net")
    return prox_lasso(x, l1reg, scaling) / (1.0 + l2reg * scaling)


def prox_nuclear_norm(X: Array, l1reg: float = 1.0, scaling: float = 1.0) -> Array:
    r"""Prox of the nuclear norm ``Ω = λ‖X‖_* = λ Σ σ_i(X)``: singular-value soft-thresholding.

    ``prox(X) = U diag(max(σ − γλ, 0)) Vᵀ`` with ``X = U diag(σ) Vᵀ`` (thin SVD; its derivative
    needs distinct nonzero singular values). ``X`` must be a matrix. Book §16.4.3.

    Example: ``prox_nuclear_norm(np.diag([3., 0.5]), 1.0)`` → ``diag([2., 0.])``.
    """
    _check_nonneg("l1reg", l1reg, "prox_nuclear_norm")
    _check_scaling(scaling, "prox_nuclear_norm")
    if dnp.ndim(X) != 2:
        raise ValueError(f"prox_nuclear_norm: X must be a matrix, got shape {dnp.shape(X)}")
    U, s, Vt = dnp.linalg.svd(X, full_matrices=False)
    s = dnp.maximum(s - l1reg * scaling, 0.0)
    return (U * s) @ Vt


def make_prox_from_projection(projection: Callable[..., Array]) -> Callable[..., Array]:
    r"""The prox of the indicator ``ι_C`` from ``proj_C``: ``prox_{γι_C} = proj_C`` for every γ.

    The returned ``prox(x, hyperparams=None, scaling=1.0)`` calls ``projection(x)`` when
    ``hyperparams`` is None and ``projection(x, hyperparams)`` otherwise. Book §16.4.3.

    Example::

        >>> import numpy as np
        >>> from diffprog.optim.projections import projection_non_negative
        >>> prox = make_prox_from_projection(projection_non_negative)
        >>> prox(np.array([-1.0, 2.0]), scaling=10.0).tolist()
        [0.0, 2.0]
    """
    if not callable(projection):
        raise TypeError("make_prox_from_projection: projection must be callable")

    def prox(x: Array, hyperparams: Any = None, scaling: float = 1.0) -> Array:
        _check_scaling(scaling, "prox (indicator)")
        return projection(x) if hyperparams is None else projection(x, hyperparams)

    prox.__name__ = f"prox_indicator[{getattr(projection, '__name__', 'projection')}]"
    prox.__doc__ = f"Prox of the indicator of C = projection with {projection!r} (any scaling)."
    return prox


def make_indicator(
    projection: Callable[..., Array], hyperparams: Any = None, tol: float = 1e-9
) -> Callable[[Array], float]:
    r"""The indicator ``ι_C(x)``: 0 when ``x ∈ C`` (``‖proj_C(x) − x‖_∞ ≤ tol``), ``inf`` otherwise.

    Book §16.4 (``min_{w∈C} L ⇔ min L + ι_C``). Not differentiable (a value, for checks).

    Example::

        >>> import numpy as np
        >>> from diffprog.optim.projections import projection_non_negative
        >>> ind = make_indicator(projection_non_negative)
        >>> ind(np.array([1.0, 0.0])), ind(np.array([-1.0, 0.0]))
        (0.0, inf)
    """

    def indicator(x: Array) -> float:
        xv = np.asarray(x, dtype=float)
        p = projection(xv) if hyperparams is None else projection(xv, hyperparams)
        return 0.0 if np.max(np.abs(np.asarray(p) - xv), initial=0.0) <= tol else float("inf")

    return indicator
