r"""Duality: dual norms, convex conjugates (Table 18.1), Bregman divergences, Fenchel–Young losses.

Book ch. 18 (§18.1 dual norms, §18.2 Fenchel duality and Table 18.1, §18.3 Bregman divergences,
§18.4 Fenchel–Young losses). Conjugates are returned as values; indicator terms evaluate to
``+inf`` outside their domain (never a finite number). Everything that is finite and smooth is
written with :mod:`diffprog.numpy`, so ``diffprog.grad`` applies.

Example::

    >>> import numpy as np
    >>> from diffprog.optim.duality import fenchel_young_loss
    >>> theta, y = np.array([1.0, 2.0, 3.0]), 0
    >>> round(float(fenchel_young_loss("logistic", theta, y)), 12)
    2.407605964444
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import diffprog
import diffprog.numpy as dnp
from diffprog.core.custom import custom_jvp
from diffprog.core.primitive import Tracer
from diffprog.scipy.special import logsumexp, softmax, xlogy

from .losses import one_hot
from .projections import projection_simplex

__all__ = [
    "bregman_divergence",
    "conjugate_absolute_loss",
    "conjugate_entropy",
    "conjugate_hinge_loss",
    "conjugate_l1",
    "conjugate_logistic_loss",
    "conjugate_logsumexp",
    "conjugate_max",
    "conjugate_norm",
    "conjugate_perceptron_loss",
    "conjugate_squared_loss",
    "conjugate_squared_norm",
    "conjugate_squared_simplex",
    "dual_exponent",
    "dual_norm",
    "fenchel_young_loss",
    "fenchel_young_predict",
    "fy_logistic",
    "fy_perceptron",
    "fy_sparsemax",
    "fy_squared",
    "generalized_kl",
    "negentropy",
    "norm",
    "sparsemax",
    "squared_euclidean",
]

Array = Any
_TOL = 1e-9

# ---------------------------------------------------------------------------------------------
# Norms and dual norms (§18.1)


def _exponent(p: Any, fname: str) -> float:
    names = {"l1": 1.0, "l2": 2.0, "linf": np.inf, "inf": np.inf, "max": np.inf}
    if isinstance(p, str):
        if p.lower() not in names:
            raise ValueError(
                f"{fname}: unknown norm {p!r}; use a number in [1, inf] or {sorted(names)}"
            )
        return names[p.lower()]
    try:
        q = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"{fname}: norm exponent must be a number or a name, got {p!r}") from None
    if not q >= 1:
        raise ValueError(f"{fname}: p must be in [1, inf] (p < 1 is not a norm), got {p!r}")
    return q


def dual_exponent(p: Any) -> float:
    r"""The dual exponent ``q`` with ``1/p + 1/q = 1`` (1 ↔ inf, 2 ↔ 2). Names 'l1', 'l2', 'linf'.

    Book §18.1 Example 18.1. Example: ``dual_exponent(3)`` → ``1.5``.
    """
    q = _exponent(p, "dual_exponent")
    if q == 1.0:
        return np.inf
    if q == np.inf:
        return 1.0
    return q / (q - 1.0)


def norm(x: Array, p: Any = 2) -> Array:
    r"""The ``p``-norm of the whole array, ``‖x‖_p = (Σ|x_i|^p)^{1/p}``, ``p ∈ [1, inf]``.
    Book §18.1 (dual norms).

    Example: ``norm(np.array([3., -4.]), 1)`` → ``7.0``.
    """
    q = _exponent(p, "norm")
    a = dnp.abs(dnp.ravel(x))
    if q == np.inf:
        return dnp.max(a)
    if q == 1.0:
        return dnp.sum(a)
    if q == 2.0:
        return dnp.sqrt(dnp.sum(a * a))
    return dnp.sum(a**q) ** (1.0 / q)


def dual_norm(v: Array, p: Any = 2) -> Array:
    r"""Dual norm ``‖v‖_* = max_{‖u‖_p ≤ 1} ⟨u, v⟩ = ‖v‖_q`` with ``1/p + 1/q = 1``. Book Def 18.1.
    Book §18.1 (dual norms).

    ``p`` is a number in ``[1, inf]`` or a name ('l1', 'l2', 'linf'); ``p < 1`` is rejected.

    Example: ``dual_norm(np.array([1., -3.]), 1)`` → ``3.0`` (the l∞ norm).
    """
    return norm(v, dual_exponent(p))


# ---------------------------------------------------------------------------------------------
# Conjugates (Prop 18.1, Table 18.1)


def _indicator(cond: Array) -> Array:
    """0 where ``cond`` holds, ``+inf`` elsewhere."""
    return dnp.where(cond, 0.0, np.inf)


def _in_simplex(mu: Array, tol: float = _TOL) -> Array:
    return dnp.logical_and(dnp.all(mu >= -tol, axis=-1), dnp.abs(dnp.sum(mu, axis=-1) - 1.0) <= tol)


def conjugate_norm(v: Array, p: Any = 2, tol: float = _TOL) -> Array:
    r"""Conjugate of ``‖·‖_p``: the indicator of the dual unit ball, ``ι_{‖v‖_q ≤ 1}`` (Prop 18.1).
    Book §18.1 (dual norms).

    Example: ``conjugate_norm(np.array([0.5, 0.5]), 2)`` → ``0.0``; ``[2., 0.]`` → ``inf``.
    """
    return _indicator(dual_norm(v, p) <= 1.0 + tol)


def conjugate_l1(v: Array, tol: float = _TOL) -> Array:
    r"""Conjugate of ``‖·‖₁``: the indicator of the l∞ unit ball ``ι_{max|v_i| ≤ 1}`` (Prop 18.1).
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_l1(np.array([1., -0.3]))`` → ``0.0``.
    """
    return conjugate_norm(v, 1, tol)


def conjugate_squared_norm(v: Array, p: Any = 2) -> Array:
    r"""Conjugate of ``½‖·‖_p²``: ``½‖v‖_q²`` (dual norm, Prop 18.1).
    Book §18.1 (dual norms).

    Example: ``conjugate_squared_norm(np.array([1., -2.]), 1)`` → ``2.0`` (½·2²).
    """
    d = dual_norm(v, p)
    return 0.5 * d * d


def conjugate_entropy(theta: Array) -> Array:
    r"""Conjugate of the negentropy on the simplex ``Ω(μ) = ⟨μ, log μ⟩ + ι_Δ(μ)``: ``logsumexp(θ)``.

    Gradient ``softmax(θ)`` (last axis). Book §18.4, Table 18.1 (logistic row).

    Example: ``conjugate_entropy(np.zeros(2))`` → ``log 2``.
    """
    return logsumexp(theta, axis=-1)


def conjugate_logsumexp(mu: Array, tol: float = _TOL) -> Array:
    r"""Conjugate of ``logsumexp``: ``⟨μ, log μ⟩ + ι_Δ(μ)`` (0 log 0 = 0; ``+inf`` off the simplex).
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_logsumexp(np.array([0.5, 0.5]))`` → ``−log 2``.
    """
    return dnp.sum(xlogy(mu, dnp.maximum(mu, 0.0)), axis=-1) + _indicator(_in_simplex(mu, tol))


def conjugate_max(mu: Array, tol: float = _TOL) -> Array:
    r"""Conjugate of ``θ ↦ max_i θ_i`` (the support function of Δ): ``ι_Δ(μ)``.
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_max(np.array([0.2, 0.8]))`` → ``0.0``.
    """
    return _indicator(_in_simplex(mu, tol))


@custom_jvp
def _squared_simplex_conj(theta):
    p = projection_simplex(theta)
    return dnp.sum(theta * p, axis=-1) - 0.5 * dnp.sum(p * p, axis=-1)


@_squared_simplex_conj.defjvp
def _squared_simplex_conj_jvp(primals, tangents):
    (theta,), (t,) = primals, tangents
    p = projection_simplex(theta)
    return _squared_simplex_conj(theta), dnp.sum(p * t, axis=-1)


def conjugate_squared_simplex(theta: Array) -> Array:
    r"""Conjugate of ``Ω = ½‖·‖² + ι_Δ``: ``Ω*(θ) = ⟨θ, p⟩ − ½‖p‖²`` with ``p = sparsemax(θ)``.

    Its gradient is ``sparsemax(θ)`` (custom JVP). Book §18.4 (sparsemax), OPT-79.

    Example: ``conjugate_squared_simplex(np.array([0., 5.]))`` → ``4.5``.
    """
    return _squared_simplex_conj(theta)


def _check_same_shape(a: Array, b: Array, fname: str) -> None:
    if dnp.shape(a) != dnp.shape(b):
        raise ValueError(f"{fname}: shapes {dnp.shape(a)} and {dnp.shape(b)} differ")


def conjugate_squared_loss(alpha: Array, t: Array) -> Array:
    r"""Table 18.1, squared ``ℓ(θ) = ½‖θ − t‖²``: ``ℓ*(−α) = ½‖α‖² − ⟨t, α⟩`` (last axis).
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_squared_loss(np.array([1., 0.]), np.array([1., 1.]))`` → ``-0.5``.
    """
    _check_same_shape(alpha, t, "conjugate_squared_loss")
    return 0.5 * dnp.sum(alpha * alpha, axis=-1) - dnp.sum(t * alpha, axis=-1)


def conjugate_absolute_loss(alpha: Array, t: Array, tol: float = _TOL) -> Array:
    r"""Table 18.1, absolute ``ℓ(θ) = ‖θ − t‖₁``: ``ℓ*(−α) = ι_{[−1,1]^M}(α) − ⟨t, α⟩``.
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_absolute_loss(np.array([0.5, 0.]), np.array([2., 0.]))`` → ``-1.0``.
    """
    _check_same_shape(alpha, t, "conjugate_absolute_loss")
    inside = dnp.all(dnp.abs(alpha) <= 1.0 + tol, axis=-1)
    return _indicator(inside) - dnp.sum(t * alpha, axis=-1)


def conjugate_logistic_loss(alpha: Array, t: Array, tol: float = _TOL) -> Array:
    r"""Table 18.1, logistic ``ℓ(θ) = LSE(θ) − ⟨θ, t⟩``: ``ℓ*(−α) = ⟨μ, log μ⟩ + ι_Δ(μ)``,
    ``μ = t − α``.
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_logistic_loss(np.array([0.5, -0.5]), np.array([1., 0.]))`` → ``−log 2``.
    """
    _check_same_shape(alpha, t, "conjugate_logistic_loss")
    return conjugate_logsumexp(t - alpha, tol)


def conjugate_perceptron_loss(alpha: Array, t: Array, tol: float = _TOL) -> Array:
    r"""Table 18.1, perceptron ``ℓ(θ) = max_i θ_i − θ_y``: ``ℓ*(−α) = ι_Δ(μ)``, ``μ = t − α``.
    Book §18.2 (Fenchel duality, Table 18.1).

    Example: ``conjugate_perceptron_loss(np.array([0.5, -0.5]), np.array([1., 0.]))`` → ``0.0``.
    """
    _check_same_shape(alpha, t, "conjugate_perceptron_loss")
    return conjugate_max(t - alpha, tol)


def conjugate_hinge_loss(alpha: Array, t: Array, tol: float = _TOL) -> Array:
    r"""Table 18.1, hinge ``ℓ(θ) = max_i([i≠y] + θ_i) − θ_y``: ``ℓ*(−α) = ι_Δ(μ) − ⟨1 − t, μ⟩``.
    Book §18.2 (Fenchel duality, Table 18.1).

    ``μ = t − α``. Example: ``conjugate_hinge_loss(np.array([0.5, -0.5]), np.array([1., 0.]))``
    → ``-0.5``.
    """
    _check_same_shape(alpha, t, "conjugate_hinge_loss")
    mu = t - alpha
    return conjugate_max(mu, tol) - dnp.sum((1.0 - t) * mu, axis=-1)


# ---------------------------------------------------------------------------------------------
# Bregman divergences (§18.3)


def bregman_divergence(
    phi: Callable[[Array], Array],
    x: Array,
    y: Array,
    grad_phi: Callable[[Array], Array] | None = None,
) -> Array:
    r"""Bregman divergence ``B_φ(x, y) = φ(x) − φ(y) − ⟨∇φ(y), x − y⟩`` (Book Def 18.2).
    Book §18.3 (Bregman divergences).

    ``∇φ`` comes from ``diffprog.grad(phi)`` unless ``grad_phi`` is given; ``φ`` must be scalar,
    convex and differentiable at ``y``. ``φ = ½‖·‖²`` gives ``½‖x − y‖²``; the negentropy gives
    the generalized KL.

    Example: ``bregman_divergence(lambda u: 0.5 * dnp.sum(u * u), x, y)`` == ``½‖x − y‖²``.
    """
    if not callable(phi):
        raise TypeError("bregman_divergence: phi must be a callable")
    if dnp.shape(x) != dnp.shape(y):
        raise ValueError(f"bregman_divergence: shapes {dnp.shape(x)} and {dnp.shape(y)} differ")
    g = (grad_phi or diffprog.grad(phi))(y)
    return phi(x) - phi(y) - dnp.sum(g * (x - y))


def squared_euclidean(x: Array, y: Array) -> Array:
    r"""``½‖x − y‖²``, the Bregman divergence of ``½‖·‖²`` (Book Example 18.3).
    Book §18.3 (Bregman divergences).

    Example: ``squared_euclidean(np.array([1., 0.]), np.zeros(2))`` → ``0.5``.
    """
    if dnp.shape(x) != dnp.shape(y):
        raise ValueError(f"squared_euclidean: shapes {dnp.shape(x)} and {dnp.shape(y)} differ")
    d = x - y
    return 0.5 * dnp.sum(d * d)


def negentropy(u: Array) -> Array:
    r"""``⟨u, log u⟩`` with ``0 log 0 = 0`` (``u ≥ 0``), summed over the whole array.
    Book §18.3 (Bregman divergences).

    Example: ``negentropy(np.array([0.5, 0.5]))`` → ``−log 2``.
    """
    return dnp.sum(xlogy(u, u))


def generalized_kl(u: Array, v: Array) -> Array:
    r"""Generalized KL ``Σ u_j log(u_j/v_j) − Σ u_j + Σ v_j`` (Book Example 18.3), ``u, v ≥ 0``.
    Book §18.3 (Bregman divergences).

    Conventions: ``0 log 0 = 0``; ``v_j = 0 < u_j`` gives ``+inf``. Bregman divergence of
    ``⟨u, log u⟩`` on ``ℝ₊``.

    Example: ``generalized_kl(np.array([1., 1.]), np.array([1., 1.]))`` → ``0.0``.
    """
    if dnp.shape(u) != dnp.shape(v):
        raise ValueError(f"generalized_kl: shapes {dnp.shape(u)} and {dnp.shape(v)} differ")
    for name, a in (("u", u), ("v", v)):
        if not isinstance(a, Tracer) and np.any(np.asarray(a) < 0):
            raise ValueError(f"generalized_kl: {name} must be >= 0")
    return dnp.sum(xlogy(u, u) - xlogy(u, v) - u + v)


# ---------------------------------------------------------------------------------------------
# Fenchel–Young losses (§18.4)


def sparsemax(theta: Array) -> Array:
    r"""Sparsemax ``= argmin_{p ∈ Δ} ‖p − θ‖² = projection_simplex(θ)`` (last axis). Book §18.4.

    It is ``∇Ω*`` for ``Ω = ½‖·‖² + ι_Δ``. Differentiable (custom JVP).

    Example: ``sparsemax(np.array([0.5, 1.2, -0.3]))`` → ``array([0.15, 0.85, 0.])``.
    """
    return projection_simplex(theta)


def _argmax_one_hot(theta: Array) -> Array:
    th = np.asarray(diffprog.stop_gradient(theta) if isinstance(theta, Tracer) else theta)
    if isinstance(th, Tracer):  # pragma: no cover - nested tracing
        raise TypeError("perceptron prediction is piecewise constant and not traceable here")
    return one_hot(np.argmax(th, axis=-1), th.shape[-1])


_ALIASES = {
    "logistic": "logistic",
    "softmax": "logistic",
    "entropy": "logistic",
    "shannon": "logistic",
    "sparsemax": "sparsemax",
    "squared_simplex": "sparsemax",
    "perceptron": "perceptron",
    "max": "perceptron",
    "squared": "squared",
}


def _canonical(name: str) -> str:
    key = name.lower() if isinstance(name, str) else name
    if key not in _ALIASES:
        raise ValueError(
            f"fenchel_young_loss: unknown regularizer {name!r}; choose one of {sorted(_ALIASES)} "
            "or pass a pair (omega, omega_conj)"
        )
    return _ALIASES[key]


def _check_simplex_target(t: Array, fname: str) -> None:
    if isinstance(t, Tracer):
        return
    a = np.asarray(t, dtype=float)
    if np.any(a < -_TOL) or np.any(np.abs(a.sum(axis=-1) - 1.0) > 1e-8):
        raise ValueError(f"{fname}: target must lie in the probability simplex (last axis)")


def fenchel_young_predict(regularizer: str, theta: Array) -> Array:
    r"""The prediction ``∇Ω*(θ)`` of a named regularizer: softmax, sparsemax, argmax (one-hot) or θ.
    Book §18.4 (Fenchel-Young losses).

    Example: ``fenchel_young_predict("sparsemax", np.array([0., 5.]))`` → ``array([0., 1.])``.
    """
    kind = _canonical(regularizer)
    if kind == "logistic":
        return softmax(theta, axis=-1)
    if kind == "sparsemax":
        return projection_simplex(theta)
    if kind == "perceptron":
        return _argmax_one_hot(theta)
    return theta


def fenchel_young_loss(regularizer: Any, theta: Array, y: Array) -> Array:
    r"""Fenchel–Young loss ``ℓ_Ω(θ, t) = Ω*(θ) + Ω(t) − ⟨θ, t⟩`` over the last axis (Book Def 18.4).
    Book §18.4 (Fenchel-Young losses).

    ``regularizer``: a name or a pair ``(omega, omega_conj)`` of callables acting on the last axis.

    ================  ==============================  =================  ======================
    name              Ω                               Ω*                 prediction ∇Ω*
    ================  ==============================  =================  ======================
    'logistic'        ``⟨t, log t⟩ + ι_Δ``           ``logsumexp``      softmax
    'sparsemax'       ``½‖t‖² + ι_Δ``                ``⟨θ,p⟩ − ½‖p‖²``  sparsemax
    'perceptron'      ``ι_Δ``                         ``max``            argmax
    'squared'         ``½‖t‖²``                      ``½‖θ‖²``          identity
    ================  ==============================  =================  ======================

    ``y``: integer labels (→ one-hot ``e_y``) or targets ``t`` shaped like ``θ``; simplex
    regularizers require ``t ∈ Δ`` (raises otherwise). ``ℓ_Ω ≥ 0`` and ``ℓ_Ω(θ, ∇Ω*(θ)) = 0``;
    ``∇_θ ℓ_Ω = ∇Ω*(θ) − t`` (Prop 18.6). 'logistic' is the softmax cross-entropy.

    Example: ``fenchel_young_loss("perceptron", np.array([1., 3.]), 0)`` → ``2.0``.
    """
    if dnp.ndim(theta) == 0:
        raise ValueError("fenchel_young_loss: theta must have a last (class) axis")
    m = dnp.shape(theta)[-1]
    if not isinstance(y, Tracer) and np.issubdtype(np.asarray(y).dtype, np.integer):
        yc = np.asarray(y)
        if yc.shape != tuple(dnp.shape(theta)[:-1]):
            raise ValueError(
                f"fenchel_young_loss: integer labels of shape {yc.shape} do not match theta "
                f"of shape {dnp.shape(theta)}"
            )
        t = one_hot(yc, m)
    else:
        t = y
        if dnp.shape(t) != dnp.shape(theta):
            raise ValueError(
                f"fenchel_young_loss: target shape {dnp.shape(t)} != theta shape {dnp.shape(theta)}"
            )
    inner = dnp.sum(theta * t, axis=-1)
    if isinstance(regularizer, tuple):
        if len(regularizer) != 2 or not all(callable(f) for f in regularizer):
            raise TypeError("fenchel_young_loss: pass a pair (omega, omega_conj) of callables")
        omega, omega_conj = regularizer
        return omega_conj(theta) + omega(t) - inner
    kind = _canonical(regularizer)
    if kind == "squared":
        return 0.5 * dnp.sum(theta * theta, axis=-1) + 0.5 * dnp.sum(t * t, axis=-1) - inner
    _check_simplex_target(t, "fenchel_young_loss")
    if kind == "logistic":
        return logsumexp(theta, axis=-1) + dnp.sum(xlogy(t, t), axis=-1) - inner
    if kind == "sparsemax":
        return _squared_simplex_conj(theta) + 0.5 * dnp.sum(t * t, axis=-1) - inner
    return dnp.max(theta, axis=-1) - inner  # perceptron


def fy_logistic(theta: Array, y: Array) -> Array:
    """``fenchel_young_loss('logistic', θ, y) = LSE(θ) − θ_y`` (softmax cross-entropy).
    Book §18.4 (Fenchel-Young losses).

    Example: ``fy_logistic(np.array([3.0, 0.0]), 0)`` is 0 or positive (0 when the
    prediction equals the target).
    """
    return fenchel_young_loss("logistic", theta, y)


def fy_sparsemax(theta: Array, y: Array) -> Array:
    """``fenchel_young_loss('sparsemax', θ, y)``, gradient ``sparsemax(θ) − t``.
    Book §18.4 (Fenchel-Young losses).

    Example: ``fy_sparsemax(np.array([3.0, 0.0]), 0)`` is 0 or positive (0 when the
    prediction equals the target).
    """
    return fenchel_young_loss("sparsemax", theta, y)


def fy_perceptron(theta: Array, y: Array) -> Array:
    """``fenchel_young_loss('perceptron', θ, y) = max θ − θ_y``.
    Book §18.4 (Fenchel-Young losses).

    Example: ``fy_perceptron(np.array([3.0, 0.0]), 0)`` is 0 or positive (0 when the
    prediction equals the target).
    """
    return fenchel_young_loss("perceptron", theta, y)


def fy_squared(theta: Array, y: Array) -> Array:
    """``fenchel_young_loss('squared', θ, y) = ½‖θ − t‖²``.
    Book §18.4 (Fenchel-Young losses).

    Example: ``fy_squared(np.array([3.0, 0.0]), 0)`` is 0 or positive (0 when the
    prediction equals the target).
    """
    return fenchel_young_loss("squared", theta, y)
