"""Checkpointing (Book §8.5; spec AD-37…AD-44 and the "Checkpointing (§8.5)" worked example).

Expected counts come from the spec's closed forms and its table of C*(k, s).
"""

from __future__ import annotations

from functools import cache
from math import comb

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives.checkpointing import (
    ChainVJP,
    Schedule,
    checkpoint,
    checkpoint_cost,
    checkpoint_schedule,
    checkpoint_sequential,
    remat,
    run_schedule,
    vjp_chain,
    vjp_checkpointed,
    vjp_full_recompute,
    vjp_halving,
    vjp_online_checkpointed,
)

# spec table of C*(k, s) (derived from Eq. 8.3), s = 1..6
SPEC_TABLE = {
    2: (1, 1, 1, 1, 1, 1),
    3: (3, 2, 2, 2, 2, 2),
    4: (6, 4, 3, 3, 3, 3),
    5: (10, 6, 5, 4, 4, 4),
    6: (15, 8, 7, 6, 5, 5),
    7: (21, 11, 9, 8, 7, 6),
    8: (28, 14, 11, 10, 9, 8),
    10: (45, 20, 15, 14, 13, 12),
    12: (66, 28, 21, 18, 17, 16),
    16: (120, 45, 33, 27, 25, 24),
}
# "more rows", s = (1, 2, 3, 4, 5, 6, 8, 10)
SPEC_ROWS_S = (1, 2, 3, 4, 5, 6, 8, 10)
SPEC_ROWS = {
    32: (496, 140, 93, 75, 68, 60, 54, 52),
    64: (2016, 420, 258, 200, 172, 156, 137, 116),
    100: (4950, 845, 490, 374, 316, 280, 245, 222),
}


def make_chain(K, n=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.3, size=(K, n))
    b = rng.normal(size=(K, n)) * 0.1
    chain = [diffprog.count_calls(lambda s, ak=ak, bk=bk: dnp.tanh(ak * s + bk))
             for ak, bk in zip(a, b, strict=True)]
    return chain, rng.normal(size=n), rng.normal(size=n)


def total_calls(chain):
    return sum(f.calls for f in chain)


def reset(chain):
    for f in chain:
        f.calls = 0


def halving_count(K):
    """C(K) = C(⌈K/2⌉) + C(⌊K/2⌋) + ⌊K/2⌋, C(1) = 0 (Alg 8.7 split at ⌊K/2⌋)."""
    if K == 1:
        return 0
    return halving_count(K - K // 2) + halving_count(K // 2) + K // 2


@cache
def eq83(k, s):
    """Eq. 8.3 with the corrected range 1 ≤ l ≤ k−1."""
    if k == 1:
        return 0
    if s == 1:
        return k * (k - 1) // 2
    return min(eq83(k - l, s - 1) + eq83(l, s) + l for l in range(1, k))


def closed_form(k, s):
    r = 0
    while comb(s + r, s) < k:
        r += 1
    return r * k - comb(s + r, s + 1)


# ---------------------------------------------------------------- AD-37, AD-38, AD-39


def test_store_all_counts_K8():
    chain, s0, u = make_chain(8)
    res = vjp_chain(chain, s0, u)
    assert isinstance(res, ChainVJP)
    assert (res.calls, res.slots, res.vjp_calls) == (7, 8, 8)
    # every VJP evaluates its step once inside the engine: measured calls = C + K
    assert total_calls(chain) == 7 + 8


@pytest.mark.parametrize("K", [8, 16])
def test_full_recompute_counts_and_bitwise_equal(K):
    chain, s0, u = make_chain(K)
    ref = vjp_chain(chain, s0, u)
    reset(chain)
    res = vjp_full_recompute(chain, s0, u)
    assert res.calls == K * (K - 1) // 2 and res.slots == 1
    assert total_calls(chain) == K * (K - 1) // 2 + K
    assert np.array_equal(res.cotangent, ref.cotangent)
    assert np.array_equal(res.value, ref.value)


@pytest.mark.parametrize("K, C, M", [(8, 12, 3), (16, 32, 4), (64, 192, 6)])
def test_halving_counts_power_of_two(K, C, M):
    assert C == K // 2 * int(np.log2(K))
    chain, s0, u = make_chain(K, n=2)
    ref = vjp_chain(chain, s0, u)
    reset(chain)
    res = vjp_halving(chain, s0, u)
    assert (res.calls, res.slots) == (C, M)
    assert total_calls(chain) == C + K
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)


