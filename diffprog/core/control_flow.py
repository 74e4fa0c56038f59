"""Control-flow primitives: cond, switch, fori_loop, scan and while_loop (book ch. 5).

Book §5.6–5.10: if-else and else-if statements, for loops, scan functions and while loops. Each
is a :class:`~diffprog.core.primitive.Primitive` whose parameters hold the branch or loop body as
a traced :class:`~diffprog.core.ir.Program` (a sub-graph), so ``make_graph`` and ``jit`` see one
node, and every transformation is a rule of that node:

=============  ================================  ===========================================
primitive      forward mode (JVP)                reverse mode (VJP)
=============  ================================  ===========================================
``cond``       ``cond`` of the JVP'd branches    ``cond`` of the branches' VJPs (the taken
                                                 branch only is evaluated)
``scan``       ``scan`` of the JVP'd body        the forward pass stores each step's
                                                 residuals; a reversed ``scan`` runs the
                                                 backward half of the body's VJP over them
``while``      ``while`` of the JVP'd body       with ``max_steps``: the visited states are
                                                 stored; a reversed ``scan`` runs the body's
                                                 VJP over them
=============  ================================  ===========================================

The derivative with respect to a predicate or branch index is zero (book §5.6.2: the Heaviside
step has a null derivative almost everywhere). ``fori_loop`` with static bounds is a ``scan``
over the loop counter; with traced bounds it is a ``while`` loop (forward mode only).

Design notes
------------
* **Eager fast path.** With no transformation active and no traced operand, the functions just
  run Python: ``cond`` calls only the selected branch (lazy evaluation, which the recursive
  while loop of §5.10.1 needs), loops run as Python loops. Structure checks still run.
* **Tracing.** Otherwise the Python function is traced once, with :class:`_BodyTrace`, on the
  concrete values of the operands (or of the first slice of ``xs``). Its tracers are
  *abstract* (``concrete = False``): a Python ``if`` on one raises, as under ``jit``, because
  the function will be replayed on other values. Values closed over from outer transformations
  (for example the weights ``w`` in ``grad(lambda w: scan(lambda c, x: (c * w + x, None), ...))``)
  become explicit inputs ("consts") of the primitive, so derivatives flow to them. Pytrees are
  flattened to leaves at the primitive boundary; the sub-programs work on flat leaf lists.
* **Residuals of reverse mode (scan).** When a scan is bound with a reverse-mode tracer among
  its inputs (``grad``, ``vjp``, also inside ``jit`` or ``jvp``), its body is traced once more
  jointly with its VJP and split by partial evaluation (:class:`ScanResiduals`): the equations
  that do not depend on cotangents form the forward step, which also outputs the values the
  backward half needs (the residuals, stacked like ``ys``); the others form the backward step.
  Loop-invariant equations (functions of the closed-over values only, such as a transposed
  weight matrix) are recomputed in the backward step instead of being stored ``K`` times. So
  ``grad`` of a scan costs one forward and one backward pass, like the unrolled program (book
  §8.3.3), with memory ``O(K · residuals)``. A scan recorded without residuals
  (``grad(jit(f))``, or one whose residual outputs themselves receive cotangents at second
  order) gets them from one extra forward pass. The residual outputs are ordinary outputs,
  so second-order derivatives (grad of grad, Hessian-vector products) flow through them.
* **while_loop** with ``save=True`` (reverse mode, ``max_steps`` given) also outputs its step
  count and up to ``max_steps`` visited states (rows past the last step repeat the final
  state). Under eager transformations the backward pass is a ``scan`` of the body's VJP over
  exactly the ``n`` visited states (recomputing each step's intermediates: checkpointing at
  step granularity, book §8.5); when ``n`` is traced (``jit``), it is a masked ``scan`` over
  ``max_steps``.
* **Transposition** (``linear_transpose``, reverse mode of a ``custom_jvp`` whose rule uses
  control flow): a primitive linear in its undefined inputs is transposed by its VJP at zero.
* **Batching** rules (``prim.batch``, JAX signature ``rule(args, dims, **params)``): ``cond``
  with a batched predicate evaluates every branch and selects (``where``); ``scan`` and
  ``fori_loop`` scan the vmapped body; ``while`` with a batched state runs while any member is
  active, with ``where``-masked updates.
* The primitives are created with ``register=False`` (they are not elementwise NumPy
  primitives and are tested here, not by the every-primitive table).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from functools import partial as _partial
from typing import Any

import numpy as np

from . import primitive as _primitive_mod
from .forward import JVPTrace, JVPTracer
from .ir import Equation, IRTrace, IRTracer, Program, Var
from .primitive import Primitive, Tracer, UndefinedPrimal, thread_state
from .pytree import tree_flatten
from .reverse import ReverseTrace, ReverseTracer, backward

__all__ = ["cond", "switch", "fori_loop", "scan", "while_loop", "MaxStepsExceeded"]


class MaxStepsExceeded(RuntimeError):
    """A ``while_loop`` needed more than ``max_steps`` iterations."""


# ============================================================================ small helpers


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
        from ..numpy import astype

        return astype(c, dt)
    return np.asarray(c, dtype=dt)


def _select(pred, x, y):
    """``where(pred, x, y)`` with a possibly traced predicate (a constant of the program)."""
    from ..numpy.structural import select_p

    return select_p.bind(pred, x, y)


# ============================================================================ sub-programs


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
        from .jit import compile_program
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

    def process(self, prim, args, params):
        inputs = []
        vals = []
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is self:
                    inputs.append(a.var)
                    vals.append(a.value)
                else:
                    inputs.append(a)
                    vals.append(_walk(a))
            else:
                inputs.append(a)
                vals.append(a)
        dynamic = False
        record = params
        if params:
            for v in params.values():
                if _has_tracer(v):
                    dynamic = True
                    break
            if dynamic:
                record = {k: _split_param(v, self, True) for k, v in params.items()}
                params = {k: _split_param(v, self, False) for k, v in params.items()}
        with np.errstate(all="ignore"):
            ans = prim.bind(*vals, **params)
        cls = self.tracer_cls
        if prim.multiple_results:
            outs = tuple(self.new_var(a) for a in ans)
            self.eqns.append(Equation(prim, inputs, record, outs, dynamic))
            return tuple(cls(self, a, v) for a, v in zip(ans, outs, strict=True))
        var = self.new_var(ans)
        self.eqns.append(Equation(prim, inputs, record, var, dynamic))
        return cls(self, ans, var)


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


# ---------------------------------------------------------------- derivative sub-programs


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


# ============================================================================ cond / switch


def _cond_index_impl(x, *, num_branches, is_pred):
    v = np.asarray(x)
    if is_pred:
        return (v != 0).astype(np.int64)
    return np.clip(v, 0, num_branches - 1).astype(np.int64)


#: predicate / index -> branch number (clamped); piecewise constant, so not differentiated
cond_index_p = Primitive("cond_index", _cond_index_impl, nondiff=True, register=False)


def _cond_impl(index, *args, branches):
    return tuple(branches[int(index)].runner()(*args))


def _cond_jvp(primals, tangents, ans, *, branches):
    index, args = primals[0], primals[1:]
    tans = tangents[1:]
    nz = [t is not None and _inexact(a) for a, t in zip(args, tans, strict=True)]
    if not any(nz):
        return (None,) * len(ans)
    tz = [t for t, z in zip(tans, nz, strict=True) if z]
    if _is_concrete(index):  # the branch is known for this evaluation: differentiate it only
        jp, m = _jvp_program(branches[int(_walk(index))], nz, primal_outs=False,
                             context="cond (jvp)")
        it = iter(jp(*args, *tz))
        return tuple(next(it) if u else None for u in m)
    jps = [_jvp_program(p, nz, primal_outs=False, context="cond (jvp)") for p in branches]
    union = [any(m[j] for _, m in jps) for j in range(len(ans))]
    progs = []
    for p, (jp, m) in zip(branches, jps, strict=True):
        if m != union:
            jp, m = _jvp_program(p, nz, union, primal_outs=False, context="cond (jvp)")
        progs.append(jp)
    touts = cond_p.bind(index, *args, *tz, branches=tuple(progs))
    it = iter(touts)
    return tuple(next(it) if u else None for u in union)


def _cond_vjp(g, ans, argnums, index, *args, branches):
    diff = [False] * len(args)
    for i in argnums:
        if i > 0 and _inexact(args[i - 1]):
            diff[i - 1] = True
    g = list(g)
    g_mask = [c is not None and _inexact(a) for c, a in zip(g, ans, strict=True)]
    if not any(diff) or not any(g_mask):
        return [None] * len(argnums)
    gs = [c for c, m in zip(g, g_mask, strict=True) if m]
    if _is_concrete(index):  # the taken branch is known: differentiate it only
        cts = _vjp_program(branches[int(_walk(index))], diff, g_mask, "cond (vjp)")(*args, *gs)
    else:
        progs = tuple(_vjp_program(p, diff, g_mask, "cond (vjp)") for p in branches)
        cts = cond_p.bind(index, *args, *gs, branches=progs)
    it = iter(cts)
    full = [next(it) if d else None for d in diff]
    return [None if i == 0 else full[i - 1] for i in argnums]


cond_p = Primitive("cond", _cond_impl, jvp=_cond_jvp, multiple_results=True, register=False)
cond_p.vjp_joint = _cond_vjp


def _check_pred(fname: str, name: str, pred, integer: bool):
    if isinstance(pred, Tracer):
        s, d = _aval(pred)
    else:
        a = np.asarray(pred)
        s, d = a.shape, a.dtype
    if s != ():
        raise TypeError(
            f"{fname}: argument '{name}' must be a scalar, got an array of shape {s}"
            + ("" if integer else "; for elementwise selection use diffprog.numpy.where")
        )
    if integer and d.kind not in "iub":
        raise TypeError(f"{fname}: argument '{name}' must be an integer scalar, got dtype {d}")
    if not integer and d.kind not in "biuf":
        raise TypeError(
            f"{fname}: argument '{name}' must be a boolean (or real number) scalar, got dtype {d}"
        )


def _switch_impl(fname, index, branches, names, operands, is_pred):
    leaves, in_def = tree_flatten(tuple(operands))
    leaves = [_as_operand(fname, x, i) for i, x in enumerate(leaves)]
    n = len(branches)
    if not _active([index, *leaves]):
        v = np.asarray(index)
        i = int(v != 0) if is_pred else int(np.clip(v, 0, n - 1))
        return branches[i](*operands)
    examples = [_example(x) for x in leaves]
    progs, consts_list, out_defs, weaks = [], [], [], []
    for k, br in enumerate(branches):
        box = []

        def flat(*ins, br=br, box=box):
            out = br(*in_def.unflatten(list(ins)))
            ol, od = tree_flatten(out)
            box.append(od)
            return ol

        prog, consts, weak = _trace_flat(flat, examples, f"{fname} ({names[k]})")
        progs.append(prog)
        consts_list.append(consts)
        out_defs.append(box[0])
        weaks.append(weak)
    for k in range(1, n):
        if out_defs[k] != out_defs[0]:
            raise TypeError(
                f"{fname}: all branches must return the same pytree structure, but "
                f"{names[0]} returns {out_defs[0]} and {names[k]} returns {out_defs[k]}"
            )
    # weakly typed (Python scalar) outputs take the dtype of their counterparts
    n_out = len(progs[0].outputs)
    for j in range(n_out):
        avals = [p.out_avals()[j] for p in progs]
        strong = [a for a, w in zip(avals, weaks, strict=True) if not w[j]]
        target = strong[0][1] if strong else avals[0][1]
        for k, p in enumerate(progs):
            if weaks[k][j] and avals[k][1] != target:
                p.outputs[j] = np.asarray(p.outputs[j], dtype=target)
        s0, d0 = progs[0].out_avals()[j]
        for k in range(1, n):
            s, d = progs[k].out_avals()[j]
            if s != s0 or d != d0:
                raise TypeError(
                    f"{fname}: all branches must return the same shapes and dtypes, but output "
                    f"leaf {j} is {d0}{list(s0)} in {names[0]} and {d}{list(s)} in {names[k]}"
                )
    # one input list for every branch: operands, then the union of the closed-over values
    all_consts: list = []
    pos: dict = {}
    for consts in consts_list:
        for c in consts:
            if id(c) not in pos:
                pos[id(c)] = len(all_consts)
                all_consts.append(c)
    final = []
    n_ops = len(leaves)
    for prog, consts in zip(progs, consts_list, strict=True):
        cvars = prog.invars[:len(consts)]
        opvars = prog.invars[len(consts):]
        slots = [Var(next(_dummy_ids), _example(c)) for c in all_consts]
        for c, v in zip(consts, cvars, strict=True):
            slots[pos[id(c)]] = v
        final.append(SubProgram(list(opvars) + slots, prog.eqns, prog.outputs))
    assert all(len(p.invars) == n_ops + len(all_consts) for p in final)
    idx = cond_index_p.bind(index, num_branches=n, is_pred=is_pred)
    outs = cond_p.bind(idx, *leaves, *all_consts, branches=tuple(final))
    return out_defs[0].unflatten(list(outs))


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)`` (book §5.6).

    ``ifelse(π, v₁, v₀) = π·v₁ + (1 − π)·v₀`` with ``v₁ = true_fun(*operands)`` and
    ``v₀ = false_fun(*operands)`` (Eq. 5.3). It is linear in the branch values, so
    ``∂_{u₁} f = π·∂g₁(u₁)`` and ``∂_{u₀} f = (1 − π)·∂g₀(u₀)`` (§5.6.1); the derivative with
    respect to the predicate is zero (§5.6.2: the step function has a null derivative almost
    everywhere). ``pred`` is a boolean (or real: nonzero is true) scalar; the operands are
    pytrees. Evaluation is lazy: eagerly only the selected branch runs; under a transformation
    both branches are traced, must return the same structure, shapes and dtypes, and the
    result is one ``cond`` node whose JVP is the ``cond`` of the JVP'd branches and whose VJP
    runs the VJP of the taken branch only.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> f = lambda x: diffprog.cond(x > 0, dnp.sin, dnp.exp, x)
        >>> bool(diffprog.grad(f)(np.array(0.5)) == np.cos(0.5))   # true branch: sin' = cos
        True
        >>> bool(diffprog.grad(f)(np.array(-1.0)) == np.exp(-1.0))  # false branch: exp' = exp
        True
    """
    _check_callable("cond", "true_fun", true_fun)
    _check_callable("cond", "false_fun", false_fun)
    _check_pred("cond", "pred", pred, integer=False)
    return _switch_impl("cond", pred, (false_fun, true_fun), ("false_fun", "true_fun"),
                        operands, True)


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """``branches[index](*operands)``, with ``index`` clamped to ``[0, len(branches) - 1]``.

    Book §5.7 (else-if statements, the conditional ``cond(π, v₁, …, v_K) = Σᵢ πᵢ·vᵢ`` with a
    one-hot ``π = e_index``, Eq. 5.5): ``∂_{uᵢ} f = ∂gᵢ(uᵢ)`` for the selected branch and 0 for
    the others; the derivative with respect to ``index`` is zero (§5.7.4). ``index`` is an
    integer scalar; out-of-range values are clamped (as in JAX). Lazy like :func:`cond`: eagerly
    only the selected branch is called.

    Example::

        >>> import numpy as np, diffprog
        >>> branches = [lambda x: x, lambda x: 2 * x, lambda x: 3 * x]
        >>> float(diffprog.switch(1, branches, np.array(5.0)))
        10.0
        >>> float(diffprog.switch(7, branches, np.array(5.0)))   # clamped to the last branch
        15.0
    """
    if callable(branches) or not isinstance(branches, Sequence) or not len(branches):
        raise TypeError("switch: argument 'branches' must be a non-empty sequence of functions")
    for k, b in enumerate(branches):
        _check_callable("switch", f"branches[{k}]", b)
    _check_pred("switch", "index", index, integer=True)
    names = tuple(f"branches[{k}]" for k in range(len(branches)))
    return _switch_impl("switch", index, tuple(branches), names, operands, False)


