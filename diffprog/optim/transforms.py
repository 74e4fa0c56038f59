"""Gradient transformations: first-order optimizers as composable ``(init, update)`` pairs.

Book Part V: gradient descent and momentum (§16.1, §16.1.3), stochastic gradient descent and its
momentum and adaptive variants (§16.2.2–§16.2.4), iterate averaging (§16.2.2).

Semantics follow Optax. A :class:`GradientTransformation` is a named tuple ``(init, update)``:

* ``init(params) -> state``: the optimizer state, a pytree of named tuples of arrays (so it can be
  saved with :func:`diffprog.io.save`);
* ``update(updates, state, params=None) -> (new_updates, new_state)``: transforms gradients into
  parameter updates. The returned updates already carry the minus sign of descent, so
  ``params = apply_updates(params, updates)`` takes the step.

The learning rate ``lr`` of every optimizer is a non-negative float or a schedule (a callable of
the step count ``t = 0, 1, 2, ...``, see :mod:`diffprog.optim.schedules`); ``lr(t)`` is used on
the ``(t+1)``-th update.

Errors: a negative learning rate raises ``ValueError`` at construction (or when the schedule
returns one); a non-finite gradient raises ``FloatingPointError`` naming the transform (no silent
skip); updates whose pytree structure or leaf shapes differ from the state built by ``init`` raise
``ValueError``.

Example::

    >>> import numpy as np
    >>> opt = adam(0.1)
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> state = opt.init(params)
    >>> grads = {"w": np.array([0.5, -0.5])}
    >>> updates, state = opt.update(grads, state, params)
    >>> apply_updates(params, updates)["w"]
    array([ 0.9, -1.9])
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from ..core.pytree import tree_flatten, tree_leaves, tree_map, tree_structure
from ..numpy._base import dtype_of
from .schedules import schedule_value

__all__ = [
    "GradientTransformation",
    "EmptyState",
    "ScaleByScheduleState",
    "TraceState",
    "ScaleByAdagradState",
    "ScaleByRmsState",
    "ScaleByAdamState",
    "AveragingState",
    "adagrad",
    "adam",
    "adamw",
    "apply_updates",
    "averaged_params",
    "chain",
    "clip",
    "clip_by_global_norm",
    "ema",
    "global_norm",
    "identity",
    "momentum",
    "nesterov",
    "polyak_averaging",
    "rmsprop",
    "scale",
    "scale_by_schedule",
    "sgd",
    "sign_descent",
]

Schedule = Callable[[Any], float]
ScalarOrSchedule = float | Schedule


class GradientTransformation(NamedTuple):
    """A pair ``(init, update)`` of pure functions (Optax convention). Book §16.2.

    Example::

        >>> t = scale(2.0)
        >>> u, s = t.update([1.0], t.init([0.0]))
        >>> u
        [2.0]
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


class ScaleByScheduleState(NamedTuple):
    """Step counter of a scheduled transform."""

    count: np.ndarray


class TraceState(NamedTuple):
    """Momentum buffer (velocity) and step counter."""

    count: np.ndarray
    trace: Any


class ScaleByAdagradState(NamedTuple):
    """AdaGrad running sum of squared gradients."""

    count: np.ndarray
    sum_of_squares: Any


class ScaleByRmsState(NamedTuple):
    """RMSProp exponential moving average of squared gradients."""

    count: np.ndarray
    nu: Any


class ScaleByAdamState(NamedTuple):
    """Adam step counter and first (``mu``) and second (``nu``) moment estimates."""

    count: np.ndarray
    mu: Any
    nu: Any


class AveragingState(NamedTuple):
    """Iterate averaging: number of iterates averaged and their running average."""

    count: np.ndarray
    average: Any


# ----------------------------------------------------------------------------------- helpers


def _count0() -> np.ndarray:
    return np.zeros((), dtype=np.int64)


def _next(count: np.ndarray) -> np.ndarray:
    if isinstance(count, Tracer):           # inside jit: the count is part of the traced state
        return count + 1
    return np.asarray(count + 1, dtype=np.int64)


