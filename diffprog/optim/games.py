"""Zero-sum games, Stackelberg / saddle checks, two-timescale conditioning and the PL check.

Spec rows OPT-101, OPT-104, OPT-105, OPT-106 (optimization notes App. A.3 "Game Theory and
Minimax Optimization" (A.3.1)–(A.3.36); book §16.1.2 / notes Exercise A.1 for PL).

Convention of the notes: the leader θ *maximizes* and the follower η *minimizes* ``L(θ, η)``.
``(θ*, η*)`` is a Stackelberg equilibrium iff ``θ* ∈ argmax_θ min_η L(θ, η)`` and
``η* ∈ argmin_η L(θ*, η)``; a saddle point iff ``θ* ∈ argmax L(·, η*)`` and
``η* ∈ argmin L(θ*, ·)``. Every saddle is Stackelberg; the converse needs maxmin = minmax.

Example::

    >>> L = lambda th, et: 0.5 * th ** 2 + th * et + 0.25 * et ** 2
    >>> is_differential_stackelberg(L, 0.0, 0.0), is_saddle_point(L, 0.0, 0.0)
    (True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.api import grad, hessian
from .solvers import gda, gda_unrolled, lbfgs
from .solvers.base import OptResult, flatten

__all__ = [
    "ZeroSumGame",
    "is_saddle_point",
    "is_stackelberg",
    "game_hessian_blocks",
    "local_condition_numbers",
    "two_timescale_parameters",
    "gda_jacobian",
    "is_differential_stackelberg",
    "check_pl",
    "pl_constant",
    "pl_linear_rate_bound",
]


def _flat_game(L: Callable, theta: Any, eta: Any):
    th, un_th = flatten(theta)
    et, un_et = flatten(eta)
    m = th.size

    def F(z):
        return L(un_th(z[:m]), un_et(z[m:]))

    def F2(a, b):
        return L(un_th(a), un_et(b))

    return th, et, m, F, F2


def game_hessian_blocks(L: Callable, theta: Any, eta: Any) -> dict:
    r"""Gradient and Hessian blocks of ``L`` at ``(θ, η)`` (flattened parameters; OPT-104/105).
    Optimization notes §A.3 (min-max games).

    Returns ``{"grad_theta", "grad_eta", "H_tt" = ∇²_θL, "H_te" = ∇_θ∇_ηL (m×k),
    "H_ee" = ∇²_ηL}`` computed with one forward-over-reverse Hessian of the joint function.

    Example::

        >>> b = game_hessian_blocks(lambda t, e: t * e, 1.0, 2.0)
        >>> float(b["H_te"][0, 0]), float(b["grad_theta"][0])
        (1.0, 2.0)
    """
    th, et, m, F, _ = _flat_game(L, theta, eta)
    z = np.concatenate([th, et])
    g = np.asarray(grad(F)(z), dtype=float).reshape(-1)
    H = np.asarray(hessian(F)(z), dtype=float).reshape(z.size, z.size)
    H = 0.5 * (H + H.T)
    return {"grad_theta": g[:m], "grad_eta": g[m:], "H_tt": H[:m, :m], "H_te": H[:m, m:],
            "H_ee": H[m:, m:]}


def _schur(b: dict) -> np.ndarray:
    # S = ∇²_θL − ∇_θη L (∇²_ηL)⁻¹ ∇_ηθ L   (the notes print "+", spec O5)
    return b["H_tt"] - b["H_te"] @ np.linalg.solve(b["H_ee"], b["H_te"].T)


def is_differential_stackelberg(L: Callable, theta: Any, eta: Any, tol: float = 1e-8,
                                return_details: bool = False) -> bool | tuple[bool, dict]:
    r"""Differential Stackelberg equilibrium test (notes §A.3.1, [FCR19]/[LFD+22]; OPT-105).

    Conditions (the list was lost in the notes' extraction; standard form, leader θ maximizes):
    ``∇_ηL = 0``, ``∇²_ηL ≻ 0``, ``∇_θL = 0`` (= ``∇_θ[min_η L]`` by Danskin) and the Schur
    complement ``S = ∇²_θL − ∇_θηL(∇²_ηL)⁻¹∇_ηθL ≺ 0`` (the Hessian of ``θ ↦ min_η L(θ,η)``).
    Gradient norms must be ``≤ tol``; eigenvalues must clear ``±tol``.
    ``return_details=True`` also returns the gradients, eigenvalues and S.

    Example::

        >>> is_differential_stackelberg(lambda t, e: t ** 2 + e ** 2, 0.0, 0.0)  # S = +2
        False
    """
    b = game_hessian_blocks(L, theta, eta)
    ev_ee = np.linalg.eigvalsh(b["H_ee"])
    det = {"grad_theta_norm": float(np.linalg.norm(b["grad_theta"])),
           "grad_eta_norm": float(np.linalg.norm(b["grad_eta"])),
           "lambda_min_H_ee": float(ev_ee.min())}
    ok = (det["grad_theta_norm"] <= tol and det["grad_eta_norm"] <= tol
          and det["lambda_min_H_ee"] > tol)
    if det["lambda_min_H_ee"] > tol:
        S = _schur(b)
        det["schur"] = S
        det["lambda_max_S"] = float(np.linalg.eigvalsh(0.5 * (S + S.T)).max())
        ok = ok and det["lambda_max_S"] < -tol
    return (bool(ok), det) if return_details else bool(ok)


def local_condition_numbers(L: Callable, theta_star: Any, eta_star: Any) -> dict:
    r"""Local conditioning of two-timescale GDA at an equilibrium (notes (A.3.29)–(A.3.36),
    [LFD+22]; OPT-104).
    Optimization notes §A.3 (min-max games).

    ``β = max(‖∇²_θL‖, ‖∇²_ηL‖, ‖∇_η∇_θL‖)`` (spectral norms), ``μ_η = λ_min(∇²_ηL)``,
    ``μ_θ = min{β, λ_min(−S)}`` with ``S = ∇²_θL − ∇_θηL(∇²_ηL)⁻¹∇_ηθL`` (the notes print "+",
    spec O5), ``κ_η = β/μ_η``, ``κ_θ = β/μ_θ``. For the quadratic game
    ``L = −(a/2)θ² + bθη + (c/2)η²``: ``β = max(a, c, |b|)``, ``μ_η = c``,
    ``μ_θ = min(β, a + b²/c)``. Raises ``ValueError`` if ``∇²_ηL`` is not positive definite or
    S is not negative definite (not a differential Stackelberg point).

    Example::

        >>> d = local_condition_numbers(lambda t, e: -0.5 * t**2 + 2 * t * e + 0.5 * e**2, 0., 0.)
        >>> d["beta"], d["kappa_eta"], d["kappa_theta"]
        (2.0, 2.0, 1.0)
    """
    b = game_hessian_blocks(L, theta_star, eta_star)
    mu_eta = float(np.linalg.eigvalsh(b["H_ee"]).min())
    if mu_eta <= 0:
        raise ValueError(f"local_condition_numbers: ∇²_ηL is not positive definite "
                         f"(λ_min = {mu_eta})")
    S = _schur(b)
    lam_min_negS = float(np.linalg.eigvalsh(-0.5 * (S + S.T)).min())
    if lam_min_negS <= 0:
        raise ValueError(f"local_condition_numbers: the Schur complement is not negative "
                         f"definite (λ_min(−S) = {lam_min_negS})")
    beta = float(max(np.linalg.norm(b["H_tt"], 2), np.linalg.norm(b["H_ee"], 2),
                     np.linalg.norm(b["H_te"], 2)))
    mu_theta = min(beta, lam_min_negS)
    return {"beta": beta, "mu_eta": mu_eta, "mu_theta": mu_theta,
            "kappa_eta": beta / mu_eta, "kappa_theta": beta / mu_theta, "schur": S}


def two_timescale_parameters(L: Callable, theta_star: Any, eta_star: Any) -> tuple[float, int]:
    r"""Step size and timescale of the [LFD+22] local guarantee (notes (A.3.33)–(A.3.36);
    OPT-104): ``T = ⌈2κ_η⌉`` and ``h = 1/(4βT)``, for ``gda(L, θ0, η0, h, timescale=T)``
    (θ step ``1/(4βT)``, η step ``1/(4β)``). Near the equilibrium
    ``‖z_k − z*‖ ≤ c0(1 − c1/(Tκ_θ))^k ‖z0 − z*‖``.
    Optimization notes §A.3 (min-max games).

    Example::

        >>> two_timescale_parameters(lambda t, e: -0.5 * t**2 + 2 * t * e + 0.5 * e**2, 0., 0.)
        (0.03125, 4)
    """
    d = local_condition_numbers(L, theta_star, eta_star)
    T = int(math.ceil(2 * d["kappa_eta"] - 1e-12))
    return 1.0 / (4 * d["beta"] * T), T


def gda_jacobian(L: Callable, theta_star: Any, eta_star: Any, stepsize: float,
                 timescale: float = 1.0) -> np.ndarray:
    r"""Jacobian of the simultaneous two-timescale GDA map at ``(θ*, η*)`` (OPT-103/104):
    ``J = I + h [[∇²_θL, ∇_θηL], [−T∇_ηθL, −T∇²_ηL]]``. Its spectral radius is the local
    per-step contraction factor (< 1: locally linearly convergent).
    Optimization notes §A.3 (min-max games).

    Example::

        >>> J = gda_jacobian(lambda t, e: t * e, 0.0, 0.0, 0.1)
        >>> round(float(max(abs(np.linalg.eigvals(J)))), 6)  # √(1 + h²) > 1
        1.004988
    """
    b = game_hessian_blocks(L, theta_star, eta_star)
    M = np.block([[b["H_tt"], b["H_te"]], [-timescale * b["H_te"].T, -timescale * b["H_ee"]]])
    return np.eye(M.shape[0]) + stepsize * M


def _inner_min(F2: Callable, th: np.ndarray, et0: np.ndarray, tol: float) -> tuple[float, Any]:
    r = lbfgs(lambda e: F2(th, e), et0, maxiter=500, tol=tol)
    return float(r.value), np.asarray(r.solution, dtype=float)


def _samples(center: np.ndarray, radius: float, n: int, rng: np.random.Generator) -> list:
    d = center.size
    pts = []
    for i in range(d):
        for s in (-1.0, -0.5, -0.1, 0.1, 0.5, 1.0):
            e = np.zeros(d)
            e[i] = s * radius
            pts.append(center + e)
    pts.extend(center + radius * rng.uniform(-1, 1, size=(n, d)))
    return pts


def is_saddle_point(L: Callable, theta: Any, eta: Any, radius: float = 1.0,
                    n_samples: int = 20, tol: float = 1e-8, seed: int = 0) -> bool:
    r"""Numerical saddle-point check (notes (A.3.12); OPT-101; small dimensions only).
    Optimization notes §A.3 (min-max games).

    Tests ``L(θ, η*) ≤ L(θ*, η*) ≤ L(θ*, η)`` (up to ``tol``) on sampled θ and η in a box of
    half-width ``radius`` around the candidate (coordinate points plus ``n_samples`` uniform
    points). A sampling check: ``False`` is a certificate, ``True`` is evidence.

    Example::

        >>> is_saddle_point(lambda t, e: -t ** 2 + e ** 2, 0.0, 0.0)
        True
    """
    th, et, m, F, F2 = _flat_game(L, theta, eta)
    rng = np.random.default_rng(seed)
    v = float(F2(th, et))
    scale = tol * max(1.0, abs(v))
    if any(float(F2(t, et)) > v + scale for t in _samples(th, radius, n_samples, rng)):
        return False
    return not any(float(F2(th, e)) < v - scale for e in _samples(et, radius, n_samples, rng))


def is_stackelberg(L: Callable, theta: Any, eta: Any, radius: float = 1.0,
                   n_samples: int = 10, tol: float = 1e-6, seed: int = 0) -> bool:
    r"""Numerical Stackelberg-equilibrium check (notes (A.3.9)–(A.3.11); OPT-101; small dims).
    Optimization notes §A.3 (min-max games).

    ``η* ∈ argmin_η L(θ*, η)``: checked by sampling η around η* and by a local L-BFGS descent
    from η*; ``θ* ∈ argmax_θ φ(θ)`` with ``φ(θ) = min_η L(θ, η)``: φ is evaluated by L-BFGS
    (warm-started at η*) on sampled θ and must not exceed ``φ(θ*) = L(θ*, η*)`` by more than
    ``tol``. An unbounded inner problem counts as ``φ = −∞``. ``False`` is reliable, ``True`` is
    evidence.

    Example::

        >>> L = lambda t, e: 0.5 * t ** 2 + t * e + 0.25 * e ** 2
        >>> is_stackelberg(L, 0.0, 0.0), is_stackelberg(L, 0.1, 0.0)
        (True, False)
    """
    th, et, m, F, F2 = _flat_game(L, theta, eta)
    rng = np.random.default_rng(seed)
    v = float(F2(th, et))
    scale = tol * max(1.0, abs(v))
    if any(float(F2(th, e)) < v - scale for e in _samples(et, radius, n_samples, rng)):
        return False
    vmin, _ = _inner_min(F2, th, et, 1e-10)
    if vmin < v - scale:
        return False
    for t in _samples(th, radius, n_samples, rng):
        try:
            phi, _ = _inner_min(F2, t, et, 1e-10)
        except (FloatingPointError, OverflowError):
            continue  # unbounded below: φ(θ) = −∞ ≤ φ(θ*)
        if phi > v + scale:
            return False
    return True


@dataclass
class ZeroSumGame:
    r"""A two-player zero-sum game ``L(θ, η)``: the leader θ maximizes, the follower η minimizes
    (notes §A.3, (A.3.1)–(A.3.22); OPT-101).

    Wires the game to the checks (:func:`is_saddle_point`, :func:`is_stackelberg`,
    :func:`is_differential_stackelberg`, :func:`local_condition_numbers`) and the solvers
    (:func:`~diffprog.optim.solvers.gda`, :func:`~diffprog.optim.solvers.gda_unrolled`).

    Example::

        >>> g = ZeroSumGame(lambda t, e: -0.5 * t ** 2 + 2 * t * e + 0.5 * e ** 2)
        >>> g.value(1.0, 1.0), g.is_saddle_point(0.0, 0.0)
        (2.0, True)
    """

    L: Callable

    def __post_init__(self) -> None:
        if not callable(self.L):
            raise TypeError(f"ZeroSumGame: L must be callable L(theta, eta), got {self.L!r}")

    def value(self, theta: Any, eta: Any) -> float:
        """``L(θ, η)`` as a float."""
        return float(self.L(theta, eta))

    def grads(self, theta: Any, eta: Any) -> tuple[Any, Any]:
        """``(∇_θL, ∇_ηL)`` (same pytree structures as θ and η)."""
        return grad(self.L, 0)(theta, eta), grad(self.L, 1)(theta, eta)

    def hessian_blocks(self, theta: Any, eta: Any) -> dict:
        """See :func:`game_hessian_blocks`."""
        return game_hessian_blocks(self.L, theta, eta)

    def is_saddle_point(self, theta: Any, eta: Any, **kw: Any) -> bool:
        """See :func:`is_saddle_point`."""
        return is_saddle_point(self.L, theta, eta, **kw)

    def is_stackelberg(self, theta: Any, eta: Any, **kw: Any) -> bool:
        """See :func:`is_stackelberg`."""
        return is_stackelberg(self.L, theta, eta, **kw)

    def is_differential_stackelberg(self, theta: Any, eta: Any, **kw: Any) -> Any:
        """See :func:`is_differential_stackelberg`."""
        return is_differential_stackelberg(self.L, theta, eta, **kw)

    def local_condition_numbers(self, theta: Any, eta: Any) -> dict:
        """See :func:`local_condition_numbers`."""
        return local_condition_numbers(self.L, theta, eta)

    def gda(self, theta0: Any, eta0: Any, stepsize: float, **kw: Any) -> OptResult:
        """Gradient descent–ascent on this game (:func:`~diffprog.optim.solvers.gda`)."""
        return gda(self.L, theta0, eta0, stepsize, **kw)

    def gda_unrolled(self, theta0: Any, eta0: Any, stepsize: float, **kw: Any) -> OptResult:
        """Stackelberg GDA (:func:`~diffprog.optim.solvers.gda_unrolled`)."""
        return gda_unrolled(self.L, theta0, eta0, stepsize, **kw)


def pl_constant(f: Callable, f_star: float, samples: Any) -> float:
    r"""Empirical Polyak–Łojasiewicz constant ``min_v ½‖∇f(v)‖² / (f(v) − f*)`` over the samples
    with ``f(v) > f*`` (book §16.1.2; notes Exercise A.1; OPT-106). ``inf`` if none.

    Example::

        >>> import numpy as np
        >>> float(pl_constant(lambda x: x ** 2, 0.0, np.linspace(-1, 1, 5)))  # ½·4x²/x² = 2
        2.0
    """
    g = grad(f)
    best = math.inf
    for v in samples:
        gap = float(f(v)) - f_star
        if gap < -1e-12 * max(1.0, abs(f_star)):
            raise ValueError(f"pl_constant: f(v) = {gap + f_star} < f_star = {f_star}; "
                             "f_star is not the minimum value")
        if gap <= 0:
            continue
        gv = np.asarray(g(v), dtype=float)
        best = min(best, 0.5 * float(np.sum(gv * gv)) / gap)
    return best


def check_pl(f: Callable, mu: float, f_star: float, samples: Any, rtol: float = 1e-10) -> bool:
    r"""Check the PL inequality ``½‖∇f(v)‖² ≥ μ(f(v) − f*)`` on samples (book §16.1.2,
    gradient domination (Polyak 1963); notes Exercise A.1; OPT-106).

    Under PL and β-smoothness, gradient descent with ``h = 1/β`` converges linearly:
    ``f(θ_k) − f* ≤ (1 − μ/β)^k (f(θ_0) − f*)`` (:func:`pl_linear_rate_bound`), without
    convexity (e.g. ``f(x) = x² + 3 sin²x``, μ = 1/32, β = 8). A sampling check.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda x: x ** 2 + 3 * dnp.sin(x) ** 2
        >>> check_pl(f, 1 / 32, 0.0, np.linspace(-10, 10, 41)), check_pl(f, 5.0, 0.0, [1.0])
        (True, False)
    """
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"check_pl: mu must be finite and > 0, got {mu}")
    return bool(pl_constant(f, f_star, samples) >= mu * (1 - rtol))


def pl_linear_rate_bound(mu: float, beta: float, k: Any, gap0: float) -> Any:
    r"""GD linear-rate bound under PL: ``(1 − μ/β)^k (f(θ_0) − f*)`` with step ``h = 1/β``
    (book §16.1.2; OPT-106). Requires ``0 < μ ≤ β``.

    Example: ``pl_linear_rate_bound(1.0, 2.0, 3, 8.0)`` → ``1.0``.
    """
    if not (0 < mu <= beta):
        raise ValueError(f"pl_linear_rate_bound: need 0 < mu <= beta, got mu={mu}, beta={beta}")
    return (1.0 - mu / beta) ** np.asarray(k) * gap0
