"""Batching rules: how each primitive acts on a batch of examples (book §8.1.3, §9.8.3).

A batching rule has the signature ``rule(args, dims, **params) -> (out, out_dim)``: ``args`` are
the primitive's arguments, each either unbatched (``dims[i] is None``: the same value for every
example) or batched along axis ``dims[i]``; the rule returns the batched output and the axis
that carries the batch (for ``multiple_results`` primitives: a tuple of outputs and a tuple of
axes). Rules compute with ``prim.bind`` only, so they are differentiable and nest with every
other transformation (``grad(vmap(f))``, ``vmap(grad(f))``, ``vmap(vmap(f))``).

The rules are kept in one dense table, :data:`RULES` (primitive name -> factory building the
rule for that primitive), and attached to the registered primitives by name
(:func:`attach_rules`): at import for the primitives registered so far, and lazily by
:mod:`diffprog.core.batching` for primitives registered later (``diffprog.numpy.linalg``,
``diffprog.numpy.fft`` and ``diffprog.scipy.special`` are imported on demand). Families:

- **elementwise** (unary, binary, non-differentiable ufuncs, ``where``, ``clip``, dtype
  conversions, complex parts, ``stop_gradient``, the ``scipy.special`` functions): the batch
  axes are aligned (moved to the front and padded with unit axes so that NumPy broadcasting
  pairs the per-example axes) and the primitive is applied once; when every batched argument
  already carries its batch axis at the same place no data moves;
- **reductions and scans** with an ``axis`` parameter (``sum``, ``max``, ``min``,
  ``logsumexp``, ``cumsum``, ``sort``, ``argsort``, ``argmax``, ``argmin``, ``all``, ``any``,
  ``count_nonzero``): the per-example axes are shifted past the batch axis;
- **structural** (``reshape``, ``transpose``, ``broadcast_to``, ``concatenate``, ``pad``,
  ``getitem``, ``index_add``, ``index_set``): the batch axis is put first and the parameters
  are rewritten (``idx`` gains a leading ``:``; NumPy's rule that separated advanced indices
  move to the front fixes where the batch axis lands). Index arrays that are themselves batched
  (a dynamic ``idx`` parameter) are handled by :data:`DYNAMIC` rules when the index is made of
  integer arrays only (a leading ``arange(B)`` index pairs every example with its own indices),
  and by the loop fallback otherwise;
- **contractions**: ``matmul`` (vector/matrix/stacked cases, padding the leading axes so they
  broadcast per example) and ``einsum`` (a fresh letter for the batch axis);
- **linear algebra**: NumPy's ``linalg`` functions broadcast over leading axes, so the batch
  axis is moved to the front;
- **FFTs**: the transformed axes are shifted past the batch axis.

Primitives without a rule (and the unregistered ``custom_jvp``/``custom_vjp`` primitives) use
the generic loop fallback of :mod:`diffprog.core.batching` (one ``bind`` per example, then a
stack): always correct, but one Python-level call per example. :data:`LOOP_FALLBACK` lists the
registered primitives that have no rule.
"""

from __future__ import annotations

import string

import numpy as np

from ..numpy._base import shape_of
from ..numpy.contraction import einsum_p, matmul_p
from ..numpy.structural import (
    broadcast_to_p,
    concatenate_p,
    getitem_p,
    reshape_p,
    transpose_p,
)
from .primitive import Tracer, registry

__all__ = ["RULES", "DYNAMIC", "LOOP_FALLBACK", "Batched", "attach_rules", "rule_for"]


# ----------------------------------------------------------------------------- helpers
def _shape(x) -> tuple:
    return x.shape if type(x) is np.ndarray else shape_of(x)


def _ndim(x) -> int:
    return x.ndim if type(x) is np.ndarray else len(shape_of(x))


def moveaxis(x, src: int, dst: int):
    """``x`` with axis ``src`` moved to position ``dst`` (a ``transpose`` primitive)."""
    if src == dst:
        return x
    nd = _ndim(x)
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return transpose_p.bind(x, axes=tuple(perm))


def to_front(x, d: int):
    """Move the batch axis ``d`` of ``x`` to position 0."""
    return moveaxis(x, d, 0) if d else x


def pad_rank(x, r: int):
    """``x`` batched on axis 0, with unit axes inserted after the batch axis so that its
    per-example rank is at least ``r`` (NumPy broadcasting then aligns per-example axes)."""
    s = _shape(x)
    pe = len(s) - 1
    if pe >= r:
        return x
    return reshape_p.bind(x, shape=(s[0],) + (1,) * (r - pe) + tuple(s[1:]))


