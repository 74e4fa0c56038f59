r"""Programs as chains and DAGs (Book §4.1): Algorithm 4.1 and its graph tools.

* :func:`chain` — a computation chain ``f_K ∘ … ∘ f_1`` (§4.1.1).
* :class:`DAG` — a directed graph with ``pa``, ``ch``, roots, leaves, paths and a cycle test
  (§4.1.2). (Named ``DAG`` so as not to clash with :class:`diffprog.Graph`, the engine's traced
  graph.) :func:`topological_sort`, :func:`is_topological_order` and
  :func:`all_topological_orders` order its nodes.
* :class:`Program` and :func:`execute` — a program as functions ``f_k`` with parents
  ``pa(k)``, run by Algorithm 4.1 in topological order (§4.1.3). A parent reference is a node
  ``i`` or a pair ``(i, j)`` selecting component ``j`` of a tuple-valued ``s_i``: several
  program inputs are grouped into ``s_0 = (s_{0,1}, …)`` and multi-output functions return
  tuples that children "filter" (§4.1.3, "Dealing with multiple program inputs or outputs").
* :func:`trace_to_graph` — a Python function traced by the engine's IR
  (:func:`diffprog.make_graph`, simplified by the jit's common-subexpression and dead-code
  passes) and returned as a :class:`Program` of primitives.
* :class:`BipartiteProgram`, :func:`to_bipartite`, :func:`from_bipartite` — the bipartite
  representation with separate function and variable nodes (§4.1.3, Fig. 4.4), in which a
  function may have several output variables.

Programs must be pure and halting (§4.1.3); Node ``0`` is the input. Nodes need not be numbered
in topological order: :class:`Program` sorts them once (a cycle raises ``ValueError``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from ..core.ir import Var, make_graph
from ..core.jit import simplify
from ..core.pytree import tree_flatten

__all__ = [
    "chain",
    "DAG",
    "topological_sort",
    "is_topological_order",
    "all_topological_orders",
    "Program",
    "execute",
    "trace_to_graph",
    "BipartiteProgram",
    "to_bipartite",
    "from_bipartite",
]

Ref = int | tuple[int, Any]


# ----------------------------------------------------------------------------- chains (§4.1.1)


def chain(*fns: Callable[[Any], Any]) -> Callable[[Any], Any]:
    r"""The computation chain ``f(s_0) = (f_K ∘ … ∘ f_1)(s_0)`` (Book §4.1.1, Eq. 4.1).

    ``s_k := f_k(s_{k−1})``, in the order given (``f_1`` first). Differentiable when every
    ``f_k`` is, with Jacobian the product ``∂f_K ⋯ ∂f_1`` (the chain rule).

    Example::

        >>> import numpy as np
        >>> float(chain(np.sin, np.exp)(0.3)) == float(np.exp(np.sin(0.3)))
        True
    """
    if not fns:
        raise ValueError("chain: needs at least one function f_1, ..., f_K")
    for k, f in enumerate(fns, 1):
        if not callable(f):
            raise TypeError(f"chain: argument f_{k} must be callable, got {type(f).__name__}")

    def chained(s0: Any) -> Any:
        s = s0
        for f in fns:
            s = f(s)
        return s

    chained.__name__ = "chain(" + ", ".join(getattr(f, "__name__", "f") for f in fns) + ")"
    chained.__doc__ = "Computation chain (Book §4.1.1)."
    return chained


# ----------------------------------------------------------------------------- DAGs (§4.1.2)


class DAG:
    r"""A directed graph ``G = (V, E)`` (Book §4.1.2); a DAG when :meth:`is_acyclic`.

    ``pa(j) = {i : i → j}``, ``ch(i) = {j : i → j}``; roots have no parents, leaves no children.
    Nodes are hashable labels (kept in the order given); ``edges`` are distinct pairs ``(i, j)``
    meaning ``i → j``. The graph is immutable: :meth:`with_edges` returns a new one.

    Example (Fig. 4.2)::

        >>> g = DAG(range(5), [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (1, 4), (3, 4)])
        >>> g.parents(3), g.children(1), g.roots(), g.leaves(), g.is_acyclic()
        ([0, 1, 2], [3, 4], [0], [4], True)
    """

    __slots__ = ("_nodes", "_edges", "_pa", "_ch")

    def __init__(self, nodes: Iterable[Hashable], edges: Iterable[tuple[Hashable, Hashable]]):
        node_list = list(nodes)
        pa: dict = {}
        for v in node_list:
            try:
                if v in pa:
                    raise ValueError(f"DAG: argument 'nodes' has the node {v!r} twice")
            except TypeError:
                raise TypeError(f"DAG: nodes must be hashable, got {v!r}") from None
            pa[v] = []
        ch: dict = {v: [] for v in node_list}
        edge_list = []
        seen = set()
        for e in edges:
            if not (isinstance(e, tuple) and len(e) == 2):
                raise TypeError(f"DAG: each edge must be a pair (i, j), got {e!r}")
            i, j = e
            for v in (i, j):
                if v not in pa:
                    raise ValueError(f"DAG: edge {e!r} uses {v!r}, which is not a node")
            if e in seen:
                raise ValueError(f"DAG: the edge {e!r} is given twice")
            seen.add(e)
            edge_list.append(e)
            pa[j].append(i)
            ch[i].append(j)
        self._nodes = tuple(node_list)
        self._edges = tuple(edge_list)
        self._pa = pa
        self._ch = ch

    @property
    def nodes(self) -> tuple:
        """The vertices ``V``, in the order given (Book §4.1.2).

        Example::

            >>> DAG("ab", [("a", "b")]).nodes
            ('a', 'b')
        """
        return self._nodes

    @property
    def edges(self) -> tuple:
        """The edges ``E`` as pairs ``(i, j)`` (``i → j``), in the order given (Book §4.1.2).

        Example::

            >>> DAG("ab", [("a", "b")]).edges
            (('a', 'b'),)
        """
        return self._edges

    @property
    def num_edges(self) -> int:
        """``|E|`` (for an arithmetic circuit, its size, Book §4.1.4 Def. 4.1).

        Example::

            >>> DAG(range(3), [(0, 1), (1, 2)]).num_edges
            2
        """
        return len(self._edges)

    def _check(self, v: Hashable, name: str) -> None:
        if v not in self._pa:
            raise ValueError(f"DAG.{name}: {v!r} is not a node of the graph")

    def parents(self, j: Hashable) -> list:
        """``pa(j) = {i : i → j}``, in edge order (Book §4.1.2).

        Example::

            >>> DAG(range(3), [(0, 2), (1, 2)]).parents(2)
            [0, 1]
        """
        self._check(j, "parents")
        return list(self._pa[j])

    def children(self, i: Hashable) -> list:
        """``ch(i) = {j : i → j}``, in edge order (Book §4.1.2).

        Example::

            >>> DAG(range(3), [(0, 2), (0, 1)]).children(0)
            [2, 1]
        """
        self._check(i, "children")
        return list(self._ch[i])

    def roots(self) -> list:
        """The nodes without parents (Book §4.1.2).

        Example::

            >>> DAG(range(3), [(0, 2), (1, 2)]).roots()
            [0, 1]
        """
        return [v for v in self._nodes if not self._pa[v]]

    def leaves(self) -> list:
        """The nodes without children (Book §4.1.2).

        Example::

            >>> DAG(range(3), [(0, 2), (1, 2)]).leaves()
            [2]
        """
        return [v for v in self._nodes if not self._ch[v]]

    def has_path(self, i: Hashable, j: Hashable) -> bool:
        """Whether a path ``i → j_1 → … → j_m → j`` (at least one edge) exists (Book §4.1.2).

        ``has_path(i, i)`` is true only on a cycle through ``i``.

        Example::

            >>> g = DAG(range(3), [(0, 1), (1, 2)])
            >>> g.has_path(0, 2), g.has_path(2, 0), g.has_path(0, 0)
            (True, False, False)
        """
        self._check(i, "has_path")
        self._check(j, "has_path")
        stack = list(self._ch[i])
        seen = set()
        while stack:
            v = stack.pop()
            if v == j:
                return True
            if v not in seen:
                seen.add(v)
                stack.extend(self._ch[v])
        return False

    def is_acyclic(self) -> bool:
        """Whether no node has a path to itself (Book §4.1.2).

        Example::

            >>> DAG(range(2), [(0, 1), (1, 0)]).is_acyclic()
            False
        """
        return _kahn(self)[1] is None

    def with_edges(self, *edges: tuple[Hashable, Hashable]) -> DAG:
        """A new graph with the same nodes and ``edges`` added (Book §4.1.2).

        Example::

            >>> DAG(range(2), [(0, 1)]).with_edges((1, 0)).is_acyclic()
            False
        """
        return DAG(self._nodes, self._edges + tuple(edges))

    def __repr__(self) -> str:
        return f"DAG(nodes={list(self._nodes)!r}, edges={list(self._edges)!r})"


def _kahn(graph: DAG) -> tuple[list, list | None]:
    """Kahn's algorithm, first-given node first: ``(order, None)`` or ``(partial, cyclic)``."""
    pos = {v: k for k, v in enumerate(graph.nodes)}
    indeg = {v: len(graph._pa[v]) for v in graph.nodes}
    ready = [v for v in graph.nodes if indeg[v] == 0]
    order = []
    while ready:
        ready.sort(key=pos.__getitem__, reverse=True)
        v = ready.pop()
        order.append(v)
        for c in graph._ch[v]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) < len(graph.nodes):
        return order, [v for v in graph.nodes if indeg[v] > 0]
    return order, None