@pytest.mark.parametrize("K", [1, 2, 3, 5, 7, 12, 13])
def test_halving_not_power_of_two(K):
    chain, s0, u = make_chain(K)
    ref = vjp_chain(chain, s0, u)
    res = vjp_halving(chain, s0, u)
    assert res.calls == halving_count(K)
    assert res.slots == (max(1, int(np.ceil(np.log2(K)))))
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.value, ref.value, rtol=0, atol=1e-12)


def test_value_and_cotangent_match_the_engine():
    chain, s0, u = make_chain(10)

    def f(s):
        for g in chain:
            s = g(s)
        return s

    y, f_vjp = diffprog.vjp(f, s0)
    res = vjp_checkpointed(chain, s0, u, num_slots=3)
    np.testing.assert_allclose(res.value, y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.cotangent, f_vjp(u)[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- AD-40 (DP), errata


def test_dp_table_matches_spec_table():
    sch = checkpoint_schedule(16, 6)
    for k, row in SPEC_TABLE.items():
        assert tuple(int(v) for v in sch.table[k, 1:7]) == row, k
    for k, row in SPEC_ROWS.items():
        for s, v in zip(SPEC_ROWS_S, row, strict=True):
            assert checkpoint_cost(k, s) == v
    big = checkpoint_schedule(100, 10)
    for k, row in SPEC_ROWS.items():
        assert tuple(int(big.table[k, s]) for s in SPEC_ROWS_S) == row


def test_dp_beats_halving_at_equal_memory():
    # spec: K=8 12 vs 11, K=16 32 vs 27, K=32 80 vs 68, K=64 192 vs 156, K=4 both 4
    for K, halv, dp in [(4, 4, 4), (8, 12, 11), (16, 32, 27), (32, 80, 68), (64, 192, 156)]:
        s = int(np.log2(K))
        assert checkpoint_schedule(K, method="halving").calls == halv
        sch = checkpoint_schedule(K, s)
        assert sch.calls == dp == int(sch.table[K, s])
        assert sch.slots <= s


def test_dp_recurrence_uses_corrected_range():
    """Errata: Eq. 8.3's min runs over 1 ≤ l ≤ k−1 (not K−1)."""
    K, S = 24, 5
    sch = checkpoint_schedule(K, S)
    for k in range(1, K + 1):
        for s in range(1, S + 1):
            assert int(sch.table[k, s]) == eq83(k, s)
            if k >= 2 and s >= 2:
                l = int(sch.splits[k, s])
                assert 1 <= l <= k - 1
                assert sch.table[k - l, s - 1] + sch.table[l, s] + l == sch.table[k, s]


def test_dp_base_cases_and_many_slots():
    sch = checkpoint_schedule(40, 40)
    for k in range(1, 41):
        assert sch.table[k, 1] == k * (k - 1) // 2
        assert sch.table[1, 5] == 0
        for s in range(k, 41):
            assert sch.table[k, s] == k - 1 == eq83(k, s)  # C*(k, s ≥ k) = k − 1
    for method in ("dp", "analytic"):
        many = checkpoint_schedule(30, 1000, method=method)
        assert many.calls == 29 and many.slots <= 30


def test_dp_equals_closed_form_K39_S7():
    sch = checkpoint_schedule(39, 7)
    for k in range(1, 40):
        for s in range(1, 8):
            assert int(sch.table[k, s]) == closed_form(k, s) == checkpoint_cost(k, s)


@pytest.mark.parametrize("K, S", [(8, 3), (16, 4), (13, 2), (20, 5), (7, 10), (9, 1), (1, 3)])
def test_running_dp_schedule_measures_C_star(K, S):
    chain, s0, u = make_chain(K)
    ref = vjp_chain(chain, s0, u)
    reset(chain)
    res = vjp_checkpointed(chain, s0, u, num_slots=S, schedule="dp")
    assert res.calls == eq83(K, S)
    assert total_calls(chain) == eq83(K, S) + K
    assert res.slots <= S
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.value, ref.value, rtol=0, atol=1e-12)


def test_schedule_actions_backtrack_both_branches():
    sch = checkpoint_schedule(8, 3)
    assert isinstance(sch, Schedule)
    kinds = {a[0] for a in sch.actions}
    assert kinds <= {"forward", "save", "load", "free", "reverse"}
    # each step is reversed exactly once, from K down to 1
    assert [a[1] for a in sch.actions if a[0] == "reverse"] == list(range(8, 0, -1))
    assert sch.calls == 11 and sch.slots <= 3


def test_pytree_state():
    rng = np.random.default_rng(1)
    K = 9
    ws = rng.normal(size=(K, 3))
    chain = [lambda st, w=w: {"x": dnp.sin(st["x"] * w) + st["y"], "y": dnp.tanh(st["y"])}
             for w in ws]
    s0 = {"x": rng.normal(size=3), "y": rng.normal(size=3)}
    u = {"x": rng.normal(size=3), "y": rng.normal(size=3)}
    ref = vjp_chain(chain, s0, u)
    res = vjp_checkpointed(chain, s0, u, num_slots=3)
    assert res.calls == eq83(K, 3)
    for key in ("x", "y"):
        np.testing.assert_allclose(res.cotangent[key], ref.cotangent[key], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- AD-41 varying costs


def _weighted_cost(actions, costs):
    return sum(float(np.sum(costs[a[1]:a[2]])) for a in actions if a[0] == "forward")


def test_uniform_costs_reproduce_unit_dp():
    sch = checkpoint_schedule(16, 4, costs=np.ones(16))
    assert sch.calls == 27 and sch.cost == 27
    sch2 = checkpoint_schedule(12, 3, costs=2.0 * np.ones(12))
    assert sch2.calls == 21 and sch2.cost == 2 * 21


def test_expensive_step_weighted_optimum():
    K, S = 16, 3
    costs = np.ones(K)
    costs[2] = 1000.0  # step f_3 costs 1000x
    weighted = checkpoint_schedule(K, S, costs=costs)
    uniform = checkpoint_schedule(K, S)
    assert weighted.cost <= _weighted_cost(uniform.actions, costs)
    assert weighted.cost < _weighted_cost(uniform.actions, costs)  # strictly better here
    assert weighted.cost == _weighted_cost(weighted.actions, costs)
    assert weighted.slots <= S
    chain, s0, u = make_chain(K)
    ref = vjp_chain(chain, s0, u)
    res = vjp_checkpointed(chain, s0, u, num_slots=S, costs=costs)
    assert res.calls == weighted.calls >= eq83(K, S)
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)


def test_weighted_dp_matches_bruteforce():
    costs = np.array([1.0, 5.0, 2.0, 1.0, 7.0, 1.0, 3.0])

    @cache
    def w(a, b, s):
        if b - a == 1:
            return 0.0
        if s == 1:
            return sum(costs[t - 1] * (b - t) for t in range(a + 1, b))
        return min(w(m, b, s - 1) + w(a, m, s) + sum(costs[a:m]) for m in range(a + 1, b))

    for S in (1, 2, 3, 4):
        assert checkpoint_schedule(7, S, costs=costs).cost == pytest.approx(w(0, 7, S))


# ---------------------------------------------------------------- AD-42 analytic


def test_analytic_schedule_is_optimal_K39_S7():
    for K in range(1, 40):
        for S in range(1, 8):
            sch = checkpoint_schedule(K, S, method="analytic")
            assert sch.table is None
            assert sch.calls == closed_form(K, S), (K, S)
            assert sch.slots <= S


def test_analytic_runs_and_matches_store_all():
    chain, s0, u = make_chain(30)
    ref = vjp_chain(chain, s0, u)
    res = vjp_checkpointed(chain, s0, u, num_slots=4, schedule="analytic")
    assert res.calls == closed_form(30, 4)
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- AD-43 online


def test_online_checkpointing_T100_S5():
    T, S = 100, 5
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 1.2, size=4)
    step = diffprog.count_calls(lambda s: dnp.tanh(a * s) + 0.01)
    counter = {"n": 0}

    def cond(s):  # the loop length is unknown to the algorithm
        counter["n"] += 1
        return counter["n"] <= T

    s0, u = rng.normal(size=4), rng.normal(size=4)
    res = vjp_online_checkpointed(step, s0, cond, u, num_slots=S)
    assert res.vjp_calls == T
    assert res.slots <= S
    assert res.calls <= 2 * 316  # 2·C*(100, 5)
    assert step.calls == res.calls + T
    ref = vjp_chain([step] * T, s0, u)
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.value, ref.value, rtol=0, atol=1e-12)