def broadcast_batch(x, size: int):
    """An unbatched ``x`` repeated ``size`` times along a new leading axis (a broadcast view)."""
    s = tuple(_shape(x))
    return broadcast_to_p.bind(x, shape=(size,) + s)


def batch_size(args, dims) -> int:
    for a, d in zip(args, dims, strict=True):
        if d is not None:
            return _shape(a)[d]
    raise ValueError("vmap: internal error: a batching rule was called with no batched argument")


def _norm_axis(a, nd: int) -> int:
    a = int(a)
    return a % nd if nd else 0


def _norm_axes(axis, nd: int) -> tuple:
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, (int, np.integer)):
        return (_norm_axis(axis, nd),)
    return tuple(_norm_axis(a, nd) for a in axis)


def _shift(axes, d: int) -> tuple:
    """Per-example axes as axes of the batched array whose batch axis is ``d``."""
    return tuple(a + 1 if a >= d else a for a in axes)


# ----------------------------------------------------------------------------- elementwise
def _broadcasting(bind, args, dims, params):
    """Apply an elementwise (broadcasting) primitive to batched arguments."""
    d0 = None
    r = -1
    same = True
    unbatched_rank = 0
    ranks = []
    for a, d in zip(args, dims, strict=True):
        nd = _ndim(a)
        if d is None:
            ranks.append(nd)
            if nd > unbatched_rank:
                unbatched_rank = nd
            continue
        pe = nd - 1
        ranks.append(pe)
        if d0 is None:
            d0, r = d, pe
        elif d != d0 or pe != r:
            same = False
    # fast path: all batch axes at the same place, and the unbatched arguments (aligned on the
    # right by broadcasting) only reach per-example axes after it
    if same and unbatched_rank <= r - d0:
        return bind(*args, **params), d0
    r = max(ranks)
    new = []
    for a, d in zip(args, dims, strict=True):
        new.append(a if d is None else pad_rank(to_front(a, d), r))
    return bind(*new, **params), 0


def _elementwise(prim):
    bind = prim.bind

    def rule(args, dims, **params):
        if len(args) == 1:
            return bind(args[0], **params), dims[0]
        return _broadcasting(bind, args, dims, params)

    return rule


# ----------------------------------------------------------------------------- reductions
def _reduce(prim):
    """``axis`` (normalized tuple) and ``keepdims``: sum, max, min, logsumexp."""
    bind = prim.bind

    def rule(args, dims, *, axis, keepdims, **params):
        (x,), (d,) = args, dims
        out = bind(x, axis=_shift(axis, d), keepdims=keepdims, **params)
        if keepdims:
            return out, d
        return out, d - sum(1 for a in axis if a < d)

    return rule


def _along_axes(prim):
    """A normalized ``axis`` tuple, result of the input's shape: softmax."""
    bind = prim.bind

    def rule(args, dims, *, axis, **params):
        (x,), (d,) = args, dims
        return bind(x, axis=_shift(axis, d), **params), d

    return rule


def _reduce_raw(prim, has_keepdims=True):
    """``axis`` as the user gave it (None, int or tuple, maybe negative): all, any,
    count_nonzero."""
    bind = prim.bind

    def rule(args, dims, *, axis, **params):
        (x,), (d,) = args, dims
        axes = _norm_axes(axis, _ndim(x) - 1)
        out = bind(x, axis=_shift(axes, d), **params)
        if has_keepdims and params.get("keepdims"):
            return out, d
        return out, d - sum(1 for a in axes if a < d)

    return rule


def _along_axis(prim):
    """One normalized ``axis`` that the output keeps: cumsum, sort."""
    bind = prim.bind

    def rule(args, dims, *, axis, **params):
        (x,), (d,) = args, dims
        return bind(x, axis=_shift((axis,), d)[0], **params), d

    return rule


def _flatten_batched(x, d):
    """``x`` with its batch axis first and the per-example axes flattened: (B, -1)."""
    x = to_front(x, d)
    s = _shape(x)
    return reshape_p.bind(x, shape=(s[0], int(np.prod(s[1:], dtype=np.int64))))


def _argsort_rule(prim):
    bind = prim.bind

    def rule(args, dims, *, axis, **params):
        (x,), (d,) = args, dims
        if axis is None:  # sorts the flattened example
            return bind(_flatten_batched(x, d), axis=1, **params), 0
        a = _norm_axis(axis, _ndim(x) - 1)
        return bind(x, axis=_shift((a,), d)[0], **params), d

    return rule


