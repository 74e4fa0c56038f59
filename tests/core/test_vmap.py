"""``vmap``: batching rules for every primitive, the loop fallback, composition with derivatives.

The reference is always the loop over examples, ``stack([f(x) for x in xs])`` (or a closed
form), never pasted numbers:

- every case of the primitive table of ``tests/numpy/test_every_primitive.py`` (one or more per
  registered primitive) is batched along axis 0, along other axes with some arguments unmapped
  (``in_axes=None``), and composed with ``jvp``/``vjp`` in both orders;
- every registered primitive has a batching rule except a small, known set (the loop fallback);
- ``in_axes``/``out_axes`` (ints, negative, ``None``, pytree prefixes), keyword arguments,
  pytree inputs and outputs, broadcast of unmapped outputs, nested ``vmap``;
- per-example gradients of a tanh MLP with softmax cross-entropy (book §9.8.3), gradients of a
  sum over a ``vmap`` (``grad(vmap)``), ``jvp``/``vjp`` of ``vmap`` and ``vmap`` of them, Jacobians
  as batched JVPs/VJPs (book §8.1.3);
- batched index arrays (vectorized rules and the loop), ``custom_jvp``/``custom_vjp``;
- a Hypothesis property over random programs (the generators of ``test_properties``);
- errors: inconsistent sizes, axes out of range, ``in_axes`` structure mismatch (``ValueError``
  naming ``vmap``), Python control flow on a batched value.
"""

from __future__ import annotations

import zlib
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
import diffprog.scipy.special as sps
from diffprog.core import batching_rules
from diffprog.core.batching import FALLBACK_CALLS, BatchTracer, vmap
from diffprog.core.primitive import Primitive, registry
from tests.core import test_properties as props
from tests.numpy import test_every_primitive as every

# ----------------------------------------------------------------------------- helpers

N = 3  # examples per batch


def _leaves(t):
    return [np.asarray(x) for x in diffprog.tree_leaves(t)]


def _assert_tree_close(got, want, rtol=1e-10, what=""):
    gl, wl = _leaves(got), _leaves(want)
    assert len(gl) == len(wl), f"{what}: {len(gl)} leaves, expected {len(wl)}"
    for k, (g, w) in enumerate(zip(gl, wl, strict=True)):
        assert g.shape == w.shape, f"{what} leaf {k}: shape {g.shape}, expected {w.shape}"
        assert g.dtype == w.dtype, f"{what} leaf {k}: dtype {g.dtype}, expected {w.dtype}"
        scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, err_msg=f"{what} leaf {k}")


def _stack_trees(trees, axis=0):
    """The pytree whose leaves stack the corresponding leaves of ``trees`` along ``axis``."""
    flat = [diffprog.tree_flatten(t) for t in trees]
    treedef = flat[0][1]
    cols = zip(*[f[0] for f in flat], strict=True)
    return diffprog.tree_unflatten(treedef, [np.stack([np.asarray(v) for v in c], axis=axis)
                                             for c in cols])


def _examples(c, n=N):
    """``n`` independent argument tuples of a case (all inside its domain)."""
    rng = np.random.default_rng(zlib.crc32(c.id.encode()))
    return [tuple(np.asarray(a) for a in c.args(rng)) for _ in range(n)]


def _fn(c):
    return c.fn if isinstance(c, every.Case) else c.expr


#: cases that cannot be vectorized: their Python code depends on the values (documented)
NOT_VECTORIZABLE = {
    # lstsq computes the numerical rank with NumPy and branches on it (value-dependent code)
    "linalg_pinv:lstsq",
}

#: cases calling a NumPy method on their first argument: with that argument unmapped it is a
#: plain array, and ``ndarray.dot(traced)`` is NumPy's, not diffprog's (true of every tracer)
_PLAIN_FIRST_ARG_UNSUPPORTED = {"matmul:dot_method"}

ALL_CASES = every.CASES + every.NONDIFF_CASES
_IDS = [c.id for c in ALL_CASES]
_VEC = [c for c in ALL_CASES if c.id not in NOT_VECTORIZABLE]
_VEC_DIFF = [c for c in every.CASES if c.id not in NOT_VECTORIZABLE]


def _registered_fallbacks_in(calls):
    return {n for n in calls if n in registry and n not in batching_rules.LOOP_FALLBACK}


# ----------------------------------------------------------------------------- every primitive


@pytest.mark.parametrize("c", _VEC, ids=[c.id for c in _VEC])
def test_every_case_batched_along_axis0(c):
    fn = _fn(c)
    ex = _examples(c)
    want = _stack_trees([fn(*e) for e in ex])
    FALLBACK_CALLS.clear()
    got = vmap(fn)(*[np.stack(col) for col in zip(*ex, strict=True)])
    _assert_tree_close(got, want, what=c.id)
    # registered primitives with a rule never went through the loop
    assert not _registered_fallbacks_in(FALLBACK_CALLS), dict(FALLBACK_CALLS)


