"""Normalization layers (book §4.5).

Epsilon convention: ``ŝ = (s − μ) / √(σ² + ε)`` (as PyTorch and Flax). The book adds ε to σ
itself (``(s − μ)/(σ + ε)``); both coincide at ε = 0, where the acceptance tests run, and differ
by O(ε) elsewhere. Variances are the biased ``1/D`` (or ``1/B``) ones, as in the book.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from .linear import check_last_dim
from .module import Module, static

__all__ = ["layer_norm", "LayerNorm"]


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5,
               axis: int = -1) -> Any:
    """Layer normalization over ``axis`` (book §4.5.2): ``μ = mean(x)``, ``σ² = mean((x−μ)²)``,
    ``y = γ ⊙ (x − μ)/√(σ² + ε) + β``. Token-wise on an ``L×D`` input; no batch dependence.

    Example::

        >>> y = layer_norm(np.array([[1.0, 2.0, 3.0]]), eps=0.0)
        >>> np.allclose(y.mean(-1), 0) and np.allclose(y.std(-1), 1)
        True
    """
    if eps < 0:
        raise ValueError(f"layer_norm: argument 'eps' must be >= 0, got {eps}")
    mu = dnp.mean(x, axis=axis, keepdims=True)
    xc = x - mu
    var = dnp.mean(xc * xc, axis=axis, keepdims=True)
    y = xc / dnp.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


class LayerNorm(Module):
    """Layer normalization with learned per-feature scale γ and shift β (book §4.5.2).

    Example::

        >>> ln = LayerNorm.init(4)
        >>> ln(np.arange(8.0).reshape(2, 4)).shape
        (2, 4)
    """

    gamma: Any
    beta: Any
    eps: float = static(default=1e-5)

    @classmethod
    def init(cls, features: int, *, eps: float = 1e-5, dtype: Any = np.float64) -> LayerNorm:
        """γ = 1, β = 0 (book §4.5.2).

        Example::

            >>> LayerNorm.init(3).gamma.tolist()
            [1.0, 1.0, 1.0]
        """
        return cls(np.ones(features, dtype), np.zeros(features, dtype), eps)

    def __call__(self, x: Any) -> Any:
        check_last_dim(x, int(np.shape(self.gamma)[0]), "LayerNorm")
        return layer_norm(x, self.gamma, self.beta, self.eps)