# ============================================================================ scan


def _scan_impl(*args, body, num_consts, num_carry, length, reverse, residuals=None):
    nc, ncar = num_consts, num_carry
    consts = list(args[:nc])
    carry = list(args[nc:nc + ncar])
    xs = args[nc + ncar:]
    out_avals = body.out_avals()
    ys = [np.empty((length, *s), d) for s, d in out_avals[ncar:]]
    run = body.runner(length)
    ny = len(ys)
    for k in (range(length - 1, -1, -1) if reverse else range(length)):
        out = run(*consts, *carry, *[x[k] for x in xs])
        carry = out[:ncar]
        for j in range(ny):
            ys[j][k] = out[ncar + j]
    carry = [np.asarray(c) for c in carry]
    return (*carry, *ys)


def _scan_split(args, nc, ncar):
    return list(args[:nc]), list(args[nc:nc + ncar]), list(args[nc + ncar:])


def _bind_scan(consts, init, xs, body, length, reverse):
    """Bind ``scan``; under reverse mode, with the body split so that the forward pass also
    stores the residuals of the reverse pass. Returns the outputs ``carry + ys``."""
    nc, ncar = len(consts), len(init)
    residuals = None
    if _under_reverse([*consts, *init, *xs]):
        const_d = [_under_reverse([c]) and _inexact(c) for c in consts]
        carry_d = [_inexact(c) for c in init]
        x_d = [_under_reverse([x]) and _inexact(x) for x in xs]
        if any(const_d + carry_d + x_d):
            body, residuals = _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d)
    outs = scan_p.bind(*consts, *init, *xs, body=body, num_consts=nc, num_carry=ncar,
                       length=length, reverse=reverse, residuals=residuals)
    return list(outs[:len(outs) - (residuals.num_res if residuals is not None else 0)])


