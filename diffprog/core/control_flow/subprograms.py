"""Sub-programs for the control-flow primitives: tracing branch and loop bodies, their
derivative sub-programs, transposition and batching helpers (book §5.6–5.10, §8.4).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial as _partial

import numpy as np

from .. import primitive as _primitive_mod
from ..forward import JVPTrace, JVPTracer
from ..ir import IRTrace, IRTracer, Program, Var
from ..primitive import Tracer, UndefinedPrimal, thread_state
from ..reverse import ReverseTrace, ReverseTracer, backward


class MaxStepsExceeded(RuntimeError):
    """A ``while_loop`` needed more than ``max_steps`` iterations."""


def _walk(x):
    """The concrete example value under any number of tracers."""
    while isinstance(x, Tracer):
        x = x.value
    return x


def _aval(x) -> tuple[tuple, np.dtype]:
    v = _walk(x)
    if isinstance(v, np.ndarray):
        return v.shape, v.dtype
    return np.shape(v), np.result_type(v)


def _inexact(x) -> bool:
    return _aval(x)[1].kind in "fc"


def _is_weak(x) -> bool:
    """A Python scalar (weakly typed: it takes the dtype of its counterpart)."""
    return type(x) in (bool, int, float, complex)


def _as_operand(fname: str, x, i: int, what: str = "operand"):
    """Non-traced leaves become arrays; objects that are not arrays are refused."""
    if isinstance(x, Tracer):
        return x
    a = np.asarray(x)
    if a.dtype == object:
        raise TypeError(
            f"{fname}: {what} leaf {i} of type {type(x).__name__} is not an array or a number"
        )
    return a


def _example(x) -> np.ndarray:
    return np.asarray(_walk(x))


def _zeros_of(x) -> np.ndarray:
    s, d = _aval(x)
    return np.zeros(s, d)


def _tangent_zeros_of(x) -> np.ndarray:
    s, d = _aval(x)
    return np.zeros(s, d if d.kind in "fc" else np.float64)


def _is_concrete(x) -> bool:
    """True if ``x`` has one fixed value for this evaluation (no abstract tracer inside)."""
    while isinstance(x, Tracer):
        if not getattr(x, "concrete", True):
            return False
        x = x.value
    return True


_MISSING = object()


def _under_reverse(values) -> bool:
    """Whether a reverse-mode tracer (at any nesting depth) is among ``values``."""
    for x in values:
        while isinstance(x, Tracer):
            if isinstance(x, ReverseTracer):
                return True
            inner = getattr(x, "val", _MISSING)  # a batch tracer holds its batch in ``val``
            x = getattr(x, "value", None) if inner is _MISSING else inner
    return False


def _active(leaves) -> bool:
    """Whether the primitive must be bound (a transformation is active or an operand is traced)."""
    if thread_state.stack:
        return True
    for x in leaves:
        if isinstance(x, Tracer):
            return True
    return False


def _check_callable(fname: str, name: str, f) -> None:
    if not callable(f):
        raise TypeError(f"{fname}: argument '{name}' must be a function, got {type(f).__name__}")


def _cast_like(c, x):
    """Cast a cotangent/tangent ``c`` to the dtype of ``x`` when they differ."""
    dt = _aval(x)[1]
    if _aval(c)[1] == dt:
        return c
    if isinstance(c, Tracer):
        from ...numpy import astype

        return astype(c, dt)
    return np.asarray(c, dtype=dt)


def _select(pred, x, y):
    """``where(pred, x, y)`` with a possibly traced predicate (a constant of the program)."""
    from ...numpy.structural import select_p

    return select_p.bind(pred, x, y)


class SubProgram(Program):
    """A branch or loop body: a :class:`Program` with a readable repr and a compiled runner."""

    __slots__ = ("_compiled", "_interp", "_uses")

    def __init__(self, invars, eqns, outputs):
        super().__init__(invars, eqns, outputs)
        self._compiled = None
        self._interp = None
        self._uses = 0

    def runner(self, calls: int = 1) -> Callable:
        """A function evaluating the program on concrete arrays, for about ``calls`` calls.

        Programs evaluated often are compiled to straight-line code (as by ``jit``); a fresh
        program evaluated a few times is interpreted, which is cheaper than compiling it. With
        a profiler active, every primitive goes through ``bind`` so that it is counted.
        """
        if _primitive_mod.profiler is not None:
            return self
        f = self._compiled
        if f is None:
            self._uses += calls
            if self._uses * max(len(self.eqns), 1) < 2048:
                f = self._interp
                if f is None:
                    f = self._interp = _interpreter(self)
                return f
            f = _compile(self) or self._interp or _interpreter(self)
            self._compiled = f
            self._interp = None
        return f

    def run(self, args):
        """Evaluate once on concrete arrays."""
        return self.runner()(*args)

    def out_avals(self) -> list:
        return [_aval(o.value) if type(o) is Var else _aval(o) for o in self.outputs]

    def __repr__(self):
        return _format_program(self, 0)


def _interpreter(prog):
    """A light evaluator of ``prog`` on arrays: implementations called directly, no ``bind``."""
    slot = {v: i for i, v in enumerate(prog.invars)}
    code = []
    for eq in prog.eqns:
        args = tuple((True, slot[a]) if type(a) is Var else (False, a) for a in eq.inputs)
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        for o in outs:
            slot[o] = len(slot)
        dyn = eq.params if eq.dynamic else None
        fn = eq.prim.impl
        if eq.params and not eq.dynamic:
            fn = _partial(fn, **eq.params)
        code.append((fn, args, tuple(slot[o] for o in outs), type(eq.outvars) is tuple, dyn))
    outs = tuple((True, slot[o]) if type(o) is Var else (False, o) for o in prog.outputs)
    n = len(slot)

    def run(*ins):
        env = list(ins) + [None] * (n - len(ins))
        for fn, args, out, multi, dyn in code:
            vals = [env[a] if v else a for v, a in args]
            if dyn is None:
                r = fn(*vals)
            else:
                r = fn(*vals, **{k: _subst_env(p, env, slot) for k, p in dyn.items()})
            if multi:
                for i, x in zip(out, r, strict=True):
                    env[i] = x
            else:
                env[out[0]] = r
        return [env[a] if v else a for v, a in outs]

    return run


def _subst_env(p, env, slot):
    if type(p) is Var:
        return env[slot[p]]
    if type(p) is tuple:
        return tuple(_subst_env(x, env, slot) for x in p)
    return p


def _compile(prog):
    """Straight-line code for ``prog`` (``jit``'s code generator), or None if unavailable."""
    try:
        from ..jit import compile_program
    except ImportError:  # pragma: no cover - jit not available
        return None
    try:
        return compile_program(prog)
    except Exception:  # pragma: no cover - fall back to the interpreter
        return None


def _format_program(prog, depth: int) -> str:
    pad = "  " * (depth + 1)

    def atom(a):
        if type(a) is Var:
            return repr(a)
        s, d = _aval(a)
        return f"const{list(s)}:{d}"

    lines = [f"{{ lambda {' '.join(repr(v) for v in prog.invars)} ."]
    for eq in prog.eqns:
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        subs = {k: v for k, v in eq.params.items() if isinstance(v, Program)
                or (isinstance(v, tuple) and v and all(isinstance(p, Program) for p in v))}
        simple = {k: v for k, v in eq.params.items() if k not in subs}
        ps = ", ".join(f"{k}={v!r}" for k, v in simple.items())
        lines.append(f"{pad}{' '.join(repr(o) for o in outs)} = {eq.prim.name}"
                     f"{'[' + ps + ']' if ps else ''}({', '.join(atom(a) for a in eq.inputs)})")
        for k, v in subs.items():
            for j, p in enumerate(v if isinstance(v, tuple) else (v,)):
                label = f"{k}[{j}]" if isinstance(v, tuple) else k
                lines.append(f"{pad}  {label} = {_format_program(p, depth + 2)}")
    lines.append(f"{pad}in ({', '.join(atom(o) for o in prog.outputs)}) }}")
    return "\n".join(lines)


class _BodyTracer(IRTracer):
    """A traced value inside a branch or loop body: abstract, its value steers nothing."""

    __slots__ = ()
    concrete = False

    def _refuse(self, what):
        raise TypeError(
            f"{self._trace.context}: {what} of a traced value inside the function: the function "
            "is traced once and replayed on other values (other iterations, branches or "
            "derivatives), so its Python control flow must not depend on them. Use "
            "diffprog.cond / diffprog.switch / diffprog.while_loop or diffprog.numpy.where "
            "(book §5.6-5.10)"
        )

    def __bool__(self):
        self._refuse("bool() (a Python `if` or `while`?)")

    def __float__(self):
        self._refuse("float()")

    def __int__(self):
        self._refuse("int()")

    def __index__(self):
        self._refuse("use as a Python index")

    def item(self):
        self._refuse(".item()")

    def tolist(self):
        self._refuse(".tolist()")

    def __repr__(self):
        s, d = _aval(self.value)
        return f"BodyTracer(shape={s}, dtype={d})"


def _has_tracer(v) -> bool:
    if isinstance(v, Tracer):
        return True
    if type(v) is tuple:
        return any(_has_tracer(x) for x in v)
    return False


def _split_param(v, trace, own: bool):
    """Own tracers in a parameter -> their Var (``own``) or example value; foreign tracers ->
    themselves (they are lifted later) or their concrete example value."""
    if isinstance(v, Tracer):
        if v._trace is trace:
            return v.var if own else v.value
        return v if own else _walk(v)
    if type(v) is tuple:
        return tuple(_split_param(x, trace, own) for x in v)
    return v


class _BodyTrace(IRTrace):
    """Records a branch or body into equations; example values are always concrete arrays.

    A value of an enclosing transformation (a foreign tracer) is recorded as a constant input
    and later lifted to an explicit input of the sub-program; its concrete value is used for the
    example computation, so nothing is recorded on the enclosing traces while tracing.
    """

    __slots__ = ("context",)
    tracer_cls = _BodyTracer

    def __init__(self, context: str):
        super().__init__()
        self.context = context

    def example_of(self, a):
        return _walk(a) if isinstance(a, Tracer) else a

    def split_params(self, params):
        for v in params.values():
            if _has_tracer(v):
                return ({k: _split_param(v, self, True) for k, v in params.items()},
                        {k: _split_param(v, self, False) for k, v in params.items()}, True)
        return params, params, False


def _lift_param(v, lift):
    if isinstance(v, Tracer):
        return lift(v)
    if type(v) is tuple:
        return tuple(_lift_param(x, lift) for x in v)
    return v


def _trace_flat(fn: Callable, examples: list, context: str):
    """Trace ``fn(*leaves) -> list of leaves`` into a :class:`SubProgram`.

    Returns ``(program, consts, weak)``: the program's inputs are ``consts`` (the values of
    enclosing transformations it closes over, lifted to explicit inputs) followed by the
    ``examples``' inputs; ``weak[k]`` tells whether output ``k`` is a Python scalar constant.
    """
    trace = _BodyTrace(context)
    prog = Program.trace(fn, examples, trace)
    consts: list = []
    cvars: list = []
    seen: dict = {}

    def lift(t):
        v = seen.get(id(t))
        if v is None:
            v = trace.new_var(_example(t))
            seen[id(t)] = v
            consts.append(t)
            cvars.append(v)
        return v

    for eq in prog.eqns:
        if any(isinstance(a, Tracer) for a in eq.inputs):
            eq.inputs = [lift(a) if isinstance(a, Tracer) else a for a in eq.inputs]
        if eq.dynamic and any(_has_tracer(v) for v in eq.params.values()):
            eq.params = {k: _lift_param(v, lift) for k, v in eq.params.items()}
    outputs = []
    weak = []
    for o in prog.outputs:
        weak.append(_is_weak(o))
        if isinstance(o, Tracer):
            outputs.append(lift(o))
        elif type(o) is Var:
            outputs.append(o)
        else:
            a = np.asarray(o)
            if a.dtype == object:
                raise TypeError(
                    f"{context}: the function returned a leaf of type {type(o).__name__}, which "
                    "is not an array or a number"
                )
            outputs.append(a)
    return SubProgram(cvars + list(prog.invars), prog.eqns, outputs), consts, weak


def _permute(prog, in_order, out_order):
    return SubProgram([prog.invars[i] for i in in_order], prog.eqns,
                      [prog.outputs[j] for j in out_order])


_dummy_ids = itertools.count(-1, -1)


def _with_extra_inputs(prog, examples):
    """``prog`` with unused inputs (of the given example values) appended."""
    extra = [Var(next(_dummy_ids), _example(e)) for e in examples]
    return SubProgram(list(prog.invars) + extra, prog.eqns, prog.outputs)


def _out_example(o):
    return _example(o.value) if type(o) is Var else _example(o)


def _jvp_program(prog, in_nz, out_inst=None, primal_outs=True, context="jvp"):
    """The JVP of ``prog`` as a program.

    Inputs: ``prog``'s inputs, then one tangent for each input with ``in_nz``. Outputs:
    ``prog``'s outputs (if ``primal_outs``), then one tangent per inexact output that has a
    nonzero tangent or is forced by ``out_inst`` (zeros are materialized). Returns
    ``(program, out_mask)``.
    """
    examples = [_example(v.value) for v in prog.invars]
    in_nz = [bool(z) and _inexact(e) for z, e in zip(in_nz, examples, strict=True)]
    t_examples = [_tangent_zeros_of(e) for e, z in zip(examples, in_nz, strict=True) if z]
    n = len(examples)
    box = []

    def fn(*ins):
        primals = ins[:n]
        tans = iter(ins[n:])
        jt = JVPTrace()
        with jt:
            args = [JVPTracer(jt, p, next(tans)) if z else p
                    for p, z in zip(primals, in_nz, strict=True)]
            outs = prog(*args)
        po, to, mask = [], [], []
        for k, o in enumerate(outs):
            if type(o) is JVPTracer and o._trace is jt:
                p, t = o.value, o.tangent
            else:
                p, t = o, None
            po.append(p)
            force = out_inst is not None and out_inst[k]
            if _inexact(p) and (t is not None or force):
                to.append(_tangent_zeros_of(p) if t is None else _cast_like(t, p))
                mask.append(True)
            else:
                mask.append(False)
        box.append(mask)
        return (po if primal_outs else []) + to

    jp, consts, _ = _trace_flat(fn, examples + t_examples, context)
    assert not consts
    return jp, box[0]


def _vjp_apply(prog, inputs, diff, gouts, with_outputs=False):
    """Cotangents of ``prog``'s inputs with ``diff`` for output cotangents ``gouts``
    (``None`` = zero); zeros are materialized, dtypes follow the inputs. With
    ``with_outputs``, returns ``(outputs, cotangents)``."""
    rt = ReverseTrace()
    try:
        with rt:
            args = [rt.new_input(x) if d else x for x, d in zip(inputs, diff, strict=True)]
            outs = prog(*args)
    finally:
        tape = rt.finish()
    seeds = [(o, c) for o, c in zip(outs, gouts, strict=True)
             if c is not None and type(o) is ReverseTracer and o._trace is rt]
    leaves = [a for a, d in zip(args, diff, strict=True) if d]
    cts = backward(tape, seeds, leaves) if leaves else []
    xs = [x for x, d in zip(inputs, diff, strict=True) if d]
    cts = [_zeros_of(x) if c is None else _cast_like(c, x) for c, x in zip(cts, xs, strict=True)]
    if with_outputs:
        return [o.value if (type(o) is ReverseTracer and o._trace is rt) else o for o in outs], cts
    return cts


def _vjp_program(prog, diff, g_mask, context="vjp"):
    """The VJP of ``prog`` as a program: inputs ``prog``'s inputs then the cotangents of the
    outputs with ``g_mask``; outputs the cotangents of the inputs with ``diff``."""
    examples = [_example(v.value) for v in prog.invars]
    out_ex = [_out_example(o) for o in prog.outputs]
    g_ex = [_zeros_of(e) for e, m in zip(out_ex, g_mask, strict=True) if m]
    n = len(examples)

    def fn(*ins):
        gs = iter(ins[n:])
        gouts = [next(gs) if m else None for m in g_mask]
        return _vjp_apply(prog, list(ins[:n]), diff, gouts)

    vp, consts, _ = _trace_flat(fn, examples + g_ex, context)
    assert not consts
    return vp


def _make_transpose(prim, vjp_rule, has_residuals):
    """A transpose rule (book §8.4.4) from the VJP rule: for a primitive that is linear in its
    undefined inputs (a JVP'd loop or branch inside a linearized program), the VJP at any point
    — here at zero — is the transpose. Used by :func:`diffprog.linear_transpose` and by the
    reverse mode of ``custom_jvp`` functions whose JVP rule uses control flow."""

    def rule(ct, *args, **params):
        lin = [i for i, a in enumerate(args) if type(a) is UndefinedPrimal]
        vals = [np.zeros(a.shape, a.dtype) if type(a) is UndefinedPrimal else a for a in args]
        cts = list(ct) if isinstance(ct, (tuple, list)) else [ct]
        if has_residuals and not params["save"]:
            params = {**params, "save": True}
            ans = prim.bind(*vals, **params)
            cts += [None] * (len(ans) - len(cts))
        else:
            ans = prim.bind(*vals, **params)
        got = vjp_rule(tuple(cts), ans, lin, *vals, **params)
        out = [None] * len(args)
        for i, c in zip(lin, got, strict=True):
            out[i] = c
        return out

    return rule


def _batch_size(args, dims):
    for a, d in zip(args, dims, strict=True):
        if d is not None:
            return _aval(a)[0][d]
    raise ValueError("control flow batching rule: no batched argument")


def _moveaxis(x, src, dst):
    if src == dst:
        return x
    if isinstance(x, Tracer):
        from ...numpy import moveaxis

        return moveaxis(x, src, dst)
    return np.moveaxis(x, src, dst)


def _broadcast_batch(x, size):
    s = _aval(x)[0]
    if isinstance(x, Tracer):
        from ...numpy import broadcast_to

        return broadcast_to(x, (size, *s))
    return np.broadcast_to(x, (size, *s))


def _batch_program(prog, in_dims, examples, context):
    """``prog`` vmapped over the inputs with ``in_dims`` (0 or None); every output batched at 0."""
    from ..batching import vmap

    def fn(*ins):
        return list(vmap(lambda *a: tuple(prog(*a)), in_axes=tuple(in_dims), out_axes=0)(*ins))

    bp, consts, _ = _trace_flat(fn, [_example(e) for e in examples], context)
    assert not consts
    return bp


def _to_front(args, dims):
    return ([_moveaxis(a, d, 0) if d is not None else a for a, d in zip(args, dims, strict=True)],
            [0 if d is not None else None for d in dims])