def _abs2(u: Any) -> Any:
    """``|u|²``: one multiplication for real ``u`` (``abs`` then ``** 2`` only for complex)."""
    return np.abs(u) ** 2 if dtype_of(u).kind == "c" else u * u


def _like(s: Any, x: Any) -> Any:
    """A traced scalar factor ``s`` cast to the dtype of ``x`` (float32 stays float32); Python
    and concrete factors are returned as they are."""
    return dnp.astype(s, dtype_of(x)) if isinstance(s, Tracer) else s


def _check_nonneg(name: str, arg: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: argument '{arg}' must be a real number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: argument '{arg}' must be finite and >= 0, got {value!r}")
    return float(value)


def _check_unit(name: str, arg: str, value: float, *, closed_right: bool = False) -> float:
    value = _check_nonneg(name, arg, value)
    if value > 1 or (value == 1 and not closed_right):
        bound = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name}: argument '{arg}' must lie in {bound}, got {value!r}")
    return value


def _check_lr(name: str, lr: ScalarOrSchedule) -> ScalarOrSchedule:
    if callable(lr):
        return lr
    return _check_nonneg(name, "lr", lr)


def _lr_at(name: str, lr: ScalarOrSchedule, count: Any) -> float:
    if not callable(lr):
        return lr
    if isinstance(count, Tracer):
        return schedule_value(lr, count)
    value = float(lr(int(count)))
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{name}: the learning-rate schedule returned {value!r} at step {int(count)}; "
            "expected a finite value >= 0"
        )
    return value


def _check_finite(name: str, updates: Any) -> None:
    for leaf in tree_leaves(updates):
        try:
            arr = np.asarray(leaf)
        except Exception:  # noqa: BLE001 - tracers etc.: nothing to check eagerly
            continue
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise FloatingPointError(
                f"{name}: non-finite gradient (nan or inf) in the updates; check the loss or "
                "lower the learning rate (use clip_by_global_norm to bound large gradients)"
            )


def _check_match(name: str, updates: Any, reference: Any, what: str = "state") -> None:
    u_leaves, u_def = tree_flatten(updates)
    r_leaves, r_def = tree_flatten(reference)
    if u_def != r_def:
        raise ValueError(
            f"{name}: the updates have pytree structure {u_def} but the {what} was built for "
            f"{r_def}; call init with parameters of the same structure"
        )
    for i, (u, r) in enumerate(zip(u_leaves, r_leaves, strict=True)):
        if np.shape(u) != np.shape(r):
            raise ValueError(
                f"{name}: leaf {i} of the updates has shape {np.shape(u)} but the {what} has "
                f"shape {np.shape(r)}"
            )


def _check_state(name: str, state: Any, cls: type) -> None:
    if not isinstance(state, cls):
        raise TypeError(
            f"{name}: expected a state of type {cls.__name__} (from this transform's init), "
            f"got {type(state).__name__}"
        )


def _check_update(name: str, updates: Any, state: Any, cls: type, field: str) -> None:
    """The checks every ``update`` runs: the state's type, the pytree structure of ``updates``
    against ``state.<field>``, and finiteness."""
    _check_state(name, state, cls)
    _check_match(name, updates, getattr(state, field))
    _check_finite(name, updates)


def _zeros_like(tree: Any) -> Any:
    return tree_map(lambda x: np.zeros_like(np.asarray(x, dtype=np.result_type(x, 0.0))), tree)


def _need_params(name: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{name}: update needs the current 'params' (update(g, state, params))")


# -------------------------------------------------------------------------- basic transforms


def identity() -> GradientTransformation:
    """The transform that returns the updates unchanged. Book §16.1.

    Example::

        >>> t = identity()
        >>> t.update([1.0], t.init([0.0]))[0]
        [1.0]
    """
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (updates, state))