def _scan_jvp(primals, tangents, ans, *, body, num_consts, num_carry, length, reverse,
              residuals=None):
    nc, ncar = num_consts, num_carry
    consts, init, xs = _scan_split(primals, nc, ncar)
    tc, tinit, tx = _scan_split(tangents, nc, ncar)
    nx, ny = len(xs), len(body.outputs) - ncar
    nz_c = [t is not None and _inexact(a) for a, t in zip(consts, tc, strict=True)]
    nz_x = [t is not None and _inexact(a) for a, t in zip(xs, tx, strict=True)]
    carry_nz = [t is not None and _inexact(a) for a, t in zip(init, tinit, strict=True)]
    while True:  # fixpoint: which carries get a nonzero tangent
        jp, mask = _jvp_program(body, nz_c + carry_nz + nz_x, carry_nz + [False] * ny,
                                context="scan (jvp)")
        new = [a or b for a, b in zip(carry_nz, mask[:ncar], strict=True)]
        if new == carry_nz:
            break
        carry_nz = new
    y_nz = mask[ncar:]
    if not any(carry_nz) and not any(y_nz):
        return (None,) * len(ans)
    kc, kx, kcar, ky = sum(nz_c), sum(nz_x), sum(carry_nz), sum(y_nz)
    # reorder the JVP program's inputs and outputs into scan's groups
    n_in = nc + ncar + nx
    t0 = n_in
    in_order = (list(range(nc)) + list(range(t0, t0 + kc))
                + list(range(nc, nc + ncar)) + list(range(t0 + kc, t0 + kc + kcar))
                + list(range(nc + ncar, n_in)) + list(range(t0 + kc + kcar, t0 + kc + kcar + kx)))
    n_out = ncar + ny
    out_order = (list(range(ncar)) + list(range(n_out, n_out + kcar))
                 + list(range(ncar, n_out)) + list(range(n_out + kcar, n_out + kcar + ky)))
    jbody = _permute(jp, in_order, out_order)
    tcs = [t for t, z in zip(tc, nz_c, strict=True) if z]
    tis = [(_tangent_zeros_of(a) if t is None else t)
           for a, t, z in zip(init, tinit, carry_nz, strict=True) if z]
    txs = [t for t, z in zip(tx, nz_x, strict=True) if z]
    res = _bind_scan(consts + tcs, init + tis, xs + txs, jbody, length, reverse)
    it = iter(res[ncar:ncar + kcar])
    t_carry = [next(it) if z else None for z in carry_nz]
    it = iter(res[ncar + kcar + ny:ncar + kcar + ny + ky])
    t_ys = [next(it) if z else None for z in y_nz]
    return tuple(t_carry + t_ys)


def _scan_bwd_program(body, nc, ncar, nx, const_d, carry_d, x_d, gy_m, gs_m, masked,
                      context):
    """The body of the reverse pass: one step of the body's VJP.

    Inputs: consts [, n]; carry ``(ct_carry[carry_d], acc_consts[const_d])``; xs
    ``(carry_k (all), x_k (all), g_y_k[gy_m], g_s_k[gs_m] [, k])``. Outputs: the new carry,
    then ``ct_x_k[x_d]`` as ys. With ``masked``, steps ``k >= n`` leave the carry unchanged.
    """
    ex = [_example(v.value) for v in body.invars]
    c_ex, car_ex, x_ex = ex[:nc], ex[nc:nc + ncar], ex[nc + ncar:]
    out_ex = [_out_example(o) for o in body.outputs]
    kc, ka = sum(carry_d), sum(const_d)
    examples = (c_ex + ([np.zeros((), np.int64)] if masked else [])
                + [_zeros_of(e) for e, d in zip(car_ex, carry_d, strict=True) if d]
                + [_zeros_of(e) for e, d in zip(c_ex, const_d, strict=True) if d]
                + car_ex + x_ex
                + [_zeros_of(e) for e, m in zip(out_ex[ncar:], gy_m, strict=True) if m]
                + [_zeros_of(e) for e, m in zip(car_ex, gs_m, strict=True) if m]
                + ([np.zeros((), np.int64)] if masked else []))

    def fn(*ins):
        it = iter(ins)

        def take(k):
            return [next(it) for _ in range(k)]

        consts = take(nc)
        n = take(1)[0] if masked else None
        ctc, acc = take(kc), take(ka)
        carry, xk = take(ncar), take(nx)
        gy, gs = take(sum(gy_m)), take(sum(gs_m))
        k = take(1)[0] if masked else None
        it_c = iter(ctc)
        gouts = [next(it_c) if d else None for d in carry_d]
        it_y = iter(gy)
        gouts += [next(it_y) if m else None for m in gy_m]
        cts = _vjp_apply(body, consts + carry + xk, const_d + carry_d + x_d, gouts)
        ct_c, ct_car, ct_x = cts[:ka], cts[ka:ka + kc], cts[ka + kc:]
        it_s = iter(gs)
        new_ctc = []
        j = 0
        for d, m in zip(carry_d, gs_m, strict=True):
            if d:
                c = ct_car[j]
                new_ctc.append(c + next(it_s) if m else c)
                j += 1
            elif m:
                next(it_s)
        new_acc = [a + c for a, c in zip(acc, ct_c, strict=True)]
        if masked:
            from ..numpy import less

            active = less(k, n)
            new_ctc = [_select(active, a, b) for a, b in zip(new_ctc, ctc, strict=True)]
            new_acc = [_select(active, a, b) for a, b in zip(new_acc, acc, strict=True)]
            ct_x = [_select(active, a, _zeros_of(a)) for a in ct_x]
        return new_ctc + new_acc + ct_x

    prog, consts, _ = _trace_flat(fn, examples, context)
    assert not consts
    return prog


