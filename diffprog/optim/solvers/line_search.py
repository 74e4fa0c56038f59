"""Line searches: Armijo backtracking, strong Wolfe (zoom), exact (Book §16.2.4, §17.1.5).

Convention (spec OPT-18..20): the trial point is ``w − γ d``, so ``d`` is an *ascent*-like
vector such as the gradient or the Newton direction ``H⁻¹∇L``; descent requires ``⟨∇L(w), d⟩ > 0``.

- Armijo (OPT-18): ``γ`` = largest of ``γ0·ρ^τ`` with ``L(w−γd) ≤ L(w) − cγ⟨∇L(w), d⟩``.
- Strong Wolfe (OPT-19): Armijo with ``c1`` plus ``|⟨∇L(w−γd), d⟩| ≤ c2 ⟨∇L(w), d⟩``
  (Nocedal & Wright Alg. 3.5/3.6, bracketing then zoom with safeguarded cubic interpolation).
- Exact (OPT-20): ``γ = argmin_{γ≥0} L(w − γd)``; on a quadratic ``γ = ⟨g,d⟩/⟨d,∇²L d⟩``
  (``gᵀg/gᵀAg`` for ``d = g``).

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> f = lambda w: dnp.sum(w ** 2)
    >>> w = np.array([1.0, -2.0])
    >>> res = backtracking_armijo(f, w, 2 * w)
    >>> float(res.stepsize)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.api import hvp as _hvp
from ...core.api import value_and_grad as _value_and_grad
from .base import check_positive

__all__ = ["LineSearchResult", "backtracking_armijo", "wolfe_linesearch", "exact_linesearch"]


@dataclass
class LineSearchResult:
    """``stepsize`` γ; ``value`` = L(w−γd); ``grad`` = ∇L(w−γd) (None when not computed);
    ``num_fun_evals``; ``success`` (False: the conditions were not met within ``maxls``).
    Book §17.1.5 (line search).

    Example: ``backtracking_armijo(...)`` returns a ``LineSearchResult`` whose ``step`` is the
    accepted step size.
    """

    stepsize: float
    value: float
    grad: Any
    num_fun_evals: int
    success: bool


def _as_flat(w: Any) -> np.ndarray:
    return np.asarray(w, dtype=float)


def _armijo(value_fn: Callable, x: np.ndarray, d: np.ndarray, f0: float, slope: float,
            rho: float = 0.5, c: float = 1e-4, stepsize0: float = 1.0,
            maxls: int = 50) -> tuple[float, float, int, bool]:
    """Backtracking on ``x − γd``; ``slope = ⟨∇L(x), d⟩`` (> 0). Returns (γ, f, nevals, ok)."""
    gamma = stepsize0
    fnew = math.inf
    for k in range(1, maxls + 1):
        fnew = value_fn(x - gamma * d)
        if math.isfinite(fnew) and fnew <= f0 - c * gamma * slope:
            return gamma, fnew, k, True
        gamma *= rho
    return gamma / rho, fnew, maxls, False


def _armijo_vg(vg_fn: Callable, x: np.ndarray, d: np.ndarray, f0: float, slope: float,
               rho: float = 0.5, c: float = 1e-4, stepsize0: float = 1.0, maxls: int = 50):
    """Armijo backtracking with value-and-gradient trials (the gradient of the accepted point is
    returned for reuse). When the decrease is below the floating-point resolution of L
    (``|L(w−γd) − L(w)| ≤ 4ε|L(w)|``), the gradient form of Armijo (exact on quadratics,
    Hager–Zhang's approximate Wolfe) ``⟨∇L(w−γd), d⟩ ≥ −(1−2c)⟨∇L(w), d⟩`` is used instead.
    Returns ``(γ, f, g, nevals, ok)``."""
    gamma = stepsize0
    slack = 4 * np.finfo(float).eps * abs(f0)
    fnew, gnew = math.inf, None
    for k in range(1, maxls + 1):
        fnew, gnew = vg_fn(x - gamma * d)
        if math.isfinite(fnew) and np.all(np.isfinite(gnew)):
            if abs(fnew - f0) <= slack:
                if float(gnew @ d) >= -(1 - 2 * c) * slope:
                    return gamma, fnew, gnew, k, True
            elif fnew <= f0 - c * gamma * slope:
                return gamma, fnew, gnew, k, True
        gamma *= rho
    return gamma / rho, fnew, gnew, maxls, False


def _cubicmin(a, fa, fpa, b, fb, fpb):
    """Minimizer of the cubic interpolating (a, fa, fpa), (b, fb, fpb), or None."""
    try:
        d1 = fpa + fpb - 3 * (fa - fb) / (a - b)
        disc = d1 * d1 - fpa * fpb
        if not (math.isfinite(disc) and disc >= 0):
            return None
        d2 = math.copysign(math.sqrt(disc), b - a)
        denom = fpb - fpa + 2 * d2
        if denom == 0:
            return None
        t = b - (b - a) * (fpb + d2 - d1) / denom
        return t if math.isfinite(t) else None
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def _strong_wolfe(vg_fn: Callable, x: np.ndarray, p: np.ndarray, f0: float, g0: np.ndarray,
                  stepsize0: float = 1.0, c1: float = 1e-4, c2: float = 0.9,
                  strong: bool = True, maxls: int = 30, amax: float = 1e10):
    """Strong-Wolfe search along the *descent* direction ``p`` (trial ``x + αp``).

    Returns ``(α, f, g, nevals, ok)`` (N&W Alg. 3.5 with zoom, Alg. 3.6)."""
    dphi0 = float(g0 @ p)
    nev = 0

    def phi(a):
        nonlocal nev
        nev += 1
        fa, ga = vg_fn(x + a * p)
        if not (math.isfinite(fa) and np.all(np.isfinite(ga))):
            return math.inf, ga, math.nan
        return fa, ga, float(ga @ p)

    slack = 4 * np.finfo(float).eps * abs(f0)

    def armijo_fails(a, fa, da):
        if abs(fa - f0) <= slack and math.isfinite(da):  # below resolution: gradient form
            return da > (2 * c1 - 1) * dphi0
        return fa > f0 + c1 * a * dphi0

    def curvature_ok(dphi):
        return abs(dphi) <= -c2 * dphi0 if strong else dphi >= c2 * dphi0

    def zoom(alo, flo, dlo, glo, ahi, fhi, dhi):
        for _ in range(maxls):
            if nev >= maxls:
                break
            delta = ahi - alo
            aj = None
            if math.isfinite(fhi) and math.isfinite(dhi):
                aj = _cubicmin(alo, flo, dlo, ahi, fhi, dhi)
            if aj is None or not (min(alo, ahi) + 0.1 * abs(delta) <= aj
                                  <= max(alo, ahi) - 0.1 * abs(delta)):
                # quadratic from (alo, flo, dlo) and (ahi, fhi), else bisection
                aj = None
                if math.isfinite(fhi):
                    den = 2 * (fhi - flo - dlo * delta)
                    if den > 0:
                        aj = alo - dlo * delta * delta / den
                if aj is None or not (min(alo, ahi) + 0.1 * abs(delta) <= aj
                                      <= max(alo, ahi) - 0.1 * abs(delta)):
                    aj = alo + 0.5 * delta
            fj, gj, dj = phi(aj)
            if armijo_fails(aj, fj, dj) or (fj >= flo and abs(fj - f0) > slack):
                ahi, fhi, dhi = aj, fj, dj
            else:
                if curvature_ok(dj):
                    return aj, fj, gj, True
                if dj * (ahi - alo) >= 0:
                    ahi, fhi, dhi = alo, flo, dlo
                alo, flo, dlo, glo = aj, fj, dj, gj
        return alo, flo, glo, False

    a_prev, f_prev, d_prev, g_prev = 0.0, f0, dphi0, g0
    a = min(stepsize0, amax)
    for i in range(maxls):
        fa, ga, da = phi(a)
        if armijo_fails(a, fa, da) or (i > 0 and fa >= f_prev and abs(fa - f0) > slack):
            ar, fr, gr, ok = zoom(a_prev, f_prev, d_prev, g_prev, a, fa, da)
            return ar, fr, gr, nev, ok
        if curvature_ok(da):
            return a, fa, ga, nev, True
        if da >= 0:
            ar, fr, gr, ok = zoom(a, fa, da, ga, a_prev, f_prev, d_prev)
            return ar, fr, gr, nev, ok
        a_new = _cubicmin(a_prev, f_prev, d_prev, a, fa, da) if i > 0 else None
        if a_new is None or not (a * 1.1 <= a_new <= 10 * a):
            a_new = 2.0 * a if a_new is None or a_new < a * 1.1 else 10 * a
        a_prev, f_prev, d_prev, g_prev = a, fa, da, ga
        a = min(a_new, amax)
    return a_prev, f_prev, g_prev, nev, False


def backtracking_armijo(fun: Callable, w: Any, d: Any, g: Any = None, value: float | None = None,
                        rho: float = 0.5, c: float = 1e-4, stepsize0: float = 1.0,
                        maxls: int = 50) -> LineSearchResult:
    """Armijo backtracking for the step ``w − γd`` (Book §16.2.4, §17.1.5; OPT-18).

    ``γ = max{γ0 ρ^τ}`` with ``L(w−γd) ≤ L(w) − cγ⟨∇L(w), d⟩``; ``g = ∇L(w)`` and
    ``value = L(w)`` are computed when not given. ``rho, c ∈ (0, 1)``. Raises ``ValueError`` when
    ``d`` is not a descent direction (``⟨g, d⟩ ≤ 0``).

    Example: ``backtracking_armijo`` on ``f(w) = w²`` from ``w = 1`` along ``d = ∇f(1) = 2``
    returns a step with ``f(1 - γ d) ≤ f(1) - c γ ⟨∇f, d⟩``.
    """
    if not (0 < rho < 1) or not (0 < c < 1):
        raise ValueError(f"rho and c must lie in (0, 1), got rho={rho}, c={c}")
    check_positive("stepsize0", stepsize0)
    w = _as_flat(w)
    d = _as_flat(d)
    nev = 0
    if g is None or value is None:
        v0, g0 = _value_and_grad(fun)(w)
        nev += 1
        value = float(v0) if value is None else value
        g = g0 if g is None else g
    slope = float(np.sum(np.asarray(g, dtype=float) * d))
    if not slope > 0:
        raise ValueError("w − γd is not a descent direction: ⟨∇L(w), d⟩ ≤ 0")
    gamma, fnew, k, ok = _armijo(lambda x: float(fun(x)), w, d, float(value), slope, rho, c,
                                 stepsize0, maxls)
    return LineSearchResult(gamma, fnew, None, nev + k, ok)


def wolfe_linesearch(fun: Callable, w: Any, d: Any, c1: float = 1e-4, c2: float = 0.9,
                     strong: bool = True, stepsize0: float = 1.0, maxls: int = 30,
                     value: float | None = None, g: Any = None) -> LineSearchResult:
    """(Strong) Wolfe line search for the step ``w − γd`` (OPT-19; N&W Alg. 3.5–3.6).
    Book §17.1.5 (line search).

    Armijo ``L(w−γd) ≤ L(w) − c1γ⟨∇L(w),d⟩`` and curvature
    ``|⟨∇L(w−γd), d⟩| ≤ c2⟨∇L(w), d⟩`` (without ``abs`` when ``strong=False``),
    ``0 < c1 < c2 < 1``. Guarantees ``⟨s, y⟩ > 0`` for (L-)BFGS.

    Example: on Rosenbrock from ``(-1.2, 1)`` along the gradient, the returned step satisfies the
    sufficient-decrease and curvature conditions.
    """
    if not (0 < c1 < c2 < 1):
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    check_positive("stepsize0", stepsize0)
    w = _as_flat(w)
    d = _as_flat(d)
    vg = _value_and_grad(fun)

    def vg_fn(x):
        v, gg = vg(x)
        return float(v), np.asarray(gg, dtype=float)

    nev = 0
    if value is None or g is None:
        v0, g0 = vg_fn(w)
        nev += 1
        value = v0 if value is None else value
        g = g0 if g is None else g
    g = np.asarray(g, dtype=float)
    if not float(np.sum(g * d)) > 0:
        raise ValueError("w − γd is not a descent direction: ⟨∇L(w), d⟩ ≤ 0")
    a, fa, ga, k, ok = _strong_wolfe(vg_fn, w, -d, float(value), g, stepsize0, c1, c2, strong,
                                     maxls)
    return LineSearchResult(a, fa, ga, nev + k, ok)


def exact_linesearch(fun: Callable, w: Any, d: Any, quadratic: bool = False,
                     g: Any = None, maxiter: int = 100, tol: float = 1e-12) -> LineSearchResult:
    """Exact line search ``γ = argmin_{γ≥0} L(w − γd)`` (004 (A.1.6); OPT-20).
    Book §16.1 (exact step on quadratics).

    ``quadratic=True`` uses the closed form ``γ = ⟨g,d⟩/⟨d,∇²L(w)d⟩`` (one HVP; equals
    ``gᵀg/gᵀAg`` for ``d=g`` on ``½wᵀAw``). Otherwise the 1-D problem is solved by Newton's
    method on ``φ(γ)`` (HVP second derivative) safeguarded by bracketing/bisection.

    Example: on ``f(w) = ½ wᵀAw − bᵀw`` the exact step along ``g`` is ``gᵀg / gᵀAg``.
    """
    w = _as_flat(w)
    d = _as_flat(d)
    vg = _value_and_grad(fun)
    nev = 0
    if g is None:
        _, g = vg(w)
        nev += 1
    g = np.asarray(g, dtype=float)
    if quadratic:
        curv = float(np.sum(d * np.asarray(_hvp(fun, w, d), dtype=float)))
        nev += 1
        if not curv > 0:
            raise ValueError("exact_linesearch(quadratic=True): ⟨d, ∇²L d⟩ ≤ 0 (not convex)")
        gamma = float(np.sum(g * d)) / curv
        return LineSearchResult(gamma, float(fun(w - gamma * d)), None, nev + 1, True)

    def dphi(a):  # derivative of φ(γ) = L(w − γd)
        _, ga = vg(w - a * d)
        return -float(np.sum(np.asarray(ga, dtype=float) * d))

    lo, hi = 0.0, 1.0
    d0 = -float(np.sum(g * d))
    if d0 >= 0:
        raise ValueError("w − γd is not a descent direction: ⟨∇L(w), d⟩ ≤ 0")
    while dphi(hi) < 0:  # bracket the root of φ'
        nev += 1
        lo, hi = hi, 2 * hi
        if hi > 1e20:
            raise FloatingPointError("exact_linesearch: objective unbounded along d")
    nev += 1
    a = 0.5 * (lo + hi)
    for _ in range(maxiter):
        da = dphi(a)
        nev += 1
        if da > 0:
            hi = a
        else:
            lo = a
        curv = float(np.sum(d * np.asarray(_hvp(fun, w - a * d, d), dtype=float)))
        nev += 1
        a_new = a - da / curv if curv > 0 else math.nan
        if not (lo < a_new < hi):
            a_new = 0.5 * (lo + hi)
        if abs(a_new - a) <= tol * max(1.0, abs(a)):
            a = a_new
            break
        a = a_new
    return LineSearchResult(a, float(fun(w - a * d)), None, nev + 1, True)