@pytest.mark.parametrize("c", _VEC, ids=[c.id for c in _VEC])
def test_every_case_other_axes_and_unmapped_arguments(c):
    """First argument mapped along its last axis, the others unmapped (``None``); then the first
    unmapped and the others mapped along axis 1 (or 0 for scalars)."""
    fn = _fn(c)
    ex = _examples(c)
    first = np.stack([e[0] for e in ex], axis=-1)
    in_axes = (-1,) + (None,) * (len(ex[0]) - 1)
    want = _stack_trees([fn(e[0], *ex[0][1:]) for e in ex])
    got = vmap(fn, in_axes=in_axes)(first, *ex[0][1:])
    _assert_tree_close(got, want, what=f"{c.id} in_axes={in_axes}")
    if len(ex[0]) > 1 and c.id not in _PLAIN_FIRST_ARG_UNSUPPORTED:
        axes = (None,) + tuple(min(1, e.ndim) for e in ex[0][1:])
        rest = [np.stack([e[k] for e in ex], axis=axes[k]) for k in range(1, len(ex[0]))]
        want = _stack_trees([fn(ex[0][0], *e[1:]) for e in ex])
        got = vmap(fn, in_axes=axes)(ex[0][0], *rest)
        _assert_tree_close(got, want, what=f"{c.id} in_axes={axes}")


def _tangents(ex, seed=7):
    rng = np.random.default_rng(seed)
    out = []
    for e in ex:
        ts = []
        for a in e:
            t = rng.standard_normal(a.shape)
            if a.dtype.kind == "c":
                t = t + 1j * rng.standard_normal(a.shape)
            ts.append(t.astype(a.dtype))
        out.append(tuple(ts))
    return out


@pytest.mark.parametrize("c", _VEC_DIFF, ids=[c.id for c in _VEC_DIFF])
def test_every_case_jvp_vjp_compose_with_vmap(c):
    """``vmap(jvp)``, ``jvp(vmap)``, ``vmap(vjp)`` and ``vjp(vmap)`` equal the loop."""
    fn = c.fn
    ex = _examples(c)
    ts = _tangents(ex)
    n = len(ex[0])
    xs = [np.stack(col) for col in zip(*ex, strict=True)]
    vs = [np.stack(col) for col in zip(*ts, strict=True)]
    want = _stack_trees([diffprog.jvp(fn, e, t) for e, t in zip(ex, ts, strict=True)])

    def f_jvp(*a):
        return diffprog.jvp(fn, a[:n], a[n:])

    _assert_tree_close(vmap(f_jvp)(*xs, *vs), want, rtol=1e-9, what="vmap(jvp)")
    _assert_tree_close(diffprog.jvp(vmap(fn), tuple(xs), tuple(vs)), want, rtol=1e-9,
                       what="jvp(vmap)")

    def f_vjp(*a):
        out, pull = diffprog.vjp(fn, *a)
        return pull(out)  # the output itself as the cotangent

    want = _stack_trees([f_vjp(*e) for e in ex])
    _assert_tree_close(vmap(f_vjp)(*xs), want, rtol=1e-9, what="vmap(vjp)")
    out, pull = diffprog.vjp(vmap(fn), *xs)
    _assert_tree_close(pull(out), want, rtol=1e-9, what="vjp(vmap)")


@pytest.mark.parametrize("cid", sorted(NOT_VECTORIZABLE))
def test_value_dependent_cases_refuse_clearly(cid):
    c = next(c for c in ALL_CASES if c.id == cid)
    ex = _examples(c)
    with pytest.raises(TypeError, match="concrete value"):
        vmap(_fn(c))(*[np.stack(col) for col in zip(*ex, strict=True)])


# ----------------------------------------------------------------------------- coverage

#: registered primitives that keep the loop fallback (none today: add a name here only with a
#: reason, e.g. a primitive whose per-example calls cannot be vectorized)
EXPECTED_LOOP_FALLBACK: set = set()


def _library_primitives():
    return {n: p for n, p in registry.items() if not every._defined_outside_library(p)}


def test_every_registered_primitive_has_a_rule_or_a_known_fallback():
    left = batching_rules.attach_rules()
    library = _library_primitives()
    fallback = {n for n in left if n in library}
    assert fallback == EXPECTED_LOOP_FALLBACK, (
        f"primitives batched by the loop fallback: {sorted(fallback)}; expected "
        f"{sorted(EXPECTED_LOOP_FALLBACK)} (write a rule in diffprog/core/batching_rules.py)"
    )
    assert len(fallback) <= 5
    for n, p in library.items():
        assert (p.batch is None) == (n in fallback), n
    assert batching_rules.LOOP_FALLBACK >= fallback


def test_every_registered_primitive_is_exercised_by_a_vectorized_case():
    covered = {c.prim for c in _VEC if not isinstance(c, every.Case) or c.exercises}
    missing = sorted(n for n in _library_primitives() if n not in covered)
    assert not missing, f"primitives without a vmap test case: {missing}"