def _check_graph(fname: str, graph: Any) -> None:
    if not isinstance(graph, DAG):
        raise TypeError(f"{fname}: argument 'graph' must be a DAG, got {type(graph).__name__}")


def topological_sort(graph: DAG) -> tuple:
    """A topological order: ``i`` before ``j`` whenever a path ``i → … → j`` exists (Book §4.1.2).

    Kahn's algorithm in O(|V| + |E|); among the available nodes the one given first wins, so an
    already-sorted node list is returned unchanged. A cycle raises ``ValueError`` (§4.1.3: a
    program must be a DAG).

    Example::

        >>> topological_sort(DAG([2, 0, 1], [(0, 1), (1, 2)]))
        (0, 1, 2)
    """
    _check_graph("topological_sort", graph)
    order, cyclic = _kahn(graph)
    if cyclic is not None:
        raise ValueError(f"topological_sort: the graph has a cycle through the nodes {cyclic!r}")
    return tuple(order)


def is_topological_order(graph: DAG, order: Sequence[Hashable]) -> bool:
    """Whether ``order`` lists every node once with ``i`` before ``j`` for each edge (Book §4.1.2).

    Example::

        >>> g = DAG(range(3), [(0, 1), (0, 2)])
        >>> is_topological_order(g, (0, 2, 1)), is_topological_order(g, (1, 0, 2))
        (True, False)
    """
    _check_graph("is_topological_order", graph)
    order = list(order)
    if len(order) != len(graph.nodes) or set(order) != set(graph.nodes):
        return False
    pos = {v: k for k, v in enumerate(order)}
    return all(pos[i] < pos[j] for i, j in graph.edges)


