"""Linearization and linear transposition (book §8.4.4).

:func:`linearize` runs forward mode with *traced* tangents: the primal computation happens on
concrete arrays while every tangent operation is recorded into an IR program. Because JVP rules
only ever apply linear primitives to tangents, the recorded program is linear — this is partial
evaluation for free — and its constants are the linearization point's residuals.

:func:`linear_transpose` traces a linear function and evaluates its IR backwards with the
transpose rules of the linear primitives.

Together they give the two bridges of §8.4.4:

- :func:`vjp_from_jvp`: reverse mode for a primitive that registers only a JVP rule
  (``vjp = transpose(linearize(jvp))``, AD-36);
- :func:`jvp_from_vjp`: forward mode for a primitive that registers only VJP rules
  ("the VJP of a VJP is the JVP", AD-35).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .forward import JVPTrace, JVPTracer
from .ir import IRTrace, IRTracer, Program
from .pytree import tree_flatten

__all__ = ["linearize", "linear_transpose", "vjp_from_jvp", "jvp_from_vjp"]


def _zeros(x):
    from ..numpy import zeros_like

    return zeros_like(x)


def _tangent_zeros(x):
    from ..numpy import tangent_zeros

    return tangent_zeros(x)


def _program_outputs(trace, outs):
    return [o.var if (type(o) is IRTracer and o._trace is trace) else o for o in outs]


def vjp_from_jvp(prim, vals, params, ans, g, argnums):
    """Cotangents of ``prim``'s arguments ``argnums`` by transposing its linearized JVP rule."""
    trace = IRTrace()
    tangents = [None] * len(vals)
    with trace:
        tins = []
        for i in argnums:
            tins.append(trace.new_input(_tangent_zeros(vals[i])))
            tangents[i] = tins[-1]
        tout = prim.jvp(vals, tangents, ans, **params)
    touts = list(tout) if prim.multiple_results else [tout]
    prog = Program([t.var for t in tins], trace.eqns, _program_outputs(trace, touts))
    gs = list(g) if prim.multiple_results else [g]
    return prog.transpose(gs, _zeros)


def jvp_from_vjp(prim, primals, tangents, ans, params):
    """Output tangent of ``prim`` by transposing its VJP rules (the VJP of a VJP is the JVP)."""
    from .reverse import node_vjp

    active = [i for i, t in enumerate(tangents) if t is not None]
    trace = IRTrace()
    with trace:
        if prim.multiple_results:
            gins = [trace.new_input(_tangent_zeros(a)) for a in ans]
            g = tuple(gins)
        else:
            gins = [trace.new_input(_tangent_zeros(ans))]
            g = gins[0]
        outs = node_vjp(prim, g, ans, primals, params, active)
    prog = Program([t.var for t in gins], trace.eqns, _program_outputs(trace, outs))
    cts = prog.transpose([tangents[i] for i in active], _zeros)
    if prim.multiple_results:
        return tuple(cts)
    return cts[0]


def linearize(fn: Callable, *primals: Any) -> tuple[Any, Callable]:
    """Evaluate ``fn`` at ``primals`` and return its linearization ``v -> ∂fn(primals)[v]``.

    Book §8.1.2 / §8.4.4: the linearization points are cached, so the returned ``jvp_fn`` can be
    applied to many tangents without re-running ``fn`` (AD-18).

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> y, jvp_fn = diffprog.linearize(dnp.sin, np.array(0.5))
        >>> float(jvp_fn(np.array(2.0)))  # 2 cos(0.5)
        1.7551651237807455
    """
    from .api import _check_float_leaves, _prepare_primals

    flat, in_def = _prepare_primals("linearize", primals)
    _check_float_leaves("linearize", flat)
    itrace = IRTrace()
    jtrace = JVPTrace()
    with itrace:
        tins = [itrace.new_input(_tangent_zeros(p)) for p in flat]
        with jtrace:
            ins = [JVPTracer(jtrace, p, t) for p, t in zip(flat, tins, strict=True)]
            out = fn(*in_def.unflatten(ins))
    flat_out, out_def = tree_flatten(out)
    primal_out = []
    tangent_out = []
    for o in flat_out:
        if type(o) is JVPTracer and o._trace is jtrace:
            primal_out.append(o.value)
            tangent_out.append(o.tangent)
        else:
            primal_out.append(o)
            tangent_out.append(None)
    outs = []
    for p, t in zip(primal_out, tangent_out, strict=True):
        outs.append(_zeros(p) if t is None else t)
    prog = Program([t.var for t in tins], itrace.eqns, _program_outputs(itrace, outs))

    def jvp_fn(*tangents):
        from .api import _check_tangents

        flat_t = _check_tangents("linearize (jvp_fn)", flat, in_def, tangents)
        return out_def.unflatten(prog(*flat_t))

    return out_def.unflatten(primal_out), jvp_fn


def linear_transpose(fn: Callable, *primals: Any) -> Callable:
    """Transpose of the linear function ``fn``: returns ``ct -> tuple of input cotangents``.

    Book §8.4.4: each linear primitive registers a transpose rule (matmul ↔ matmul by the
    transpose, sum ↔ broadcast, slice ↔ pad, reshape ↔ reshape, add ↔ fan-out, ...). The
    ``primals`` only fix shapes and dtypes; ``⟨fn(v), u⟩ = ⟨v, fn_t(u)⟩``.

    Example::

        >>> import numpy as np, diffprog
        >>> A = np.array([[1., 2.], [3., 4.]])
        >>> f_t = diffprog.linear_transpose(lambda x: A @ x, np.zeros(2))
        >>> f_t(np.array([1., 0.]))[0]
        array([1., 2.])
    """
    from .api import _check_tangents, _prepare_primals

    flat, in_def = _prepare_primals("linear_transpose", primals)
    out_def_box = []

    def flat_fn(*ins):
        leaves, odef = tree_flatten(fn(*in_def.unflatten(ins)))
        out_def_box.append(odef)
        return leaves

    example = [_tangent_zeros(p) for p in flat]
    prog = Program.trace(flat_fn, example)
    out_def = out_def_box[0]
    out_examples = [o.value if hasattr(o, "value") else o for o in prog.outputs]

    def fn_transpose(*cts):
        ct = cts[0] if len(cts) == 1 else cts
        flat_ct = _check_tangents(
            "linear_transpose (transposed function)", out_examples, out_def, (ct,), unwrap=True
        )
        res = prog.transpose(flat_ct, _zeros)
        res = [_zeros(e) if r is None else r for r, e in zip(res, example, strict=True)]
        return tuple(in_def.unflatten(res))

    return fn_transpose
