"""The public transformations: values from closed forms, finite differences or a second mode."""

from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.core.primitive import Primitive
from diffprog.derivatives import fd_jvp

rng = np.random.default_rng(0)


def softplus(x):
    return dnp.logaddexp(x, 0.0)


def sigmoid_np(x):
    return 1 / (1 + np.exp(-x))


# --------------------------------------------------------------------------- Example 8.1
def test_example_8_1_mlp_closed_forms():
    A1, b1 = rng.normal(size=(5, 3)), rng.normal(size=5)
    A2, b2 = rng.normal(size=(2, 5)), rng.normal(size=2)
    x, v, u = rng.normal(size=3), rng.normal(size=3), rng.normal(size=2)

    def f(x):
        return A2 @ softplus(A1 @ x + b1) + b2

    z = A1 @ x + b1
    t2 = A2 @ (sigmoid_np(z) * (A1 @ v))
    r0 = A1.T @ (sigmoid_np(z) * (A2.T @ u))
    _, t = diffprog.jvp(f, (x,), (v,))
    _, f_vjp = diffprog.vjp(f, x)
    np.testing.assert_allclose(t, t2, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(f_vjp(u)[0], r0, rtol=1e-12, atol=1e-13)


def test_example_8_3_matmul_vjp_is_outer_product():
    W, X, U = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    _, f_vjp = diffprog.vjp(lambda W: W @ X, W)
    np.testing.assert_allclose(f_vjp(U)[0], U @ X.T, rtol=1e-14)
    x, u = rng.normal(size=4), rng.normal(size=3)
    _, f_vjp = diffprog.vjp(lambda W: W @ x, W)
    np.testing.assert_allclose(f_vjp(u)[0], np.outer(u, x), rtol=1e-14)


# --------------------------------------------------------------------------- nesting
def test_third_derivative_of_sin():
    x = np.array(0.7)
    g3 = diffprog.grad(diffprog.grad(diffprog.grad(dnp.sin)))
    assert abs(g3(x) - (-np.cos(0.7))) < 1e-12


def test_jvp_of_grad_is_hvp():
    Q = rng.normal(size=(4, 4))
    Q = Q + Q.T
    w, v = rng.normal(size=4), rng.normal(size=4)

    def f(w):
        return 0.5 * w @ Q @ w + dnp.sum(dnp.cos(w))

    expected = Q @ v - np.cos(w) * v
    _, hv = diffprog.jvp(diffprog.grad(f), (w,), (v,))
    np.testing.assert_allclose(hv, expected, rtol=1e-10)
    for method in ("fwd-rev", "rev-rev", "rev-fwd", "fwd-fwd"):
        np.testing.assert_allclose(diffprog.hvp(f, w, v, method=method), expected, rtol=1e-10)
    H = diffprog.hessian(f)(w)
    np.testing.assert_allclose(H, Q - np.diag(np.cos(w)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_perturbations_of_nested_levels_do_not_mix():
    # d/dx [x * d/dy (x * y)] = d/dx [x * x] = 2x  (perturbation confusion test)
    def outer(x):
        return x * diffprog.grad(lambda y: x * y)(np.array(3.0))

    assert diffprog.grad(outer)(np.array(2.0)) == pytest.approx(4.0)


# --------------------------------------------------------------------------- fan-out, unused
def test_fan_out_sums_cotangents():
    x = np.array([0.3, -1.2])
    g = diffprog.grad(lambda x: dnp.sum(x * x + dnp.sin(x)))(x)
    np.testing.assert_allclose(g, 2 * x + np.cos(x), rtol=1e-15)


def test_unused_input_gets_exact_zero_gradient():
    g = diffprog.grad(lambda x, y: dnp.sum(x ** 2), argnums=(0, 1))(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(g[1], np.zeros(3))
    assert diffprog.grad(lambda x: 3.0)(np.array(1.0)) == 0.0


# --------------------------------------------------------------------------- pytrees, argnums
Point = namedtuple("Point", ["a", "b"])


@diffprog.register_dataclass
@dataclasses.dataclass
class Linear:
    W: np.ndarray
    b: np.ndarray


def test_pytree_inputs_and_outputs():
    params = {"lin": Linear(rng.normal(size=(2, 3)), rng.normal(size=2)),
              "pt": Point(np.array(1.5), [np.array([1.0, 2.0]), None])}
    x = rng.normal(size=3)

    def loss(p):
        y = p["lin"].W @ x + p["lin"].b
        return dnp.sum(y ** 2) * p["pt"].a + dnp.sum(p["pt"].b[0] ** 3)

    g = diffprog.grad(loss)(params)
    y = params["lin"].W @ x + params["lin"].b
    a = 1.5
    assert isinstance(g["lin"], Linear) and isinstance(g["pt"], Point)
    np.testing.assert_allclose(g["lin"].W, 2 * a * np.outer(y, x), rtol=1e-12)
    np.testing.assert_allclose(g["lin"].b, 2 * a * y, rtol=1e-12)
    np.testing.assert_allclose(g["pt"].a, np.sum(y ** 2), rtol=1e-12)
    np.testing.assert_allclose(g["pt"].b[0], 3 * np.array([1.0, 2.0]) ** 2)
    assert g["pt"].b[1] is None


def test_argnums_and_has_aux():
    def f(x, y, z):
        return dnp.sum(x * y) + z, {"note": x}

    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (val, aux), (gx, gz) = diffprog.value_and_grad(f, argnums=(0, 2), has_aux=True)(
        x, y, np.array(1.0))
    assert val == pytest.approx(12.0)
    np.testing.assert_array_equal(aux["note"], x)
    np.testing.assert_array_equal(gx, y)
    assert gz == 1.0
    g, aux = diffprog.grad(f, argnums=1, has_aux=True)(x, y, np.array(1.0))
    np.testing.assert_array_equal(g, x)


def test_jvp_and_vjp_with_tuple_outputs():
    def f(x):
        return dnp.sin(x), {"sq": x ** 2}

    x, v = np.array([0.1, 0.2]), np.array([1.0, -1.0])
    (s, d), (ts, td) = diffprog.jvp(f, (x,), (v,))
    np.testing.assert_allclose(ts, np.cos(x) * v)
    np.testing.assert_allclose(td["sq"], 2 * x * v)
    _, f_vjp = diffprog.vjp(f, x)
    (g,) = f_vjp((np.ones(2), {"sq": np.ones(2)}))
    np.testing.assert_allclose(g, np.cos(x) + 2 * x)


# --------------------------------------------------------------------------- Jacobians
def test_jacfwd_jacrev_and_auto_mode_call_counts():
    A = rng.normal(size=(2, 6))
    f_wide = diffprog.count_calls(lambda x: dnp.tanh(A @ x))  # R^6 -> R^2
    x = rng.normal(size=6)
    J = diffprog.jacobian(f_wide)(x)
    assert f_wide.calls == 1  # one forward pass, then M = 2 VJPs on its tape
    Jf = diffprog.jacfwd(f_wide)(x)
    Jr = diffprog.jacrev(f_wide)(x)
    expected = (1 - np.tanh(A @ x) ** 2)[:, None] * A
    for M in (J, Jf, Jr):
        np.testing.assert_allclose(M, expected, rtol=1e-12)
    B = rng.normal(size=(6, 2))
    f_tall = lambda y: dnp.tanh(B @ y)  # R^2 -> R^6: forward mode
    y = rng.normal(size=2)
    np.testing.assert_allclose(diffprog.jacobian(f_tall)(y), diffprog.jacrev(f_tall)(y),
                               rtol=1e-12)


def test_vjp_closure_reused_without_rerunning_forward():
    f = diffprog.count_calls(lambda x: dnp.sin(x) * x)
    x = rng.normal(size=5)
    _, f_vjp = diffprog.vjp(f, x)
    rows = [f_vjp(e)[0] for e in np.eye(5)]
    assert f.calls == 1
    np.testing.assert_allclose(np.stack(rows), diffprog.jacrev(lambda x: dnp.sin(x) * x)(x))


def test_linearize_evaluates_once_and_gives_jacfwd():
    f = diffprog.count_calls(lambda x: dnp.exp(x) * dnp.sum(x))
    x = rng.normal(size=3)
    y, f_jvp = diffprog.linearize(f, x)
    cols = [f_jvp(e) for e in np.eye(3)]
    assert f.calls == 1
    np.testing.assert_allclose(np.stack(cols, axis=1), diffprog.jacrev(
        lambda x: dnp.exp(x) * dnp.sum(x))(x), rtol=1e-12)


# --------------------------------------------------------------------------- transposition
def test_linear_transpose_adjoint_and_vjp_of_vjp_is_jvp():
    A = rng.normal(size=(3, 4))

    def lin(x):
        return dnp.cumsum(A @ x, axis=0)[1:] * 2.0

    x, u = rng.normal(size=4), rng.normal(size=2)
    (xt,) = diffprog.linear_transpose(lin, x)(u)
    assert np.vdot(lin(x), u) == pytest.approx(np.vdot(x, xt), rel=1e-12)

    # Example 8.5 / AD-35: transposing the VJP of f(x, W) = W x gives W v + V x
    W, v, V = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(3, 4))
    _, f_vjp = diffprog.vjp(lambda x, W: W @ x, x, W)
    (back,) = diffprog.linear_transpose(f_vjp, np.zeros(3))((v, V))
    np.testing.assert_allclose(back, W @ v + V @ x, rtol=1e-12)


def test_primitive_with_only_a_jvp_rule_gets_reverse_mode():
    cube_p = Primitive("test_cube_jvp_only", lambda x: x ** 3, register=False)
    cube_p.jvp = lambda primals, tangents, ans: 3 * primals[0] ** 2 * tangents[0]

    def f(x):
        return dnp.sum(dnp.sin(cube_p.bind(x)))

    x = rng.normal(size=4)
    g = diffprog.grad(f)(x)
    fd = np.array([fd_jvp(lambda y: np.sum(np.sin(y ** 3)), x, e) for e in np.eye(4)])
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    np.testing.assert_allclose(g, 3 * x ** 2 * np.cos(x ** 3), rtol=1e-12)
    # and to second order (linearize + transpose of a linearize + transpose)
    H = diffprog.hessian(f)(x)
    expected = np.diag(6 * x * np.cos(x ** 3) - 9 * x ** 4 * np.sin(x ** 3))
    np.testing.assert_allclose(H, expected, rtol=1e-10, atol=1e-12)


def test_primitive_with_only_vjp_rules_gets_forward_mode():
    sq_p = Primitive("test_square_vjp_only", lambda x: x * x, register=False)
    sq_p.vjps = (lambda g, ans, x: 2 * x * g,)
    x, v = rng.normal(size=3), rng.normal(size=3)
    _, t = diffprog.jvp(lambda x: sq_p.bind(x), (x,), (v,))
    np.testing.assert_allclose(t, 2 * x * v, rtol=1e-14)


# --------------------------------------------------------------------------- custom rules
def test_custom_jvp_and_custom_vjp_rules_are_used():
    @diffprog.custom_jvp
    def f(x):
        return dnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), 2.0 * t  # deliberately not cos: the rule must win

    assert diffprog.grad(f)(np.array(0.3)) == 2.0
    assert diffprog.jvp(f, (np.array(0.3),), (np.array(1.0),))[1] == 2.0

    @diffprog.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (dnp.clip(g, -1.0, 1.0),))
    g = diffprog.grad(lambda x: dnp.sum(5.0 * clip_gradient(x)))(np.ones(2))
    np.testing.assert_array_equal(g, np.ones(2))


def test_stop_gradient():
    f = lambda x: x * diffprog.stop_gradient(x)
    assert diffprog.grad(f)(np.array(3.0)) == 3.0


# --------------------------------------------------------------------------- conventions
def test_non_smooth_conventions():
    from diffprog.nn import relu

    z = np.array([0.0])
    g = lambda f, x: diffprog.grad(lambda x: dnp.sum(f(x)))(x)
    assert g(relu, z)[0] == 0.0
    assert g(dnp.abs, z)[0] == 0.0
    np.testing.assert_array_equal(g(dnp.max, np.array([1.0, 3.0, 3.0])), [0, 0.5, 0.5])
    np.testing.assert_array_equal(g(lambda x: dnp.maximum(x, 1.0), np.array([1.0])), [0.5])
    np.testing.assert_array_equal(g(lambda x: dnp.clip(x, -1.0, 1.0),
                                    np.array([-1.0, 1.0, 2.0])), [1.0, 1.0, 0.0])
    # sort: ties follow the stable permutation
    w = np.array([1.0, 10.0, 100.0])
    gs = diffprog.grad(lambda x: dnp.sum(dnp.sort(x) * w))(np.array([2.0, 1.0, 2.0]))
    np.testing.assert_array_equal(gs, [10.0, 1.0, 100.0])
    # step functions have zero derivative
    assert diffprog.grad(lambda x: dnp.sum(dnp.floor(x) + dnp.sign(x)))(np.array([0.5]))[0] == 0


def test_float32_end_to_end():
    x = np.array([0.5, 1.5], dtype=np.float32)
    g = diffprog.grad(lambda x: dnp.sum(dnp.tanh(x) * 2.0 + x ** 2))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * (1 - np.tanh(x) ** 2) + 2 * x, rtol=1e-6)