def all_topological_orders(graph: DAG) -> list[tuple]:
    """Every topological order of ``graph``, by backtracking (Book §4.1.2; a testing aid).

    Exponential in general (``n!`` orders for ``n`` unconnected nodes). A cycle raises
    ``ValueError``.

    Example (Fig. 4.2 has exactly two)::

        >>> g = DAG(range(5), [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (1, 4), (3, 4)])
        >>> all_topological_orders(g)
        [(0, 1, 2, 3, 4), (0, 2, 1, 3, 4)]
    """
    _check_graph("all_topological_orders", graph)
    topological_sort(graph)  # raises on a cycle
    indeg = {v: len(graph._pa[v]) for v in graph.nodes}
    out: list[tuple] = []
    prefix: list = []

    def extend() -> None:
        if len(prefix) == len(graph.nodes):
            out.append(tuple(prefix))
            return
        for v in graph.nodes:
            if indeg[v] == 0:
                indeg[v] = -1
                for c in graph._ch[v]:
                    indeg[c] -= 1
                prefix.append(v)
                extend()
                prefix.pop()
                for c in graph._ch[v]:
                    indeg[c] += 1
                indeg[v] = 0

    extend()
    return out


# ----------------------------------------------------------------------------- programs (§4.1.3)


def _ref_node(ref: Any) -> int:
    return ref[0] if isinstance(ref, tuple) else ref


