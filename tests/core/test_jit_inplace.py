"""jit's reuse of dying buffers (NumPy's temporary elision, decided at compile time): results
must equal eager evaluation, and no live value, input or view of an input may be overwritten."""

from __future__ import annotations

import numpy as np

import diffprog
import diffprog.numpy as dnp
from diffprog.nn import attention, attention_weights, causal_mask, gelu_tanh, layer_norm

RNG = np.random.default_rng(0)


def _inplace_prims(jitted, *args):
    """Names of the primitives the compiled program runs with ``out=`` a dying input."""
    from diffprog.core.jit import compile_program

    prog = jitted._entry_for(args, {}).program
    return sorted(prog.eqns[k].prim.name for k in compile_program(prog).inplace)


def test_ufunc_chain_reuses_its_temporaries_and_matches_eager():
    x = RNG.normal(size=(200, 100))                    # 160 KB, above the 64 KiB threshold
    f = lambda x: dnp.sin(x * 2.0) + 1.0               # noqa: E731
    j = diffprog.jit(f)
    np.testing.assert_array_equal(j(x), f(x))
    assert _inplace_prims(j, x) == ["add", "sin"]


def test_inputs_and_live_values_are_never_overwritten():
    x = RNG.normal(size=(200, 100))
    x0 = x.copy()
    j = diffprog.jit(lambda x: (dnp.reshape(x, (100, 200)) + 1.0, x * 2.0))
    a, b = j(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(a, x0.reshape(100, 200) + 1.0)

    def live(x):
        y = x * 2.0                                    # returned, so it stays live
        return dnp.exp(y), y

    jl = diffprog.jit(live)
    e, y = jl(x)
    np.testing.assert_array_equal(y, x0 * 2.0)
    np.testing.assert_array_equal(e, np.exp(x0 * 2.0))
    assert _inplace_prims(jl, x) == []


def test_products_of_stacks_are_reused_unless_returned():
    a, w = RNG.normal(size=(8, 50, 40)), RNG.normal(size=(40, 30))
    f = lambda a, w: dnp.tanh(a @ w + 1.0)             # noqa: E731
    j = diffprog.jit(f)
    np.testing.assert_allclose(j(a, w), np.tanh(a @ w + 1.0), rtol=1e-14)
    assert _inplace_prims(j, a, w) == ["add", "tanh"]
    both = diffprog.jit(lambda a, w: (a @ w, a @ w + 1.0))
    p, q = both(a, w)
    np.testing.assert_allclose(p, a @ w, rtol=1e-14)
    np.testing.assert_allclose(q, a @ w + 1.0, rtol=1e-14)


def test_fused_derivatives_write_into_the_dying_cotangent():
    """In a jitted gradient the GELU and softargmax derivative kernels overwrite the cotangent
    they are given (a fresh product that nothing else reads) and still agree with eager."""
    x = RNG.normal(size=(8, 32, 32))                   # scores and hidden units ≥ 64 KiB
    w1, w2 = RNG.normal(size=(32, 64)) / 6, RNG.normal(size=(64, 32)) / 8

    gamma, beta = RNG.normal(size=32), RNG.normal(size=32)

    def loss(w1, w2):
        h = attention(x @ w1 @ w2, x, x @ w1 @ w2, mask=causal_mask(32))
        h = layer_norm(gelu_tanh(h @ w1) @ w2, gamma, beta)
        return dnp.sum(dnp.sin(h @ w1))

    grad = diffprog.grad(loss, argnums=(0, 1))
    jitted = diffprog.jit(grad)
    for got, want in zip(jitted(w1, w2), grad(w1, w2), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    names = _inplace_prims(jitted, w1, w2)
    for name in ("gelu_tanh_grad", "softargmax_grad", "masked_softargmax", "layer_norm_grad"):
        assert name in names


def test_in_place_masked_softargmax_recomputes_spread_rows_from_the_original_scores():
    """Rows whose scores span more than exp's range are recomputed from the scores, which the
    in-place kernel must read before it overwrites them."""
    q = RNG.normal(size=(4, 64, 16)) * 30
    mask = causal_mask(64)
    f = lambda q: attention_weights(q, q, mask=mask, scale=1.0)   # noqa: E731
    j = diffprog.jit(f)
    assert "masked_softargmax" in _inplace_prims(j, q)
    s = np.einsum("bik,bjk->bij", q, q)
    s = np.where(mask, s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(j(q), e / e.sum(-1, keepdims=True), rtol=1e-10, atol=1e-300)
