"""Dropout with explicit randomness (regularization for the networks of book §4.2–4.8).

Inverted dropout: in training each entry is kept with probability ``1 − rate`` and scaled by
``1/(1 − rate)``, so ``E[dropout(x)] = x`` and evaluation needs no rescaling (it is the
identity). The mask is drawn from the ``rng`` argument (a Generator or an int seed), never from
hidden global state; training mode without ``rng`` is an error. The mask is drawn in Python when
the layer runs, so inside ``jit`` it would be drawn once at trace time and silently reused on
every call: ``dropout`` raises there instead. Under ``jit`` draw the keep-mask outside the
compiled function with :func:`dropout_mask` and pass it as ``mask=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.jit import JitTracer
from ..core.rng import as_generator
from ..numpy._base import dtype_of
from .module import Module, static

__all__ = ["dropout", "dropout_mask", "Dropout"]


def _check_rate(rate: float, fname: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{fname}: argument 'rate' must lie in [0, 1), got {rate}")


def dropout_mask(rng: Any, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """The keep-mask of inverted dropout, ``m_i ~ Bernoulli(1 − rate)`` i.i.d., as booleans
    (book §4.2). Draw it outside a compiled function and pass it to :func:`dropout` (``mask=``)
    to use dropout inside :func:`diffprog.jit`.

    Example::

        >>> m = dropout_mask(0, (1000,), 0.25)
        >>> m.dtype, bool(0.7 < m.mean() < 0.8)
        (dtype('bool'), True)
    """
    _check_rate(rate, "dropout_mask")
    return as_generator(rng, "dropout_mask").random(tuple(shape)) >= rate


def dropout(x: Any, rate: float, rng: Any = None, *, mask: Any = None) -> Any:
    """Inverted dropout ``y = x ⊙ m / (1 − rate)`` with ``m_i ~ Bernoulli(1 − rate)`` i.i.d.
    drawn from ``rng`` (or given as ``mask``, see :func:`dropout_mask`), so that ``E[y] = x``
    (book §4.2, a random layer with explicit randomness).

    Example::

        >>> y = dropout(np.ones(8), 0.5, rng=0)
        >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0])
        True
    """
    _check_rate(rate, "dropout")
    if mask is None:
        g = as_generator(rng, "dropout")
        if isinstance(x, JitTracer):
            raise TypeError("dropout: inside jit the mask would be drawn once at trace time and "
                            "reused on every call; draw it outside with dropout_mask(rng, shape, "
                            "rate) and pass it as mask=")
        if rate == 0.0:
            return x
        mask = g.random(np.shape(x)) >= rate
    elif rng is not None:
        raise ValueError("dropout: give either 'rng' or 'mask', not both")
    if tuple(np.shape(mask)) != tuple(np.shape(x)):
        raise ValueError(f"dropout: argument 'mask' must have the shape of x "
                         f"{tuple(np.shape(x))}, got {tuple(np.shape(mask))}")
    scale = dnp.where(mask, 1.0 / (1.0 - rate), 0.0)
    return x * dnp.astype(scale, dtype_of(x) if dtype_of(x).kind == "f" else np.float64)


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

    def __call__(self, x: Any, rng: Any = None, *, training: bool = True,
                 mask: Any = None) -> Any:
        if not training:
            return x
        if rng is None and mask is None:
            raise ValueError("Dropout: training mode needs argument 'rng' (a numpy Generator or "
                             "an int seed) or a 'mask' from dropout_mask; pass training=False "
                             "for evaluation")
        return dropout(x, self.rate, rng, mask=mask)
