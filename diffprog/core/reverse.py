"""Reverse mode: a tape of primitive applications, replayed backwards (book §8.1.2, Alg. 8.2/8.5).

Every primitive applied to a :class:`ReverseTracer` creates a new tracer that *is* the tape
node: it stores the primitive, its arguments (the residuals), its parameters, its parent
tracers and, during the backward pass, its cotangent. The tape lists the nodes in creation
order, which is a topological order. The backward pass walks the tape from the end; every
cotangent starts at zero (``None``) and contributions are *accumulated* into the parents (the
``dup`` rule of §8.3.2: fan-out sums cotangents, it never copies data). Rules are evaluated on
the stored arguments with differentiable primitives, so a backward pass run inside another
transformation is itself recorded (reverse-over-reverse, forward-over-reverse).

A primitive with several outputs gets one node holding the tuple of outputs, followed by one
projection node per output.
"""

from __future__ import annotations

import threading

import numpy as np

from . import primitive
from .primitive import Trace, Tracer

__all__ = ["ReverseTrace", "ReverseTracer", "backward", "node_vjp"]


class ReverseTracer(Tracer):
    """A value on a reverse-mode tape, and the tape node that produced it."""

    __slots__ = ("value", "prim", "args", "params", "parents", "ct")

    def __init__(self, trace, value):
        self._trace = trace
        self.value = value
        self.prim = None
        self.ct = None


class _Project:
    """Marks a projection node ``out[k]`` of a multiple-result node."""

    __slots__ = ("k",)
    name = "project"
    vjps = None

    def __init__(self, k):
        self.k = k


_new = object.__new__


_EMPTY: dict = {}
#: operand types taken as constants by the fast paths
_CONST_TYPES = frozenset({float, int, np.ndarray, np.float64, np.float32, np.int64, np.int32})


def make_fast_binary(prim):
    """A specialised ``prim.bind(s, o)`` for a reverse-mode tracer ``s`` (installed as its
    operator methods): the common first-order case skips the generic dispatch."""
    impl = prim.impl
    generic = prim.bind
    nd = np.ndarray

    def left(s, o):
        tr = s._trace
        to = type(o)
        if to is ReverseTracer:
            if o._trace is not tr:
                return generic(s, o)
            ov = o.value
            if type(ov) is not nd and isinstance(ov, Tracer):
                return generic(s, o)
            po = o
        elif to in _CONST_TYPES:
            ov = o
            po = None
        else:
            return generic(s, o)
        sv = s.value
        if (type(sv) is not nd and isinstance(sv, Tracer)) or primitive.profiler is not None:
            return generic(s, o)
        t = _new(ReverseTracer)
        t._trace = tr
        t.value = impl(sv, ov)
        t.prim = prim
        t.args = (sv, ov)
        t.params = _EMPTY
        t.parents = (s, po)
        t.ct = None
        tr.tape.append(t)
        return t

    def right(s, o):
        to = type(o)
        if to in _CONST_TYPES:
            sv = s.value
            if (type(sv) is not nd and isinstance(sv, Tracer)) or primitive.profiler is not None:
                return generic(o, s)
            tr = s._trace
            t = _new(ReverseTracer)
            t._trace = tr
            t.value = impl(o, sv)
            t.prim = prim
            t.args = (o, sv)
            t.params = _EMPTY
            t.parents = (None, s)
            t.ct = None
            tr.tape.append(t)
            return t
        return generic(o, s)

    return left, right


def make_fast_unary(prim):
    """A specialised ``prim.bind(x)`` (used by the unary functions of ``diffprog.numpy``)."""
    impl = prim.impl
    generic = prim.bind
    nd = np.ndarray

    def call(x):
        if type(x) is ReverseTracer:
            sv = x.value
            if (type(sv) is nd or not isinstance(sv, Tracer)) and primitive.profiler is None:
                tr = x._trace
                t = _new(ReverseTracer)
                t._trace = tr
                t.value = impl(sv)
                t.prim = prim
                t.args = (sv,)
                t.params = _EMPTY
                t.parents = (x,)
                t.ct = None
                tr.tape.append(t)
                return t
            return generic(x)
        if type(x) is nd and primitive.profiler is None:
            return impl(x)
        return generic(x)

    return call


class _ClosedTape:
    """Stands in for the tape once the transformation has ended."""

    __slots__ = ()

    def append(self, _node):
        raise RuntimeError(
            "diffprog: a traced value escaped the transformation that created it (a leaked "
            "tracer) and was used after that transformation ended"
        )


_CLOSED = _ClosedTape()


class Tape:
    """The recorded nodes of a finished reverse-mode trace, with a lock for the backward pass.

    The trace drops its reference to the tape when it finishes, so that tracers (which
    reference their trace) and the tape (which references the tracers) form no reference cycle:
    everything is freed by reference counting as soon as the tape is dropped.
    """

    __slots__ = ("nodes", "lock")

    def __init__(self, nodes):
        self.nodes = nodes
        self.lock = threading.Lock()


