"""Optimizer updates inside ``jit``: a whole training step (gradient, update, apply) compiles,
follows the eager iterates exactly and keeps float32 parameters float32 (book §16.1–16.2).
Schedules are evaluated on the concrete step count at every call of the compiled program."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog import optim
from diffprog.optim.schedules import (
    cosine_decay_schedule,
    piecewise_constant_schedule,
    schedule_value,
    warmup_cosine_decay_schedule,
)

SCHED = warmup_cosine_decay_schedule(0.0, 0.1, 3, 20)

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.05),
    "sgd_momentum": lambda: optim.sgd(0.05, momentum=0.9, nesterov=True),
    "momentum": lambda: optim.momentum(0.05),
    "nesterov": lambda: optim.nesterov(0.05),
    "sign_descent": lambda: optim.sign_descent(0.01),
    "adagrad": lambda: optim.adagrad(0.1),
    "rmsprop": lambda: optim.rmsprop(0.01),
    "adam": lambda: optim.adam(0.05),
    "adam_schedule": lambda: optim.adam(SCHED),
    "adamw": lambda: optim.adamw(0.05, weight_decay=0.1),
    "clip_adam": lambda: optim.chain(optim.clip_by_global_norm(0.5), optim.adam(SCHED)),
    "clip_sgd": lambda: optim.chain(optim.clip(0.1), optim.sgd(piecewise_constant_schedule(
        0.1, {4: 0.5}))),
    "scale_by_schedule": lambda: optim.chain(optim.scale_by_schedule(SCHED), optim.scale(-1.0)),
    "polyak": lambda: optim.chain(optim.sgd(0.05), optim.polyak_averaging()),
    "ema": lambda: optim.chain(optim.sgd(0.05), optim.ema(0.9)),
}


def _problem(dtype):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 3)).astype(dtype)
    b = rng.normal(size=8).astype(dtype)
    params = {"w": np.zeros(3, dtype), "c": np.zeros((), dtype)}
    return (lambda p: dnp.mean((A @ p["w"] + p["c"] - b) ** 2)), params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jitted_training_step_follows_the_eager_one(name, dtype):
    loss, p0 = _problem(dtype)
    opt = OPTIMIZERS[name]()

    def step(p, s):
        value, g = diffprog.value_and_grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return optim.apply_updates(p, updates), s, value

    fast = diffprog.jit(step)
    pe, se = p0, opt.init(p0)
    pj, sj = p0, opt.init(p0)
    for _ in range(8):
        pe, se, le = step(pe, se)
        pj, sj, lj = fast(pj, sj)
        tol = 1e-12 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(lj, le, rtol=tol, atol=tol)
    for k in pe:
        np.testing.assert_allclose(pj[k], pe[k], rtol=tol, atol=tol)
        assert np.asarray(pj[k]).dtype == dtype
    assert fast.trace_count == 1                # the returned state has the same signature
    assert loss(pj) < loss(p0)


def test_schedule_value_runs_the_schedule_at_every_call():
    s = cosine_decay_schedule(2.0, decay_steps=10)
    f = diffprog.jit(lambda c: schedule_value(s, c))
    for k in (0, 3, 10, 12):
        assert float(f(np.asarray(k))) == pytest.approx(s(k), abs=1e-15)
    assert f.trace_count == 1
    batched = diffprog.vmap(lambda c: schedule_value(s, c))(np.arange(4))
    np.testing.assert_allclose(batched, [s(k) for k in range(4)])


def test_a_schedule_that_goes_negative_is_reported_when_it_runs():
    f = diffprog.jit(lambda c: schedule_value(lambda t: 1.0 - t, c))
    assert float(f(np.asarray(0))) == 1.0
    with pytest.raises(ValueError, match="schedule_value: the schedule returned"):
        f(np.asarray(5))
    with pytest.raises(TypeError, match="schedule_value: 'schedule' must be callable"):
        schedule_value(0.1, 3)
