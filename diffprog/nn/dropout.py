"""Dropout with explicit randomness (regularization for the networks of book §4.2–4.8).

Inverted dropout: in training each entry is kept with probability ``1 − rate`` and scaled by
``1/(1 − rate)``, so ``E[dropout(x)] = x`` and evaluation needs no rescaling (it is the
identity). The mask is drawn from the ``rng`` argument (a Generator or an int seed), never from
hidden global state; training mode without ``rng`` is an error. The mask is drawn in Python when
the layer runs, so inside ``jit`` it would be drawn once at trace time and silently reused on
every call: ``dropout`` raises there instead. Under ``jit`` draw the keep-mask outside the
compiled function and multiply by it (``x * keep / (1 − rate)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.jit import JitTracer
from ..core.rng import as_generator
from .module import Module, static

__all__ = ["dropout", "Dropout"]


def _check_rate(rate: float, fname: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{fname}: argument 'rate' must lie in [0, 1), got {rate}")


def dropout(x: Any, rate: float, rng: Any) -> Any:
    """Inverted dropout ``y = x ⊙ m / (1 − rate)`` with ``m_i ~ Bernoulli(1 − rate)`` i.i.d.
    drawn from ``rng``, so that ``E[y] = x`` (book §4.2, a random layer with explicit ``rng``).

    Example::

        >>> y = dropout(np.ones(8), 0.5, rng=0)
        >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0])
        True
    """
    _check_rate(rate, "dropout")
    g = as_generator(rng, "dropout")
    if isinstance(x, JitTracer):
        raise TypeError("dropout: inside jit the mask would be drawn once at trace time and "
                        "reused on every call; draw the keep-mask outside the compiled function "
                        "and pass it in as an argument")
    if rate == 0.0:
        return x
    keep = g.random(np.shape(x)) >= rate
    dtype = np.result_type(x.dtype if hasattr(x, "dtype") else np.asarray(x), np.float32)
    return x * (keep / (1.0 - rate)).astype(dtype)


class Dropout(Module):
    """Dropout layer (book §4.2): ``Dropout(rate)(x, rng, training=True)`` applies
    :func:`dropout`; ``training=False`` is the identity. Training without ``rng`` raises.

    Example::

        >>> layer = Dropout(0.25)
        >>> layer(np.ones(3), training=False).tolist()
        [1.0, 1.0, 1.0]
    """

    rate: float = static(default=0.5)

    def __post_init__(self) -> None:
        _check_rate(self.rate, "Dropout")

    def __call__(self, x: Any, rng: Any = None, *, training: bool = True) -> Any:
        if not training:
            return x
        if rng is None:
            raise ValueError("Dropout: training mode needs argument 'rng' (a numpy Generator or "
                             "an int seed); pass training=False for evaluation")
        return dropout(x, self.rate, rng)