def _scan_backward(body, nc, ncar, consts, saved, xs, g_carry, g_ys, g_saved, length, reverse,
                   const_d, carry_d, x_d, n=None, context="scan (reverse pass)"):
    """Run the reverse pass of a scan; returns ``(ct_consts, ct_init, ct_xs)`` lists aligned
    with ``const_d``/``carry_d``/``x_d`` (``None`` where not differentiated)."""
    nx = len(xs)
    gy_m = [c is not None for c in g_ys]
    gs_m = [c is not None and d for c, d in zip(g_saved, carry_d, strict=True)]
    masked = n is not None
    bwd = _scan_bwd_program(body, nc, ncar, nx, const_d, carry_d, x_d, gy_m, gs_m, masked,
                            context)
    init_ex = [_example(v.value) for v in body.invars[nc:nc + ncar]]
    ctc0 = [(_zeros_of(e) if g is None else g)
            for e, g, d in zip(init_ex, g_carry, carry_d, strict=True) if d]
    acc0 = [_zeros_of(c) for c, d in zip(consts, const_d, strict=True) if d]
    gys = [c for c in g_ys if c is not None]
    gss = [c for c, m in zip(g_saved, gs_m, strict=True) if m]
    extra_c = [n] if masked else []
    extra_x = [np.arange(length)] if masked else []
    bconsts = list(consts) + extra_c
    bcarry = ctc0 + acc0
    bxs = list(saved) + list(xs) + gys + gss + extra_x
    res = _bind_scan(bconsts, bcarry, bxs, bwd, length, not reverse)
    kc, ka, kx = len(ctc0), len(acc0), sum(x_d)
    it = iter(res[:kc])
    ct_init = [next(it) if d else None for d in carry_d]
    it = iter(res[kc:kc + ka])
    ct_consts = [next(it) if d else None for d in const_d]
    it = iter(res[kc + ka:kc + ka + kx])
    ct_xs = [next(it) if d else None for d in x_d]
    return ct_consts, ct_init, ct_xs


def _scan_vjp(g, ans, argnums, *args, body, num_consts, num_carry, length, reverse,
              residuals=None):
    nc, ncar = num_consts, num_carry
    consts, init, xs = _scan_split(args, nc, ncar)
    ny = len(body.outputs) - ncar
    want = set(argnums)
    const_d = [i in want and _inexact(c) for i, c in enumerate(consts)]
    carry_d = [_inexact(c) for c in init]
    x_d = [nc + ncar + i in want and _inexact(x) for i, x in enumerate(xs)]
    g = [c if _inexact(a) else None for c, a in zip(g, ans, strict=True)]
    if (all(c is None for c in g)
            or not any(const_d + x_d + [d and (nc + j) in want for j, d in enumerate(carry_d)])):
        return [None] * len(argnums)
    if residuals is not None:  # the forward pass stored the residuals
        fast = _scan_vjp_residuals(residuals, g, ans, argnums, consts, xs, nc, ncar, ny, length,
                                   reverse)
        if fast is not None:
            return fast
    # recorded without (suitable) residuals, e.g. grad(jit(f)) or at second order: one forward
    # pass computes them, then the reverse pass runs from them
    gy_m = [c is not None for c in g[ncar:]]
    fbody, r = _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d, gy_m)
    outs = scan_p.bind(*args, body=fbody, num_consts=nc, num_carry=ncar, length=length,
                       reverse=reverse, residuals=r)
    return _scan_vjp_residuals(r, g + [None] * r.num_res, outs, argnums, consts, xs, nc, ncar,
                               ny + r.num_res, length, reverse, strict=False)


class ScanResiduals:
    """Parameter of a ``scan`` whose forward pass also emits its reverse pass's residuals.

    The body's last ``num_res`` outputs are residuals (stacked like ``ys``); ``bwd`` is the
    backward step ``(consts, residuals, ct_carry[carry_d], g_y[gy_m]) -> (ct_consts[const_d],
    ct_carry[carry_d], ct_x[x_d])``. The split comes from partial evaluation of the body's joint
    forward-and-VJP program: equations that do not depend on cotangents run in the forward
    pass (book §8.2: a VJP needs the forward pass's intermediate values), those that do run
    in the reverse pass, and loop-invariant ones (functions of the consts only) are recomputed
    in the reverse pass rather than stored once per step.
    """

    __slots__ = ("num_res", "bwd", "const_d", "carry_d", "x_d", "gy_m")

    def __init__(self, num_res, bwd, const_d, carry_d, x_d, gy_m):
        self.num_res = num_res
        self.bwd = bwd
        self.const_d = const_d
        self.carry_d = carry_d
        self.x_d = x_d
        self.gy_m = gy_m

    def __repr__(self):
        return f"ScanResiduals(num_res={self.num_res})"


def _param_vars(params, acc):
    for v in params.values():
        stack = [v]
        while stack:
            x = stack.pop()
            if type(x) is Var:
                acc.append(x)
            elif type(x) is tuple:
                stack.extend(x)


def _eq_vars(eq):
    vs = [a for a in eq.inputs if type(a) is Var]
    if eq.dynamic:
        _param_vars(eq.params, vs)
    return vs


def _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d, gy_m=None):
    """Split ``body`` into a forward step emitting residuals and a backward step consuming them
    (for cotangents on the carries and on the outputs ``y`` with ``gy_m``, default all).

    Returns ``(forward body, ScanResiduals)``."""
    ex = [_example(v.value) for v in body.invars]
    n_in = len(ex)
    out_ex = [_out_example(o) for o in body.outputs]
    ny = len(out_ex) - ncar
    if gy_m is None:
        gy_m = [e.dtype.kind in "fc" for e in out_ex[ncar:]]
    else:
        gy_m = [bool(m) and e.dtype.kind in "fc" for m, e in zip(gy_m, out_ex[ncar:], strict=True)]
    diff = const_d + carry_d + x_d
    examples = (ex + [_zeros_of(e) for e, d in zip(ex[nc:nc + ncar], carry_d, strict=True) if d]
                + [_zeros_of(e) for e, m in zip(out_ex[ncar:], gy_m, strict=True) if m])

    def joint(*ins):
        it = iter(ins[n_in:])
        gouts = ([next(it) if d else None for d in carry_d]
                 + [next(it) if m else None for m in gy_m])
        outs, cts = _vjp_apply(body, list(ins[:n_in]), diff, gouts, with_outputs=True)
        return outs + cts

    jp, consts, _ = _trace_flat(joint, examples, "scan (reverse pass)")
    assert not consts
    # dependency levels: 0 = consts only (loop invariant), 1 = forward, 2 = needs cotangents
    level = {v: (0 if i < nc else 1 if i < n_in else 2) for i, v in enumerate(jp.invars)}
    eq_level = []
    for eq in jp.eqns:
        lv = max((level[v] for v in _eq_vars(eq)), default=0)
        eq_level.append(lv)
        for o in (eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)):
            level[o] = lv
    prim_outs = jp.outputs[:ncar + ny]
    ct_outs = jp.outputs[ncar + ny:]
    if any(type(o) is Var and level[o] == 2 for o in prim_outs):  # pragma: no cover
        raise AssertionError("scan: a forward output depends on cotangents")
    # the backward step: cotangent-dependent equations and the invariant ones they need
    need = {o for o in ct_outs if type(o) is Var}
    bk = []
    for eq, lv in zip(reversed(jp.eqns), reversed(eq_level), strict=True):
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        if lv == 1 or not any(o in need for o in outs):
            continue
        bk.append(eq)
        need.update(_eq_vars(eq))
    bk.reverse()
    order = {v: i for i, v in enumerate(jp.invars)}
    for k, eq in enumerate(jp.eqns):
        for o in (eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)):
            order[o] = n_in + k
    res = sorted((v for v in need if level[v] == 1), key=order.__getitem__)
    # the forward step: the body's outputs and the residuals
    needf = {o for o in prim_outs if type(o) is Var} | set(res)
    fw = []
    for eq in reversed(jp.eqns):
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        if any(o in needf for o in outs):
            fw.append(eq)
            needf.update(_eq_vars(eq))
    fw.reverse()
    fbody = SubProgram(list(jp.invars[:n_in]), fw, list(prim_outs) + res)
    bwd = SubProgram(list(jp.invars[:nc]) + res + list(jp.invars[n_in:]), bk, list(ct_outs))
    return fbody, ScanResiduals(len(res), bwd, const_d, carry_d, x_d, gy_m)


