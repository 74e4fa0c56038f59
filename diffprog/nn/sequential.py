"""Feedforward networks as chains of layers (book §4.2).

``feedforward(layers)`` is the functional form ``f(x, w) = f_K(… f_1(x, w_1) …, w_K)`` with the
parameters as a tuple ``w = (w_1, …, w_K)``; :class:`Sequential` is the module form, whose
layers are modules holding their own parameters. A parameter-free function (an activation)
goes into a :class:`Sequential` wrapped in :class:`Lambda`, so that the model stays a pytree
whose leaves are all parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .module import Module, static

__all__ = ["feedforward", "Sequential", "Lambda"]


def feedforward(layers: Sequence[Callable[[Any, Any], Any]]) -> Callable[[Any, Any], Any]:
    """The feedforward network of ``layers = (f_1, …, f_K)`` (book §4.2): returns
    ``f(x, w)`` with ``s_0 = x``, ``s_k = f_k(s_{k−1}, w_k)``, ``f(x, w) = s_K`` and
    ``w = (w_1, …, w_K)`` (any pytrees, one per layer).

    Example::

        >>> f = feedforward([lambda s, w: w * s, lambda s, w: s + w])
        >>> f(2.0, (3.0, 1.0))
        7.0
    """
    layers = tuple(layers)
    if not layers or not all(callable(f) for f in layers):
        raise TypeError("feedforward: argument 'layers' must be a non-empty sequence of "
                        "callables f_k(s, w_k)")

    def network(x: Any, params: Sequence[Any]) -> Any:
        if len(params) != len(layers):
            raise ValueError(f"feedforward: {len(layers)} layers but {len(params)} parameter "
                             "entries in 'params'")
        s = x
        for f, w in zip(layers, params, strict=True):
            s = f(s, w)
        return s

    return network


class Lambda(Module):
    """A parameter-free layer ``x ↦ fn(x)`` (an activation inside :class:`Sequential`);
    ``fn`` is static configuration, not a pytree leaf. Book §4.2 (layers without weights).

    Example::

        >>> import numpy as np
        >>> Lambda(np.negative)(np.array([1.0])).tolist()
        [-1.0]
    """

    fn: Callable[[Any], Any] = static()

    def __call__(self, x: Any) -> Any:
        return self.fn(x)


class Sequential(Module):
    """Feedforward network of modules ``s_k = f_k(s_{k−1})`` (book §4.2): the parameters are
    those of the layers, so ``grad`` of a loss returns a ``Sequential`` of gradients.

    Example::

        >>> import numpy as np
        >>> from diffprog.nn import Linear, relu
        >>> net = Sequential((Linear.init(0, 3, 4), Lambda(relu), Linear.init(1, 4, 2)))
        >>> net(np.ones((5, 3))).shape
        (5, 2)
    """

    layers: tuple[Module, ...]

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        for k, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {k} must be a Module, got "
                                f"{type(layer).__name__} (wrap plain functions in Lambda)")
        object.__setattr__(self, "layers", layers)

    def __call__(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x
