"""make_graph and the graph algorithms of book §8.3 (Example 8.2, Fig. 8.9)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import fd_jvp


def example_8_2(x0):
    x1 = dnp.sin(x0)
    x2 = dnp.exp(x0)
    x3 = dnp.square(x1)
    x4 = x2 * x3
    x5 = x1 + x4
    x6 = dnp.tanh(x5)
    return x4 * x6


def test_example_8_2_parents_in_topological_order():
    g = diffprog.make_graph(example_8_2, 0.4)
    assert [n.parents for n in g.nodes] == [[], [0], [0], [1], [2, 3], [1, 4], [5], [4, 6]]
    assert [n.name for n in g.nodes] == ["input", "sin", "exp", "square", "multiply", "add",
                                         "tanh", "multiply"]
    assert sorted(g.nodes[1].children) == [3, 5]
    assert g.num_edges == 10
    dot = g.to_dot()
    assert dot.startswith("digraph") and "n4 -> n7;" in dot and "n0 -> n2;" in dot


def test_example_8_2_accumulated_cotangents():
    g = diffprog.make_graph(example_8_2, 0.4)
    r, c = g.vjp(np.array(1.0))
    # r_k = sum of its children's contributions (Alg. 8.5 accumulation)
    assert r[4] == pytest.approx(c[(4, 5)] + c[(4, 7)], rel=1e-15)
    assert r[1] == pytest.approx(c[(1, 3)] + c[(1, 5)], rel=1e-15)
    assert r[0] == pytest.approx(c[(0, 1)] + c[(0, 2)], rel=1e-15)
    assert r[6] == pytest.approx(c[(6, 7)], rel=1e-15)
    fd = fd_jvp(lambda x: float(example_8_2(np.array(x))), 0.4, 1.0)
    assert r[0] == pytest.approx(fd, rel=1e-8)
    assert r[0] == pytest.approx(diffprog.grad(example_8_2)(np.array(0.4)), rel=1e-14)


def test_graph_forward_mode_fan_in():
    g = diffprog.make_graph(example_8_2, 0.4)
    t = g.jvp(np.array(1.0))
    x0 = 0.4
    t1, t2 = np.cos(x0), np.exp(x0)
    t3 = 2 * np.sin(x0) * t1
    t4 = t2 * np.sin(x0) ** 2 + np.exp(x0) * t3
    assert t[4] == pytest.approx(t4, rel=1e-14)
    assert t[7] == pytest.approx(diffprog.grad(example_8_2)(np.array(x0)), rel=1e-14)


def test_graph_of_pytree_inputs_and_unused_input():
    g = diffprog.make_graph(lambda p: p["a"] * 2.0, {"a": np.ones(2), "b": np.ones(3)})
    assert [n.name for n in g.nodes] == ["input", "input", "multiply"]
    r, _ = g.vjp(np.ones(2))
    np.testing.assert_array_equal(r[1], np.zeros(3))


def test_baur_strassen_gradient_circuit_size():
    # book §8.3.3: for products of inputs, the traced gradient graph is at most 5x the primal
    x = np.linspace(0.5, 1.5, 20)

    def f(x):
        out = x[0]
        for i in range(1, 20):
            out = out * x[i]
        return out

    primal = diffprog.make_graph(f, x)
    grad_graph = diffprog.make_graph(diffprog.grad(f), x)
    count = lambda gr: sum(len(n.parents) for n in gr.nodes if n.name in ("multiply", "add"))
    assert count(grad_graph) <= 5 * count(primal)


def test_graph_vjp_through_a_several_output_node():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda A: dnp.sum(dnp.linalg.eigh(A)[0] ** 2)
    g = diffprog.make_graph(f, A)
    r, contrib = g.vjp(np.array(1.0))
    np.testing.assert_allclose(r[0], diffprog.grad(f)(A), rtol=1e-12)
    eig = next(n.index for n in g.nodes if n.name == "linalg_eigh")
    assert isinstance(r[eig], tuple) and len(r[eig]) == 2  # eigenvalues and eigenvectors
    assert any(len(key) == 3 and key[0] == eig for key in contrib)


def test_control_flow_nodes_carry_their_bodies_as_nested_graphs():
    xs = np.linspace(0.0, 1.0, 5)

    def f(w):
        carry, _ = diffprog.scan(lambda c, x: (dnp.tanh(c * w + x), None), 0.0, xs)
        return carry

    g = diffprog.make_graph(f, 0.5)
    scan_node = next(n for n in g.nodes if n.name == "scan")
    assert scan_node.subgraphs  # the loop body, drawn as a nested DAG
    body = next(iter(scan_node.subgraphs.values()))
    assert "tanh" in [n.name for n in body.nodes]
    dot = g.to_dot()
    assert "subgraph cluster_" in dot and "tanh" in dot
