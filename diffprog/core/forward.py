"""Forward mode: Jacobian-vector products by operator overloading (book §8.1.1, Alg. 8.1/8.4).

A :class:`JVPTracer` carries a primal value and its tangent; every primitive applied to it
computes the primal output and the output tangent in one interleaved step, so memory stays at
about twice that of the function (the tangent of step k-1 is freed once step k is done).
``None`` is a symbolic zero tangent.
"""

from __future__ import annotations

from . import primitive
from .primitive import Trace, Tracer

__all__ = ["JVPTrace", "JVPTracer"]


class JVPTracer(Tracer):
    __slots__ = ("value", "tangent")

    def __init__(self, trace, value, tangent):
        self._trace = trace
        self.value = value
        self.tangent = tangent


class JVPTrace(Trace):
    __slots__ = ()

    def process(self, prim, args, params):
        primals = []
        tangents = []
        any_tangent = False
        for a in args:
            if type(a) is JVPTracer and a._trace is self:
                primals.append(a.value)
                tangents.append(a.tangent)
                any_tangent = True
            else:
                primals.append(a)
                tangents.append(None)
        ans = prim.bind(*primals, **params)
        if prim.nondiff or not any_tangent:
            return ans
        rule = prim.jvp
        if primitive.profiler is not None:
            primitive.profiler.jvp_calls[prim.name] += 1
        if rule is None:
            from .linearize import jvp_from_vjp

            tout = jvp_from_vjp(prim, primals, tangents, ans, params)
        else:
            tout = rule(primals, tangents, ans, **params)
        if prim.multiple_results:
            return tuple(
                a if t is None else JVPTracer(self, a, t) for a, t in zip(ans, tout, strict=True)
            )
        if tout is None:
            return ans
        return JVPTracer(self, ans, tout)