def test_loop_fallback_for_a_primitive_without_rule():
    """A primitive with no batching rule (here unregistered) is mapped by the loop, and its
    derivatives still compose (the loop only binds the primitive)."""
    sin_p = Primitive("test_vmap_sin", np.sin, register=False)
    sin_p.jvp = lambda primals, tangents, ans: tangents[0] * dnp.cos(primals[0])
    xs = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
    FALLBACK_CALLS.clear()
    np.testing.assert_allclose(vmap(sin_p.bind)(xs), np.sin(xs))
    np.testing.assert_allclose(vmap(sin_p.bind, in_axes=1)(xs), np.sin(xs).T)
    assert FALLBACK_CALLS["test_vmap_sin"] == 2
    assert sin_p.batch is None  # an unregistered name never receives a table rule
    g = vmap(diffprog.grad(lambda x: dnp.sum(sin_p.bind(x) ** 2)))(xs)
    np.testing.assert_allclose(g, 2 * np.sin(xs) * np.cos(xs))
    g = diffprog.grad(lambda x: dnp.sum(vmap(sin_p.bind)(x) ** 2))(xs)
    np.testing.assert_allclose(g, 2 * np.sin(xs) * np.cos(xs))


def test_loop_fallback_empty_batch():
    sin_p = Primitive("test_vmap_sin0", np.sin, register=False)
    out = vmap(sin_p.bind)(np.zeros((0, 3)))
    assert out.shape == (0, 3)
    out = vmap(dnp.sin)(np.zeros((0, 2)))
    assert out.shape == (0, 2)


def test_custom_jvp_and_custom_vjp_are_batched_with_their_rules():
    @diffprog.custom_jvp
    def softplus(x):
        return dnp.logaddexp(x, 0.0)

    # a deliberately scaled rule: the custom rule (not the function's own derivative) is used
    @softplus.defjvp
    def _(primals, tangents):
        return softplus(primals[0]), 3.0 * tangents[0] * sps.expit(primals[0])

    @diffprog.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), lambda x, g: (5.0 * x * g,))
    xs = np.linspace(-2.0, 2.0, 8).reshape(4, 2)
    np.testing.assert_allclose(vmap(softplus)(xs), np.logaddexp(xs, 0.0))
    for h in (vmap(diffprog.grad(lambda x: dnp.sum(softplus(x)))),
              diffprog.grad(lambda x: dnp.sum(vmap(softplus)(x)))):
        np.testing.assert_allclose(h(xs), 3.0 * sps.expit(xs))
    for h in (vmap(diffprog.grad(lambda x: dnp.sum(square(x)))),
              diffprog.grad(lambda x: dnp.sum(vmap(square)(x)))):
        np.testing.assert_allclose(h(xs), 5.0 * xs)
    assert "custom_jvp[softplus]" in FALLBACK_CALLS


# ----------------------------------------------------------------------------- axes and pytrees


def test_in_axes_none_and_negative():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 4))
    xs = rng.normal(size=(4, 5))  # examples along axis 1 (and -1)
    want = np.stack([A @ xs[:, i] for i in range(5)])
    for ax in (1, -1):
        np.testing.assert_allclose(vmap(lambda a, x: a @ x, in_axes=(None, ax))(A, xs), want)
    # an unmapped argument is passed whole, every time
    seen = []
    vmap(lambda a, x: seen.append(a.shape) or x, in_axes=(None, 0))(A, xs)
    assert seen == [(3, 4)]


def test_out_axes():
    xs = np.arange(12.0).reshape(3, 4)
    f = lambda x: (x * 2.0, dnp.sum(x))
    out = vmap(f, out_axes=(1, 0))(xs)
    np.testing.assert_allclose(out[0], (xs * 2.0).T)
    np.testing.assert_allclose(out[1], xs.sum(1))
    out = vmap(lambda x: dnp.outer(x, x), out_axes=-1)(xs)
    np.testing.assert_allclose(out, np.stack([np.outer(x, x) for x in xs], axis=-1))
    out = vmap(lambda x: dnp.outer(x, x), out_axes=1)(xs)
    np.testing.assert_allclose(out, np.stack([np.outer(x, x) for x in xs], axis=1))
    # out_axes=None for an output that does not depend on the mapped input
    c = np.array([1.0, 2.0])
    out = vmap(lambda x, c: (x + 1.0, c * 2.0), in_axes=(0, None), out_axes=(0, None))(xs, c)
    np.testing.assert_allclose(out[1], c * 2.0)
    assert out[1].shape == (2,)


def test_unmapped_outputs_are_broadcast():
    xs = np.arange(6.0).reshape(3, 2)
    c = np.array([5.0, 6.0])
    out = vmap(lambda x, c: (c, 1.0, x[0] * 0 + 2.0), in_axes=(0, None))(xs, c)
    np.testing.assert_allclose(out[0], np.stack([c] * 3))
    np.testing.assert_allclose(out[1], np.ones(3))
    np.testing.assert_allclose(out[2], np.full(3, 2.0))
    out[0][0, 0] = -1.0  # a writeable array, not a read-only broadcast view
    np.testing.assert_allclose(c, [5.0, 6.0])
    # axis_size: nothing mapped at all
    out = vmap(lambda c: c * 2.0, in_axes=None, axis_size=4)(c)
    np.testing.assert_allclose(out, np.stack([c * 2.0] * 4))


