"""Property-based tests of the engine on random programs (spec AD-15..AD-22, AD-34, AD-36).

Hypothesis draws *programs*: random compositions (depth 1..6) of primitives from a pool, applied
to 1..3 inputs of random shapes (ranks 0..3, sizes 1..4), with fan-out (a step may reuse any
earlier value) and broadcasting between values. Smooth programs use

- unary: sin, cos, tanh, exp∘tanh, log1p(x²), sqrt(1 + x²), arctan, square;
- binary (broadcasting): +, -, *, a / (1 + b²);
- contractions: a @ aᵀ, a @ b, a @ C (C constant), random two-operand ``einsum`` specs
  (shared, contracted, free and repeated/diagonal letters);
- reductions: sum/mean over random axes with random keepdims;
- shape ops: reshape, transpose, expand_dims, concatenate, stack, random basic slices,
  broadcast_to random shapes, integer-array getitem (take, with repeats), pad (all modes),
  flip, roll, cumsum, where with a constant mask;

and every value is rescaled (by a constant) to stay O(1), so finite differences are accurate.
Linear programs use the linear operations only. The output is the last value, or its sum.

Properties (each its own test): (a) jvp against central finite differences; (b) the adjoint
identity ⟨∂f[v], u⟩ = ⟨v, ∂f*[u]⟩; (c) jacfwd == jacrev; (d) hessian symmetric, equal to
jacfwd∘jacrev and jacrev∘jacfwd, every hvp method equal to H v, and H v equal to central
differences of the gradient; (e) linear_transpose is the adjoint of random linear programs, and
does not depend on the example primal; (f) linearize's jvp_fn equals jvp; and pytree inputs
(dict/tuple/list/namedtuple) get gradients of the same structure, equal to the flat version's.
When a property fails, Hypothesis prints the program (its steps, and the seed of its inputs and
constants) as the falsifying example.

Budget: the whole file runs in about 10 s under the default ("ci") profile; the number of
examples scales with ``HYPOTHESIS_PROFILE`` (see :func:`examples` and ``tests/conftest.py``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp

MAX_SIZE = 48  # largest number of elements of any intermediate value
BOUND = 3.0  # values larger than this are rescaled by a constant

# ----------------------------------------------------------------------------- operations


def _fmt_shape(a):
    return "x".join(map(str, np.shape(a))) or "()"


class Op:
    """A step of a program: ``__call__`` on dnp-compatible values; ``arity`` pool arguments."""

    arity = 1
    linear = True

    def __repr__(self):
        return type(self).__name__


_UNARY = {
    "sin": dnp.sin,
    "cos": dnp.cos,
    "tanh": dnp.tanh,
    "exp_tanh": lambda x: dnp.exp(dnp.tanh(x)),
    "log1p_sq": lambda x: dnp.log1p(x * x),
    "sqrt_1p_sq": lambda x: dnp.sqrt(1.0 + x * x),
    "arctan": dnp.arctan,
    "square": dnp.square,
}


class Unary(Op):
    linear = False

    def __init__(self, name):
        self.name = name

    def __call__(self, x):
        return _UNARY[self.name](x)

    def __repr__(self):
        return self.name


class Binary(Op):
    """``a op b``; ``b`` is first summed to a scalar when it does not broadcast with ``a``."""

    arity = 2

    def __init__(self, name, reduce_b):
        self.name = name
        self.reduce_b = reduce_b
        self.linear = name in ("add", "sub")

    def __call__(self, a, b):
        if self.reduce_b:
            b = dnp.sum(b)
        if self.name == "add":
            return a + b
        if self.name == "sub":
            return a - b
        if self.name == "mul":
            return a * b
        return a / (1.0 + b * b)

    def __repr__(self):
        return f"{self.name}{'[b summed]' if self.reduce_b else ''}"


class Gram(Op):
    linear = False

    def __call__(self, a):
        return a @ a if dnp.ndim(a) == 1 else a @ dnp.swapaxes(a, -1, -2)

    def __repr__(self):
        return "a @ a.T"


class MatMul(Op):
    arity = 2
    linear = False

    def __call__(self, a, b):
        return a @ b

    def __repr__(self):
        return "a @ b"


class MatMulConst(Op):
    def __init__(self, c, left):
        self.c = c
        self.left = left

    def __call__(self, a):
        return self.c @ a if self.left else a @ self.c

    def __repr__(self):
        return f"C[{_fmt_shape(self.c)}] @ a" if self.left else f"a @ C[{_fmt_shape(self.c)}]"


class Einsum(Op):
    def __init__(self, spec, const=None):
        self.spec = spec
        self.const = const
        n_ops = len(spec.split("->")[0].split(","))
        self.arity = n_ops - (const is not None)
        self.linear = self.arity == 1

    def __call__(self, *ops):
        if self.const is not None:
            ops = (*ops, self.const)
        return dnp.einsum(self.spec, *ops)

    def __repr__(self):
        c = "" if self.const is None else f", C[{_fmt_shape(self.const)}]"
        return f"einsum({self.spec!r}{c})"


class Reduce(Op):
    def __init__(self, kind, axis, keepdims):
        self.kind, self.axis, self.keepdims = kind, axis, keepdims

    def __call__(self, a):
        f = dnp.sum if self.kind == "sum" else dnp.mean
        return f(a, axis=self.axis, keepdims=self.keepdims)

    def __repr__(self):
        return f"{self.kind}(axis={self.axis}, keepdims={self.keepdims})"


class Reshape(Op):
    def __init__(self, shape):
        self.shape = shape

    def __call__(self, a):
        return dnp.reshape(a, self.shape)

    def __repr__(self):
        return f"reshape{self.shape}"


class Transpose(Op):
    def __init__(self, axes):
        self.axes = axes

    def __call__(self, a):
        return dnp.transpose(a, self.axes)

    def __repr__(self):
        return f"transpose{self.axes}"


class ExpandDims(Op):
    def __init__(self, axis):
        self.axis = axis

    def __call__(self, a):
        return dnp.expand_dims(a, self.axis)

    def __repr__(self):
        return f"expand_dims({self.axis})"


class Concat(Op):
    arity = 2

    def __init__(self, axis):
        self.axis = axis

    def __call__(self, a, b):
        return dnp.concatenate([a, b], axis=self.axis)

    def __repr__(self):
        return f"concatenate(axis={self.axis})"


class Stack(Op):
    arity = 2

    def __init__(self, axis):
        self.axis = axis

    def __call__(self, a, b):
        return dnp.stack([a, b], axis=self.axis)

    def __repr__(self):
        return f"stack(axis={self.axis})"


class Getitem(Op):
    def __init__(self, idx, text):
        self.idx = idx
        self.text = text

    def __call__(self, a):
        return a[self.idx]

    def __repr__(self):
        return f"a[{self.text}]"


class Take(Op):
    def __init__(self, indices, axis):
        self.indices, self.axis = indices, axis

    def __call__(self, a):
        return dnp.take(a, self.indices, axis=self.axis)

    def __repr__(self):
        return f"take({self.indices.tolist()}, axis={self.axis})"


class BroadcastTo(Op):
    def __init__(self, shape):
        self.shape = shape

    def __call__(self, a):
        return dnp.broadcast_to(a, self.shape)

    def __repr__(self):
        return f"broadcast_to{self.shape}"


class Pad(Op):
    def __init__(self, width, mode):
        self.width, self.mode = width, mode

    def __call__(self, a):
        return dnp.pad(a, self.width, mode=self.mode)

    def __repr__(self):
        return f"pad({self.width}, {self.mode!r})"


class Flip(Op):
    def __init__(self, axis):
        self.axis = axis

    def __call__(self, a):
        return dnp.flip(a, self.axis)

    def __repr__(self):
        return f"flip({self.axis})"


class Roll(Op):
    def __init__(self, shift, axis):
        self.shift, self.axis = shift, axis

    def __call__(self, a):
        return dnp.roll(a, self.shift, axis=self.axis)

    def __repr__(self):
        return f"roll({self.shift}, axis={self.axis})"


class Cumsum(Op):
    def __init__(self, axis):
        self.axis = axis

    def __call__(self, a):
        return dnp.cumsum(a, axis=self.axis)

    def __repr__(self):
        return f"cumsum(axis={self.axis})"


class MulConst(Op):
    def __init__(self, c):
        self.c = c

    def __call__(self, a):
        return a * self.c

    def __repr__(self):
        if np.ndim(self.c) == 0:
            return f"a * {float(self.c):.3g}"
        return f"a * C[{_fmt_shape(self.c)}]"


class WhereConst(Op):
    arity = 2

    def __init__(self, mask):
        self.mask = mask

    def __call__(self, a, b):
        return dnp.where(self.mask, a, b)

    def __repr__(self):
        return f"where(M[{_fmt_shape(self.mask)}], a, b)"


# ----------------------------------------------------------------------------- programs


class Program:
    """``steps``: ``(op, argument indices)``; value ``k`` of the pool is input ``k`` for
    ``k < n_inputs``, else the output of step ``k - n_inputs``."""

    def __init__(self, inputs, steps, scalar, seed):
        self.inputs = inputs  # example inputs (float64)
        self.steps = steps
        self.scalar = scalar
        self.seed = seed

    @property
    def shapes(self):
        return [x.shape for x in self.inputs]

    def __call__(self, *xs):
        pool = list(xs)
        for op, idx in self.steps:
            pool.append(op(*[pool[i] for i in idx]))
        out = pool[-1]
        return dnp.sum(out) if self.scalar else out

    def __repr__(self):
        n = len(self.inputs)
        lines = [f"v{i}: input {s}" for i, s in enumerate(self.shapes)]
        for k, (op, idx) in enumerate(self.steps):
            lines.append(f"v{n + k} = {op!r}({', '.join(f'v{i}' for i in idx)})")
        lines.append(f"out = {'sum(' if self.scalar else ''}v{n + len(self.steps) - 1}"
                     f"{')' if self.scalar else ''}   [seed={self.seed}]")
        return "Program:\n    " + "\n    ".join(lines)

    def rng(self, k=0):
        return np.random.default_rng([self.seed, k])

    def random_like_inputs(self, k):
        rng = self.rng(k)
        return [rng.uniform(-1, 1, s) for s in self.shapes]

    def output(self):
        return self(*self.inputs)


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def shapes(draw, max_rank=3, max_dim=4):
    rank = draw(st.integers(0, max_rank))
    return tuple(draw(st.integers(1, max_dim)) for _ in range(rank))


def _draw_axes(draw, nd):
    if draw(st.booleans()) or nd == 0:
        return None
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    if len(axes) == 1 and draw(st.booleans()):
        return axes[0] - nd if draw(st.booleans()) else axes[0]
    return tuple(axes)


def _draw_slice_index(draw, shape):
    idx, text = [], []
    for n in shape:
        kind = draw(st.sampled_from(["full", "range", "int", "newaxis"]))
        if kind == "full":
            idx.append(slice(None))
            text.append(":")
        elif kind == "int":
            i = draw(st.integers(-n, n - 1))
            idx.append(i)
            text.append(str(i))
        elif kind == "newaxis":
            idx.extend([None, slice(None)])
            text.extend(["None", ":"])
        else:
            start = draw(st.integers(0, n - 1))
            stop = draw(st.integers(start + 1, n))
            step = draw(st.integers(1, 2))
            if draw(st.booleans()):
                s = slice(stop - 1, None if start == 0 else start - 1, -step)
            else:
                s = slice(start, stop, step)
            idx.append(s)
            text.append(f"{s.start}:{s.stop}:{s.step}")
    if not idx:
        return None
    return tuple(idx), ", ".join(text)


def _draw_reshape(draw, size):
    if size == 1 and draw(st.booleans()):
        return ()
    rank = draw(st.integers(1, 3))
    dims = []
    rem = size
    for _ in range(rank - 1):
        d = draw(st.sampled_from(_divisors(rem)))
        dims.append(d)
        rem //= d
    dims.append(rem)
    return tuple(dims)


def _draw_einsum_spec(draw, sa, sb=None):
    """A random valid spec for operands of shapes ``sa`` (and ``sb``)."""
    letters = iter("abcdefgh")
    size = {}
    ta = []
    for n in sa:
        same = [c for c in ta if size[c] == n]
        if same and draw(st.integers(0, 4)) == 0:  # repeated letter: a diagonal
            ta.append(draw(st.sampled_from(same)))
        else:
            c = next(letters)
            size[c] = n
            ta.append(c)
    terms = ["".join(ta)]
    if sb is not None:
        tb = []
        for n in sb:
            shared = [c for c in dict.fromkeys(ta) if size[c] == n and c not in tb]
            if shared and draw(st.booleans()):
                tb.append(draw(st.sampled_from(shared)))
            else:
                c = next(letters)
                size[c] = n
                tb.append(c)
        terms.append("".join(tb))
    avail = list(dict.fromkeys("".join(terms)))
    out = draw(st.permutations(avail))
    k = draw(st.integers(0, len(out)))
    out = out[:k]
    if int(np.prod([size[c] for c in out])) > MAX_SIZE:
        return None
    return ",".join(terms) + "->" + "".join(out)


# the smooth pool weights the elementwise non-linearities (unary, binary) more heavily
_SMOOTH_KINDS = ["unary"] * 6 + ["binary"] * 2 + [
    "gram", "matmul", "matmul_const", "einsum", "reduce", "reshape", "transpose", "expand_dims",
    "concatenate", "stack", "slice", "broadcast", "take", "pad", "flip", "roll", "cumsum",
    "mul_const", "where"]
_LINEAR_KINDS = ["binary", "matmul_const", "einsum", "reduce", "reshape", "transpose",
                 "expand_dims", "concatenate", "stack", "slice", "broadcast", "take", "pad",
                 "flip", "roll", "cumsum", "mul_const", "where"]


def _broadcastable(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        return False
    return True


def _draw_op(draw, kind, pool, i, rng, linear, unused=()):
    """An op of ``kind`` whose first argument is ``pool[i]``; returns ``(op, arg indices)``.

    Second arguments are preferably values that no step has used yet (``unused``).
    """
    a = pool[i]
    sa = a.shape
    nd = len(sa)

    def other(pred=lambda v: True):
        cands = [j for j, v in enumerate(pool) if pred(v)]
        fresh = [j for j in cands if j in unused and j != i]
        if fresh and draw(st.integers(0, 3)) > 0:
            return draw(st.sampled_from(fresh))
        return draw(st.sampled_from(cands)) if cands else None

    if kind == "unary":
        # Hypothesis favours the first elements of sampled_from: shuffle them per program
        return Unary(draw(st.sampled_from([str(n) for n in rng.permutation(sorted(_UNARY))]))), (i,)
    if kind == "binary":
        names = ["add", "sub"] if linear else ["add", "sub", "mul", "div"]
        name = draw(st.sampled_from(names))
        j = other()
        reduce_b = not _broadcastable(sa, pool[j].shape) or draw(st.integers(0, 5)) == 0
        return Binary(name, reduce_b), (i, j)
    if kind == "gram" and nd >= 1:
        return Gram(), (i,)
    if kind == "matmul" and nd >= 1:
        def ok(v):
            if v.ndim == 0:
                return False
            try:
                np.matmul(np.zeros(sa), np.zeros(v.shape))
            except ValueError:
                return False
            return True

        j = other(ok)
        if j is not None:
            return MatMul(), (i, j)
        return None
    if kind == "matmul_const" and nd >= 1:
        k = draw(st.integers(1, 4))
        if nd >= 2 and draw(st.booleans()):
            return MatMulConst(rng.uniform(-1, 1, (k, sa[-2])), left=True), (i,)
        return MatMulConst(rng.uniform(-1, 1, (sa[-1], k)), left=False), (i,)
    if kind == "einsum":
        if linear:
            sc = draw(shapes(max_rank=2))
            spec = _draw_einsum_spec(draw, sa, sc)
            if spec is None:
                return None
            return Einsum(spec, const=rng.uniform(-1, 1, sc)), (i,)
        two = draw(st.booleans())
        j = other() if two else None
        spec = _draw_einsum_spec(draw, sa, pool[j].shape if two else None)
        if spec is None:
            return None
        return Einsum(spec), (i,) if j is None else (i, j)
    if kind == "reduce":
        return Reduce(draw(st.sampled_from(["sum", "mean"])), _draw_axes(draw, nd),
                      draw(st.booleans())), (i,)
    if kind == "reshape":
        return Reshape(_draw_reshape(draw, a.size)), (i,)
    if kind == "transpose" and nd >= 2:
        return Transpose(tuple(draw(st.permutations(range(nd))))), (i,)
    if kind == "expand_dims" and nd < 4:
        return ExpandDims(draw(st.integers(-nd - 1, nd))), (i,)
    if kind == "concatenate" and nd >= 1:
        ax = draw(st.integers(0, nd - 1))
        j = other(lambda v: v.ndim == nd and all(
            v.shape[d] == sa[d] for d in range(nd) if d != ax))
        return Concat(ax - nd if draw(st.booleans()) else ax), (i, j)
    if kind == "stack":
        j = other(lambda v: v.shape == sa)
        return Stack(draw(st.integers(-nd - 1, nd))), (i, j)
    if kind == "slice" and nd >= 1:
        r = _draw_slice_index(draw, sa)
        if r is None:
            return None
        return Getitem(*r), (i,)
    if kind == "broadcast":
        lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 3 - min(nd, 3)))))
        body = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in sa)
        return BroadcastTo(lead + body), (i,)
    if kind == "take" and nd >= 1:
        ax = draw(st.integers(0, nd - 1))
        m = draw(st.integers(1, 4))
        ind = np.array([draw(st.integers(-sa[ax], sa[ax] - 1)) for _ in range(m)])
        if draw(st.booleans()) and m % 2 == 0:
            ind = ind.reshape(2, m // 2)
        return Take(ind, ax), (i,)
    if kind == "pad" and nd >= 1:
        width = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
        modes = ["constant", "edge", "wrap"] + ([] if min(sa) < 2 else ["reflect", "symmetric"])
        return Pad(width, draw(st.sampled_from(modes))), (i,)
    if kind == "flip":
        return Flip(_draw_axes(draw, nd)), (i,)
    if kind == "roll" and nd >= 1:
        return Roll(draw(st.integers(-3, 3)), draw(st.integers(0, nd - 1))), (i,)
    if kind == "cumsum":
        if nd == 0:
            return Cumsum(None), (i,)
        return Cumsum(draw(st.sampled_from([None, *range(nd)]))), (i,)
    if kind == "mul_const":
        if draw(st.booleans()):
            return MulConst(float(rng.uniform(0.5, 2.0) * rng.choice([-1, 1]))), (i,)
        keep = [draw(st.booleans()) for _ in sa]
        cshape = tuple(n if k else 1 for n, k in zip(sa, keep, strict=True))
        cshape = cshape[draw(st.integers(0, nd)):]
        return MulConst(rng.uniform(-1.5, 1.5, cshape)), (i,)
    if kind == "where":
        j = other(lambda v: _broadcastable(sa, v.shape))
        shape = np.broadcast_shapes(sa, pool[j].shape)
        return WhereConst(rng.uniform(size=shape) < 0.5), (i, j)
    return None


@st.composite
def programs(draw, linear=False, max_input_size=None, scalar=None, max_inputs=3):
    """Random programs; see the module docstring."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_in = draw(st.integers(1, max_inputs))
    ins = []
    for _ in range(n_in):
        s = draw(shapes())
        if max_input_size is not None:
            while int(np.prod(s)) > max_input_size:
                s = s[1:]
        ins.append(rng.uniform(-1, 1, s))
    pool = list(ins)
    steps = []
    depth = draw(st.integers(1, 6))
    # Hypothesis favours the first elements of sampled_from: shuffle the kinds per program
    kinds = [str(k) for k in rng.permutation(_LINEAR_KINDS if linear else _SMOOTH_KINDS)]
    attempts = 0
    unused = set(range(n_in))
    while len(steps) < depth and attempts < 4 * depth:
        attempts += 1
        # mostly the most recent value (deep compositions), sometimes any earlier one (fan-out)
        last = len(pool) - 1
        i = last if draw(st.integers(0, 3)) > 0 else draw(st.integers(0, last))
        kind = draw(st.sampled_from(kinds))
        got = _draw_op(draw, kind, pool, i, rng, linear, unused)
        if got is None:
            continue
        op, idx = got
        with np.errstate(all="raise"):
            val = np.asarray(op(*[pool[j] for j in idx]))
        if val.size > MAX_SIZE or val.ndim > 4 or val.size == 0:
            continue
        steps.append((op, idx))
        unused -= set(idx)
        unused.add(len(pool))
        pool.append(val)
        m = float(np.max(np.abs(val)))
        if not linear and m > BOUND:
            scale = MulConst(BOUND / (2 * m))
            steps.append((scale, (len(pool) - 1,)))
            pool.append(val * scale.c)
    if not steps:  # always at least one step
        steps.append((MulConst(1.5), (len(pool) - 1,)))
    if scalar is None:
        scalar = draw(st.booleans())
    return Program(ins, steps, scalar, seed)


