"""A training loop for gradient transformations, with a loss history and an optional progress bar.

Book §16.1 (gradient descent loop), §16.2 (stochastic training on mini-batches).

``fit`` runs ``num_steps`` iterations of ``g = ∇loss(params[, batch])``,
``updates, state = optimizer.update(g, state, params)``, ``params = apply_updates(params, updates)``
and records the loss (evaluated at the iterate *before* its update) and the gradient norm at every
step. ``progress=True`` shows a ``tqdm`` bar when tqdm is installed (optional; without it the flag
is ignored silently).

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> from diffprog.optim.transforms import sgd
    >>> params, hist = fit(lambda w: dnp.sum((w - 3.0) ** 2), np.zeros(2), sgd(0.5),
    ...                    num_steps=3)
    >>> params, hist.loss.tolist()
    (array([3., 3.]), [18.0, 0.0, 0.0])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..core.api import value_and_grad
from ..core.jit import jit as jit_compile
from .transforms import GradientTransformation, apply_updates, global_norm

__all__ = ["History", "fit"]


class History(NamedTuple):
    """What :func:`fit` records: per-step ``loss`` and ``grad_norm`` arrays (length = number of
    steps run) and the final optimizer state ``opt_state`` (to resume training or save it)."""

    loss: np.ndarray
    grad_norm: np.ndarray
    opt_state: Any


def _progress(iterable: Iterable, total: int, enabled: bool):
    if not enabled:
        return iterable, None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional dependency
        return iterable, None
    bar = tqdm(iterable, total=total, desc="fit")
    return bar, bar


def _training_step(vg: Callable, optimizer: GradientTransformation) -> Callable:
    """``(params, state, batch) -> (params, state, loss, ‖∇loss‖)``, for ``jit``."""

    def step(params, state, batch):
        value, g = vg(params) if batch is None else vg(params, batch)
        updates, state = optimizer.update(g, state, params)
        return apply_updates(params, updates), state, value, global_norm(g)

    return step


def fit(loss_fn: Callable[..., Any], params: Any, optimizer: GradientTransformation,
        data: Iterable | None = None, num_steps: int = 100, *, progress: bool = False,
        opt_state: Any = None, callback: Callable[[int, Any, float], Any] | None = None,
        jit: bool = False) -> tuple[Any, History]:
    """Minimize ``loss_fn`` with ``optimizer`` from ``params``; return ``(params, history)``.
    Book §16.1, §16.2.2.

    Args:
        loss_fn: ``loss_fn(params)`` (full batch, ``data=None``) or ``loss_fn(params, batch)``;
            must return a scalar.
        params: any pytree of arrays.
        optimizer: a :class:`~diffprog.optim.transforms.GradientTransformation`.
        data: ``None``; a sequence of batches (cycled through in order); or any other iterable
            (consumed; the loop stops early when it is exhausted).
        num_steps: maximum number of steps (>= 0).
        progress: show a tqdm progress bar if tqdm is installed.
        opt_state: a state to resume from (default: ``optimizer.init(params)``).
        callback: ``callback(step, params, loss)`` called after each step; returning ``True``
            stops the loop.
        jit: compile the whole step (gradient, optimizer update, gradient norm) with
            :func:`diffprog.jit` (traced once per batch shape; the loss must then be free of
            Python control flow on traced values).

    Raises ``FloatingPointError`` if the loss becomes non-finite (naming the step).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.optim.transforms import adam
        >>> batches = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
        >>> w, h = fit(lambda w, b: dnp.mean((w - b) ** 2), np.array(0.0), adam(0.1),
        ...            data=batches, num_steps=300)
        >>> bool(abs(w - 2.5) < 0.1), len(h.loss)
        (True, 300)
    """
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"fit: 'optimizer' must be a GradientTransformation, got {optimizer!r}")
    if not callable(loss_fn):
        raise TypeError(f"fit: 'loss_fn' must be callable, got {loss_fn!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) \
            or num_steps < 0:
        raise ValueError(f"fit: 'num_steps' must be an integer >= 0, got {num_steps!r}")

    if data is None:
        batches = itertools.repeat(None)
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if len(data) == 0:
            raise ValueError("fit: 'data' is an empty sequence")
        batches = itertools.cycle(data)
    else:
        batches = iter(data)

    vg = value_and_grad(loss_fn)
    compiled = jit_compile(_training_step(vg, optimizer)) if jit else None
    state = optimizer.init(params) if opt_state is None else opt_state
    losses: list[float] = []
    norms: list[float] = []
    steps, bar = _progress(range(int(num_steps)), int(num_steps), progress)
    try:
        for step in steps:
            try:
                batch = next(batches)
            except StopIteration:
                break
            if compiled is not None:     # gradient, update and its norm: one program
                new_params, new_state, value, norm = compiled(params, state, batch)
                value, norm = float(np.asarray(value)), float(np.asarray(norm))
                if not (np.isfinite(value) and np.isfinite(norm)):
                    what = "loss" if not np.isfinite(value) else "gradient norm"
                    raise FloatingPointError(f"fit: the {what} is "
                                             f"{value if what == 'loss' else norm} at step {step}")
                params, state = new_params, new_state
            else:
                value, g = vg(params) if data is None else vg(params, batch)
                value = float(np.asarray(value))
                if not np.isfinite(value):
                    raise FloatingPointError(f"fit: the loss is {value} at step {step}")
                updates, state = optimizer.update(g, state, params)
                params = apply_updates(params, updates)
                norm = global_norm(g)
            losses.append(value)
            norms.append(norm)
            if bar is not None and step % 10 == 0:
                bar.set_postfix(loss=f"{value:.4g}")
            if callback is not None and callback(step, params, value) is True:
                break
    finally:
        if bar is not None:
            bar.close()
    return params, History(np.asarray(losses), np.asarray(norms), state)
