"""Control-flow primitives (book §5.6–5.10): cond, switch, fori_loop, scan, while_loop.

Values and derivatives are compared with the same program unrolled in Python (whose derivative
the engine computes primitive by primitive) and with finite differences.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.core.batching import vmap
from diffprog.core.control_flow import (
    MaxStepsExceeded,
    cond,
    fori_loop,
    scan,
    switch,
    while_loop,
)
from diffprog.core.jit import jit
from diffprog.core.primitive import Tracer
from diffprog.derivatives import check_grads, fd_jvp

rng = np.random.default_rng(0)


def assert_close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def fd_grad_scalar(f, x, eps=1e-5):
    """Central finite-difference derivative of a scalar function of a scalar."""
    return (f(x + eps) - f(x - eps)) / (2 * eps)


# ============================================================================ cond / switch


def branchy(x):
    return cond(x > 0, dnp.sin, dnp.exp, x)


def test_cond_eager_values_and_laziness():
    calls = []

    def t(x):
        calls.append("t")
        return x + 1

    def f(x):
        calls.append("f")
        return x - 1

    assert cond(True, t, f, 1.0) == 2.0 and calls == ["t"]
    assert cond(np.array(0.0), t, f, 1.0) == 0.0 and calls == ["t", "f"]


def test_cond_recursive_while_terminates_eagerly():
    # book §5.10.1, Alg. 5.4 (corrected, errata 8): r = ifelse(f(s), s, whileloop(g(s)))
    def whileloop(s):
        return cond(s >= 10, lambda s: s, lambda s: whileloop(2 * s), s)

    assert whileloop(np.array(1.0)) == 16.0


def test_cond_derivatives_branch_and_predicate():
    for x in (0.5, -1.0, 2.3):
        x = np.array(x)
        expected = np.cos(x) if x > 0 else np.exp(x)
        assert_close(diffprog.grad(branchy)(x), expected)
        assert_close(diffprog.jvp(branchy, (x,), (np.array(2.0),))[1], 2 * expected)
        assert_close(branchy(x), np.sin(x) if x > 0 else np.exp(x))
    check_grads(branchy, (np.array(0.7),), order=2)
    check_grads(branchy, (np.array(-0.7),), order=2)


def test_cond_flow_30_branch_variables():
    # FLOW-30: f = ifelse(pi, sin(u1), exp(u0)), pi=1: grad_u1 = cos(u1), grad_u0 = 0
    f = lambda u1, u0: cond(True, lambda a, b: dnp.sin(a), lambda a, b: dnp.exp(b), u1, u0)
    g1, g0 = diffprog.grad(f, (0, 1))(np.array(0.3), np.array(0.9))
    assert_close(g1, np.cos(0.3))
    assert g0 == 0.0
    fd = fd_jvp(lambda u1: f(u1, np.array(0.9)), np.array(0.3), np.array(1.0))
    np.testing.assert_allclose(g1, fd, rtol=1e-6)


def test_cond_predicate_derivative_is_zero():
    # book §5.6.2: g_h(u1) = ifelse(step(t(u1)), g1(u1), g0(u0)): only the branch counts
    f = lambda u: cond(dnp.sin(u) > 0, lambda u: u ** 2, lambda u: 3 * u, u)
    assert_close(diffprog.grad(f)(np.array(1.0)), 2.0)
    assert_close(diffprog.grad(f)(np.array(-1.0)), 3.0)
    # a float predicate is allowed (nonzero is true) and gets no derivative
    h = lambda p: cond(p, lambda q: q * 0 + 1.0, lambda q: q * 0 + 2.0, p)
    assert diffprog.grad(h)(np.array(0.3)) == 0.0


def test_cond_pytrees_and_closures():
    W = rng.normal(size=(3, 3))

    def f(w, x):
        def yes(d):
            return {"a": dnp.tanh(W @ d["x"]) * w, "b": (d["x"].sum(), None)}

        def no(d):
            return {"a": d["x"] * w ** 2, "b": (dnp.sum(d["x"] ** 2), None)}

        out = cond(dnp.sum(x) > 0, yes, no, {"x": x})
        return dnp.sum(out["a"]) + out["b"][0]

    for x in (np.array([1.0, 2.0, -0.5]), np.array([-1.0, 0.2, -0.5])):
        w = np.array(0.7)
        check_grads(f, (w, x), order=2)
        unrolled = (lambda w, x: dnp.sum(dnp.tanh(W @ x) * w) + dnp.sum(x)) if x.sum() > 0 \
            else (lambda w, x: dnp.sum(x * w ** 2) + dnp.sum(x ** 2))
        got, want = diffprog.grad(f, (0, 1))(w, x), diffprog.grad(unrolled, (0, 1))(w, x)
        for a, b in zip(got, want, strict=True):
            assert_close(a, b)


def test_cond_weak_typed_branch_outputs():
    f = lambda x: cond(x > 0, lambda x: x, lambda x: 0.0, x)
    x32 = np.array(1.5, dtype=np.float32)
    out = diffprog.jvp(f, (x32,), (np.ones((), np.float32),))
    assert out[0].dtype == np.float32 and out[1].dtype == np.float32
    assert diffprog.grad(f)(np.array(-1.0)) == 0.0


def test_switch_values_clamping_and_unselected_vjp_is_zero():
    branches = [lambda a, b, c: a, lambda a, b, c: b, lambda a, b, c: c]
    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0])
    for i, want in ((0, a), (1, b), (2, c), (-3, a), (9, c)):
        assert_close(switch(i, branches, a, b, c), want)
        f = lambda a, b, c, i=i: dnp.sum(switch(i, branches, a, b, c) ** 2)
        grads = diffprog.grad(f, (0, 1, 2))(a, b, c)
        sel = min(max(i, 0), 2)
        for k, g in enumerate(grads):
            if k == sel:
                assert_close(g, 2 * (a, b, c)[k])
            else:
                assert np.all(g == 0.0)  # FLOW-39: exactly zero to the unselected branches


def test_switch_is_lazy_eagerly():
    calls = [0, 0, 0]

    def mk(k):
        def br(x):
            calls[k] += 1
            return x * (k + 1)
        return br

    assert switch(1, [mk(0), mk(1), mk(2)], 2.0) == 4.0
    assert calls == [0, 1, 0]


def test_switch_traced_index_derivatives():
    def f(x):
        i = dnp.astype(dnp.floor(x), np.int64)
        return switch(i, [dnp.sin, dnp.cos, lambda x: x ** 3], x)

    for x0, d in ((0.5, np.cos(0.5)), (1.5, -np.sin(1.5)), (2.5, 3 * 2.5 ** 2), (7.0, 147.0)):
        assert_close(diffprog.grad(f)(np.array(x0)), d)
    check_grads(f, (np.array(1.3),), order=2)


# ============================================================================ scan


def test_scan_prefix_sum_example_5_4():
    u = np.array([1.0, 2.0, 3.0, 4.0])
    s, v = scan(lambda s, u: (s + u, s + u), 0.0, u)
    assert s == 10.0
    assert_close(v, [1.0, 3.0, 6.0, 10.0])
    g = diffprog.grad(lambda u: dnp.sum(scan(lambda s, u: (s + u, s + u), 0.0, u)[1]))(u)
    assert_close(g, [4.0, 3.0, 2.0, 1.0])  # FLOW-52: [K, K-1, ..., 1]


def _rnn_scan(W, U, h0, xs, reverse=False):
    def step(h, x):
        h = dnp.tanh(W @ h + U @ x)
        return h, dnp.sum(h ** 2)

    h, ys = scan(step, h0, xs, reverse=reverse)
    return dnp.sum(h) + dnp.sum(ys * dnp.arange(1.0, len(ys) + 1.0))


def _rnn_unrolled(W, U, h0, xs, reverse=False):
    h, ys = h0, [None] * len(xs)
    order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    for k in order:
        h = dnp.tanh(W @ h + U @ xs[k])
        ys[k] = dnp.sum(h ** 2)
    return dnp.sum(h) + dnp.sum(dnp.stack(ys) * dnp.arange(1.0, len(ys) + 1.0))


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_100_step_recurrence_gradient_equals_unrolled(reverse):
    W, U = rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(4, 3))
    h0, xs = rng.normal(size=4), rng.normal(size=(100, 3))
    args = (W, U, h0, xs, reverse)
    assert_close(_rnn_scan(*args), _rnn_unrolled(*args))
    g1 = diffprog.grad(_rnn_scan, (0, 1, 2, 3))(*args)
    g2 = diffprog.grad(_rnn_unrolled, (0, 1, 2, 3))(*args)
    for a, b in zip(g1, g2, strict=True):
        assert_close(a, b, 1e-12)
    V = rng.normal(size=(4, 4))
    t1 = diffprog.jvp(lambda W: _rnn_scan(W, U, h0, xs, reverse), (W,), (V,))[1]
    t2 = diffprog.jvp(lambda W: _rnn_unrolled(W, U, h0, xs, reverse), (W,), (V,))[1]
    assert_close(t1, t2, 1e-12)


def test_scan_grad_wrt_closed_over_value():
    xs = rng.normal(size=50)

    def f(w):
        return scan(lambda c, x: (c * w + x, None), 0.0, xs)[0]

    def unrolled(w):
        c = 0.0
        for x in xs:
            c = c * w + x
        return c

    w = np.array(0.9)
    assert_close(diffprog.grad(f)(w), diffprog.grad(unrolled)(w))
    assert_close(diffprog.grad(diffprog.grad(f))(w), diffprog.grad(diffprog.grad(unrolled))(w))
    np.testing.assert_allclose(diffprog.grad(f)(w), fd_grad_scalar(f, w), rtol=1e-6)


def test_scan_second_order_hvp_and_hessian():
    xs = rng.normal(size=(12, 2))

    def f(w):
        def step(c, x):
            c = dnp.sin(c * w[0] + dnp.dot(x, w[1:])) + 0.1 * c
            return c, c ** 2
        c, ys = scan(step, 0.3, xs)
        return c + dnp.sum(ys)

    def unrolled(w):
        c, tot = 0.3, 0.0
        for x in xs:
            c = dnp.sin(c * w[0] + dnp.dot(x, w[1:])) + 0.1 * c
            tot = tot + c ** 2
        return c + tot

    w, v = np.array([0.8, 0.5, -0.3]), rng.normal(size=3)
    for method in ("fwd-rev", "rev-rev", "rev-fwd"):
        assert_close(diffprog.hvp(f, w, v, method=method), diffprog.hvp(unrolled, w, v), 1e-11)
    assert_close(diffprog.hessian(f)(w), diffprog.hessian(unrolled)(w), 1e-11)
    check_grads(f, (w,), order=2)


Carry = namedtuple("Carry", ["h", "count"])


def test_scan_pytree_carry_xs_and_ys():
    xs = {"a": rng.normal(size=(6, 2)), "b": rng.normal(size=6)}

    def f(w):
        def step(c, x):
            h = c.h * w + x["a"] * x["b"]
            return Carry(h, c.count + 1), {"h": h, "s": (dnp.sum(h), None)}
        c, ys = scan(step, Carry(np.zeros(2), np.array(0)), xs)
        return c, ys

    c, ys = f(np.array(0.5))
    assert isinstance(c, Carry) and c.count == 6 and ys["h"].shape == (6, 2)
    assert ys["s"][1] is None and ys["s"][0].shape == (6,)
    loss = lambda w: dnp.sum(f(w)[0].h) + dnp.sum(f(w)[1]["s"][0])

    def unrolled(w):
        h, tot = np.zeros(2), 0.0
        for k in range(6):
            h = h * w + xs["a"][k] * xs["b"][k]
            tot = tot + dnp.sum(h)
        return dnp.sum(h) + tot

    assert_close(diffprog.grad(loss)(np.array(0.5)), diffprog.grad(unrolled)(np.array(0.5)))
    # integer carry leaves get no tangent or cotangent
    _, t = diffprog.jvp(lambda w: f(w)[0], (np.array(0.5),), (np.array(1.0),))
    assert t.count.shape == ()


def test_scan_with_length_and_no_xs():
    c, ys = scan(lambda c, _: (c * 2.0, c), 1.0, length=5)
    assert c == 32.0 and list(ys) == [1, 2, 4, 8, 16]
    g = diffprog.grad(lambda a: scan(lambda c, _: (c * a, None), 1.0, length=5)[0])(
        np.array(2.0))
    assert_close(g, 5 * 2.0 ** 4)


def test_scan_length_zero():
    xs = np.zeros((0, 3))
    c, ys = scan(lambda c, x: (c + dnp.sum(x), x * 2), 1.0, xs)
    assert c == 1.0 and ys.shape == (0, 3)
    g = diffprog.grad(lambda a: scan(lambda c, x: (c * a, x), a, xs)[0])(np.array(2.0))
    assert g == 1.0


def test_scan_float32_end_to_end():
    xs = rng.normal(size=(20, 3)).astype(np.float32)
    W = (rng.normal(size=(3, 3)) * 0.5).astype(np.float32)

    def f(W):
        h, ys = scan(lambda h, x: (dnp.tanh(W @ h + x), h), np.zeros(3, W.dtype),
                     xs.astype(W.dtype))
        return dnp.sum(h) + dnp.sum(ys)

    assert f(W).dtype == np.float32
    g = diffprog.grad(f)(W)
    assert g.dtype == np.float32
    g64 = diffprog.grad(f)(W.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-5)
    _, t = diffprog.jvp(f, (W,), (np.ones_like(W),))
    assert t.dtype == np.float32


def test_scan_traces_the_body_once():
    calls = [0]

    def step(c, x):
        calls[0] += 1
        return c * x, None

    diffprog.grad(lambda c0: scan(step, c0, np.linspace(1, 2, 100))[0])(np.array(1.0))
    assert calls[0] == 1


def test_python_control_flow_on_traced_values_in_a_body_raises():
    def step(c, x):
        if c > 0:  # noqa: SIM108 - deliberately Python control flow
            c = c + x
        return c, None

    with pytest.raises(TypeError, match=r"scan \(f\).*diffprog.cond"):
        diffprog.grad(lambda c0: scan(step, c0, np.ones(3))[0])(np.array(1.0))
    # eagerly there is no tracing: Python control flow is fine
    assert scan(step, 1.0, np.ones(3))[0] == 4.0


def test_scan_reverse_pass_reuses_stored_residuals():
    # book §8.3.3: grad costs a constant times the function; the forward pass stores the
    # residuals, so the body's forward is not recomputed in the reverse pass
    T = 40
    xs = rng.normal(size=(T, 3))
    f = lambda w: dnp.sum(scan(lambda h, x: (dnp.tanh(h * w + x), None), np.zeros(3), xs)[0])
    with diffprog.profile() as p:
        g = diffprog.grad(f)(np.array(0.5))
    assert T <= p.primitive_calls["tanh"] <= T + 3  # (+ tracing the body on example values)
    g_graph = diffprog.make_graph(diffprog.grad(f), np.array(0.5))
    fwd = [n for n in g_graph.nodes if n.name == "scan"][0]
    assert fwd.params["residuals"] is not None and fwd.params["residuals"].num_res >= 1

    def unrolled(w):
        h = np.zeros(3)
        for x in xs:
            h = dnp.tanh(h * w + x)
        return dnp.sum(h)

    assert_close(g, diffprog.grad(unrolled)(np.array(0.5)))


def test_scan_under_profile_counts_every_step():
    xs = np.ones((7, 2))
    with diffprog.profile() as p:
        diffprog.jvp(lambda c: scan(lambda c, x: (dnp.sin(c) + x, None), c, xs)[0],
                     (np.zeros(2),), (np.ones(2),))
    assert p.primitive_calls["scan"] >= 1 and p.primitive_calls["sin"] >= 7


def test_linear_transpose_and_custom_jvp_through_control_flow():
    xs = np.arange(1.0, 5.0)
    cumsum = lambda x: scan(lambda c, u: (c + u, c + u), 0.0, x)[1]
    assert_close(diffprog.linear_transpose(cumsum, xs)(np.ones(4))[0], [4.0, 3.0, 2.0, 1.0])
    double = lambda x: cond(True, lambda x: 2 * x, lambda x: x, x)
    assert_close(diffprog.linear_transpose(double, xs)(np.ones(4))[0], [2.0] * 4)

    prod = lambda x: scan(lambda c, u: (c * u, None), 1.0, x)[0]

    @diffprog.custom_jvp
    def f(x):
        return prod(x)

    @f.defjvp
    def f_jvp(primals, tangents):  # reverse mode = transpose of this (linear) JVP
        return diffprog.jvp(prod, primals, tangents)

    assert_close(diffprog.grad(f)(xs), 24.0 / xs)
    y, f_lin = diffprog.linearize(lambda x: scan(lambda c, u: (dnp.sin(c * u), c), 1.0, x)[1], xs)
    t = diffprog.jvp(lambda x: scan(lambda c, u: (dnp.sin(c * u), c), 1.0, x)[1], (xs,),
                     (np.ones(4),))[1]
    assert_close(f_lin(np.ones(4)), t)


# ============================================================================ fori_loop


def test_fori_loop_flow_44_product_rule():
    a = rng.uniform(0.5, 1.5, size=7)
    f = lambda s: fori_loop(0, 7, lambda k, s: dnp.take(a, k) * s, s)
    assert_close(f(np.array(2.0)), 2.0 * np.prod(a))
    assert_close(diffprog.grad(f)(np.array(2.0)), np.prod(a))
    # eager: the loop index is a Python int
    assert fori_loop(1, 4, lambda i, s: s * 10 + i, 0) == 123


def test_fori_loop_sin_chain_matches_finite_differences():
    f = lambda s: fori_loop(0, 5, lambda k, s: dnp.sin(s), s)
    g = diffprog.grad(f)(np.array(0.8))
    np.testing.assert_allclose(g, fd_grad_scalar(f, np.array(0.8)), rtol=1e-6)
    check_grads(f, (np.array(0.8),), order=2)


def test_fori_loop_unrolled_gradient_descent_example_5_2():
    # FLOW-46: L(w, lam) = 1/2 (w - 1)^2 + lam/2 w^2, w_k = w_{k-1} - gamma grad_w L
    def L(w, lam):
        return 0.5 * (w - 1.0) ** 2 + 0.5 * lam * w ** 2

    def w10(lam, gamma):
        return fori_loop(0, 10, lambda k, w: w - gamma * diffprog.grad(L)(w, lam),
                         np.array(0.0))

    lam, gamma = np.array(1.0), np.array(0.1)
    assert_close(w10(lam, gamma), 0.4463129088, 1e-10)
    dlam, dgamma = diffprog.grad(w10, (0, 1))(lam, gamma)
    assert_close(dlam, -0.1560475904, 1e-10)
    assert_close(dgamma, 1.3421772801, 1e-10)
    np.testing.assert_allclose(dlam, fd_grad_scalar(lambda l: w10(l, gamma), lam), rtol=1e-6)


# ============================================================================ while_loop


def newton_sqrt(x, tau=1e-6, max_steps=20):
    # Example 5.5 / FLOW-60: eps(s) = 1/2 (s^2 - x)^2, stop when eps <= tau
    return while_loop(lambda s: 0.5 * (s * s - x) ** 2 > tau, lambda s: 0.5 * (s + x / s),
                      np.array(1.0), max_steps=max_steps)


def newton_unrolled(x, tau=1e-6):
    s, sv = 1.0, 1.0
    xv = float(x.primal_value if isinstance(x, Tracer) else x)  # the trip count is data-driven
    while 0.5 * (sv * sv - xv) ** 2 > tau:
        s = 0.5 * (s + x / s)
        sv = 0.5 * (sv + xv / sv)
    return s


def test_while_loop_newton_flow_53():
    assert_close(newton_sqrt(2.0), 1.4142156863, 1e-10)
    calls = [0]

    def body(s):
        calls[0] += 1
        return s

    assert while_loop(lambda s: s > 5, body, np.array(1.0)) == 1.0 and calls[0] == 0
    assert_close(newton_sqrt(2.0, tau=1e-3, max_steps=4), 1.4166666667, 1e-10)  # FLOW-55


def test_while_loop_derivatives_match_unrolled_and_fd():
    for x in (2.0, 9.0, 0.3):
        x = np.array(x)
        g = diffprog.grad(newton_sqrt)(x)
        assert_close(g, diffprog.grad(newton_unrolled)(x))
        assert_close(diffprog.jvp(newton_sqrt, (x,), (np.array(1.0),))[1], g)
        assert_close(diffprog.grad(diffprog.grad(newton_sqrt))(x),
                     diffprog.grad(diffprog.grad(newton_unrolled))(x))
    f = lambda x: newton_sqrt(x, tau=1e-3, max_steps=4)
    np.testing.assert_allclose(diffprog.grad(f)(np.array(2.0)),
                               fd_grad_scalar(f, np.array(2.0)), rtol=1e-6)


def test_while_loop_pytree_carry_and_closure():
    def f(a):
        def body(c):
            i, (s, t) = c
            return i + 1, (s * a + t, t * 0.5)
        return while_loop(lambda c: c[0] < 6, body, (np.array(0), (np.array(1.0), a)),
                          max_steps=6)[1][0]

    def unrolled(a):
        s, t = 1.0, a
        for _ in range(6):
            s, t = s * a + t, t * 0.5
        return s

    a = np.array(0.7)
    assert_close(f(a), unrolled(a))
    assert_close(diffprog.grad(f)(a), diffprog.grad(unrolled)(a))
    assert_close(diffprog.jvp(f, (a,), (np.array(1.0),))[1], diffprog.grad(unrolled)(a))
    assert_close(diffprog.hvp(f, a, np.array(1.0)), diffprog.hvp(unrolled, a, np.array(1.0)))


def test_while_loop_forward_mode_without_max_steps_reverse_needs_it():
    f = lambda x: while_loop(lambda s: s < 10, lambda s: s * x, np.array(1.0))
    assert_close(diffprog.jvp(f, (np.array(2.0),), (np.array(1.0),))[1], 4 * 2.0 ** 3)
    with pytest.raises(ValueError, match="while_loop.*max_steps"):
        diffprog.grad(f)(np.array(2.0))


def test_while_loop_exceeding_max_steps_raises():
    f = lambda x: while_loop(lambda s: s < 10, lambda s: s * x, np.array(1.0), max_steps=3)
    with pytest.raises(MaxStepsExceeded, match="max_steps=3"):
        f(np.array(2.0))  # eager
    with pytest.raises(MaxStepsExceeded, match="max_steps=3"):
        diffprog.grad(f)(np.array(2.0))
    assert f(np.array(3.0)) == 27.0  # exactly max_steps iterations is fine


# ============================================================================ nesting


def test_scan_inside_cond_and_cond_inside_scan():
    xs = rng.normal(size=8)

    def scan_in_cond(w):
        inner = lambda w: scan(lambda c, x: (dnp.tanh(c * w + x), None), 0.1, xs)[0]
        return cond(w > 0, inner, lambda w: w ** 3, w)

    def cond_in_scan(w):
        def step(c, x):
            c = cond(x > 0, lambda c: dnp.sin(c * w + x), lambda c: c * w ** 2, c)
            return c, c
        c, ys = scan(step, 0.5, xs)
        return c + dnp.sum(ys)

    def cond_in_scan_unrolled(w):
        c, tot = 0.5, 0.0
        for x in xs:
            c = dnp.sin(c * w + x) if x > 0 else c * w ** 2
            tot = tot + c
        return c + tot

    def scan_in_cond_unrolled(w):
        if w <= 0:
            return w ** 3
        c = 0.1
        for x in xs:
            c = dnp.tanh(c * w + x)
        return c

    for w in (np.array(0.7), np.array(-0.4)):
        for f, u in ((scan_in_cond, scan_in_cond_unrolled), (cond_in_scan, cond_in_scan_unrolled)):
            assert_close(f(w), u(w))
            assert_close(diffprog.grad(f)(w), diffprog.grad(u)(w))
            assert_close(diffprog.grad(diffprog.grad(f))(w), diffprog.grad(diffprog.grad(u))(w))
    check_grads(cond_in_scan, (np.array(0.7),), order=2)


def test_while_and_scan_inside_scan():
    xs = rng.uniform(1.0, 4.0, size=5)

    def f(a):
        def step(c, x):
            r = newton_sqrt(x * a, tau=1e-10)
            inner = scan(lambda s, k: (s * a + k, None), c, np.arange(3.0))[0]
            return inner * 0.5 + r, r
        c, ys = scan(step, 0.0, xs)
        return c + dnp.sum(ys)

    def unrolled(a):
        c, tot = 0.0, 0.0
        for x in xs:
            r = newton_unrolled(x * a, tau=1e-10)
            s = c
            for k in range(3):
                s = s * a + k
            c = s * 0.5 + r
            tot = tot + r
        return c + tot

    a = np.array(1.3)
    assert_close(f(a), unrolled(a))
    assert_close(diffprog.grad(f)(a), diffprog.grad(unrolled)(a))
    assert_close(diffprog.jvp(f, (a,), (np.array(1.0),))[1], diffprog.grad(unrolled)(a))


# ============================================================================ errors


def test_cond_errors():
    x = np.array(1.0)
    with pytest.raises(TypeError, match="cond: argument 'pred' must be a scalar"):
        cond(np.array([True, False]), dnp.sin, dnp.cos, x)
    with pytest.raises(TypeError, match="cond: argument 'true_fun' must be a function"):
        cond(True, 1.0, dnp.cos, x)
    with pytest.raises(TypeError, match="cond: argument 'pred' must be a boolean"):
        cond(np.array(1 + 1j), dnp.sin, dnp.cos, x)
    bad_structure = lambda x: cond(x > 0, lambda x: (x, x), lambda x: x, x)
    with pytest.raises(TypeError, match="cond: all branches must return the same pytree"):
        diffprog.grad(lambda x: bad_structure(x)[0])(x)
    bad_shape = lambda x: cond(x > 0, lambda x: x, lambda x: dnp.stack([x, x]), x)
    with pytest.raises(TypeError, match=r"cond: .*same shapes and dtypes.*false_fun"):
        diffprog.jvp(bad_shape, (x,), (x,))
    bad_dtype = lambda x: cond(x > 0, lambda x: x, lambda x: dnp.astype(x, np.float32), x)
    with pytest.raises(TypeError,
                       match=r"cond: .*float32\[\] in false_fun and float64\[\] in true_fun"):
        diffprog.grad(bad_dtype)(x)


def test_switch_errors():
    with pytest.raises(TypeError, match="switch: argument 'branches' must be a non-empty"):
        switch(0, [], 1.0)
    with pytest.raises(TypeError, match="switch: argument 'index' must be an integer scalar"):
        switch(0.5, [dnp.sin], 1.0)
    with pytest.raises(TypeError, match=r"switch: argument 'branches\[1\]' must be a function"):
        switch(0, [dnp.sin, None], 1.0)
    with pytest.raises(TypeError, match=r"switch: .*branches\[2\]"):
        diffprog.grad(lambda x: switch(0, [dnp.sin, dnp.cos, lambda x: x.astype(np.float32)],
                                       x))(np.array(1.0))


def test_scan_errors():
    xs = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"scan: the leaves of xs have inconsistent leading"):
        scan(lambda c, x: (c, None), 0.0, (xs, np.ones(3)))
    with pytest.raises(ValueError, match="scan: argument 'length'=5 does not match"):
        scan(lambda c, x: (c, None), 0.0, xs, length=5)
    with pytest.raises(ValueError, match="scan: give xs"):
        scan(lambda c, x: (c, None), 0.0)
    with pytest.raises(ValueError, match="scan: every leaf of xs must have a leading axis"):
        scan(lambda c, x: (c, None), 0.0, np.array(1.0))
    with pytest.raises(TypeError, match="scan: argument 'f' must be a function"):
        scan(None, 0.0, xs)
    with pytest.raises(TypeError, match=r"scan: f must return a pair \(carry, y\)"):
        scan(lambda c, x: c, 0.0, xs)
    grow = lambda c, x: (dnp.concatenate([c, x]), None)
    for run in (lambda: scan(grow, np.zeros(2), xs),
                lambda: diffprog.grad(lambda c: dnp.sum(scan(grow, c, xs)[0]))(np.zeros(2))):
        with pytest.raises(TypeError, match=r"scan: f changed the shape of carry leaf 0"):
            run()
    retype = lambda c, x: (dnp.astype(c, np.float32), None)
    with pytest.raises(TypeError, match=r"scan: f changed the dtype of carry leaf 0 from "
                                        r"float64 to float32"):
        diffprog.grad(lambda c: scan(retype, c, xs)[0])(np.array(0.0))
    restructure = lambda c, x: ((c, c), None)
    with pytest.raises(TypeError, match="scan: f must return a carry with the same pytree"):
        scan(restructure, 0.0, xs)


def test_fori_and_while_errors():
    with pytest.raises(TypeError, match="fori_loop: argument 'lower' must be an integer"):
        fori_loop(0.5, 3, lambda i, c: c, 0.0)
    with pytest.raises(TypeError, match="fori_loop: body_fun changed the shape of carry leaf 0"):
        fori_loop(0, 3, lambda i, c: dnp.stack([c, c]), np.array(1.0))
    with pytest.raises(TypeError, match="fori_loop: body_fun changed the dtype"):
        diffprog.grad(lambda c: fori_loop(0, 3, lambda i, c: dnp.astype(c, np.float32), c))(
            np.array(1.0))
    with pytest.raises(TypeError, match="while_loop: cond_fun must return a boolean scalar"):
        while_loop(lambda s: s < np.ones(2), lambda s: s + 1, np.array(0.0))
    with pytest.raises(TypeError, match="while_loop: cond_fun must return a boolean scalar"):
        diffprog.jvp(lambda x: while_loop(lambda s: s < np.ones(2), lambda s: s + 1, x),
                     (np.array(0.0),), (np.array(1.0),))
    with pytest.raises(TypeError, match="while_loop: body_fun changed the shape"):
        while_loop(lambda s: dnp.sum(s) < 3, lambda s: dnp.concatenate([s, s]), np.ones(1))
    with pytest.raises(TypeError, match="while_loop: argument 'body_fun' must be a function"):
        while_loop(lambda s: False, 3, 0.0)
    with pytest.raises(ValueError, match="while_loop: argument 'max_steps' must be >= 0"):
        while_loop(lambda s: False, lambda s: s, 0.0, max_steps=-1)


# ============================================================================ graphs and jit


def test_make_graph_shows_single_nodes_with_sub_programs():
    def f(w):
        c, _ = scan(lambda c, x: (cond(x > 1, lambda c: c * w, dnp.sin, c), None), 0.5,
                    np.arange(3.0))
        return c

    g = diffprog.make_graph(f, 1.2)
    names = [n.name for n in g.nodes]
    assert names.count("scan") == 1 and "cond" not in names
    node = g.nodes[names.index("scan")]
    body = node.params["body"]
    assert any(eq.prim.name == "cond" for eq in body.eqns)
    assert "cond" in repr(body) and "lambda" in repr(body)
    subgraphs = getattr(node, "subgraphs", None)
    if subgraphs is not None:  # nested sub-graphs (book §8.4.2) when the Graph supports them
        assert "body" in subgraphs
        assert "cluster" in g.to_dot()


def test_jit_data_dependent_control_flow_traces_once():
    f = jit(lambda x: cond(dnp.sum(x) > 0, lambda x: x * 2, lambda x: -x, x))
    assert_close(f(np.array([1.0, 2.0])), [2.0, 4.0])
    assert_close(f(np.array([-1.0, -2.0])), [1.0, 2.0])
    assert f.trace_count == 1
    for transform in (diffprog.grad, lambda f: lambda x: diffprog.jvp(f, (x,), (x * 0 + 1,))[1]):
        d = jit(transform(branchy))  # one trace, both branches differentiated at run time
        assert_close(d(np.array(0.5)), np.cos(0.5))
        assert_close(d(np.array(-1.0)), np.exp(-1.0))
        assert d.trace_count == 1
    s = jit(lambda x: newton_sqrt(x))
    assert_close(s(np.array(2.0)), newton_sqrt(2.0))
    assert_close(s(np.array(9.0)), newton_sqrt(9.0))
    assert s.trace_count == 1
    h = jit(lambda n, x: fori_loop(0, n, lambda i, c: c * x, np.array(1.0)))
    assert h(3, np.array(2.0)) == 8.0 and h(5, np.array(2.0)) == 32.0  # traced bounds
    assert h.trace_count == 1
    with pytest.raises(ValueError, match="while_loop.*max_steps"):  # traced bounds: a while
        diffprog.grad(lambda x: h(3, x))(np.array(2.0))
    with pytest.raises(TypeError, match="scan: argument 'length' must be a static integer"):
        jit(lambda n, x: scan(lambda c, _: (c, None), x, length=n)[0])(3, np.array(1.0))


def test_jit_composes_with_derivatives_of_control_flow():
    W, U = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2))
    h0, xs = rng.normal(size=3), rng.normal(size=(10, 2))
    loss = lambda W: _rnn_scan(W, U, h0, xs)
    ref = diffprog.grad(lambda W: _rnn_unrolled(W, U, h0, xs))(W)
    assert_close(jit(diffprog.grad(loss))(W), ref)
    assert_close(diffprog.grad(jit(loss))(W), ref)
    for x in (2.0, 5.0):  # the reverse pass of a while loop with a traced trip count
        x = np.array(x)
        assert_close(jit(diffprog.grad(newton_sqrt))(x), diffprog.grad(newton_unrolled)(x))
        assert_close(diffprog.grad(jit(newton_sqrt))(x), diffprog.grad(newton_unrolled)(x))
        assert_close(jit(diffprog.grad(diffprog.grad(newton_sqrt)))(x),
                     diffprog.grad(diffprog.grad(newton_unrolled))(x))
    with pytest.raises(MaxStepsExceeded):
        jit(lambda x: newton_sqrt(x, max_steps=2))(np.array(2.0))


# ============================================================================ vmap


def test_vmap_cond_batched_and_unbatched_predicate():
    xs = np.array([-1.0, 0.5, 2.0])
    assert_close(vmap(branchy)(xs), [branchy(x) for x in xs])
    assert_close(vmap(diffprog.grad(branchy))(xs), [diffprog.grad(branchy)(x) for x in xs])
    assert_close(diffprog.grad(lambda x: dnp.sum(vmap(branchy)(x)))(xs),
                 [diffprog.grad(branchy)(x) for x in xs])
    g = lambda p, x: cond(p, dnp.sin, dnp.exp, x)
    assert_close(vmap(g, in_axes=(None, 0))(True, xs), np.sin(xs))
    h = lambda i, x: switch(i, [lambda x: x, lambda x: 2 * x, lambda x: 3 * x], x)
    assert_close(vmap(h)(np.array([0, 2, 5]), xs), [-1.0, 1.5, 6.0])


def test_vmap_scan_and_fori_loop():
    def rnn(w, xs):
        return scan(lambda c, x: (dnp.tanh(c * w + x), c), 0.0, xs)

    W, XS = np.array([0.5, 0.9, -0.3]), rng.normal(size=(3, 6))
    c, ys = vmap(rnn)(W, XS)
    for i in range(3):
        ci, yi = rnn(W[i], XS[i])
        assert_close(c[i], ci)
        assert_close(ys[i], yi)
    loss = lambda w, x: rnn(w, x)[0]
    per = [diffprog.grad(loss)(w, x) for w, x in zip(W, XS, strict=True)]
    assert_close(vmap(diffprog.grad(loss))(W, XS), per)
    assert_close(diffprog.grad(lambda W: dnp.sum(vmap(loss)(W, XS)))(W), per)
    fl = lambda x: fori_loop(0, 5, lambda i, c: c * x + i, x)
    X = np.array([1.5, -2.0, 3.0])
    assert_close(vmap(fl)(X), [fl(x) for x in X])


def test_vmap_closed_over_batched_values():
    W = np.array([0.5, -1.0, 2.0])
    f = lambda w: cond(w > 0, lambda x: x * w, lambda x: x - w, np.array(3.0))
    assert_close(vmap(f)(W), [f(w) for w in W])
    g = lambda w: scan(lambda c, x: (c * w + x, c), 0.0, np.arange(4.0))
    c, ys = vmap(g)(W)
    for i, w in enumerate(W):
        assert_close(c[i], g(w)[0])
        assert_close(ys[i], g(w)[1])
    assert_close(vmap(diffprog.grad(lambda w: g(w)[0]))(W),
                 [diffprog.grad(lambda w: g(w)[0])(w) for w in W])


def test_vmap_while_loop_masked_updates_and_gradients():
    f = lambda x: while_loop(lambda s: s < 10, lambda s: s * x, np.array(1.0), max_steps=30)
    X = np.array([1.5, 2.0, 4.0])  # 6, 4 and 2 iterations
    assert np.array_equal(vmap(f)(X), [f(x) for x in X])
    per = [diffprog.grad(f)(x) for x in X]
    assert_close(vmap(diffprog.grad(f))(X), per)
    assert_close(diffprog.grad(lambda X: dnp.sum(vmap(f)(X)))(X), per)
    assert_close(vmap(diffprog.grad(diffprog.grad(f)))(X),
                 [diffprog.grad(diffprog.grad(f))(x) for x in X])
    if jit is not None:
        assert_close(jit(vmap(diffprog.grad(f)))(X), per)