# ----------------------------------------------------------------------------- helpers


def _leaves(t):
    return [np.asarray(x) for x in diffprog.tree_leaves(t)]


def _inner(a, b):
    return float(sum(np.sum(np.asarray(x) * np.asarray(y)) for x, y in zip(a, b, strict=True)))


def _abs_inner(a, b):
    return float(sum(np.sum(np.abs(x) * np.abs(y)) for x, y in zip(a, b, strict=True)))


def _norm(arrays):
    return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))


def _assert_adjoint(t, u, vs, cts, rtol, floor):
    """``⟨t, u⟩ == Σ⟨v_i, ct_i⟩`` up to ``rtol`` relative to the sums of absolute terms, plus
    ``floor·‖u‖‖v‖`` (exact cancellations, e.g. a function that is identically zero, leave
    round-off of that size)."""
    lhs = _inner([t], [u])
    rhs = _inner(vs, cts)
    mag = max(_abs_inner([t], [u]), _abs_inner(vs, cts))
    bound = rtol * mag + floor * _norm([u]) * _norm(vs)
    assert abs(lhs - rhs) <= bound, f"<jvp(v), u> = {lhs!r} but <v, vjp(u)> = {rhs!r}"


def _scale(*arrays):
    return max([1.0] + [float(np.max(np.abs(a), initial=0.0)) for a in arrays])