def _arg_extremum_rule(prim):
    bind = prim.bind

    def rule(args, dims, *, axis, **params):
        (x,), (d,) = args, dims
        if axis is None:
            return bind(_flatten_batched(x, d), axis=1, **params), 0
        a = _norm_axis(axis, _ndim(x) - 1)
        return bind(x, axis=_shift((a,), d)[0], **params), d - 1 if a < d else d

    return rule


# ----------------------------------------------------------------------------- structural
def _reshape_rule(args, dims, *, shape):
    x = to_front(args[0], dims[0])
    return reshape_p.bind(x, shape=(_shape(x)[0],) + tuple(shape)), 0


def _transpose_rule(args, dims, *, axes):
    d = dims[0]
    perm = (d,) + _shift(axes, d)
    return transpose_p.bind(args[0], axes=perm), 0


def _broadcast_rule(args, dims, *, shape):
    x = to_front(args[0], dims[0])
    x = pad_rank(x, len(shape))
    return broadcast_to_p.bind(x, shape=(_shape(x)[0],) + tuple(shape)), 0


def _concatenate_rule(args, dims, *, axis):
    size = batch_size(args, dims)
    xs = [broadcast_batch(a, size) if d is None else to_front(a, d)
          for a, d in zip(args, dims, strict=True)]
    return concatenate_p.bind(*xs, axis=axis + 1), 0


def _pad_rule(prim):
    def rule(args, dims, *, pad_width):
        d = dims[0]
        pw = tuple(pad_width)
        return prim.bind(args[0], pad_width=pw[:d] + ((0, 0),) + pw[d:]), d

    return rule


def _as_tuple(idx):
    return idx if type(idx) is tuple else (idx,)


def _is_array_index(i) -> bool:
    return isinstance(i, (np.ndarray, Tracer))


def _adv_batch_pos(idx) -> int:
    """Where the batch axis lands in ``x[(:,) + idx]`` for ``x`` batched on axis 0.

    NumPy puts the broadcast shape of the advanced indices (arrays, and integers combined with
    arrays) in place of the first of them when they are adjacent, and first otherwise; the
    leading ``:`` keeps the batch axis first in the first case and puts it right after the
    broadcast axes in the second.
    """
    arrays = [i for i in idx if _is_array_index(i)]
    if not arrays:
        return 0
    pos = [k for k, i in enumerate(idx)
           if _is_array_index(i) or (isinstance(i, (int, np.integer)) and not isinstance(i, bool))]
    if pos[-1] - pos[0] + 1 == len(pos):
        return 0
    return len(np.broadcast_shapes(*[tuple(_shape(i)) for i in arrays]))


def _index_shape(shape, idx) -> tuple:
    """The shape of ``x[idx]`` for ``x`` of ``shape`` (indexing a zero-strided dummy)."""
    conc = tuple(np.zeros(_shape(i), dtype=np.intp) if isinstance(i, Tracer) else i for i in idx)
    return np.broadcast_to(np.zeros((), np.int8), tuple(shape))[conc].shape


def _getitem_rule(args, dims, *, idx):
    idx = _as_tuple(idx)
    x = to_front(args[0], dims[0])
    return getitem_p.bind(x, idx=(slice(None),) + idx), _adv_batch_pos(idx)


def _scatter(prim):
    """index_add / index_set with a static index: ``out = x; out[idx] (+)= v``."""
    bind = prim.bind

    def rule(args, dims, *, idx):
        (x, v), (dx, dv) = args, dims
        idx = _as_tuple(idx)
        if dx is None:
            x = broadcast_batch(x, batch_size(args, dims))
        else:
            x = to_front(x, dx)
        t = len(_index_shape(_shape(x)[1:], idx))
        pos = _adv_batch_pos(idx)
        if dv is not None:
            v = pad_rank(to_front(v, dv), t)
            if pos:
                v = moveaxis(v, 0, pos)
        elif pos and _ndim(v) > t - pos:
            # right-aligned, v would reach the batch axis: give it full rank and a unit batch axis
            s = tuple(_shape(v))
            full = (1,) * (t - len(s)) + s
            v = reshape_p.bind(v, shape=full[:pos] + (1,) + full[pos:])
        return bind(x, v, idx=(slice(None),) + idx), 0

    return rule


# ----------------------------------------------------------------------------- dynamic indices
class Batched:
    """A batched value found inside a primitive's parameters (e.g. an index array computed from
    the mapped inputs): ``val`` carries the batch on axis ``bdim``."""

    __slots__ = ("val", "bdim")

    def __init__(self, val, bdim):
        self.val = val
        self.bdim = bdim

    @property
    def size(self) -> int:
        return _shape(self.val)[self.bdim]


