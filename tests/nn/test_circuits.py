"""Arithmetic circuits (book §4.1.4, Definition 4.1): spec rows NET-08 and NET-09."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
from diffprog.nn.circuits import ArithmeticCircuit, circuit_size

XYZ = ["x", "y", "z"]


def expanded() -> ArithmeticCircuit:
    """x*y + x*z."""
    return ArithmeticCircuit(XYZ, [("mul", (0, 1)), ("mul", (0, 2)), ("add", (3, 4))])


def factored() -> ArithmeticCircuit:
    """x*(y + z)."""
    return ArithmeticCircuit(XYZ, [("add", (1, 2)), ("mul", (0, 3))])


def test_net08_two_circuits_for_xy_plus_xz():
    """NET-08: x*y + x*z and x*(y+z) agree at random points and give the same polynomial."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y, z = rng.normal(size=3)
        v = {"x": x, "y": y, "z": z}
        expected = x * y + x * z
        assert expanded().evaluate(v) == pytest.approx(expected, rel=1e-14, abs=1e-15)
        assert factored().evaluate(v) == pytest.approx(expected, rel=1e-14, abs=1e-15)
    poly = {(("x", 1), ("y", 1)): 1, (("x", 1), ("z", 1)): 1}
    assert expanded().to_polynomial() == poly == factored().to_polynomial()
    assert expanded().graph.is_acyclic() and expanded().graph.roots() == [0, 1, 2]


def test_net08_constants_several_roots_and_gradient():
    """NET-08: constant roots; (x + 1)^2 − from a squaring gate — and grad through evaluate."""
    c = ArithmeticCircuit(["x", 1.0, -2.0], [("add", (0, 1)), ("mul", (3, 3)), ("mul", (2, 0)),
                                              ("add", (4, 5))])
    # (x + 1)^2 + (−2)x = x^2 + 1
    assert c.to_polynomial() == {(): 1.0, (("x", 2),): 1.0}
    assert c.variables == ("x",)
    g = diffprog.grad(lambda x: c.evaluate({"x": x}))(0.75)
    assert g == pytest.approx(1.5, rel=1e-15)  # d/dx (x^2 + 1)
    vec = c.evaluate({"x": np.array([0.0, 2.0])})
    np.testing.assert_array_equal(vec, [1.0, 5.0])
    cancel = ArithmeticCircuit(["x", -1.0], [("mul", (0, 1)), ("add", (0, 2))])
    assert cancel.to_polynomial() == {}  # x − x = 0


def test_net08_from_function_uses_the_ir():
    """NET-08: tracing x*y + x*z and x*(y+z) with + and × only gives the same circuits."""
    e = ArithmeticCircuit.from_function(lambda x, y, z: x * y + x * z, XYZ)
    f = ArithmeticCircuit.from_function(lambda x, y, z: x * (y + z), XYZ)
    assert e.to_polynomial() == expanded().to_polynomial() == f.to_polynomial()
    assert (circuit_size(e), circuit_size(f)) == (6, 4)
    sq = ArithmeticCircuit.from_function(lambda u: u * u + 3.0, ["u"])
    assert sq.to_polynomial() == {(): 3.0, (("u", 2),): 1}
    with pytest.raises(ValueError, match="'subtract' is neither"):
        ArithmeticCircuit.from_function(lambda x, y: x - y, ["x", "y"])


def test_net09_circuit_size_and_multi_edges():
    """NET-09: S(xy + xz) = 6, S(x(y+z)) = 4; u*u counts 2 edges (multigraph convention)."""
    assert circuit_size(expanded()) == 6
    assert circuit_size(factored()) == 4
    assert expanded().graph.num_edges == 6
    square = ArithmeticCircuit(["u"], [("mul", (0, 0))])
    assert circuit_size(square) == 2
    assert square.graph.num_edges == 1  # the simple DAG merges the repeated operand
    with pytest.raises(TypeError, match="circuit_size: argument 'circuit'"):
        circuit_size(expanded().graph)


@given(st.integers(1, 6))
def test_net09_horner_and_power_sum_sizes(n):
    """NET-09 (hypothesis): Σ_{k≤n} x^k by powers (one wide + gate) and by Horner compute the
    same polynomial; their sizes are 3n − 1 and 4n − 2 edges, counted by hand."""
    # powers: p_1 = x, p_k = p_{k-1} * x; sum = 1 + p_1 + ... + p_n
    roots = ["x", 1.0]
    gates = []
    prev = 0
    powers = [0]
    for _ in range(2, n + 1):
        gates.append(("mul", (prev, 0)))
        prev = len(roots) + len(gates) - 1
        powers.append(prev)
    gates.append(("add", (1, *powers)))
    naive = ArithmeticCircuit(roots, gates)
    # Horner: (...((x + 1) x + 1) x ...) + 1
    gates = [("add", (0, 1))]
    for _ in range(n - 1):
        gates.append(("mul", (len(roots) + len(gates) - 1, 0)))
        gates.append(("add", (len(roots) + len(gates) - 1, 1)))
    horner = ArithmeticCircuit(roots, gates)
    expected = {(): 1.0, **{(("x", k),): 1.0 for k in range(1, n + 1)}}
    assert naive.to_polynomial() == expected == horner.to_polynomial()
    assert circuit_size(naive) == 2 * (n - 1) + n + 1
    assert circuit_size(horner) == 2 + 4 * (n - 1)
    assert naive.evaluate({"x": 0.5}) == pytest.approx(sum(0.5**k for k in range(n + 1)))


def test_net08_bad_input():
    """NET-08 bad input: unknown ops, forward references, missing variables raise clearly."""
    with pytest.raises(ValueError, match="op 'sub'"):
        ArithmeticCircuit(["x", "y"], [("sub", (0, 1))])
    with pytest.raises(ValueError, match="gate 2 reads node 2"):
        ArithmeticCircuit(["x", "y"], [("add", (0, 2))])
    with pytest.raises(ValueError, match="at least two operands"):
        ArithmeticCircuit(["x"], [("add", (0,))])
    with pytest.raises(TypeError, match="root must be"):
        ArithmeticCircuit([None], [])
    with pytest.raises(ValueError, match="root twice"):
        ArithmeticCircuit(["x", "x"], [])
    with pytest.raises(ValueError, match="no value for the variables \\['z'\\]"):
        expanded().evaluate({"x": 1.0, "y": 2.0})
