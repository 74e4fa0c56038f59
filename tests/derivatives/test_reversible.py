"""Reversible layers (spec AD-45…AD-47; Book §8.6)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives.reversible import (
    AdditiveCoupling,
    ReversibleChain,
    reversible_vjp,
    vjp_via_inverse_jvp,
)


def make_chain(K, half, seed=0, scale=0.5):
    r = np.random.default_rng(seed)
    layers = []
    for _ in range(K):
        Wf, bf = scale * r.normal(size=(half, half)) / np.sqrt(half), r.normal(size=half)
        Wg, bg = scale * r.normal(size=(half, half)) / np.sqrt(half), r.normal(size=half)
        F = lambda x, W=Wf, b=bf: dnp.tanh(W @ x + b)
        G = lambda x, W=Wg, b=bg: dnp.sin(W @ x) + b * 0.1
        layers.append(AdditiveCoupling(F, G))
    return ReversibleChain(layers)


def test_coupling_inverse_of_forward():
    """AD-46: inverse(forward(x)) == x to 1e-12 (and forward(inverse(y)) == y)."""
    chain = make_chain(5, 4, seed=1)
    x = np.random.default_rng(2).normal(size=8)
    for layer in chain.layers:
        np.testing.assert_allclose(layer.inverse(layer.forward(x)), x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(layer.forward(layer.inverse(x)), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chain.inverse(chain(x)), x, rtol=0, atol=1e-12)
    # the formula: y1 = x1 + F(x2), y2 = x2 + G(y1)
    L = chain.layers[0]
    y = L.forward(x)
    np.testing.assert_allclose(y[:4], x[:4] + L.F(x[4:]), atol=1e-15)
    np.testing.assert_allclose(y[4:], x[4:] + L.G(y[:4]), atol=1e-15)


def test_coupling_uneven_split_and_batch():
    L = AdditiveCoupling(lambda x2: dnp.tanh(x2[..., :2]), lambda y1: dnp.concatenate(
        [y1, y1], axis=-1)[..., :3], split=2)
    x = np.random.default_rng(3).normal(size=(6, 5))  # batch of 6 states of size 5
    np.testing.assert_allclose(L.inverse(L.forward(x)), x, atol=1e-12)


def test_reversible_vjp_50_layers_equals_reverse_mode():
    """AD-45: K=50 couplings, gradient == standard reverse mode to 1e-8 (float64), 1 state kept."""
    chain = make_chain(50, 8, seed=4)
    r = np.random.default_rng(5)
    s0 = r.normal(size=16)
    target = r.normal(size=16)
    loss = lambda s: 0.5 * dnp.sum((chain(s) - target) ** 2)
    g_std = diffprog.grad(loss)(s0)
    stats = {}
    sK, r0 = reversible_vjp(chain, s0, chain(s0) - target, check_inverse=True, stats=stats)
    np.testing.assert_allclose(r0, g_std, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sK, chain(s0), rtol=0, atol=1e-12)
    assert stats["max_stored_states"] == 1 and stats["num_layers"] == 50
    assert stats["inverse_error"] < 1e-10
    # plain list of layers accepted too
    np.testing.assert_allclose(reversible_vjp(chain.layers, s0, np.ones(16))[1],
                               diffprog.vjp(chain, s0)[1](np.ones(16))[0], atol=1e-8)


def _peak(fn):
    with diffprog.profile() as p:
        fn()
    return p.peak_bytes


@pytest.mark.parametrize("K", [10, 50])
def test_reversible_vjp_memory_independent_of_depth(K):
    """Measured (tracemalloc): reverse mode stores all K activations, Alg 8.8 about one.

    A wide state (2×3000 float64 = 48 kB per activation) makes activations dominate memory.
    """
    half = 3000
    # diagonal couplings: cheap, and every intermediate is one state-sized vector
    r = np.random.default_rng(K)
    def coupling():
        a, b = r.normal(size=half), r.normal(size=half)
        return AdditiveCoupling(lambda x: dnp.tanh(a * x), lambda x: dnp.sin(b * x))

    layers = [coupling() for _ in range(K)]
    chain = ReversibleChain(layers)
    s0, u = r.normal(size=2 * half), r.normal(size=2 * half)
    act = s0.nbytes
    peak_rev = _peak(lambda: reversible_vjp(chain, s0, u))
    peak_std = _peak(lambda: diffprog.vjp(chain, s0)[1](u))
    assert peak_std >= K * act  # store-all keeps (at least) every s_k
    assert peak_rev <= 20 * act  # a constant number of state-sized buffers, whatever K
    assert peak_rev * K / 10 <= peak_std  # gap grows with K


def test_check_inverse_detects_inexact_inverse():
    class Leaky:
        def forward(self, s):
            return 2.0 * s

        def inverse(self, s):
            return 0.5 * s + 1e-6  # wrong by 1e-6

    chain = ReversibleChain([Leaky(), Leaky()])
    with pytest.raises(ValueError, match="inverses are inexact"):
        reversible_vjp(chain, np.ones(3), np.ones(3), check_inverse=True, atol=1e-9)
    reversible_vjp(chain, np.ones(3), np.ones(3))  # unchecked: runs


def test_non_invertible_layers_rejected():
    with pytest.raises(TypeError, match="not invertible"):
        ReversibleChain([AdditiveCoupling(dnp.tanh, dnp.tanh), dnp.tanh])
    with pytest.raises(TypeError, match="layer 0"):
        reversible_vjp([lambda s: s], np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="at least one layer"):
        ReversibleChain([])
    with pytest.raises(ValueError, match="split"):
        AdditiveCoupling(dnp.tanh, dnp.tanh).forward(np.ones(1))
    with pytest.raises(ValueError, match="u has shape"):
        reversible_vjp(make_chain(2, 2), np.ones(4), np.ones(3))


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def test_vjp_via_inverse_jvp_orthonormal_chain():
    """AD-47: f_k(s) = Q_k s + b_k: vjp(f, s0)(u) == jvp(f_inv, s_K, u) to 1e-12."""
    n, K = 6, 10
    Qs = [_orthogonal(n, k) for k in range(K)]
    bs = [np.random.default_rng(100 + k).normal(size=n) for k in range(K)]

    def f(s):
        for Q, b in zip(Qs, bs, strict=True):
            s = Q @ s + b
        return s

    def f_inv(s):
        for Q, b in zip(reversed(Qs), reversed(bs), strict=True):
            s = Q.T @ (s - b)
        return s

    r = np.random.default_rng(7)
    s0, u = r.normal(size=n), r.normal(size=n)
    sK = f(s0)
    expected = diffprog.vjp(f, s0)[1](u)[0]
    np.testing.assert_allclose(vjp_via_inverse_jvp(f_inv, sK, u), expected, rtol=0, atol=1e-12)

    class OrthoLayer:
        def __init__(self, Q, b):
            self.Q, self.b = Q, b

        def forward(self, s):
            return self.Q @ s + self.b

        def inverse(self, s):
            return self.Q.T @ (s - self.b)

    chain = ReversibleChain([OrthoLayer(Q, b) for Q, b in zip(Qs, bs, strict=True)])
    np.testing.assert_allclose(vjp_via_inverse_jvp(chain, sK, u), expected, atol=1e-12)
    np.testing.assert_allclose(reversible_vjp(chain, s0, u)[1], expected, atol=1e-12)


def test_vjp_via_inverse_jvp_not_orthonormal_differs():
    """The identity needs orthonormal Jacobians: with a scaling it fails (documented)."""
    f_inv = lambda s: s / 2.0  # inverse of f(s) = 2 s
    u = np.ones(2)
    assert not np.allclose(vjp_via_inverse_jvp(f_inv, np.ones(2), u), 2.0 * u)
    with pytest.raises(TypeError, match="callable"):
        vjp_via_inverse_jvp(3.0, np.ones(2), u)