def _int_index(i) -> bool:
    if isinstance(i, bool):
        return False
    if isinstance(i, (int, np.integer)):
        return True
    if isinstance(i, Batched):
        i = i.val
    if isinstance(i, (np.ndarray, Tracer)):
        from ..numpy._base import dtype_of

        return dtype_of(i).kind in "iu"
    return False


def _dynamic_index(idx):
    """``(size, nb, new_idx)`` for an index made of integers and integer arrays only (some
    batched): ``new_idx`` has every batched array's batch axis first, padded to the broadcast
    rank ``nb`` of the per-example index; ``None`` when the index has slices, ``None``/``...``
    or masks (the loop fallback handles those)."""
    if not all(_int_index(i) for i in idx):
        return None
    shapes = []
    size = None
    for i in idx:
        if isinstance(i, Batched):
            s = tuple(_shape(i.val))
            shapes.append(s[:i.bdim] + s[i.bdim + 1:])
            size = s[i.bdim]
        else:
            shapes.append(tuple(_shape(i)) if _is_array_index(i) else ())
    nb = len(np.broadcast_shapes(*shapes))
    new = tuple(pad_rank(to_front(i.val, i.bdim), nb) if isinstance(i, Batched) else i
                for i in idx)
    return size, nb, new


def _dyn_getitem(args, dims, *, idx):
    got = _dynamic_index(_as_tuple(idx))
    if got is None:
        return None
    size, nb, new = got
    x, d = args[0], dims[0]
    if d is None:
        return getitem_p.bind(x, idx=new), 0
    ar = np.arange(size).reshape((size,) + (1,) * nb)
    return getitem_p.bind(to_front(x, d), idx=(ar,) + new), 0


def _dyn_scatter(prim):
    bind = prim.bind

    def rule(args, dims, *, idx):
        got = _dynamic_index(_as_tuple(idx))
        if got is None:
            return None
        size, nb, new = got
        (x, v), (dx, dv) = args, dims
        x = broadcast_batch(x, size) if dx is None else to_front(x, dx)
        k = len(new)
        t = nb + _ndim(x) - 1 - k
        if dv is not None:
            v = pad_rank(to_front(v, dv), t)
        ar = np.arange(size).reshape((size,) + (1,) * nb)
        return bind(x, v, idx=(ar,) + new), 0

    return rule


# ----------------------------------------------------------------------------- contractions
def _matmul_rule(args, dims):
    (a, b), (da, db) = args, dims
    ra = _ndim(a) - (da is not None)
    rb = _ndim(b) - (db is not None)
    bind = matmul_p.bind
    if db is None:
        a = to_front(a, da)
        if ra == 1:  # the examples are the rows of a matrix: (B, k) @ b
            out = bind(a, b)
            return out, 0 if rb == 1 else rb - 2
        return bind(pad_rank(a, rb), b), 0
    if da is None:
        if rb == 1:  # the examples are the columns of a matrix: a @ (k, B)
            out = bind(a, moveaxis(b, db, 1))
            return out, _ndim(out) - 1
        return bind(a, pad_rank(to_front(b, db), ra)), 0
    a = to_front(a, da)
    b = to_front(b, db)
    sa, sb = _shape(a), _shape(b)
    n = sa[0]
    if ra == 1 and rb == 1:
        out = bind(reshape_p.bind(a, shape=(n, 1, sa[1])), reshape_p.bind(b, shape=(n, sb[1], 1)))
        return reshape_p.bind(out, shape=(n,)), 0
    if ra == 1:
        a = reshape_p.bind(a, shape=(n,) + (1,) * (rb - 2) + (1, sa[1]))
        out = bind(a, b)
        so = _shape(out)
        return reshape_p.bind(out, shape=tuple(so[:-2]) + (so[-1],)), 0
    if rb == 1:
        b = reshape_p.bind(b, shape=(n,) + (1,) * (ra - 2) + (sb[1], 1))
        out = bind(a, b)
        return reshape_p.bind(out, shape=tuple(_shape(out)[:-1])), 0
    r = max(ra, rb)
    return bind(pad_rank(a, r), pad_rank(b, r)), 0


def _einsum_rule(args, dims, *, spec):
    ins, out = spec.split("->")
    terms = ins.split(",")
    free = [c for c in string.ascii_letters if c not in spec]
    if not free:
        return None  # all 52 letters in use: loop fallback
    c = free[0]
    new = [t if d is None else t[:d] + c + t[d:] for t, d in zip(terms, dims, strict=True)]
    return einsum_p.bind(*args, spec=",".join(new) + "->" + c + out), 0


