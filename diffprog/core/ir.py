"""The IR: a program as an ordered list of equations over variables (book §4.1, §8.3).

Tracing a function with :class:`IRTrace` records every primitive application as an
:class:`Equation` ``outvar = prim(inputs; params)``, where an input is a :class:`Var` (an output
of an earlier equation or a program input) or a constant. Tracing is *concrete*: each traced
value also carries an example array, so shapes and dtypes come from running the primitive's
implementation rather than from a separate shape rule. The equation list is in topological
order by construction.

The IR is the one representation shared by :func:`make_graph` (the program's DAG, drawn as in
Fig. 8.9), :func:`diffprog.linearize` (the linear tangent program),
:func:`diffprog.linear_transpose` and the JVP-only reverse-mode fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .primitive import Trace, Tracer, UndefinedPrimal, thread_state
from .pytree import tree_flatten

__all__ = ["IRTrace", "IRTracer", "Var", "Equation", "Program", "Graph", "make_graph"]


class Var:
    """A variable of the IR; ``value`` is the example value it had while tracing."""

    __slots__ = ("id", "value")

    def __init__(self, id, value):
        self.id = id
        self.value = value

    def __repr__(self):
        return f"v{self.id}"


class Equation:
    """``outvars = prim(inputs; params)``; ``outvars`` is one Var, or a tuple for multi-result.

    ``dynamic`` marks parameters that contain variables (e.g. an index array computed by the
    program); they are resolved when the equation is evaluated.
    """

    __slots__ = ("prim", "inputs", "params", "outvars", "dynamic")

    def __init__(self, prim, inputs, params, outvars, dynamic=False):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outvars = outvars
        self.dynamic = dynamic

    def resolve_params(self, env) -> dict:
        """The parameters with their variables replaced by values from ``env``."""
        if not self.dynamic:
            return self.params
        return {k: _subst_vars(v, env) for k, v in self.params.items()}


def _subst_vars(v, env):
    if type(v) is Var:
        return env[v]
    if type(v) is tuple:
        return tuple(_subst_vars(x, env) for x in v)
    return v


def _own_tracer_in(v, trace) -> bool:
    if isinstance(v, Tracer):
        return v._trace is trace
    if type(v) is tuple:
        return any(_own_tracer_in(x, trace) for x in v)
    return False


def _split_tracers(v, trace, attr):
    if isinstance(v, Tracer) and v._trace is trace:
        return getattr(v, attr)
    if type(v) is tuple:
        return tuple(_split_tracers(x, trace, attr) for x in v)
    return v

    def __repr__(self):
        args = ", ".join(repr(a) if isinstance(a, Var) else "const" for a in self.inputs)
        return f"{self.outvars!r} = {self.prim.name}({args})"


class IRTracer(Tracer):
    __slots__ = ("value", "var")

    def __init__(self, trace, value, var):
        self._trace = trace
        self.value = value
        self.var = var


class IRTrace(Trace):
    __slots__ = ("eqns", "_count")

    #: the class of the tracers this trace creates
    tracer_cls = IRTracer

    def __init__(self):
        super().__init__()
        self.eqns = []
        self._count = 0

    def new_var(self, value):
        self._count += 1
        return Var(self._count, value)

    def new_input(self, value):
        return self.tracer_cls(self, value, self.new_var(value))

    def example_of(self, a):
        """The value used to compute the example output for a foreign argument ``a`` (an
        enclosing transformation's tracer, or a constant): ``a`` itself here."""
        return a

    def split_params(self, params):
        """``(recorded params, params for the example computation, dynamic?)``: tracers of
        this trace inside the parameters become variables of the recorded equation."""
        for v in params.values():
            if _own_tracer_in(v, self):
                return ({k: _split_tracers(v, self, "var") for k, v in params.items()},
                        {k: _split_tracers(v, self, "value") for k, v in params.items()}, True)
        return params, params, False

    def process(self, prim, args, params):
        inputs = []
        vals = []
        for a in args:
            if isinstance(a, Tracer) and a._trace is self:
                inputs.append(a.var)
                vals.append(a.value)
            else:
                inputs.append(a)
                vals.append(self.example_of(a))
        record, dynamic = params, False
        if params:
            record, params, dynamic = self.split_params(params)
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


class Program:
    """A traced program: input variables, equations and outputs (Vars or constants)."""

    __slots__ = ("invars", "eqns", "outputs")

    def __init__(self, invars, eqns, outputs):
        self.invars = invars
        self.eqns = eqns
        self.outputs = outputs

    @classmethod
    def trace(cls, fn: Callable, example_inputs: list, trace: IRTrace | None = None) -> Program:
        """Trace ``fn(*inputs) -> list of outputs`` (flat lists) on example values."""
        trace = trace or IRTrace()
        with trace:
            ins = [trace.new_input(x) for x in example_inputs]
            outs = fn(*ins)
        outputs = [o.var if (isinstance(o, Tracer) and o._trace is trace) else o for o in outs]
        return cls([t.var for t in ins], trace.eqns, outputs)

    def __call__(self, *args):
        """Evaluate the program on new inputs (with ``bind``: the evaluation nests)."""
        env = dict(zip(self.invars, args, strict=True))
        for eq in self.eqns:
            vals = [env[a] if type(a) is Var else a for a in eq.inputs]
            ans = eq.prim.bind(*vals, **eq.resolve_params(env))
            if type(eq.outvars) is tuple:
                for v, a in zip(eq.outvars, ans, strict=True):
                    env[v] = a
            else:
                env[eq.outvars] = ans
        return [env[o] if type(o) is Var else o for o in self.outputs]

    def transpose(self, cts: list, zeros: Callable) -> list:
        """Evaluate the transpose of this (linear) program on output cotangents ``cts``.

        Every equation that touches an input-dependent variable must be linear in those
        variables and have a transpose rule (book §8.4.4). Returns one cotangent per input.
        """
        linear = set(self.invars)
        for eq in self.eqns:
            lin = [type(a) is Var and a in linear for a in eq.inputs]
            if any(lin):
                if eq.prim.transpose is None:
                    raise TypeError(
                        f"linear_transpose: the program is not linear in its inputs: primitive "
                        f"'{eq.prim.name}' has no transpose rule (it is not linear)"
                    )
                if type(eq.outvars) is tuple:
                    linear.update(eq.outvars)
                else:
                    linear.add(eq.outvars)
        ct_env: dict = {}
        for o, c in zip(self.outputs, cts, strict=True):
            if type(o) is Var and o in linear and c is not None:
                ct_env[o] = c if o not in ct_env else ct_env[o] + c
        env = {}  # values of non-linear variables (computed forward)
        for eq in self.eqns:
            if type(eq.outvars) is not tuple and eq.outvars in linear:
                continue
            if type(eq.outvars) is tuple and eq.outvars[0] in linear:
                continue
            vals = [env.get(a, a) if type(a) is Var else a for a in eq.inputs]
            ans = eq.prim.bind(*vals, **eq.resolve_params(env))
            if type(eq.outvars) is tuple:
                env.update(zip(eq.outvars, ans, strict=True))
            else:
                env[eq.outvars] = ans
        for eq in reversed(self.eqns):
            outv = eq.outvars
            if type(outv) is tuple:
                if outv[0] not in linear:
                    continue
                ct = [ct_env.pop(v, None) for v in outv]
                if all(c is None for c in ct):
                    continue
                ct = tuple(zeros(v.value) if c is None else c
                           for c, v in zip(ct, outv, strict=True))
            else:
                if outv not in linear:
                    continue
                ct = ct_env.pop(outv, None)
                if ct is None:
                    continue
            args = []
            for a in eq.inputs:
                if type(a) is Var:
                    if a in linear:
                        args.append(UndefinedPrimal(np.shape(a.value), np.result_type(a.value)))
                    else:
                        args.append(env[a])
                else:
                    args.append(a)
            in_cts = eq.prim.transpose(ct, *args, **eq.resolve_params(env))
            for a, c in zip(eq.inputs, in_cts, strict=True):
                if c is None or type(a) is not Var or a not in linear:
                    continue
                ct_env[a] = c if a not in ct_env else ct_env[a] + c
        return [ct_env.get(v) for v in self.invars]


class Node:
    """A node of a :class:`Graph`: ``index``, ``name`` (primitive or "input"), ``parents``,
    ``children`` (node indices), ``value`` (the value traced) and ``subgraphs``: for a
    control-flow primitive, the graphs of the programs it runs (branches, loop bodies), by
    parameter name (a nested DAG, book §8.4.2)."""

    __slots__ = ("index", "name", "parents", "children", "value", "params", "subgraphs")

    def __init__(self, index, name, parents, value, params):
        self.index = index
        self.name = name
        self.parents = parents
        self.children = []
        self.value = value
        self.params = params
        self.subgraphs = {}
        for key, v in (params or {}).items():
            progs = [v] if isinstance(v, Program) else (
                list(v) if type(v) in (tuple, list) and v and all(
                    isinstance(p, Program) for p in v) else [])
            for i, p in enumerate(progs):
                self.subgraphs[key if len(progs) == 1 else f"{key}[{i}]"] = Graph(p)

    def __repr__(self):
        return f"Node({self.index}: {self.name}, parents={self.parents})"


class Graph:
    """A program drawn as a DAG (book §8.3): nodes in topological order, each with its parents.

    Inputs come first (``name == "input"``); each later node is one primitive application
    ``s_k = f_k(s_pa(k))`` (constants are attributes, not nodes). :meth:`jvp` and :meth:`vjp` run
    Algorithms 8.4 and 8.5 on the graph and expose the per-node tangents and accumulated
    cotangents (with each edge's contribution ``r_{i->k}``).

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> g = diffprog.make_graph(lambda x: dnp.exp(x) * x, 1.0)
        >>> g.parents(2), g.num_edges
        ([1, 0], 3)
        >>> r, contrib = g.vjp(np.array(1.0))   # r[0] = e + e = 2e
        >>> bool(np.isclose(r[0], 2 * np.e))
        True
    """

    def __init__(self, program: Program):
        self.program = program
        self.nodes: list[Node] = []
        index = {}
        for v in program.invars:
            index[v] = len(self.nodes)
            self.nodes.append(Node(len(self.nodes), "input", [], v.value, {}))
        for eq in program.eqns:
            parents = []
            for a in eq.inputs:
                if type(a) is Var and index[a] not in parents:
                    parents.append(index[a])
            k = len(self.nodes)
            outv = eq.outvars
            value = tuple(v.value for v in outv) if type(outv) is tuple else outv.value
            self.nodes.append(Node(k, eq.prim.name, parents, value, eq.params))
            for v in outv if type(outv) is tuple else (outv,):
                index[v] = k
            for p in parents:
                self.nodes[p].children.append(k)
        self._index = index
        self.outputs = [index[o] if type(o) is Var else None for o in program.outputs]

    @property
    def num_edges(self) -> int:
        """Size of the circuit (Def. 4.1): the number of edges of the DAG."""
        return sum(len(n.parents) for n in self.nodes)

    def parents(self, k: int) -> list[int]:
        """pa(k): the parents of node k."""
        return list(self.nodes[k].parents)

    def to_dot(self, name: str = "program") -> str:
        """The graph in Graphviz DOT format; sub-programs of control-flow nodes are clusters."""
        lines = [f"digraph {name} {{", "  rankdir=LR;", "  compound=true;"]
        self._dot_body(lines, "n", "  ")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _dot_body(self, lines, prefix, indent):
        for n in self.nodes:
            shape = "box" if n.name == "input" else "ellipse"
            lines.append(f'{indent}{prefix}{n.index} [label="{n.index}: {n.name}", '
                         f"shape={shape}];")
            for j, (key, sub) in enumerate(n.subgraphs.items()):
                sp = f"{prefix}{n.index}_{j}_"
                lines.append(f"{indent}subgraph cluster_{sp} {{")
                lines.append(f'{indent}  label="{n.name}: {key}"; style=dashed;')
                sub._dot_body(lines, sp, indent + "  ")
                lines.append(f"{indent}}}")
        for n in self.nodes:
            for p in n.parents:
                lines.append(f"{indent}{prefix}{p} -> {prefix}{n.index};")

    def __repr__(self):
        return "Graph(\n" + "\n".join(f"  {n!r}" for n in self.nodes) + "\n)"

    def _edge_vjps(self, cts_out):
        """Alg. 8.5 with the bookkeeping exposed: returns (node cotangents, edge contributions)."""
        from ..numpy import zeros_like
        from .reverse import ReverseTrace, backward

        prog = self.program
        trace = ReverseTrace()
        node_of = {}
        with trace:
            env = {}
            ins = []
            for k, v in enumerate(prog.invars):
                env[v] = trace.new_input(v.value)
                ins.append(env[v])
                node_of[id(env[v])] = k
            out_index = {}  # id(projection tracer) -> output index of a multiple-result node
            for eq in prog.eqns:
                vals = [env[a] if type(a) is Var else a for a in eq.inputs]
                ans = eq.prim.bind(*vals, **eq.resolve_params(env))
                if type(eq.outvars) is tuple:
                    k = self._index[eq.outvars[0]]
                    for i, (v, a) in enumerate(zip(eq.outvars, ans, strict=True)):
                        env[v] = a
                        if isinstance(a, Tracer):
                            node_of[id(a)] = k
                            node_of[id(a.parents)] = k  # the node holding all the outputs
                            out_index[id(a)] = i
                else:
                    env[eq.outvars] = ans
                    if isinstance(ans, Tracer):
                        node_of[id(ans)] = self._index[eq.outvars]
            outs = [env[o] if type(o) is Var else o for o in prog.outputs]
        r = [[None] * len(n.value) if type(n.value) is tuple else None for n in self.nodes]
        contrib: dict[tuple, Any] = {}

        def add(j, i, c):
            if i is None:
                r[j] = c if r[j] is None else r[j] + c
            else:
                r[j][i] = c if r[j][i] is None else r[j][i] + c

        seeds = []
        for o, c in zip(outs, cts_out, strict=True):
            if isinstance(o, Tracer):
                seeds.append((o, c))
                add(node_of[id(o)], out_index.get(id(o)), c)

        def on_edge(parent, node, c):
            j, k, i = node_of[id(parent)], node_of[id(node)], out_index.get(id(parent))
            key = (j, k) if i is None else (j, k, i)
            contrib[key] = c if key not in contrib else contrib[key] + c
            add(j, i, c)

        backward(trace.finish(), seeds, ins, on_edge)
        r = [tuple(zeros_like(a) if c is None else c for c, a in zip(x, n.value, strict=True))
             if type(n.value) is tuple else (zeros_like(n.value) if x is None else x)
             for x, n in zip(r, self.nodes, strict=True)]
        return r, contrib

    def vjp(self, *cts_out):
        """Reverse mode on the graph (Alg. 8.5). Returns ``(r, contrib)``: ``r[k]`` is node k's
        accumulated cotangent (a tuple for a node with several outputs) and ``contrib[(i, k)]``
        is ``r_{i->k}`` (``contrib[(i, k, o)]`` for output ``o`` of a several-output node ``i``),
        so that ``r[i] == sum(contrib[(i, k)] for k in ch(i))``."""
        return self._edge_vjps(list(cts_out))

    def jvp(self, *tangents_in):
        """Forward mode on the graph (Alg. 8.4): returns the tangent ``t[k]`` of every node."""
        from ..numpy import zeros_like
        from .forward import JVPTrace, JVPTracer

        prog = self.program
        trace = JVPTrace()
        t = [None] * len(self.nodes)
        with trace:
            env = {}
            for i, (v, tv) in enumerate(zip(prog.invars, tangents_in, strict=True)):
                env[v] = JVPTracer(trace, v.value, tv)
                t[i] = tv
            for eq in prog.eqns:
                vals = [env[a] if type(a) is Var else a for a in eq.inputs]
                ans = eq.prim.bind(*vals, **eq.resolve_params(env))
                k = self._index[eq.outvars if type(eq.outvars) is not tuple else eq.outvars[0]]
                if type(eq.outvars) is tuple:
                    env.update(zip(eq.outvars, ans, strict=True))
                    t[k] = tuple(a.tangent if isinstance(a, JVPTracer) else zeros_like(a)
                                 for a in ans)
                else:
                    env[eq.outvars] = ans
                    t[k] = ans.tangent if isinstance(ans, JVPTracer) else zeros_like(ans)
        return t


def make_graph(fn: Callable, *args: Any) -> Graph:
    """Trace ``fn(*args)`` into its computation graph (book §4.1, §8.3, Example 8.2).

    Inputs may be pytrees; each array leaf becomes an input node. The nodes of the returned
    :class:`Graph` are in topological order, each with its parents ``pa(k)``; ``to_dot()``
    exports Graphviz DOT.

    Example::

        >>> import diffprog, diffprog.numpy as dnp
        >>> g = diffprog.make_graph(lambda x: dnp.sin(x) * x, 1.0)
        >>> [(n.name, n.parents) for n in g.nodes]
        [('input', []), ('sin', [0]), ('multiply', [1, 0])]
    """
    from .reverse import as_primal_array

    leaves, treedef = tree_flatten(args)
    leaves = [as_primal_array(x) for x in leaves]

    def flat_fn(*ins):
        out = fn(*treedef.unflatten(ins))
        return tree_flatten(out)[0]

    return Graph(Program.trace(flat_fn, leaves))


def current_stack_depth() -> int:
    return len(thread_state.stack)
