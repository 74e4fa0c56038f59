"""``jit``: trace a function once per signature, simplify its program, run it as straight-line code.

Book §8.3 (a program is a graph of primitives) and §8.4: ``jit`` is just another interpreter of
the IR. The first call with a given *signature* — the structure of the arguments, the shape and
dtype of every array, and the values of the static arguments — traces the function with abstract
tracers (:class:`JitTracer`: their values steer nothing, so a Python ``if`` on one raises and
points to :func:`diffprog.cond`), records its equations, removes dead code and common
subexpressions, and generates a Python function that calls each primitive's NumPy
implementation directly: no dispatch, no tracers, no per-operation bookkeeping. Later calls with
the same signature run that function.

Transformations compose in both orders. ``jit(grad(f))`` traces the whole gradient computation
(forward and backward pass) into one straight-line program. ``grad(jit(f))``, ``jvp(jit(f))``
and ``vmap(jit(f))`` replay the cached program equation by equation through ``bind``, so the
outer transformation sees ordinary primitives. Python side effects run at trace time only.

Programs whose values depend on data through Python (``if x > 0``, ``float(x)``) need the
control-flow primitives, or the argument marked static with ``static_argnums`` /
``static_argnames`` (one trace per distinct static value).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .ir import IRTrace, IRTracer, Program, Var
from .layout_fusion import concat_targets, layout_chains, matmul_into_layout
from .primitive import Tracer
from .pytree import tree_flatten

__all__ = ["jit", "JitTracer", "JitTrace", "Jitted"]

_CONTROL_FLOW_HINT = (
    "use diffprog.cond / diffprog.switch / diffprog.while_loop, or diffprog.numpy.where, "
    "instead of Python control flow on traced values, or mark the argument static with "
    "static_argnums / static_argnames"
)


class JitTracer(IRTracer):
    """An abstract traced value inside ``jit``: only its shape and dtype are meaningful."""

    __slots__ = ()
    concrete = False

    def __bool__(self):
        raise TypeError(f"jit: a traced value was used as a Python bool (an `if`?); "
                        f"{_CONTROL_FLOW_HINT}")

    def __float__(self):
        raise TypeError(f"jit: float() of a traced value; {_CONTROL_FLOW_HINT}")

    def __int__(self):
        raise TypeError(f"jit: int() of a traced value; {_CONTROL_FLOW_HINT}")

    def __index__(self):
        raise TypeError(f"jit: a traced value was used as a Python index; {_CONTROL_FLOW_HINT}")

    def item(self):
        raise TypeError(f"jit: .item() of a traced value; {_CONTROL_FLOW_HINT}")

    def tolist(self):
        raise TypeError(f"jit: .tolist() of a traced value; {_CONTROL_FLOW_HINT}")

    def __repr__(self):
        v = self.primal_value
        return f"JitTracer(shape={np.shape(v)}, dtype={np.result_type(v)})"


class JitTrace(IRTrace):
    __slots__ = ()
    tracer_cls = JitTracer


# ----------------------------------------------------------------------------- simplification


def _params_key(params):
    try:
        key = tuple(sorted((k, _hashable(v)) for k, v in params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def _hashable(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.dtype.str, v.tobytes()) if v.size <= 64 else ("id", id(v))
    if type(v) is tuple:
        return tuple(_hashable(x) for x in v)
    if type(v) is slice:
        return ("slice", v.start, v.stop, v.step)
    if type(v) is list:
        return ("list", tuple(_hashable(x) for x in v))
    return v


def _atom_key(a):
    return ("v", a.id) if type(a) is Var else ("c", id(a))


def simplify(prog: Program) -> Program:
    """Common-subexpression elimination, then dead-code elimination (outputs are live)."""
    rename: dict = {}
    seen: dict = {}
    eqns = []
    for eq in prog.eqns:
        inputs = [rename.get(a, a) if type(a) is Var else a for a in eq.inputs]
        eq.inputs = inputs
        if eq.dynamic:
            eq.params = {k: _rename_vars(v, rename) for k, v in eq.params.items()}
        pkey = None if eq.dynamic else _params_key(eq.params)
        if pkey is not None:
            key = (id(eq.prim), tuple(_atom_key(a) for a in inputs), pkey)
            prev = seen.get(key)
            if prev is not None:
                if type(eq.outvars) is tuple:
                    for v, p in zip(eq.outvars, prev.outvars, strict=True):
                        rename[v] = p
                else:
                    rename[eq.outvars] = prev.outvars
                continue
            seen[key] = eq
        eqns.append(eq)
    outputs = [rename.get(o, o) if type(o) is Var else o for o in prog.outputs]
    live = {o for o in outputs if type(o) is Var}
    kept = []
    for eq in reversed(eqns):
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        if not any(v in live for v in outs):
            continue
        kept.append(eq)
        for a in eq.inputs:
            if type(a) is Var:
                live.add(a)
        if eq.dynamic:
            _collect_vars(eq.params, live)
    kept.reverse()
    return Program(prog.invars, kept, outputs)


def _rename_vars(v, rename):
    if type(v) is Var:
        return rename.get(v, v)
    if type(v) is tuple:
        return tuple(_rename_vars(x, rename) for x in v)
    return v


def _collect_vars(v, acc):
    if type(v) is Var:
        acc.add(v)
    elif type(v) is tuple:
        for x in v:
            _collect_vars(x, acc)
    elif type(v) is dict:
        for x in v.values():
            _collect_vars(x, acc)


# ----------------------------------------------------------------------------- code generation


def compile_program(prog: Program) -> Callable:
    """Generate ``f(*inputs) -> list of outputs`` calling each primitive's implementation."""
    consts: list = []
    names: dict = {}

    def const(x):
        consts.append(x)
        return f"C[{len(consts) - 1}]"

    def atom(a):
        return names[a] if type(a) is Var else const(a)

    def param_expr(v):
        if type(v) is Var:
            return names[v]
        if type(v) is tuple:
            return "(" + "".join(param_expr(x) + ", " for x in v) + ")"
        return const(v)

    args = []
    for i, v in enumerate(prog.invars):
        names[v] = f"a{i}"
        args.append(f"a{i}")
    # liveness: free each intermediate right after its last use (book §8.1: memory is what the
    # remaining steps still need)
    last_use: dict = {}
    readers: dict = {}               # variable -> how many equations read it
    for k, eq in enumerate(prog.eqns):
        used: set = {a for a in eq.inputs if type(a) is Var}
        if eq.dynamic:
            _collect_vars(eq.params, used)
        for v in used:
            last_use[v] = k
            readers[v] = readers.get(v, 0) + 1
    outputs = {o for o in prog.outputs if type(o) is Var}
    dying: dict = {}
    for v, k in last_use.items():
        if v not in outputs:
            dying.setdefault(k, []).append(v)
    inplace = _inplace_plan(prog, last_use, outputs)
    chains = layout_chains(prog, outputs, last_use)
    skipped = {i for c in chains.values() for i in c[1]}
    concats = concat_targets(prog, chains, inplace, outputs, readers)
    allocate: dict = {}              # first producer -> the concatenation allocated before it
    out_kw: dict = {}                # producer -> "out=" its slice of the concatenation
    for ck, pieces in concats.items():
        allocate[min(p for p, _ in pieces)] = ck
        for p, idx in pieces:
            out_kw[p] = f"out=b{ck}[{const(idx)}]"
    lines = [f"def compiled({', '.join(args)}):"]
    for k, eq in enumerate(prog.eqns):
        if k in skipped:             # a transpose / reshape folded into its matmul's layout
            continue
        impl = eq.prim.impl
        if k in allocate:
            y = prog.eqns[allocate[k]].outvars.value
            alloc = const(functools.partial(np.empty, y.shape, y.dtype))
            lines.append(f"    b{allocate[k]} = {alloc}()")
        if k in concats:             # its pieces were written into its buffer
            names[eq.outvars] = f"v{eq.outvars.id}"
            lines.append(f"    {names[eq.outvars]} = b{k}")
            lines.append(f"    del {', '.join([f'b{k}'] + [names[v] for v in dying.get(k, ())])}")
            continue
        if k in chains:
            final, _, perm, swap, shape = chains[k]
            fn = const(functools.partial(matmul_into_layout, perm=perm, swap=swap, shape=shape))
            names[final] = f"v{final.id}"
            parts = [atom(a) for a in eq.inputs] + ([out_kw[k]] if k in out_kw else [])
            lines.append(f"    {names[final]} = {fn}({', '.join(parts)})")
            if k in dying:
                lines.append(f"    del {', '.join(names[v] for v in dying[k])}")
            continue
        if eq.params and not eq.dynamic:
            fn = const(functools.partial(impl, **eq.params))
            parts = [atom(a) for a in eq.inputs]
            if k in inplace:
                parts.append(f"out={names[inplace[k]]}")
            call = f"{fn}({', '.join(parts)})"
        else:
            fn = const(impl)
            kw = ", ".join(f"{k}={param_expr(v)}" for k, v in eq.params.items())
            parts = [atom(a) for a in eq.inputs] + ([kw] if kw else [])
            if k in inplace:
                parts.append(f"out={names[inplace[k]]}")
            elif k in out_kw:
                parts.append(out_kw[k])
            call = f"{fn}({', '.join(parts)})"
        if type(eq.outvars) is tuple:
            outs = []
            for v in eq.outvars:
                names[v] = f"v{v.id}"
                outs.append(names[v])
            lines.append(f"    {', '.join(outs)}, = {call}")
        else:
            names[eq.outvars] = f"v{eq.outvars.id}"
            lines.append(f"    {names[eq.outvars]} = {call}")
        if k in dying:
            lines.append(f"    del {', '.join(names[v] for v in dying[k])}")
    lines.append(f"    return [{', '.join(atom(o) for o in prog.outputs)}]")
    source = "\n".join(lines)
    namespace: dict = {"C": consts}
    exec(compile(source, "<diffprog.jit>", "exec"), namespace)
    compiled = namespace["compiled"]
    compiled.source = source
    compiled.inplace = inplace        # {equation index: the input whose buffer it writes into}
    compiled.layout_chains = chains   # {matmul index: (result, folded equations, perm, ...)}
    compiled.concats = concats        # {concatenate index: [(producer index, its slice), ...]}
    return compiled


