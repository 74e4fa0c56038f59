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
    """Register ``cls`` as a pytree container. Book §2.3.2 (pytrees stand for the book's Euclidean
    spaces E).

    ``flatten(obj) -> (children, aux)`` returns an iterable of children and hashable static data;
    ``unflatten(aux, children) -> obj`` rebuilds the object.

    Example::

        >>> class Pair:
        ...     def __init__(self, a, b): self.a, self.b = a, b
        >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
        >>> len(tree_leaves(Pair(1.0, 2.0)))
        2
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_pytree_node: argument 'cls' must be a class, got {cls!r}")
    _registry[cls] = (flatten, unflatten)


def register_dataclass(cls: type, static_fields: tuple[str, ...] = ()) -> type:
    """Register a dataclass as a pytree whose fields are children (except ``static_fields``).
    Book §2.3.2 (pytrees stand for the book's Euclidean spaces E).

    Example (as a decorator)::

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
    """The structure of a pytree.

    Internally a structure is a nested tuple ``spec`` (``None`` for a leaf, else
    ``(kind, aux, child_specs)``), so structures hash and compare at C speed; each distinct
    structure is interned once with a compiled rebuilding function.
    """

    __slots__ = ("spec", "num_leaves", "_build")

    def __new__(cls, spec):
        try:
            d = _DEFS.get(spec)
        except TypeError:  # unhashable static data: not interned
            d = None
            hashable = False
        else:
            hashable = True
        if d is not None:
            return d
        d = object.__new__(cls)
        d.spec = spec
        d.num_leaves = _count(spec)
        d._build = _compile(spec)
        if hashable:
            if len(_DEFS) > 50_000:
                _DEFS.clear()
            _DEFS[spec] = d
        return d

    @property
    def kind(self):
        return None if self.spec is None else self.spec[0]

    @property
    def aux(self):
        return None if self.spec is None else self.spec[1]

    @property
    def children(self) -> tuple:
        return () if self.spec is None else tuple(PyTreeDef(c) for c in self.spec[2])

    def unflatten(self, leaves) -> Any:
        """Rebuild the pytree from a flat sequence of leaves."""
        if len(leaves) != self.num_leaves:
            raise ValueError(
                f"unflatten: expected {self.num_leaves} leaves for structure {self}, "
                f"got {len(leaves)}"
            )
        return self._build(leaves)

    def __eq__(self, other):
        return isinstance(other, PyTreeDef) and self.spec == other.spec

    def __hash__(self):
        try:
            return hash(self.spec)
        except TypeError:
            return id(self)

    def __repr__(self):
        return _spec_repr(self.spec)


_DEFS: dict = {}


def _count(spec):
    if spec is None:
        return 1
    return sum(_count(c) for c in spec[2])


def _spec_repr(spec):
    if spec is None:
        return "*"
    kind, aux, kids = spec
    inner = ", ".join(_spec_repr(c) for c in kids)
    if kind == "namedtuple":
        name = aux.__name__
    elif isinstance(kind, type):
        name = kind.__name__
    else:
        name = str(kind)
    return f"{name}({inner})"


def _compile(spec):
    """Build ``lambda L: <expression rebuilding the tree from the leaf list L>``."""
    consts: list = []
    counter = [0]

    def expr(sp):
        if sp is None:
            i = counter[0]
            counter[0] += 1
            return f"L[{i}]"
        kind, aux, kids = sp
        parts = [expr(c) for c in kids]
        if kind is tuple:
            return "(" + "".join(p + ", " for p in parts) + ")"
        if kind is list:
            return "[" + ", ".join(parts) + "]"
        if kind is dict:
            consts.append(aux)
            k = len(consts) - 1
            return f"dict(zip(C[{k}], (" + "".join(p + ", " for p in parts) + ")))"
        if kind is type(None):
            return "None"
        consts.append(aux if kind == "namedtuple" else _registry[kind][1])
        k = len(consts) - 1
        if kind == "namedtuple":
            return f"C[{k}](" + ", ".join(parts) + ")"
        consts.append(aux)
        return f"C[{k}](C[{k + 1}], [" + ", ".join(parts) + "])"

    code = expr(spec)
    return eval(f"lambda L, C=C: {code}", {"C": consts, "dict": dict, "zip": zip})


LEAF = PyTreeDef(None)
_NONE_SPEC = (type(None), None, ())
_LEAF_TYPES_SET = {np.ndarray, float, int, complex, np.float64, np.float32}


def _flatten(tree, leaves):
    t = type(tree)
    if t in _LEAF_TYPES_SET:
        leaves.append(tree)
        return None
    if t is tuple or t is list:
        return (t, None, tuple([_flatten(c, leaves) for c in tree]))
    if t is dict:
        keys = tuple(sorted(tree))
        return (dict, keys, tuple([_flatten(tree[k], leaves) for k in keys]))
    if tree is None:
        return _NONE_SPEC
    if t in _registry:
        children, aux = _registry[t][0](tree)
        return (t, aux, tuple([_flatten(c, leaves) for c in children]))
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return ("namedtuple", t, tuple([_flatten(c, leaves) for c in tree]))
    leaves.append(tree)
    return None


def tree_flatten(tree: Any) -> tuple[list, PyTreeDef]:
    """Return the leaves of ``tree`` (depth first) and its structure. Book §2.3.2 (pytrees stand
    for the book's Euclidean spaces E).

    Example::

        >>> leaves, treedef = tree_flatten({"b": 1.0, "a": (2.0, None)})
        >>> leaves
        [2.0, 1.0]
    """
    leaves: list = []
    spec = _flatten(tree, leaves)
    try:
        d = _DEFS.get(spec)
    except TypeError:
        d = None
    if d is None:
        d = PyTreeDef(spec)
    return leaves, d


def tree_unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Inverse of :func:`tree_flatten`. Book §2.3.2 (pytrees stand for the book's Euclidean spaces
    E).

    Example::

        >>> _, treedef = tree_flatten((1.0, [2.0]))
        >>> tree_unflatten(treedef, [3.0, 4.0])
        (3.0, [4.0])
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any) -> list:
    """The leaves of ``tree`` in flattening order. Book §2.3.2 (pytrees stand for the book's
    Euclidean spaces E).

    Example::

        >>> tree_leaves([1.0, {"x": 2.0}])
        [1.0, 2.0]
    """
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> PyTreeDef:
    """The structure of ``tree``. Book §2.3.2 (pytrees stand for the book's Euclidean spaces E).

    Example::

        >>> tree_structure((1.0, 2.0)).num_leaves
        2
    """
    return tree_flatten(tree)[1]


def tree_map(fn: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leafwise to ``tree`` and trees of the same structure in ``rest``. Book §2.3.2
    (pytrees stand for the book's Euclidean spaces E).

    Example::

        >>> tree_map(lambda x, y: x + y, (1.0, [2.0]), (10.0, [20.0]))
        (11.0, [22.0])
    """
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        rl, rdef = tree_flatten(r)
        if rdef != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} vs {rdef}")
        others.append(rl)
    return treedef.unflatten([fn(*xs) for xs in zip(leaves, *others, strict=True)])


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
