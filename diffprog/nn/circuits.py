r"""Arithmetic circuits and their size (Book §4.1.4, Definition 4.1).

An arithmetic circuit over a field (here the reals) is a DAG whose roots are variables or
constants and whose other nodes, the *gates*, compute ``+`` or ``×`` of their parents; it
computes a polynomial. Unlike a general program (§4.1.3) it may have several roots.

Nodes are numbered ``0, …, R − 1`` for the roots, then ``R, …`` for the gates, each gate
reading only earlier nodes (so the numbering is a topological order). A gate may read the same
node twice (``u × u``): the circuit is then a multigraph, and the size ``S(C)`` of
:func:`circuit_size` counts the edges *with multiplicity*, i.e. one edge per operand, so
squaring ``u·u`` costs 2. :attr:`ArithmeticCircuit.graph` is the simple DAG (repeated
operands merged).

Polynomials are dictionaries ``{monomial: coefficient}`` with a monomial a sorted tuple of
``(variable, power)`` pairs (``()`` for the constant term) and no zero coefficients, so two
circuits compute the same polynomial exactly when their :meth:`~ArithmeticCircuit.to_polynomial`
are equal (up to float rounding of the coefficients).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.ir import Var, make_graph
from .programs import DAG

__all__ = ["ArithmeticCircuit", "circuit_size"]

Monomial = tuple[tuple[str, int], ...]
Polynomial = dict[Monomial, Any]

_OPS = ("add", "mul")
_PRIMS = {"add": "add", "multiply": "mul"}


def _poly_add(p: Polynomial, q: Polynomial) -> Polynomial:
    out = dict(p)
    for m, c in q.items():
        out[m] = out.get(m, 0) + c
    return {m: c for m, c in out.items() if c != 0}


def _mono_mul(a: Monomial, b: Monomial) -> Monomial:
    powers = dict(a)
    for v, k in b:
        powers[v] = powers.get(v, 0) + k
    return tuple(sorted(powers.items()))


def _poly_mul(p: Polynomial, q: Polynomial) -> Polynomial:
    out: Polynomial = {}
    for ma, ca in p.items():
        for mb, cb in q.items():
            m = _mono_mul(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
    return {m: c for m, c in out.items() if c != 0}


class ArithmeticCircuit:
    r"""An arithmetic circuit: roots (variables or constants) and ``+``/``×`` gates (Book §4.1.4).

    ``roots`` are variable names (``str``) or real constants; ``gates`` are pairs
    ``(op, operands)`` with ``op ∈ {"add", "mul"}`` and at least two operand node indices, each
    smaller than the gate's own index (roots are ``0 … R−1``, gate ``g`` is node ``R + g``).
    ``output`` is the node computed (default: the last gate).

    Example (``xy + xz`` and ``x(y + z)``)::

        >>> c1 = ArithmeticCircuit(["x", "y", "z"], [("mul", (0, 1)), ("mul", (0, 2)),
        ...                                          ("add", (3, 4))])
        >>> c2 = ArithmeticCircuit(["x", "y", "z"], [("add", (1, 2)), ("mul", (0, 3))])
        >>> c1.evaluate({"x": 2.0, "y": 3.0, "z": 4.0}), c2.evaluate({"x": 2.0, "y": 3.0, "z": 4.0})
        (14.0, 14.0)
        >>> c1.to_polynomial() == c2.to_polynomial(), circuit_size(c1), circuit_size(c2)
        (True, 6, 4)
    """

    __slots__ = ("roots", "gates", "output")

    def __init__(self, roots: Sequence[str | float], gates: Sequence[tuple[str, Sequence[int]]],
                 output: int | None = None):
        roots = tuple(roots)
        if not roots:
            raise ValueError("ArithmeticCircuit: argument 'roots' must not be empty")
        names = set()
        for r in roots:
            if isinstance(r, str):
                if r in names:
                    raise ValueError(f"ArithmeticCircuit: variable {r!r} is a root twice")
                names.add(r)
            elif isinstance(r, bool) or not isinstance(r, numbers.Real):
                raise TypeError("ArithmeticCircuit: a root must be a variable name (str) or a "
                                f"real constant, got {r!r}")
        checked = []
        for g, gate in enumerate(gates):
            k = len(roots) + g
            if not (isinstance(gate, tuple) and len(gate) == 2):
                raise TypeError(f"ArithmeticCircuit: gate {k} must be (op, operands), got {gate!r}")
            op, operands = gate
            if op not in _OPS:
                raise ValueError(f"ArithmeticCircuit: gate {k} has op {op!r}; expected 'add' or "
                                 "'mul'")
            operands = tuple(operands)
            if len(operands) < 2:
                raise ValueError(f"ArithmeticCircuit: gate {k} needs at least two operands, "
                                 f"got {operands!r}")
            for i in operands:
                if isinstance(i, bool) or not isinstance(i, (int, np.integer)) \
                        or not 0 <= i < k:
                    raise ValueError(f"ArithmeticCircuit: gate {k} reads node {i!r}; operands "
                                     f"must be earlier nodes in [0, {k})")
            checked.append((op, tuple(int(i) for i in operands)))
        n = len(roots) + len(checked)
        if output is None:
            output = n - 1
        if isinstance(output, bool) or not isinstance(output, (int, np.integer)) \
                or not 0 <= output < n:
            raise ValueError(f"ArithmeticCircuit: argument 'output' must be a node in [0, {n}), "
                             f"got {output!r}")
        self.roots = roots
        self.gates = tuple(checked)
        self.output = int(output)

    @property
    def variables(self) -> tuple[str, ...]:
        """The variable roots, in order (Book §4.1.4).

        Example::

            >>> ArithmeticCircuit(["x", 2.0], [("mul", (0, 1))]).variables
            ('x',)
        """
        return tuple(r for r in self.roots if isinstance(r, str))

    @property
    def num_nodes(self) -> int:
        """Roots plus gates (Book §4.1.4).

        Example::

            >>> ArithmeticCircuit(["x", 2.0], [("mul", (0, 1))]).num_nodes
            3
        """
        return len(self.roots) + len(self.gates)

    @property
    def graph(self) -> DAG:
        """The circuit as a simple :class:`~diffprog.nn.programs.DAG` (repeated operands merged;
        Book §4.1.4).

        Example::

            >>> g = ArithmeticCircuit(["u"], [("mul", (0, 0))]).graph
            >>> g.edges, g.roots()
            (((0, 1),), [0])
        """
        edges = []
        r = len(self.roots)
        for g, (_, operands) in enumerate(self.gates):
            for i in dict.fromkeys(operands):
                edges.append((i, r + g))
        return DAG(range(self.num_nodes), edges)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        r"""The circuit's value with each variable root set from ``values`` (Book §4.1.4).

        Values may be arrays or traced values (``+`` and ``×`` are differentiable), so
        ``diffprog.grad`` applies.

        Example::

            >>> ArithmeticCircuit(["x", 3.0], [("mul", (0, 1))]).evaluate({"x": 2.0})
            6.0
        """
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ValueError(f"ArithmeticCircuit.evaluate: argument 'values' has no value for "
                             f"the variables {missing!r}")
        s: list = [values[r] if isinstance(r, str) else r for r in self.roots]
        for op, operands in self.gates:
            acc = s[operands[0]]
            for i in operands[1:]:
                acc = acc + s[i] if op == "add" else acc * s[i]
            s.append(acc)
        return s[self.output]

    def to_polynomial(self) -> Polynomial:
        r"""The polynomial computed, as ``{monomial: coefficient}`` (Book §4.1.4).

        A monomial is a sorted tuple of ``(variable, power)``; zero coefficients are dropped.

        Example::

            >>> ArithmeticCircuit(["x", "y"], [("add", (0, 1)), ("mul", (2, 2))]).to_polynomial()
            {(('x', 1), ('y', 1)): 2, (('x', 2),): 1, (('y', 2),): 1}
        """
        polys: list[Polynomial] = [
            {((r, 1),): 1} if isinstance(r, str) else ({(): r} if r != 0 else {})
            for r in self.roots]
        for op, operands in self.gates:
            combine = _poly_add if op == "add" else _poly_mul
            acc = polys[operands[0]]
            for i in operands[1:]:
                acc = combine(acc, polys[i])
            polys.append(acc)
        return dict(sorted(polys[self.output].items()))

    @classmethod
    def from_function(cls, fn: Callable[..., Any], variables: Sequence[str]) -> ArithmeticCircuit:
        r"""Trace ``fn(*variables)`` (only ``+`` and ``×``) into a circuit (Book §4.1.4).

        Uses the engine's IR (:func:`diffprog.make_graph`); constants become constant roots.
        Any other operation raises ``ValueError``.

        Example::

            >>> c = ArithmeticCircuit.from_function(lambda x, y: 2.0 * x * y + x, ["x", "y"])
            >>> c.to_polynomial(), circuit_size(c)
            ({(('x', 1),): 1, (('x', 1), ('y', 1)): 2.0}, 6)
        """
        variables = tuple(variables)
        if not all(isinstance(v, str) for v in variables) or len(set(variables)) != len(variables):
            raise ValueError("ArithmeticCircuit.from_function: argument 'variables' must be "
                             "distinct names (str)")
        example = [float(k) + 1.5 for k in range(len(variables))]
        prog = make_graph(fn, *example).program
        roots: list = list(variables)
        node: dict = dict(zip(prog.invars, range(len(variables)), strict=True))
        pending: list = []
        for eq in prog.eqns:
            op = _PRIMS.get(eq.prim.name)
            if op is None:
                raise ValueError(f"ArithmeticCircuit.from_function: operation "
                                 f"'{eq.prim.name}' is neither + nor ×")
            operands = []
            for a in eq.inputs:
                if type(a) is Var:
                    operands.append(node[a])
                else:
                    c = np.asarray(a)
                    if c.size != 1:
                        raise ValueError("ArithmeticCircuit.from_function: constants must be "
                                         "scalars")
                    roots.append(c.item())
                    operands.append(("root", len(roots) - 1))
            pending.append((op, operands))
            node[eq.outvars] = ("gate", len(pending) - 1)
        out = prog.outputs
        if len(out) != 1 or type(out[0]) is not Var:
            raise ValueError("ArithmeticCircuit.from_function: fn must return one value that "
                             "depends on the variables")
        r = len(roots)

        def index(i: Any) -> int:
            if isinstance(i, int):
                return i
            return i[1] if i[0] == "root" else r + i[1]

        gates = [(op, tuple(index(i) for i in ops)) for op, ops in pending]
        return cls(roots, gates, output=index(node[out[0]]))

    def __repr__(self) -> str:
        return f"ArithmeticCircuit(roots={list(self.roots)!r}, gates={list(self.gates)!r})"


def circuit_size(circuit: ArithmeticCircuit) -> int:
    r"""The size ``S(C)`` of a circuit: the number of edges of its DAG (Book §4.1.4, Def. 4.1).

    Edges are counted with multiplicity (one per gate operand), so ``u × u`` has size 2. The
    size ``S(f)`` of a polynomial is the minimum over circuits computing it (not computable in
    general); comparing circuits shows e.g. that the distributive law shrinks ``xy + xz``
    (size 6) to ``x(y + z)`` (size 4).

    Example::

        >>> circuit_size(ArithmeticCircuit(["u"], [("mul", (0, 0))]))
        2
    """
    if not isinstance(circuit, ArithmeticCircuit):
        raise TypeError(f"circuit_size: argument 'circuit' must be an ArithmeticCircuit, "
                        f"got {type(circuit).__name__}")
    return sum(len(operands) for _, operands in circuit.gates)