#: below this size a fresh allocation is cheaper than passing ``out=`` to a ufunc
_INPLACE_MIN_BYTES = 1 << 16


def _inplace_plan(prog, last_use, outputs) -> dict:
    """Equations that may write their result into a dying input's buffer: ``{k: var}``.

    Single-output NumPy ufuncs qualify (into any input), and so do primitives that declare an
    ``inplace_arg`` (their first result into that input: the fused kernels of
    :mod:`diffprog.nn.primitives`). The buffer must belong to an intermediate that (a) was
    allocated fresh by a ufunc, a matrix product or such a primitive, (b) is not used after this
    equation, (c) shares its buffer with no variable still live (views are tracked
    conservatively: any other primitive's output may alias its inputs) and (d) has the result's
    shape and dtype. This is
    NumPy's temporary elision, decided once at compile time from the traced shapes, for arrays of
    at least 64 KiB (smaller ones are cheaper to allocate than to pass ``out=``).
    """
    fresh_prims = {"matmul", "einsum", "sum", "max", "min", "logsumexp"}
    buffers: dict = {}  # var -> frozenset of buffer ids
    holders: dict = {}  # buffer id -> vars that may refer to it
    plan: dict = {}
    from_matmul: dict = {}  # var -> True for matmul results (a fresh product, or its reshape)
    for k, eq in enumerate(prog.eqns):
        if eq.prim.name == "matmul" and type(eq.outvars) is Var:
            from_matmul[eq.outvars] = True
        impl = eq.prim.impl
        is_ufunc = isinstance(impl, np.ufunc) and impl.nout == 1 and not eq.params
        inplace_arg = eq.prim.inplace_arg
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        target = eq.outvars if type(eq.outvars) is Var else None
        if inplace_arg is not None and type(eq.outvars) is tuple:
            target = eq.outvars[0]        # a multiple-result primitive writes its first result
        if (is_ufunc or inplace_arg is not None) and target is not None:
            out_val = target.value
            candidates = eq.inputs if is_ufunc else eq.inputs[inplace_arg:inplace_arg + 1]
            for a in candidates:
                if type(a) is not Var or a in outputs or last_use.get(a) != k:
                    continue
                bufs = buffers.get(a)
                if bufs is None or len(bufs) != 1:
                    continue
                (b,) = bufs
                if any(v is not a and (v in outputs or last_use.get(v, -1) > k)
                       for v in holders[b]):
                    continue
                av = a.value
                if (isinstance(av, np.ndarray) and isinstance(out_val, np.ndarray)
                        and av.shape == out_val.shape and av.dtype == out_val.dtype
                        and av.flags.writeable
                        and (av.base is None or from_matmul.get(a, False))
                        and av.nbytes >= _INPLACE_MIN_BYTES):
                    plan[k] = a
                    break
        if k in plan:
            src = plan[k]
            buffers[target] = buffers[src]
            holders[next(iter(buffers[src]))].append(target)
            for v in outs:
                if v is not target:
                    b = len(holders)
                    holders[b] = [v]
                    buffers[v] = frozenset((b,))
            continue
        if is_ufunc or inplace_arg is not None or eq.prim.name in fresh_prims:
            for v in outs:
                b = len(holders)
                holders[b] = [v]
                buffers[v] = frozenset((b,))
        else:
            union = frozenset().union(*(buffers.get(a, frozenset()) for a in eq.inputs
                                        if type(a) is Var))
            for v in outs:
                buffers[v] = union
                for b in union:
                    holders[b].append(v)
    return plan