def _scan_vjp_residuals(r, g, ans, argnums, consts, xs, nc, ncar, ny, length, reverse,
                        strict=True):
    """The reverse pass from stored residuals, or None when it does not apply (cotangents on
    the residuals themselves, at second order, or on outputs or inputs outside the masks the
    residuals were made for)."""
    nyu = ny - r.num_res
    g = list(g)
    if strict:
        if any(c is not None for c in g[ncar + nyu:]):
            return None
        if any(c is not None and not m for c, m in zip(g[ncar:ncar + nyu], r.gy_m, strict=True)):
            return None
        for i in argnums:
            if i < nc:
                ok = r.const_d[i]
            elif i < nc + ncar:
                ok = r.carry_d[i - nc]
            else:
                ok = r.x_d[i - nc - ncar]
            if not ok:
                return None
    carry_ex = [_example(v.value) for v in r.bwd.invars[nc + r.num_res:]][:sum(r.carry_d)]
    ctc0 = [g[j] for j, d in enumerate(r.carry_d) if d]
    ctc0 = [_zeros_of(e) if c is None else c for c, e in zip(ctc0, carry_ex, strict=True)]
    acc0 = [_zeros_of(c) for c, d in zip(consts, r.const_d, strict=True) if d]
    gys = [(np.zeros(_aval(a)[0], _aval(a)[1]) if c is None else c)
           for c, a, m in zip(g[ncar:ncar + nyu], ans[ncar:ncar + nyu], r.gy_m, strict=True) if m]
    res = list(ans[ncar + nyu:ncar + ny])
    kc, ka, kx = len(ctc0), len(acc0), sum(r.x_d)
    bwd = r.bwd
    n_res, n_gy = r.num_res, len(gys)
    step_ex = ([_example(c) for c in consts] + [_example(c) for c in ctc0]
               + [_example(c) for c in acc0]
               + [_example(v.value) for v in bwd.invars[nc:nc + n_res]]
               + [_example(v.value) for v in bwd.invars[nc + n_res + kc:]])

    def step(*ins):
        it = iter(ins)

        def take(k):
            return [next(it) for _ in range(k)]

        c, ctc, acc, rs, gy = take(nc), take(kc), take(ka), take(n_res), take(n_gy)
        cts = bwd(*c, *rs, *ctc, *gy)
        return cts[ka:ka + kc] + [a + b for a, b in zip(acc, cts[:ka], strict=True)] + cts[ka + kc:]

    sp, k2, _ = _trace_flat(step, step_ex, "scan (reverse pass)")
    assert not k2
    bcarry = ctc0 + acc0
    bxs = res + gys
    out = _bind_scan(consts, bcarry, bxs, sp, length, not reverse)
    it = iter(out[:kc])
    ct_init = [next(it) if d else None for d in r.carry_d]
    it = iter(out[kc:kc + ka])
    ct_consts = [next(it) if d else None for d in r.const_d]
    it = iter(out[kc + ka:kc + ka + kx])
    ct_xs = [next(it) if d else None for d in r.x_d]
    full = ct_consts + ct_init + ct_xs
    return [full[i] for i in argnums]


scan_p = Primitive("scan", _scan_impl, jvp=_scan_jvp, multiple_results=True, register=False)
scan_p.vjp_joint = _scan_vjp


def _static_length(fname: str, name: str, v) -> int:
    if isinstance(v, bool) or isinstance(v, np.bool_):
        raise TypeError(f"{fname}: argument '{name}' must be an integer, got a boolean")
    try:
        return operator.index(v)
    except TypeError:
        pass
    if not _is_concrete(v):
        raise TypeError(
            f"{fname}: argument '{name}' must be a static integer, but it is a traced value (its "
            "value is not known while tracing, e.g. inside jit or vmap); pass a Python int or "
            "mark the argument static"
        )
    a = np.asarray(_walk(v))
    if a.shape != () or a.dtype.kind not in "iu":
        s, d = _aval(v)
        raise TypeError(
            f"{fname}: argument '{name}' must be an integer scalar, got dtype {d} and shape {s}"
        )
    return int(a)


def _split_pair(fname: str, what: str, out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{fname}: {what} must return a pair (carry, y), got {type(out).__name__}"
            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        )
    return out[0], out[1]


def _kind_rank(t) -> int:
    return {bool: 0, int: 1, float: 2, complex: 3}[t]


def _kind_rank_dt(dt: np.dtype) -> int:
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}.get(dt.kind, -1)


def _check_carry(fname: str, what: str, init_def, init_avals, new):
    """Check that the carry returned by ``what`` keeps the initial structure, shapes and dtypes;
    returns its leaves (Python scalars cast to the carry's dtype)."""
    leaves, d = tree_flatten(new)
    if d != init_def:
        raise TypeError(
            f"{fname}: {what} must return a carry with the same pytree structure as the initial "
            f"carry: got {d}, expected {init_def}"
        )
    out = []
    for i, (x, (s, dt)) in enumerate(zip(leaves, init_avals, strict=True)):
        if _is_weak(x) and s == () and _kind_rank(type(x)) <= _kind_rank_dt(dt):
            out.append(np.asarray(x, dtype=dt))
            continue
        s2, d2 = _aval(x)
        if s2 != s:
            raise TypeError(
                f"{fname}: {what} changed the shape of carry leaf {i} from {s} to {s2}; the "
                "carry must keep its shape and dtype across iterations"
            )
        if d2 != dt:
            raise TypeError(
                f"{fname}: {what} changed the dtype of carry leaf {i} from {dt} to {d2}; the "
                "carry must keep its shape and dtype across iterations (cast it, e.g. with "
                ".astype, or start from an initial value of the right dtype)"
            )
        out.append(x)
    return out


def _scan(fname, what, f, init, xs, length, reverse):
    _check_callable(fname, what, f)
    init_leaves, init_def = tree_flatten(init)
    init_leaves = [_as_operand(fname, x, i, "carry") for i, x in enumerate(init_leaves)]
    init_avals = [_aval(x) for x in init_leaves]
    xs_leaves, xs_def = tree_flatten(xs)
    xs_leaves = [_as_operand(fname, x, i, "xs") for i, x in enumerate(xs_leaves)]
    lengths = []
    for i, x in enumerate(xs_leaves):
        s = _aval(x)[0]
        if not s:
            raise ValueError(
                f"{fname}: every leaf of xs must have a leading axis to scan over, but leaf {i} "
                "is a scalar (shape ())"
            )
        lengths.append(s[0])
    if length is not None:
        length = _static_length(fname, "length", length)
        if length < 0:
            raise ValueError(f"{fname}: argument 'length' must be >= 0, got {length}")
    if lengths:
        if len(set(lengths)) > 1:
            raise ValueError(
                f"{fname}: the leaves of xs have inconsistent leading lengths {lengths}; all must "
                "have the same length along axis 0"
            )
        if length is not None and length != lengths[0]:
            raise ValueError(
                f"{fname}: argument 'length'={length} does not match the leading length "
                f"{lengths[0]} of xs"
            )
        n = lengths[0]
    elif length is None:
        raise ValueError(f"{fname}: give xs (with a leading axis) or length")
    else:
        n = length
    reverse = bool(reverse)
    x_ex = [_example(x) for x in xs_leaves]
    if not _active(init_leaves + xs_leaves):
        return _scan_eager(fname, what, f, init, init_def, init_avals, xs_leaves, xs_def, n,
                           reverse)
    slices = [e[0] if n else np.zeros(e.shape[1:], e.dtype) for e in x_ex]
    ncar = len(init_leaves)
    box = []

    def flat_body(*ins):
        c = init_def.unflatten(list(ins[:ncar]))
        x = xs_def.unflatten(list(ins[ncar:]))
        carry, y = _split_pair(fname, what, f(c, x))
        cl = _check_carry(fname, what, init_def, init_avals, carry)
        yl, yd = tree_flatten(y)
        box.append(yd)
        return cl + yl

    prog, consts, _ = _trace_flat(flat_body, [_example(x) for x in init_leaves] + slices,
                                  f"{fname} ({what})")
    y_def = box[0]
    outs = _bind_scan(consts, init_leaves, xs_leaves, prog, n, reverse)
    ny = y_def.num_leaves
    return init_def.unflatten(list(outs[:ncar])), y_def.unflatten(list(outs[ncar:ncar + ny]))


