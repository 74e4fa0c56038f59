"""Step-size schedules: callables ``t -> γ_t`` of the step count ``t = 0, 1, 2, ...``.

Book §16.1.2 (constant steps), §16.2.2 (decreasing steps for SGD: 1/t, 1/√t, step decay, cosine),
§16.2.4. Pass a schedule as the ``lr`` of any optimizer in :mod:`diffprog.optim.transforms`, or
to :func:`~diffprog.optim.transforms.scale_by_schedule`. Every schedule returns a Python float and
validates its arguments when it is built (names follow Optax where Optax has the schedule).

Example::

    >>> s = cosine_decay_schedule(1.0, decay_steps=10)
    >>> s(0), s(5), s(10)
    (1.0, 0.5, 0.0)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..core.batching_rules import _elementwise
from ..core.primitive import Primitive

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "inverse_sqrt_schedule",
    "inverse_sqrt_time_schedule",
    "inverse_time_schedule",
    "linear_schedule",
    "linear_warmup",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "schedule_value",
    "step_decay_schedule",
    "warmup_cosine_decay_schedule",
]

Schedule = Callable[[int], float]


def _schedule_impl(count, *, schedule):
    c = np.asarray(count)
    values = np.array([float(schedule(int(k))) for k in c.ravel()]).reshape(c.shape)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"schedule_value: the schedule returned {values.ravel()[:4]} at step "
                         f"{c.ravel()[:4]}; expected finite values >= 0")
    return values


#: ``schedule(count)`` as a (non-differentiable) primitive: under ``jit`` the Python schedule is
#: a parameter of the program and runs on the concrete step count at every call
schedule_value_p = Primitive("schedule_value", _schedule_impl, nondiff=True)
schedule_value_p.batch = _elementwise(schedule_value_p)


def schedule_value(schedule: Schedule, count):
    """``schedule(count)`` for a step count that may be traced (book §16.2.2).

    Schedules are plain Python functions of an int. Inside :func:`diffprog.jit` the step count of
    an optimizer state is a traced value, so the optimizers evaluate their schedule through this
    function: the schedule becomes a parameter of the compiled program and is called on the
    concrete count each time the program runs (the value is a float64 scalar; it carries no
    derivative).

    Example::

        >>> import diffprog
        >>> s = cosine_decay_schedule(1.0, decay_steps=10)
        >>> f = diffprog.jit(lambda c: schedule_value(s, c))
        >>> float(f(np.asarray(5))), float(f(np.asarray(10)))
        (0.5, 0.0)
    """
    if not callable(schedule):
        raise TypeError(f"schedule_value: 'schedule' must be callable, got {schedule!r}")
    return schedule_value_p.bind(count, schedule=schedule)


def _real(name: str, arg: str, v, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{name}: argument '{arg}' must be a finite real number, got {v!r}")
    if positive and v <= 0:
        raise ValueError(f"{name}: argument '{arg}' must be > 0, got {v!r}")
    if nonneg and v < 0:
        raise ValueError(f"{name}: argument '{arg}' must be >= 0, got {v!r}")
    return float(v)


def _steps(name: str, arg: str, v, *, positive: bool = True) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < (1 if positive else 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: argument '{arg}' must be an integer {bound}, got {v!r}")
    return int(v)


def _t(name: str, t) -> float:
    t = float(t)
    if t < 0:
        raise ValueError(f"{name}: the step count must be >= 0, got {t}")
    return t


def constant_schedule(value: float) -> Schedule:
    """``γ_t = value``. Book §16.1.2 (constant step γ = 1/β).

    Example::

        >>> constant_schedule(0.1)(100)
        0.1
    """
    value = _real("constant_schedule", "value", value, nonneg=True)
    return lambda t: value


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps`` steps
    starting at ``transition_begin``, constant outside. Book §16.2.2.

    Example::

        >>> s = linear_schedule(1.0, 0.0, transition_steps=4)
        >>> s(0), s(1), s(4), s(9)
        (1.0, 0.75, 0.0, 0.0)
    """
    return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin)


