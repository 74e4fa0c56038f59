"""Pytrees: nested containers of arrays that every transformation accepts and returns.

A pytree is a leaf (an array, a scalar, a tracer, or any object that is not a registered
container) or a container of pytrees. Registered containers: ``tuple``, ``list``, ``dict``
(children in sorted key order), ``None`` (no children), namedtuples, and classes registered with
:func:`register_pytree_node` or :func:`register_dataclass`.

``tree_flatten(tree) -> (leaves, treedef)`` and ``treedef.unflatten(leaves)`` are the only two
operations the engine needs; the ``tree_map`` family is built on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "PyTreeDef",
    "register_dataclass",
    "register_pytree_node",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_structure",
    "tree_unflatten",
    "ravel_pytree",
]

# type -> (flatten(obj) -> (children, aux), unflatten(aux, children) -> obj)
_registry: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(cls: type, flatten: Callable, unflatten: Callable) -> None:
    """Register ``cls`` as a pytree container.

    ``flatten(obj) -> (children, aux)`` returns an iterable of children and hashable static data;
    ``unflatten(aux, children) -> obj`` rebuilds the object.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_pytree_node: argument 'cls' must be a class, got {cls!r}")
    _registry[cls] = (flatten, unflatten)


def register_dataclass(cls: type, static_fields: tuple[str, ...] = ()) -> type:
    """Register a dataclass as a pytree whose fields are children (except ``static_fields``).

    Usable as a decorator::

        @register_dataclass
        @dataclasses.dataclass
        class Linear:
            W: np.ndarray
            b: np.ndarray
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"register_dataclass: {cls!r} is not a dataclass")
    names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in static_fields)
    static = tuple(static_fields)

    def flatten(obj):
        return [getattr(obj, n) for n in names], tuple(getattr(obj, s) for s in static)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for n, c in zip(names, children, strict=True):
            object.__setattr__(obj, n, c)
        for s, v in zip(static, aux, strict=True):
            object.__setattr__(obj, s, v)
        return obj

    register_pytree_node(cls, flatten, unflatten)
    return cls


class PyTreeDef:
    """The structure of a pytree: a node type, static data and child structures."""

    __slots__ = ("kind", "aux", "children", "num_leaves")

    def __init__(self, kind, aux, children):
        self.kind = kind
        self.aux = aux
        self.children = children
        if kind is None:
            self.num_leaves = 1
        else:
            n = 0
            for c in children:
                n += c.num_leaves
            self.num_leaves = n

    def unflatten(self, leaves) -> Any:
        """Rebuild the pytree from a flat sequence of leaves."""
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(
                f"unflatten: expected {self.num_leaves} leaves for structure {self}, got {len(leaves)}"
            )
        it = iter(leaves)
        return self._build(it)

    def _build(self, it):
        kind = self.kind
        if kind is None:
            return next(it)
        kids = [next(it) if c.kind is None else c._build(it) for c in self.children]
        if kind is tuple:
            return tuple(kids)
        if kind is list:
            return kids
        if kind is dict:
            return dict(zip(self.aux, kids, strict=True))
        if kind is type(None):
            return None
        if kind == "namedtuple":
            return self.aux(*kids)
        return _registry[kind][1](self.aux, kids)

    def __eq__(self, other):
        return (
            isinstance(other, PyTreeDef)
            and self.kind == other.kind
            and self.aux == other.aux
            and self.children == other.children
        )

    def __hash__(self):
        return hash((self.kind, self.aux if _hashable(self.aux) else id(self.aux), self.children))

    def __repr__(self):
        if self.kind is None:
            return "*"
        inner = ", ".join(repr(c) for c in self.children)
        name = self.kind.__name__ if isinstance(self.kind, type) else getattr(self.aux, "__name__", "nt")
        return f"{name}({inner})"


def _hashable(x):
    try:
        hash(x)
        return True
    except TypeError:
        return False


LEAF = PyTreeDef(None, None, ())
_LEAF_TYPES_SET = {np.ndarray, float, int, complex, np.float64, np.float32}
_NONE = PyTreeDef(type(None), None, ())


def _flatten(tree, leaves):
    t = type(tree)
    if t is tuple or t is list:
        kids = []
        for c in tree:
            if type(c) in _LEAF_TYPES_SET:
                leaves.append(c)
                kids.append(LEAF)
            else:
                kids.append(_flatten(c, leaves))
        return PyTreeDef(t, None, tuple(kids))
    if t is dict:
        keys = sorted(tree)
        return PyTreeDef(dict, tuple(keys), tuple(_flatten(tree[k], leaves) for k in keys))
    if tree is None:
        return _NONE
    if t in _registry:
        children, aux = _registry[t][0](tree)
        return PyTreeDef(t, aux, tuple(_flatten(c, leaves) for c in children))
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return PyTreeDef("namedtuple", t, tuple(_flatten(c, leaves) for c in tree))
    leaves.append(tree)
    return LEAF


def tree_flatten(tree: Any) -> tuple[list, PyTreeDef]:
    """Return the leaves of ``tree`` (depth first) and its structure."""
    leaves: list = []
    treedef = _flatten(tree, leaves)
    return leaves, treedef


def tree_unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Inverse of :func:`tree_flatten`."""
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any) -> list:
    """The leaves of ``tree`` in flattening order."""
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> PyTreeDef:
    """The structure of ``tree``."""
    return tree_flatten(tree)[1]


def tree_map(fn: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leafwise to ``tree`` and trees of the same structure in ``rest``."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        rl, rdef = tree_flatten(r)
        if rdef != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} vs {rdef}")
        others.append(rl)
    return treedef.unflatten([fn(*xs) for xs in zip(leaves, *others)])


def ravel_pytree(tree: Any) -> tuple[np.ndarray, Callable]:
    """Concatenate the leaves of ``tree`` into one flat vector; return it and the inverse map.

    The inverse map is differentiable (built from diffprog primitives), so
    ``unravel(v)`` can be traced.
    """
    from ..numpy import concatenate, ravel, reshape  # local: numpy namespace builds on core

    leaves, treedef = tree_flatten(tree)
    shapes = [np.shape(x) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = concatenate([ravel(x) for x in leaves]) if leaves else np.zeros(0)
    offsets = np.cumsum([0, *sizes])

    def unravel(vec):
        return treedef.unflatten(
            [reshape(vec[offsets[i] : offsets[i + 1]], s) for i, s in enumerate(shapes)]
        )

    return flat, unravel
