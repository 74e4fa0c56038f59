"""Modules as dataclass pytrees (book §4.2–4.3; the design follows Equinox: no hidden state).

A module is a frozen dataclass whose array fields are the parameters (pytree leaves) and whose
``static`` fields are configuration (activation functions, sizes, epsilons), kept in the pytree
structure. So a model *is* its parameters: ``diffprog.grad(loss)(model, x, y)`` returns a model of
the same type holding the gradients, ``diffprog.tree_map`` updates it, optimizers from
``diffprog.optim`` apply to it, and ``diffprog.io.save`` writes it without pickle.

Subclassing :class:`Module` is all it takes::

    class Affine(Module):
        W: np.ndarray
        b: np.ndarray
        name: str = static(default="affine")

        def __call__(self, x):
            return x @ self.W + self.b

Conventions (documented once here, followed by every layer):

- **Rows are examples.** Inputs have shape ``(..., features)``; a linear layer computes
  ``x @ W + b`` with ``W`` of shape ``(in, out)``. The book writes MLPs with column vectors
  (``W s + b``, §4.3) and Transformers with row-stacked matrices (``X W^Q``, §4.8); the row form is
  the book's transposed MLP weight, used everywhere for one convention.
- **Explicit initialization.** Every layer has a ``classmethod`` ``init(rng, ...)`` taking a
  :class:`numpy.random.Generator` or an int seed (see :func:`diffprog.core.rng.as_generator`).
- **State is returned, never hidden.** Layers with state (batch normalization) take it as an
  argument and return the new state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..core.pytree import register_dataclass, tree_leaves
from ..core.rng import as_generator

__all__ = ["Module", "static", "count_params", "glorot_uniform", "normal_init"]


def static(**kwargs: Any) -> Any:
    """A dataclass field holding configuration, not parameters (it stays out of the pytree leaves).
    Book §4.2 (the architecture is fixed; only the weights w are learned).

    Example::

        >>> class Scale(Module):
        ...     a: np.ndarray
        ...     power: int = static(default=1)
        ...     def __call__(self, x): return self.a * x ** self.power
        >>> len(tree_leaves(Scale(np.ones(3), power=2)))
        1
    """
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["static"] = True
    return dataclasses.field(metadata=metadata, **kwargs)


class Module:
    """Base class of parameterized programs ``f(x, w)`` (book §4.2): a frozen dataclass pytree.

    Subclasses are turned into frozen dataclasses and registered as pytrees automatically; fields
    declared with :func:`static` are configuration, every other field is a child of the pytree
    (an array, a nested module, a list or tuple of modules, or ``None``).

    Example::

        >>> import diffprog
        >>> class Affine(Module):
        ...     W: np.ndarray
        ...     b: np.ndarray
        ...     def __call__(self, x): return x @ self.W + self.b
        >>> m = Affine(np.eye(2), np.zeros(2))
        >>> g = diffprog.grad(lambda m: (m(np.ones(2)) ** 2).sum())(m)
        >>> type(g).__name__, g.b.tolist()
        ('Affine', [2.0, 2.0])
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, eq=False)(cls)
        static_fields = tuple(f.name for f in dataclasses.fields(cls)
                              if f.metadata.get("static", False))
        register_dataclass(cls, static_fields)

    def replace(self, **changes: Any) -> Module:
        """A copy with some fields replaced (book §4.2).

        Example::

            >>> class A(Module):
            ...     w: np.ndarray
            >>> A(np.ones(2)).replace(w=np.zeros(2)).w.tolist()
            [0.0, 0.0]
        """
        return dataclasses.replace(self, **changes)


def count_params(tree: Any) -> int:
    """Number of scalar parameters in a pytree (a module, or nested tuples of arrays). Book §4.8.5.

    Example::

        >>> count_params((np.zeros((3, 4)), np.zeros(4)))
        16
    """
    return int(sum(np.size(leaf) for leaf in tree_leaves(tree)))


def glorot_uniform(rng: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """Glorot (Xavier) uniform initialization ``U(−a, a)``, ``a = √(6 / (fan_in + fan_out))``.
    Book §4.3 (the book leaves initialization open; this keeps activations' variance constant).

    Example::

        >>> W = glorot_uniform(0, (100, 100))
        >>> bool(abs(W).max() <= np.sqrt(6 / 200))
        True
    """
    g = as_generator(rng, "glorot_uniform")
    fan_in, fan_out = (shape[0], shape[-1]) if len(shape) >= 2 else (shape[0], shape[0])
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return g.uniform(-a, a, size=shape).astype(dtype)


def normal_init(rng: Any, shape: tuple[int, ...], std: float = 0.02,
                dtype: Any = np.float64) -> np.ndarray:
    """Normal initialization ``N(0, std²)`` (embeddings, positional tables). Book §4.8.6.

    Example::

        >>> normal_init(0, (2, 3)).shape
        (2, 3)
    """
    g = as_generator(rng, "normal_init")
    return (std * g.standard_normal(shape)).astype(dtype)