def polynomial_schedule(init_value: float, end_value: float, power: float,
                        transition_steps: int, transition_begin: int = 0) -> Schedule:
    """Polynomial decay (Optax convention). Book §16.2.2.

    ``γ_t = (γ₀ − γ_end)(1 − s/T)^power + γ_end``, ``s = clip(t − transition_begin, 0, T)``,
    ``T = transition_steps``. For the ``1/t``-type decays of SGD see
    :func:`inverse_time_schedule` and :func:`inverse_sqrt_schedule`.

    Example::

        >>> s = polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
        >>> s(5)
        0.25
    """
    name = "polynomial_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    end_value = _real(name, "end_value", end_value, nonneg=True)
    power = _real(name, "power", power, positive=True)
    T = _steps(name, "transition_steps", transition_steps)
    begin = _steps(name, "transition_begin", transition_begin, positive=False)

    def schedule(t):
        s = min(max(_t(name, t) - begin, 0.0), T)
        return (init_value - end_value) * (1 - s / T) ** power + end_value

    return schedule


def inverse_time_schedule(init_value: float, k0: float = 1.0, power: float = 1.0) -> Schedule:
    """``γ_t = γ₀ / (1 + t/k₀)^power``: the ``1/t`` decay of SGD (power=1). Book §16.2.2.

    ``γ_{k₀} = γ₀/2`` when power = 1, and ``t·γ_t → γ₀ k₀``; ``k₀`` acts as a warm-up length.

    Example::

        >>> s = inverse_time_schedule(1.0, k0=10)
        >>> s(0), s(10), s(30)
        (1.0, 0.5, 0.25)
    """
    name = "inverse_time_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    k0 = _real(name, "k0", k0, positive=True)
    power = _real(name, "power", power, positive=True)
    return lambda t: init_value / (1.0 + _t(name, t) / k0) ** power


def inverse_sqrt_schedule(init_value: float) -> Schedule:
    """``γ_t = γ₀ / √t`` for t ≥ 1 (and γ₀ at t = 0). Book §16.2.2 (vanilla SGD rate O(1/√t)).

    Example::

        >>> s = inverse_sqrt_schedule(1.0)
        >>> s(1), s(4), s(100)
        (1.0, 0.5, 0.1)
    """
    name = "inverse_sqrt_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    return lambda t: init_value / math.sqrt(max(_t(name, t), 1.0))


def inverse_sqrt_time_schedule(init_value: float, k0: float = 1.0) -> Schedule:
    """``γ_t = γ₀ / (1 + √(t/k₀))`` (for averaged SGD). Book §16.2.2.

    Example::

        >>> s = inverse_sqrt_time_schedule(1.0, k0=4)
        >>> s(4), s(16)
        (0.5, 0.3333333333333333)
    """
    name = "inverse_sqrt_time_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    k0 = _real(name, "k0", k0, positive=True)
    return lambda t: init_value / (1.0 + math.sqrt(_t(name, t) / k0))


def exponential_decay(init_value: float, decay_rate: float, transition_steps: int = 1,
                      staircase: bool = False, end_value: float | None = None) -> Schedule:
    """``γ_t = γ₀ · ρ^(t/T)`` (``⌊t/T⌋`` when ``staircase``), bounded below by ``end_value`` when
    ρ < 1. Book §16.2.2.

    Example::

        >>> s = exponential_decay(1.0, decay_rate=0.5, transition_steps=2)
        >>> s(0), s(2), s(3)
        (1.0, 0.5, 0.3535533905932738)
    """
    name = "exponential_decay"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    rate = _real(name, "decay_rate", decay_rate, positive=True)
    T = _steps(name, "transition_steps", transition_steps)
    end = None if end_value is None else _real(name, "end_value", end_value, nonneg=True)

    def schedule(t):
        p = _t(name, t) / T
        if staircase:
            p = math.floor(p)
        v = init_value * rate ** p
        if end is not None:
            v = max(v, end) if rate < 1 else min(v, end)
        return v

    return schedule


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: Mapping[int, float]) -> Schedule:
    """Piecewise constant: at each boundary step ``b`` the value is multiplied by its scale
    (Optax convention; the new value holds from step ``b`` on). Book §16.2.2 (step decay).

    Example::

        >>> s = piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.5})
        >>> s(9), s(10), s(20)
        (1.0, 0.1, 0.05)
    """
    name = "piecewise_constant_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    items = sorted((_steps(name, "boundary", int(b) if isinstance(b, numbers.Integral) else b,
                           positive=False),
                    _real(name, "scale", s, nonneg=True))
                   for b, s in dict(boundaries_and_scales).items())

    def schedule(t):
        t = _t(name, t)
        v = init_value
        for b, s in items:
            if t >= b:
                v *= s
        return v

    return schedule


