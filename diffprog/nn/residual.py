"""Residual blocks (book §4.6): ``s_k = s_{k−1} + h_k(s_{k−1}, w_k)``, optionally followed by an
activation ``a_k`` (the post-activation variant ``s_k = a_k(s_{k−1} + h_k(s_{k−1}, w_k))``).

The residual ``h`` is any function (functional form :func:`residual`) or module
(:class:`Residual`); :func:`mlp_residual_block` is the book's ``h(s) = C a(W s + b) + d``, which
is exactly the identity when ``C = 0`` and ``d = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .activations import relu
from .mlp import dense
from .module import Module, static

__all__ = ["residual", "mlp_residual_block", "Residual"]

Activation = Callable[[Any], Any]


def residual(h: Callable[[Any, Any], Any],
             post_activation: Activation | None = None) -> Callable[[Any, Any], Any]:
    """The residual block of ``h`` (book §4.6): returns ``f(s, w) = s + h(s, w)``, or
    ``a(s + h(s, w))`` with ``a = post_activation``. Its Jacobian is ``I + ∂_s h``.

    Example::

        >>> f = residual(lambda s, w: w * s)
        >>> f(2.0, 0.5)
        3.0
    """
    if not callable(h):
        raise TypeError(f"residual: argument 'h' must be callable, got {type(h).__name__}")

    def block(s: Any, w: Any) -> Any:
        out = s + h(s, w)
        return out if post_activation is None else post_activation(out)

    return block


def mlp_residual_block(s: Any, params: tuple[Any, Any, Any, Any], activation: Activation = relu,
                       post_activation: Activation | None = None) -> Any:
    """MLP residual block (book §4.6): ``h(s) = C a(W s + b) + d`` and ``s + h(s)`` (or
    ``a_post(s + h(s))``), in row form ``a(s W + b) C + d`` with ``W (D, H)``, ``C (H, D)``.
    With ``C = 0`` and ``d = 0`` the block is the identity.

    Example::

        >>> W, b, C, d = np.ones((2, 3)), np.ones(3), np.zeros((3, 2)), np.zeros(2)
        >>> mlp_residual_block(np.array([1.0, -2.0]), (W, b, C, d)).tolist()
        [1.0, -2.0]
    """
    if len(params) != 4:
        raise ValueError(f"mlp_residual_block: argument 'params' must be (W, b, C, d), got "
                         f"{len(params)} entries")
    W, b, C, d = params
    if np.shape(C) != tuple(reversed(np.shape(W))):
        raise ValueError(f"mlp_residual_block: 'C' must have shape {tuple(reversed(np.shape(W)))} "
                         f"(the transpose of W's), got {tuple(np.shape(C))}")
    h = dense(dense(s, W, b, activation), C, d)
    out = s + h
    return out if post_activation is None else post_activation(out)


class Residual(Module):
    """Residual block around a module ``h`` (book §4.6): ``x + h(x)``, or
    ``post_activation(x + h(x))``; ``h`` must map ``(..., D)`` to ``(..., D)``.

    Example::

        >>> from diffprog.nn.mlp import MLP
        >>> block = Residual(MLP.init(0, [3, 8, 3]))
        >>> block(np.ones((2, 3))).shape
        (2, 3)
    """

    sublayer: Module
    post_activation: Activation | None = static(default=None)

    def __call__(self, x: Any) -> Any:
        h = self.sublayer(x)
        if np.shape(h) != np.shape(x):
            raise ValueError(f"Residual: the sublayer maps shape {tuple(np.shape(x))} to "
                             f"{tuple(np.shape(h))}; a skip connection needs equal shapes")
        out = x + h
        return out if self.post_activation is None else self.post_activation(out)
