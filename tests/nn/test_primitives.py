"""The fused primitives of diffprog.nn (GELU in both forms, masked softargmax), checked against
closed forms and brute force (book §4.8.1 attention, §4.8.4 GELU)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn import gelu, gelu_tanh
from diffprog.nn.primitives import masked_softargmax_p

K, A = np.sqrt(2 / np.pi), 0.044715


def _gelu_tanh_ref(u):
    return 0.5 * u * (1 + np.tanh(K * (u + A * u ** 3)))


def test_net49_exact_gelu_value_first_and_second_derivative_closed_forms():
    u = np.linspace(-6, 6, 49)
    np.testing.assert_allclose(gelu(u), u * norm.cdf(u), rtol=1e-14, atol=1e-300)
    d1 = diffprog.vmap(diffprog.grad(gelu))(u)
    np.testing.assert_allclose(d1, norm.cdf(u) + u * norm.pdf(u), rtol=1e-13, atol=1e-15)
    d2 = diffprog.vmap(diffprog.grad(diffprog.grad(gelu)))(u)
    np.testing.assert_allclose(d2, norm.pdf(u) * (2 - u ** 2), rtol=1e-12, atol=1e-15)
    assert diffprog.grad(gelu)(0.0) == 0.5                  # Φ(0), read at u = 0 exactly
    check_grads(gelu, (u + 0.01,), order=3)


def test_gelu_tanh_matches_its_formula_and_the_derivative_of_the_formula():
    u = np.linspace(-6, 6, 49) + 0.01
    np.testing.assert_allclose(gelu_tanh(u), _gelu_tanh_ref(u), rtol=1e-14, atol=1e-300)
    composed = lambda v: 0.5 * v * (1 + dnp.tanh(K * (v + A * v ** 3)))   # second method
    for order in (1, 2, 3):
        f, g = gelu_tanh, composed
        for _ in range(order):
            f, g = diffprog.grad(f), diffprog.grad(g)
        np.testing.assert_allclose(diffprog.vmap(f)(u), diffprog.vmap(g)(u), rtol=1e-9,
                                   atol=1e-12)
    check_grads(gelu_tanh, (u,), order=3)
    assert diffprog.grad(gelu_tanh)(0.0) == 0.5


@pytest.mark.parametrize("fn", [gelu, gelu_tanh])
def test_gelu_keeps_float32_and_works_under_jit_and_vmap(fn):
    u = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    assert fn(u).dtype == np.float32
    g = diffprog.grad(lambda v: dnp.sum(fn(v)))(u)
    assert g.dtype == np.float32
    jg = diffprog.jit(diffprog.grad(lambda v: dnp.sum(fn(v))))(u)
    np.testing.assert_allclose(jg, g, rtol=1e-6)
    np.testing.assert_allclose(diffprog.vmap(fn)(u), fn(u), rtol=1e-6)


def _brute_masked_softmax(x, mask):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        keep = np.broadcast_to(mask, x.shape)[idx]
        if keep.any():
            e = np.exp(x[idx][keep] - x[idx][keep].max())
            out[idx][keep] = e / e.sum()
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2 ** 31 - 1))
def test_net43_masked_softargmax_equals_brute_force(lq, lk, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, lq, lk)) * 3
    mask = rng.random((lq, lk)) < 0.6
    p = masked_softargmax_p.bind(x, mask)
    np.testing.assert_allclose(p, _brute_masked_softmax(x, mask), rtol=1e-12, atol=1e-15)
    assert np.all(p[:, ~mask] == 0.0)


def test_net43_masked_entries_and_fully_masked_rows_get_zero_gradient_without_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    mask = np.array([[True, False, True, False], [False] * 4, [True] * 4])
    w = rng.normal(size=(3, 4))
    g = diffprog.grad(lambda s: dnp.sum(masked_softargmax_p.bind(s, mask) * w))(x)
    assert np.isfinite(g).all()
    assert np.all(g[~mask] == 0.0)
    p = _brute_masked_softmax(x, mask)
    expected = p * (w - (p * w).sum(-1, keepdims=True))          # (diag p − ppᵀ) w per row
    np.testing.assert_allclose(g, expected, atol=1e-15)
    check_grads(lambda s: masked_softargmax_p.bind(s, mask), (x,), order=2)


def test_a_jitted_attention_uses_the_mask_it_is_given_each_call():
    """The mask is an operand, not a constant baked into the compiled program."""
    x = np.random.default_rng(1).normal(size=(3, 3))
    f = diffprog.jit(lambda s, m: masked_softargmax_p.bind(s, m))
    for mask in (np.tril(np.ones((3, 3), bool)), np.triu(np.ones((3, 3), bool))):
        np.testing.assert_allclose(f(x, mask), _brute_masked_softmax(x, mask), rtol=1e-12)


def test_masked_softargmax_batches_over_data_and_masks():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 2, 3))
    masks = rng.random((5, 2, 3)) < 0.7
    got = diffprog.vmap(lambda s, m: masked_softargmax_p.bind(s, m))(x, masks)
    for i in range(5):
        np.testing.assert_allclose(got[i], _brute_masked_softmax(x[i], masks[i]), rtol=1e-12)
    got_last = diffprog.vmap(lambda s: masked_softargmax_p.bind(s, masks[0]), in_axes=-1,
                             out_axes=-1)(np.moveaxis(x[:, None].repeat(2, 1), 0, -1)[0])
    assert got_last.shape == (2, 3, 5)
    for i in range(5):
        np.testing.assert_allclose(got_last[..., i], _brute_masked_softmax(x[i], masks[0]),
                                   rtol=1e-12)
    only_mask = diffprog.vmap(lambda m: masked_softargmax_p.bind(x[0], m))(masks)
    for i in range(5):
        np.testing.assert_allclose(only_mask[i], _brute_masked_softmax(x[0], masks[i]),
                                   rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.3])
def test_net32_fused_layer_norm_equals_the_composition_of_its_moments(eps):
    """The fused standardization (r recovered from mean(y·x)) against the plain composition
    (x − μ)/√(σ² + ε), in value, gradient and Hessian (a second method for every order)."""
    from diffprog.nn import layer_norm

    rng = np.random.default_rng(3)
    x, gamma, beta = rng.normal(size=(3, 6)), rng.normal(size=6), rng.normal(size=6)

    def composed(x):
        xc = x - dnp.mean(x, axis=-1, keepdims=True)
        return xc / dnp.sqrt(dnp.mean(xc * xc, axis=-1, keepdims=True) + eps) * gamma + beta

    f = lambda x: dnp.sum(dnp.sin(layer_norm(x, gamma, beta, eps)))
    g = lambda x: dnp.sum(dnp.sin(composed(x)))
    np.testing.assert_allclose(layer_norm(x, gamma, beta, eps), composed(x), atol=1e-14)
    np.testing.assert_allclose(diffprog.grad(f)(x), diffprog.grad(g)(x), atol=1e-13)
    np.testing.assert_allclose(diffprog.hessian(f)(x), diffprog.hessian(g)(x), atol=1e-12)
    check_grads(lambda x: layer_norm(x, gamma, beta, eps), (x,), order=2)


def test_layer_norm_over_other_axes_and_under_vmap():
    from diffprog.nn import layer_norm

    x = np.random.default_rng(4).normal(size=(4, 3, 5))
    mu, sd = x.mean(0, keepdims=True), np.sqrt(x.var(0, keepdims=True) + 1e-3)
    np.testing.assert_allclose(layer_norm(x, axis=0, eps=1e-3), (x - mu) / sd, atol=1e-14)
    mu2, sd2 = x.mean((1, 2), keepdims=True), np.sqrt(x.var((1, 2), keepdims=True) + 1e-3)
    np.testing.assert_allclose(layer_norm(x, axis=(1, 2), eps=1e-3), (x - mu2) / sd2,
                               atol=1e-14)
    v = diffprog.vmap(lambda r: layer_norm(r, eps=1e-3), in_axes=2, out_axes=2)(x)
    np.testing.assert_allclose(v, layer_norm(x, axis=1, eps=1e-3), atol=1e-14)


@pytest.mark.parametrize("fn", [gelu, gelu_tanh])
def test_gelu_jacobians_with_batched_tangents_are_diagonal(fn):
    """jacfwd pushes a batch of tangents through one unbatched u (the tangent is batched
    beyond u's shape); jacrev pulls a batch of cotangents."""
    u = np.linspace(-2, 2, 5) + 0.1
    d1 = diffprog.vmap(diffprog.grad(fn))(u)
    for jac in (diffprog.jacfwd, diffprog.jacrev):
        np.testing.assert_allclose(jac(fn)(u), np.diag(d1), atol=1e-15)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "layer_norm", "masked_attention"])