def scale(step: float) -> GradientTransformation:
    """Multiply the updates by a constant: ``u ← step · u``. Book §16.1 (the step size γ).

    ``step`` may be negative (``scale(-lr)`` turns a gradient into a descent update).

    Example::

        >>> t = scale(-0.5)
        >>> t.update([2.0], t.init([0.0]))[0]
        [-1.0]
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not math.isfinite(step):
        raise ValueError(f"scale: argument 'step' must be a finite real number, got {step!r}")
    step = float(step)

    def update(updates, state, params=None):
        return tree_map(lambda u: step * u, updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """Multiply the updates by ``schedule(t)``, ``t`` = number of previous updates. Book §16.2.2.

    Example::

        >>> t = scale_by_schedule(lambda t: 1.0 / (t + 1))
        >>> s = t.init([0.0])
        >>> u, s = t.update([1.0], s)
        >>> u, s = t.update([1.0], s)
        >>> u
        [0.5]
    """
    if not callable(schedule):
        raise TypeError(f"scale_by_schedule: 'schedule' must be callable, got {schedule!r}")

    def init(params):
        return ScaleByScheduleState(count=_count0())

    def update(updates, state, params=None):
        _check_state("scale_by_schedule", state, ScaleByScheduleState)
        if isinstance(state.count, Tracer):
            s = schedule_value(schedule, state.count)
        else:
            s = float(schedule(int(state.count)))
        return tree_map(lambda u: _like(s, u) * u, updates), ScaleByScheduleState(
            _next(state.count))

    return GradientTransformation(init, update)


def global_norm(tree: Any) -> float:
    """The Euclidean norm of all leaves of ``tree`` together, ``sqrt(Σ_leaves ‖u‖²)``. Book §16.2.

    Example::

        >>> global_norm([3.0, {"a": 4.0}])
        5.0
    """
    leaves = tree_leaves(tree)
    if any(isinstance(x, Tracer) for x in leaves):      # inside jit: a traced scalar
        return dnp.sqrt(sum(dnp.sum(dnp.abs(x) ** 2) for x in leaves))
    return float(math.sqrt(sum(float(np.sum(np.abs(np.asarray(x)) ** 2)) for x in leaves)))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale the updates so their global norm is at most ``max_norm``. Book §16.2.

    ``u ← u · min(1, max_norm / ‖u‖)``, where ``‖u‖`` is :func:`global_norm`.

    Example::

        >>> t = clip_by_global_norm(1.0)
        >>> t.update(np.array([3.0, 4.0]), t.init(np.zeros(2)))[0]
        array([0.6, 0.8])
    """
    max_norm = _check_nonneg("clip_by_global_norm", "max_norm", max_norm)

    def update(updates, state, params=None):
        _check_finite("clip_by_global_norm", updates)
        n = global_norm(updates)
        if isinstance(n, Tracer):        # inside jit: min(1, max_norm/‖u‖) without a branch
            f = dnp.minimum(1.0, max_norm / dnp.maximum(n, np.finfo(np.float64).tiny))
            return tree_map(lambda u: u * _like(f, u), updates), state
        if n <= max_norm:
            return updates, state
        f = max_norm / n
        return tree_map(lambda u: u * f, updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every coordinate of the updates to ``[-max_delta, max_delta]``. Book §16.2.

    Example::

        >>> t = clip(1.0)
        >>> t.update(np.array([-3.0, 0.5]), t.init(np.zeros(2)))[0]
        array([-1. ,  0.5])
    """
    max_delta = _check_nonneg("clip", "max_delta", max_delta)

    def update(updates, state, params=None):
        _check_finite("clip", updates)
        return tree_map(lambda u: np.clip(u, -max_delta, max_delta), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transforms left to right; the state is the tuple of their states. Book §16.2.

    Example::

        >>> t = chain(clip(1.0), scale(-0.1))
        >>> t.update(np.array([5.0]), t.init(np.zeros(1)))[0]
        array([-0.1])
    """
    for i, t in enumerate(transforms):
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(f"chain: argument {i} is not a GradientTransformation, got {t!r}")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain: expected a tuple of {len(transforms)} states (from chain(...).init), "
                f"got {type(state).__name__}"
                + (f" of length {len(state)}" if isinstance(state, tuple) else "")
            )
        new_states = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    return GradientTransformation(init, update)


