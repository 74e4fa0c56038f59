"""Function-class constants, property checks, rate diagnostics and stopping residuals.

Book §15.4 (Lipschitz, smooth, convex, strongly convex: Defs 15.1–15.7), §15.5 (performance
guarantees, progress ratios), §16.3.2/§16.4.2 (optimality conditions). Curvature estimates use
Hessian-vector products only (Lanczos with full reorthogonalization, or plain power iteration),
so the Hessian is never formed. Property checks sample pairs from a user ``sampler(rng)`` and
report the worst violation. Errata (spec O5) pinned here: Def 15.4 uses ``β‖w−v‖`` (not β/2),
Def 15.7 uses ``⟨∇L(w), v−w⟩``, §17.1.4's quadratic rate is ``exp(−exp(t))``.

Example::

    >>> import numpy as np
    >>> classify_rate(0.5 ** np.arange(30))
    'linear'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.api import grad as _grad
from ..core.api import hessian as _hessian
from ..core.api import hvp as _hvp
from ..core.pytree import ravel_pytree

__all__ = [
    "PropertyCheck",
    "StoppingCriterion",
    "check_convex",
    "check_jensen",
    "check_lipschitz",
    "check_smooth",
    "check_strictly_convex",
    "check_strongly_convex",
    "classify_rate",
    "condition_number",
    "convergence_order",
    "duality_gap",
    "estimate_smoothness",
    "estimate_strong_convexity",
    "fixed_point_residual",
    "grad_norm",
    "iterations_to_accuracy",
    "objective_gap",
    "operator_norm",
    "progress_ratios",
]


def _rng(fname: str, rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{fname}: argument 'rng' must be a numpy Generator, an int seed or None, got {rng!r}"
    )


def _flat(x: Any) -> np.ndarray:
    return np.asarray(ravel_pytree(x)[0], dtype=float)


def _norm_fn(fname: str, norm: Any) -> Callable[[np.ndarray], float]:
    if callable(norm):
        return lambda x: float(norm(x))
    if norm in (1, 2, np.inf, "inf"):
        p = np.inf if norm == "inf" else norm
        return lambda x: float(np.linalg.norm(np.ravel(x), p))
    raise ValueError(f"{fname}: argument 'norm' must be 1, 2, inf or a callable, got {norm!r}")


def _dual_norm_fn(fname: str, norm: Any, dual_norm: Any) -> Callable[[np.ndarray], float]:
    if dual_norm is not None:
        return _norm_fn(fname, dual_norm)
    if callable(norm):
        raise ValueError(f"{fname}: give 'dual_norm' when 'norm' is a callable")
    p = {1: np.inf, 2: 2, np.inf: 1, "inf": 1}[norm]
    return _norm_fn(fname, p)


# --------------------------------------------------------------------------- curvature (OPT-05/06)


def operator_norm(A: Any) -> float:
    r"""Operator norm ``‖A‖_op = σ_max(A)`` (Peyré 003 §14.1.4; Book §15.4.2).

    For least squares ``½‖Ax−y‖²`` the smoothness constant is ``β = ‖A‖²_op``, hence the ISTA
    step ``τ ≤ 1/‖A‖²_op``.

    Example: ``operator_norm(np.diag([3., -4.]))`` → ``4.0``.
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.size == 0:
        raise ValueError(
            f"operator_norm: argument 'A' must be a non-empty 2-D matrix, got shape {A.shape}"
        )
    return float(np.linalg.norm(A, 2))


def _hvp_matvec(
    fname: str, f: Callable[[Any], Any], w: Any
) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    if not callable(f):
        raise TypeError(f"{fname}: argument 'f' must be callable")
    w_flat, unravel = ravel_pytree(w)
    w_flat = np.asarray(w_flat, dtype=float)
    if w_flat.size == 0:
        raise ValueError(f"{fname}: argument 'w' has no entries")
    return (lambda v: _flat(_hvp(f, w, unravel(v)))), w_flat.size