def _check_ref(ref: Any, k: int, n: int) -> None:
    node = _ref_node(ref) if isinstance(ref, tuple) and len(ref) == 2 else ref
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node <= n:
        raise ValueError(f"Program: parent {ref!r} of node {k} must be a node index in [0, {n}] "
                         "or a pair (node, component)")
    if node == k:
        raise ValueError(f"Program: node {k} cannot be its own parent")


class Program:
    r"""A program ``s_k := f_k(s_{pa(k)})``, ``k = 1, …, K`` (Book §4.1.3, Algorithm 4.1).

    ``fns[k − 1]`` is ``f_k`` and ``parents[k − 1]`` lists ``pa(k)`` in argument order; a parent
    is a node ``i ∈ {0, …, K}`` (node 0 is the input ``s_0``) or a pair ``(i, j)`` meaning the
    component ``s_i[j]`` of a tuple (or dict) valued ``s_i``. ``output`` is the output node
    (default ``K``; a tuple of nodes gives a tuple of outputs). The nodes need not be in
    topological order: the constructor sorts them (:attr:`order`) and rejects cycles.

    Example (Fig. 4.3)::

        >>> import diffprog.numpy as dnp
        >>> P = Program([lambda s: dnp.exp(s[0]), lambda s, e: s[1] * e,
        ...              lambda s, a: s[0] + a, dnp.sqrt, lambda a, r: a * r],
        ...             [(0,), (0, 1), (0, 2), (3,), (2, 4)])
        >>> float(execute(P, (0.0, 1.0)))
        1.0
    """

    __slots__ = ("fns", "parents", "output", "order", "names")

    def __init__(self, fns: Sequence[Callable[..., Any]], parents: Sequence[Sequence[Ref]],
                 output: int | tuple[int, ...] | None = None,
                 names: Sequence[str] | None = None):
        fns = tuple(fns)
        parents = tuple(tuple(p) for p in parents)
        n = len(fns)
        if n == 0:
            raise ValueError("Program: needs at least one function f_1")
        if len(parents) != n:
            raise ValueError(f"Program: argument 'parents' must have one entry per function "
                             f"({n}), got {len(parents)}")
        for k, (f, pa) in enumerate(zip(fns, parents, strict=True), 1):
            if not callable(f):
                raise TypeError(f"Program: f_{k} must be callable, got {type(f).__name__}")
            for ref in pa:
                _check_ref(ref, k, n)
        if output is None:
            output = n
        outs = output if isinstance(output, tuple) else (output,)
        for o in outs:
            if isinstance(o, bool) or not isinstance(o, int) or not 0 <= o <= n:
                raise ValueError(f"Program: argument 'output' must be node indices in [0, {n}], "
                                 f"got {output!r}")
        if names is not None and len(names) != n + 1:
            raise ValueError(f"Program: argument 'names' must name the {n + 1} nodes 0..{n}")
        self.fns = fns
        self.parents = parents
        self.output = output
        self.names = tuple(names) if names is not None else tuple(f"s{k}" for k in range(n + 1))
        try:
            self.order = topological_sort(self.graph)
        except ValueError as exc:
            raise ValueError(f"Program: the dependencies are not acyclic ({exc})") from None

    @property
    def num_functions(self) -> int:
        """``K``, the number of functions ``f_1, …, f_K`` (Book §4.1.3).

        Example::

            >>> Program([abs], [(0,)]).num_functions
            1
        """
        return len(self.fns)

    @property
    def graph(self) -> DAG:
        """The program's DAG on nodes ``0, …, K``, with an edge ``i → k`` for ``i ∈ pa(k)``.

        Book §4.1.3 (Fig. 4.3 left). A parent used twice (``f(s_i, s_i)``) is one edge.

        Example::

            >>> Program([abs, max], [(0,), (0, 1)]).graph.edges
            ((0, 1), (0, 2), (1, 2))
        """
        edges = []
        for k, pa in enumerate(self.parents, 1):
            for ref in pa:
                e = (_ref_node(ref), k)
                if e not in edges:
                    edges.append(e)
        return DAG(range(len(self.fns) + 1), edges)

    def __call__(self, s0: Any) -> Any:
        """``execute(self, s0)`` (Book §4.1.3, Algorithm 4.1).

        Example::

            >>> Program([abs], [(0,)])(-2.0)
            2.0
        """
        return execute(self, s0)

    def __repr__(self) -> str:
        body = ", ".join(f"{self.names[k]}=f{k}{self.parents[k - 1]}"
                         for k in range(1, len(self.fns) + 1))
        return f"Program({body}; output={self.output})"


