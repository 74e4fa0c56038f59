"""The affine layer ``x ↦ x W + b`` (book §4.3.1), the building block of MLPs and Transformers."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from .module import Module, glorot_uniform

__all__ = ["Linear", "check_last_dim"]


def check_last_dim(x: Any, expected: int, fname: str, argname: str = "x") -> None:
    """Raise ``ValueError`` unless ``x.shape[-1] == expected`` (book §4.3: layer widths must match).

    Example::

        >>> check_last_dim(np.ones((2, 3)), 3, "Linear")
    """
    shape = np.shape(x)
    if len(shape) == 0 or shape[-1] != expected:
        raise ValueError(f"{fname}: input '{argname}' must have last dimension {expected}, "
                         f"got shape {tuple(shape)}")


class Linear(Module):
    """Affine layer ``y = x W + b`` with ``W ∈ ℝ^{in×out}`` (book §4.3.1, the row form of the
    book's ``W s + b``). Works on any leading batch shape ``(..., in) → (..., out)``.

    Example::

        >>> lin = Linear.init(0, 3, 2)
        >>> lin(np.ones((5, 3))).shape
        (5, 2)
    """

    W: Any
    b: Any = None

    @classmethod
    def init(cls, rng: Any, in_features: int, out_features: int, *, use_bias: bool = True,
             dtype: Any = np.float64) -> Linear:
        """Glorot-uniform weights and zero bias (book §4.3.1).

        Example::

            >>> Linear.init(0, 4, 2, use_bias=False).b is None
            True
        """
        g = as_generator(rng, "Linear.init")
        W = glorot_uniform(g, (in_features, out_features), dtype)
        return cls(W, np.zeros(out_features, dtype) if use_bias else None)

    @property
    def in_features(self) -> int:
        return int(np.shape(self.W)[0])

    @property
    def out_features(self) -> int:
        return int(np.shape(self.W)[1])

    def __call__(self, x: Any) -> Any:
        check_last_dim(x, self.in_features, "Linear")
        y = dnp.matmul(x, self.W)
        return y if self.b is None else y + self.b
