"""Explicit randomness: every function that samples takes ``rng`` (DESIGN.md, "Randomness").

``rng`` is a :class:`numpy.random.Generator` or an int seed. There is no hidden global state:
a function called twice with the same seed returns the same draw, and a missing ``rng`` is an
error that names the function, never a silent fallback to ``np.random``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["as_generator"]


def as_generator(rng: Any, fname: str, argname: str = "rng") -> np.random.Generator:
    """The :class:`numpy.random.Generator` for ``rng`` (a Generator or an int seed). Book §3.1
    (sampling a random variable needs an explicit source of randomness).

    Raises ``ValueError`` naming ``fname`` when ``rng`` is missing or of the wrong kind.

    Example::

        >>> g = as_generator(0, "sample")
        >>> float(g.random()) == float(np.random.default_rng(0).random())
        True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{fname}: argument '{argname}' must be a non-negative int seed, "
                             f"got {rng}")
        return np.random.default_rng(int(rng))
    if rng is None:
        raise ValueError(f"{fname}: argument '{argname}' is required (a numpy.random.Generator "
                         "or an int seed); diffprog never samples from hidden global state")
    raise TypeError(f"{fname}: argument '{argname}' must be a numpy.random.Generator or an int "
                    f"seed, got {type(rng).__name__}")