def test_linearize_then_transpose_gives_the_jacobian_and_its_transpose(name):
    """The JVP rules are linear programs that ``linear_transpose`` can transpose (book §8.4.4)."""
    from diffprog.nn import attention, layer_norm

    mask = np.tril(np.ones((5, 5), bool))
    f = {"gelu": gelu, "gelu_tanh": gelu_tanh,
         "layer_norm": lambda x: layer_norm(x, eps=1e-3),
         "masked_attention": lambda x: attention(x[:, None], x[:, None], x[:, None],
                                                 mask=mask)[:, 0]}[name]
    u = np.linspace(-2, 2, 5) + 0.1
    _, lin = diffprog.linearize(f, u)
    transposed = diffprog.linear_transpose(lin, u)
    J = diffprog.jacfwd(f)(u)
    v = np.random.default_rng(5).normal(size=5)
    np.testing.assert_allclose(lin(v), J @ v, atol=1e-13)
    np.testing.assert_allclose(transposed(v)[0], J.T @ v, atol=1e-13)


# ------------------------------------------------ large operands (the cache-blocked kernels)
def test_gelus_on_activations_larger_than_a_block_match_their_closed_forms():
    """Blocked evaluation (several blocks per array) against the formulas on the whole array."""
    rng = np.random.default_rng(4)
    u = rng.normal(size=(64, 48, 40)) * 3                         # 960 KiB: four blocks
    t = rng.normal(size=u.shape)
    np.testing.assert_allclose(gelu(u), u * norm.cdf(u), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(gelu_tanh(u), _gelu_tanh_ref(u), rtol=1e-13, atol=1e-15)
    _, vjp_exact = diffprog.vjp(gelu, u)
    np.testing.assert_allclose(vjp_exact(t)[0], t * (norm.cdf(u) + u * norm.pdf(u)),
                               rtol=1e-12, atol=1e-14)
    T = np.tanh(K * (u + A * u ** 3))
    d_tanh = 0.5 * (1 + T) + 0.5 * u * K * (1 + 3 * A * u ** 2) * (1 - T ** 2)
    _, vjp_tanh = diffprog.vjp(gelu_tanh, u)
    np.testing.assert_allclose(vjp_tanh(t)[0], t * d_tanh, rtol=1e-12, atol=1e-14)


def _gelu_tanh_derivative_f64(u):
    u = np.asarray(u, np.float64)
    T = np.tanh(K * (u + A * u ** 3))
    return 0.5 * (1 + T) + 0.5 * u * K * (1 + 3 * A * u ** 2) * (1 - T ** 2)


def test_gelu_tanh_float32_derivative_read_off_the_forward_result_is_accurate():
    """The derivative uses ``½(1 + T) = gelu(u)/u``: against the float64 closed form its
    absolute error stays below 4e-6 (the derivative lies in [−0.13, 1.13]; recomputing ``T``
    gives 1.3e-6), on a range that crosses the regions where ``T`` rounds to ±1."""
    u = np.linspace(-12, 12, 2 ** 20, dtype=np.float32)
    u = u[u != 0]
    _, vjp = diffprog.vjp(gelu_tanh, u)
    d = vjp(np.ones_like(u))[0]
    assert d.dtype == np.float32
    assert np.max(np.abs(d - _gelu_tanh_derivative_f64(u))) < 4e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_derivative_at_zero_and_subnormal_inputs_in_a_large_block(dtype):
    """``gelu(u)/u`` is ``0/0`` at ``u = 0`` and inexact where ``½ u`` is subnormal: a block
    holding such a value is recomputed with ``tanh`` (the derivative there is ``½``)."""
    rng = np.random.default_rng(8)
    u = rng.normal(size=(300, 400)).astype(dtype)                 # several blocks
    tiny = np.finfo(dtype).tiny
    u[7, 3], u[150, 9], u[299, 399] = 0.0, tiny / 8, -tiny * 3
    t = rng.normal(size=u.shape).astype(dtype)
    _, vjp = diffprog.vjp(gelu_tanh, u)
    got = vjp(t)[0]
    assert np.all(np.isfinite(got))
    for i, j in ((7, 3), (150, 9), (299, 399)):
        assert got[i, j] == dtype(0.5) * t[i, j]
    tol = 4e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, t * _gelu_tanh_derivative_f64(u), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, big", [(np.float16, 1e3), (np.float32, 1e20),
                                        (np.float64, 1e200)])
