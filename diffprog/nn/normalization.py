"""Normalization layers (book §4.5).

Epsilon convention: ``ŝ = (s − μ) / √(σ² + ε)`` (as PyTorch and Flax). The book adds ε to σ
itself (``(s − μ)/(σ + ε)``); both coincide at ε = 0, where the acceptance tests run, and differ
by O(ε) elsewhere. Variances are the biased ``1/D`` (or ``1/B``) ones, as in the book.

Batch normalization carries its running statistics as explicit state (the design of
:mod:`diffprog.nn.module`: state is returned, never hidden)::

    y, state = bn(x, state, training=True)    # batch statistics; state updated
    y, _ = bn(x, state, training=False)       # running statistics; state unchanged

Following the book (§4.5.1) the state holds running averages of the batch *means and standard
deviations* (biased, ``1/B``), updated as ``r ← m·r + (1 − m)·batch`` with ``momentum`` m = 0.9
(Flax's convention; PyTorch's ``momentum=0.1`` is our ``0.9``). At inference
``ŝ = (s − μ̂)/√(σ̂² + ε)``, the same ε convention as in training. The new state is computed
through :func:`diffprog.stop_gradient`: running statistics are bookkeeping, not part of the
differentiated program.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.custom import stop_gradient
from ..numpy.structural import normalize_axis
from .linear import check_last_dim
from .module import Module, static
from .primitives import layer_norm_p, standardize_p

__all__ = ["layer_norm", "LayerNorm", "batch_norm", "BatchNorm", "BatchNormState"]


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5,
               axis: int = -1) -> Any:
    """Layer normalization over ``axis`` (book §4.5.2): ``μ = mean(x)``, ``σ² = mean((x−μ)²)``,
    ``y = γ ⊙ (x − μ)/√(σ² + ε) + β``. Token-wise on an ``L×D`` input; no batch dependence.

    Example::

        >>> y = layer_norm(np.array([[1.0, 2.0, 3.0]]), eps=0.0)
        >>> np.allclose(y.mean(-1), 0) and np.allclose(y.std(-1), 1)
        True
    """
    _check_eps(eps, "layer_norm")
    nd = len(dnp.shape(x))
    if nd == 0:
        raise ValueError("layer_norm: argument 'x' must have at least one axis")
    axes = normalize_axis(axis, nd, "layer_norm")
    if len(axes) != 1:                      # several axes: the composition of the moments
        mu, var = _moments(x, axis)
        return _normalize(x, mu, var, gamma, beta, eps)
    last = axes[0] == nd - 1                # one axis: the fused primitive, on the last axis
    d = dnp.shape(x)[-1]
    if last and gamma is not None and beta is not None and dnp.shape(gamma) == (d,) \
            and dnp.shape(beta) == (d,):    # the usual affine layer norm: one fused primitive
        return layer_norm_p.bind(x, gamma, beta, eps=float(eps))[0]
    y = standardize_p.bind(x if last else dnp.moveaxis(x, axes[0], -1), eps=float(eps))
    if not last:
        y = dnp.moveaxis(y, -1, axes[0])
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def _check_eps(eps: float, fname: str) -> None:
    if not eps >= 0:
        raise ValueError(f"{fname}: argument 'eps' must be >= 0, got {eps}")


def _moments(x: Any, axis: Any) -> tuple[Any, Any]:
    """Mean and biased variance over ``axis`` (kept as size-1 dimensions)."""
    mu = dnp.mean(x, axis=axis, keepdims=True)
    xc = x - mu
    return mu, dnp.mean(xc * xc, axis=axis, keepdims=True)


def _normalize(x: Any, mu: Any, var: Any, gamma: Any, beta: Any, eps: float) -> Any:
    """``γ ⊙ (x − μ)/√(σ² + ε) + β`` (γ, β optional)."""
    y = (x - mu) / dnp.sqrt(var + eps)
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


def _batch_axes(x: Any, axis: Any, fname: str) -> tuple[int, ...]:
    """Normalized batch axes; raises unless the batch they span has at least 2 examples."""
    nd = len(np.shape(x))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not axes or any(not -nd <= a < nd for a in axes):
        raise ValueError(f"{fname}: argument 'axis' {axis!r} is not valid for an input of "
                         f"shape {tuple(np.shape(x))}")
    axes = tuple(sorted(a % nd for a in axes))
    count = int(np.prod([np.shape(x)[a] for a in axes]))
    if count < 2:
        raise ValueError(f"{fname}: training mode needs a batch of at least 2 examples over axis "
                         f"{axis!r} (a single example has variance 0), got shape "
                         f"{tuple(np.shape(x))}")
    return axes


def batch_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5,
               axis: Any = 0) -> Any:
    """Batch normalization in training mode (book §4.5.1): statistics over the batch ``axis``
    (an int or a tuple), per feature: ``μ_j = (1/B)Σ_i s_ij``, ``σ_j² = (1/B)Σ_i (s_ij − μ_j)²``,
    ``s̃_ij = γ_j (s_ij − μ_j)/√(σ_j² + ε) + β_j``. Raises if the batch has fewer than 2 examples.

    Example::

        >>> y = batch_norm(np.array([[1.0, 10.0], [3.0, 30.0]]), eps=0.0)
        >>> y.tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
    """
    _check_eps(eps, "batch_norm")
    mu, var = _moments(x, _batch_axes(x, axis, "batch_norm"))
    return _normalize(x, mu, var, gamma, beta, eps)


class BatchNormState(Module):
    """Running statistics of :class:`BatchNorm` (book §4.5.1): per-feature running mean ``μ̂``
    and running (biased) standard deviation ``σ̂``, estimated over training by an exponential
    running average.

    Example::

        >>> BatchNormState.init(2).running_std.tolist()
        [1.0, 1.0]
    """

    running_mean: Any
    running_std: Any

    @classmethod
    def init(cls, features: int, *, dtype: Any = np.float64) -> BatchNormState:
        """``μ̂ = 0``, ``σ̂ = 1``: the identity normalization before any training (book §4.5.1).

        Example::

            >>> BatchNormState.init(3).running_mean.tolist()
            [0.0, 0.0, 0.0]
        """
        return cls(np.zeros(features, dtype), np.ones(features, dtype))


class BatchNorm(Module):
    """Batch normalization with learned per-feature γ, β and explicit running state
    (book §4.5.1). Features are the last axis; statistics are taken over all other axes, so an
    input ``(B, D)``, ``(B, L, D)`` or ``(B, H, W, C)`` works.

    ``bn(x, state, training=True)`` normalizes with the batch statistics and returns
    ``(y, new_state)`` with ``new = m·old + (1 − m)·batch`` (``m = momentum``);
    ``bn(x, state, training=False)`` computes ``γ (x − μ̂)/√(σ̂² + ε) + β`` and returns the state
    unchanged (a batch of one example is fine there, not in training mode).

    Example::

        >>> bn = BatchNorm.init(2, eps=0.0)
        >>> state = bn.initial_state()
        >>> y, state = bn(np.array([[0.0, 1.0], [2.0, 5.0]]), state, training=True)
        >>> y.tolist(), np.round(state.running_mean, 6).tolist()
        ([[-1.0, -1.0], [1.0, 1.0]], [0.1, 0.3])
    """

    gamma: Any
    beta: Any
    eps: float = static(default=1e-5)
    momentum: float = static(default=0.9)

    @classmethod
    def init(cls, features: int, *, momentum: float = 0.9, eps: float = 1e-5,
             dtype: Any = np.float64) -> BatchNorm:
        """γ = 1, β = 0 (book §4.5.1); ``momentum ∈ [0, 1)``, ``eps ≥ 0``.

        Example::

            >>> BatchNorm.init(3, momentum=0.99).momentum
            0.99
        """
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"BatchNorm.init: argument 'momentum' must lie in [0, 1), "
                             f"got {momentum}")
        _check_eps(eps, "BatchNorm.init")
        return cls(np.ones(features, dtype), np.zeros(features, dtype), eps, momentum)

    @property
    def features(self) -> int:
        return int(np.shape(self.gamma)[0])

    def initial_state(self) -> BatchNormState:
        """The state before training: ``μ̂ = 0``, ``σ̂ = 1`` in γ's dtype (book §4.5.1).

        Example::

            >>> BatchNorm.init(2).initial_state().running_std.tolist()
            [1.0, 1.0]
        """
        return BatchNormState.init(self.features, dtype=np.result_type(self.gamma))

    def __call__(self, x: Any, state: BatchNormState, *,
                 training: bool) -> tuple[Any, BatchNormState]:
        check_last_dim(x, self.features, "BatchNorm")
        if not isinstance(state, BatchNormState):
            raise TypeError(f"BatchNorm: argument 'state' must be a BatchNormState, "
                            f"got {type(state).__name__}")
        if not training:
            return _normalize(x, state.running_mean, state.running_std ** 2, self.gamma,
                              self.beta, self.eps), state
        axes = _batch_axes(x, tuple(range(len(np.shape(x)) - 1)), "BatchNorm")
        mu, var = _moments(x, axes)
        y = _normalize(x, mu, var, self.gamma, self.beta, self.eps)
        m = self.momentum
        batch_mean = stop_gradient(dnp.reshape(mu, (-1,)))
        batch_std = stop_gradient(dnp.sqrt(dnp.reshape(var, (-1,))))
        new_state = BatchNormState(m * state.running_mean + (1 - m) * batch_mean,
                                   m * state.running_std + (1 - m) * batch_std)
        return y, new_state
