"""Cost claims of book §7.7, §8.1 and §8.3 measured with the engine's instrumentation."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp

D = 1000  # width of the chain's state: large enough that intermediate buffers dominate


def chain(K):
    def f(s):
        for _ in range(K):
            s = dnp.add(dnp.multiply(dnp.sin(s), 1.01), 0.1)
        return s

    return f


def _peak(fn):
    gc.collect()
    with diffprog.profile() as p:
        fn()
    return p


@pytest.mark.parametrize("K", [10, 1000])
def test_jvp_memory_is_about_twice_the_function_and_independent_of_K(K):
    s0, v = np.linspace(0, 1, D), np.ones(D)
    f = chain(K)
    pf = _peak(lambda: f(s0))
    pj = _peak(lambda: diffprog.jvp(f, (s0,), (v,)))
    ratio = pj.peak_bytes / pf.peak_bytes
    assert 1.5 <= ratio <= 2.5, ratio
    # independent of K: a handful of state-sized buffers, however long the chain
    assert pj.peak_bytes <= 8 * 8 * D


def test_vjp_of_a_K_step_chain_stores_K_residuals():
    s0 = np.linspace(0, 1, D)
    stored = {}
    for K in (50, 100):
        f = chain(K)
        with diffprog.profile() as p:
            out, f_vjp = diffprog.vjp(f, s0)
            stored[K] = p.live_bytes
        assert f_vjp(np.ones(D))[0].shape == (D,)
    # each step keeps its residual state alive until the backward pass: linear growth in K
    per_step = (stored[100] - stored[50]) / 50
    assert per_step >= 8 * D
    assert stored[100] >= 100 * 8 * D


def test_primitive_call_counts():
    with diffprog.profile() as p:
        diffprog.grad(lambda x: dnp.sum(dnp.sin(x) * x))(np.ones(3))
    assert p.primitive_calls["sin"] == 1
    assert p.primitive_calls["cos"] == 1  # the VJP of sin
    assert p.vjp_calls["sin"] == 1 and p.vjp_calls["multiply"] == 1 and p.vjp_calls["sum"] == 1


def test_forward_mode_costs_about_two_function_evaluations():
    f = chain(20)
    s0 = np.linspace(0, 1, 5)
    with diffprog.profile() as pf:
        f(s0)
    with diffprog.profile() as pj:
        diffprog.jvp(f, (s0,), (np.ones(5),))
    # one JVP rule per primitive application of f, and the primal ops themselves
    assert sum(pj.jvp_calls.values()) == pf.total_primitive_calls
    assert pj.primitive_calls["sin"] == pf.primitive_calls["sin"]


def test_repeated_grad_calls_do_not_grow_memory():
    g = diffprog.grad(lambda w, x: dnp.sum(dnp.tanh(x @ w) ** 2))
    w, x = np.ones((4, 3)), np.ones((5, 4))
    for _ in range(50):
        g(w, x)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        g(w, x)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, growth


def test_gradients_in_threads_are_correct():
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        A = rng.normal(size=(6, 6))
        for _ in range(40):
            x = rng.normal(size=6)
            g = diffprog.grad(lambda x: dnp.sum(dnp.tanh(A @ x)) * 2.0)(x)
            expected = 2.0 * A.T @ (1 - np.tanh(A @ x) ** 2)
            h = diffprog.hvp(lambda x: dnp.sum(dnp.sin(x)), x, np.ones(6))
            if not (np.allclose(g, expected, rtol=1e-12) and np.allclose(h, -np.sin(x))):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_count_calls_table_7_1():
    from diffprog.derivatives import fd_grad

    P = 10
    f = diffprog.count_calls(lambda w: float(np.sum(w ** 2)))
    fd_grad(f, np.ones(P), scheme="central")
    assert f.calls == 2 * P
