"""The training loop ``fit`` (book §16.1–16.2) and ``diffprog.io`` save/load of pytrees."""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import NamedTuple

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog import io
from diffprog.nn.module import Module, static
from diffprog.optim import transforms as T
from diffprog.optim.training import History, fit

# ------------------------------------------------------------------------------------------ fit


def _regression(seed=0, n=40, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w_true = np.array([1.0, -2.0, 0.5])[:p]
    y = X @ w_true
    return X, y, w_true


def test_fit_full_batch_loss_decreases():
    X, y, w_true = _regression()
    loss = lambda params: dnp.mean((X @ params["w"] + params["b"] - y) ** 2)
    params0 = {"w": np.zeros(3), "b": np.array(0.0)}
    params, hist = fit(loss, params0, T.sgd(0.1, momentum=0.5), num_steps=200)
    assert isinstance(hist, History)
    assert hist.loss.shape == (200,) and hist.grad_norm.shape == (200,)
    assert hist.loss[-1] < 1e-3 * hist.loss[0]
    assert np.all(np.diff(hist.loss[:5]) < 0)
    np.testing.assert_allclose(params["w"], w_true, atol=1e-2)
    assert int(hist.opt_state.count) == 200
    # the loss recorded at step 0 is the loss at the initial params
    assert hist.loss[0] == pytest.approx(float(np.mean(y ** 2)))


def test_fit_minibatches_progress_callback_and_resume():
    X, y, _ = _regression(1)
    batches = [(X[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]
    loss = lambda w, b: dnp.mean((b[0] @ w - b[1]) ** 2)
    w, hist = fit(loss, np.zeros(3), T.adam(0.05), data=batches, num_steps=100, progress=True)
    assert len(hist.loss) == 100 and hist.loss[-1] < hist.loss[0]
    # an iterator is consumed and the loop stops when it runs out
    w2, h2 = fit(loss, np.zeros(3), T.adam(0.05), data=iter(batches), num_steps=100)
    assert len(h2.loss) == 4
    # resume from a saved state
    w3, h3 = fit(loss, w, T.adam(0.05), data=batches, num_steps=5, opt_state=hist.opt_state)
    assert int(h3.opt_state.count) == 105
    # callback can stop early
    seen = []
    _, h4 = fit(loss, np.zeros(3), T.sgd(0.01), data=batches, num_steps=50,
                callback=lambda step, p, v: seen.append(step) or step == 2)
    assert seen == [0, 1, 2] and len(h4.loss) == 3


def test_fit_bad_input():
    loss = lambda w: dnp.sum(w ** 2)
    with pytest.raises(ValueError, match="num_steps"):
        fit(loss, np.ones(2), T.sgd(0.1), num_steps=-1)
    with pytest.raises(TypeError, match="optimizer"):
        fit(loss, np.ones(2), "adam")
    with pytest.raises(ValueError, match="empty"):
        fit(lambda w, b: loss(w), np.ones(2), T.sgd(0.1), data=[])
    with np.errstate(over="ignore"), pytest.raises(FloatingPointError,
                                                   match="loss is inf at step 1"):
        fit(lambda w: dnp.sum(w ** 2), np.ones(2), T.sgd(1e200), num_steps=5)
    with np.errstate(divide="ignore"), pytest.raises(FloatingPointError, match="sgd"):
        fit(lambda w: dnp.sum(dnp.sqrt(w)), np.zeros(2), T.sgd(0.1), num_steps=5)
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="loss"):
        fit(lambda w: dnp.sum(dnp.log(w)), np.array([-1.0]), T.sgd(0.1), num_steps=2)
    _, h = fit(loss, np.ones(2), T.sgd(0.1), num_steps=0)
    assert h.loss.shape == (0,)


# ------------------------------------------------------------------------------------------- io


class Pair(NamedTuple):
    left: np.ndarray
    right: object


@dataclasses.dataclass
class Layer:
    W: np.ndarray
    b: np.ndarray
    name: str = "dense"


diffprog.register_dataclass(Layer, static_fields=("name",))


def _assert_tree_equal(a, b):
    la, da = diffprog.tree_flatten(a)
    lb, db = diffprog.tree_flatten(b)
    assert da == db, (da, db)
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def test_save_load_round_trip_params(tmp_path):
    tree = {
        "layers": [{"W": np.arange(6.0).reshape(2, 3), "b": np.zeros(2, dtype=np.float32)}],
        "scalars": (1.5, 3, True, 2 + 1j, None, "text", np.float32(2.5), np.int64(-4)),
        "pair": Pair(np.array([1, 2], dtype=np.int32), None),
        "by_step": {7: np.array(4.0), 10: np.array([1.0])},
        "empty": [],
        "layer": Layer(np.eye(2), np.ones(2), name="out"),
    }
    path = tmp_path / "params.npz"
    io.save(path, tree)
    back = io.load(path)
    _assert_tree_equal(back, tree)
    assert type(back["pair"]) is Pair and 7 in back["by_step"]
    assert type(back["layer"]) is Layer and back["layer"].name == "out"


def test_save_load_adam_state_and_resume_identically(tmp_path):
    opt = T.chain(T.clip_by_global_norm(10.0), T.adam(0.1))
    params = {"w": np.array([1.0, -1.0]), "b": np.array(0.5)}
    grad = lambda p: {"w": 2 * p["w"] - 1.0, "b": 3 * p["b"]}
    st = opt.init(params)
    for _ in range(3):
        u, st = opt.update(grad(params), st, params)
        params = T.apply_updates(params, u)
    io.save(tmp_path / "ckpt.npz", {"params": params, "opt_state": st})
    ck = io.load(tmp_path / "ckpt.npz")
    _assert_tree_equal(ck, {"params": params, "opt_state": st})
    assert isinstance(ck["opt_state"][1], T.ScaleByAdamState)
    p1, s1, p2, s2 = params, st, ck["params"], ck["opt_state"]
    for _ in range(3):
        u1, s1 = opt.update(grad(p1), s1, p1)
        p1 = T.apply_updates(p1, u1)
        u2, s2 = opt.update(grad(p2), s2, p2)
        p2 = T.apply_updates(p2, u2)
    _assert_tree_equal(p1, p2)


def test_unknown_namedtuple_comes_back_as_a_generic_namedtuple(tmp_path):
    Local = collections.namedtuple("Local", ["x", "y"])
    io.save(tmp_path / "t.npz", Local(np.ones(1), 2.0))
    back = io.load(tmp_path / "t.npz")
    assert back._fields == ("x", "y") and type(back).__name__ == "Local"
    assert back.y == 2.0


def test_interrupted_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "params.npz"
    io.save(path, {"w": np.arange(3.0)})
    before = path.read_bytes()

    real_savez = np.savez

    def broken_savez(file, *args, **kwds):
        file.write(b"PK\x03\x04 partial garbage")  # half-written archive
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="simulated"):
        io.save(path, {"w": np.arange(100.0)})
    monkeypatch.setattr(np, "savez", real_savez)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(io.load(path)["w"], np.arange(3.0))
    assert sorted(os.listdir(tmp_path)) == ["params.npz"]  # no temporary file left behind
    # interrupted by KeyboardInterrupt too
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        io.save(path, [1.0])
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["params.npz"]


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __treedef__=np.array('{"format": "diffprog-pytree-v1", "tree": {"t": "leaf"}}'),
             leaf_0=np.array([{"payload": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        io.load(path)
    other = tmp_path / "plain.npz"
    np.savez(other, a=np.ones(2))
    with pytest.raises(ValueError, match="__treedef__"):
        io.load(other)


def test_save_bad_input(tmp_path):
    with pytest.raises(TypeError, match="object"):
        io.save(tmp_path / "x.npz", [np.array([{}], dtype=object)])
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(TypeError, match="key"):
        io.save(tmp_path / "x.npz", {(1, 2): np.ones(1)})
    assert os.listdir(tmp_path) == []


def test_fit_progress_without_tqdm(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes `from tqdm.auto import` fail
    w, h = fit(lambda w: dnp.sum((w - 1.0) ** 2), np.zeros(2), T.sgd(0.1), num_steps=5,
               progress=True)
    assert len(h.loss) == 5 and np.all(np.diff(h.loss) < 0)


def test_save_uses_the_path_as_given_and_overwrites(tmp_path):
    path = tmp_path / "checkpoint.bin"
    io.save(path, [np.ones(2)])
    io.save(str(path), [np.zeros(3)])
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.bin"]
    np.testing.assert_array_equal(io.load(path)[0], np.zeros(3))


def test_fit_with_jit_matches_eager_fit():
    """``fit(..., jit=True)`` compiles value_and_grad and follows the same iterates."""
    import diffprog.numpy as dnp
    from diffprog.optim import adam, fit

    rng = np.random.default_rng(0)
    A, b = rng.normal(size=(8, 3)), rng.normal(size=8)
    batches = [(A[:4], b[:4]), (A[4:], b[4:])]
    loss = lambda w, batch: dnp.mean((batch[0] @ w - batch[1]) ** 2)
    w_eager, h_eager = fit(loss, np.zeros(3), adam(0.05), data=batches, num_steps=40)
    w_jit, h_jit = fit(loss, np.zeros(3), adam(0.05), data=batches, num_steps=40, jit=True)
    np.testing.assert_allclose(w_jit, w_eager, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_jit.loss, h_eager.loss, rtol=1e-12)
    assert h_jit.loss[-1] < 0.5 * h_jit.loss[0]


class _Act(Module):
    """A module whose configuration holds a function."""

    w: np.ndarray
    activation: object = static(default=dnp.tanh)


def test_save_load_module_with_a_function_in_its_configuration(tmp_path):
    """Static configuration such as an activation function is stored by name, never pickled."""
    path = tmp_path / "act.npz"
    io.save(path, _Act(np.arange(3.0)))
    back = io.load(path)
    assert back.activation is dnp.tanh
    np.testing.assert_array_equal(back.w, np.arange(3.0))
    with pytest.raises(TypeError, match="lambda or a local function"):
        io.save(tmp_path / "bad.npz", _Act(np.ones(2), activation=lambda x: x))


def test_fit_with_jit_full_batch_and_a_non_finite_loss():
    """``jit=True`` compiles gradient, update and norm as one program; a full-batch loss works,
    and a loss that becomes non-finite stops the loop with the step named."""
    from diffprog.optim import adam, fit, sgd

    w, h = fit(lambda w: dnp.sum((w - 3.0) ** 2), np.zeros(2), adam(0.3), num_steps=60, jit=True)
    w_e, h_e = fit(lambda w: dnp.sum((w - 3.0) ** 2), np.zeros(2), adam(0.3), num_steps=60)
    np.testing.assert_allclose(w, w_e, rtol=1e-12)
    np.testing.assert_allclose(h.grad_norm, h_e.grad_norm, rtol=1e-12)
    with pytest.raises(FloatingPointError, match="fit: the loss is inf at step"), \
            np.errstate(over="ignore"):
        fit(lambda w: dnp.sum(dnp.exp(w * w)), np.array([5.0]), sgd(10.0), num_steps=20,
            jit=True)