def test_gelu_tanh_and_its_derivative_at_inputs_whose_square_overflows(dtype, big):
    """``u²`` overflows, yet ``gelu(u) = u`` or ``0`` and ``gelu'(u) = 1`` or ``0`` (limits of
    the closed form), with no warning; the block's other entries keep their values."""
    u = np.array([big, -big, 40.0, -40.0, 3.0, 0.0], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = gelu_tanh(u)
        _, vjp = diffprog.vjp(gelu_tanh, u)
        d = vjp(np.ones_like(u))[0]
    np.testing.assert_array_equal(y[:4], np.array([big, 0.0, 40.0, 0.0], dtype))
    np.testing.assert_array_equal(d[:4], np.array([1.0, 0.0, 1.0, 0.0], dtype))
    tol = {np.float16: 2e-3, np.float32: 4e-6, np.float64: 1e-13}[dtype]
    np.testing.assert_allclose(d[4:], _gelu_tanh_derivative_f64(u[4:]), rtol=tol, atol=tol)


@pytest.mark.parametrize("fn", [gelu, gelu_tanh])
def test_gelus_accept_integer_and_boolean_input(fn):
    np.testing.assert_allclose(fn(np.array([-2, 0, 3])), fn(np.array([-2.0, 0.0, 3.0])))
    np.testing.assert_allclose(fn(np.array([True, False])), fn(np.array([1.0, 0.0])))


def test_masked_softargmax_on_scores_larger_than_a_block_equals_brute_force():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 8, 64, 64)).astype(np.float32) * 4    # 6 MiB of float32 scores
    mask = np.tril(np.ones((64, 64), bool))
    p = masked_softargmax_p.bind(x, mask)
    assert p.dtype == np.float32
    ref = _brute_masked_softmax(x.astype(np.float64), mask)
    np.testing.assert_allclose(p, ref, rtol=2e-6, atol=1e-7)
    assert np.all(p[..., ~mask] == 0.0)
    g = rng.normal(size=x.shape).astype(np.float32)                # the fused VJP, blocked
    _, pull = diffprog.vjp(lambda s: masked_softargmax_p.bind(s, mask), x)
    expected = ref * (g - (ref * g).sum(-1, keepdims=True))         # (diag p − ppᵀ) g per row
    np.testing.assert_allclose(pull(g)[0], expected, rtol=1e-4, atol=2e-6)