# ----------------------------------------------------------------------------- jit


class _Entry:
    __slots__ = ("program", "compiled", "out_def")

    def __init__(self, program, compiled, out_def):
        self.program = program
        self.compiled = compiled
        self.out_def = out_def


def _leaf_signature(x):
    if isinstance(x, (np.ndarray, np.generic)):   # a NumPy scalar promotes like a 0-d array
        return (x.shape, x.dtype)
    if isinstance(x, Tracer):
        v = x.primal_value
        return (np.shape(v), np.result_type(v))
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return (type(x), np.shape(x), np.result_type(x))
    return None


class Jitted:
    """A function compiled by :func:`jit`. ``trace_count`` counts the traces made so far."""

    def __init__(self, fun: Callable, static_argnums: tuple, static_argnames: tuple):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = static_argnums
        self.static_argnames = static_argnames
        self.trace_count = 0
        self._cache: dict = {}

    def _split(self, args, kwargs):
        nums = tuple(i % len(args) if -len(args) <= i < len(args) else i
                     for i in self.static_argnums)
        for i in nums:
            if not 0 <= i < len(args):
                raise ValueError(
                    f"jit: static_argnums={i} is out of range for a call with {len(args)} "
                    "positional argument(s)"
                )
        static = tuple((i, args[i]) for i in sorted(nums))
        static += tuple(sorted((k, kwargs[k]) for k in self.static_argnames if k in kwargs))
        dyn_args = [a for i, a in enumerate(args) if i not in nums]
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        try:
            hash(static)
        except TypeError:
            raise TypeError(
                "jit: static arguments must be hashable (they are part of the cache key)"
            ) from None
        return nums, static, dyn_args, dyn_kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        nums, static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, treedef = tree_flatten((dyn_args, dyn_kwargs))
        sig = []
        traced = False
        for i, x in enumerate(leaves):
            s = _leaf_signature(x)
            if s is None:
                raise TypeError(
                    f"jit: argument leaf {i} of type {type(x).__name__} is not an array or a "
                    "number; mark its argument static (static_argnums / static_argnames)"
                )
            if isinstance(x, Tracer):
                traced = True
            sig.append(s)
        key = (treedef, tuple(sig), static)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._trace(args, kwargs, nums, leaves, treedef)
            if entry.compiled is None:  # captured outer tracers: valid for this call only
                return entry.out_def.unflatten(entry.program(*leaves))
            self._cache[key] = entry
        if traced:
            return entry.out_def.unflatten(entry.program(*leaves))
        return entry.out_def.unflatten(entry.compiled(*leaves))

    def _trace(self, args, kwargs, nums, leaves, treedef):
        self.trace_count += 1
        trace = JitTrace()
        out_box = []

        def flat_fun(*ins):
            dyn_args, dyn_kwargs = treedef.unflatten(list(ins))
            it = iter(dyn_args)
            full = [args[i] if i in nums else next(it) for i in range(len(args))]
            full_kwargs = {**{k: kwargs[k] for k in self.static_argnames if k in kwargs},
                           **dyn_kwargs}
            out = self.fun(*full, **full_kwargs)
            out_leaves, out_def = tree_flatten(out)
            out_box.append(out_def)
            return out_leaves

        examples = [_example(x) for x in leaves]
        prog = Program.trace(flat_fun, examples, trace)
        out_def = out_box[0]
        captured = _has_captured_tracers(prog)
        prog = simplify(prog)
        compiled = None if captured else compile_program(prog)
        return _Entry(prog, compiled, out_def)

    def _entry_for(self, args, kwargs):
        nums, static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, treedef = tree_flatten((dyn_args, dyn_kwargs))
        return self._trace(args, kwargs, nums, leaves, treedef)

    def lower(self, *args: Any, **kwargs: Any) -> str:
        """The generated source of the program for these arguments (for inspection)."""
        return compile_program(self._entry_for(args, kwargs).program).source

    def graph(self, *args: Any, **kwargs: Any):
        """The simplified program for these arguments as a :class:`~diffprog.Graph` (book §8.3):
        what the compiled code runs, control-flow bodies as nested sub-graphs."""
        from .ir import Graph

        return Graph(self._entry_for(args, kwargs).program)


