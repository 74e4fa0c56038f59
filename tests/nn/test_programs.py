"""Programs as chains and DAGs (book §4.1): spec rows NET-01..NET-07."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.nn.programs import (
    DAG,
    BipartiteProgram,
    Program,
    all_topological_orders,
    chain,
    execute,
    from_bipartite,
    is_topological_order,
    to_bipartite,
    topological_sort,
    trace_to_graph,
)

FIG_4_2_EDGES = [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (1, 4), (3, 4)]


def fig_4_2() -> DAG:
    return DAG(range(5), FIG_4_2_EDGES)


def f_fig_4_3(x1, x2):
    """f(x1, x2) = x2 e^{x1} sqrt(x1 + x2 e^{x1}), written without sharing the product."""
    return x2 * dnp.exp(x1) * dnp.sqrt(x1 + x2 * dnp.exp(x1))


def grad_fig_4_3(x1: float, x2: float) -> tuple[float, float]:
    """Closed-form partial derivatives (spec, worked example 2)."""
    a = x2 * math.exp(x1)
    s = math.sqrt(x1 + a)
    return a * s + a * (1 + a) / (2 * s), math.exp(x1) * s + a * math.exp(x1) / (2 * s)


def program_fig_4_3() -> Program:
    """Fig. 4.3 as an explicit program: s0 = (x1, x2)."""
    return Program(
        [lambda s: dnp.exp(s[0]),          # s1 = e^{x1}
         lambda s, e: s[1] * e,            # s2 = x2 e^{x1}
         lambda s, a: s[0] + a,            # s3 = x1 + s2
         dnp.sqrt,                         # s4 = sqrt(s3)
         lambda a, r: a * r],              # s5 = s2 s4
        [(0,), (0, 1), (0, 2), (3,), (2, 4)],
    )


# ----------------------------------------------------------------------------- NET-01


def _fd_jacobian(f, x, h=1e-6):
    x = np.asarray(x, float)
    cols = [(np.asarray(f(x + h * e)) - np.asarray(f(x - h * e))) / (2 * h) for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


def test_net01_chain_value_and_chain_rule():
    """NET-01: chain(sin, exp)(0.3) = exp(sin(0.3)); Jacobian = product of the FD Jacobians."""
    assert chain(np.sin, np.exp)(0.3) == np.exp(np.sin(0.3))
    W = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.1]])
    f1 = lambda x: W @ x  # noqa: E731
    f2 = dnp.tanh
    f3 = lambda z: dnp.stack([z[0] * z[1], dnp.exp(z[1])])  # noqa: E731
    x = np.array([0.2, -0.4, 0.7])
    J = diffprog.jacobian(chain(f1, f2, f3))(x)
    s1 = W @ x
    s2 = np.tanh(s1)
    product = _fd_jacobian(f3, s2) @ _fd_jacobian(f2, s1) @ _fd_jacobian(f1, x)
    np.testing.assert_allclose(J, product, atol=1e-6)


def test_net01_chain_bad_input():
    """NET-01 bad input: no function, or a non-callable, raises naming chain."""
    with pytest.raises(ValueError, match="chain: needs at least one"):
        chain()
    with pytest.raises(TypeError, match="chain: argument f_2 must be callable"):
        chain(np.sin, 3.0)


# ----------------------------------------------------------------------------- NET-02


def test_net02_fig_4_2_parents_children_roots_leaves_paths():
    """NET-02: pa(3) = {0,1,2}, ch(1) = {3,4}, root 0, leaf 4, path 0→4, acyclic."""
    g = fig_4_2()
    assert set(g.parents(3)) == {0, 1, 2}
    assert set(g.children(1)) == {3, 4}
    assert g.roots() == [0] and g.leaves() == [4]
    assert g.has_path(0, 4) and g.has_path(0, 3) and not g.has_path(2, 1)
    assert not g.has_path(4, 0) and not g.has_path(3, 3)
    assert g.is_acyclic() and g.num_edges == 7
    cyclic = g.with_edges((4, 0))
    assert not cyclic.is_acyclic() and cyclic.has_path(3, 3)
    assert g.is_acyclic()  # the original is unchanged


def test_net02_dag_bad_input():
    """NET-02 bad input: unknown nodes, repeated edges, malformed edges raise naming DAG."""
    with pytest.raises(ValueError, match="DAG: edge"):
        DAG(range(2), [(0, 5)])
    with pytest.raises(ValueError, match="given twice"):
        DAG(range(2), [(0, 1), (0, 1)])
    with pytest.raises(TypeError, match="pair"):
        DAG(range(2), [(0, 1, 2)])
    with pytest.raises(ValueError, match="twice"):
        DAG([0, 0], [])
    with pytest.raises(ValueError, match="DAG.parents"):
        fig_4_2().parents(9)


# ----------------------------------------------------------------------------- NET-03


def _brute_force_orders(g: DAG) -> set:
    return {p for p in itertools.permutations(g.nodes)
            if all(p.index(i) < p.index(j) for i, j in g.edges)}


def test_net03_topological_orders_of_fig_4_2():
    """NET-03: exactly the two orders (0,1,2,3,4) and (0,2,1,3,4); a cycle raises."""
    g = fig_4_2()
    orders = all_topological_orders(g)
    assert set(orders) == {(0, 1, 2, 3, 4), (0, 2, 1, 3, 4)} and len(orders) == 2
    assert topological_sort(g) == (0, 1, 2, 3, 4)
    assert is_topological_order(g, (0, 2, 1, 3, 4))
    assert not is_topological_order(g, (0, 3, 1, 2, 4))
    assert not is_topological_order(g, (0, 1, 2, 3))
    with pytest.raises(ValueError, match="topological_sort: the graph has a cycle"):
        topological_sort(g.with_edges((4, 0)))
    with pytest.raises(ValueError, match="cycle"):
        all_topological_orders(g.with_edges((3, 1)))
    with pytest.raises(TypeError, match="topological_sort: argument 'graph'"):
        topological_sort([(0, 1)])


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 6))
    perm = draw(st.permutations(list(range(n))))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    # relabel so that the node list is not already sorted
    return DAG(range(n), [(perm[i], perm[j]) for i, j in chosen])


@given(random_dags())
def test_net03_orders_match_brute_force(g):
    """NET-03 (hypothesis): all_topological_orders = the permutations respecting every edge."""
    orders = all_topological_orders(g)
    assert len(orders) == len(set(orders))
    assert set(orders) == _brute_force_orders(g)
    assert is_topological_order(g, topological_sort(g))


# ----------------------------------------------------------------------------- NET-04


def test_net04_execute_fig_4_3():
    """NET-04: Algorithm 4.1 on Fig. 4.3: f(0,1) = 1, f(1,2) = 2e sqrt(1+2e), gradients."""
    P = program_fig_4_3()
    assert float(execute(P, (0.0, 1.0))) == 1.0
    assert float(execute(P, (1.0, 2.0))) == pytest.approx(2 * math.e * math.sqrt(1 + 2 * math.e),
                                                          rel=1e-15)
    assert float(P((1.0, 2.0))) == pytest.approx(13.792770562190322, rel=1e-15)
    g = diffprog.grad(lambda s: execute(P, s))((1.0, 2.0))
    np.testing.assert_allclose(g, grad_fig_4_3(1.0, 2.0), rtol=1e-13)
    np.testing.assert_allclose(g, (20.689155843285484, 9.808858425286727), rtol=1e-13)
    np.testing.assert_allclose(diffprog.grad(lambda s: execute(P, s))((0.0, 1.0)), (2.0, 1.5),
                               rtol=1e-14)
    values = execute(P, (0.0, 1.0), return_all=True)
    assert [float(v) for v in values[1:]] == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_net04_shuffled_nodes_are_sorted_first():
    """NET-04: relabelling the nodes in a non-topological order gives the same value."""
    P = program_fig_4_3()
    K = P.num_functions
    perm = [0, 4, 2, 5, 1, 3]  # new label of node k
    inv = {perm[k]: k for k in range(K + 1)}
    fns = [P.fns[inv[m] - 1] for m in range(1, K + 1)]
    parents = [tuple(perm[r] if isinstance(r, int) else (perm[r[0]], r[1])
                     for r in P.parents[inv[m] - 1]) for m in range(1, K + 1)]
    Q = Program(fns, parents, output=perm[K])
    assert list(Q.order) != list(range(K + 1))
    assert is_topological_order(Q.graph, Q.order)
    for s0 in [(0.0, 1.0), (1.0, 2.0), (-0.3, 0.7)]:
        assert float(execute(Q, s0)) == float(execute(P, s0))


def test_net04_program_bad_input():
    """NET-04 bad input: cycles, out-of-range parents, self loops, non-callables raise."""
    with pytest.raises(ValueError, match="Program: the dependencies are not acyclic"):
        Program([abs, abs], [(2,), (1,)])
    with pytest.raises(ValueError, match="Program: parent 7 of node 1"):
        Program([abs], [(7,)])
    with pytest.raises(ValueError, match="own parent"):
        Program([abs], [(1,)])
    with pytest.raises(TypeError, match="Program: f_1 must be callable"):
        Program([1.0], [(0,)])
    with pytest.raises(ValueError, match="one entry per function"):
        Program([abs], [(0,), (0,)])
    with pytest.raises(TypeError, match="execute: argument 'program'"):
        execute(abs, 1.0)


# ----------------------------------------------------------------------------- NET-05


def test_net05_multiple_inputs_and_multi_output_node():
    """NET-05: 2 inputs, a 2-output node read by component; grad of a tuple input is a tuple."""
    P = Program(
        [lambda s: (s[0] * s[1], s[0] + s[1]),     # s1 = (x1 x2, x1 + x2)
         lambda p, q: p * dnp.sin(q)],              # s2 = x1 x2 sin(x1 + x2)
        [(0,), ((1, 0), (1, 1))],
    )
    x1, x2 = 0.7, -1.3
    assert float(P((x1, x2))) == pytest.approx(x1 * x2 * math.sin(x1 + x2), rel=1e-15)
    g = diffprog.grad(lambda s: execute(P, s))((x1, x2))
    assert isinstance(g, tuple) and len(g) == 2
    c = math.cos(x1 + x2)
    np.testing.assert_allclose(g, (x2 * math.sin(x1 + x2) + x1 * x2 * c,
                                   x1 * math.sin(x1 + x2) + x1 * x2 * c), rtol=1e-14)
    both = Program(P.fns, P.parents, output=(1, 2))
    out = both((x1, x2))
    assert isinstance(out, tuple) and float(out[0][1]) == pytest.approx(x1 + x2)
    gd = diffprog.grad(lambda s: execute(P, (s["a"], s["b"])))({"a": x1, "b": x2})
    assert set(gd) == {"a", "b"} and gd["a"] == pytest.approx(g[0], rel=1e-14)


# ----------------------------------------------------------------------------- NET-06


def test_net06_trace_fig_4_3_shares_the_product():
    """NET-06: the traced Fig. 4.3 DAG is acyclic, evaluates like NET-04, and x2 e^{x1} is one
    node with fan-out 2 (the duplicate in the source is merged)."""
    T = trace_to_graph(f_fig_4_3)(0.0, 1.0)
    g = T.graph
    assert g.is_acyclic()
    names = list(T.names)
    assert names.count("exp") == 1
    mul_shared = [k for k in range(1, len(names))
                  if names[k] == "multiply" and 0 in g.parents(k)]
    assert len(mul_shared) == 1
    assert len(g.children(mul_shared[0])) == 2
    P = program_fig_4_3()
    for s0 in [(0.0, 1.0), (1.0, 2.0), (0.4, 0.3)]:
        assert float(T(s0)) == pytest.approx(float(P(s0)), rel=1e-15)
    np.testing.assert_allclose(diffprog.grad(lambda s: T(s))((1.0, 2.0)), grad_fig_4_3(1.0, 2.0),
                               rtol=1e-13)


def test_net06_trace_pytrees_constants_and_arrays():
    """NET-06: nested inputs (flatten node), pytree outputs, constants and array values."""
    def f(params, x):
        W, b = params["W"], params["b"]
        h = dnp.tanh(x @ W + b)
        return {"h": h, "s": dnp.sum(h * h) + 2.0}

    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    T = trace_to_graph(f)(params, x)
    assert T.names[1] == "flatten" and T.names[-1] == "output"
    p2 = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    out = T((p2, x))
    ref = np.tanh(x @ p2["W"] + p2["b"])
    np.testing.assert_allclose(out["h"], ref, rtol=1e-14)
    assert float(out["s"]) == pytest.approx(float(np.sum(ref**2) + 2.0), rel=1e-14)
    ident = trace_to_graph(lambda a, b: a)(1.0, 2.0)
    assert float(ident((3.0, 4.0))) == 3.0
    with pytest.raises(TypeError, match="trace_to_graph: argument 'fn'"):
        trace_to_graph(3)


# ----------------------------------------------------------------------------- NET-07


def test_net07_bipartite_round_trip_and_edge_count():
    """NET-07: from_bipartite(to_bipartite(P)) runs identically; |E_bip| = |E| + K."""
    for P in (program_fig_4_3(), trace_to_graph(f_fig_4_3)(0.0, 1.0)):
        B = to_bipartite(P)
        assert B.num_edges == P.graph.num_edges + P.num_functions
        assert B.graph.is_acyclic()
        assert set(B.graph.roots()) == {("s", "s0")}
        Q = from_bipartite(B)
        for s0 in [(0.0, 1.0), (1.0, 2.0)]:
            assert float(Q(s0)) == float(P(s0))


def test_net07_bipartite_multi_output_function():
    """NET-07: a bipartite function with two output variables becomes a tuple-valued node."""
    B = BipartiteProgram(
        [("polar", lambda z: (dnp.sqrt(z[0] ** 2 + z[1] ** 2), dnp.arctan2(z[1], z[0])),
          ["z"], ["r", "theta"]),
         ("area", lambda r, t: r * r * t, ["r", "theta"], ["y"])],
        input="z", output="y")
    assert B.variables == ("z", "r", "theta", "y")
    assert B.num_edges == 1 + 2 + 2 + 1
    P = from_bipartite(B)
    assert P.parents[1] == ((1, 0), (1, 1))
    z = (3.0, 4.0)
    assert float(P(z)) == pytest.approx(25.0 * math.atan2(4.0, 3.0), rel=1e-15)
    theta_out = from_bipartite(BipartiteProgram(B.functions, "z", "theta"))
    assert float(theta_out(z)) == pytest.approx(math.atan2(4.0, 3.0), rel=1e-15)


def test_net07_bipartite_bad_input():
    """NET-07 bad input: unwritten variables, double writes, non-programs raise."""
    with pytest.raises(ValueError, match="reads 'q'"):
        BipartiteProgram([("f", abs, ["q"], ["y"])], "x", "y")
    with pytest.raises(ValueError, match="written by"):
        BipartiteProgram([("f", abs, ["x"], ["x"])], "x", "x")
    with pytest.raises(ValueError, match="never written"):
        BipartiteProgram([("f", abs, ["x"], ["y"])], "x", "z")
    with pytest.raises(TypeError, match="to_bipartite: argument 'program'"):
        to_bipartite(abs)
    with pytest.raises(TypeError, match="from_bipartite"):
        from_bipartite(program_fig_4_3())