def test_masked_softargmax_rows_spread_beyond_the_exponent_range_and_non_finite_scores():
    """Rows whose scores span more than exp's range are recomputed with the row maximum;
    +inf or NaN at a blocked entry does not leak; a kept NaN gives a NaN row, as in NumPy."""
    x = np.array([[0.0, 2000.0, -1500.0, 1.0],       # spread far beyond float64's exp range
                  [-3000.0, -3001.0, 5.0, 7.0],
                  [np.inf, 0.5, np.nan, 1.5],         # non-finite scores at blocked entries
                  [0.0, np.nan, 1.0, 2.0],            # a kept NaN
                  [1.0, 2.0, 3.0, 4.0]])
    mask = np.array([[True, True, True, True], [True, True, False, False],
                     [False, True, False, True], [True, True, True, True],
                     [False, False, False, False]])
    p = masked_softargmax_p.bind(x, mask)
    np.testing.assert_allclose(p[0], [0.0, 1.0, 0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(p[1], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0, 0],
                               rtol=1e-15)
    np.testing.assert_allclose(p[2], [0, 1 / (1 + np.e), 0, np.e / (1 + np.e)], rtol=1e-15)
    assert np.isnan(p[3]).all()
    np.testing.assert_array_equal(p[4], 0.0)


def test_masked_softargmax_unshifted_rows_outside_exp_range_are_recomputed():
    """The tiled kernel exponentiates unshifted scores: rows whose ``Σ eˣ`` overflows (scores
    near +100 in float32) or falls under the subnormal floor (all scores near −70 or −200) are
    recomputed with the row maximum, and rows with a subnormal tail keep it negligible."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(3, 64, 64)).astype(np.float32)
    x[0, 3] += 100.0                       # overflows exp in float32
    x[0, 9] -= 70.0                        # Σ eˣ ≈ e⁻⁷⁰ < 2⁴⁰ · tiny: recomputed
    x[1, 20] -= 200.0                      # Σ eˣ underflows to 0
    x[2, 40, :10] -= 100.0                 # a subnormal tail under a normal row sum
    x[2, 41, :5] += 80.0                   # large but finite sum: kept unshifted
    mask = np.tril(np.ones((64, 64), bool))
    p = masked_softargmax_p.bind(x, mask)
    ref = _brute_masked_softmax(x.astype(np.float64), mask)
    np.testing.assert_allclose(p, ref, rtol=3e-6, atol=1e-12)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)


def test_masked_softargmax_output_is_causal_bit_for_bit():
    """Changing the scores of blocked (future) entries, even to huge values that send other
    rows through the recomputation, leaves every row's result bit for bit unchanged."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 2, 64, 64)).astype(np.float32)
    mask = np.tril(np.ones((64, 64), bool))
    y = x.copy()
    y[..., ~mask] = rng.normal(size=y[..., ~mask].shape).astype(np.float32) * 1e4
    y[0, 0, 5, 0] = 1e6                   # a kept entry: only row 5 of that block may change
    a, b = masked_softargmax_p.bind(x, mask), masked_softargmax_p.bind(y, mask)
    changed = np.any(a != b, axis=-1)
    assert changed[0, 0, 5] and changed.sum() == 1


def test_layer_norm_on_activations_larger_than_a_block_matches_the_composition():
    """Blocked standardization and its fused VJP against the plain formulas."""
    from diffprog.nn import layer_norm

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 40, 32)) * 2 + 1                    # 3 MiB: twelve blocks
    g = rng.normal(size=x.shape)
    eps = 1e-5
    mu = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    y = (x - mu) * r
    np.testing.assert_allclose(layer_norm(x, eps=eps), y, rtol=1e-12, atol=1e-13)
    _, pull = diffprog.vjp(lambda v: layer_norm(v, eps=eps), x)
    expected = r * (g - g.mean(-1, keepdims=True) - y * (g * y).mean(-1, keepdims=True))
    np.testing.assert_allclose(pull(g)[0], expected, rtol=1e-11, atol=1e-12)


