"""``diffprog.scipy``: differentiable counterparts of SciPy functions.

Submodules are imported on first access, so ``import diffprog.scipy`` costs nothing until one is
used::

    >>> import numpy as np, diffprog.scipy
    >>> float(diffprog.scipy.special.logsumexp(np.array([0.0, 0.0])))  # log 2
    0.6931471805599453

- :mod:`diffprog.scipy.special`: ``logsumexp``, ``softmax``, ``expit``, ``erf``, ``gammaln``,
  ``digamma``, ``polygamma``, ``xlogy``... with derivatives of any order (book §4.4, §8.4.1).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["special", "sparse"]

_SUBMODULES = frozenset({"special", "sparse"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'diffprog.scipy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