def _get(values: list, ref: Ref) -> Any:
    if isinstance(ref, tuple):
        return values[ref[0]][ref[1]]
    return values[ref]


def execute(program: Program, s0: Any, return_all: bool = False) -> Any:
    r"""Algorithm 4.1: for ``k`` in topological order, ``s_k := f_k(s_{i_1}, …, s_{i_{p_k}})``.

    Returns ``s_K`` (the output node; a tuple for several outputs), or every ``s_k`` as a list
    when ``return_all``. Book §4.1.3. Differentiable in ``s_0`` (a pytree) when the ``f_k`` are.

    Example::

        >>> P = Program([lambda x: x + 1.0, lambda x, y: x * y], [(0,), (0, 1)])
        >>> execute(P, 2.0), execute(P, 2.0, return_all=True)
        (6.0, [2.0, 3.0, 6.0])
    """
    if not isinstance(program, Program):
        raise TypeError(f"execute: argument 'program' must be a Program, "
                        f"got {type(program).__name__}")
    values: list = [None] * (len(program.fns) + 1)
    values[0] = s0
    for k in program.order:
        if k == 0:
            continue
        args = [_get(values, ref) for ref in program.parents[k - 1]]
        values[k] = program.fns[k - 1](*args)
    if return_all:
        return values
    out = program.output
    return tuple(values[o] for o in out) if isinstance(out, tuple) else values[out]


# ----------------------------------------------------------------------------- tracing


def _apply_equation(eq: Any, slots: tuple, *vals: Any) -> Any:
    """Apply one IR equation; ``slots[i]`` is the parent position of input ``i`` or ``None``."""
    args = [eq.inputs[i] if s is None else vals[s] for i, s in enumerate(slots)]
    return eq.prim.bind(*args, **eq.params)


def _constant(c: Any) -> Any:
    return c


def _unflatten(treedef: Any, *leaves: Any) -> Any:
    return treedef.unflatten(list(leaves))


def trace_to_graph(fn: Callable[..., Any]) -> Callable[..., Program]:
    r"""``trace_to_graph(fn)(*example_args)``: ``fn`` as a :class:`Program` of primitives.

    Book §4.1.3, Fig. 4.3: a pure, halting program is a DAG of elementary functions in
    topological order. The function is traced by the engine's IR (:func:`diffprog.make_graph`)
    and simplified (common subexpressions merged, dead code dropped), so a value written twice
    in the source is one node with several children. The program's input ``s_0`` is the tuple
    of positional arguments; nodes read its leaves as ``(0, i)`` (a flattening node is added
    first when the arguments are nested pytrees), and a final node rebuilds a pytree output.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> P = trace_to_graph(lambda x, y: dnp.sin(x) * y)(1.0, 2.0)
        >>> [n for n in P.names], float(P((0.5, 3.0))) == 3.0 * float(np.sin(0.5))
        (['s0', 'sin', 'multiply'], True)
    """
    if not callable(fn):
        raise TypeError(f"trace_to_graph: argument 'fn' must be callable, got {type(fn).__name__}")

    @functools.wraps(fn)
    def traced(*args: Any) -> Program:
        box: dict = {}

        def recording(*a: Any) -> Any:
            out = fn(*a)
            box["tree"] = tree_flatten(out)[1]
            return out

        prog = simplify(make_graph(recording, *args).program)
        return _program_from_ir(prog, args, box["tree"])

    return traced


_LEAF = tree_flatten(0.0)[1]


