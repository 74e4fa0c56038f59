"""Recurrent networks (book §4.7): NET-36 … NET-41."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn.recurrent import (
    RNNCell,
    RNNDecoder,
    RNNEncoder,
    RNNEncoderDecoder,
    RNNSeq2Seq,
    rnn_scan,
    sequence_pool,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _elman(cell, s, x):
    """The Elman step by hand: tanh(x W_x + s W_s + b) with W = [W_x; W_s]."""
    W, b = cell.mlp.layers[0].W, cell.mlp.layers[0].b
    D = cell.input_size
    return np.tanh(x @ W[:D] + s @ W[D:] + b)


# ---------------------------------------------------------------- NET-36 scan vs Python loop
def test_net36_scan_equals_python_loop_outputs_and_gradients():
    cell = RNNCell.init(0, 3, 4)
    g = _rng(1)
    xs, s0 = g.standard_normal((6, 3)), g.standard_normal(4)

    def loop(cell, s0, xs):
        s, states = s0, []
        for x in xs:
            s = cell(s, x)
            states.append(s)
        return s, dnp.stack(states)

    sL, states = rnn_scan(cell, s0, xs)
    sL2, states2 = loop(cell, s0, xs)
    np.testing.assert_allclose(sL, sL2, rtol=1e-14)
    np.testing.assert_allclose(states, states2, rtol=1e-14)
    s, hand = s0, []
    for x in xs:
        s = _elman(cell, s, x)
        hand.append(s)
    np.testing.assert_allclose(states, np.stack(hand), rtol=1e-13)

    T = g.standard_normal((6, 4))
    g_scan = diffprog.grad(lambda c, s0: dnp.sum(rnn_scan(c, s0, xs)[1] * T),
                           argnums=(0, 1))(cell, s0)
    g_loop = diffprog.grad(lambda c, s0: dnp.sum(loop(c, s0, xs)[1] * T),
                           argnums=(0, 1))(cell, s0)
    for a, b in zip(diffprog.tree_leaves(g_scan), diffprog.tree_leaves(g_loop), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # the shared-weight gradient is the sum of the per-step contributions: give each step its own
    # copy of the weights, differentiate, and add the copies' gradients
    def untied(Ws, s0):
        s, out = s0, 0.0
        for l, x in enumerate(xs):
            s = dnp.tanh(dnp.concatenate([x, s]) @ Ws[l] + cell.mlp.layers[0].b)
            out = out + dnp.sum(s * T[l])
        return out

    W = cell.mlp.layers[0].W
    per_step = diffprog.grad(untied)([W] * 6, s0)
    np.testing.assert_allclose(sum(per_step), g_scan[0].mlp.layers[0].W, rtol=1e-12)
    check_grads(lambda c, s0, xs: rnn_scan(c, s0, xs)[1], (cell, s0, xs[:3]), order=2)


def test_net36_rnn_scan_batched_and_under_jit():
    cell = RNNCell.init(2, 3, 4, hidden_sizes=(5,))
    xs = _rng(3).standard_normal((2, 5, 3))
    sL, states = rnn_scan(cell, np.zeros(4), xs)
    assert states.shape == (2, 5, 4)
    for i in range(2):
        np.testing.assert_allclose(states[i], rnn_scan(cell, np.zeros(4), xs[i])[1], rtol=1e-14)
    f = diffprog.jit(lambda c, xs: rnn_scan(c, np.zeros(4), xs)[1])
    np.testing.assert_allclose(f(cell, xs), states, rtol=1e-13)
    with pytest.raises(ValueError, match="rnn_scan: argument 'xs'"):
        rnn_scan(cell, np.zeros(4), np.ones((0, 3)))
    with pytest.raises(ValueError, match="RNNCell: input 'x' must have last dimension 3"):
        rnn_scan(cell, np.zeros(4), np.ones((5, 2)))


# ---------------------------------------------------------------- NET-37 vector to sequence
def test_net37_decoder_shape_z0_gradient_and_causality():
    dec = RNNDecoder.init(0, 3, 5, 2)
    dec = dec.replace(z0=_rng(4).standard_normal(5))
    x = _rng(5).standard_normal(3)
    P = dec(x, 4)
    assert P.shape == (4, 2)
    # book recursion by hand: z_l = g(x, z_{l−1}), p_l = h(z_l)
    z, hand = dec.z0, []
    for _ in range(4):
        z = _elman(dec.cell, z, x)
        hand.append(z @ dec.readout.layers[0].W + dec.readout.layers[0].b)
    np.testing.assert_allclose(P, np.stack(hand), rtol=1e-13)
    np.testing.assert_allclose(dec(x, 8)[:4], P, rtol=1e-14)  # doubling L keeps the prefix
    gz0 = diffprog.grad(lambda d: dnp.sum(d(x, 4) ** 2))(dec).z0
    assert np.linalg.norm(gz0) > 1e-3
    check_grads(lambda z0: dec.replace(z0=z0)(x, 4), (dec.z0,), order=2)
    check_grads(lambda d, x: d(x, 3), (dec, x), order=1)
    with pytest.raises(ValueError, match="RNNDecoder: argument 'length'"):
        dec(x, 0)
    with pytest.raises(ValueError, match="RNNDecoder: input 'x' must have last dimension 3"):
        dec(np.ones(4), 3)
    with pytest.raises(ValueError, match="RNNDecoder: argument 'p0' needs"):
        dec(x, 3, p0=np.zeros(2))


def test_net37_decoder_batched_jit_and_float32():
    dec = RNNDecoder.init(1, 3, 5, 2)
    X = _rng(6).standard_normal((4, 3))
    P = dec(X, 5)
    assert P.shape == (4, 5, 2)
    np.testing.assert_allclose(P[2], dec(X[2], 5), rtol=1e-14)
    f = diffprog.jit(lambda d, x: d(x, 5))
    np.testing.assert_allclose(f(dec, X), P, rtol=1e-13)
    d32 = RNNDecoder.init(1, 3, 5, 2, dtype=np.float32)
    x32 = X[0].astype(np.float32)
    assert d32(x32, 3).dtype == np.float32
    g = diffprog.grad(lambda d: dnp.sum(d(x32, 3) ** 2))(d32)
    assert g.z0.dtype == np.float32 and g.cell.mlp.layers[0].W.dtype == np.float32


# ---------------------------------------------------------------- NET-38 sequence to vector
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_net38_encoder_pooling_matches_states(pooling):
    enc = RNNEncoder.init(0, 3, 4, pooling=pooling)
    enc = enc.replace(s0=_rng(7).standard_normal(4))
    xs = _rng(8).standard_normal((6, 3))
    sL, states = rnn_scan(enc.cell, enc.s0, xs)
    expected = {"last": sL, "mean": np.mean(states, 0), "max": np.max(states, 0)}[pooling]
    np.testing.assert_allclose(enc(xs), expected, rtol=1e-14)
    for L in (1, 2, 9):  # variable length, same parameters
        assert enc(_rng(L).standard_normal((L, 3))).shape == (4,)
    check_grads(lambda e, xs: e(xs), (enc, xs[:4]), order=1)


def test_net38_encoder_vmap_and_errors():
    enc = RNNEncoder.init(1, 3, 4, pooling="mean")
    X = _rng(9).standard_normal((3, 5, 3))
    np.testing.assert_allclose(diffprog.vmap(enc)(X), np.stack([enc(x) for x in X]), rtol=1e-13)
    np.testing.assert_allclose(enc(X), np.stack([enc(x) for x in X]), rtol=1e-13)
    with pytest.raises(ValueError, match="RNNEncoder.init: argument 'pooling'"):
        RNNEncoder.init(0, 3, 4, pooling="sum")
    with pytest.raises(ValueError, match="RNNEncoder: input 'xs' must have last dimension 3"):
        enc(np.ones((5, 2)))
    with pytest.raises(ValueError, match="RNNEncoder: argument 'xs' must be a non-empty"):
        enc(np.ones((0, 3)))


# ---------------------------------------------------------------- NET-39 sequence pooling
def test_net39_sequence_pool_values_and_vjps():
    S = np.array([[1.0, 6.0], [5.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(sequence_pool(S, "last"), [3.0, 4.0])
    np.testing.assert_array_equal(sequence_pool(S, "mean"), [3.0, 4.0])
    np.testing.assert_array_equal(sequence_pool(S, "max"), [5.0, 6.0])
    g = np.array([10.0, 20.0])
    (gm,) = diffprog.vjp(lambda S: sequence_pool(S, "mean"), S)[1](g)
    np.testing.assert_allclose(gm, np.tile(g / 3, (3, 1)), rtol=1e-15)
    (gx,) = diffprog.vjp(lambda S: sequence_pool(S, "max"), S)[1](g)
    np.testing.assert_array_equal(gx, [[0.0, 20.0], [10.0, 0.0], [0.0, 0.0]])
    (gl,) = diffprog.vjp(lambda S: sequence_pool(S, "last"), S)[1](g)
    np.testing.assert_array_equal(gl, [[0.0, 0.0], [0.0, 0.0], [10.0, 20.0]])
    with pytest.raises(ValueError, match="sequence_pool: argument 'kind'"):
        sequence_pool(S, "median")
    with pytest.raises(ValueError, match="sequence_pool: argument 'S' must have a non-empty"):
        sequence_pool(np.ones((0, 2)), "mean")


# ---------------------------------------------------------------- NET-40 aligned seq2seq
def test_net40_aligned_seq2seq_length_and_causal_jacobian():
    net = RNNSeq2Seq.init(0, 2, 4, 3)
    xs = _rng(10).standard_normal((5, 2))
    P = net(xs)
    assert P.shape == (5, 3)
    J = diffprog.jacobian(net)(xs)  # (L, M, L, D)
    for l in range(5):
        for lp in range(5):
            block = np.abs(J[l, :, lp, :]).max()
            assert (block == 0.0) if lp > l else (block > 0.0)
    states = rnn_scan(net.cell, net.s0, xs)[1]
    np.testing.assert_allclose(P, net.readout(states), rtol=1e-14)
    check_grads(lambda n, xs: n(xs), (net, xs[:3]), order=1)
    deep = RNNSeq2Seq.init(1, 2, 4, 3, readout_sizes=(5,))
    assert deep(xs).shape == (5, 3) and len(deep.readout.layers) == 2
    with pytest.raises(ValueError, match="RNNSeq2Seq: input 'xs'"):
        net(np.ones((5, 3)))


# ---------------------------------------------------------------- NET-41 encoder-decoder
def _hand_encoder_decoder(net, xs, max_len, feedback):
    enc, dec = net.encoder, net.decoder
    s = enc.s0
    for x in xs:
        s = _elman(enc.cell, s, x)
    c, z, p, out = s, dec.z0, np.zeros(dec.output_size), []
    for _ in range(max_len):
        inp = np.concatenate([c, p]) if feedback else c
        z = _elman(dec.cell, z, inp)
        p = z @ dec.readout.layers[0].W + dec.readout.layers[0].b
        out.append(p)
    return np.stack(out)


@pytest.mark.parametrize("feedback", [True, False])
def test_net41_encoder_decoder_matches_book_recursion(feedback):
    net = RNNEncoderDecoder.init(0, 3, 4, 5, feedback=feedback)
    xs = _rng(11).standard_normal((7, 3))
    P = net(xs, max_len=3)  # L' = 3 ≠ L = 7
    np.testing.assert_allclose(P, _hand_encoder_decoder(net, xs, 3, feedback), rtol=1e-12)
    if not feedback:  # without feedback it is the vector-to-sequence decoder applied to c
        np.testing.assert_allclose(P, net.decoder(net.encoder(xs), 3), rtol=1e-14)
    check_grads(lambda n, xs: n(xs, 2), (net, xs[:3]), order=1)


def test_net41_generation_stops_at_first_eos_or_max_len():
    net = RNNEncoderDecoder.init(1, 3, 4, 5)
    xs = _rng(12).standard_normal((6, 3))
    full = net(xs, max_len=12)
    tokens = np.argmax(full, -1)
    eos = int(tokens[3])
    first = int(np.argmax(tokens == eos))
    out = net(xs, max_len=12, eos_id=eos)
    assert out.shape == (first + 1, 5)
    np.testing.assert_allclose(out, full[:first + 1], rtol=1e-14)
    # a readout that always predicts token 2 stops after one step
    W = net.decoder.readout.layers[0]
    forced = net.replace(decoder=net.decoder.replace(readout=net.decoder.readout.replace(
        layers=(W.replace(W=np.zeros_like(W.W), b=np.eye(5)[2]),))))
    assert forced(xs, max_len=9, eos_id=2).shape == (1, 5)
    assert forced(xs, max_len=9, eos_id=4).shape == (9, 5)  # no EOS: max_len guards
    # p_0 convention: zeros by default, or a given vector (e.g. a one-hot BOS)
    bos = np.eye(5)[0]
    np.testing.assert_allclose(net(xs, 2, p0=np.zeros(5)), full[:2], rtol=1e-14)
    assert not np.allclose(net(xs, 2, p0=bos), full[:2])
    g = diffprog.grad(lambda n: dnp.sum(n(xs, 12, eos_id=eos) ** 2))(net)
    assert isinstance(g, RNNEncoderDecoder)
    with pytest.raises(ValueError, match="RNNDecoder: argument 'eos_id'"):
        net(xs, 3, eos_id=5)
    with pytest.raises(ValueError, match="RNNDecoder: stopping at 'eos_id' needs"):
        net(np.stack([xs, xs]), 3, eos_id=1)
    with pytest.raises(ValueError, match="RNNDecoder: stopping at 'eos_id' needs"):
        diffprog.jit(lambda n, xs: n(xs, 3, eos_id=1))(net, xs)
