r"""Random Fourier features (Rahimi & Recht, 2007), the random counterpart of the deterministic
sinusoidal frequencies of positional encodings (Book §4.8.7).

``z(x) = √(2/D) cos(x Ω + b)`` with ``Ω ∈ ℝ^{d×D}`` of i.i.d. ``N(0, 1/ℓ²)`` entries and
``b ∈ [0, 2π)^D`` uniform. By Bochner's theorem ``E[z(x)·z(y)] = exp(−‖x − y‖²/(2ℓ²))``, the
RBF (Gaussian) kernel of lengthscale ``ℓ``, with an error ``O(1/√D)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from ..numpy._base import dtype_of, float_dtype, shape_of
from .linear import check_last_dim
from .module import Module

__all__ = ["RandomFourierFeatures", "random_fourier_features"]


def _positive_int(fname: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{fname}: argument '{name}' must be a positive int, got {v!r}")
    return int(v)


class RandomFourierFeatures(Module):
    r"""The feature map ``z(x) = √(2/D) cos(x Ω + b)`` approximating the RBF kernel (Book §4.8.7).

    ``omega`` has shape ``(in_features, n_features)`` (rows are examples: ``x @ omega``) and
    ``phase`` shape ``(n_features,)``. Both are pytree leaves: wrap the module in
    ``diffprog.stop_gradient`` (or ignore their gradients) to keep them random and fixed.

    Example::

        >>> rff = RandomFourierFeatures.init(0, 3, 500)
        >>> rff(np.ones((4, 3))).shape
        (4, 500)
    """

    omega: Any
    phase: Any

    @classmethod
    def init(cls, rng: Any, in_features: int, n_features: int, *, lengthscale: float = 1.0,
             dtype: Any = np.float64) -> RandomFourierFeatures:
        r"""Draw ``Ω ~ N(0, ℓ^{-2})`` and ``b ~ U[0, 2π)`` (Book §4.8.7; Rahimi & Recht).

        Example::

            >>> RandomFourierFeatures.init(0, 2, 8).omega.shape
            (2, 8)
        """
        fname = "RandomFourierFeatures.init"
        d = _positive_int(fname, "in_features", in_features)
        n = _positive_int(fname, "n_features", n_features)
        if not (isinstance(lengthscale, numbers.Real) and math.isfinite(lengthscale)
                and lengthscale > 0):
            raise ValueError(f"{fname}: argument 'lengthscale' must be > 0 and finite, "
                             f"got {lengthscale!r}")
        g = as_generator(rng, fname)
        omega = (g.standard_normal((d, n)) / lengthscale).astype(dtype)
        phase = g.uniform(0.0, 2.0 * math.pi, size=n).astype(dtype)
        return cls(omega, phase)

    @property
    def n_features(self) -> int:
        """``D``, the number of random features (Book §4.8.7).

        Example::

            >>> RandomFourierFeatures.init(0, 2, 8).n_features
            8
        """
        return int(np.shape(self.phase)[0])

    def __call__(self, x: Any) -> Any:
        check_last_dim(x, int(np.shape(self.omega)[0]), "RandomFourierFeatures")
        scale = math.sqrt(2.0 / self.n_features)
        return scale * dnp.cos(dnp.matmul(x, self.omega) + self.phase)


def random_fourier_features(x: Any, n_features: int, rng: Any,
                            lengthscale: float = 1.0) -> Any:
    r"""``z(x) = √(2/D) cos(x Ω + b)`` with fresh random ``Ω``, ``b`` (Book §4.8.7).

    ``x`` has shape ``(..., d)``; the result ``(..., n_features)`` satisfies
    ``z(x)·z(y) ≈ exp(−‖x − y‖²/(2ℓ²))``. Differentiable in ``x``.

    Example::

        >>> X = np.array([[0.0, 0.0], [0.5, 0.0]])
        >>> Z = random_fourier_features(X, 20000, rng=0)
        >>> bool(abs(Z[0] @ Z[1] - np.exp(-0.125)) < 0.03)
        True
    """
    fname = "random_fourier_features"
    shape = shape_of(x)
    if len(shape) == 0:
        raise ValueError(f"{fname}: argument 'x' must have a last (feature) axis, got a scalar")
    _positive_int(fname, "n_features", n_features)
    g = as_generator(rng, fname)
    rff = RandomFourierFeatures.init(g, shape[-1], n_features, lengthscale=lengthscale,
                                     dtype=float_dtype(dtype_of(x)))
    return rff(x)