Params = namedtuple("Params", ["w", "b"])


def test_pytree_inputs_outputs_and_prefix_axes():
    rng = np.random.default_rng(1)
    p = Params(w=rng.normal(size=(3, 2)), b=rng.normal(size=2))
    xs = {"x": rng.normal(size=(4, 3)), "scale": rng.normal(size=(4,))}

    def f(p, d):
        y = d["x"] @ p.w + p.b
        return {"y": y * d["scale"], "parts": [dnp.sum(y), (p.b,)]}

    want = _stack_trees([f(p, {"x": x, "scale": s}) for x, s in zip(xs["x"], xs["scale"],
                                                                     strict=True)])
    _assert_tree_close(vmap(f, in_axes=(None, 0))(p, xs), want)
    _assert_tree_close(vmap(f, in_axes=(Params(None, None), {"x": 0, "scale": 0}))(p, xs), want)
    # mapping only part of a namedtuple: a batch of biases
    bs = rng.normal(size=(5, 2))
    want = _stack_trees([f(Params(p.w, b), {"x": xs["x"][0], "scale": 1.0}) for b in bs])
    got = vmap(f, in_axes=(Params(None, 0), None))(Params(p.w, bs), {"x": xs["x"][0],
                                                                     "scale": 1.0})
    _assert_tree_close(got, want)
    # out_axes as a pytree prefix
    got = vmap(f, in_axes=(None, 0), out_axes={"y": 1, "parts": 0})(p, xs)
    np.testing.assert_allclose(got["y"], np.stack([f(p, {"x": x, "scale": s})["y"] for x, s in
                                                   zip(xs["x"], xs["scale"], strict=True)], 1))


def test_keyword_arguments_are_mapped_along_axis0():
    xs = np.arange(6.0).reshape(3, 2)
    ys = np.arange(3.0)
    out = vmap(lambda x, y=None: x * y, in_axes=(0,))(xs, y=ys)
    np.testing.assert_allclose(out, xs * ys[:, None])


def test_list_in_axes_and_integer_inputs():
    xs = np.arange(6).reshape(3, 2)
    out = vmap(lambda x, k: x * k, in_axes=[0, None])(xs, 3)
    assert out.dtype == xs.dtype
    np.testing.assert_array_equal(out, xs * 3)