def test_affine_layer_norm_fused_forward_and_backward_on_many_blocks():
    """``layer_norm(x, γ, β)`` (one fused primitive each way) against the formulas:
    ∂x = r(h − mean(h) − y mean(h y)) with h = g γ, ∂γ = Σ g y, ∂β = Σ g over the rows."""
    from diffprog.nn import layer_norm

    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 40, 32)) * 2 + 1
    gamma, beta = rng.normal(size=32), rng.normal(size=32)
    g = rng.normal(size=x.shape)
    eps = 1e-5
    mu = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    y = (x - mu) * r
    np.testing.assert_allclose(layer_norm(x, gamma, beta, eps), y * gamma + beta,
                               rtol=1e-12, atol=1e-12)
    _, pull = diffprog.vjp(lambda *a: layer_norm(*a, eps=eps), x, gamma, beta)
    dx, dgamma, dbeta = pull(g)
    h = g * gamma
    np.testing.assert_allclose(dx, r * (h - h.mean(-1, keepdims=True)
                                        - y * (h * y).mean(-1, keepdims=True)),
                               rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(dgamma, (g * y).sum((0, 1)), rtol=1e-10)
    np.testing.assert_allclose(dbeta, g.sum((0, 1)), rtol=1e-10)
    x32 = x.astype(np.float32)
    out32 = layer_norm(x32, gamma.astype(np.float32), beta.astype(np.float32), eps)
    assert out32.dtype == np.float32


def test_affine_layer_norm_per_example_parameters_under_vmap():
    """Batched γ and β take the composition; batched data only, the fused primitive."""
    from diffprog.nn import layer_norm

    rng = np.random.default_rng(9)
    xs, gs, bs = rng.normal(size=(4, 3, 6)), rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    got = diffprog.vmap(lambda x, g, b: layer_norm(x, g, b))(xs, gs, bs)
    for i in range(4):
        np.testing.assert_allclose(got[i], layer_norm(xs[i], gs[i], bs[i]), rtol=1e-13)
    per_example = diffprog.vmap(diffprog.grad(lambda g, x: dnp.sum(layer_norm(x, g, g) ** 3)),
                                in_axes=(None, 0))(gs[0], xs)
    for i, x in enumerate(xs):
        one = diffprog.grad(lambda g, x=x: dnp.sum(layer_norm(x, g, g) ** 3))(gs[0])
        np.testing.assert_allclose(per_example[i], one, rtol=1e-12)


def test_row_dot_products_both_implementations_equal_the_sum_of_products():
    from diffprog.nn.primitives import _row_dots_matmul, _row_dots_vecdot

    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(5, 7, 9)), rng.normal(size=(7, 9))          # b broadcasts
    expected = np.einsum("...i,...i->...", a, np.broadcast_to(b, a.shape))
    impls = [_row_dots_matmul] + ([_row_dots_vecdot] if hasattr(np, "vecdot") else [])
    for impl in impls:
        np.testing.assert_allclose(impl(a, b), expected, rtol=1e-13, atol=1e-13)


