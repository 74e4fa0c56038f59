"""Reverse mode: a tape of primitive applications, replayed backwards (book §8.1.2, Alg. 8.2/8.5).

The forward pass records, for every primitive applied to a :class:`ReverseTracer`, the tuple
``(prim, args, params, parents, ans)`` on the trace's tape; the position on the tape is a
topological order. The backward pass walks the tape from the end, initialises every cotangent to
zero (``None``) and *accumulates* contributions into the parents (the ``dup`` rule of §8.3.2:
fan-out sums cotangents, it never copies data). Rules are evaluated on the stored arguments with
differentiable primitives, so a backward pass run inside another transformation is itself
recorded (reverse-over-reverse, forward-over-reverse).
"""

from __future__ import annotations

import numpy as np

from .primitive import Trace, Tracer

__all__ = ["ReverseTrace", "ReverseTracer", "backward"]


class ReverseTracer(Tracer):
    """A value on a reverse-mode tape: ``idx`` is its node, ``oi`` its output index (-1: single)."""

    __slots__ = ("value", "idx", "oi")

    def __init__(self, trace, value, idx, oi=-1):
        self._trace = trace
        self.value = value
        self.idx = idx
        self.oi = oi


class ReverseTrace(Trace):
    __slots__ = ("tape",)

    def __init__(self):
        super().__init__()
        self.tape = []

    def new_input(self, value):
        tape = self.tape
        idx = len(tape)
        tape.append(None)  # a leaf: no primitive
        return ReverseTracer(self, value, idx)

    def process(self, prim, args, params):
        vals = list(args)
        parents = []
        for i, a in enumerate(args):
            if type(a) is ReverseTracer and a._trace is self:
                vals[i] = a.value
                parents.append((i, a.idx, a.oi))
        ans = prim.bind(*vals, **params)
        if prim.nondiff:
            return ans
        tape = self.tape
        idx = len(tape)
        tape.append((prim, vals, params, parents, ans))
        if prim.multiple_results:
            return tuple(ReverseTracer(self, a, idx, k) for k, a in enumerate(ans))
        return ReverseTracer(self, ans, idx)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


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
            v = vals[i]
            args[i] = UndefinedPrimal(np.shape(_primal(v)), np.result_type(_primal(v)))
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


def backward(tape, seeds, wanted):
    """Propagate cotangents backwards along ``tape``.

    ``seeds``: list of ``(tracer, cotangent)`` for the outputs; ``wanted``: tape indices (leaves)
    whose cotangents are returned (``None`` where nothing reached them).
    """
    n = len(tape)
    cts = [None] * n
    for t, ct in seeds:
        if t.oi < 0:
            cts[t.idx] = _add(cts[t.idx], ct)
        else:
            node = tape[t.idx]
            lst = cts[t.idx] or [None] * len(node[4])
            lst[t.oi] = _add(lst[t.oi], ct)
            cts[t.idx] = lst
    for i in range(n - 1, -1, -1):
        g = cts[i]
        if g is None:
            continue
        node = tape[i]
        if node is None:
            continue
        cts[i] = None
        prim, vals, params, parents, ans = node
        if prim.multiple_results:
            g = tuple(_zeros_like(a) if c is None else c for c, a in zip(g, ans, strict=True))
        vjps = prim.vjps
        if vjps is None:
            contribs = node_vjp(prim, g, ans, vals, params, [p[0] for p in parents])
        else:
            contribs = None
        for k, (argnum, pidx, poi) in enumerate(parents):
            if contribs is None:
                c = vjps[argnum](g, ans, *vals, **params)
            else:
                c = contribs[k]
            if c is None:
                continue
            if poi < 0:
                old = cts[pidx]
                cts[pidx] = c if old is None else old + c
            else:
                lst = cts[pidx]
                if lst is None:
                    lst = cts[pidx] = [None] * len(tape[pidx][4])
                lst[poi] = _add(lst[poi], c)
    return [cts[i] for i in wanted]


def as_primal_array(x):
    """Inputs to transformations become arrays (tracers of outer transformations stay)."""
    if isinstance(x, Tracer):
        return x
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)