def test_nested_vmap():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    pair = lambda a, b: dnp.sum(dnp.tanh(a) * b)
    got = vmap(vmap(pair, in_axes=(None, 0)), in_axes=(0, None))(A, B)
    want = np.array([[pair(a, b) for b in B] for a in A])
    np.testing.assert_allclose(got, want)
    # both levels mapping the same argument along different axes
    X = rng.normal(size=(3, 5, 4))
    got = vmap(vmap(lambda x: dnp.cumsum(x) * x[0], in_axes=1), in_axes=0)(X)
    want = np.array([[np.cumsum(X[i, :, j]) * X[i, 0, j] for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(got, want)
    # a batched value of the outer level inside the inner one (closure)
    got = vmap(lambda a: vmap(lambda b: a @ b)(B))(A)
    np.testing.assert_allclose(got, A @ B.T)
    # per-example Hessians: vmap of jacfwd of grad
    f = lambda x: dnp.sum(dnp.sin(x) * x[0])
    got = vmap(diffprog.hessian(f))(A)
    np.testing.assert_allclose(got, np.stack([diffprog.hessian(f)(a) for a in A]))


def test_shapes_seen_inside_are_per_example():
    xs = np.zeros((7, 2, 3), dtype=np.float32)
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, dtype=x.dtype, len=len(x),
                    np_shape=np.shape(x), dnp_shape=dnp.shape(x))
        return x

    vmap(f, in_axes=2)(xs)
    assert seen == dict(shape=(7, 2), ndim=2, dtype=np.float32, len=7, np_shape=(7, 2),
                        dnp_shape=(7, 2))
    assert vmap(lambda x: dnp.tanh(x) * 2)(xs).dtype == np.float32


# ----------------------------------------------------------------------------- derivatives


def _mlp_params(rng, sizes=(4, 6, 3)):
    p = {}
    for k, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        p[f"W{k}"] = rng.normal(size=(m, n)) / np.sqrt(m)
        p[f"b{k}"] = rng.normal(size=n) * 0.1
    return p


def _mlp_logits(p, x):
    h = dnp.tanh(x @ p["W0"] + p["b0"])
    return h @ p["W1"] + p["b1"]


def loss_onehot(p, x, y):
    """Softmax cross-entropy ``logsumexp(z) - <y, z>`` with a one-hot label ``y``."""
    z = _mlp_logits(p, x)
    return sps.logsumexp(z) - dnp.sum(y * z)


def loss_label(p, x, k):
    """The same loss with an integer label: ``-log_softmax(z)[k]`` (a batched index)."""
    return -sps.log_softmax(_mlp_logits(p, x))[k]


def test_per_example_gradients_of_an_mlp():
    """Book §9.8.3: individual gradients ``∇_w L(w; x_i, y_i)`` by ``vmap(grad)``."""
    rng = np.random.default_rng(3)
    p = _mlp_params(rng)
    X = rng.normal(size=(8, 4))
    labels = rng.integers(0, 3, 8)
    Y = np.eye(3)[labels]
    want = _stack_trees([diffprog.grad(loss_onehot)(p, x, y) for x, y in zip(X, Y, strict=True)])
    got = vmap(diffprog.grad(loss_onehot), in_axes=(None, 0, 0))(p, X, Y)
    _assert_tree_close(got, want, rtol=1e-12)
    got = vmap(diffprog.grad(loss_label), in_axes=(None, 0, 0))(p, X, labels)
    _assert_tree_close(got, want, rtol=1e-12)
    # closed form for the last layer: ∇_{b1} L = softmax(z) - y
    z = np.stack([_mlp_logits(p, x) for x in X])
    np.testing.assert_allclose(got["b1"], sps.softmax(z, axis=1) - Y, rtol=1e-12, atol=1e-14)
    # the mean of the individual gradients is the gradient of the mean loss
    mean = diffprog.grad(lambda p: dnp.mean(vmap(loss_label, in_axes=(None, 0, 0))(p, X,
                                                                                    labels)))(p)
    _assert_tree_close(mean, {k: v.mean(0) for k, v in got.items()}, rtol=1e-12)
    # value_and_grad and has_aux go through too
    (v, aux), g = vmap(diffprog.value_and_grad(lambda p, x, y: (loss_onehot(p, x, y), x[0]),
                                               has_aux=True), in_axes=(None, 0, 0))(p, X, Y)
    np.testing.assert_allclose(v, [loss_onehot(p, x, y) for x, y in zip(X, Y, strict=True)])
    np.testing.assert_allclose(aux, X[:, 0])


def test_grad_of_a_sum_over_vmap_equals_the_loop():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 2))
    xs = rng.normal(size=(5, 3))

    def f(w, x):
        return dnp.sum(dnp.sin(x @ w) ** 2) + dnp.max(x * dnp.sum(w))

    got = diffprog.grad(lambda w: dnp.sum(vmap(f, in_axes=(None, 0))(w, xs)))(w)
    want = sum(diffprog.grad(f)(w, x) for x in xs)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # and with respect to the mapped argument: row i of the gradient is ∇_x f(w, x_i)
    got = diffprog.grad(lambda xs: dnp.sum(vmap(f, in_axes=(None, 0))(w, xs)))(xs)
    np.testing.assert_allclose(got, np.stack([diffprog.grad(f, 1)(w, x) for x in xs]),
                               rtol=1e-12)


def test_jacobians_as_batched_jvps_and_vjps():
    """Book §8.1.3: the Jacobian's columns are JVPs with the basis vectors e_j, its rows VJPs
    with e_i; ``vmap`` computes all of them in one batched pass."""
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 3))
    f = lambda x: dnp.tanh(A @ x) * dnp.sum(x ** 2)
    x = rng.normal(size=3)
    cols = vmap(lambda v: diffprog.jvp(f, (x,), (v,))[1])(np.eye(3))
    rows = vmap(diffprog.vjp(f, x)[1])(np.eye(4))[0]
    np.testing.assert_allclose(cols.T, diffprog.jacfwd(f)(x), rtol=1e-12)
    np.testing.assert_allclose(rows, diffprog.jacrev(f)(x), rtol=1e-12)
    # linearize once, apply to a batch of tangents
    _, f_jvp = diffprog.linearize(f, x)
    np.testing.assert_allclose(vmap(f_jvp)(np.eye(3)).T, diffprog.jacfwd(f)(x), rtol=1e-12)
    # jacobians of a vmapped function are block diagonal
    xs = rng.normal(size=(2, 3))
    J = diffprog.jacrev(vmap(f))(xs)
    for i in range(2):
        np.testing.assert_allclose(J[i, :, i, :], diffprog.jacrev(f)(xs[i]), rtol=1e-12)
        np.testing.assert_allclose(J[i, :, 1 - i, :], 0.0)