def _scan_eager(fname, what, f, init, init_def, init_avals, xs_leaves, xs_def, n, reverse):
    carry = init
    ys = []
    y_def = None
    y_avals = None
    for k in (range(n - 1, -1, -1) if reverse else range(n)):
        x = xs_def.unflatten([x[k] for x in xs_leaves])
        carry, y = _split_pair(fname, what, f(carry, x))
        carry = init_def.unflatten(_check_carry(fname, what, init_def, init_avals, carry))
        yl, yd = tree_flatten(y)
        if y_def is None:
            y_def, y_avals = yd, [_aval(v) for v in yl]
        elif yd != y_def or [_aval(v) for v in yl] != y_avals:
            raise TypeError(
                f"{fname}: {what} returned outputs y of a different structure, shape or dtype at "
                f"step {k}: {yd} {[_aval(v) for v in yl]} instead of {y_def} {y_avals}"
            )
        ys.append(yl)
    if n == 0:  # one call on zero slices, to learn the structure of y
        x = xs_def.unflatten([np.zeros(np.shape(x)[1:], np.result_type(x)) for x in xs_leaves])
        _, y = _split_pair(fname, what, f(init, x))
        yl, y_def = tree_flatten(y)
        stacked = [np.zeros((0, *np.shape(v)), np.result_type(v)) for v in yl]
        return carry, y_def.unflatten(stacked)
    if reverse:
        ys.reverse()
    stacked = [np.stack([np.asarray(y[j]) for y in ys]) for j in range(len(ys[0]))]
    return carry, y_def.unflatten(stacked)


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False) -> tuple[Any, Any]:
    """Scan ``f`` over the leading axis of ``xs``, carrying a state (book §5.9, Alg. 5.2).

    For ``k = 1..K``: ``(s_k, v_k) = f(s_{k-1}, u_k)``; returns ``(s_K, [v_1, …, v_K])`` with the
    outputs stacked on a new leading axis. ``init`` (the carry ``s_0``), ``xs`` and the outputs
    are pytrees (``y`` may be ``None``); ``xs=None`` needs ``length``. ``reverse=True`` scans
    from the end (outputs stay aligned with ``xs``). The carry must keep its structure, shapes
    and dtypes. A scan is a computation chain (Fig. 5.9), so it is differentiated like any
    program: JVP = scan of the body's JVP; VJP = the forward pass stores the carries entering
    each step, then a reversed scan runs the body's VJP (memory ``O(K·|s|)``). A
    sequence-to-sequence RNN is a parameterized scan (§5.9).

    Example (prefix sum, Example 5.4)::

        >>> import numpy as np, diffprog
        >>> s, v = diffprog.scan(lambda s, u: (s + u, s + u), 0.0, np.array([1., 2., 3., 4.]))
        >>> float(s), v
        (10.0, array([ 1.,  3.,  6., 10.]))
    """
    return _scan("scan", "f", f, init, xs, length, reverse)


