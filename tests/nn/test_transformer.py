"""Transformer MLP, layers and blocks (book §4.8.4–4.8.5, NET-48..53): checked against a NumPy
re-implementation from the raw weights, closed-form parameter counts and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn import count_params
from diffprog.nn.activations import gelu, relu
from diffprog.nn.attention import causal_mask
from diffprog.nn.transformer import FeedForward, TransformerBlock, TransformerLayer, TransformerMLP


def np_gelu(u):
    return 0.5 * u * (1 + erf(u / np.sqrt(2)))


def np_ln(x, ln):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + ln.eps) * ln.gamma + ln.beta


def np_mha(mha, x, c=None, mask=None):
    c = x if c is None else c
    H, dk, dv = mha.num_heads, mha.d_k, mha.d_v
    heads = []
    for i in range(H):
        q = x @ mha.q_proj.W[:, i * dk:(i + 1) * dk]
        k = c @ mha.k_proj.W[:, i * dk:(i + 1) * dk]
        v = c @ mha.v_proj.W[:, i * dv:(i + 1) * dv]
        s = q @ np.swapaxes(k, -1, -2) / np.sqrt(dk)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        heads.append(a / a.sum(-1, keepdims=True) @ v)
    return np.concatenate(heads, -1) @ mha.o_proj.W


def np_mlp(mlp, z):
    return np_gelu(z @ mlp.fc1.W) @ mlp.fc2.W


def np_layer(layer, x, mask=None, context=None):
    def sub(x, f, ln):
        return x + f(np_ln(x, ln)) if layer.norm == "pre" else np_ln(x + f(x), ln)

    x = sub(x, lambda h: np_mha(layer.attn, h, mask=mask), layer.ln1)
    if layer.cross_attn is not None:
        x = sub(x, lambda h: np_mha(layer.cross_attn, h, context), layer.ln_cross)
    return sub(x, lambda h: np_mlp(layer.mlp, h), layer.ln2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _randomize_norms(layer, rng):
    """LayerNorms with non-trivial γ, β so that the references exercise them."""
    D = layer.ln1.gamma.shape[0]

    def rn(ln):
        return None if ln is None else ln.replace(gamma=1 + 0.1 * rng.normal(size=D),
                                                  beta=0.1 * rng.normal(size=D))
    return layer.replace(ln1=rn(layer.ln1), ln2=rn(layer.ln2), ln_cross=rn(layer.ln_cross))


# ----------------------------------------------------------------------------- NET-48, 49


def test_net48_mlp_rowwise_and_shape(rng):
    mlp = TransformerMLP.init(rng, 4, 10)
    assert mlp.fc1.b is None and mlp.fc2.b is None
    z = rng.normal(size=(5, 4))
    out = mlp(z)
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out, np.stack([mlp(z[i]) for i in range(5)]), atol=1e-15)
    np.testing.assert_allclose(out, np_mlp(mlp, z), atol=1e-14)
    assert count_params(mlp) == 2 * 4 * 10
    biased = TransformerMLP.init(rng, 4, 10, use_bias=True)
    assert count_params(biased) == 2 * 4 * 10 + 10 + 4
    assert FeedForward is TransformerMLP


def test_net49_gelu_is_the_default_activation(rng):
    mlp = TransformerMLP.init(rng, 3, 6)
    assert mlp.activation is gelu
    assert TransformerLayer.init(rng, 4, 1, 8).mlp.activation is gelu
    relu_mlp = TransformerMLP.init(rng, 3, 6, activation=relu)
    z = rng.normal(size=(2, 3))
    np.testing.assert_allclose(relu_mlp(z), np.maximum(z @ relu_mlp.fc1.W, 0) @ relu_mlp.fc2.W,
                               atol=1e-15)
    with pytest.raises(TypeError, match="activation"):
        TransformerMLP.init(rng, 3, 6, activation="gelu")
    check_grads(lambda m, z: m(z), (mlp, z), order=2)


# ----------------------------------------------------------------------------- NET-50, 51


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_net50_net51_layer_matches_numpy_reference(rng, norm):
    layer = _randomize_norms(TransformerLayer.init(rng, 8, 2, 12, norm=norm), rng)
    x = rng.normal(size=(2, 5, 8))
    for mask in (None, causal_mask(5)):
        np.testing.assert_allclose(layer(x, mask=mask), np_layer(layer, x, mask), atol=1e-12)
        np.testing.assert_allclose(layer(x, mask=mask, impl="loop"), np_layer(layer, x, mask),
                                   atol=1e-12)


def test_net50_post_norm_rows_are_standardized(rng):
    layer = TransformerLayer.init(rng, 8, 2, 16, norm="post", eps=0.0)
    y = layer(rng.normal(size=(6, 8)))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-14)
    np.testing.assert_allclose(y.std(-1), 1.0, atol=1e-12)


def test_net51_pre_norm_identity_with_zero_output_weights(rng):
    def zeroed(norm):
        layer = TransformerLayer.init(rng, 8, 2, 16, norm=norm)
        attn = layer.attn.replace(o_proj=layer.attn.o_proj.replace(W=np.zeros((8, 8))))
        mlp = layer.mlp.replace(fc2=layer.mlp.fc2.replace(W=np.zeros((16, 8))))
        return layer.replace(attn=attn, mlp=mlp)

    x = rng.normal(size=(5, 8))
    np.testing.assert_array_equal(zeroed("pre")(x), x)
    post = zeroed("post")(x)
    assert not np.allclose(post, x)
    ln = TransformerLayer.init(rng, 8, 2, 16).ln1
    np.testing.assert_allclose(post, np_ln(np_ln(x, ln), ln), atol=1e-12)


def test_layer_gradient_matches_finite_differences(rng):
    """Acceptance: a Transformer layer's gradient matches finite differences (both modes)."""
    for norm in ("post", "pre"):
        layer = _randomize_norms(TransformerLayer.init(rng, 4, 2, 6, norm=norm), rng)
        x = rng.normal(size=(3, 4))
        check_grads(lambda m, x: m(x, mask=causal_mask(3)), (layer, x), order=2)
    block = TransformerBlock.init(rng, 2, 4, 2, 6, norm="pre")
    check_grads(lambda m, x: m(x, rope=True), (block, rng.normal(size=(2, 3, 4))), order=1)