def test_vmap_composes_with_jit():
    jit = diffprog.jit
    rng = np.random.default_rng(10)
    w = rng.normal(size=(3, 2))
    xs = rng.normal(size=(4, 3))
    ii = rng.integers(0, 2, size=(4, 2))

    def f(w, x, i):
        y = dnp.tanh(x @ w)
        return dnp.sum(y[i] ** 2) + dnp.max(x)

    want = np.stack([f(w, x, i) for x, i in zip(xs, ii, strict=True)])
    gwant = np.stack([diffprog.grad(f)(w, x, i) for x, i in zip(xs, ii, strict=True)])
    axes = (None, 0, 0)
    np.testing.assert_allclose(vmap(jit(f), in_axes=axes)(w, xs, ii), want)
    np.testing.assert_allclose(jit(vmap(f, in_axes=axes))(w, xs, ii), want)
    for g in (jit(vmap(diffprog.grad(f), in_axes=axes)), vmap(jit(diffprog.grad(f)), in_axes=axes),
              vmap(diffprog.grad(jit(f)), in_axes=axes)):
        np.testing.assert_allclose(g(w, xs, ii), gwant)


# ----------------------------------------------------------------------------- batched indices


def test_batched_index_arrays():
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(4, 5, 3))
    ii = rng.integers(-5, 5, size=(4, 2))
    jj = rng.integers(0, 3, size=(4, 2))
    FALLBACK_CALLS.clear()
    cases = [
        (lambda x, i: x[i], (0, 0)),
        (lambda x, i: x[i, 1], (0, 0)),
        (lambda x, i, j: x[i, j] * 2.0, (0, 0, 0)),
        (lambda x, i, j: x[i[:, None], j], (0, 0, 0)),
        (lambda x, i: dnp.take(x[:, 0], i), (0, 0)),
    ]
    for f, axes in cases:
        args = (xs, ii, jj)[:len(axes)]
        want = np.stack([f(*[a[b] for a in args]) for b in range(4)])
        np.testing.assert_allclose(vmap(f)(*args), want)
        g = lambda *a, f=f: dnp.sum(dnp.sin(f(*a)))
        want = np.stack([diffprog.grad(g)(*[a[b] for a in args]) for b in range(4)])
        np.testing.assert_allclose(vmap(diffprog.grad(g))(*args), want)
    # take_along_axis with batched indices
    idx = rng.integers(0, 3, size=(4, 5, 2))
    f = lambda x, i: dnp.take_along_axis(x, i, 1)
    np.testing.assert_allclose(vmap(f)(xs, idx), np.stack([f(x, i) for x, i in
                                                           zip(xs, idx, strict=True)]))
    assert "getitem" not in FALLBACK_CALLS  # all of these were vectorized
    # a slice together with a batched index array: the loop fallback, still exact
    f = lambda x, i: x[:, i % 3] * 2.0
    np.testing.assert_allclose(vmap(f)(xs, jj), np.stack([f(x, j) for x, j in
                                                          zip(xs, jj, strict=True)]))
    assert FALLBACK_CALLS["getitem"] >= 1


def test_unbatched_array_indexed_by_batched_indices():
    """The index array is a dynamic parameter of ``getitem``: it selects the batching trace
    even when the indexed array is a plain array (or a value of an outer ``grad``)."""
    rng = np.random.default_rng(8)
    E = rng.normal(size=(5, 3))  # e.g. an embedding table
    ii = rng.integers(0, 5, size=(4, 2))
    np.testing.assert_allclose(vmap(lambda i: dnp.take(E, i, axis=0))(ii), E[ii])
    np.testing.assert_allclose(vmap(lambda i: dnp.getitem(E, (i, slice(1, None))))(ii), E[ii, 1:])
    g = diffprog.grad(lambda E: dnp.sum(vmap(lambda i: E[i])(ii) ** 2))(E)
    want = np.zeros_like(E)
    np.add.at(want, ii, 2 * E[ii])
    np.testing.assert_allclose(g, want)


def test_per_example_gradients_with_an_unmapped_table_lookup():
    """``vmap(grad)`` where the differentiated table is unmapped and the indices are mapped: the
    batched index reaches the batching trace through reverse mode's dynamic parameters."""
    rng = np.random.default_rng(9)
    E = rng.normal(size=(5, 3))
    ii = rng.integers(0, 5, size=(4, 2))
    f = lambda E, i: dnp.sum(E[i] ** 2)
    got = vmap(diffprog.grad(f), in_axes=(None, 0))(E, ii)
    np.testing.assert_allclose(got, np.stack([diffprog.grad(f)(E, i) for i in ii]))


_A1, _A2 = np.array([0, 2]), np.array([[1], [3]])
#: per-example indices of a (4, 5, 6) array: basic, advanced, adjacent and separated advanced
#: indices (NumPy moves separated ones first), integers mixed with arrays, None and Ellipsis
TRICKY_INDICES = [
    (_A1,), (slice(None), _A1), (_A1, slice(None), _A1), (_A1, None, _A1), (None, _A1, _A1),
    (_A1, Ellipsis, _A1), (Ellipsis, _A1), (0, slice(None), _A1), (0, _A1), (_A1, 0),
    (slice(1, 3), _A2, _A1), (_A2, slice(None), _A1), (_A1, _A1, 0), (None, 0, None, _A1),
    (Ellipsis, None), (1, Ellipsis, -2), (_A2, 1, _A1), (np.array(1), slice(None), _A1),
    (slice(None, None, -2), 3),
]


