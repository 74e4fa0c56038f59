"""Multilayer perceptrons (book §4.3): dense layers, MLPs and generalized linear models.

Row convention (see :mod:`diffprog.nn.module`): a dense layer computes ``x W + b`` with ``W`` of
shape ``(in, out)``, the transpose of the book's ``W s + b``. The functional forms take their
parameters as plain pytrees (``((W_1, b_1), …, (W_K, b_K))``); :class:`MLP` is the module form,
holding a tuple of :class:`~diffprog.nn.linear.Linear` layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from ..scipy.special import softargmax
from .activations import relu
from .linear import Linear, check_last_dim
from .module import Module, static

__all__ = ["dense", "mlp", "glm", "MLP"]

Activation = Callable[[Any], Any]


def dense(x: Any, W: Any, b: Any = None, activation: Activation | None = None) -> Any:
    """Dense layer ``a(x W + b)`` (book §4.3.1): the affine map ``s ↦ W s + b`` in row form,
    followed by the activation ``a`` when given (pre-activation ``α = x W + b``).

    Example::

        >>> dense(np.array([1.0, -2.0]), np.eye(2), np.zeros(2), activation=relu).tolist()
        [1.0, 0.0]
    """
    if np.ndim(W) != 2:
        raise ValueError(f"dense: argument 'W' must be a matrix (in, out), got shape "
                         f"{tuple(np.shape(W))}")
    check_last_dim(x, int(np.shape(W)[0]), "dense")
    y = dnp.matmul(x, W)
    if b is not None:
        y = y + b
    return y if activation is None else activation(y)


def _forward(params: Sequence[Any], x: Any, activation: Activation,
             final_activation: Activation | None, fname: str) -> tuple[Any, list[Any]]:
    """``s_k = a_k(s_{k−1} W_k + b_k)``; returns ``(s_K, [α_1, …, α_K])``."""
    if len(params) == 0:
        raise ValueError(f"{fname}: needs at least one layer, got none")
    s, pre = x, []
    for k, (W, b) in enumerate(params):
        check_last_dim(s, int(np.shape(W)[0]), fname, "x" if k == 0 else f"layer {k} input")
        alpha = dnp.matmul(s, W)
        if b is not None:
            alpha = alpha + b
        pre.append(alpha)
        act = activation if k < len(params) - 1 else final_activation
        s = alpha if act is None else act(alpha)
    return s, pre


def mlp(params: Sequence[tuple[Any, Any]], x: Any, activation: Activation = relu,
        final_activation: Activation | None = None,
        return_preactivations: bool = False) -> Any:
    """Multilayer perceptron (book §4.3.1): ``s_0 = x``, ``α_k = s_{k−1} W_k + b_k``,
    ``s_k = a(α_k)`` for ``k < K`` and ``s_K = a_K(α_K)`` (``final_activation``, identity when
    ``None``). ``params = ((W_1, b_1), …, (W_K, b_K))`` (a ``b_k`` may be ``None``). With
    ``return_preactivations=True`` returns ``(s_K, [α_1, …, α_K])``.

    Example::

        >>> params = ((np.eye(2), np.zeros(2)), (np.ones((2, 1)), np.zeros(1)))
        >>> mlp(params, np.array([3.0, -1.0])).tolist()
        [3.0]
    """
    out, pre = _forward(params, x, activation, final_activation, "mlp")
    return (out, pre) if return_preactivations else out


def glm(params: tuple[Any, Any], x: Any, link: Activation | None = None) -> Any:
    """Generalized linear model ``a(x W + b)`` = a one-layer MLP (book §4.3.2). The default
    output activation is ``softargmax`` over the last axis, giving multiclass logistic
    regression: ``π = softargmax(x W + b) ∈ Δ^M``.

    Example::

        >>> glm((np.zeros((2, 3)), np.zeros(3)), np.ones(2)).round(4).tolist()
        [0.3333, 0.3333, 0.3333]
    """
    if link is None:
        return mlp((params,), x, final_activation=_softargmax_last)
    return mlp((params,), x, final_activation=link)


def _softargmax_last(u: Any) -> Any:
    return softargmax(u, axis=-1)


class MLP(Module):
    """Multilayer perceptron as a module (book §4.3.1): a tuple of
    :class:`~diffprog.nn.linear.Linear` layers, ``activation`` between them and
    ``final_activation`` (identity when ``None``) after the last one; same maths as :func:`mlp`.

    Example::

        >>> net = MLP.init(0, [3, 8, 2])
        >>> net(np.ones((5, 3))).shape, len(net.layers)
        ((5, 2), 2)
    """

    layers: tuple[Linear, ...]
    activation: Activation = static(default=relu)
    final_activation: Activation | None = static(default=None)

    @classmethod
    def init(cls, rng: Any, sizes: Sequence[int], activation: Activation = relu,
             final_activation: Activation | None = None, *, use_bias: bool = True,
             dtype: Any = np.float64) -> MLP:
        """Layers of widths ``sizes = (d_0, d_1, …, d_K)``, Glorot weights, zero biases
        (book §4.3.1).

        Example::

            >>> [l.W.shape for l in MLP.init(0, [4, 3, 1]).layers]
            [(4, 3), (3, 1)]
        """
        sizes = [int(d) for d in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP.init: argument 'sizes' must list at least two positive widths "
                             f"(input and output), got {sizes}")
        g = as_generator(rng, "MLP.init")
        layers = tuple(Linear.init(g, a, b, use_bias=use_bias, dtype=dtype)
                       for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        return cls(layers, activation, final_activation)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    def __call__(self, x: Any) -> Any:
        params = [(layer.W, layer.b) for layer in self.layers]
        return _forward(params, x, self.activation, self.final_activation, "MLP")[0]
