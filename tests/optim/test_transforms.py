"""Gradient transformations and schedules against their published update formulas (book §16.1–16.2).

Every expected value below is computed from the formula written out in the test (plain Python
arithmetic on scalars), never from another library's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffprog.optim import schedules as S
from diffprog.optim import transforms as T

# A fixed sequence of three gradients for a one-coordinate parameter.
G = [0.5, -2.0, 1.5]


def run(opt, grads, params=None):
    """Feed ``grads`` (list of arrays) to ``opt``; return the list of updates and final params."""
    params = np.zeros_like(np.asarray(grads[0], dtype=float)) if params is None else params
    state = opt.init(params)
    out = []
    for g in grads:
        u, state = opt.update(g, state, params)
        params = T.apply_updates(params, u)
        out.append(u)
    return out, params, state


def scalars(grads):
    return [np.array([g]) for g in grads]


# ------------------------------------------------------------------------------- step by step


def test_sgd_plain_three_steps():
    us, _, _ = run(T.sgd(0.1), scalars(G))
    for u, g in zip(us, G, strict=True):
        assert u[0] == pytest.approx(-0.1 * g, abs=1e-15)


def test_sgd_momentum_three_steps_hand_computed():
    # v⁺ = ν v + g, u = −γ v⁺ with γ = 0.1, ν = 0.9
    # v1 = 0.5, v2 = 0.45 − 2 = −1.55, v3 = −1.395 + 1.5 = 0.105
    us, _, state = run(T.sgd(0.1, momentum=0.9), scalars(G))
    assert [u[0] for u in us] == pytest.approx([-0.05, 0.155, -0.0105], abs=1e-14)
    assert state.trace[0] == pytest.approx(0.105, abs=1e-14)
    assert int(state.count) == 3


def test_nesterov_three_steps_hand_computed():
    # v⁺ = ν v + g, u = −γ (g + ν v⁺); v as above
    # u1 = −0.1(0.5 + 0.45) = −0.095; u2 = −0.1(−2 − 1.395) = 0.3395; u3 = −0.1(1.5 + 0.0945)
    us, _, _ = run(T.sgd(0.1, momentum=0.9, nesterov=True), scalars(G))
    assert [u[0] for u in us] == pytest.approx([-0.095, 0.3395, -0.15945], abs=1e-14)
    us2, _, _ = run(T.nesterov(0.1, 0.9), scalars(G))
    assert [u[0] for u in us2] == pytest.approx([u[0] for u in us], abs=0)


def test_heavy_ball_three_steps_and_equivalence_with_sgd_momentum():
    # book §16.1.3: v⁺ = β v − γ g, w⁺ = w + v⁺ (γ = 0.1, β = 0.9)
    # v1 = −0.05, v2 = −0.045 + 0.2 = 0.155, v3 = 0.1395 − 0.15 = −0.0105
    us, _, _ = run(T.momentum(0.1, 0.9), scalars(G))
    assert [u[0] for u in us] == pytest.approx([-0.05, 0.155, -0.0105], abs=1e-14)
    # β = 0 is gradient descent
    us0, _, _ = run(T.momentum(0.1, 0.0), scalars(G))
    assert [u[0] for u in us0] == pytest.approx([-0.1 * g for g in G], abs=1e-15)


def test_nesterov_reparametrization_matches_lookahead_nag_and_catches_the_misprint():
    """OPT-32: our iterates equal the look-ahead points y = w + νv of Sutskever's NAG
    (v⁺ = νv − γ∇L(w + νv), w⁺ = w + v⁺). The printed form, with gradient at w + νV in the
    "+g" convention (V⁺ = νV + ∇L(w + νV), w⁺ = w − γV⁺), gives other iterates."""
    A = np.diag([1.0, 0.1])
    grad = lambda w: A @ w
    gamma, nu = 0.5, 0.8
    w, v = np.array([1.0, 1.0]), np.zeros(2)
    ref = []
    for _ in range(100):
        v = nu * v - gamma * grad(w + nu * v)
        w = w + v
        ref.append(w + nu * v)
    opt = T.nesterov(gamma, nu)
    p = np.array([1.0, 1.0])
    st = opt.init(p)
    ours = []
    for _ in range(100):
        u, st = opt.update(grad(p), st, p)
        p = T.apply_updates(p, u)
        ours.append(p)
    np.testing.assert_allclose(np.array(ours), np.array(ref), atol=1e-10)
    # the printed (mixed-convention) look-ahead
    w, V = np.array([1.0, 1.0]), np.zeros(2)
    for _ in range(5):
        V = nu * V + grad(w + nu * V)
        w = w - gamma * V
    assert not np.allclose(w, ours[4], atol=1e-3)


def test_sgd_momentum_ema_convention_equivalence():
    """OPT-31: EMA momentum g_k = βg_{k−1} + (1−β)∇L, θ⁺ = θ − h g_k equals sgd(h(1−β), β)."""
    grad = lambda w: np.array([2.0, 0.5]) * w - 1.0
    h, beta = 0.3, 0.7
    th, gk = np.array([1.0, -1.0]), np.zeros(2)
    opt = T.sgd(h * (1 - beta), momentum=beta)
    p = th.copy()
    st = opt.init(p)
    for _ in range(30):
        gk = beta * gk + (1 - beta) * grad(th)
        th = th - h * gk
        u, st = opt.update(grad(p), st, p)
        p = T.apply_updates(p, u)
    np.testing.assert_allclose(p, th, atol=1e-12)


def test_adagrad_three_steps():
    # s⁺ = s + g², u = −γ g / (√s⁺ + ε), γ = 0.1, ε = 1e-10
    us, _, _ = run(T.adagrad(0.1, eps=1e-10), scalars(G))
    s, expected = 0.0, []
    for g in G:
        s += g * g
        expected.append(-0.1 * g / (math.sqrt(s) + 1e-10))
    assert [u[0] for u in us] == pytest.approx(expected, rel=1e-14)
    # by hand: s = 0.25, 4.25, 6.5
    assert expected == pytest.approx([-0.1, 0.2 / math.sqrt(4.25), -0.15 / math.sqrt(6.5)],
                                     rel=1e-8)


def test_rmsprop_three_steps():
    # ν⁺ = ρν + (1 − ρ)g², u = −γ g / (√ν⁺ + ε), γ = 0.01, ρ = 0.9, ε = 1e-8
    us, _, _ = run(T.rmsprop(0.01, decay=0.9, eps=1e-8), scalars(G))
    nu, expected = 0.0, []
    for g in G:
        nu = 0.9 * nu + 0.1 * g * g
        expected.append(-0.01 * g / (math.sqrt(nu) + 1e-8))
    assert [u[0] for u in us] == pytest.approx(expected, rel=1e-14)
    # by hand: ν = 0.025, 0.4225, 0.60525
    assert expected[1] == pytest.approx(0.02 / 0.65, rel=1e-7)


def adam_reference(grads, lr, b1, b2, eps, wd=0.0, w0=0.0):
    """Kingma & Ba, Algorithm 1 (AdamW: Loshchilov & Hutter, decoupled decay), on scalars."""
    m = v = 0.0
    w, out = w0, []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh = m / (1 - b1 ** t)
        vh = v / (1 - b2 ** t)
        u = -lr * (mh / (math.sqrt(vh) + eps) + wd * w)
        w = w + u
        out.append(u)
    return out


def test_adam_three_steps_on_a_pytree():
    params = {"a": np.array([0.0]), "b": [np.array([0.0, 0.0])]}
    Ga = [0.5, -2.0, 1.5]
    Gb = [(1.0, 3.0), (-0.1, 0.2), (0.0, -4.0)]
    opt = T.adam(0.1, b1=0.9, b2=0.999, eps=1e-8)
    st = opt.init(params)
    got_a, got_b0, got_b1 = [], [], []
    for ga, gb in zip(Ga, Gb, strict=True):
        g = {"a": np.array([ga]), "b": [np.array(gb)]}
        u, st = opt.update(g, st, params)
        params = T.apply_updates(params, u)
        got_a.append(u["a"][0])
        got_b0.append(u["b"][0][0])
        got_b1.append(u["b"][0][1])
    assert got_a == pytest.approx(adam_reference(Ga, 0.1, 0.9, 0.999, 1e-8), rel=1e-13)
    assert got_b0 == pytest.approx(adam_reference([g[0] for g in Gb], 0.1, 0.9, 0.999, 1e-8),
                                   rel=1e-13)
    assert got_b1 == pytest.approx(adam_reference([g[1] for g in Gb], 0.1, 0.9, 0.999, 1e-8),
                                   rel=1e-13)
    # by hand for a: step 2: m = 0.045 − 0.2 = −0.155, v = 0.00024975 + 0.004 = 0.00424975,
    # m̂ = −0.155/0.19, v̂ = 0.00424975/0.001999
    mh, vh = -0.155 / 0.19, 0.00424975 / 0.001999
    assert got_a[1] == pytest.approx(-0.1 * mh / (math.sqrt(vh) + 1e-8), rel=1e-12)
    assert isinstance(st, T.ScaleByAdamState) and int(st.count) == 3


def test_adamw_three_steps():
    w0 = 2.0
    us, _, _ = run(T.adamw(0.1, weight_decay=0.3), scalars(G), params=np.array([w0]))
    assert [u[0] for u in us] == pytest.approx(
        adam_reference(G, 0.1, 0.9, 0.999, 1e-8, wd=0.3, w0=w0), rel=1e-13)
    # first step by hand: m̂ = g, v̂ = g² → −0.1 (sign(0.5) + 0.3 · 2) = −0.16 (up to ε)
    assert us[0][0] == pytest.approx(-0.16, rel=1e-7)


def test_adam_special_cases_opt33():
    g = [np.array([3.0, -0.25])]
    # (a) bias correction, ε → 0: first step is −γ sign(g)
    u = run(T.adam(0.2, eps=0.0), g)[0][0]
    np.testing.assert_allclose(u, [-0.2, 0.2], rtol=1e-15)
    # (b) no bias correction: −γ(1−b1)/√(1−b2) sign(g) = −3.162γ sign(g)
    u = run(T.adam(0.2, eps=0.0, bias_correction=False), g)[0][0]
    np.testing.assert_allclose(u, np.array([-1.0, 1.0]) * 0.2 * 0.1 / math.sqrt(0.001))
    assert abs(u[0]) == pytest.approx(3.162 * 0.2, rel=1e-3)
    # (c) b1 = b2 = 0, ε = 0: sign-descent iterates
    grads = [np.array([1.0, -2.0]), np.array([-0.5, 4.0]), np.array([2.0, 0.1])]
    ua = run(T.adam(0.1, b1=0.0, b2=0.0, eps=0.0), grads)[0]
    us = run(T.sign_descent(0.1), grads)[0]
    np.testing.assert_allclose(np.array(ua), np.array(us), atol=1e-15)
    # eps inside the square root (the book's form): first step −γ g/√(g² + ε)
    u = run(T.adam(0.1, eps=1.0, eps_inside_sqrt=True), [np.array([1.0])])[0][0]
    assert u[0] == pytest.approx(-0.1 / math.sqrt(2.0), rel=1e-14)


def test_sign_descent_moves_each_coordinate_by_h():
    c = np.array([1.0, -0.35, 0.0])
    w = np.zeros(3) + np.array([0.0, 0.0, 0.0])
    opt = T.sign_descent(0.1)
    st = opt.init(w)
    for _ in range(3):
        u, st = opt.update(w - c, st, w)
        w = T.apply_updates(w, u)
    np.testing.assert_allclose(w, [0.3, -0.3, 0.0], atol=1e-15)


# ------------------------------------------------------------------------- composition, clipping


def test_clip_and_clip_by_global_norm():
    g = {"x": np.array([3.0, -10.0]), "y": np.array(4.0)}
    u, _ = T.clip(2.0).update(g, T.EmptyState())
    np.testing.assert_array_equal(u["x"], [2.0, -2.0])
    assert u["y"] == 2.0
    n = math.sqrt(9 + 100 + 16)
    u, _ = T.clip_by_global_norm(5.0).update(g, T.EmptyState())
    np.testing.assert_allclose(u["x"], np.array([3.0, -10.0]) * 5 / n, rtol=1e-15)
    assert T.global_norm(u) == pytest.approx(5.0, rel=1e-14)
    u, _ = T.clip_by_global_norm(100.0).update(g, T.EmptyState())
    assert u is g


def test_chain_clip_then_adam_equals_adam_on_clipped_gradients():
    grads = [np.array([3.0, 4.0]), np.array([0.3, 0.4]), np.array([-6.0, 8.0])]
    ua = run(T.chain(T.clip_by_global_norm(1.0), T.adam(0.1)), grads)[0]
    # global norms 5, 0.5, 10 → clipped gradients written out
    clipped = [np.array([0.6, 0.8]), np.array([0.3, 0.4]), np.array([-0.6, 0.8])]
    for k in range(2):
        ref = adam_reference([c[k] for c in clipped], 0.1, 0.9, 0.999, 1e-8)
        assert [u[k] for u in ua] == pytest.approx(ref, rel=1e-12)
    st = T.chain(T.clip_by_global_norm(1.0), T.adam(0.1)).init(np.zeros(2))
    assert isinstance(st, tuple) and isinstance(st[1], T.ScaleByAdamState)


def test_scale_scale_by_schedule_and_lr_schedules():
    us = run(T.chain(T.scale(2.0), T.scale_by_schedule(lambda t: 1.0 / (t + 1))), scalars(G))[0]
    assert [u[0] for u in us] == pytest.approx([2 * 0.5, 2 * -2.0 / 2, 2 * 1.5 / 3])
    # lr(t) is used on the (t+1)-th update
    us = run(T.sgd(S.piecewise_constant_schedule(1.0, {1: 0.5, 2: 0.5})), scalars(G))[0]
    assert [u[0] for u in us] == pytest.approx([-0.5, 1.0, -0.375])
    us = run(T.adam(S.constant_schedule(0.1), eps=0.0), scalars(G))[0]
    assert [u[0] for u in us] == pytest.approx(adam_reference(G, 0.1, 0.9, 0.999, 0.0))


def test_polyak_averaging_equals_mean_of_iterates_and_ema():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(20)]
    opt = T.chain(T.sgd(0.1), T.polyak_averaging())
    w = np.ones(3)
    st = opt.init(w)
    iterates = []
    for g in grads:
        u, st = opt.update(g, st, w)
        w = T.apply_updates(w, u)
        iterates.append(w)
    np.testing.assert_allclose(T.averaged_params(st), np.mean(iterates, axis=0), atol=1e-12)
    # EMA: w̄_k = β w̄_{k−1} + (1 − β) w_k with w̄_0 = w_0
    for beta in (0.0, 0.9):
        opt = T.chain(T.sgd(0.1), T.ema(beta))
        w = np.ones(3)
        st = opt.init(w)
        ref = w.copy()
        for g in grads:
            u, st = opt.update(g, st, w)
            w = T.apply_updates(w, u)
            ref = beta * ref + (1 - beta) * w
        np.testing.assert_allclose(T.averaged_params(st), ref, atol=1e-12)
    np.testing.assert_allclose(T.averaged_params(st), ref)
    with pytest.raises(ValueError, match="averaged_params"):
        T.averaged_params(T.adam(0.1).init(w))


def test_apply_updates_keeps_dtype_and_structure():
    p = {"w": np.ones(2, dtype=np.float32), "b": 1.0}
    out = T.apply_updates(p, {"w": np.full(2, 0.5), "b": 0.25})
    assert out["w"].dtype == np.float32 and out["b"] == 1.25
    with pytest.raises(ValueError, match="apply_updates"):
        T.apply_updates(p, {"w": np.ones(2)})
    with pytest.raises(ValueError, match="shape"):
        T.apply_updates({"w": np.ones(2)}, {"w": np.ones(3)})


def test_float32_end_to_end():
    p = np.ones(3, dtype=np.float32)
    opt = T.adam(np.float32(0.1).item())
    st = opt.init(p)
    u, st = opt.update(np.ones(3, dtype=np.float32), st, p)
    assert T.apply_updates(p, u).dtype == np.float32


# ------------------------------------------------------------------------------------ bad input

OPTIMIZERS = {
    "sgd": lambda lr: T.sgd(lr),
    "momentum": lambda lr: T.momentum(lr, 0.9),
    "nesterov": lambda lr: T.nesterov(lr, 0.9),
    "sign_descent": lambda lr: T.sign_descent(lr),
    "adagrad": lambda lr: T.adagrad(lr),
    "rmsprop": lambda lr: T.rmsprop(lr),
    "adam": lambda lr: T.adam(lr),
    "adamw": lambda lr: T.adamw(lr),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_negative_learning_rate_is_refused(name):
    with pytest.raises(ValueError, match="lr"):
        OPTIMIZERS[name](-0.1)
    with pytest.raises(ValueError, match="lr"):
        OPTIMIZERS[name](float("nan"))
    opt = OPTIMIZERS[name](lambda t: 0.1 - 0.1 * t)  # negative from the third step on
    w = np.zeros(2)
    st = opt.init(w)
    for _ in range(2):
        u, st = opt.update(np.ones(2), st, w)
    with pytest.raises(ValueError, match="schedule"):
        opt.update(np.ones(2), st, w)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_finite_gradient_raises_naming_the_transform(name):
    opt = OPTIMIZERS[name](0.1)
    w = {"a": np.zeros(2)}
    st = opt.init(w)
    for bad in (np.nan, np.inf):
        with pytest.raises(FloatingPointError, match=name if name != "nesterov" else "sgd"):
            opt.update({"a": np.array([1.0, bad])}, st, w)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_mismatched_structures_are_refused(name):
    opt = OPTIMIZERS[name](0.1)
    st = opt.init({"a": np.zeros(2), "b": np.zeros(1)})
    with pytest.raises(ValueError, match="structure"):
        opt.update({"a": np.ones(2)}, st, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="shape"):
        opt.update({"a": np.ones(3), "b": np.ones(1)}, st, {"a": np.zeros(3), "b": np.zeros(1)})
    with pytest.raises(TypeError, match="state"):
        opt.update({"a": np.ones(2), "b": np.ones(1)}, (), None)


def test_params_not_matching_the_state_are_refused():
    opt = T.adamw(0.1, weight_decay=0.1)
    st = opt.init({"a": np.zeros(2)})
    with pytest.raises(ValueError, match="structure"):
        opt.update({"a": np.ones(2)}, st, {"a": np.zeros(2), "b": np.zeros(1)})
    avg = T.polyak_averaging()
    st = avg.init([np.zeros(2)])
    with pytest.raises(ValueError, match="structure"):
        avg.update([np.ones(2)], st, (np.zeros(2),))


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="nesterov"):
        T.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        T.sgd(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="b1"):
        T.adam(0.1, b1=1.0)
    with pytest.raises(ValueError, match="decay"):
        T.rmsprop(0.1, decay=-0.1)
    with pytest.raises(ValueError, match="eps"):
        T.adam(0.1, eps=-1.0)
    with pytest.raises(ValueError, match="max_norm"):
        T.clip_by_global_norm(-1.0)
    with pytest.raises(ValueError, match="max_delta"):
        T.clip(-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        T.adamw(0.1, weight_decay=-1.0)
    with pytest.raises(TypeError, match="lr"):
        T.adam("fast")
    with pytest.raises(ValueError, match="params"):
        T.adamw(0.1).update(np.ones(1), T.adamw(0.1).init(np.zeros(1)))
    with pytest.raises(ValueError, match="params"):
        T.ema(0.5).update(np.ones(1), T.ema(0.5).init(np.zeros(1)))
    with pytest.raises(TypeError, match="chain"):
        T.chain(T.sgd(0.1), "adam")
    c = T.chain(T.sgd(0.1), T.sgd(0.1))
    with pytest.raises(ValueError, match="chain"):
        c.update(np.ones(1), (T.EmptyState(),))
    with pytest.raises(TypeError):
        T.scale_by_schedule(0.1)


# ------------------------------------------------------------------------------------ schedules


def test_schedules_values():
    assert S.constant_schedule(0.3)(1000) == 0.3
    inv = S.inverse_sqrt_schedule(2.0)  # OPT-11
    assert (inv(1), inv(4), inv(100)) == pytest.approx((2.0, 1.0, 0.2))
    it = S.inverse_time_schedule(1.0, k0=20)  # OPT-14
    assert it(20) == pytest.approx(0.5)
    assert 10**6 * it(10**6) == pytest.approx(20, rel=1e-4)
    ist = S.inverse_sqrt_time_schedule(3.0, k0=5)  # OPT-15
    assert (ist(5), ist(20)) == pytest.approx((1.5, 1.0))
    sd = S.step_decay_schedule(2.0, 0.1, [10, 20])  # OPT-12
    assert (sd(9), sd(10), sd(25)) == pytest.approx((2.0, 0.2, 0.02))
    cos = S.cosine_decay_schedule(2.0, 100, alpha=0.25)  # OPT-13
    assert (cos(0), cos(50), cos(100)) == pytest.approx((2.0, 2.0 * (0.75 * 0.5 + 0.25), 0.5))
    assert S.cosine_decay_schedule(1.0, 100)(50) == pytest.approx(0.5)
    poly = S.polynomial_schedule(1.0, 0.1, power=2, transition_steps=10, transition_begin=5)
    assert (poly(0), poly(5), poly(10), poly(15), poly(99)) == pytest.approx(
        (1.0, 1.0, 0.9 * 0.25 + 0.1, 0.1, 0.1))
    lin = S.linear_schedule(1.0, 0.0, 4)  # OPT-17 shape: linear decay to 0
    assert [lin(t) for t in range(6)] == pytest.approx([1, 0.75, 0.5, 0.25, 0, 0])
    ex = S.exponential_decay(1.0, 0.5, transition_steps=10)
    assert (ex(10), ex(15)) == pytest.approx((0.5, 0.5 ** 1.5))
    exs = S.exponential_decay(1.0, 0.5, transition_steps=10, staircase=True, end_value=0.2)
    assert (exs(15), exs(25), exs(100)) == pytest.approx((0.5, 0.25, 0.2))
    pc = S.piecewise_constant_schedule(1.0, {3: 0.5, 6: 0.1})
    assert [pc(t) for t in (2, 3, 5, 6)] == pytest.approx([1.0, 0.5, 0.5, 0.05])
    wu = S.linear_warmup(0.4, 4, init_value=0.0)
    assert [wu(t) for t in (0, 1, 4, 9)] == pytest.approx([0.0, 0.1, 0.4, 0.4])
    wc = S.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=110,
                                        end_value=0.1)
    assert [wc(t) for t in (0, 5, 10, 60, 110, 200)] == pytest.approx(
        [0.0, 0.5, 1.0, 0.1 + 0.9 * 0.5, 0.1, 0.1])
    assert isinstance(wc(np.int64(7)), float)


def test_schedules_bad_input():
    with pytest.raises(ValueError, match="constant_schedule"):
        S.constant_schedule(-1.0)
    with pytest.raises(ValueError, match="decay_steps"):
        S.cosine_decay_schedule(1.0, 0)
    with pytest.raises(ValueError, match="k0"):
        S.inverse_time_schedule(1.0, k0=0)
    with pytest.raises(ValueError, match="boundaries"):
        S.step_decay_schedule(1.0, 0.1, [20, 10])
    with pytest.raises(ValueError, match="warmup_steps"):
        S.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=5)
    with pytest.raises(ValueError, match="step count"):
        S.inverse_sqrt_schedule(1.0)(-1)