# ----------------------------------------------------------------------------- linalg / fft
def _leading(prim):
    """Functions of matrices that broadcast over leading axes: batch axis first."""
    bind = prim.bind
    multi = prim.multiple_results

    def rule(args, dims, **params):
        out = bind(to_front(args[0], dims[0]), **params)
        if multi:
            return out, (0,) * len(out)
        return out, 0

    return rule


def _leading_broadcast(prim):
    """Several matrix arguments broadcasting over leading axes (``solve``)."""
    bind = prim.bind

    def rule(args, dims, **params):
        r = max(_ndim(a) - (d is not None) for a, d in zip(args, dims, strict=True))
        new = [a if d is None else pad_rank(to_front(a, d), r)
               for a, d in zip(args, dims, strict=True)]
        return bind(*new, **params), 0

    return rule


def _fft(prim):
    bind = prim.bind

    def rule(args, dims, *, axes, **params):
        (x,), (d,) = args, dims
        axes = _norm_axes(axes, _ndim(x) - 1)
        return bind(x, axes=_shift(axes, d), **params), d

    return rule


# ----------------------------------------------------------------------------- the tables
def _static(rule):
    return lambda prim: rule


def _elementwise_names() -> list[str]:
    from ..numpy import elementwise as ew

    names = list(ew.UNARY) + ["negative"] + list(ew.BINARY) + [
        "add", "subtract", "multiply", "divide"] + list(ew.NONDIFF_PRIMS)
    return names + [
        "clip", "where", "real", "imag", "conjugate",
        "convert_element_type", "convert_nondiff", "stop_gradient",
        # scipy.special (elementwise)
        "expit", "logit", "erf", "erfc", "erfinv", "entr", "gammaln", "polygamma", "xlogy",
        "xlog1py",
    ]


#: primitive name -> factory ``prim -> batching rule``
RULES: dict = {name: _elementwise for name in _elementwise_names()}
RULES.update({
    "sum": _reduce, "max": _reduce, "min": _reduce, "logsumexp": _reduce, "softmax": _along_axes,
    "all": _reduce_raw, "any": _reduce_raw,
    "count_nonzero": lambda p: _reduce_raw(p, has_keepdims=False),
    "cumsum": _along_axis, "sort": _along_axis,
    "argsort": _argsort_rule, "argmax": _arg_extremum_rule, "argmin": _arg_extremum_rule,
    "reshape": _static(_reshape_rule), "transpose": _static(_transpose_rule),
    "broadcast_to": _static(_broadcast_rule), "concatenate": _static(_concatenate_rule),
    "pad": _pad_rule, "getitem": _static(_getitem_rule),
    "index_add": _scatter, "index_set": _scatter,
    "matmul": _static(_matmul_rule), "einsum": _static(_einsum_rule),
    "linalg_solve": _leading_broadcast,
    **{f"linalg_{n}": _leading
       for n in ("inv", "det", "slogdet", "cholesky", "eigh", "svd", "qr", "pinv")},
    "fft_fftn": _fft, "fft_rfftn": _fft, "fft_irfftn": _fft,
})

#: primitive name -> factory of the rule used when a parameter holds batched values (a dynamic
#: index); the rule returns ``None`` to ask for the loop fallback
DYNAMIC: dict = {
    "getitem": _static(_dyn_getitem),
    "index_add": _dyn_scatter,
    "index_set": _dyn_scatter,
}

#: registered primitives without a batching rule: they use the loop fallback
LOOP_FALLBACK: set = set()

_dynamic_rules: dict = {}


def rule_for(prim):
    """The batching rule of ``prim`` (attached on first use), or ``None`` for the loop."""
    rule = prim.batch
    if rule is not None:
        return rule
    factory = RULES.get(prim.name)
    if factory is None or registry.get(prim.name) is not prim:
        if registry.get(prim.name) is prim:
            LOOP_FALLBACK.add(prim.name)
        return None
    prim.batch = rule = factory(prim)
    return rule


def dynamic_rule_for(prim):
    """The rule for ``prim`` with batched values inside its parameters, or ``None``."""
    rule = _dynamic_rules.get(prim)
    if rule is None:
        factory = DYNAMIC.get(prim.name)
        if factory is None or registry.get(prim.name) is not prim:
            return None
        rule = _dynamic_rules[prim] = factory(prim)
    return rule


def attach_rules() -> set:
    """Attach the rules of :data:`RULES` to every registered primitive that has none; returns
    (and records in :data:`LOOP_FALLBACK`) the registered primitives left to the loop."""
    for prim in list(registry.values()):
        rule_for(prim)
    LOOP_FALLBACK.intersection_update(n for n, p in registry.items() if p.batch is None)
    return set(LOOP_FALLBACK)


attach_rules()