def _close(got, want, rtol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * _scale(want), err_msg=what)


def _flat_version(prog):
    """``z ↦ prog(*inputs from z)`` with ``z`` the concatenation of the flattened inputs."""
    shapes_ = prog.shapes
    sizes = [int(np.prod(s)) for s in shapes_]

    def g(z):
        xs, o = [], 0
        for s, n in zip(shapes_, sizes, strict=True):
            xs.append(dnp.reshape(z[o:o + n], s))
            o += n
        return prog(*xs)

    z0 = np.concatenate([x.ravel() for x in prog.inputs])
    return g, z0


# ----------------------------------------------------------------------------- properties

_FD_DELTA = 1e-6


def examples(n):
    """``n`` examples under the default ("ci") profile, scaled with the loaded profile's
    ``max_examples`` (``HYPOTHESIS_PROFILE=dev`` runs 8x more)."""
    return max(1, n * settings.default.max_examples // 25)


@settings(max_examples=examples(300))
@given(programs())
def test_jvp_matches_central_finite_differences(prog):
    xs = prog.inputs
    vs = prog.random_like_inputs(1)
    out, t = diffprog.jvp(prog, tuple(xs), tuple(vs))
    _close(out, prog.output(), 1e-13, "primal output of jvp")
    plus = prog(*[x + _FD_DELTA * v for x, v in zip(xs, vs, strict=True)])
    minus = prog(*[x - _FD_DELTA * v for x, v in zip(xs, vs, strict=True)])
    fd = (np.asarray(plus) - np.asarray(minus)) / (2 * _FD_DELTA)
    t = np.asarray(t)
    assert t.shape == fd.shape
    tol = 1e-6 * _scale(fd, out)
    np.testing.assert_allclose(t, fd, rtol=1e-6, atol=tol, err_msg=repr(prog))


@settings(max_examples=examples(300))
@given(programs())
def test_adjoint_identity(prog):
    xs = prog.inputs
    vs = prog.random_like_inputs(1)
    out, t = diffprog.jvp(prog, tuple(xs), tuple(vs))
    u = prog.rng(2).uniform(-1, 1, np.shape(out))
    out2, f_vjp = diffprog.vjp(prog, *xs)
    cts = f_vjp(u)
    assert isinstance(cts, tuple) and len(cts) == len(xs)
    for c, x in zip(cts, xs, strict=True):
        assert np.shape(c) == x.shape
        assert np.result_type(c) == np.float64
    _assert_adjoint(t, u, vs, cts, rtol=1e-10, floor=1e-13)
    _close(out2, out, 1e-13, "primal output of vjp")


@settings(max_examples=examples(150))
@given(programs())
def test_jacfwd_equals_jacrev(prog):
    argnums = tuple(range(len(prog.inputs)))
    jf = diffprog.jacfwd(prog, argnums=argnums)(*prog.inputs)
    jr = diffprog.jacrev(prog, argnums=argnums)(*prog.inputs)
    out_shape = np.shape(prog.output())
    assert len(jf) == len(jr) == len(argnums)
    for k, (a, b) in enumerate(zip(jf, jr, strict=True)):
        want_shape = out_shape + prog.shapes[k]
        assert np.shape(a) == want_shape and np.shape(b) == want_shape
        _close(a, b, 1e-10, f"jacfwd vs jacrev, input {k}")


@settings(max_examples=examples(80))
@given(programs(scalar=True, max_input_size=8))
def test_hessian_symmetric_and_consistent(prog):
    g, z = _flat_version(prog)
    n = z.size
    h = np.asarray(diffprog.hessian(g)(z))
    assert h.shape == (n, n)
    _close(h, h.T, 1e-9, "hessian symmetry")
    h_fr = diffprog.jacfwd(diffprog.jacrev(g))(z)
    h_rf = diffprog.jacrev(diffprog.jacfwd(g))(z)
    _close(h_fr, h, 1e-12, "jacfwd(jacrev(f))")
    _close(h_rf, h, 1e-9, "jacrev(jacfwd(f))")
    v = prog.rng(3).uniform(-1, 1, n)
    hv = h @ v
    for method in ("fwd-rev", "rev-rev", "rev-fwd", "fwd-fwd"):
        _close(diffprog.hvp(g, z, v, method=method), hv, 1e-9, f"hvp method={method}")
    # and H v is the directional derivative of the gradient (central differences)
    grad_g = diffprog.grad(g)
    d = 1e-5
    fd = (np.asarray(grad_g(z + d * v)) - np.asarray(grad_g(z - d * v))) / (2 * d)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-6 * _scale(fd, hv),
                               err_msg="H v vs finite differences of the gradient")