def test_outer2_is_a_sum_of_two_outer_products():
    from diffprog.nn.primitives import _outer2

    rng = np.random.default_rng(11)
    a0, a1, b0, b1 = rng.normal(size=5), rng.normal(size=5), rng.normal(size=3), rng.normal(size=3)
    out = _outer2(np.empty((5, 3)), a0, b0, a1, b1)
    np.testing.assert_allclose(out, np.outer(a0, b0) + np.outer(a1, b1), rtol=1e-14)
    np.testing.assert_allclose(_outer2(np.empty((5, 3)), a0, 2.0, 1.0, b1),
                               2 * a0[:, None] + b1[None, :], rtol=1e-14)


def _layer_norm_reference(x, g, gamma, beta, eps):
    """Float64 layer norm and its VJP from the centred formulas."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    y = (x - mu) * r
    h = g * gamma
    dx = r * (h - h.mean(-1, keepdims=True) - y * (h * y).mean(-1, keepdims=True))
    return y * gamma + beta, dx, (g * y).reshape(-1, x.shape[-1]).sum(0), g.reshape(
        -1, x.shape[-1]).sum(0)


def test_layer_norm_rows_far_from_zero_mean_take_the_centred_formulas():
    """Rows with |μ| ≫ σ lose every bit in mean(x²) − μ² (float32 at μ = 10⁴, σ = 1: an error
    of about 6 in σ² = 1): the block holding them is computed centred, the other blocks from
    the raw moments, and both agree with float64 to float32 accuracy."""
    from diffprog.nn.primitives import layer_norm_grad_p, layer_norm_p

    rng = np.random.default_rng(12)
    x = rng.normal(size=(4096, 64))
    x[5] += 1e4                                          # one offset row in the first block
    x[3000:3003] = 7.0                                   # constant rows: σ = 0
    x32 = x.astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    gamma = rng.normal(size=64).astype(np.float32)
    beta = rng.normal(size=64).astype(np.float32)
    eps = 1e-5
    out, mu, r = layer_norm_p.bind(x32, gamma, beta, eps=eps)
    dx, dgamma, dbeta = layer_norm_grad_p.bind(g, x32, gamma, mu, r, eps=eps)
    ref_out, ref_dx, ref_dgamma, ref_dbeta = _layer_norm_reference(x32, g, gamma, beta, eps)
    x64 = x32.astype(np.float64)                         # the statistics the backward reads
    ref_mu = x64.mean(-1)
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r, 1 / np.sqrt(x64.var(-1) + eps), rtol=2e-5)
    np.testing.assert_allclose(out[5], ref_out[5], atol=1e-2)   # raw moments: errors ~ 1
    np.testing.assert_allclose(np.delete(out, 5, 0), np.delete(ref_out, 5, 0), atol=2e-5)
    np.testing.assert_array_equal(out[3000:3003], np.broadcast_to(beta, (3, 64)))
    np.testing.assert_allclose(dx[5], ref_dx[5], atol=2e-2)
    np.testing.assert_allclose(np.delete(dx, 5, 0), np.delete(ref_dx, 5, 0), atol=1e-3,
                               rtol=1e-4)
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=1e-5, atol=1e-3)


def test_layer_norm_non_finite_row_stays_in_its_row():
    from diffprog.nn.primitives import layer_norm_p

    rng = np.random.default_rng(13)
    x = rng.normal(size=(2048, 64)).astype(np.float32)
    x[7, 3] = np.inf
    gamma, beta = np.ones(64, np.float32), np.zeros(64, np.float32)
    with np.errstate(invalid="ignore"):                 # ∞ − ∞ in that row, as in NumPy
        out = layer_norm_p.bind(x, gamma, beta, eps=1e-5)[0]
    assert np.isnan(out[7]).any()
    ref = _layer_norm_reference(np.delete(x, 7, 0), np.zeros((2047, 64)), 1.0, 0.0, 1e-5)[0]
    np.testing.assert_allclose(np.delete(out, 7, 0), ref, atol=2e-5)


def test_layer_norm_strided_input_and_broadcast_cotangent():
    from diffprog.nn.primitives import layer_norm_grad_p, layer_norm_p

    rng = np.random.default_rng(14)
    x = rng.normal(size=(32, 700)).T * 3 + 2            # a transposed (strided) view: 700 rows
    gamma, beta = rng.normal(size=32), rng.normal(size=32)
    g = rng.normal(size=32)                             # one cotangent row for every row
    ref_out, ref_dx, ref_dgamma, ref_dbeta = _layer_norm_reference(
        x, np.broadcast_to(g, x.shape), gamma, beta, 1e-5)
    out, mu, r = layer_norm_p.bind(x, gamma, beta, eps=1e-5)
    np.testing.assert_allclose(out, ref_out, rtol=1e-11, atol=1e-12)
    dx, dgamma, dbeta = layer_norm_grad_p.bind(g, x, gamma, mu, r, eps=1e-5)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=1e-10)
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=1e-12)


def test_layer_norm_gradient_written_over_its_cotangent_keeps_ill_conditioned_rows():
    """Under jit the gradient kernel may write ∂x into g's buffer; rows recomputed from the
    centred formulas must read g as it was."""
    from diffprog.nn.primitives import _layer_norm_grad_impl, _layer_norm_impl

    rng = np.random.default_rng(16)
    x = rng.normal(size=(3000, 64)).astype(np.float32)
    x[[4, 2500]] += 1e4
    g = rng.normal(size=x.shape).astype(np.float32)
    gamma = rng.normal(size=64).astype(np.float32)
    _, mu, r = _layer_norm_impl(x, gamma, gamma, eps=1e-5)
    expected = _layer_norm_grad_impl(g, x, gamma, mu, r, eps=1e-5)
    buf = g.copy()
    got = _layer_norm_grad_impl(buf, x, gamma, mu, r, eps=1e-5, out=buf)
    assert got[0] is buf
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 160), st.sampled_from([0.0, 1.0, 3.0, 100.0, 1e4]),
       st.booleans(), st.integers(0, 2 ** 31 - 1))
def test_layer_norm_kernels_on_random_shapes_and_offsets(rows, d, offset, use_float32, seed):
    """The fused forward and VJP (raw moments, centred fallback, one or many blocks) against
    the float64 centred formulas, for offsets from none to far beyond the spread."""
    from diffprog.nn.primitives import layer_norm_grad_p, layer_norm_p

    rng = np.random.default_rng(seed)
    dtype = np.float32 if use_float32 else np.float64
    if use_float32:      # float32 keeps log₂(1 + |μ|/σ) fewer bits of a row's spread, in any
        offset = min(offset, 100.0)                  # method (the input is rounded at |μ|)
    x = (rng.normal(size=(rows, d)) + offset * rng.normal(size=(rows, 1))).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    gamma, beta = rng.normal(size=d).astype(dtype), rng.normal(size=d).astype(dtype)
    out, mu, r = layer_norm_p.bind(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = layer_norm_grad_p.bind(g, x, gamma, mu, r, eps=1e-5)
    ref_out, ref_dx, ref_dgamma, ref_dbeta = _layer_norm_reference(x, g, gamma, beta, 1e-5)
    # float32: the input itself carries |x|·2⁻²⁴ of rounding, amplified by r ≤ 1/√ε
    tol = 1e-9 if dtype == np.float64 else 2e-3
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol * (1 + np.abs(ref_dx).max()))
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=tol, atol=tol * rows)
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=tol, atol=tol * rows)


def test_masked_softargmax_follows_a_mask_changed_in_place_between_calls():
    """The tiled bias built from a mask is cached by the mask's contents: editing the same
    array between calls must change the result (compared with brute force each time)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 2, 16, 16))
    mask = np.tril(np.ones((16, 16), bool))
    first = masked_softargmax_p.bind(x, mask)
    np.testing.assert_allclose(first, _brute_masked_softmax(x, mask), atol=1e-14)
    np.testing.assert_allclose(masked_softargmax_p.bind(x, mask), first, atol=0)  # cached
    mask[3, 9] = True
    mask[5, 0] = False
    again = masked_softargmax_p.bind(x, mask)
    np.testing.assert_allclose(again, _brute_masked_softmax(x, mask), atol=1e-14)
    assert again[0, 0, 3, 9] > 0 and again[0, 0, 5, 0] == 0


def test_masked_softargmax_from_many_threads_with_more_masks_than_the_cache_holds():
    """Threads filling and evicting the mask-bias cache at once still get their own mask."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 8, 8))
    masks = [rng.random((8, 8)) < 0.6 for _ in range(48)]

    def run(i):
        m = masks[i % len(masks)]
        return np.max(np.abs(masked_softargmax_p.bind(x, m) - _brute_masked_softmax(x, m)))

    with ThreadPoolExecutor(8) as pool:
        errors = list(pool.map(run, range(400)))
    assert max(errors) < 1e-14