@pytest.mark.parametrize("T, S", [(0, 2), (1, 1), (7, 1), (17, 3), (33, 2)])
def test_online_small_cases(T, S):
    step = lambda s: dnp.sin(s) * 1.1  # noqa: E731
    left = {"n": T}

    def cond(s):
        left["n"] -= 1
        return left["n"] >= 0

    s0, u = np.array([0.3, -0.4]), np.array([1.0, 2.0])
    res = vjp_online_checkpointed(step, s0, cond, u, num_slots=S)
    assert res.slots <= S and res.vjp_calls == T
    if T == 0:
        np.testing.assert_array_equal(res.cotangent, u)
        return
    ref = vjp_chain([step] * T, s0, u)
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)


def test_online_max_steps():
    with pytest.raises(RuntimeError, match="max_steps"):
        vjp_online_checkpointed(lambda s: s + 1, np.zeros(1), lambda s: True, np.ones(1),
                                num_slots=2, max_steps=5)


# ---------------------------------------------------------------- AD-44 checkpoint / remat


def test_checkpoint_decorator_gradient_and_second_order():
    def f(x, w):
        for _ in range(5):
            x = dnp.tanh(w * x) + dnp.sin(x)
        return dnp.sum(x ** 2)

    g = checkpoint(f)
    assert remat is checkpoint
    x, w = np.array([0.3, -0.2, 0.5]), np.array([1.1, 0.7, -0.4])
    assert g(x, w) == pytest.approx(f(x, w), abs=1e-12)
    for argnums in (0, 1, (0, 1)):
        a = diffprog.grad(f, argnums=argnums)(x, w)
        b = diffprog.grad(g, argnums=argnums)(x, w)
        for p, q in zip(np.atleast_1d(a) if argnums != (0, 1) else a,
                        np.atleast_1d(b) if argnums != (0, 1) else b, strict=True):
            np.testing.assert_allclose(q, p, rtol=0, atol=1e-12)
    # grad of grad (a Hessian-vector product) through the checkpoint
    v = np.array([1.0, -1.0, 0.5])
    hv = lambda fun: diffprog.grad(lambda y: dnp.sum(diffprog.grad(fun)(y, w) * v))(x)  # noqa: E731
    np.testing.assert_allclose(hv(g), hv(f), rtol=0, atol=1e-12)