@settings(max_examples=examples(300))
@given(programs(linear=True))
def test_linear_transpose_is_the_adjoint(prog):
    xs = prog.inputs
    f_t = diffprog.linear_transpose(prog, *xs)
    vs = prog.random_like_inputs(1)
    y = np.asarray(prog(*vs))
    u = prog.rng(2).uniform(-1, 1, y.shape)
    cts = f_t(u)
    assert isinstance(cts, tuple) and len(cts) == len(xs)
    for c, x in zip(cts, xs, strict=True):
        assert np.shape(c) == x.shape
    _assert_adjoint(y, u, vs, cts, rtol=1e-12, floor=1e-14)
    # independent of the example primal
    for k, examples in enumerate(([np.zeros_like(x) for x in xs], prog.random_like_inputs(4))):
        cts2 = diffprog.linear_transpose(prog, *examples)(u)
        for c, c2 in zip(cts, cts2, strict=True):
            _close(c2, c, 1e-14, f"linear_transpose with example primals #{k}")
    # it is the VJP of the linear function at any point, whose JVP is the function itself
    _, f_vjp = diffprog.vjp(prog, *prog.random_like_inputs(5))
    for c, c2 in zip(cts, f_vjp(u), strict=True):
        _close(c2, c, 1e-12, "vjp of a linear program")
    _, t = diffprog.jvp(prog, tuple(prog.random_like_inputs(6)), tuple(vs))
    _close(t, y, 1e-12, "jvp of a linear program")