# ============================================================================ fori_loop


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)``; returns ``val`` (book §5.8).

    Alg. 5.1: ``s_k = f_k(s_{k-1})`` with ``f_k = body_fun(k, ·)`` — a computation chain, so
    ``∂ forloop(s_0) = ∂f_K ⋯ ∂f_1`` (a feed-forward network is a parameterized for loop,
    Fig. 5.8). With integer bounds the loop is a :func:`scan` over ``i`` (reverse-mode
    differentiable; the loop index is an int64 scalar inside a transformation and a Python int
    eagerly); with traced bounds (inside ``jit``) it is a :func:`while_loop` (forward mode).
    The carry must keep its structure, shapes and dtypes.

    Example (``dr/ds₀ = ∏ a_k`` for ``f_k(s) = a_k·s``)::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> a = np.array([2.0, 3.0, 4.0])
        >>> f = lambda s: diffprog.fori_loop(0, 3, lambda k, s: dnp.take(a, k) * s, s)
        >>> float(diffprog.grad(f)(np.array(1.0)))
        24.0

    Inside a transformation the index ``k`` is traced: index a plain NumPy array with it
    through ``diffprog.numpy`` (``dnp.take(a, k)``), since ``a[k]`` would need its value.
    """
    _check_callable("fori_loop", "body_fun", body_fun)
    if _is_concrete(lower) and _is_concrete(upper):
        lo = _static_length("fori_loop", "lower", lower)
        hi = _static_length("fori_loop", "upper", upper)
        leaves, treedef = tree_flatten(init_val)
        leaves = [_as_operand("fori_loop", x, i, "carry") for i, x in enumerate(leaves)]
        if not _active(leaves):
            avals = [_aval(x) for x in leaves]
            val = init_val
            for i in range(lo, hi):
                val = treedef.unflatten(
                    _check_carry("fori_loop", "body_fun", treedef, avals, body_fun(i, val)))
            return val
        n = max(hi - lo, 0)
        carry, _ = _scan("fori_loop", "body_fun", lambda c, i: (body_fun(i, c), None),
                         init_val, np.arange(lo, lo + n, dtype=np.int64), n, False)
        return carry
    for name, v in (("lower", lower), ("upper", upper)):
        s, d = _aval(v)
        if s != () or d.kind not in "iu":
            raise TypeError(
                f"fori_loop: argument '{name}' must be an integer scalar, got dtype {d} and "
                f"shape {s}"
            )
    lo = lower if isinstance(lower, Tracer) else np.asarray(lower, dtype=_aval(upper)[1])
    hi = upper
    _, val = _while("fori_loop", "body_fun", lambda c: c[0] < hi,
                    lambda c: (c[0] + 1, body_fun(c[0], c[1])), (lo, init_val), None)
    return val


# ============================================================================ while_loop


def _no_max_steps():
    return ValueError(
        "while_loop: reverse-mode differentiation (grad, vjp) through a while loop needs a "
        "bound on its number of iterations: pass max_steps=... (the visited states are "
        "stored, book §5.10.2); forward mode (jvp) works without it"
    )


def _while_impl(*args, cond, body, num_cond_consts, num_body_consts, max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    if save and max_steps is None:
        raise _no_max_steps()
    cc = list(args[:ncc])
    bc = list(args[ncc:ncc + nbc])
    carry = list(args[ncc + nbc:])
    bufs = ([np.empty((max_steps, *np.shape(c)), np.result_type(c)) for c in carry]
            if save else [])
    n = 0
    crun, brun = cond.runner(16), body.runner(16)
    while bool(crun(*cc, *carry)[0]):
        if max_steps is not None and n >= max_steps:
            raise MaxStepsExceeded(
                f"while_loop: the loop did not stop within max_steps={max_steps} iterations; "
                "raise max_steps or check cond_fun"
            )
        for b, c in zip(bufs, carry, strict=False):
            b[n] = c
        carry = list(brun(*bc, *carry))
        n += 1
    carry = [np.asarray(c) for c in carry]
    if save:
        for b, c in zip(bufs, carry, strict=True):
            b[n:] = c
        return (*carry, np.asarray(n, dtype=np.int64), *bufs)
    return tuple(carry)


def _while_split(args, ncc, nbc):
    return list(args[:ncc]), list(args[ncc:ncc + nbc]), list(args[ncc + nbc:])


def _while_jvp(primals, tangents, ans, *, cond, body, num_cond_consts, num_body_consts,
               max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    cc, bc, init = _while_split(primals, ncc, nbc)
    _, tbc, tinit = _while_split(tangents, ncc, nbc)
    ncar = len(init)
    nz_b = [t is not None and _inexact(a) for a, t in zip(bc, tbc, strict=True)]
    carry_nz = [t is not None and _inexact(a) for a, t in zip(init, tinit, strict=True)]
    while True:
        jp, mask = _jvp_program(body, nz_b + carry_nz, carry_nz, context="while_loop (jvp)")
        new = [a or b for a, b in zip(carry_nz, mask, strict=True)]
        if new == carry_nz:
            break
        carry_nz = new
    if not any(carry_nz):
        return (None,) * len(ans)
    kb, kcar = sum(nz_b), sum(carry_nz)
    n_in = nbc + ncar
    in_order = (list(range(nbc)) + list(range(n_in, n_in + kb)) + list(range(nbc, n_in))
                + list(range(n_in + kb, n_in + kb + kcar)))
    jbody = _permute(jp, in_order, list(range(ncar + kcar)))
    tis = [(_tangent_zeros_of(a) if t is None else t)
           for a, t, z in zip(init, tinit, carry_nz, strict=True) if z]
    jcond = _with_extra_inputs(cond, tis)
    tbs = [t for t, z in zip(tbc, nz_b, strict=True) if z]
    save2 = save or (max_steps is not None and _under_reverse([*primals, *tbs, *tis]))
    res = while_p.bind(*cc, *bc, *tbs, *init, *tis, cond=jcond, body=jbody,
                       num_cond_consts=ncc, num_body_consts=nbc + kb, max_steps=max_steps,
                       save=save2)
    it = iter(res[ncar:ncar + kcar])
    out = [next(it) if z else None for z in carry_nz]
    if save:
        base = ncar + kcar + 1 + ncar
        it = iter(res[base:base + kcar])
        out += [None] + [next(it) if z else None for z in carry_nz]
    return tuple(out)


def _concrete_int(x):
    if not _is_concrete(x):
        return None
    return int(np.asarray(_walk(x)))


def _while_vjp(g, ans, argnums, *args, cond, body, num_cond_consts, num_body_consts,
               max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    cc, bc, init = _while_split(args, ncc, nbc)
    ncar = len(init)
    want = set(argnums)
    body_d = [(ncc + i) in want and _inexact(c) for i, c in enumerate(bc)]
    carry_d = [_inexact(c) for c in init]
    g = list(g)
    g_carry = g[:ncar]
    g_saved = g[ncar + 1:] if save else [None] * ncar
    if (not any(c is not None for c in g_carry + g_saved)
            or not any(body_d + [d and (ncc + nbc + j) in want for j, d in enumerate(carry_d)])):
        return [None] * len(argnums)
    if max_steps is None:
        raise _no_max_steps()
    if save:
        n = ans[ncar]
        saved = list(ans[ncar + 1:])
    else:
        res = while_p.bind(*args, cond=cond, body=body, num_cond_consts=ncc,
                           num_body_consts=nbc, max_steps=max_steps, save=True)
        n = res[ncar]
        saved = list(res[ncar + 1:ncar + 1 + ncar])
    n_c = _concrete_int(n)
    if n_c is not None:  # eager: a reverse pass over exactly the n visited states
        saved = [s[:n_c] for s in saved]
        g_saved = [None if c is None else c[:n_c] for c in g_saved]
        ct_bc, ct_init, _ = _scan_backward(body, nbc, ncar, bc, saved, [], g_carry, [], g_saved,
                                           n_c, False, body_d, carry_d, [],
                                           context="while_loop (reverse pass)")
    else:  # traced trip count: a masked reverse pass over max_steps rows
        ct_bc, ct_init, _ = _scan_backward(body, nbc, ncar, bc, saved, [], g_carry, [], g_saved,
                                           max_steps, False, body_d, carry_d, [], n=n,
                                           context="while_loop (reverse pass)")
    full = [None] * ncc + ct_bc + ct_init
    return [full[i] for i in argnums]


while_p = Primitive("while", _while_impl, jvp=_while_jvp, multiple_results=True, register=False)
while_p.vjp_joint = _while_vjp


def _check_pred_out(fname, what, p):
    s, d = _aval(p)
    if s != () or d.kind not in "biuf":
        raise TypeError(
            f"{fname}: {what} must return a boolean scalar, got dtype {d} and shape {s}"
        )


def _while(fname, what, cond_fun, body_fun, init_val, max_steps):
    if max_steps is not None:
        max_steps = _static_length(fname, "max_steps", max_steps)
        if max_steps < 0:
            raise ValueError(f"{fname}: argument 'max_steps' must be >= 0, got {max_steps}")
    leaves, init_def = tree_flatten(init_val)
    leaves = [_as_operand(fname, x, i, "carry") for i, x in enumerate(leaves)]
    init_avals = [_aval(x) for x in leaves]
    cond_name = "cond_fun" if fname == "while_loop" else "the loop condition"
    if not _active(leaves):
        val = init_val
        n = 0
        while True:
            p = cond_fun(val)
            _check_pred_out(fname, cond_name, p)
            if not p:
                return val
            if max_steps is not None and n >= max_steps:
                raise MaxStepsExceeded(
                    f"{fname}: the loop did not stop within max_steps={max_steps} iterations; "
                    "raise max_steps or check cond_fun"
                )
            val = init_def.unflatten(_check_carry(fname, what, init_def, init_avals,
                                                  body_fun(val)))
            n += 1
    examples = [_example(x) for x in leaves]

    def flat_cond(*ins):
        p = cond_fun(init_def.unflatten(list(ins)))
        pl, pd = tree_flatten(p)
        if len(pl) != 1:
            raise TypeError(f"{fname}: {cond_name} must return a boolean scalar, got {pd}")
        _check_pred_out(fname, cond_name, pl[0])
        return pl

    def flat_body(*ins):
        return _check_carry(fname, what, init_def, init_avals,
                            body_fun(init_def.unflatten(list(ins))))

    cprog, cconsts, _ = _trace_flat(flat_cond, examples, f"{fname} ({cond_name})")
    bprog, bconsts, _ = _trace_flat(flat_body, examples, f"{fname} ({what})")
    save = max_steps is not None and _under_reverse(bconsts + leaves)
    outs = while_p.bind(*cconsts, *bconsts, *leaves, cond=cprog, body=bprog,
                        num_cond_consts=len(cconsts), num_body_consts=len(bconsts),
                        max_steps=max_steps, save=save)
    return init_def.unflatten(list(outs[:len(leaves)]))


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any,
               max_steps: int | None = None) -> Any:
    """``while cond_fun(val): val = body_fun(val)``; returns ``val`` (book §5.10, Alg. 5.3).

    ``cond_fun`` returns a boolean scalar (note: *true means continue*, as in JAX; the book's
    stopping predicate is ``π = not cond_fun``). The number of iterations is unknown in advance
    — a cyclic graph (Fig. 5.10) — so forward mode (JVP: a while loop of the body's JVP) always
    works, while reverse mode needs ``max_steps``: the loop is then a truncated, unrolled while
    loop (§5.10.2) whose visited states are stored, and its VJP runs the body's VJP backwards
    over them. Without ``max_steps`` ``grad`` raises a clear error. A loop that needs more than
    ``max_steps`` iterations raises :class:`MaxStepsExceeded`. The derivative with respect to
    the predicate is zero; the carry must keep its structure, shapes and dtypes.

    Example (Newton's method for √x, Example 5.5: stop once ``ε(s) = ½(s² − x)² ≤ τ``)::

        >>> import numpy as np, diffprog
        >>> sqrt = lambda x: diffprog.while_loop(lambda s: 0.5 * (s * s - x) ** 2 > 1e-6,
        ...                                      lambda s: 0.5 * (s + x / s), np.array(1.0),
        ...                                      max_steps=20)
        >>> round(float(sqrt(2.0)), 10)
        1.4142156863
        >>> round(float(diffprog.grad(sqrt)(np.array(2.0))), 6)   # ds_3/dx; 1/(2√2) = 0.353553
        0.353566
    """
    _check_callable("while_loop", "cond_fun", cond_fun)
    _check_callable("while_loop", "body_fun", body_fun)
    return _while("while_loop", "body_fun", cond_fun, body_fun, init_val, max_steps)


# ============================================================================ transposition


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


cond_p.transpose = _make_transpose(cond_p, _cond_vjp, False)
scan_p.transpose = _make_transpose(scan_p, _scan_vjp, False)
while_p.transpose = _make_transpose(while_p, _while_vjp, True)


# ============================================================================ batching rules


def _batch_size(args, dims):
    for a, d in zip(args, dims, strict=True):
        if d is not None:
            return _aval(a)[0][d]
    raise ValueError("control flow batching rule: no batched argument")


def _moveaxis(x, src, dst):
    if src == dst:
        return x
    if isinstance(x, Tracer):
        from ..numpy import moveaxis

        return moveaxis(x, src, dst)
    return np.moveaxis(x, src, dst)


def _broadcast_batch(x, size):
    s = _aval(x)[0]
    if isinstance(x, Tracer):
        from ..numpy import broadcast_to

        return broadcast_to(x, (size, *s))
    return np.broadcast_to(x, (size, *s))


def _batch_program(prog, in_dims, examples, context):
    """``prog`` vmapped over the inputs with ``in_dims`` (0 or None); every output batched at 0."""
    from .batching import vmap

    def fn(*ins):
        return list(vmap(lambda *a: tuple(prog(*a)), in_axes=tuple(in_dims), out_axes=0)(*ins))

    bp, consts, _ = _trace_flat(fn, [_example(e) for e in examples], context)
    assert not consts
    return bp


def _to_front(args, dims):
    return ([_moveaxis(a, d, 0) if d is not None else a for a, d in zip(args, dims, strict=True)],
            [0 if d is not None else None for d in dims])


def _cond_batch(args, dims, *, branches):
    size = _batch_size(args, dims)
    index, di = args[0], dims[0]
    ops, odims = _to_front(args[1:], dims[1:])
    if di is None:
        progs = tuple(_batch_program(p, odims, ops, "cond (vmap)") for p in branches)
        outs = cond_p.bind(index, *ops, branches=progs)
        return tuple(outs), (0,) * len(outs)
    from ..numpy import equal, reshape
    from .batching import vmap

    index = _moveaxis(index, di, 0)
    results = []
    for p in branches:
        if any(d is not None for d in odims):
            r = vmap(lambda *a, p=p: tuple(p(*a)), in_axes=tuple(odims), out_axes=0)(*ops)
        else:
            r = tuple(_broadcast_batch(o, size) for o in p(*ops))
        results.append(list(r))
    outs = results[-1]
    for k in range(len(branches) - 2, -1, -1):
        new = []
        for a, b in zip(results[k], outs, strict=True):
            nd = len(_aval(a)[0])
            c = reshape(equal(index, k), (size,) + (1,) * (nd - 1))
            new.append(_select(c, a, b))
        outs = new
    return tuple(outs), (0,) * len(outs)


cond_p.batch = _cond_batch
cond_index_p.batch = lambda args, dims, **p: (cond_index_p.bind(args[0], **p), dims[0])


def _scan_batch(args, dims, *, body, num_consts, num_carry, length, reverse, residuals=None):
    nc, ncar = num_consts, num_carry
    size = _batch_size(args, dims)
    consts, init, xs = _scan_split(args, nc, ncar)
    cdims, idims, xdims = _scan_split(dims, nc, ncar)
    consts, cdims = _to_front(consts, cdims)
    init = [_moveaxis(a, d, 0) if d is not None else _broadcast_batch(a, size)
            for a, d in zip(init, idims, strict=True)]
    xs = [_moveaxis(a, d, 1) if d is not None else a for a, d in zip(xs, xdims, strict=True)]
    xdims = [0 if d is not None else None for d in xdims]
    slices = [(_example(x)[0] if length else np.zeros(_aval(x)[0][1:], _aval(x)[1]))
              for x in xs]
    bbody = _batch_program(body, cdims + [0] * ncar + xdims,
                           [_example(c) for c in consts] + [_example(c) for c in init] + slices,
                           "scan (vmap)")
    # (the residual outputs of a body split for reverse mode are plain outputs here)
    outs = scan_p.bind(*consts, *init, *xs, body=bbody, num_consts=nc, num_carry=ncar,
                       length=length, reverse=reverse, residuals=None)
    ny = len(body.outputs) - ncar
    return tuple(outs), (0,) * ncar + (1,) * ny


scan_p.batch = _scan_batch


def _while_batch(args, dims, *, cond, body, num_cond_consts, num_body_consts, max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    size = _batch_size(args, dims)
    cc, bc, init = _while_split(args, ncc, nbc)
    ccd, bcd, idims = _while_split(dims, ncc, nbc)
    cc, ccd = _to_front(cc, ccd)
    bc, bcd = _to_front(bc, bcd)
    init = [_moveaxis(a, d, 0) if d is not None else _broadcast_batch(a, size)
            for a, d in zip(init, idims, strict=True)]
    ncar = len(init)
    ex_cc = [_example(c) for c in cc]
    ex_bc = [_example(c) for c in bc]
    ex_init = [_example(c) for c in init]
    bcond = _batch_program(cond, ccd + [0] * ncar, ex_cc + ex_init, "while_loop (vmap)")
    bbody = _batch_program(body, bcd + [0] * ncar, ex_bc + ex_init, "while_loop (vmap)")
    count0 = np.zeros(size, np.int64)  # per-member step counts (the residual n of each member)

    def any_active(*ins):
        from ..numpy import any as any_

        return [any_(bcond(*ins[:-1])[0])]

    def masked_body(*ins):
        from ..numpy import astype, reshape

        c, b = list(ins[:ncc]), list(ins[ncc:ncc + nbc])
        carry, count = list(ins[ncc + nbc:-1]), ins[-1]
        active = bcond(*c, *carry)[0]
        new = bbody(*b, *carry)
        out = []
        for a, old in zip(new, carry, strict=True):
            nd = len(_aval(a)[0])
            out.append(_select(reshape(active, (size,) + (1,) * (nd - 1)), a, old))
        return out + [count + astype(active, np.int64)]

    ncond, k1, _ = _trace_flat(any_active, ex_cc + ex_init + [count0], "while_loop (vmap)")
    nbody, k2, _ = _trace_flat(masked_body, ex_cc + ex_bc + ex_init + [count0],
                               "while_loop (vmap)")
    assert not k1 and not k2
    outs = while_p.bind(*cc, *cc, *bc, *init, count0, cond=ncond, body=nbody,
                        num_cond_consts=ncc, num_body_consts=ncc + nbc, max_steps=max_steps,
                        save=save)
    carry = tuple(outs[:ncar])
    if not save:
        return carry, (0,) * ncar
    # the member's own step count and visited states (rows past its last step repeat its
    # final state, as for an unbatched loop)
    saved = tuple(outs[ncar + 2:ncar + 2 + ncar])
    return carry + (outs[ncar],) + saved, (0,) * ncar + (0,) + (1,) * ncar


while_p.batch = _while_batch
