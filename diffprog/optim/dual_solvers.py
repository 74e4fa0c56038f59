r"""Fenchel duality solvers, composite objectives and a Fenchel–Young loss factory.

Book §18.2 (Fenchel duality, Prop 18.2 weak duality, Prop 18.3 strong duality, Example 18.2),
§18.4 (Fenchel–Young losses, Def 18.4, Prop 18.6) and §16.4 (composite objectives).

Spec rows: OPT-42 (:class:`Composite`), OPT-74 (:func:`generalized_conjugate`,
:func:`primal_value`, :func:`dual_value`, :func:`fenchel_duality_gap`), OPT-75
(:func:`fenchel_dual_solve`), OPT-77 (:func:`linear_multiclass_dual`), OPT-80
(:func:`make_fenchel_young_loss`).

A convex term with a known conjugate is a :class:`ConvexTerm` ``(value, conj, conj_grad)``;
ready-made terms: :func:`squared_loss_term`, :func:`ridge_term`,
:func:`multiclass_logistic_term`.

Example (ridge solved through its dual, Book Prop 18.3)::

    >>> import numpy as np
    >>> A, y = np.eye(2), np.array([1.0, 2.0])
    >>> r = fenchel_dual_solve(squared_loss_term(y), ridge_term(1.0), A)
    >>> np.allclose(r.w, y / 2)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.custom import custom_jvp
from diffprog.scipy.special import logsumexp, softmax, xlogy

from .duality import fenchel_young_loss
from .losses import one_hot
from .solvers.base import OptResult
from .solvers.quasi_newton import lbfgs

__all__ = [
    "Composite",
    "ConvexTerm",
    "DualResult",
    "dual_value",
    "fenchel_dual_solve",
    "fenchel_duality_gap",
    "generalized_conjugate",
    "linear_multiclass_dual",
    "make_fenchel_young_loss",
    "multiclass_logistic_term",
    "primal_value",
    "ridge_term",
    "squared_loss_term",
]

Array = Any


# ---------------------------------------------------------------------------------------------
# Convex terms with conjugates


@dataclass(frozen=True)
class ConvexTerm:
    r"""A convex function with its conjugate: ``value(x)``, ``conj(u) = sup_x ⟨u,x⟩ − value(x)``
    and optionally ``conj_grad(u) = ∇conj(u)`` (the primal-recovery map, Book Prop 18.3).
    ``dual_param`` optionally maps an unconstrained ``z`` to a point α with ``conj(−α) < ∞``
    (used by :func:`fenchel_dual_solve` when ``ℓ*`` has a restricted domain).
    Book §18.2 (Fenchel duality).

    Example: ``ridge_term(2.0).conj(np.array([2.0]))`` → ``1.0``.
    """

    value: Callable[[Array], Array]
    conj: Callable[[Array], Array]
    conj_grad: Callable[[Array], Array] | None = None
    dual_param: Callable[[Array], Array] | None = None


def squared_loss_term(y: Array) -> ConvexTerm:
    r"""``ℓ(θ) = ½‖θ − y‖²`` with ``ℓ*(u) = ½‖u‖² + ⟨u, y⟩`` and ``∇ℓ*(u) = u + y``.
    Book Table 18.1.
    Book §18.2 (Fenchel duality).

    Example: ``squared_loss_term(np.ones(2)).value(np.zeros(2))`` → ``1.0``.
    """
    y = np.asarray(y, dtype=float)
    return ConvexTerm(
        value=lambda th: 0.5 * dnp.sum((th - y) ** 2),
        conj=lambda u: 0.5 * dnp.sum(u * u) + dnp.sum(u * y),
        conj_grad=lambda u: u + y,
    )


def ridge_term(lam: float) -> ConvexTerm:
    r"""``R(w) = λ/2‖w‖²`` (Frobenius for matrices), ``R*(v) = ‖v‖²/(2λ)``, ``∇R*(v) = v/λ``.
    Book Table 18.1.
    Book §18.2 (Fenchel duality).

    Example: ``ridge_term(1.0).conj_grad(np.array([3.0]))`` → ``array([3.])``.
    """
    lam = float(lam)
    if not lam > 0:
        raise ValueError(f"ridge_term: lam must be > 0, got {lam!r}")
    return ConvexTerm(
        value=lambda w: 0.5 * lam * dnp.sum(w * w),
        conj=lambda v: dnp.sum(v * v) / (2.0 * lam),
        conj_grad=lambda v: v / lam,
    )


def multiclass_logistic_term(y: Array, num_classes: int | None = None) -> ConvexTerm:
    r"""Separable multiclass logistic loss ``ℓ(Θ) = Σ_i LSE(θ_i) − θ_{i,y_i}`` on ``(N, M)``.
    Book §18.2 (Fenchel duality).

    Conjugate (Table 18.1): ``ℓ*(−α) = Σ_i ⟨μ_i, log μ_i⟩ + ι_Δ(μ_i)``, ``μ_i = e_{y_i} − α_i``.
    ``dual_param(Z) = T − softmax(Z)`` keeps ``μ_i`` in the simplex (Book Example 18.2).

    Example: ``multiclass_logistic_term([0]).value(np.zeros((1, 2)))`` → ``log 2``.
    """
    yv = np.asarray(y)
    m = int(num_classes) if num_classes is not None else int(yv.max()) + 1
    T = one_hot(yv, m)

    def conj(u):
        mu = T + u  # ℓ*(u) with u = −α  ⇒  μ = t + u
        if not isinstance(mu, np.ndarray) or (
            np.all(mu >= -1e-12) and np.allclose(np.sum(mu, axis=-1), 1.0, atol=1e-9)
        ):
            return dnp.sum(xlogy(mu, mu))
        return float("inf")

    return ConvexTerm(
        value=lambda th: dnp.sum(logsumexp(th, axis=-1)) - dnp.sum(th * T),
        conj=conj,
        conj_grad=None,
        dual_param=lambda Z: T - softmax(Z, axis=-1),
    )


# ---------------------------------------------------------------------------------------------
# OPT-74: weak duality helpers


def _default_inner(fun: Callable, w0: Array) -> OptResult:
    return lbfgs(fun, w0, tol=1e-10, maxiter=2000)


def generalized_conjugate(R: Callable, f: Callable, w0: Array,
                          solver: Callable | None = None) -> Callable[[Array], float]:
    r"""Generalized conjugate ``R^f(α) = max_w ⟨α, f(w)⟩ − R(w)`` (Book §18.2, Prop 18.2).

    Evaluated numerically by minimizing ``R(w) − ⟨α, f(w)⟩`` from ``w0`` with ``solver(fun, w0)``
    (default L-BFGS, tol 1e-10); valid when that problem has a maximizer. For linear ``f = A``
    it is ``R*(A*α)``. Returns a function of α.

    Example: with ``R = ½‖·‖²`` and ``f = id``, ``generalized_conjugate(R, f, w0)(a) = ½‖a‖²``::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> Rf = generalized_conjugate(lambda w: 0.5 * dnp.sum(w * w), lambda w: w, np.zeros(2))
        >>> round(Rf(np.array([1.0, 1.0])), 8)
        1.0
    """
    solve = solver or _default_inner

    def rf(alpha: Array) -> float:
        a = np.asarray(alpha, dtype=float)
        res = solve(lambda w: R(w) - dnp.sum(a * f(w)), w0)
        w = res.solution
        return float(np.sum(a * np.asarray(f(w))) - R(w))

    return rf


def primal_value(loss: Callable, reg: Callable, f: Callable, w: Array) -> float:
    r"""Primal objective ``P(w) = ℓ(f(w)) + R(w)`` (Book §18.2).

    Example: ``primal_value(lambda t: t @ t, lambda w: 0.0, lambda w: w, np.ones(2))`` → ``2.0``.
    """
    return float(loss(f(w)) + reg(w))


def dual_value(loss_conj: Callable, reg_conj_f: Callable, alpha: Array) -> float:
    r"""Dual objective ``D(α) = −R^f(α) − ℓ*(−α)`` (Book §18.2, Prop 18.2).

    ``loss_conj(u) = ℓ*(u)``; ``reg_conj_f(α) = R^f(α)`` (``R*(A*α)`` for linear f, or
    :func:`generalized_conjugate`). Weak duality: ``P(w) ≥ D(α)`` for all w, α.

    Example: ``dual_value(lambda u: 0.5 * u @ u, lambda a: 0.5 * a @ a, np.ones(2))`` → ``-2.0``.
    """
    a = np.asarray(alpha, dtype=float)
    return float(-reg_conj_f(a) - loss_conj(-a))


def fenchel_duality_gap(loss: ConvexTerm, reg: ConvexTerm, A: Array, w: Array,
                        alpha: Array) -> float:
    r"""``P(w) − D(α) = ℓ(Aw) + R(w) + R*(Aᵀα) + ℓ*(−α) ≥ 0`` for linear ``f = A``
    (Book Prop 18.2; the spec's ``duality_gap(w, α)``, named so as not to clash with
    :func:`diffprog.optim.duality_gap`, which takes two values).
    Book §18.2 (Fenchel duality).

    Example: ridge with A = I, y = 0, λ = 1 at w = α = 0: gap ``0.0``.
    """
    A = np.asarray(A, dtype=float)
    P = primal_value(loss.value, reg.value, lambda v: A @ v, w)
    D = dual_value(loss.conj, lambda a: reg.conj(A.T @ a), alpha)
    return P - D


# ---------------------------------------------------------------------------------------------
# OPT-75: dual solve with primal recovery


@dataclass
class DualResult:
    r"""Result of a Fenchel dual solve: ``alpha`` (dual optimum), ``w`` (recovered primal
    ``∇R*(A*α)``), ``primal`` = P(w), ``dual`` = D(α), ``gap`` = P − D and the inner
    ``opt`` :class:`OptResult`.
    Book §18.2 (Fenchel duality).

    Example: ``fenchel_dual_solve(...).gap`` → ≈ 0 at optimum.
    """

    alpha: Any
    w: Any
    primal: float
    dual: float
    gap: float
    opt: OptResult


def fenchel_dual_solve(loss: ConvexTerm, reg: ConvexTerm, A: Array,
                       solver: Callable | None = None, alpha0: Array | None = None,
                       tol: float = 1e-12, maxiter: int = 5000) -> DualResult:
    r"""Solve ``max_α −R*(A*α) − ℓ*(−α)`` and recover ``w* = ∇R*(A*α*)`` (Book Prop 18.3).
    Book §18.2 (Fenchel duality).

    Strong duality (linear A, convex ℓ, R): ``min_w ℓ(Aw)+R(w) = max_α D(α)``. ``reg.conj_grad``
    is required (R strictly convex). ``solver(fun, x0) → OptResult`` minimizes ``−D`` (default
    L-BFGS with ``tol``/``maxiter``); when ``loss.dual_param`` is set, α = dual_param(z) and the
    solver runs on z. Useful when ``dim M < dim W``.

    Example (ridge: ``α* = (AAᵀ/λ + I)⁻¹y``, ``w* = Aᵀα*/λ``)::

        >>> import numpy as np
        >>> A, y = np.array([[1.0, 2.0]]), np.array([5.0])
        >>> r = fenchel_dual_solve(squared_loss_term(y), ridge_term(1.0), A)
        >>> np.allclose(r.w, np.linalg.solve(A.T @ A + np.eye(2), A.T @ y))
        True
    """
    if reg.conj_grad is None:
        raise ValueError("fenchel_dual_solve: reg.conj_grad (∇R*) is required for primal recovery")
    A = np.asarray(A, dtype=float)
    param = loss.dual_param if loss.dual_param is not None else (lambda z: z)

    def neg_dual(z):
        a = param(z)
        return reg.conj(dnp.matmul(dnp.transpose(A), a)) + loss.conj(-a)

    z0 = np.zeros(A.shape[0]) if alpha0 is None else np.asarray(alpha0, dtype=float)
    solve = solver or (lambda fun, x0: lbfgs(fun, x0, tol=tol, maxiter=maxiter))
    res = solve(neg_dual, z0)
    alpha = np.asarray(param(np.asarray(res.solution)), dtype=float)
    w = np.asarray(reg.conj_grad(A.T @ alpha), dtype=float)
    P = float(loss.value(A @ w) + reg.value(w))
    D = float(-reg.conj(A.T @ alpha) - loss.conj(-alpha))
    return DualResult(alpha=alpha, w=w, primal=P, dual=D, gap=P - D, opt=res)


# ---------------------------------------------------------------------------------------------
# OPT-77: multiclass linear classification dual


def multiclass_forward(X: Array, W: Array) -> Array:
    r"""``(A_i W)_i = W x_i``, stacked: ``X Wᵀ`` of shape ``(N, M)`` (Book Example 18.2).

    Example: ``multiclass_forward(np.eye(2), np.eye(2))`` → identity.
    """
    return dnp.matmul(X, dnp.transpose(W))


def multiclass_adjoint(X: Array, alpha: Array) -> Array:
    r"""``A*α = Σ_i α_i x_iᵀ = αᵀX`` of shape ``(M, D)`` (Book Example 18.2).

    Example: ``multiclass_adjoint(np.eye(2), np.eye(2))`` → identity.
    """
    return dnp.matmul(dnp.transpose(alpha), X)


def linear_multiclass_dual(losses: ConvexTerm | Sequence[ConvexTerm], X: Array,
                           reg: ConvexTerm, tol: float = 1e-12,
                           maxiter: int = 5000) -> DualResult:
    r"""Dual of ``min_W Σ_i ℓ_i(W x_i) + R(W)`` (Book Example 18.2):
    ``max_{α ∈ ℝ^{N×M}} −R*(Σ_i α_i x_iᵀ) − Σ_i ℓ_i*(−α_i)``, with ``W* = ∇R*(αᵀX)``.
    Book §18.2 (Fenchel duality).

    ``losses``: one separable :class:`ConvexTerm` on the ``(N, M)`` score matrix (e.g.
    :func:`multiclass_logistic_term`) or a list of per-sample terms (their ``dual_param`` must
    then be ``None``). ``reg`` acts on ``W ∈ ℝ^{M×D}`` and needs ``conj_grad``.

    Example::

        >>> import numpy as np
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> r = linear_multiclass_dual(multiclass_logistic_term([0, 1]), X, ridge_term(1.0))
        >>> r.gap < 1e-8
        True
    """
    if reg.conj_grad is None:
        raise ValueError("linear_multiclass_dual: reg.conj_grad (∇R*) is required")
    X = np.asarray(X, dtype=float)
    if not isinstance(losses, ConvexTerm):
        terms = list(losses)
        if any(t.dual_param is not None for t in terms):
            raise ValueError("linear_multiclass_dual: per-sample terms cannot use dual_param")
        losses = ConvexTerm(
            value=lambda Th: sum(t.value(Th[i]) for i, t in enumerate(terms)),
            conj=lambda U: sum(t.conj(U[i]) for i, t in enumerate(terms)),
        )
    term = losses
    param = term.dual_param if term.dual_param is not None else (lambda z: z)
    n = X.shape[0]
    # infer M from the loss: probe with the regularizer-free value on a zero score matrix
    m = _num_classes(term, n)

    def neg_dual(z):
        a = param(z)
        return reg.conj(multiclass_adjoint(X, a)) + term.conj(-a)

    res = lbfgs(neg_dual, np.zeros((n, m)), tol=tol, maxiter=maxiter)
    alpha = np.asarray(param(np.asarray(res.solution)), dtype=float)
    W = np.asarray(reg.conj_grad(multiclass_adjoint(X, alpha)), dtype=float)
    P = float(term.value(multiclass_forward(X, W)) + reg.value(W))
    D = float(-reg.conj(multiclass_adjoint(X, alpha)) - term.conj(-alpha))
    return DualResult(alpha=alpha, w=W, primal=P, dual=D, gap=P - D, opt=res)


def _num_classes(term: ConvexTerm, n: int) -> int:
    if term.dual_param is not None:
        return int(np.shape(term.dual_param(np.zeros((n, 1))))[-1])
    raise ValueError("linear_multiclass_dual: cannot infer M; use a term with dual_param "
                     "(e.g. multiclass_logistic_term(y, num_classes))")


# ---------------------------------------------------------------------------------------------
# OPT-42: composite objectives


class Composite:
    r"""Composite objective ``F(w) = L(w) + Ω(w)`` with smooth L and prox-friendly Ω
    (Book §16.4; ``min_{w∈C} L ⇔ min L + ι_C``).

    ``smooth``: L; ``nonsmooth``: Ω (callable value, may return ``inf``, e.g.
    :func:`diffprog.optim.make_indicator`); ``prox(x, hyperparams, scaling) = prox_{scaling·Ω}(x)``
    (JAXopt convention, as :func:`proximal_gradient`). ``.value(w) = L(w) + Ω(w)``;
    ``.solve(w0, **kw)`` runs :func:`proximal_gradient`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.optim import make_indicator, make_prox_from_projection
        >>> from diffprog.optim import projection_non_negative as pnn
        >>> c = Composite(lambda w: dnp.sum((w + 1.0) ** 2), make_indicator(pnn),
        ...               make_prox_from_projection(pnn))
        >>> c.value(np.array([-1.0])), np.allclose(c.solve(np.ones(1)).solution, 0.0)
        (inf, True)
    """

    def __init__(self, smooth: Callable, nonsmooth: Callable | None = None,
                 prox: Callable | None = None, prox_params: Any = None) -> None:
        if not callable(smooth):
            raise TypeError("Composite: smooth must be callable")
        self.smooth = smooth
        self.nonsmooth = nonsmooth if nonsmooth is not None else (lambda w: 0.0)
        self._prox = prox
        self.prox_params = prox_params

    def value(self, w: Array) -> float:
        """``L(w) + Ω(w)``."""
        return float(self.smooth(w)) + float(self.nonsmooth(w))

    __call__ = value

    def prox(self, x: Array, hyperparams: Any = None, scaling: float = 1.0) -> Array:
        """``prox_{scaling·Ω}(x)``; identity when no prox was given (Ω = 0)."""
        if self._prox is None:
            return x
        hp = self.prox_params if hyperparams is None else hyperparams
        return self._prox(x, hp, scaling)

    def solve(self, w0: Array, **kw: Any) -> OptResult:
        """Minimize with :func:`diffprog.optim.proximal_gradient` (kwargs forwarded)."""
        from .solvers.first_order import proximal_gradient
        return proximal_gradient(self.smooth, w0, self.prox, self.prox_params, **kw)


# ---------------------------------------------------------------------------------------------
# OPT-80: Fenchel–Young loss factory


def make_fenchel_young_loss(omega: Callable, omega_conj: Callable,
                            grad_omega_conj: Callable) -> Callable[[Array, Array], Array]:
    r"""Fenchel–Young loss ``ℓ_Ω(θ, t) = Ω*(θ) + Ω(t) − ⟨θ, t⟩`` (Book Def 18.4, Prop 18.6).
    Book §18.4 (Fenchel-Young losses).

    ``omega``, ``omega_conj`` act on the last axis; ``grad_omega_conj = ∇Ω*`` is the prediction
    map (``loss.predict``) and defines the gradient ``∇_θ ℓ_Ω = ∇Ω*(θ) − t`` through a custom
    JVP (so Ω* may be non-smooth in code, e.g. ``max``). ``t``: a target in ``dom Ω`` or
    integer labels (one-hot). Properties: ``ℓ_Ω ≥ 0``, ``ℓ_Ω(θ, ∇Ω*(θ)) = 0``, convex in θ.
    Reuses :func:`diffprog.optim.fenchel_young_loss` with the pair ``(Ω, Ω*)``.

    Example (Ω = ½‖·‖² gives ``½‖θ − t‖²``)::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> sq = lambda v: 0.5 * dnp.sum(v * v, axis=-1)
        >>> loss = make_fenchel_young_loss(sq, sq, lambda th: th)
        >>> float(loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
        2.5
    """
    if not (callable(omega) and callable(omega_conj) and callable(grad_omega_conj)):
        raise TypeError("make_fenchel_young_loss: omega, omega_conj, grad_omega_conj must be "
                        "callable")

    @custom_jvp
    def conj(theta):
        return omega_conj(theta)

    @conj.defjvp
    def _conj_jvp(primals, tangents):
        (theta,), (dt,) = primals, tangents
        return conj(theta), dnp.sum(grad_omega_conj(theta) * dt, axis=-1)

    def loss(theta: Array, t: Array) -> Array:
        return fenchel_young_loss((omega, conj), theta, t)

    loss.predict = grad_omega_conj  # type: ignore[attr-defined]
    loss.__doc__ = "Fenchel–Young loss ℓ_Ω(θ, t) = Ω*(θ) + Ω(t) − ⟨θ, t⟩ (Book Def 18.4)."
    return loss