def test_complex_arrays_pass_through_the_primal():
    z = np.array([1.0 + 1e-20j])
    out = dnp.log(1 + dnp.exp(z))
    assert out.imag[0] / 1e-20 == pytest.approx(sigmoid_np(1.0), rel=1e-15)


def test_indexing_and_functional_updates():
    x = rng.normal(size=(3, 4))

    def f(x):
        y = x.at[0, 1].set(5.0).at[1].add(x[2] ** 2).at[2, :2].multiply(3.0)
        return dnp.sum(y[x[:, 0] > -10][:, [0, 2, 2]] ** 2)

    g = diffprog.grad(f)(x)
    fd = np.array([fd_jvp(lambda y: _np_f(y), x, e.reshape(3, 4)) for e in np.eye(12)])
    np.testing.assert_allclose(g.ravel(), fd, rtol=1e-6, atol=1e-8)


def _np_f(x):
    y = x.copy()
    y[0, 1] = 5.0
    y[1] += x[2] ** 2
    y[2, :2] *= 3.0
    return np.sum(y[x[:, 0] > -10][:, [0, 2, 2]] ** 2)


def test_numpy_functions_dispatch_on_traced_values():
    g = diffprog.grad(lambda x: np.sum(np.sin(x) * x))(np.array([0.3, 0.4]))
    np.testing.assert_allclose(g, np.cos([0.3, 0.4]) * [0.3, 0.4] + np.sin([0.3, 0.4]))