def _lanczos(
    matvec: Callable[[np.ndarray], np.ndarray], p: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    q = rng.standard_normal(p)
    q /= np.linalg.norm(q)
    Q = [q]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(min(k, p)):
        z = matvec(Q[j])
        a = float(Q[j] @ z)
        alphas.append(a)
        for _ in range(2):  # full reorthogonalization, twice is enough
            Qm = np.array(Q)
            z = z - Qm.T @ (Qm @ z)
        b = float(np.linalg.norm(z))
        scale = max(abs(a), *(abs(x) for x in betas), 1e-300) if betas else max(abs(a), 1e-300)
        if j == min(k, p) - 1 or b <= 1e-12 * scale:
            break
        betas.append(b)
        Q.append(z / b)
    T = (
        np.diag(alphas)
        + np.diag(betas[: len(alphas) - 1], 1)
        + np.diag(betas[: len(alphas) - 1], -1)
    )
    return np.linalg.eigvalsh(T)


def _power(
    matvec: Callable[[np.ndarray], np.ndarray],
    p: int,
    n_iter: int,
    tol: float,
    rng: np.random.Generator,
    shift: float = 0.0,
) -> float:
    v = rng.standard_normal(p)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(n_iter):
        z = matvec(v) - shift * v
        lam_new = float(v @ z)
        nz = float(np.linalg.norm(z))
        if nz == 0.0:
            return shift
        v = z / nz
        if abs(lam_new - lam) <= tol * max(abs(lam_new), 1e-300):
            lam = lam_new
            break
        lam = lam_new
    return lam + shift


def _check_method(fname: str, method: str) -> None:
    if method not in ("lanczos", "power"):
        raise ValueError(f"{fname}: argument 'method' must be 'lanczos' or 'power', got {method!r}")


def estimate_smoothness(
    f: Callable[[Any], Any],
    w: Any,
    n_iter: int = 100,
    method: str = "lanczos",
    tol: float = 1e-12,
    rng: Any = 0,
) -> float:
    r"""Local smoothness ``β = λ_max(∇²L(w))`` from HVPs (Book §15.4.2, Def 15.3).

    Exact for quadratics (where it is the global constant), e.g. ``β = ‖A‖²_op`` for
    ``½‖Ax−y‖²``. ``method='lanczos'`` (default; exact after ``P`` steps) or ``'power'`` (power
    iteration, converges at the rate ``λ₂/λ₁``; returns the eigenvalue of largest magnitude).

    Example::

        >>> round(estimate_smoothness(lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2, np.ones(2)), 12)
        1.0
    """
    _check_method("estimate_smoothness", method)
    matvec, p = _hvp_matvec("estimate_smoothness", f, w)
    g = _rng("estimate_smoothness", rng)
    if method == "power":
        return _power(matvec, p, n_iter, tol, g)
    return float(_lanczos(matvec, p, max(n_iter, 1), g)[-1])


def estimate_strong_convexity(
    f: Callable[[Any], Any],
    w: Any,
    n_iter: int = 100,
    method: str = "lanczos",
    tol: float = 1e-12,
    rng: Any = 0,
) -> float:
    r"""Local strong-convexity constant ``μ = λ_min(∇²L(w))`` from HVPs (Book §15.4.4).

    Twice differentiable ``L`` is μ-strongly convex iff ``∇²L ⪰ μI``; a result ``≤ 0`` means not
    strongly convex at ``w``. ``'power'`` runs power iteration on ``βI − ∇²L`` (shifted).

    Example::

        >>> f = lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2
        >>> round(estimate_strong_convexity(f, np.ones(2)), 12)
        0.1
    """
    _check_method("estimate_strong_convexity", method)
    matvec, p = _hvp_matvec("estimate_strong_convexity", f, w)
    g = _rng("estimate_strong_convexity", rng)
    if method == "power":
        beta = abs(_power(matvec, p, n_iter, tol, g))
        return _power(matvec, p, 10 * n_iter, tol, g, shift=beta)
    return float(_lanczos(matvec, p, max(n_iter, 1), g)[0])


def condition_number(f: Callable[[Any], Any], w: Any, n_iter: int = 100, rng: Any = 0) -> float:
    r"""``κ = β/μ`` at ``w`` (Book §15.4.4); ``inf`` when ``μ ≤ 0``.

    Example::

        >>> round(condition_number(lambda w: 0.05 * w[0] ** 2 + 0.5 * w[1] ** 2, np.ones(2)), 10)
        10.0
    """
    matvec, p = _hvp_matvec("condition_number", f, w)
    ev = _lanczos(matvec, p, max(n_iter, 1), _rng("condition_number", rng))
    return float(ev[-1] / ev[0]) if ev[0] > 0 else math.inf


# ----------------------------------------------------------------- property checks (OPT-07)


@dataclass(frozen=True)
class PropertyCheck:
    """Outcome of a property check; truthy when no sampled pair violated the inequality.
    Book §15.4 (classes of functions).

    ``worst`` is the largest violation ``lhs − rhs`` found (≤ atol when passed).

    Example: ``check_convex(f, sampler, rng=0)`` returns a ``PropertyCheck(passed, worst,
    n_tested)``.
    """

    passed: bool
    worst: float
    n_tested: int

    def __bool__(self) -> bool:
        return self.passed


def _pairs(fname: str, sampler: Any, n_pairs: int, rng: Any):
    if not callable(sampler):
        raise TypeError(f"{fname}: argument 'sampler' must be a callable rng -> point")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, numbers.Integral) or n_pairs < 1:
        raise ValueError(f"{fname}: argument 'n_pairs' must be an integer >= 1, got {n_pairs!r}")
    g = _rng(fname, rng)
    for _ in range(int(n_pairs)):
        yield np.asarray(sampler(g), dtype=float), np.asarray(sampler(g), dtype=float), g