def test_cross_attention_layer(rng):
    layer = _randomize_norms(TransformerLayer.init(rng, 6, 2, 8, cross_attention=True), rng)
    x, ctx = rng.normal(size=(4, 6)), rng.normal(size=(7, 6))
    y = layer(x, mask=causal_mask(4), context=ctx)
    np.testing.assert_allclose(y, np_layer(layer, x, causal_mask(4), ctx), atol=1e-12)
    assert not np.allclose(y, layer(x, mask=causal_mask(4), context=ctx + 1.0))
    with pytest.raises(ValueError, match="'context'"):
        layer(x)
    with pytest.raises(ValueError, match="without cross_attention"):
        TransformerLayer.init(rng, 6, 2, 8)(x, context=ctx)
    check_grads(lambda m, x, c: m(x, context=c), (layer, x[:2], ctx[:3]), order=1)


# ----------------------------------------------------------------------------- NET-52


def test_net52_block_is_composition_and_equivariant(rng):
    block = TransformerBlock.init(rng, 2, 8, 2, 16)
    x = rng.normal(size=(6, 8))
    l1, l2 = block.layers
    np.testing.assert_allclose(block(x), l2(l1(x)), atol=1e-15)
    np.testing.assert_allclose(block(x), np_layer(l2, np_layer(l1, x)), atol=1e-12)
    perm = rng.permutation(6)
    np.testing.assert_allclose(block(x[perm]), block(x)[perm], atol=1e-10)
    assert block.layers[0].attn.q_proj.W is not block.layers[1].attn.q_proj.W
    assert not np.allclose(block.layers[0].attn.q_proj.W, block.layers[1].attn.q_proj.W)


# ----------------------------------------------------------------------------- NET-53


@pytest.mark.parametrize("H, D, dk, dv, D1", [(2, 8, 4, 4, 16), (3, 6, 5, 2, 7), (1, 4, 4, 4, 4)])
def test_net53_parameter_count(H, D, dk, dv, D1):
    layer = TransformerLayer.init(0, D, H, D1, d_k=dk, d_v=dv)
    assert count_params(layer) == H * D * (2 * dk + dv) + H * dv * D + D * D1 + D1 * D + 4 * D
    block = TransformerBlock.init(0, 3, D, H, D1, d_k=dk, d_v=dv)
    assert count_params(block) == 3 * count_params(layer)
    # the same parameters process any length L
    for L in (1, 5, 40):
        assert layer(np.ones((L, D))).shape == (L, D)


def test_float32_layer_stays_float32(rng):
    block = TransformerBlock.init(rng, 2, 8, 2, 16, norm="pre", dtype=np.float32)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    assert block(x, mask=causal_mask(5), rope=True).dtype == np.float32
    g = diffprog.grad(lambda b: (b(x, mask=causal_mask(5)) ** 2).sum())(block)
    assert {leaf.dtype for leaf in diffprog.tree_leaves(g)} == {np.dtype(np.float32)}


def test_errors():
    with pytest.raises(ValueError, match="TransformerLayer.init: argument 'norm'"):
        TransformerLayer.init(0, 4, 1, 8, norm="mid")
    with pytest.raises(ValueError, match="num_layers"):
        TransformerBlock.init(0, 0, 4, 1, 8)
    with pytest.raises(ValueError, match="TransformerLayer"):
        TransformerLayer.init(0, 4, 1, 8)(np.ones((2, 5)))
