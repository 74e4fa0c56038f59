"""One test per spec row OPT-86…OPT-100 (Peyré's autodiff chapter), each doing the row's check.

Rows built in the engine are tested through ``diffprog.grad/vjp/jvp/jacobian``, ``scan``,
``checkpoint`` and ``scipy.special.softmax``; the rest through ``diffprog.optim.autodiff_examples``.
"""

from __future__ import annotations

import math

import numpy as np

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives.checkpointing import vjp_checkpointed
from diffprog.optim.autodiff_examples import (
    ad_cost,
    argmin_layer,
    dual_grad,
    fixed_point,
    leapfrog,
    leapfrog_inverse,
    odeint_adjoint,
    residual_mlp_block,
    sinkhorn,
    value_of_min,
)
from diffprog.scipy.special import softmax


def _f003(x, y):
    if hasattr(x, "log"):
        t = y * x.log()
        return t + t.sqrt()
    t = y * dnp.log(x)
    return t + dnp.sqrt(t)


def _mlp(params):
    W1, W2 = params

    def f(x):
        return W2 @ dnp.tanh(W1 @ x)
    return f


def test_opt86_dual_numbers_two_forward_passes():
    val, g = dual_grad(_f003, math.e, 4.0)
    assert abs(val - 6.0) < 1e-12
    assert abs(g[0] - 5.0 / math.e) < 1e-12 and abs(g[1] - 1.25) < 1e-12


def test_opt87_reverse_mode_one_backward_pass():
    gx, gy = diffprog.grad(_f003, argnums=(0, 1))(np.array(math.e), np.array(4.0))
    assert abs(float(gx) - 1.8393972058572117) < 1e-12 and abs(float(gy) - 1.25) < 1e-12
    rng = np.random.default_rng(0)
    f = _mlp((rng.standard_normal((5, 4)), rng.standard_normal((3, 5))))
    x = rng.standard_normal(4)
    np.testing.assert_allclose(diffprog.jacfwd(f)(x), diffprog.jacrev(f)(x), atol=1e-12)


def test_opt88_jacobian_modes_and_cost_model():
    rng = np.random.default_rng(1)
    f = _mlp((rng.standard_normal((6, 8)), rng.standard_normal((2, 6))))
    x = rng.standard_normal(8)
    Jf = diffprog.jacobian(f, mode="fwd")(x)
    np.testing.assert_allclose(Jf, diffprog.jacobian(f, mode="rev")(x), atol=1e-12)
    np.testing.assert_allclose(Jf, diffprog.jacobian(f, mode="auto")(x), atol=1e-12)
    p, q, r, s = 1000, 100, 10, 1
    assert ad_cost((p, q, r, s), "fwd") == p * (q * r + r * s)
    assert ad_cost((p, q, r, s), "rev") == s * (p * q + q * r)
    assert ad_cost((p, q, r, s), "auto") == ad_cost((p, q, r, s), "rev")  # n_t < n_0


def test_opt89_affine_layer_vjp_and_mlp_backprop():
    rng = np.random.default_rng(2)
    A, u = rng.standard_normal((3, 4)), rng.standard_normal(3)
    Z, B = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    _, T_vjp = diffprog.vjp(lambda A, u: A @ Z + u[:, None], A, u)
    gA, gu = T_vjp(B)
    np.testing.assert_allclose(gA, B @ Z.T, atol=1e-12)
    np.testing.assert_allclose(gu, B @ np.ones(5), atol=1e-12)
    x = rng.standard_normal(4)
    W1, W2 = rng.standard_normal((5, 4)), rng.standard_normal((2, 5))

    def loss(W1):
        return dnp.sum(_mlp((W1, W2))(x) ** 2)
    g = diffprog.grad(loss)(W1)
    E, h = np.zeros_like(W1), 1e-6
    E[1, 2] = h
    fd = (loss(W1 + E) - loss(W1 - E)) / (2 * h)
    assert abs(g[1, 2] - fd) < 1e-6