def _program_from_ir(prog: Any, args: tuple, out_tree: Any) -> Program:
    """The :class:`Program` of a traced (simplified) IR program; see :func:`trace_to_graph`."""
    fns: list = []
    parents: list = []
    names: list = ["s0"]
    flat_args = tree_flatten(args)[1] == tree_flatten(tuple(0.0 for _ in args))[1]
    ref_of: dict = {}
    if flat_args:
        for i, v in enumerate(prog.invars):
            ref_of[v] = (0, i)
    else:
        fns.append(lambda s0: tuple(tree_flatten(s0)[0]))
        parents.append((0,))
        names.append("flatten")
        for i, v in enumerate(prog.invars):
            ref_of[v] = (1, i)
    for eq in prog.eqns:
        if eq.dynamic:
            raise ValueError(f"trace_to_graph: primitive '{eq.prim.name}' has parameters computed "
                             "by the program; this is not supported")
        pa: list = []
        slots = []
        for a in eq.inputs:
            if type(a) is Var:
                r = ref_of[a]
                if r not in pa:
                    pa.append(r)
                slots.append(pa.index(r))
            else:
                slots.append(None)
        fns.append(functools.partial(_apply_equation, eq, tuple(slots)))
        parents.append(tuple(pa))
        names.append(eq.prim.name)
        k = len(fns)
        if type(eq.outvars) is tuple:
            for j, v in enumerate(eq.outvars):
                ref_of[v] = (k, j)
        else:
            ref_of[eq.outvars] = k
    outs = []
    for o in prog.outputs:
        if type(o) is Var:
            outs.append(ref_of[o])
        else:
            fns.append(functools.partial(_constant, o))
            parents.append(())
            names.append("constant")
            outs.append(len(fns))
    if out_tree == _LEAF and isinstance(outs[0], int):
        return Program(fns, parents, output=outs[0], names=names)
    fns.append(functools.partial(_unflatten, out_tree))
    parents.append(tuple(outs))
    names.append("output")
    return Program(fns, parents, names=names)


# ----------------------------------------------------------------------------- bipartite (Fig 4.4)


class BipartiteProgram:
    r"""A program with separate function and variable nodes (Book §4.1.3, Fig. 4.4 right).

    ``functions[k]`` is ``(name, fn, inputs, outputs)``: ``inputs`` are variable names, or pairs
    ``(variable, component)``; ``outputs`` lists the variables ``fn`` writes (several outputs:
    ``fn`` returns a tuple). Edges go variable → function (inputs) and function → variable
    (outputs). ``input`` and ``output`` name the program's input and output variables.

    Example::

        >>> B = BipartiteProgram([("split", lambda s: (s + 1.0, s * 2.0), ["x"], ["a", "b"]),
        ...                       ("mul", lambda a, b: a * b, ["a", "b"], ["y"])], "x", "y")
        >>> B.num_edges, float(from_bipartite(B)(1.0))
        (6, 4.0)
    """

    __slots__ = ("functions", "input", "output")

    def __init__(self, functions: Sequence[tuple[str, Callable[..., Any], Sequence[Any],
                                                 Sequence[str]]], input: str, output: str):
        fs = []
        written = {input: "the input"}
        for item in functions:
            if not (isinstance(item, tuple) and len(item) == 4):
                raise TypeError("BipartiteProgram: each function must be (name, fn, inputs, "
                                f"outputs), got {item!r}")
            name, fn, ins, outs = item
            if not callable(fn):
                raise TypeError(f"BipartiteProgram: function {name!r} is not callable")
            outs = tuple(outs)
            if not outs:
                raise ValueError(f"BipartiteProgram: function {name!r} has no output variable")
            for v in outs:
                if v in written:
                    raise ValueError(f"BipartiteProgram: variable {v!r} is written by {name!r} "
                                     f"and by {written[v]}")
                written[v] = repr(name)
            fs.append((name, fn, tuple(ins), outs))
        for name, _, ins, _ in fs:
            for r in ins:
                v = r[0] if isinstance(r, tuple) else r
                if v not in written:
                    raise ValueError(f"BipartiteProgram: function {name!r} reads {v!r}, which "
                                     "no function writes")
        if output not in written:
            raise ValueError(f"BipartiteProgram: output variable {output!r} is never written")
        self.functions = tuple(fs)
        self.input = input
        self.output = output

    @property
    def variables(self) -> tuple[str, ...]:
        """The variable nodes: the input, then each function's outputs (Book §4.1.3).

        Example::

            >>> BipartiteProgram([("f", abs, ["x"], ["y"])], "x", "y").variables
            ('x', 'y')
        """
        return (self.input,) + tuple(v for f in self.functions for v in f[3])

    @property
    def graph(self) -> DAG:
        """The bipartite DAG; function nodes are ``("f", name)``, variable nodes
        ``("s", name)`` (Book §4.1.3, Fig. 4.4).

        Example::

            >>> BipartiteProgram([("f", abs, ["x"], ["y"])], "x", "y").graph.edges
            ((('s', 'x'), ('f', 'f')), (('f', 'f'), ('s', 'y')))
        """
        nodes = [("s", v) for v in self.variables] + [("f", f[0]) for f in self.functions]
        edges: list = []
        for name, _, ins, outs in self.functions:
            for r in ins:
                e = (("s", r[0] if isinstance(r, tuple) else r), ("f", name))
                if e not in edges:
                    edges.append(e)
            edges.extend((("f", name), ("s", v)) for v in outs)
        return DAG(nodes, edges)

    @property
    def num_edges(self) -> int:
        """Number of edges of :attr:`graph` (Book §4.1.3).

        Example::

            >>> BipartiteProgram([("f", abs, ["x"], ["y"])], "x", "y").num_edges
            2
        """
        return self.graph.num_edges


