"""Vectorizing map: ``vmap`` and the batching interpreter (book §8.1.3, §9.8.3).

``vmap(f)`` evaluates ``f`` on a whole batch of examples at once: ``vmap(f)(xs)`` equals
``stack([f(x) for x in xs])`` but each primitive runs once on the batch. It is the batched
JVPs/VJPs of book §8.1.3 (a Jacobian is a batch of JVPs with the basis vectors, or of VJPs) and
the per-example ("individual") gradients of §9.8.3 (``vmap(grad(loss), in_axes=(None, 0, 0))``).

The interpreter (JAX's design): a :class:`BatchTracer` holds the batched array ``val`` and the
axis ``bdim`` that carries the batch; a primitive applied to batch tracers is handed to
:meth:`BatchTrace.process`, which calls the primitive's batching rule
(:mod:`diffprog.core.batching_rules`) or, for a primitive without one, the **loop fallback**:
move the batch axis first, ``bind`` the primitive once per example, stack the results. Rules
and the fallback only ever call ``prim.bind``, so batching composes with the other
transformations in both orders (``grad(vmap(f))``, ``vmap(grad(f))``, ``jvp`` of ``vmap``,
nested ``vmap``).

Design notes:

- Seen from the program, a batch tracer is *one example*: ``.shape``, ``.ndim``, ``.dtype`` are
  the per-example ones, and the chain of ``.value`` attributes that other tracers walk to find
  shapes ends, for a batch tracer, in a per-example *representative* (a view of the first
  example; zeros for an empty batch). A batch tracer is not ``concrete``: value-dependent code
  (``primal()``, ``bool(x)``, ``float(x)``) is refused rather than silently given the first
  example's value, and indexing with a batched index array makes it a *dynamic parameter* of the
  indexing primitive (handled by a vectorized rule for integer-array indices, else the loop).
- Outputs that do not depend on the mapped inputs are broadcast along the batch axis, as in
  JAX; ``out_axes=None`` is allowed only for them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..numpy._base import dtype_of, shape_of
from ..numpy.structural import getitem_p
from . import batching_rules as _rules
from .batching_rules import LOOP_FALLBACK, Batched
from .primitive import Trace, Tracer
from .pytree import _registry as _node_registry
from .pytree import tree_flatten

__all__ = ["vmap", "BatchTrace", "BatchTracer", "LOOP_FALLBACK", "FALLBACK_CALLS"]

#: name -> number of loop-fallback evaluations (registered or not, e.g. ``custom_jvp[f]``)
FALLBACK_CALLS: dict[str, int] = {}


# ----------------------------------------------------------------------------- tracer / trace
def _walk(x):
    while isinstance(x, Tracer):
        x = x.value
    return x


class BatchTracer(Tracer):
    """A batch of values: ``val`` (array or lower-level tracer) batched along axis ``bdim``."""

    __slots__ = ("val", "bdim", "_rep")
    concrete = False

    def __init__(self, trace, val, bdim):
        self._trace = trace
        self.val = val
        self.bdim = bdim
        self._rep = None

    @property
    def value(self):
        """A per-example representative (shapes and dtypes only; see the module notes)."""
        r = self._rep
        if r is None:
            p = np.asarray(_walk(self.val))
            d = self.bdim
            if p.shape[d] == 0:
                r = np.zeros(p.shape[:d] + p.shape[d + 1:], p.dtype)
            else:
                r = p[(slice(None),) * d + (0,)]
            self._rep = r
        return r

    @property
    def shape(self):
        v = self.val
        s = v.shape if type(v) is np.ndarray else shape_of(v)
        d = self.bdim
        return tuple(s[:d]) + tuple(s[d + 1:])

    @property
    def dtype(self):
        v = self.val
        return v.dtype if type(v) is np.ndarray else dtype_of(v)

    @property
    def ndim(self):
        return len(self.shape)

    def _refuse(self, what):
        raise TypeError(
            f"vmap: {what} of a batched value is not defined (each example has its own value); "
            "data-dependent Python control flow cannot be vectorized: use diffprog.numpy.where "
            "(or compute outside vmap)"
        )

    def __bool__(self):
        self._refuse("the truth value")

    def __float__(self):
        self._refuse("float()")

    def __int__(self):
        self._refuse("int()")

    def __index__(self):
        self._refuse("use as a Python integer")

    def item(self):
        self._refuse(".item()")

    def tolist(self):
        self._refuse(".tolist()")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "vmap: a batched value cannot be converted to a NumPy array (for instance to index a "
            "plain NumPy array, or by a NumPy function diffprog does not know); index a "
            "diffprog value instead, or use diffprog.numpy functions"
        )

    def __repr__(self):
        return f"BatchTracer(bdim={self.bdim}, {self.val!r})"


class BatchTrace(Trace):
    """The batching interpreter: ``process`` applies a primitive to a batch (see module)."""

    __slots__ = ("axis_size",)

    def __init__(self, axis_size: int):
        super().__init__()
        self.axis_size = axis_size

    def process(self, prim, args, params):
        if self.axis_size is None:
            raise RuntimeError(
                f"vmap: a batched value escaped the vmap that created it (a leaked tracer) and "
                f"was used by '{prim.name}' after that vmap returned; return it from the mapped "
                "function instead"
            )
        vals = []
        dims = []
        for a in args:
            if type(a) is BatchTracer and a._trace is self:
                vals.append(a.val)
                dims.append(a.bdim)
            else:
                vals.append(a)
                dims.append(None)
        got = None
        if params and self._dynamic(params):
            params = {k: self._mark(v) for k, v in params.items()}
            rule = _rules.dynamic_rule_for(prim)
            if rule is not None:
                got = rule(vals, dims, **params)
            if got is None:
                got = self._loop(prim, vals, dims, params)
        else:
            rule = prim.batch
            if rule is None:
                rule = _rules.rule_for(prim)
            if rule is not None:
                got = rule(vals, dims, **params)
            if got is None:
                got = self._loop(prim, vals, dims, params)
        out, od = got
        if prim.multiple_results:
            return tuple(o if d is None else BatchTracer(self, o, d)
                         for o, d in zip(out, od, strict=True))
        if od is None:
            return out
        return BatchTracer(self, out, od)

    # -- parameters holding batched values (e.g. an index array computed from the inputs)
    def _own(self, v) -> bool:
        return type(v) is BatchTracer and v._trace is self

    def _dynamic(self, params) -> bool:
        for v in params.values():
            if type(v) is tuple:
                for e in v:
                    if type(e) is BatchTracer and e._trace is self:
                        return True
            elif type(v) is BatchTracer and v._trace is self:
                return True
        return False

    def _mark(self, v):
        if type(v) is tuple:
            return tuple(Batched(e.val, e.bdim) if self._own(e) else e for e in v)
        if self._own(v):
            return Batched(v.val, v.bdim)
        return v

    # -- the generic fallback
    def _loop(self, prim, vals, dims, params):
        """One ``bind`` per example, stacked along axis 0 (correct for any primitive)."""
        FALLBACK_CALLS[prim.name] = FALLBACK_CALLS.get(prim.name, 0) + 1
        size = self.axis_size
        dyn = any(isinstance(v, Batched) or (type(v) is tuple and any(
            isinstance(e, Batched) for e in v)) for v in params.values())
        outs = []
        if size == 0:
            return self._empty(prim, vals, dims, params)
        for b in range(size):
            xs = [v if d is None else _example(v, d, b) for v, d in zip(vals, dims, strict=True)]
            p = {k: _example_param(v, b) for k, v in params.items()} if dyn else params
            outs.append(prim.bind(*xs, **p))
        if prim.multiple_results:
            n = len(outs[0])
            return tuple(_stack([o[k] for o in outs]) for k in range(n)), (0,) * n
        return _stack(outs), 0

    def _empty(self, prim, vals, dims, params):
        """An empty batch: evaluate one dummy example for the output shapes."""
        xs = [v if d is None else _zero_example(v, d) for v, d in zip(vals, dims, strict=True)]
        p = {k: _zero_param(v) for k, v in params.items()}
        out = prim.bind(*xs, **p)
        if prim.multiple_results:
            return tuple(_empty_batch(o) for o in out), (0,) * len(out)
        return _empty_batch(out), 0


def _zero_example(v, d):
    s = list(shape_of(v))
    del s[d]
    return np.zeros(s, dtype_of(v))


def _empty_batch(o):
    return np.zeros((0,) + tuple(shape_of(o)), dtype_of(o))


def _example(v, d, b):
    idx = (slice(None),) * d + (b,)
    if type(v) is np.ndarray:
        return v[idx]
    return getitem_p.bind(v, idx=idx)


def _example_param(v, b):
    if isinstance(v, Batched):
        return _example(v.val, v.bdim, b)
    if type(v) is tuple:
        return tuple(_example(e.val, e.bdim, b) if isinstance(e, Batched) else e for e in v)
    return v


def _zero_param(v):
    def z(e):
        return _zero_example(e.val, e.bdim) if isinstance(e, Batched) else e

    if type(v) is tuple:
        return tuple(z(e) for e in v)
    return z(v)


def _stack(outs):
    if all(isinstance(o, (np.ndarray, np.generic, int, float, complex, bool)) for o in outs):
        return np.stack(outs)
    from ..numpy import stack

    return stack(outs)


# ----------------------------------------------------------------------------- axis specs
def _children(x):
    """``(kind, aux, children)`` of a pytree node (as :func:`tree_flatten` sees it), or None
    for a leaf."""
    t = type(x)
    if t is tuple or t is list:
        return t, None, list(x)
    if t is dict:
        keys = tuple(sorted(x))
        return dict, keys, [x[k] for k in keys]
    if x is None:
        return type(None), None, []
    if t in _node_registry:
        ch, aux = _node_registry[t][0](x)
        return t, aux, list(ch)
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return "namedtuple", t, list(x)
    return None


def _is_axis(a) -> bool:
    return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))


def _check_axis_spec(spec, what):
    """Type-check an in_axes/out_axes specification once, when vmap is called."""
    if _is_axis(spec):
        return
    node = _children(spec)
    if node is None:
        raise TypeError(
            f"vmap: {what} must be an int, None, or a (nested) tuple/list/dict of them, got "
            f"{spec!r} of type {type(spec).__name__}"
        )
    for c in node[2]:
        _check_axis_spec(c, what)


def _axes_for(spec, tree, what, where, path="") -> list:
    """One axis (int or None) per leaf of ``tree``: ``spec`` is a pytree prefix of ``tree``."""
    if _is_axis(spec):
        return [None if spec is None else int(spec)] * len(tree_flatten(tree)[0])
    sn = _children(spec)
    tn = _children(tree)
    if tn is None or sn[0] != tn[0] or sn[1] != tn[1] or len(sn[2]) != len(tn[2]):
        raise ValueError(
            f"vmap: the {what} specification {spec!r} does not match the structure of "
            f"{where}{path} ({_describe(tree)}): it must be an int, None, or a pytree prefix of it"
        )
    out = []
    for k, (s, t) in enumerate(zip(sn[2], tn[2], strict=True)):
        out.extend(_axes_for(s, t, what, where, f"{path}[{_key(sn, k)!r}]"))
    return out


def _key(node, k):
    kind, aux, _ = node
    if kind is dict:
        return aux[k]
    if kind == "namedtuple":
        return aux._fields[k]
    return k


def _leaf_paths(tree) -> list:
    node = _children(tree)
    if node is None:
        return [""]
    out = []
    for k, c in enumerate(node[2]):
        out.extend(f"[{_key(node, k)!r}]{p}" for p in _leaf_paths(c))
    return out


def _describe(tree):
    _, d = tree_flatten(tree)
    return f"structure {d}"


def _arg_names(fun, n):
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return [None] * n
    names = []
    for k in range(n):
        if k < len(params) and params[k].kind in (params[k].POSITIONAL_ONLY,
                                                   params[k].POSITIONAL_OR_KEYWORD):
            names.append(params[k].name)
        else:
            names.append(None)
    return names


def _batch_size(leaves, axes, where, axis_size, label) -> int:
    """Check the mapped leaves (arrays, axis in range, equal sizes) and normalize ``axes`` in
    place; returns the batch size. ``label(where[i])`` names leaf ``i`` in error messages."""
    size = axis_size
    first = None
    for i, (x, ax) in enumerate(zip(leaves, axes, strict=True)):
        if ax is None:
            continue
        if not isinstance(x, (np.ndarray, Tracer)):
            kind = type(x).__name__
            x = leaves[i] = np.asarray(x)
            if x.dtype == object:
                raise TypeError(f"vmap: {label(where[i])} is mapped (axis {ax}) but is not an "
                                f"array (got {kind}); pass in_axes=None for it")
        s = tuple(shape_of(x))
        nd = len(s)
        if not -nd <= ax < nd:
            hint = " (a scalar cannot be mapped; pass in_axes=None for it)" if not s else ""
            raise ValueError(
                f"vmap: in_axes={ax} is out of range for {label(where[i])} of shape {s} (ndim "
                f"{nd}): a mapped axis must satisfy -{nd} <= axis < {nd}{hint}"
            )
        ax = axes[i] = ax % nd
        n = s[ax]
        if size is None:
            size, first = n, i
        elif n != size:
            if first is None:
                raise ValueError(f"vmap: axis_size={axis_size} but {label(where[i])} has size "
                                 f"{n} along its mapped axis {ax} (shape {s})")
            s0 = tuple(shape_of(leaves[first]))
            raise ValueError(
                f"vmap: inconsistent sizes for the mapped axes: {label(where[first])} has size "
                f"{size} along axis {axes[first]} (shape {s0}), but {label(where[i])} has size "
                f"{n} along axis {ax} (shape {s})"
            )
    if size is None:
        raise ValueError(
            "vmap: no argument is mapped (every in_axes entry is None, or there are no array "
            "arguments) and axis_size is not given: the batch size is unknown"
        )
    return size


def _arg_label(fun, args, kwargs, where):
    """``argument 1 ('y')['b']``: which input leaf ``where = (position or keyword, leaf)``."""
    k, j = where
    tree = kwargs[k] if isinstance(k, str) else args[k]
    paths = _leaf_paths(tree)
    path = paths[j] if j < len(paths) else ""
    if isinstance(k, str):
        return f"keyword argument {k!r}{path}"
    name = _arg_names(fun, k + 1)[k]
    return f"argument {k}{f' ({name!r})' if name else ''}{path}"


# ----------------------------------------------------------------------------- vmap
def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_size: int | None = None
         ) -> Callable:
    """Vectorizing map: ``vmap(fun)(xs) == stack([fun(x) for x in xs])``, one batched call.

    Book §8.1.3 (a Jacobian is a batch of JVPs or VJPs with basis vectors: ``vmap`` runs the
    batch in one pass) and §9.8.3 (individual, per-example gradients
    ``vmap(grad(loss), in_axes=(None, 0, 0))(w, X, Y)[i] = ∇_w L(w; x_i, y_i)``).

    Semantics (JAX's): with ``B`` the batch size,
    ``vmap(f, in_axes, out_axes)(*args)`` returns ``out`` such that, for every ``i < B``,
    ``take(out, i, out_axes) == f(*[take(a, i, ax) for a, ax in zip(args, in_axes)])`` (an
    argument with axis ``None`` is passed whole to every example).

    - ``in_axes``: an int (every positional argument mapped along that axis), ``None``, or a
      tuple (or list) with one entry per positional argument, each an int, ``None`` or a pytree
      prefix of that argument (e.g. ``({"w": None, "b": 0},)``). Negative axes count from the
      end. Keyword arguments are mapped along axis 0.
    - ``out_axes``: same, as a prefix of the output pytree; outputs that do not depend on the
      mapped inputs are broadcast along the batch axis; ``None`` keeps such an output unbatched.
    - ``axis_size``: the batch size, needed only when no argument is mapped.

    ``vmap`` composes with ``grad``, ``jvp``, ``vjp``, ``jacfwd``/``jacrev`` and itself, in
    both orders. Inside ``fun`` values are per-example: ``x.shape`` excludes the batch axis.
    Python control flow on batched values raises (use ``diffprog.numpy.where``). Raises
    ``ValueError`` naming ``vmap`` and the argument when the mapped sizes disagree, an axis is
    out of range, or an ``in_axes`` structure does not match the arguments.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> diffprog.vmap(lambda a, b: a @ b, in_axes=(0, None))(np.eye(2), np.array([3., 4.]))
        array([3., 4.])
        >>> w = np.array([1.0, 2.0])
        >>> per_example = diffprog.vmap(diffprog.grad(lambda w, x: dnp.sum(w * x) ** 2),
        ...                             in_axes=(None, 0))
        >>> per_example(w, np.eye(2))  # row i: ∇_w (w·x_i)² = 2 (w·x_i) x_i
        array([[2., 0.],
               [0., 4.]])
    """
    if not callable(fun):
        raise TypeError(f"vmap: the function to map must be callable, got {type(fun).__name__}")
    _check_axis_spec(in_axes, "in_axes")
    _check_axis_spec(out_axes, "out_axes")
    if axis_size is not None and (not isinstance(axis_size, (int, np.integer))
                                  or isinstance(axis_size, bool) or axis_size < 0):
        raise ValueError(f"vmap: axis_size must be a non-negative int, got {axis_size!r}")

    @functools.wraps(fun)
    def vmapped(*args, **kwargs):
        # -- one axis per input leaf
        if _is_axis(in_axes):
            specs = [in_axes] * len(args)
        elif type(in_axes) in (tuple, list):
            if len(in_axes) != len(args):
                extra = (f" (keyword arguments {sorted(kwargs)} are mapped along axis 0 and "
                         "need no entry)") if kwargs else ""
                raise ValueError(
                    f"vmap: in_axes has {len(in_axes)} entries but the function was called with "
                    f"{len(args)} positional argument(s){extra}; give one entry per positional "
                    "argument, or a single int/None for all"
                )
            specs = list(in_axes)
        else:
            raise ValueError(
                f"vmap: in_axes must be an int, None, or a tuple with one entry per positional "
                f"argument, got {in_axes!r}"
            )
        leaves, args_def = tree_flatten(tuple(args))
        n_pos = len(leaves)
        axes, where = [], []
        for k, (a, s) in enumerate(zip(args, specs, strict=True)):
            got = _axes_for(s, a, "in_axes", f"argument {k}")
            axes.extend(got)
            where.extend((k, j) for j in range(len(got)))
        for key in sorted(kwargs):
            lv = tree_flatten(kwargs[key])[0]
            leaves.extend(lv)
            axes.extend([0] * len(lv))
            where.extend((key, j) for j in range(len(lv)))
        # -- normalize axes, check sizes
        label = functools.partial(_arg_label, fun, args, kwargs)
        size = _batch_size(leaves, axes, where, axis_size, label)
        # -- run
        trace = BatchTrace(size)
        try:
            with trace:
                ins = [x if ax is None else BatchTracer(trace, x, ax)
                       for x, ax in zip(leaves, axes, strict=True)]
                new_args = args_def.unflatten(ins[:n_pos])
                new_kwargs = {}
                o = n_pos
                for key in sorted(kwargs):
                    lv, d = tree_flatten(kwargs[key])
                    new_kwargs[key] = d.unflatten(ins[o:o + len(lv)])
                    o += len(lv)
                out = fun(*new_args, **new_kwargs)
        finally:
            trace.axis_size = None  # closed: a batched value that escapes can no longer be used
        # -- outputs
        flat_out, out_def = tree_flatten(out)
        oaxes = _axes_for(out_axes, out, "out_axes", "the output")
        res = []
        for k, (o, ax) in enumerate(zip(flat_out, oaxes, strict=True)):
            res.append(_output(o, ax, trace, size, functools.partial(_out_label, out, k)))
        return out_def.unflatten(res)

    return vmapped


def _out_label(out, k):
    path = _leaf_paths(out)[k]
    return f"output leaf {k}{f' (output{path})' if path else ''}"


def _output(o, ax, trace, size, label):
    from ..numpy import broadcast_to, expand_dims

    batched = type(o) is BatchTracer and o._trace is trace
    if ax is None:
        if batched:
            raise ValueError(
                f"vmap: out_axes is None for {label()}, but that output depends on the "
                "mapped inputs (it differs between examples); give it an axis"
            )
        return o
    if batched:
        v, d = o.val, o.bdim
        nd = len(shape_of(v))
    else:
        v, d = o, None
        if not isinstance(v, (np.ndarray, Tracer)):
            v = np.asarray(v)
            if v.dtype == object:
                raise TypeError(f"vmap: {label()} is not an array (got {type(o).__name__}); "
                                "a mapped function must return arrays (pytrees of arrays)")
        nd = len(shape_of(v)) + 1
    if not -nd <= ax < nd:
        raise ValueError(
            f"vmap: out_axes={ax} is out of range for {label()}, which has "
            f"{nd - 1} per-example dimension(s) (-{nd} <= axis < {nd})"
        )
    ax %= nd
    if batched:
        return _rules.moveaxis(v, d, ax)
    # an output independent of the mapped inputs: the same value for every example
    s = tuple(shape_of(v))
    target = s[:ax] + (size,) + s[ax:]
    if isinstance(v, Tracer):
        return broadcast_to(expand_dims(v, ax), target)
    return np.broadcast_to(np.expand_dims(v, ax), target).copy()