def _scatter_ref(x, idx, v):
    out = x.copy()
    np.add.at(out, idx, v)
    return out


@pytest.mark.parametrize("idx", TRICKY_INDICES, ids=[str(i) for i in range(len(TRICKY_INDICES))])
def test_static_indices_getitem_and_scatter(idx):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3, 4, 5, 6))
    V = rng.normal(size=(3,) + X[0][idx].shape)
    add = lambda x, v: dnp.at(x)[idx].add(v)
    for ax in (0, 1, 3):
        Xb = np.moveaxis(X, 0, ax)
        np.testing.assert_allclose(vmap(lambda x: x[idx], in_axes=ax)(Xb),
                                   np.stack([x[idx] for x in X]))
        np.testing.assert_allclose(vmap(add, in_axes=(ax, 0))(Xb, V),
                                   np.stack([_scatter_ref(x, idx, v) for x, v in
                                             zip(X, V, strict=True)]))
        np.testing.assert_allclose(vmap(add, in_axes=(ax, None))(Xb, V[0]),
                                   np.stack([_scatter_ref(x, idx, V[0]) for x in X]))
        if V.ndim > 2:  # a value broadcast along the leading target axes
            W = V[:, 0]
            np.testing.assert_allclose(vmap(add, in_axes=(ax, 0))(Xb, W),
                                       np.stack([_scatter_ref(x, idx, w) for x, w in
                                                 zip(X, W, strict=True)]))
            np.testing.assert_allclose(vmap(add, in_axes=(ax, None))(Xb, W[0]),
                                       np.stack([_scatter_ref(x, idx, W[0]) for x in X]))
    np.testing.assert_allclose(vmap(add, in_axes=(None, 0))(X[0], V),
                               np.stack([_scatter_ref(X[0], idx, v) for v in V]))


def test_batched_scatter():
    rng = np.random.default_rng(7)
    xs = rng.normal(size=(4, 5))
    ii = rng.integers(0, 5, size=(4, 6))  # repeated indices accumulate
    vs = rng.normal(size=(4, 6))
    add = lambda x, i, v: dnp.at(x)[i].add(v)
    put = lambda x, i, v: dnp.at(x)[i].set(v * 0 + 1.0)
    for f in (add, put):
        for axes in ((0, 0, 0), (None, 0, 0), (0, 0, None), (None, 0, None)):
            args = [a if ax is not None else a[0] for a, ax in zip((xs, ii, vs), axes,
                                                                   strict=True)]
            want = np.stack([f(*[a[b] if ax is not None else a for a, ax in
                                 zip(args, axes, strict=True)]) for b in range(4)])
            np.testing.assert_allclose(vmap(f, in_axes=axes)(*args), want)
    # static indices with a batched value (and the separated-advanced-index layout)
    X = rng.normal(size=(4, 2, 3, 5))
    f = lambda x, v: dnp.at(x)[0, :, [1, 4]].add(v)
    v = rng.normal(size=(4, 2, 3))
    np.testing.assert_allclose(vmap(f)(X, v), np.stack([f(x, w) for x, w in
                                                       zip(X, v, strict=True)]))
    np.testing.assert_allclose(vmap(f, in_axes=(0, None))(X, v[0]),
                               np.stack([f(x, v[0]) for x in X]))
    g = lambda x: x[0, :, [1, 4]]
    np.testing.assert_allclose(vmap(g, in_axes=2)(X), np.stack([g(X[:, :, k]) for k in
                                                                range(3)]))


# ----------------------------------------------------------------------------- property


@st.composite
def _batched_programs(draw):
    prog = draw(props.programs(max_inputs=3))
    axes = [draw(st.sampled_from([None, *range(x.ndim + 1), -1])) for x in prog.inputs]
    if all(a is None for a in axes):
        axes[0] = 0
    return prog, tuple(axes), draw(st.integers(1, 3))


@settings(max_examples=props.examples(100))
@given(_batched_programs())
def test_vmap_of_random_programs_equals_the_loop(case):
    prog, axes, size = case
    examples = [prog.random_like_inputs(10 + b) for b in range(size)]
    args = [prog.inputs[k] if ax is None else np.stack([e[k] for e in examples], axis=ax)
            for k, ax in enumerate(axes)]

    def per_example(b):
        return [prog.inputs[k] if ax is None else examples[b][k] for k, ax in enumerate(axes)]

    want = np.stack([np.asarray(prog(*per_example(b))) for b in range(size)])
    got = vmap(prog, in_axes=axes)(*args)
    _assert_tree_close(got, want, rtol=1e-12, what=repr(prog))
    # per-example gradients of the (summed) program equal the loop
    mapped = [k for k, ax in enumerate(axes) if ax is not None]
    scalar = lambda *xs: dnp.sum(prog(*xs))
    grad = diffprog.grad(scalar, argnums=tuple(mapped))
    want = _stack_trees([grad(*per_example(b)) for b in range(size)])
    got = vmap(grad, in_axes=axes)(*args)
    _assert_tree_close(got, want, rtol=1e-11, what=repr(prog))
    # grad of the sum over the batch, with respect to the mapped (stacked) arguments
    got = diffprog.grad(lambda *a: dnp.sum(vmap(scalar, in_axes=axes)(*a)),
                        argnums=tuple(mapped))(*args)
    want = tuple(np.stack(list(w), axis=axes[k]) for w, k in zip(want, mapped, strict=True))
    _assert_tree_close(got, want, rtol=1e-11, what=repr(prog))