@settings(max_examples=examples(200))
@given(programs())
def test_linearize_equals_jvp(prog):
    xs = prog.inputs
    out, jvp_fn = diffprog.linearize(prog, *xs)
    _close(out, prog.output(), 1e-13, "primal output of linearize")
    for k in (1, 2):
        vs = prog.random_like_inputs(k)
        _, t = diffprog.jvp(prog, tuple(xs), tuple(vs))
        _close(jvp_fn(*vs), t, 1e-12, f"linearize jvp_fn, tangent #{k}")


# ----------------------------------------------------------------------------- pytrees

Pair = namedtuple("Pair", ["first", "second"])


@st.composite
def tree_builders(draw, n):
    """A nested container holding ``n`` leaves (and sometimes ``None``), as
    ``build(leaves) -> tree``."""
    if n == 1 and draw(st.booleans()):
        return lambda leaves: leaves[0]
    # split the leaves into 1..3 groups (2 for the namedtuple)
    kind = draw(st.sampled_from(["tuple", "list", "dict", "namedtuple"]))
    if kind == "namedtuple" and n < 2:
        kind = "tuple"
    n_groups = 2 if kind == "namedtuple" else draw(st.integers(1, min(3, n)))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=n_groups - 1,
                                max_size=n_groups - 1, unique=True))) if n_groups > 1 else []
    bounds = [0, *cuts, n]
    subs = [draw(tree_builders(hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    keys = draw(st.permutations(["w", "b", "a", "z"]))[:n_groups]
    with_none = kind != "namedtuple" and draw(st.integers(0, 3)) == 0  # a None child

    def build(leaves):
        parts = [s(leaves[lo:hi]) for s, lo, hi in zip(subs, bounds[:-1], bounds[1:],
                                                           strict=True)]
        if with_none:
            parts.append(None)
            if kind == "dict":
                return dict(zip([*keys, "none"], parts, strict=True))
        if kind == "tuple":
            return tuple(parts)
        if kind == "list":
            return parts
        if kind == "namedtuple":
            return Pair(*parts)
        return dict(zip(keys, parts, strict=True))

    return build


@settings(max_examples=examples(150))
@given(st.data())
def test_pytree_gradients_match_flat_version(data):
    prog = data.draw(programs(scalar=True))
    build = data.draw(tree_builders(len(prog.inputs)))
    tree = build(list(prog.inputs))
    leaves, treedef = diffprog.tree_flatten(tree)
    order = [next(k for k, x in enumerate(prog.inputs) if x is leaf) for leaf in leaves]

    def f_tree(t):
        ls = diffprog.tree_leaves(t)
        by_input = [None] * len(ls)
        for leaf, k in zip(ls, order, strict=True):
            by_input[k] = leaf
        return prog(*by_input)

    g_tree = diffprog.grad(f_tree)(tree)
    assert diffprog.tree_structure(g_tree) == treedef
    g_flat = diffprog.grad(prog, argnums=tuple(range(len(prog.inputs))))(*prog.inputs)
    for leaf_g, k in zip(diffprog.tree_leaves(g_tree), order, strict=True):
        _close(leaf_g, g_flat[k], 1e-13, "pytree gradient leaf")
    # value_and_grad, vjp and jvp keep the structure as well
    val, g2 = diffprog.value_and_grad(f_tree)(tree)
    _close(val, prog.output(), 1e-13, "value")
    assert diffprog.tree_structure(g2) == treedef
    _, f_vjp = diffprog.vjp(f_tree, tree)
    (ct,) = f_vjp(np.ones(()))
    assert diffprog.tree_structure(ct) == treedef
    for a, b in zip(diffprog.tree_leaves(ct), diffprog.tree_leaves(g_tree), strict=True):
        _close(a, b, 1e-13, "vjp leaf")
    tangent = diffprog.tree_unflatten(treedef, [np.ones_like(x) for x in leaves])
    _, t = diffprog.jvp(f_tree, (tree,), (tangent,))
    want = sum(float(np.sum(g)) for g in diffprog.tree_leaves(g_tree))
    _close(t, want, 1e-12, "jvp with a pytree tangent")


# ----------------------------------------------------------------------------- generator sanity


def test_generator_covers_the_pool():
    """The program generator produces every op kind (so the properties exercise them all)."""
    seen = set()

    @settings(max_examples=400, derandomize=True, database=None)
    @given(programs())
    def collect(prog):
        for op, _ in prog.steps:
            seen.add(type(op).__name__ if not isinstance(op, Unary) else op.name)

    collect()
    expected = {"Binary", "Gram", "MatMulConst", "Einsum", "Reduce", "Reshape", "Transpose",
                "ExpandDims", "Concat", "Stack", "Getitem", "BroadcastTo", "Take", "Pad",
                "Flip", "Roll", "Cumsum", "MulConst", "WhereConst", *_UNARY}
    missing = expected - seen
    assert not missing, f"op kinds never generated: {sorted(missing)}"


@pytest.mark.parametrize("linear", [False, True])
def test_programs_run_on_plain_arrays(linear):
    @settings(max_examples=20, derandomize=True, database=None)
    @given(programs(linear=linear))
    def run(prog):
        out = np.asarray(prog.output())
        assert np.all(np.isfinite(out))
        if not linear:
            assert out.size <= MAX_SIZE

    run()