class ReverseTrace(Trace):
    __slots__ = ("tape",)

    def __init__(self):
        super().__init__()
        self.tape = []

    def finish(self) -> Tape:
        """End recording; return the tape for :func:`backward`."""
        nodes = self.tape
        self.tape = _CLOSED
        return Tape(nodes)

    def new_input(self, value):
        return ReverseTracer(self, value)

    def process(self, prim, args, params):
        if len(args) == 1:
            a = args[0]
            v = a.value
            vals = (v,)
            parents = (a,)
            nested = isinstance(v, Tracer)
        else:
            vals = list(args)
            parents = [None] * len(args)
            nested = False
            i = 0
            for a in args:
                if type(a) is ReverseTracer and a._trace is self:
                    v = vals[i] = a.value
                    parents[i] = a
                    if isinstance(v, Tracer):
                        nested = True
                elif isinstance(a, Tracer):
                    nested = True
                i += 1
        if nested or prim.dynamic_params or primitive.profiler is not None:
            ans = prim.bind(*vals, **params)
        else:
            ans = prim.impl(*vals, **params)
        if prim.nondiff:
            return ans
        t = _new(ReverseTracer)
        t._trace = self
        t.value = ans
        t.prim = prim
        t.args = vals
        t.params = params
        t.parents = parents
        t.ct = None
        self.tape.append(t)
        if prim.multiple_results:
            outs = []
            for k, a in enumerate(ans):
                o = _new(ReverseTracer)
                o._trace = self
                o.value = a
                o.prim = _Project(k)
                o.parents = t
                o.ct = None
                self.tape.append(o)
                outs.append(o)
            return tuple(outs)
        return t


def _zeros_like(x):
    from ..numpy import zeros_like

    return zeros_like(x)


def node_vjp(prim, g, ans, vals, params, argnums):
    """Cotangents of the arguments ``argnums`` of one primitive application."""
    if prim.vjps is not None:
        return [prim.vjps[i](g, ans, *vals, **params) for i in argnums]
    if prim.vjp_joint is not None:
        return prim.vjp_joint(g, ans, argnums, *vals, **params)
    if prim.transpose is not None:
        from .primitive import UndefinedPrimal

        out = []
        for i in argnums:
            args = list(vals)
            v = _primal(vals[i])
            args[i] = UndefinedPrimal(np.shape(v), np.result_type(v))
            out.append(prim.transpose(g, *args, **params)[i])
        return out
    if prim.jvp is None:
        raise TypeError(f"primitive '{prim.name}' has no differentiation rule")
    from .linearize import vjp_from_jvp

    return vjp_from_jvp(prim, vals, params, ans, g, argnums)


def _primal(v):
    while isinstance(v, Tracer):
        v = v.value
    return v


def _general_step(node, g, on_edge):
    prim = node.prim
    parents = node.parents
    if prim.multiple_results and prim.vjp_joint is None:
        g = tuple(_zeros_like(a) if c is None else c for c, a in zip(g, node.value, strict=True))
    elif prim.multiple_results:
        g = tuple(g)
    argnums = [j for j, p in enumerate(parents) if p is not None]
    cts = node_vjp(prim, g, node.value, node.args, node.params, argnums)
    for j, c in zip(argnums, cts, strict=True):
        if c is None:
            continue
        p = parents[j]
        if on_edge is not None:
            on_edge(p, node, c)
        old = p.ct
        p.ct = c if old is None else old + c


def backward(tape, seeds, leaves, on_edge=None, consume=False):
    """Propagate cotangents backwards along a finished :class:`Tape` (Alg. 8.5).

    ``seeds``: ``(tracer, cotangent)`` pairs for the outputs; returns the accumulated cotangents
    of ``leaves`` (``None`` where nothing reached them). ``on_edge(parent, node, contribution)``,
    if given, is called for every edge contribution ``r_{parent -> node}``. With ``consume``
    (a tape used once, as by ``grad``) each node releases its residuals as soon as its VJP has
    run, so memory falls during the backward pass (Fig. 8.4) and is reused by later steps.
    """
    with tape.lock:
        try:
            for t, ct in seeds:
                t.ct = ct if t.ct is None else t.ct + ct
            profiler = primitive.profiler
            for node in reversed(tape.nodes):
                g = node.ct
                if g is None:
                    continue
                node.ct = None
                prim = node.prim
                if profiler is not None:
                    profiler.vjp_calls[prim.name] += 1
                vjps = prim.vjps
                if vjps is not None and on_edge is None:
                    parents = node.parents
                    params = node.params
                    if len(parents) == 1:
                        p = parents[0]
                        if params:
                            c = vjps[0](g, node.value, *node.args, **params)
                        else:
                            c = vjps[0](g, node.value, *node.args)
                        if c is not None:
                            old = p.ct
                            p.ct = c if old is None else old + c
                    else:
                        j = 0
                        for p in parents:
                            if p is not None:
                                if params:
                                    c = vjps[j](g, node.value, *node.args, **params)
                                else:
                                    c = vjps[j](g, node.value, *node.args)
                                if c is not None:
                                    old = p.ct
                                    p.ct = c if old is None else old + c
                            j += 1
                elif type(prim) is _Project:
                    parent = node.parents
                    lst = parent.ct
                    if lst is None:
                        lst = parent.ct = [None] * len(parent.value)
                    k = prim.k
                    lst[k] = g if lst[k] is None else lst[k] + g
                    continue
                else:
                    _general_step(node, g, on_edge)
                if consume:
                    node.args = node.value = None
            out = []
            for leaf in leaves:
                out.append(leaf.ct)
                leaf.ct = None
            return out
        except BaseException:
            for node in tape.nodes:
                node.ct = None
            for leaf in leaves:
                leaf.ct = None
            raise


def as_primal_array(x):
    """Inputs to transformations become arrays (tracers of outer transformations stay)."""
    if isinstance(x, Tracer):
        return x
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)
