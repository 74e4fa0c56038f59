"""jit: one trace per signature, simplified straight-line programs, composition with every
transformation in both orders (values compared with the un-jitted function)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.scipy.special import logsumexp

rng = np.random.default_rng(0)


def mlp_loss(params, X, y):
    h = X
    for W, b in params[:-1]:
        h = dnp.tanh(h @ W + b)
    W, b = params[-1]
    logits = h @ W + b
    logp = logits - logsumexp(logits, axis=1, keepdims=True)
    return -dnp.mean(logp[np.arange(X.shape[0]), y])


def make_mlp(sizes=(5, 7, 3), batch=4):
    params = [(rng.normal(size=(a, b)) / np.sqrt(a), rng.normal(size=b) * 0.1)
              for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return params, rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)


def assert_tree_close(a, b, rtol=1e-12, atol=1e-13):
    la, lb = diffprog.tree_leaves(a), diffprog.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_traced_once_per_signature_and_retraced_on_new_shape_or_dtype():
    calls = []

    def f(x):
        calls.append(1)  # a Python side effect: happens at trace time only
        return dnp.sum(dnp.sin(x) * x)

    jf = diffprog.jit(f)
    x = np.linspace(0, 1, 5)
    for _ in range(3):
        assert jf(x) == pytest.approx(np.sum(np.sin(x) * x), rel=1e-14)
    assert jf.trace_count == 1 and len(calls) == 1
    jf(np.linspace(0, 1, 6))
    assert jf.trace_count == 2
    jf(np.linspace(0, 1, 6).astype(np.float32))
    assert jf.trace_count == 3
    jf(x + 1.0)  # same signature as the first call: cached
    assert jf.trace_count == 3


def test_static_arguments_are_part_of_the_signature():
    def f(x, n, *, mode):
        out = x
        for _ in range(n):  # Python control flow on a static value
            out = dnp.sin(out) if mode == "sin" else dnp.cos(out)
        return out

    jf = diffprog.jit(f, static_argnums=1, static_argnames="mode")
    x = np.array([0.3, 0.4])
    np.testing.assert_allclose(jf(x, 3, mode="sin"), np.sin(np.sin(np.sin(x))))
    np.testing.assert_allclose(jf(x, 2, mode="cos"), np.cos(np.cos(x)))
    assert jf.trace_count == 2
    jf(x + 1, 3, mode="sin")
    assert jf.trace_count == 2


def test_python_control_flow_on_traced_values_raises():
    with pytest.raises(TypeError, match=r"jit: .*bool.*diffprog.cond"):
        diffprog.jit(lambda x: x if x > 0 else -x)(np.array(1.0))
    with pytest.raises(TypeError, match=r"jit: float\(\)"):
        diffprog.jit(lambda x: float(x) * x)(np.array(1.0))
    with pytest.raises(TypeError, match="needs a concrete value"):
        diffprog.jit(lambda x: dnp.where(x > 0))(np.ones(3))
    with pytest.raises(TypeError, match="not an array or a number; mark its argument static"):
        diffprog.jit(lambda x, s: x)(np.ones(2), "text")
    with pytest.raises(TypeError, match="static arguments must be hashable"):
        diffprog.jit(lambda x, s: x, static_argnums=1)(np.ones(2), [1, 2])


def test_jit_composes_with_transformations_in_both_orders():
    params, X, y = make_mlp()
    g = diffprog.grad(mlp_loss)(params, X, y)
    assert_tree_close(diffprog.jit(diffprog.grad(mlp_loss))(params, X, y), g)
    assert_tree_close(diffprog.grad(diffprog.jit(mlp_loss))(params, X, y), g)
    x, v = rng.normal(size=4), rng.normal(size=4)

    def f(x):
        return dnp.tanh(x) * dnp.sum(x ** 2)

    out, t = diffprog.jvp(f, (x,), (v,))
    assert_tree_close(diffprog.jvp(diffprog.jit(f), (x,), (v,)), (out, t))
    assert_tree_close(diffprog.jit(lambda x, v: diffprog.jvp(f, (x,), (v,)))(x, v), (out, t))
    s = lambda x: dnp.sum(f(x) ** 2)
    H = diffprog.hessian(s)(x)
    np.testing.assert_allclose(diffprog.jit(diffprog.hessian(s))(x), H, rtol=1e-12)
    np.testing.assert_allclose(diffprog.hessian(diffprog.jit(s))(x), H, rtol=1e-12)
    np.testing.assert_allclose(diffprog.jit(diffprog.jacrev(f))(x), diffprog.jacfwd(f)(x),
                               rtol=1e-12)
    u = rng.normal(size=4)
    _, f_vjp = diffprog.vjp(diffprog.jit(f), x)
    np.testing.assert_allclose(f_vjp(u)[0], diffprog.vjp(f, x)[1](u)[0], rtol=1e-12)
    # jit inside jit, and a jitted function closing over an outer traced value
    np.testing.assert_allclose(diffprog.jit(lambda x: diffprog.jit(f)(x) * 2)(x), 2 * f(x))
    gw = diffprog.grad(lambda w: dnp.sum(diffprog.jit(lambda x: dnp.sin(x * w))(x)))(0.7)
    assert gw == pytest.approx(np.sum(np.cos(0.7 * x) * x), rel=1e-12)


def test_traced_index_arrays_are_dynamic():
    def f(x, idx):
        return dnp.sum(x[np.arange(3), idx] ** 2)

    jf = diffprog.jit(diffprog.value_and_grad(f))
    x = rng.normal(size=(3, 4))
    for idx in (np.array([0, 1, 2]), np.array([3, 3, 0])):
        val, g = jf(x, idx)
        ref_val, ref_g = diffprog.value_and_grad(f)(x, idx)
        assert val == pytest.approx(ref_val)
        np.testing.assert_allclose(g, ref_g)
    assert jf.trace_count == 1
    # sort differentiates through a traced permutation
    js = diffprog.jit(diffprog.grad(lambda x: dnp.sum(dnp.sort(x) * np.arange(4.0))))
    for x in (np.array([3.0, 1.0, 2.0, 0.0]), np.array([0.0, 1.0, 2.0, 3.0])):
        np.testing.assert_allclose(js(x), np.argsort(np.argsort(x)).astype(float))
    assert js.trace_count == 1


def test_value_dependent_rules_are_traced_not_frozen():
    # derivative masks of maximum / clip / abs and the shift of logsumexp follow the new input
    def f(x):
        return dnp.sum(dnp.maximum(x, 0.0) + dnp.clip(x, -1, 1) + dnp.abs(x)) + logsumexp(x * 50)

    jg = diffprog.jit(diffprog.grad(f))
    for x in (np.array([-2.0, -0.5, 0.5, 2.0]), np.array([2.0, 0.5, -0.5, -2.0])):
        np.testing.assert_allclose(jg(x), diffprog.grad(f)(x), rtol=1e-12)


def test_simplification_removes_dead_code_and_common_subexpressions():
    def f(x):
        dead = dnp.exp(x)  # noqa: F841  (unused)
        return dnp.sin(x) + dnp.sin(x)

    src = diffprog.jit(f).lower(np.ones(3))
    assert src.count("C[") == 2  # one sin, one add; no exp
    assert src.count("= C[") == 2


def test_in_place_reuse_respects_views():
    n = 20_000  # large enough (>= 64 KiB) for in-place updates

    def f(x):
        y = x * 2.0
        z = dnp.reshape(y, (100, 200))  # a view of y's buffer
        w = dnp.tanh(y)  # y dies here, but its view z is still live
        return w + dnp.sum(z)

    x = np.linspace(-1, 1, n)
    np.testing.assert_allclose(diffprog.jit(f)(x), f(x), rtol=1e-13)
    g = diffprog.jit(diffprog.grad(lambda x: dnp.sum(f(x) ** 2)))
    np.testing.assert_allclose(g(x), diffprog.grad(lambda x: dnp.sum(f(x) ** 2))(x), rtol=1e-12)
    x0 = x.copy()
    g(x)
    np.testing.assert_array_equal(x, x0)  # inputs are never written


def test_pytrees_kwargs_and_constant_outputs():
    def f(p, *, scale):
        return {"a": p["x"] * scale, "b": (p["y"], 3.0), "c": None}

    jf = diffprog.jit(f)
    p = {"x": np.ones(2), "y": np.zeros(1)}
    out = jf(p, scale=np.array(2.0))
    np.testing.assert_array_equal(out["a"], [2.0, 2.0])
    assert out["b"][1] == 3.0 and out["c"] is None


unary = [dnp.sin, dnp.cos, dnp.tanh, lambda x: dnp.exp(dnp.tanh(x)), lambda x: x * x,
         lambda x: dnp.log1p(x * x), dnp.arctan]
binary = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b,
          lambda a, b: a / (1 + b * b)]


@st.composite
def programs(draw):
    ops = draw(st.lists(st.tuples(st.integers(0, len(unary) - 1), st.integers(0, len(binary) - 1),
                                  st.booleans()), min_size=1, max_size=6))

    def f(x, y):
        vals = [x, y]
        for u, b, use_b in ops:
            v = unary[u](vals[-1])
            if use_b:
                v = binary[b](v, vals[-2])
            vals.append(v)
        return dnp.sum(vals[-1] * vals[0])

    return f


@settings(max_examples=25, deadline=None)
@given(programs(), st.integers(1, 4))
def test_property_jit_equals_eager_for_value_and_derivatives(f, n):
    x, y = rng.normal(size=n), rng.normal(size=n)
    assert diffprog.jit(f)(x, y) == pytest.approx(f(x, y), rel=1e-12, abs=1e-12)
    g = diffprog.grad(f, argnums=(0, 1))(x, y)
    assert_tree_close(diffprog.jit(diffprog.grad(f, argnums=(0, 1)))(x, y), g)
    assert_tree_close(diffprog.grad(diffprog.jit(f), argnums=(0, 1))(x, y), g)
    v = rng.normal(size=n)
    hv = diffprog.hvp(lambda x: f(x, y), x, v)
    np.testing.assert_allclose(diffprog.jit(lambda x, v: diffprog.hvp(lambda x: f(x, y), x, v))(
        x, v), hv, rtol=1e-10, atol=1e-12)