def apply_updates(params: Any, updates: Any) -> Any:
    """Return ``params + updates`` leafwise (array leaves keep their dtype). Book §16.1 (16.1).

    Example::

        >>> apply_updates({"w": 1.0}, {"w": -0.25})
        {'w': 0.75}
    """
    p_def, u_def = tree_structure(params), tree_structure(updates)
    if p_def != u_def:
        raise ValueError(
            f"apply_updates: params have pytree structure {p_def} but updates have {u_def}"
        )

    def add(p, u):
        if isinstance(p, np.ndarray):
            if np.shape(u) != p.shape:
                raise ValueError(
                    f"apply_updates: an update of shape {np.shape(u)} does not match a "
                    f"parameter of shape {p.shape}"
                )
            return np.asarray(p + u).astype(p.dtype, copy=False)
        return p + u

    return tree_map(add, params, updates)


# ---------------------------------------------------------------------------------- optimizers


def sgd(lr: ScalarOrSchedule, momentum: float | None = None,
        nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent, optionally with (Nesterov) momentum. Book §16.2.2, §16.2.3.

    Without momentum: ``u = −γ_t g``. With momentum ν (Sutskever/PyTorch convention)::

        v⁺ = ν v + g          u = −γ_t v⁺                  (heavy ball)
        v⁺ = ν v + g          u = −γ_t (g + ν v⁺)          (nesterov=True)

    The Nesterov form is the usual reparametrization in which the gradient is taken at the
    current iterate rather than at the look-ahead point (the book prints a look-ahead ``w + νv``
    that mixes sign conventions; in this convention the look-ahead is ``w − γνv``).

    Example::

        >>> opt = sgd(0.1, momentum=0.9)
        >>> s = opt.init(np.zeros(1))
        >>> u, s = opt.update(np.ones(1), s)
        >>> u, s = opt.update(np.ones(1), s)
        >>> u                                   # −0.1 · (0.9 · 1 + 1)
        array([-0.19])
    """
    name = "sgd"
    lr = _check_lr(name, lr)
    if momentum is not None:
        momentum = _check_unit(name, "momentum", momentum)
    elif nesterov:
        raise ValueError("sgd: nesterov=True needs a momentum value")

    if momentum is None:
        def init(params):
            return ScaleByScheduleState(count=_count0())

        def update(updates, state, params=None):
            _check_state(name, state, ScaleByScheduleState)
            _check_finite(name, updates)
            g = _lr_at(name, lr, state.count)
            return (tree_map(lambda u: -_like(g, u) * u, updates),
                    ScaleByScheduleState(_next(state.count)))

        return GradientTransformation(init, update)

    nu = momentum

    def init_m(params):
        return TraceState(count=_count0(), trace=_zeros_like(params))

    def update_m(updates, state, params=None):
        _check_update(name, updates, state, TraceState, "trace")
        g = _lr_at(name, lr, state.count)
        v = tree_map(lambda v, u: nu * v + u, state.trace, updates)
        if nesterov:
            out = tree_map(lambda u, v: -_like(g, u) * (u + nu * v), updates, v)
        else:
            out = tree_map(lambda v: -_like(g, v) * v, v)
        return out, TraceState(count=_next(state.count), trace=v)

    return GradientTransformation(init_m, update_m)


def momentum(lr: ScalarOrSchedule, beta: float = 0.9) -> GradientTransformation:
    """Heavy-ball momentum (Polyak), in the book's velocity form. Book §16.1.3.

    ``v⁺ = β v − γ_t g``, ``u = v⁺`` (so ``w⁺ = w + v⁺``). β=0 gives gradient descent. With a
    constant γ the iterates equal those of ``sgd(γ, momentum=β)``.

    Example::

        >>> opt = momentum(0.1, beta=0.5)
        >>> s = opt.init(np.zeros(1))
        >>> u, s = opt.update(np.ones(1), s)
        >>> u, s = opt.update(np.ones(1), s)
        >>> u                                   # 0.5 · (−0.1) − 0.1
        array([-0.15])
    """
    name = "momentum"
    lr = _check_lr(name, lr)
    beta = _check_unit(name, "beta", beta)

    def init(params):
        return TraceState(count=_count0(), trace=_zeros_like(params))

    def update(updates, state, params=None):
        _check_update(name, updates, state, TraceState, "trace")
        g = _lr_at(name, lr, state.count)
        v = tree_map(lambda v, u: beta * v - _like(g, u) * u, state.trace, updates)
        return v, TraceState(count=_next(state.count), trace=v)

    return GradientTransformation(init, update)


def nesterov(lr: ScalarOrSchedule, beta: float = 0.9) -> GradientTransformation:
    """Nesterov momentum: ``sgd(lr, momentum=beta, nesterov=True)``. Book §16.1.3, §16.2.3.

    ``v⁺ = β v + g``, ``u = −γ_t (g + β v⁺)``.

    Example::

        >>> opt = nesterov(0.1, beta=0.5)
        >>> u, s = opt.update(np.ones(1), opt.init(np.zeros(1)))
        >>> u                                   # −0.1 · (1 + 0.5 · 1)
        array([-0.15])
    """
    return sgd(lr, momentum=beta, nesterov=True)


def sign_descent(lr: ScalarOrSchedule) -> GradientTransformation:
    """Sign gradient descent: ``u = −γ_t sign(g)`` (steepest descent for ℓ∞). Book §16.2.4.

    ``sign(0) = 0``.

    Example::

        >>> opt = sign_descent(0.1)
        >>> opt.update(np.array([3.0, 0.0, -2.0]), opt.init(np.zeros(3)))[0]
        array([-0.1,  0. ,  0.1])
    """
    name = "sign_descent"
    lr = _check_lr(name, lr)

    def init(params):
        return ScaleByScheduleState(count=_count0())

    def update(updates, state, params=None):
        _check_state(name, state, ScaleByScheduleState)
        _check_finite(name, updates)
        g = _lr_at(name, lr, state.count)
        out = tree_map(lambda u: 0.0 - _like(g, u) * np.sign(u), updates)
        return out, ScaleByScheduleState(_next(state.count))

    return GradientTransformation(init, update)


def adagrad(lr: ScalarOrSchedule, eps: float = 1e-10,
            initial_accumulator_value: float = 0.0) -> GradientTransformation:
    """AdaGrad (Duchi et al. 2011). Book §16.2.4 (adaptive variants).

    ``s⁺ = s + g²``, ``u = −γ_t g / (√s⁺ + ε)``, with ``s₀ = initial_accumulator_value``.

    Example::

        >>> opt = adagrad(0.1, eps=0.0)
        >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
        array([-0.1])
    """
    name = "adagrad"
    lr = _check_lr(name, lr)
    eps = _check_nonneg(name, "eps", eps)
    s0 = _check_nonneg(name, "initial_accumulator_value", initial_accumulator_value)

    def init(params):
        return ScaleByAdagradState(count=_count0(),
                                   sum_of_squares=tree_map(lambda z: z + s0, _zeros_like(params)))

    def update(updates, state, params=None):
        _check_update(name, updates, state, ScaleByAdagradState, "sum_of_squares")
        g = _lr_at(name, lr, state.count)
        s = tree_map(lambda s, u: s + _abs2(u), state.sum_of_squares, updates)
        out = tree_map(lambda u, s: -_like(g, u) * u / (np.sqrt(s) + eps), updates, s)
        return out, ScaleByAdagradState(count=_next(state.count), sum_of_squares=s)

    return GradientTransformation(init, update)


def rmsprop(lr: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton 2012). Book §16.2.4 (adaptive variants).

    ``ν⁺ = ρ ν + (1 − ρ) g²``, ``u = −γ_t g / (√ν⁺ + ε)``, ν₀ = 0, ρ = ``decay``.

    Example::

        >>> opt = rmsprop(0.1, decay=0.75, eps=0.0)
        >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]     # −0.1 · 2 / √(0.25 · 4)
        array([-0.2])
    """
    name = "rmsprop"
    lr = _check_lr(name, lr)
    decay = _check_unit(name, "decay", decay)
    eps = _check_nonneg(name, "eps", eps)

    def init(params):
        return ScaleByRmsState(count=_count0(), nu=_zeros_like(params))

    def update(updates, state, params=None):
        _check_update(name, updates, state, ScaleByRmsState, "nu")
        g = _lr_at(name, lr, state.count)
        nu = tree_map(lambda n, u: decay * n + (1 - decay) * _abs2(u), state.nu, updates)
        out = tree_map(lambda u, n: -_like(g, u) * u / (np.sqrt(n) + eps), updates, nu)
        return out, ScaleByRmsState(count=_next(state.count), nu=nu)

    return GradientTransformation(init, update)


def _adam_core(name, lr, b1, b2, eps, bias_correction, eps_inside_sqrt, weight_decay):
    lr = _check_lr(name, lr)
    b1 = _check_unit(name, "b1", b1)
    b2 = _check_unit(name, "b2", b2)
    eps = _check_nonneg(name, "eps", eps)
    weight_decay = _check_nonneg(name, "weight_decay", weight_decay)

    def init(params):
        z = _zeros_like(params)
        return ScaleByAdamState(count=_count0(), mu=z, nu=tree_map(np.copy, z))

    def update(updates, state, params=None):
        _check_state(name, state, ScaleByAdamState)
        _check_match(name, updates, state.mu)
        if weight_decay:
            _need_params(name, params)
            _check_match(name, params, state.mu, what="state (params)")
        _check_finite(name, updates)
        g = _lr_at(name, lr, state.count)
        t = state.count + 1 if isinstance(state.count, Tracer) else int(state.count) + 1
        mu = tree_map(lambda m, u: b1 * m + (1 - b1) * u, state.mu, updates)
        nu = tree_map(lambda n, u: b2 * n + (1 - b2) * _abs2(u), state.nu, updates)
        c1 = 1 - b1 ** t if bias_correction else 1.0
        c2 = 1 - b2 ** t if bias_correction else 1.0
        # m̂/(√v̂ + ε) = (√c₂/c₁) m/(√v + ε√c₂) and m̂/√(v̂ + ε) = (√c₂/c₁) m/√(v + εc₂): the
        # bias corrections become one scalar factor (two passes fewer per parameter)
        root_c2 = np.sqrt(c2)
        scale = -g * root_c2 / c1

        def direction(m, n):
            if eps_inside_sqrt:
                return m / np.sqrt(n + _like(eps * c2, n))
            return m / (np.sqrt(n) + _like(eps * root_c2, n))

        out = tree_map(lambda m, n: _like(scale, m) * direction(m, n), mu, nu)
        if weight_decay:
            out = tree_map(lambda o, p: o - _like(g, p) * weight_decay * p, out, params)
        return out, ScaleByAdamState(count=_next(state.count), mu=mu, nu=nu)

    return GradientTransformation(init, update)


def adam(lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
         bias_correction: bool = True, eps_inside_sqrt: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba 2015). Book §16.2.4 (adaptive variants).

    At step ``t = 1, 2, ...``::

        m⁺ = β₁ m + (1 − β₁) g            v⁺ = β₂ v + (1 − β₂) g²
        m̂ = m⁺ / (1 − β₁ᵗ)                 v̂ = v⁺ / (1 − β₂ᵗ)
        u = −γ_t m̂ / (√v̂ + ε)

    ``eps_inside_sqrt=True`` uses ``√(v̂ + ε)`` as the book prints it; ``bias_correction=False``
    drops the ``1 − βᵗ`` factors. With b1 = b2 = 0 and eps = 0 Adam is sign descent.

    Example::

        >>> opt = adam(0.1)
        >>> u, s = opt.update(np.array([3.0, -0.2]), opt.init(np.zeros(2)))
        >>> np.round(u, 6)                      # first step: −γ · sign(g) (up to ε)
        array([-0.1,  0.1])
    """
    return _adam_core("adam", lr, b1, b2, eps, bias_correction, eps_inside_sqrt, 0.0)


def adamw(lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4, *, bias_correction: bool = True,
          eps_inside_sqrt: bool = False) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019). Book §16.2.4.

    ``u = −γ_t (m̂ / (√v̂ + ε) + λ w)`` with m̂, v̂ as in :func:`adam` and λ = ``weight_decay``;
    ``update`` needs the current ``params``.

    Example::

        >>> opt = adamw(0.1, weight_decay=0.5)
        >>> w = np.array([2.0])
        >>> u, s = opt.update(np.array([1.0]), opt.init(w), w)
        >>> np.round(u, 6)                      # −0.1 · (1 + 0.5 · 2)
        array([-0.2])
    """
    return _adam_core("adamw", lr, b1, b2, eps, bias_correction, eps_inside_sqrt, weight_decay)


# ------------------------------------------------------------------------------ iterate averaging


def _averaging(name: str, decay: float | None) -> GradientTransformation:
    def init(params):
        return AveragingState(count=_count0(),
                              average=tree_map(lambda p: np.array(p, dtype=np.result_type(p, 0.0)),
                                               params))

    def update(updates, state, params=None):
        _check_state(name, state, AveragingState)
        _need_params(name, params)
        _check_match(name, updates, state.average)
        _check_match(name, params, state.average, what="state (params)")
        k = state.count + 1 if isinstance(state.count, Tracer) else int(state.count) + 1
        new = tree_map(lambda p, u: p + u, params, updates)
        if decay is None:
            avg = tree_map(lambda a, w: a + (w - a) / _like(k, a), state.average, new)
        else:
            avg = tree_map(lambda a, w: decay * a + (1 - decay) * w, state.average, new)
        return updates, AveragingState(count=_next(state.count), average=avg)

    return GradientTransformation(init, update)


def polyak_averaging() -> GradientTransformation:
    """Polyak–Ruppert averaging of the iterates (Cesàro mean). Book §16.2.2 (w̄_T).

    Passes the updates through and keeps ``w̄_k = (1/k) Σ_{ℓ=1..k} w_ℓ`` of the iterates
    ``w_ℓ = params + updates`` by the running form ``w̄_k = w̄_{k−1} + (w_k − w̄_{k−1}) / k``
    (the initial point w₀ is not included). Put it *last* in a :func:`chain`; read the average
    with :func:`averaged_params`.

    Example::

        >>> opt = chain(sgd(1.0), polyak_averaging())
        >>> w = np.array([0.0]); s = opt.init(w)
        >>> for g in (-1.0, -1.0):
        ...     u, s = opt.update(np.array([g]), s, w); w = apply_updates(w, u)
        >>> averaged_params(s)                  # mean of the iterates 1 and 2
        array([1.5])
    """
    return _averaging("polyak_averaging", None)


def ema(decay: float = 0.999) -> GradientTransformation:
    """Exponential moving average of the iterates. Book §16.2.2 (iterate averaging).

    ``w̄_k = β w̄_{k−1} + (1 − β) w_k``, ``w̄_0 = w_0``, with ``w_k = params + updates``; the
    updates pass through unchanged. ``decay=0`` gives the raw iterates. Put it last in a
    :func:`chain`; read the average with :func:`averaged_params`.

    Example::

        >>> opt = chain(sgd(1.0), ema(0.5))
        >>> w = np.array([0.0]); s = opt.init(w)
        >>> u, s = opt.update(np.array([-2.0]), s, w)
        >>> averaged_params(s)                  # 0.5 · 0 + 0.5 · 2
        array([1.])
    """
    return _averaging("ema", _check_unit("ema", "decay", decay, closed_right=True))


def averaged_params(state: Any) -> Any:
    """The averaged iterate held by the (last) averaging state in ``state``. Book §16.2.2.

    ``state`` is the state of :func:`polyak_averaging`, :func:`ema`, or a :func:`chain`
    containing one.

    Example::

        >>> opt = ema(0.0)
        >>> s = opt.init(np.zeros(1))
        >>> averaged_params(opt.update(np.ones(1), s, np.zeros(1))[1])
        array([1.])
    """
    if isinstance(state, AveragingState):
        return state.average
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        for s in reversed(state):
            with contextlib.suppress(ValueError):  # not this link of the chain: try the next
                return averaged_params(s)
    raise ValueError("averaged_params: no polyak_averaging or ema state found in 'state'")