def test_opt90_bptt_with_scan():
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(3)
    th0 = 0.3 * rng.standard_normal((3, 3))

    def f(th):
        xT, _ = diffprog.scan(lambda x, _: (dnp.tanh(th @ x), None), x0, None, length=20)
        return dnp.sum(xT ** 2)

    def f_loop(th):
        x = x0
        for _ in range(20):
            x = dnp.tanh(th @ x)
        return dnp.sum(x ** 2)
    g = diffprog.grad(f)(th0)
    np.testing.assert_allclose(g, diffprog.grad(f_loop)(th0), atol=1e-12)
    E, h = np.zeros_like(th0), 1e-6
    E[0, 1] = h
    assert abs(g[0, 1] - (f(th0 + E) - f(th0 - E)) / (2 * h)) < 1e-6


def test_opt91_residual_block_is_gradient_step():
    rng = np.random.default_rng(4)
    W1, x, tau = rng.standard_normal((5, 3)), rng.standard_normal(3), 0.1
    hx = residual_mlp_block(W1, -tau * W1, dnp.tanh)(x)
    gE = diffprog.grad(lambda y: dnp.sum(dnp.log(dnp.cosh(W1 @ y))))(x)
    np.testing.assert_allclose(hx, x - tau * gE, atol=1e-12)


def test_opt92_neural_ode_adjoint():
    x0, th, T = np.array([1.3]), np.array([0.7]), 1.5
    xT, gx0, gth = odeint_adjoint(lambda x, t, s: t * x, x0, th, T, n_steps=200)
    assert abs(xT[0] - x0[0] * math.exp(th[0] * T)) < 1e-6
    assert abs(gth[0] - T * x0[0] * math.exp(th[0] * T)) < 1e-6
    assert abs(gx0[0] - math.exp(th[0] * T)) < 1e-6


def test_opt93_checkpoint_identical_and_log_memory():
    f = lambda x: dnp.sin(dnp.cos(x) * x)  # noqa: E731
    x = np.array([0.3, 1.1])
    g0 = diffprog.grad(lambda x: dnp.sum(f(f(x))))(x)
    g1 = diffprog.grad(lambda x: dnp.sum(diffprog.checkpoint(f)(diffprog.checkpoint(f)(x))))(x)
    np.testing.assert_allclose(g1, g0, atol=1e-12)
    t = 1024
    chain = [lambda s: 0.999 * s] * t
    res = vjp_checkpointed(chain, np.ones(1), np.ones(1), schedule="halving")
    np.testing.assert_allclose(res.cotangent, 0.999 ** t, rtol=1e-12)
    assert res.slots <= 2 * math.log2(t)


def test_opt94_leapfrog_exact_inverse():
    F = lambda s, th, t: -th * np.sin(s)  # noqa: E731
    G = lambda r, th, t: r + 0.1 * np.cos(t)  # noqa: E731
    r0, s0 = np.array([0.4, -0.2]), np.array([1.0, 0.5])
    rn, sn = leapfrog(F, G, r0, s0, 2.0, 0.01, 1000)
    r, s = leapfrog_inverse(F, G, rn, sn, 2.0, 0.01, 1000)
    np.testing.assert_allclose(r, r0, atol=1e-12)
    np.testing.assert_allclose(s, s0, atol=1e-12)


def test_opt95_fixed_point_layer_implicit_gradient():
    assert float(diffprog.grad(lambda t: fixed_point(lambda x, t: 0.5 * x + t, 0.0, t))(1.0)) \
        == 2.0
    rng = np.random.default_rng(5)
    W = 0.3 * rng.standard_normal((3, 3)) / 3
    th0 = rng.standard_normal(3)
    h = lambda x, t: dnp.tanh(W @ x + t)  # noqa: E731
    g_imp = diffprog.grad(lambda t: dnp.sum(fixed_point(h, np.zeros(3), t) ** 2))(th0)

    def unrolled(t):
        x, _ = diffprog.scan(lambda x, _: (h(x, t), None), np.zeros(3), None, length=1000)
        return dnp.sum(x ** 2)
    np.testing.assert_allclose(g_imp, diffprog.grad(unrolled)(th0), atol=1e-8)