def step_decay_schedule(init_value: float, rate: float, boundaries: Sequence[int]) -> Schedule:
    """Step decay: ``γ₀`` until the first boundary, then multiplied by ``rate`` at each boundary.
    Book §16.2.2 (``γ_j = ρ γ_{j−1}`` on ``[T_j, T_{j+1})``).

    Example::

        >>> s = step_decay_schedule(1.0, 0.1, [10, 20])
        >>> s(9), s(10), round(s(25), 12)
        (1.0, 0.1, 0.01)
    """
    name = "step_decay_schedule"
    rate = _real(name, "rate", rate, nonneg=True)
    bs = [_steps(name, "boundaries", b, positive=False) for b in boundaries]
    if bs != sorted(bs) or len(set(bs)) != len(bs):
        raise ValueError(f"{name}: 'boundaries' must be strictly increasing, got {list(bs)}")
    return piecewise_constant_schedule(init_value, {b: rate for b in bs})


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """Cosine decay (Loshchilov & Hutter 2017). Book §16.2.2.

    ``γ_t = γ₀ [(1 − α) · ½(1 + cos(π min(t, T)/T)) + α]``, ``T = decay_steps``.

    Example::

        >>> s = cosine_decay_schedule(2.0, decay_steps=100, alpha=0.1)
        >>> s(0), s(100), s(500)
        (2.0, 0.2, 0.2)
    """
    name = "cosine_decay_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    T = _steps(name, "decay_steps", decay_steps)
    alpha = _real(name, "alpha", alpha, nonneg=True)

    def schedule(t):
        s = min(_t(name, t), T)
        c = 0.5 * (1 + math.cos(math.pi * s / T))
        v = init_value * ((1 - alpha) * c + alpha)
        return round(v, 15) if abs(v) < 1e-15 else v

    return schedule


def linear_warmup(peak_value: float, warmup_steps: int, init_value: float = 0.0) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.
    Book §16.2.2.

    Example::

        >>> s = linear_warmup(1.0, warmup_steps=4)
        >>> s(0), s(2), s(4), s(10)
        (0.0, 0.5, 1.0, 1.0)
    """
    name = "linear_warmup"
    _real(name, "peak_value", peak_value, nonneg=True)
    _steps(name, "warmup_steps", warmup_steps)
    return polynomial_schedule(init_value, peak_value, 1.0, warmup_steps)


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine
    decay to ``end_value`` at step ``decay_steps`` (which includes the warm-up, as in Optax).
    Book §16.2.2.

    Example::

        >>> s = warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=30)
        >>> s(5), s(10), s(20), s(30)
        (0.5, 1.0, 0.5, 0.0)
    """
    name = "warmup_cosine_decay_schedule"
    init_value = _real(name, "init_value", init_value, nonneg=True)
    peak = _real(name, "peak_value", peak_value, nonneg=True)
    W = _steps(name, "warmup_steps", warmup_steps, positive=False)
    T = _steps(name, "decay_steps", decay_steps)
    end = _real(name, "end_value", end_value, nonneg=True)
    if T <= W:
        raise ValueError(f"{name}: 'decay_steps' ({T}) must exceed 'warmup_steps' ({W})")

    def schedule(t):
        t = _t(name, t)
        if t < W:
            return init_value + (peak - init_value) * t / W
        s = min(t - W, T - W)
        c = 0.5 * (1 + math.cos(math.pi * s / (T - W)))
        v = end + (peak - end) * c
        return 0.0 if abs(v - end) < 1e-15 and end == 0.0 else v

    return schedule