# ----------------------------------------------------------------------------- errors


def test_error_inconsistent_sizes():
    def f(x, y):
        return x + y

    with pytest.raises(ValueError, match=r"vmap: inconsistent sizes.*argument 0 \('x'\) has "
                                         r"size 3.*argument 1 \('y'\) has size 4"):
        vmap(f)(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="vmap: inconsistent sizes.*axis 1"):
        vmap(f, in_axes=(0, 1))(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="vmap: axis_size=5"):
        vmap(f, axis_size=5)(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"vmap: inconsistent sizes.*\['b'\]"):
        vmap(lambda d: d["a"] + d["b"])({"a": np.zeros(3), "b": np.zeros(4)})


def test_error_axis_out_of_range():
    with pytest.raises(ValueError, match=r"vmap: in_axes=2 is out of range for argument 0 "
                                         r"\('x'\) of shape \(3, 2\)"):
        vmap(lambda x: x, in_axes=2)(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="vmap: in_axes=-3 is out of range"):
        vmap(lambda x: x, in_axes=-3)(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="vmap: in_axes=0 is out of range.*scalar"):
        vmap(lambda x, y: x * y)(np.zeros(3), 2.0)
    with pytest.raises(ValueError, match="vmap: out_axes=3 is out of range for output leaf 0"):
        vmap(lambda x: x, out_axes=3)(np.zeros((3, 2)))


def test_error_in_axes_structure():
    xs = np.zeros((3, 2))
    with pytest.raises(ValueError, match="vmap: in_axes has 2 entries but the function was "
                                         "called with 1 positional argument"):
        vmap(lambda x: x, in_axes=(0, 0))(xs)
    with pytest.raises(ValueError, match="vmap: the in_axes specification .* does not match "
                                         "the structure of argument 0"):
        vmap(lambda d: d["a"], in_axes=({"a": 0, "c": 0},))({"a": xs, "b": xs})
    with pytest.raises(ValueError, match="vmap: the in_axes specification"):
        vmap(lambda t: t[0], in_axes=((0, 0, 0),))((xs, xs))
    with pytest.raises(ValueError, match="vmap: the out_axes specification"):
        vmap(lambda x: (x, x), out_axes=(0, 0, 0))(xs)
    with pytest.raises(ValueError, match="vmap: no argument is mapped"):
        vmap(lambda x: x, in_axes=None)(xs)
    with pytest.raises(ValueError, match="vmap: out_axes is None for output leaf 0"):
        vmap(lambda x: x * 2, out_axes=None)(xs)
    with pytest.raises(TypeError, match="vmap: in_axes must be an int, None"):
        vmap(lambda x: x, in_axes="0")
    with pytest.raises(TypeError, match="vmap: the function to map must be callable"):
        vmap(3)
    with pytest.raises(ValueError, match="vmap: axis_size"):
        vmap(lambda x: x, axis_size=-1)


def test_error_python_control_flow_on_a_batched_value():
    xs = np.array([-1.0, 2.0])
    with pytest.raises(TypeError, match="vmap: the truth value of a batched value"):
        vmap(lambda x: x if x > 0 else -x)(xs)
    with pytest.raises(TypeError, match="vmap: float"):
        vmap(lambda x: float(x))(xs)
    with pytest.raises(TypeError, match="vmap: a batched value cannot be converted"):
        vmap(lambda i: np.arange(3.0)[i], in_axes=0)(np.array([0, 1]))
    # the vectorized alternative
    np.testing.assert_allclose(vmap(lambda x: dnp.where(x > 0, x, -x))(xs), np.abs(xs))


def test_batch_tracer_repr_type_and_leaks():
    seen = []
    vmap(lambda x: seen.append(x) or x)(np.zeros((2, 3)))
    assert isinstance(seen[0], BatchTracer)
    assert "bdim=0" in repr(seen[0])
    with pytest.raises(RuntimeError, match="vmap: a batched value escaped"):
        dnp.sin(seen[0])
    leaked = []

    def fails(x):
        leaked.append(x)
        raise KeyError("inside the mapped function")

    with pytest.raises(KeyError):
        vmap(fails)(np.zeros(2))
    with pytest.raises(RuntimeError, match="vmap: a batched value escaped"):
        leaked[0] * 2.0
    with pytest.raises(TypeError, match="vmap: output leaf 1 .* is not an array"):
        vmap(lambda x: (x, lambda: 0))(np.zeros(2))