def test_checkpoint_stores_only_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000)

    def body(s):
        for _ in range(30):
            s = dnp.tanh(s * 1.01)
        return s

    counts = {}
    for name, fn in (("plain", body), ("remat", checkpoint(body))):
        with diffprog.profile() as p:
            y, f_vjp = diffprog.vjp(fn, x)
            counts[name] = p.live_buffers
            g = f_vjp(np.ones(1000))[0]
        counts[name + "_g"] = g
    assert counts["plain"] >= 30
    assert counts["remat"] <= 3
    np.testing.assert_allclose(counts["remat_g"], counts["plain_g"], rtol=0, atol=1e-12)


def test_checkpoint_sequential_K100_10_segments():
    K, n = 100, 500
    chain, s0, u = make_chain(K, n=n)

    def plain(s):
        for f in chain:
            s = f(s)
        return s

    seq = checkpoint_sequential(chain, 10)
    stored, grads = {}, {}
    for name, fn in (("plain", plain), ("seq", seq)):
        with diffprog.profile() as p:
            y, f_vjp = diffprog.vjp(fn, s0)
            stored[name] = p.live_buffers
            grads[name] = f_vjp(u)[0]
    assert stored["plain"] >= 100  # about one residual per step
    assert stored["seq"] <= 25  # about 10 segment inputs + 10 outputs
    np.testing.assert_allclose(grads["seq"], grads["plain"], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- issue 4 acceptance


def test_acceptance_200_steps_8_slots_memory():
    K, n = 200, 4000
    chain, s0, u = make_chain(K, n=n, seed=5)
    with diffprog.profile() as p_all:
        ref = vjp_chain(chain, s0, u, checkpoint="store_all")
    with diffprog.profile() as p_dp:
        res = vjp_checkpointed(chain, s0, u, num_slots=8, schedule="dp")

    def f(s):
        for g in chain:
            s = g(s)
        return s

    with diffprog.profile() as p_tape:
        _, f_vjp = diffprog.vjp(f, s0)
        tape_g = f_vjp(u)[0]
    assert res.slots <= 8 and ref.slots == K
    assert res.calls == checkpoint_cost(K, 8)
    assert p_dp.peak_bytes <= p_all.peak_bytes / 10
    assert p_dp.peak_bytes <= p_tape.peak_bytes / 10
    np.testing.assert_allclose(res.cotangent, ref.cotangent, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.cotangent, tape_g, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- bad input


def test_bad_inputs():
    chain, s0, u = make_chain(4)
    with pytest.raises(ValueError, match="vjp_checkpointed.*num_slots"):
        vjp_checkpointed(chain, s0, u, num_slots=0)
    with pytest.raises(TypeError, match="num_slots"):
        vjp_checkpointed(chain, s0, u, num_slots=2.5)
    with pytest.raises(TypeError, match="num_slots"):
        vjp_checkpointed(chain, s0, u, schedule="dp")
    with pytest.raises(ValueError, match="unknown schedule 'optimal'"):
        vjp_checkpointed(chain, s0, u, num_slots=2, schedule="optimal")
    with pytest.raises(ValueError, match="unknown checkpoint"):
        vjp_chain(chain, s0, u, checkpoint="some")
    with pytest.raises(ValueError, match="checkpoint_schedule.*unknown method 'revolve'"):
        checkpoint_schedule(8, 3, method="revolve")
    with pytest.raises(ValueError, match="checkpoint_schedule.*'S'"):
        checkpoint_schedule(8, 0)
    with pytest.raises(ValueError, match="checkpoint_schedule.*'K'"):
        checkpoint_schedule(0, 2)
    with pytest.raises(ValueError, match="costs.*shape"):
        checkpoint_schedule(8, 3, costs=np.ones(7))
    with pytest.raises(ValueError, match="costs.*nonnegative"):
        checkpoint_schedule(3, 2, costs=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="costs"):
        checkpoint_schedule(3, 2, costs=[1.0, 2.0, 1.0], method="analytic")
    with pytest.raises(TypeError, match="chain"):
        vjp_checkpointed(chain[0], s0, u, num_slots=2)
    with pytest.raises(ValueError, match="chain"):
        vjp_halving([], s0, u)
    with pytest.raises(TypeError, match="element 1"):
        vjp_full_recompute([chain[0], 3], s0, u)
    with pytest.raises(ValueError, match="halving.*needs 2 slots"):
        vjp_checkpointed(chain, s0, u, num_slots=1, schedule="halving")
    with pytest.raises(ValueError, match="store_all"):
        vjp_checkpointed(chain, s0, u, num_slots=2, schedule="store_all")
    with pytest.raises(ValueError, match="run_schedule.*K=8"):
        run_schedule(chain, s0, u, checkpoint_schedule(8, 2))
    with pytest.raises(ValueError, match="vjp_online_checkpointed.*num_slots"):
        vjp_online_checkpointed(chain[0], s0, lambda s: False, u, num_slots=0)
    with pytest.raises(TypeError, match="checkpoint.*callable"):
        checkpoint(3)
    with pytest.raises(ValueError, match="checkpoint_sequential.*segments"):
        checkpoint_sequential(chain, 5)
    with pytest.raises(ValueError, match="checkpoint_sequential.*segments"):
        checkpoint_sequential(chain, 0)
    with pytest.raises(ValueError, match="checkpoint_cost.*'S'"):
        checkpoint_cost(5, 0)