def _result(viol: list[float], atol: float) -> PropertyCheck:
    worst = max(viol) if viol else -math.inf
    return PropertyCheck(bool(worst <= atol), float(worst), len(viol))


def _val(f: Callable[[Any], Any], w: np.ndarray) -> float:
    out = np.asarray(f(w), dtype=float)
    if out.size != 1:
        raise ValueError(f"property check: f must return a scalar, got shape {out.shape}")
    return float(out.reshape(()))


def check_lipschitz(
    g: Callable[[Any], Any],
    beta: float,
    sampler: Callable[[np.random.Generator], Any],
    norm: Any = 2,
    dual_norm: Any = None,
    n_pairs: int = 1000,
    atol: float = 1e-10,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check ``‖g(w) − g(v)‖_* ≤ β‖w − v‖`` on pairs drawn by ``sampler`` (Book §15.4.1, Def 15.1).

    For vector-valued ``g`` (a gradient) the left norm is the dual norm (ℓ₁ ↔ ℓ∞, ℓ₂ ↔ ℓ₂).

    Example::

        >>> bool(check_lipschitz(np.sin, 1.0, lambda r: r.normal(size=1), n_pairs=50))
        True
    """
    n = _norm_fn("check_lipschitz", norm)
    nd = _dual_norm_fn("check_lipschitz", norm, dual_norm)
    viol = [
        nd(np.asarray(g(w)) - np.asarray(g(v))) - beta * n(w - v)
        for w, v, _ in _pairs("check_lipschitz", sampler, n_pairs, rng)
    ]
    return _result(viol, atol)


def _bregman(
    f: Callable[[Any], Any], gf: Callable[[Any], Any], w: np.ndarray, v: np.ndarray
) -> float:
    return _val(f, w) - _val(f, v) - float(np.vdot(np.asarray(gf(v), dtype=float), w - v))


def check_smooth(
    f: Callable[[Any], Any],
    beta: float,
    sampler: Callable[[np.random.Generator], Any],
    norm: Any = 2,
    grad_f: Callable[[Any], Any] | None = None,
    n_pairs: int = 1000,
    atol: float = 1e-10,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check β-smoothness ``B_L(w,v) = L(w) − L(v) − ⟨∇L(v), w−v⟩ ≤ β/2‖w−v‖²`` (Book §15.4.2).

    Example::

        >>> bool(check_smooth(lambda w: (w ** 2).sum(), 2.0, lambda r: r.normal(size=2)))
        True
    """
    n = _norm_fn("check_smooth", norm)
    gf = grad_f if grad_f is not None else _grad(f)
    viol = [
        _bregman(f, gf, w, v) - 0.5 * beta * n(w - v) ** 2
        for w, v, _ in _pairs("check_smooth", sampler, n_pairs, rng)
    ]
    return _result(viol, atol)


def check_strongly_convex(
    f: Callable[[Any], Any],
    mu: float,
    sampler: Callable[[np.random.Generator], Any],
    norm: Any = 2,
    grad_f: Callable[[Any], Any] | None = None,
    forms: Sequence[str] = ("secant", "tangent"),
    n_pairs: int = 1000,
    atol: float = 1e-10,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check μ-strong convexity w.r.t. ``norm`` (Book §15.4.4, Defs 15.6–15.7).

    ``'secant'``: ``L(τw+(1−τ)v) ≤ τL(w)+(1−τ)L(v) − μ/2·τ(1−τ)‖w−v‖²`` (τ ~ U(0,1));
    ``'tangent'``: ``B_L(w,v) ≥ μ/2‖w−v‖²`` with ``⟨∇L(v), w−v⟩`` (erratum Def 15.7). ``mu=0`` is
    convexity. ``⟨u, log u⟩`` on the simplex is 1-strongly convex w.r.t. ``‖·‖₁`` (Pinsker).

    Example::

        >>> f = lambda w: 0.5 * (w ** 2).sum()
        >>> bool(check_strongly_convex(f, 1.0, lambda r: r.normal(size=3), n_pairs=20))
        True
    """
    fname = "check_strongly_convex"
    n = _norm_fn(fname, norm)
    bad = set(forms) - {"secant", "tangent", "hessian"}
    if bad or not forms:
        raise ValueError(
            f"{fname}: argument 'forms' must be among 'secant', 'tangent', 'hessian', got {forms!r}"
        )
    gf = grad_f if grad_f is not None else (_grad(f) if "tangent" in forms else None)
    viol: list[float] = []
    for w, v, g in _pairs(fname, sampler, n_pairs, rng):
        d2 = n(w - v) ** 2
        if "secant" in forms:
            t = g.uniform()
            viol.append(
                _val(f, t * w + (1 - t) * v)
                - t * _val(f, w)
                - (1 - t) * _val(f, v)
                + 0.5 * mu * t * (1 - t) * d2
            )
        if "tangent" in forms:
            viol.append(0.5 * mu * d2 - _bregman(f, gf, w, v))
        if "hessian" in forms:
            if norm not in (2,):
                raise ValueError(f"{fname}: the 'hessian' form needs norm=2")
            H = np.asarray(_hessian(f)(w), dtype=float).reshape(w.size, w.size)
            viol.append(mu - float(np.linalg.eigvalsh(0.5 * (H + H.T))[0]))
    return _result(viol, atol)


def check_convex(
    f: Callable[[Any], Any],
    sampler: Callable[[np.random.Generator], Any],
    forms: Sequence[str] = ("secant", "tangent", "hessian"),
    grad_f: Callable[[Any], Any] | None = None,
    n_pairs: int = 200,
    atol: float = 1e-10,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check convexity in its secant, tangent and Hessian-PSD forms (Book §15.4.3).

    ``L(τw+(1−τ)v) ≤ τL(w)+(1−τ)L(v)`` ⇔ ``L(v) ≥ L(w)+⟨∇L(w),v−w⟩`` ⇔ ``∇²L ⪰ 0``.

    Example::

        >>> bool(check_convex(lambda w: (w ** 3).sum(), lambda r: r.uniform(-3, 3, 1), n_pairs=50))
        False
    """
    return check_strongly_convex(f, 0.0, sampler, 2, grad_f, forms, n_pairs, atol, rng)


def check_strictly_convex(
    f: Callable[[Any], Any],
    sampler: Callable[[np.random.Generator], Any],
    n_pairs: int = 1000,
    atol: float = 1e-12,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check strict convexity ``L(τw+(1−τ)v) < τL(w)+(1−τ)L(v)`` (w ≠ v; Book §15.4.3).

    A pair fails when the secant gap is ``≤ atol`` (so linear functions fail). Strongly convex ⇒
    strictly convex ⇒ convex.

    Example::

        >>> bool(check_strictly_convex(lambda w: w.sum(), lambda r: r.normal(size=2), n_pairs=20))
        False
    """
    viol = []
    for w, v, g in _pairs("check_strictly_convex", sampler, n_pairs, rng):
        if np.array_equal(w, v):
            continue
        t = g.uniform(0.05, 0.95)
        gap = t * _val(f, w) + (1 - t) * _val(f, v) - _val(f, t * w + (1 - t) * v)
        viol.append(-gap)
    worst = max(viol) if viol else -math.inf
    return PropertyCheck(bool(worst < -atol), float(worst), len(viol))


def check_jensen(
    f: Callable[[Any], Any],
    sampler: Callable[[np.random.Generator], Any],
    n_points: int = 5,
    n_trials: int = 200,
    atol: float = 1e-10,
    rng: Any = 0,
) -> PropertyCheck:
    r"""Check Jensen's inequality ``L(Σ_i τ_i w_i) ≤ Σ_i τ_i L(w_i)`` (Book §15.4.3, Prop 15.3).

    Example::

        >>> bool(check_jensen(lambda w: (w ** 2).sum(), lambda r: r.normal(size=2), n_trials=20))
        True
    """
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 2:
        raise ValueError(
            f"check_jensen: argument 'n_points' must be an integer >= 2, got {n_points!r}"
        )
    if not callable(sampler):
        raise TypeError("check_jensen: argument 'sampler' must be a callable rng -> point")
    g = _rng("check_jensen", rng)
    viol = []
    for _ in range(int(n_trials)):
        W = np.array([np.asarray(sampler(g), dtype=float) for _ in range(n_points)])
        tau = g.dirichlet(np.ones(n_points))
        viol.append(_val(f, np.tensordot(tau, W, 1)) - float(tau @ [_val(f, w) for w in W]))
    return _result(viol, atol)


# --------------------------------------------------------------------------- rates (OPT-08)


def _errors(fname: str, errors: Any) -> np.ndarray:
    e = np.asarray(errors, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(
            f"{fname}: argument 'errors' must be a 1-D sequence of >= 2 finite non-negative numbers"
        )
    return e


def progress_ratios(errors: Sequence[float]) -> np.ndarray:
    r"""Progress ratios ``ρ_t = R(t)/R(t−1)`` (Book §15.5); ``nan`` where ``R(t−1) = 0``.

    Example: ``progress_ratios([1., .5, .25])`` → ``array([0.5, 0.5])``.
    """
    e = _errors("progress_ratios", errors)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(e[:-1] > 0, e[1:] / np.where(e[:-1] > 0, e[:-1], 1.0), np.nan)


def classify_rate(errors: Sequence[float], floor: float | None = None) -> str:
    r"""Classify a convergence rate from errors ``R(t)`` (Book §15.5, Fig 15.4).

    ``ρ_∞ = lim R(t)/R(t−1)``: 1 is ``'sublinear'`` (``O(1/t^α)``, detected by
    ``1 − ρ_t ∝ 1/t``), ``(0,1)`` is ``'linear'`` (``O(e^{−ct})``), 0 is ``'superlinear'``
    (ratios shrinking: ``e^{−t²}``, or quadratic ``e^{−e^t}``; see :func:`convergence_order`).
    Also ``'divergent'`` (ρ > 1) and ``'stalled'`` (ρ = 1 exactly). Errors at or below ``floor``
    (default ``1e-14·max R``, round-off level) are dropped first.

    Example::

        >>> classify_rate(1.0 / np.arange(1, 200)), classify_rate(np.exp(-2.0 ** np.arange(6)))
        ('sublinear', 'superlinear')
    """
    e = _errors("classify_rate", errors)
    fl = 1e-14 * float(e.max()) if floor is None else float(floor)
    keep = np.nonzero(e <= fl)[0]
    if keep.size:
        e = e[: keep[0]]
    if e.size < 3:
        raise ValueError("classify_rate: need at least 3 errors above the floor")
    r = e[1:] / e[:-1]
    tail = r[len(r) // 2 :]
    med = float(np.median(tail))
    if med > 1.0 + 1e-12:
        return "divergent"
    if np.all(np.abs(tail - 1.0) <= 1e-12):
        return "stalled"
    if r.size >= 2:
        q = r[1:] / r[:-1]
        qt = q[len(q) // 2 :]
        if float(np.max(qt)) <= 0.5:
            return "superlinear"
    # sublinear: 1 − ρ_t ≈ α/t, slope −1 in log-log; linear: 1 − ρ_t constant, slope 0
    t = np.arange(1, r.size + 1, dtype=float)[len(r) // 2 :]
    one_minus = np.clip(1.0 - tail, 1e-300, None)
    if tail.size >= 3 and t[-1] > t[0]:
        slope = float(np.polyfit(np.log(t), np.log(one_minus), 1)[0])
        if slope < -0.5:
            return "sublinear"
    return "linear"


def convergence_order(errors: Sequence[float], floor: float | None = None) -> float:
    r"""Estimated order ``q`` in ``R(t+1) ≈ C R(t)^q``: ``q = log(R_{t+1}/R_t)/log(R_t/R_{t−1})``.

    Uses the last three errors above ``floor``. ``q ≈ 1`` linear, ``q ≈ 2`` quadratic (Newton,
    Book §17.1.4, rate ``O(exp(−exp(t)))``; erratum: the seed prints ``exp(exp(−t))``).

    Example::

        >>> round(convergence_order(np.exp(-2.0 ** np.arange(6))), 6)
        2.0
    """
    e = _errors("convergence_order", errors)
    fl = 1e-14 * float(e.max()) if floor is None else float(floor)
    e = e[e > fl]
    if e.size < 3:
        raise ValueError("convergence_order: need at least 3 errors above the floor")
    return float(np.log(e[-1] / e[-2]) / np.log(e[-2] / e[-3]))


def iterations_to_accuracy(errors: Sequence[float], eps: float) -> int | None:
    r"""``T(ε)``: the first ``t`` with ``R(t) ≤ ε`` (Book §15.5), or ``None`` if never reached.

    Example: ``iterations_to_accuracy([1., .1, .01], 0.05)`` → ``2``.
    """
    e = _errors("iterations_to_accuracy", errors)
    if not (isinstance(eps, numbers.Real) and eps >= 0):
        raise ValueError(f"iterations_to_accuracy: argument 'eps' must be >= 0, got {eps!r}")
    hit = np.nonzero(e <= eps)[0]
    return int(hit[0]) if hit.size else None


# --------------------------------------------------------------------------- stopping (OPT-09)


def grad_norm(g: Any) -> float:
    r"""Euclidean norm of a gradient pytree; ``‖∇L(ŵ)‖₂ ≤ ε`` is ε-stationarity (Book §15.4.5).

    Example: ``grad_norm({'a': np.array([3.]), 'b': np.array([4.])})`` → ``5.0``.
    """
    return float(np.linalg.norm(_flat(g)))


def fixed_point_residual(
    w: Any,
    grad_fn: Callable[[Any], Any],
    prox: Callable[..., Any] | None = None,
    stepsize: float = 1.0,
    prox_params: Any = None,
) -> float:
    r"""``‖w − prox_{γΩ}(w − γ∇L(w))‖₂``, zero exactly at solutions of ``min L + Ω`` (Book §16.4.2).

    Valid for every ``γ > 0``; ``prox(x, prox_params, γ)`` follows the :mod:`diffprog.optim.prox`
    convention (a projection wrapped by ``make_prox_from_projection`` gives projected GD,
    §16.3.2); ``prox=None`` is ``Ω = 0`` and the residual is ``γ‖∇L(w)‖``.

    Example::

        >>> fixed_point_residual(np.array([1.0]), lambda w: 2 * w, stepsize=0.5)
        1.0
    """
    if not callable(grad_fn):
        raise TypeError("fixed_point_residual: argument 'grad_fn' must be callable")
    if not (isinstance(stepsize, numbers.Real) and stepsize > 0):
        raise ValueError(f"fixed_point_residual: argument 'stepsize' must be > 0, got {stepsize!r}")
    wf = _flat(w)
    z = wf - stepsize * _flat(grad_fn(w))
    if prox is not None:
        _, unravel = ravel_pytree(w)
        z = _flat(prox(unravel(z), prox_params, stepsize))
    return float(np.linalg.norm(wf - z))


def objective_gap(f_value: float, f_star: float) -> float:
    r"""Suboptimality ``L(w) − L*`` (Book §15.5); stop when ``≤ ε``.

    Example: ``objective_gap(1.5, 1.0)`` → ``0.5``.
    """
    return float(f_value) - float(f_star)


def duality_gap(primal_value: float, dual_value: float) -> float:
    r"""Duality gap ``P(w) − D(α) ≥ 0`` (weak duality, Book §18.2); a certificate of optimality.

    Example: ``duality_gap(2.0, 1.5)`` → ``0.5``.
    """
    return float(primal_value) - float(dual_value)


@dataclass(frozen=True)
class StoppingCriterion:
    r"""Shared stopping rule: ``tol`` on a residual, ``maxiter``, and a status flag (Book §16.1.2).

    ``status(it, residual)`` returns ``'converged'`` (residual ≤ tol), ``'nonfinite'``,
    ``'maxiter'`` (it ≥ maxiter) or ``'running'``.

    Example::

        >>> StoppingCriterion(tol=1e-6, maxiter=10).status(3, 1e-8)
        'converged'
    """

    tol: float = 1e-8
    maxiter: int = 1000

    def __post_init__(self) -> None:
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"StoppingCriterion: argument 'tol' must be >= 0, got {self.tol!r}")
        if (
            isinstance(self.maxiter, bool)
            or not isinstance(self.maxiter, numbers.Integral)
            or self.maxiter < 0
        ):
            raise ValueError(
                "StoppingCriterion: argument 'maxiter' must be an integer >= 0, "
                f"got {self.maxiter!r}"
            )

    def status(self, it: int, residual: float) -> str:
        if not math.isfinite(residual):
            return "nonfinite"
        if residual <= self.tol:
            return "converged"
        if it >= self.maxiter:
            return "maxiter"
        return "running"
