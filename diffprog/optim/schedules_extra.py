"""Extra step-size schedules from convex SGD theory (OPT-16, OPT-17).

Callables ``t -> γ_t`` of the step count ``t = 0, 1, 2, ...`` returning a Python float, like the
schedules of :mod:`diffprog.optim.schedules` (validation happens when the schedule is built).

Example::

    >>> s = linear_decay_schedule(1.0, 1.0, 4)
    >>> s(0), s(2), s(4)
    (0.5, 0.25, 0.0)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

__all__ = ["linear_decay_schedule", "strongly_convex_sgd_schedule"]

Schedule = Callable[[int], float]


def _positive(fname: str, arg: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{fname}: argument {arg!r} must be a finite real number > 0, got {v!r}")
    return float(v)


def _step(fname: str, t: object) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < 0:
        raise ValueError(f"{fname}: step count t must be a finite real number >= 0, got {t!r}")
    return float(t)


def strongly_convex_sgd_schedule(mu: float) -> Schedule:
    r"""SGD step for a μ-strongly convex objective: ``τ_k = 1/(μ(k+1))``.

    Peyré 003 §14.2.3 Theorem 24 (Book §16.2.2 for decreasing steps): if ``f`` is μ-strongly
    convex and ``‖∇f_i‖² ≤ C²``, SGD with this step satisfies
    ``E‖x_k − x*‖² ≤ R/(k+1)`` with ``R = max(‖x0 − x*‖², C²/μ²)`` (erratum: the seed prints
    ``‖x0 − x*‖`` without the square and ``Id ⪯ ∂²f`` for ``μ Id ⪯ ∂²f``).

    Example::

        >>> s = strongly_convex_sgd_schedule(0.5)
        >>> s(0), s(1), s(3)
        (2.0, 1.0, 0.5)
    """
    mu = _positive("strongly_convex_sgd_schedule", "mu", mu)

    def schedule(t: int) -> float:
        return 1.0 / (mu * (_step("strongly_convex_sgd_schedule", t) + 1.0))

    return schedule


def linear_decay_schedule(D: float, G: float, K: int) -> Schedule:
    r"""Linear decay to zero ``h_k = (D/(G√K))(1 − k/K)`` for ``0 ≤ k ≤ K`` (0 afterwards).

    Appendix A 004 §A.1.4 (citing Defazio et al. 2023; Book §16.2.2): with ``G`` a bound on
    ``‖∇L‖`` and ``D = ‖θ0 − θ*‖``, plain SGD satisfies ``E[L(θ_k) − L*] ≤ DG/√K``.

    Example::

        >>> s = linear_decay_schedule(2.0, 1.0, 4)
        >>> s(0), s(2), s(4), s(9)
        (1.0, 0.5, 0.0, 0.0)
    """
    D = _positive("linear_decay_schedule", "D", D)
    G = _positive("linear_decay_schedule", "G", G)
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 1:
        raise ValueError(f"linear_decay_schedule: argument 'K' must be an integer >= 1, got {K!r}")
    K = int(K)
    h0 = D / (G * math.sqrt(K))

    def schedule(t: int) -> float:
        k = _step("linear_decay_schedule", t)
        return h0 * max(1.0 - k / K, 0.0)

    return schedule