def _example(x):
    if isinstance(x, Tracer):
        return x.primal_value
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _has_captured_tracers(prog) -> bool:
    for eq in prog.eqns:
        for a in eq.inputs:
            if isinstance(a, Tracer):
                return True
    return any(isinstance(o, Tracer) for o in prog.outputs)


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = ()) -> Any:
    """Compile ``fun``: trace once per signature, simplify, run as straight-line NumPy code.

    Book §8.3–8.4 (the program as a graph of primitives, evaluated by another interpreter).
    ``static_argnums`` / ``static_argnames`` name arguments whose *values* are part of the
    signature (they may steer Python control flow); every other argument is traced by shape and
    dtype. Composes with every transformation in both orders. Usable as ``@jit`` or
    ``@jit(static_argnums=1)``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> f = diffprog.jit(diffprog.grad(lambda x: dnp.sum(dnp.sin(x) ** 2)))
        >>> bool(np.allclose(f(np.array([0.3])), np.sin(0.6)))
        True
        >>> f.trace_count
        1
    """
    if isinstance(static_argnums, (int, np.integer)):
        static_argnums = (int(static_argnums),)
    if isinstance(static_argnames, str):
        static_argnames = (static_argnames,)
    static_argnums = tuple(static_argnums)
    static_argnames = tuple(static_argnames)
    if fun is None:
        return lambda f: Jitted(f, static_argnums, static_argnames)
    if not callable(fun):
        raise TypeError(f"jit: expected a function, got {type(fun).__name__}")
    return Jitted(fun, static_argnums, static_argnames)