def test_opt96_argmin_layer_implicit_gradient():
    lam, c, th0 = 0.5, np.array([1.0, -2.0]), np.array([0.3, 0.8])
    E = lambda x, t: 0.5 * dnp.sum((x - t) ** 2) + 0.5 * lam * dnp.sum(x ** 2)  # noqa: E731
    g = diffprog.grad(lambda t: 0.5 * dnp.sum((argmin_layer(E, t, x0=np.zeros(2)) - c) ** 2))
    xs = th0 / (1 + lam)
    np.testing.assert_allclose(g(th0), (xs - c) / (1 + lam), atol=1e-10)


def test_opt97_envelope_theorem_and_stop_gradient():
    E = lambda x, t: 0.5 * x ** 2 - t * x  # noqa: E731
    for th in (-1.5, 0.7, 3.0):
        assert float(diffprog.grad(lambda t: value_of_min(E, t, lambda t: t))(th)) == -th
        assert abs(float(diffprog.grad(lambda t: value_of_min(E, t))(th)) + th) < 1e-10
    assert float(diffprog.grad(lambda x: diffprog.stop_gradient(x) ** 2)(2.0)) == 0.0


def test_opt98_sinkhorn_marginals_and_envelope_gradient():
    rng = np.random.default_rng(6)
    n, m, eps = 4, 5, 0.5
    a, b = rng.random(n) + 0.5, rng.random(m) + 0.5
    a, b = a / a.sum(), b / b.sum()
    C = rng.random((n, m))
    K = np.exp(-C / eps)
    r = sinkhorn(a, b, K, 2000, eps=eps)
    np.testing.assert_allclose(r.u * (K @ r.v), a, atol=1e-9)
    np.testing.assert_allclose(r.v * (K.T @ r.u), b, atol=1e-9)
    d = rng.standard_normal(n)
    d -= d.mean()  # Σda = 0 keeps the problem balanced
    h = 1e-5
    fd = (sinkhorn(a + h * d, b, K, 2000, eps=eps).value
          - sinkhorn(a - h * d, b, K, 2000, eps=eps).value) / (2 * h)
    assert abs(fd - r.grad_a @ d) < 1e-5


def test_opt99_matrix_jvp_rules():
    rng = np.random.default_rng(7)
    A, B, dA = (rng.standard_normal((3, 3)) for _ in range(3))
    _, t = diffprog.jvp(lambda A: A.T @ A @ B @ A, (A,), (dA,))
    ref = (dA.T @ A + A.T @ dA) @ B @ A + A.T @ A @ B @ dA
    np.testing.assert_allclose(t, ref, atol=1e-12)
    T3, dT3 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    _, ts = diffprog.jvp(lambda X: dnp.sum(X, axis=-1), (T3,), (dT3,))
    np.testing.assert_allclose(ts, dT3.sum(axis=-1), atol=1e-12)


def test_opt100_softmax_vjp():
    rng = np.random.default_rng(8)
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    s, s_vjp = diffprog.vjp(softmax, x)
    (g,) = s_vjp(v)
    np.testing.assert_allclose(g, s * (v - s @ v), atol=1e-10)
    h = 1e-5
    fd = np.array([(softmax(x + h * e) @ v - softmax(x - h * e) @ v) / (2 * h) for e in np.eye(5)])
    np.testing.assert_allclose(g, fd, atol=1e-10)
    J = diffprog.jacobian(softmax)(x)
    np.testing.assert_allclose(J.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(J, J.T, atol=1e-12)