def to_bipartite(program: Program) -> BipartiteProgram:
    r"""The bipartite form of a :class:`Program`: function ``f_k`` → variable ``s_k`` (Fig. 4.4).

    Book §4.1.3. The bipartite graph has the program's edges (variable ``s_i`` → function
    ``f_k``) plus the ``K`` edges ``f_k → s_k``. Variables are named ``"s0", …, "sK"`` and
    functions ``"f1", …, "fK"`` (the node labels of :attr:`Program.names` need not be unique).

    Example::

        >>> P = Program([abs, lambda a, x: a + x], [(0,), (1, 0)])
        >>> P.graph.num_edges, to_bipartite(P).num_edges
        (3, 5)
    """
    if not isinstance(program, Program):
        raise TypeError(f"to_bipartite: argument 'program' must be a Program, "
                        f"got {type(program).__name__}")
    if isinstance(program.output, tuple):
        raise ValueError("to_bipartite: the program must have a single output node")

    def var(ref: Ref) -> Any:
        return (f"s{ref[0]}", ref[1]) if isinstance(ref, tuple) else f"s{ref}"

    fs = [(f"f{k}", program.fns[k - 1], [var(r) for r in program.parents[k - 1]], [f"s{k}"])
          for k in program.order if k]
    return BipartiteProgram(fs, "s0", f"s{program.output}")


def from_bipartite(bipartite: BipartiteProgram) -> Program:
    r"""The :class:`Program` of a :class:`BipartiteProgram` (Book §4.1.3, Fig. 4.4).

    Each function becomes one node; a function with several output variables returns a tuple,
    and its readers select their component (parent ``(k, j)``).

    Example::

        >>> P = Program([abs, lambda a, x: a + x], [(0,), (1, 0)])
        >>> from_bipartite(to_bipartite(P))(-3.0) == P(-3.0)
        True
    """
    if not isinstance(bipartite, BipartiteProgram):
        raise TypeError(f"from_bipartite: argument 'bipartite' must be a BipartiteProgram, "
                        f"got {type(bipartite).__name__}")
    where: dict = {bipartite.input: 0}
    for k, (_, _, _, outs) in enumerate(bipartite.functions, 1):
        for j, v in enumerate(outs):
            where[v] = k if len(outs) == 1 else (k, j)

    def ref(r: Any) -> Ref:
        if isinstance(r, tuple):
            base = where[r[0]]
            if isinstance(base, tuple):
                raise ValueError(f"from_bipartite: {r!r} selects a component of a variable "
                                 "that is itself a component")
            return (base, r[1])
        return where[r]

    fns = [f[1] for f in bipartite.functions]
    parents = [tuple(ref(r) for r in f[2]) for f in bipartite.functions]
    names = [bipartite.input] + [f[0] for f in bipartite.functions]
    out = where[bipartite.output]
    if isinstance(out, tuple):  # the output is a component: read it with one more node
        fns.append(lambda v: v)
        parents.append((out,))
        names.append(bipartite.output)
        out = len(fns)
    return Program(fns, parents, output=out, names=names)
