r"""Euclidean projections onto convex sets, all differentiable with diffprog (Book §16.3.3).

``proj_C(w) = argmin_{v ∈ C} ‖w − v‖²`` for a nonempty closed convex ``C``. Names follow JAXopt
(``jaxopt.projection``). Every function is written with :mod:`diffprog.numpy` so that
``diffprog.grad``/``jvp``/``vjp`` apply; the simplex projection (and hence ``sparsemax`` and the
l1-ball projection) has its own JVP rule (its Jacobian is ``diag(s) − s sᵀ/|S|`` on the support
``S``, Book §18.4), which is exact almost everywhere and never differentiates through the sort.

Example::

    >>> import numpy as np
    >>> from diffprog.optim.projections import projection_simplex
    >>> np.round(projection_simplex(np.array([0.5, 1.2, -0.3])), 12).tolist()
    [0.15, 0.85, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.custom import custom_jvp
from diffprog.core.primitive import Tracer

__all__ = [
    "projection_affine_set",
    "projection_box",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l2_ball",
    "projection_non_negative",
    "projection_simplex",
]

Array = Any


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, Tracer)


def _check_positive(name: str, value: Any, fname: str) -> None:
    if _is_concrete(value):
        v = np.asarray(value)
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{fname}: {name} must be finite and > 0, got {value!r}")


def projection_non_negative(x: Array, hyperparams: Any = None) -> Array:
    r"""Projection onto the non-negative orthant: ``max(x, 0)`` (= ReLU). Book §16.3.3.

    ``hyperparams`` is ignored (JAXopt signature).

    Example: ``projection_non_negative(np.array([-1., 2.]))`` → ``array([0., 2.])``.
    """
    del hyperparams
    return dnp.maximum(x, 0.0)


def projection_box(x: Array, hyperparams: tuple[Array, Array]) -> Array:
    r"""Projection onto the box ``{lower ≤ v ≤ upper}``: ``min(max(x, lower), upper)``.

    Book §16.3.3.

    ``hyperparams = (lower, upper)``, scalars or arrays broadcastable to ``x`` (``±inf`` allowed).
    Raises ``ValueError`` when ``lower > upper`` somewhere (empty box).

    Example: ``projection_box(np.array([-2., 0.5, 3.]), (-1.0, 1.0))`` → ``array([-1., 0.5, 1.])``.
    """
    try:
        lower, upper = hyperparams
    except (TypeError, ValueError):
        raise TypeError("projection_box: hyperparams must be a pair (lower, upper)") from None
    if _is_concrete(lower) and _is_concrete(upper):
        if np.any(np.asarray(lower) > np.asarray(upper)):
            raise ValueError("projection_box: lower > upper somewhere (empty box)")
    return dnp.minimum(dnp.maximum(x, lower), upper)


def _simplex_tau(x: Array, value: float) -> Array:
    """Threshold ``τ = max_k (Σ_{i≤k} u_i − value)/k`` (``u`` sorted decreasingly)."""
    n = dnp.shape(x)[-1]
    u = -dnp.sort(-x, axis=-1)
    ks = np.arange(1, n + 1, dtype=float)
    return dnp.max((dnp.cumsum(u, axis=-1) - value) / ks, axis=-1, keepdims=True)


def _pivot_tau_row(x: np.ndarray, value: float) -> float:
    """τ by the pivot (median-finding) method of Duchi et al. 2008 (Fig. 2): expected O(P)."""
    rest = x
    s, rho = 0.0, 0
    while rest.size:
        pivot = rest[rest.size // 2]
        greater = rest[rest >= pivot]
        ds, drho = float(greater.sum()), greater.size
        if (s + ds) - (rho + drho) * pivot < value:
            s, rho = s + ds, rho + drho
            rest = rest[rest < pivot]
        else:
            # drop the pivot itself (one copy) from the candidates above it
            above = rest[rest > pivot]
            ties = greater.size - above.size - 1
            rest = np.concatenate([above, np.full(ties, pivot)])
    return (s - value) / rho


def _simplex_tau_pivot(x: Array, value: float) -> Array:
    xv = np.asarray(x, dtype=float)
    rows = xv.reshape(-1, xv.shape[-1])
    tau = np.array([_pivot_tau_row(r, value) for r in rows])
    return tau.reshape(xv.shape[:-1] + (1,))


def _make_simplex(value: float, method: str = "sort"):
    tau_fn = _simplex_tau if method == "sort" else _simplex_tau_pivot

    @custom_jvp
    def proj(x):
        return dnp.maximum(x - tau_fn(x, value), 0.0)

    @proj.defjvp
    def proj_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        p = proj(x)
        s = dnp.where(p > 0, 1.0, 0.0)
        k = dnp.sum(s, axis=-1, keepdims=True)
        st = s * t
        return p, st - s * dnp.sum(st, axis=-1, keepdims=True) / k

    return proj


_SIMPLEX_CACHE: dict[float, Any] = {}


def projection_simplex(x: Array, value: float = 1.0, method: str = "sort") -> Array:
    r"""Projection onto the scaled simplex ``{v ≥ 0, Σ v = value}`` (along the last axis).

    ``proj(x) = max(x − τ, 0)`` with ``τ = max_k (Σ_{i≤k} u_i − value)/k`` and ``u`` the entries
    of ``x`` sorted decreasingly (``method="sort"``, O(P log P); Duchi et al. 2008, Condat 2016),
    or found by median-finding pivots (``method="pivot"``, expected O(P); Duchi et al. 2008).
    Book §16.3.3; with ``value=1`` this is ``sparsemax`` (Book §18.4). Differentiable: custom JVP
    ``ṗ = s ⊙ (ẋ − ⟨s, ẋ⟩/|S|)`` with ``s = 1[p > 0]``. ``value`` must be a positive constant.

    Example: ``projection_simplex(np.array([0.5, 1.2, -0.3]))`` → ``[0.15, 0.85, 0.]`` (τ = 0.35).
    """
    if isinstance(value, Tracer):
        raise TypeError("projection_simplex: value must be a constant (not differentiated)")
    _check_positive("value", value, "projection_simplex")
    if dnp.ndim(x) == 0:
        raise ValueError("projection_simplex: x must have at least one dimension")
    if method not in ("sort", "pivot"):
        raise ValueError(f"projection_simplex: method must be 'sort' or 'pivot', got {method!r}")
    key = (float(value), method)
    fn = _SIMPLEX_CACHE.get(key)
    if fn is None:
        fn = _SIMPLEX_CACHE[key] = _make_simplex(key[0], method)
    return fn(x)


def projection_l1_ball(x: Array, max_l1_norm: float = 1.0) -> Array:
    r"""Projection onto the l1 ball ``{‖v‖₁ ≤ r}`` (whole array, ``r = max_l1_norm``). Book §16.3.3.

    ``x`` itself when ``‖x‖₁ ≤ r``, otherwise ``sign(x) ⊙ proj_{rΔ}(|x|)`` (Duchi et al. 2008).

    Example: ``projection_l1_ball(np.array([2., -1.]), 1.0)`` → ``array([1., 0.])``.
    """
    if isinstance(max_l1_norm, Tracer):
        raise TypeError("projection_l1_ball: max_l1_norm must be a constant")
    _check_positive("max_l1_norm", max_l1_norm, "projection_l1_ball")
    shape = dnp.shape(x)
    flat = dnp.ravel(x)
    inside = dnp.sum(dnp.abs(flat)) <= max_l1_norm
    proj = dnp.sign(flat) * projection_simplex(dnp.abs(flat), max_l1_norm)
    return dnp.reshape(dnp.where(inside, flat, proj), shape)


def projection_l2_ball(x: Array, max_l2_norm: float = 1.0) -> Array:
    r"""Projection onto the l2 ball ``{‖v‖₂ ≤ r}`` (whole array): ``x · min(1, r/‖x‖₂)``.

    Book §16.3.3.

    Safe at ``x = 0`` (no NaN in the value or the derivatives).

    Example: ``projection_l2_ball(np.array([3., 4.]), 1.0)`` → ``array([0.6, 0.8])``.
    """
    _check_positive("max_l2_norm", max_l2_norm, "projection_l2_ball")
    sq = dnp.sum(x * x)
    outside = sq > max_l2_norm**2
    safe = dnp.where(outside, sq, 1.0)
    scale = dnp.where(outside, max_l2_norm / dnp.sqrt(safe), 1.0)
    return x * scale


def projection_hyperplane(x: Array, hyperparams: tuple[Array, Array]) -> Array:
    r"""Projection onto the hyperplane ``{v : ⟨a, v⟩ = b}``: ``x − (⟨a, x⟩ − b)/‖a‖² · a``.

    ``hyperparams = (a, b)`` with ``a`` a nonzero vector shaped like ``x`` and ``b`` a scalar.
    Book §16.3.3.

    Example: ``projection_hyperplane(np.array([1., 1.]), (np.array([1., 0.]), 0.0))``
    → ``[0., 1.]``.
    """
    try:
        a, b = hyperparams
    except (TypeError, ValueError):
        raise TypeError("projection_hyperplane: hyperparams must be a pair (a, b)") from None
    if dnp.shape(a) != dnp.shape(x):
        raise ValueError(
            f"projection_hyperplane: a has shape {dnp.shape(a)}, x has shape {dnp.shape(x)}"
        )
    if _is_concrete(a) and not np.any(np.asarray(a) != 0):
        raise ValueError("projection_hyperplane: a must be nonzero")
    return x - (dnp.sum(a * x) - b) / dnp.sum(a * a) * a


def projection_affine_set(x: Array, hyperparams: tuple[Array, Array]) -> Array:
    r"""Projection onto the affine set ``{v : A v = b}``: ``x − A⁺(A x − b)``.

    ``hyperparams = (A, b)`` with ``A`` of shape ``(m, n)``, ``x`` of shape ``(n,)``, ``b`` of
    shape ``(m,)``. Uses the pseudo-inverse, so rank-deficient ``A`` is fine as long as the set
    is nonempty (``b`` in the range of ``A``). Book §16.3.3.

    Example: ``projection_affine_set(np.zeros(2), (np.array([[1., 1.]]), np.array([2.])))`` →
    ``array([1., 1.])``.
    """
    try:
        A, b = hyperparams
    except (TypeError, ValueError):
        raise TypeError("projection_affine_set: hyperparams must be a pair (A, b)") from None
    sA, sx, sb = dnp.shape(A), dnp.shape(x), dnp.shape(b)
    if len(sA) != 2 or sx != (sA[1],) or sb != (sA[0],):
        raise ValueError(
            f"projection_affine_set: need A (m, n), x (n,), b (m,); got {sA}, {sx}, {sb}"
        )
    return x - dnp.linalg.pinv(A) @ (A @ x - b)
