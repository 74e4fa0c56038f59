"""Feedforward layers (book §4.2–4.3, §4.6, §4.8.6): NET-10…16, NET-33…35, NET-54, NET-78,
plus MLP, Sequential, Embedding and Dropout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.nn.activations import relu
from diffprog.nn.dropout import Dropout, dropout
from diffprog.nn.embedding import Embedding, embed
from diffprog.nn.linear import Linear
from diffprog.nn.mlp import MLP, dense, glm, mlp
from diffprog.nn.residual import Residual, mlp_residual_block, residual
from diffprog.nn.sequential import Lambda, Sequential, feedforward
from diffprog.optim import adam, apply_updates, sgd
from diffprog.optim.losses import softmax_cross_entropy, squared_loss
from diffprog.optim.oracles import empirical_risk
from diffprog.scipy.special import softargmax


def _rng(seed=0):
    return np.random.default_rng(seed)


def _params(sizes, seed=0, bias=True):
    g = _rng(seed)
    return tuple((g.standard_normal((a, b)) / np.sqrt(a), g.standard_normal(b) if bias else None)
                 for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# ---------------------------------------------------------------- NET-10 feedforward networks
def test_net10_feedforward_grad_has_params_structure_and_matches_fd():
    layers = [lambda s, w: dnp.tanh(s @ w[0] + w[1]), lambda s, w: s @ w]
    g = _rng(1)
    w = ((g.standard_normal((3, 4)), g.standard_normal(4)), g.standard_normal((4, 2)))
    x = g.standard_normal((5, 3))
    f = feedforward(layers)

    def loss(w):
        return dnp.sum(f(x, w) ** 2)

    grads = diffprog.grad(loss)(w)
    assert diffprog.tree_structure(grads) == diffprog.tree_structure(w)
    # hand composition s_2 = tanh(x W1 + b1) W2
    manual = np.tanh(x @ w[0][0] + w[0][1]) @ w[1]
    np.testing.assert_allclose(f(x, w), manual, rtol=1e-14)
    # central differences on every parameter entry
    leaves, tdef = diffprog.tree_flatten(w)
    gleaves = diffprog.tree_leaves(grads)
    h = 1e-6
    for i, leaf in enumerate(leaves):
        for idx in np.ndindex(leaf.shape):
            plus = [lf.copy() for lf in leaves]
            minus = [lf.copy() for lf in leaves]
            plus[i][idx] += h
            minus[i][idx] -= h
            fd = (loss(diffprog.tree_unflatten(tdef, plus))
                  - loss(diffprog.tree_unflatten(tdef, minus))) / (2 * h)
            assert abs(fd - gleaves[i][idx]) < 1e-6


def test_net10_feedforward_rejects_bad_layers_and_param_count():
    with pytest.raises(TypeError, match="feedforward"):
        feedforward([])
    with pytest.raises(ValueError, match="feedforward: 2 layers"):
        feedforward([lambda s, w: s, lambda s, w: s])(1.0, (1.0,))


# ---------------------------------------------------------------- NET-11 empirical risk
def test_net11_empirical_risk_linear_model_gradient_closed_form():
    g = _rng(2)
    n, d, m = 20, 3, 2
    X, Y, W = g.standard_normal((n, d)), g.standard_normal((n, m)), g.standard_normal((m, d))
    R = empirical_risk(lambda p, y: dnp.sum(squared_loss(p, y), axis=-1),
                       lambda W, X: X @ W.T, X, Y)
    # squared_loss is ½‖·‖², so ∇L = (1/n) Σ (W x_i − y_i) x_iᵀ; the book's ‖·‖² doubles it
    expected = sum(np.outer(W @ X[i] - Y[i], X[i]) for i in range(n)) / n
    np.testing.assert_allclose(R.grad(W), expected, atol=1e-10)
    np.testing.assert_allclose(2 * R.grad(W),
                               (2 / n) * sum(np.outer(W @ X[i] - Y[i], X[i]) for i in range(n)),
                               atol=1e-10)
    np.testing.assert_allclose(R.value(W), np.mean(0.5 * np.sum((X @ W.T - Y) ** 2, -1)),
                               rtol=1e-13)


# ---------------------------------------------------------------- NET-12 dense layer
def test_net12_dense_value_and_vjps():
    g = _rng(3)
    x, W, b, gy = g.standard_normal(3), g.standard_normal((3, 4)), g.standard_normal(4), \
        g.standard_normal(4)
    y, vjp = diffprog.vjp(dense, x, W, b)
    np.testing.assert_allclose(y, W.T @ x + b, rtol=1e-14)  # the book's W s + b, W = our Wᵀ
    gx, gW, gb = vjp(gy)
    np.testing.assert_allclose(gW, np.outer(x, gy), rtol=1e-14)
    np.testing.assert_allclose(gb, gy, rtol=1e-14)
    np.testing.assert_allclose(gx, W @ gy, rtol=1e-14)
    np.testing.assert_allclose(dense(x, W, b, activation=relu), np.maximum(W.T @ x + b, 0))
    check_grads(lambda x, W, b: dense(x, W, b, dnp.tanh), (x, W, b), order=2)


def test_net12_dense_and_linear_reject_wrong_input_dim():
    with pytest.raises(ValueError, match="dense: input 'x' must have last dimension 3"):
        dense(np.ones(2), np.ones((3, 4)))
    with pytest.raises(ValueError, match="dense: argument 'W'"):
        dense(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="Linear"):
        Linear.init(0, 3, 2)(np.ones((4, 5)))


# ---------------------------------------------------------------- NET-13 MLP
@given(st.floats(0.01, 100.0))
def test_net13_relu_mlp_without_bias_is_positively_homogeneous(a):
    params = _params([3, 5, 4, 2], seed=4, bias=False)
    x = _rng(5).standard_normal((6, 3))
    np.testing.assert_allclose(mlp(params, a * x), a * mlp(params, x), rtol=1e-12, atol=1e-12)


def test_net13_mlp_preactivations_and_gradients():
    params = _params([3, 5, 2], seed=6)
    x = _rng(7).standard_normal((4, 3))
    out, pre = mlp(params, x, return_preactivations=True)
    (W1, b1), (W2, b2) = params
    a1 = x @ W1 + b1
    np.testing.assert_allclose(pre[0], a1, rtol=1e-14)
    np.testing.assert_allclose(pre[1], np.maximum(a1, 0) @ W2 + b2, rtol=1e-14)
    np.testing.assert_allclose(out, pre[1], rtol=1e-14)
    check_grads(lambda p, x: mlp(p, x, dnp.tanh, dnp.tanh), (params, x), order=2)


def test_net13_mlp_module_matches_functional_and_checks_inputs():
    net = MLP.init(0, [3, 6, 2], activation=dnp.tanh)
    x = _rng(8).standard_normal((5, 3))
    params = [(lyr.W, lyr.b) for lyr in net.layers]
    np.testing.assert_allclose(net(x), mlp(params, x, dnp.tanh), rtol=1e-14)
    check_grads(lambda m, x: m(x), (net, x), order=2)
    g = diffprog.grad(lambda m: dnp.sum(m(x) ** 2))(net)
    assert isinstance(g, MLP) and g.layers[0].W.shape == (3, 6)
    with pytest.raises(ValueError, match="MLP: input 'x' must have last dimension 3"):
        net(np.ones((5, 4)))
    with pytest.raises(ValueError, match="MLP.init"):
        MLP.init(0, [3])
    with pytest.raises(ValueError, match="mlp: needs at least one layer"):
        mlp((), x)


def test_mlp_under_jit_and_vmap():
    net = MLP.init(1, [3, 4, 2])
    X = _rng(9).standard_normal((7, 3))
    f = diffprog.jit(lambda m, x: m(x))
    np.testing.assert_allclose(f(net, X), net(X), rtol=1e-14)
    gj = diffprog.jit(diffprog.grad(lambda m, x: dnp.sum(m(x) ** 2)))(net, X)
    ge = diffprog.grad(lambda m, x: dnp.sum(m(x) ** 2))(net, X)
    np.testing.assert_allclose(gj.layers[0].W, ge.layers[0].W, rtol=1e-12)
    rows = diffprog.vmap(lambda x: net(x))(X)
    np.testing.assert_allclose(rows, np.stack([net(x) for x in X]), rtol=1e-14)


def test_mlp_float32_forward_and_grad():
    net = MLP.init(0, [3, 4, 2], dtype=np.float32)
    x = np.ones((2, 3), np.float32)
    assert net(x).dtype == np.float32
    g = diffprog.grad(lambda m: dnp.sum(m(x) ** 2))(net)
    assert g.layers[0].W.dtype == np.float32
    g64 = diffprog.grad(lambda m: dnp.sum(m(x.astype(np.float64)) ** 2))(
        diffprog.tree_map(lambda a: a.astype(np.float64), net))
    np.testing.assert_allclose(g.layers[0].W, g64.layers[0].W, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- NET-15 concatenation
def test_net15_concatenate_vjp_splits_cotangent_and_late_fusion():
    g = _rng(10)
    x1, x2, gy = g.standard_normal((4, 2)), g.standard_normal((4, 3)), g.standard_normal((4, 5))
    _, vjp = diffprog.vjp(lambda a, b: dnp.concatenate([a, b], axis=-1), x1, x2)
    g1, g2 = vjp(gy)
    np.testing.assert_array_equal(g1, gy[:, :2])
    np.testing.assert_array_equal(g2, gy[:, 2:])
    # late fusion: each input through its own branch, concatenated, then a head
    b1, b2, head = (MLP.init(1, [2, 3], dnp.tanh, dnp.tanh), MLP.init(2, [3, 4], dnp.tanh,
                    dnp.tanh), MLP.init(3, [7, 1]))

    def fused(models, x1, x2):
        m1, m2, h = models
        return h(dnp.concatenate([m1(x1), m2(x2)], axis=-1))

    check_grads(fused, ((b1, b2, head), x1, x2), order=1)


# ---------------------------------------------------------------- NET-16 GLM
def test_net16_glm_is_one_layer_mlp_with_softargmax():
    g = _rng(11)
    W, b, x = g.standard_normal((3, 4)), g.standard_normal(4), g.standard_normal((5, 3))
    u = x @ W + b
    expected = np.exp(u - u.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    pi = glm((W, b), x)
    np.testing.assert_allclose(pi, expected, rtol=1e-13)
    np.testing.assert_allclose(pi.sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(mlp(((W, b),), x, final_activation=lambda v: softargmax(v, -1)),
                               expected, rtol=1e-13)
    np.testing.assert_allclose(glm((W, b), x, link=dnp.tanh), np.tanh(u), rtol=1e-14)
    # logistic regression: ∇_W [−log π_y] = x (π − e_y)ᵀ (row form of (π − e_y) xᵀ)
    y = 2
    gW, gb = diffprog.grad(lambda W, b: softmax_cross_entropy(x[0] @ W + b, y),
                           argnums=(0, 1))(W, b)
    e = np.eye(4)[y]
    np.testing.assert_allclose(gW, np.outer(x[0], expected[0] - e), atol=1e-13)
    np.testing.assert_allclose(gb, expected[0] - e, atol=1e-13)
    check_grads(lambda W, b: glm((W, b), x), (W, b), order=2)


# ---------------------------------------------------------------- NET-78 training loop
def _xor_data():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0])


@pytest.mark.parametrize("opt, steps", [(adam(0.05), 300), (sgd(0.5, momentum=0.9), 300)])
def test_net78_two_layer_mlp_fits_xor(opt, steps):
    X, y = _xor_data()
    net = MLP.init(0, [2, 8, 2], activation=dnp.tanh)

    def loss(m, X, y):
        return dnp.mean(softmax_cross_entropy(m(X), y))

    vg = diffprog.value_and_grad(loss)
    state = opt.init(net)
    for _ in range(steps):
        value, grads = vg(net, X, y)
        updates, state = opt.update(grads, state, net)
        net = apply_updates(net, updates)
    assert isinstance(net, MLP)
    assert np.array_equal(np.argmax(net(X), -1), y)
    assert value < 0.1


# ---------------------------------------------------------------- NET-33…35 residual blocks
def test_net33_residual_of_zero_is_identity_with_identity_jacobian():
    f = residual(lambda s, w: 0.0 * dnp.tanh(s @ w))
    s, w = _rng(12).standard_normal(4), _rng(13).standard_normal((4, 4))
    np.testing.assert_array_equal(f(s, w), s)
    np.testing.assert_array_equal(diffprog.jacobian(f)(s, w), np.eye(4))
    h = lambda s, w: dnp.tanh(s @ w)  # noqa: E731
    J = diffprog.jacobian(residual(h))(s, w)
    np.testing.assert_allclose(J, np.eye(4) + diffprog.jacobian(h)(s, w), rtol=1e-14)
    with pytest.raises(TypeError, match="residual"):
        residual(3)


def test_net34_mlp_residual_block_identity_and_deep_stack():
    g = _rng(14)
    D, H = 4, 6
    s0 = g.standard_normal((3, D))
    blocks = [(g.standard_normal((D, H)), g.standard_normal(H), np.zeros((H, D)), np.zeros(D))
              for _ in range(50)]
    np.testing.assert_array_equal(mlp_residual_block(s0, blocks[0]), s0)

    def stack(s):
        for p in blocks:
            s = mlp_residual_block(s, p)
        return s

    J = diffprog.jacobian(stack)(s0[0])
    np.testing.assert_array_equal(J, np.eye(D))
    # against the book's h(s) = C a(W s + b) + d with nonzero C, d (column form)
    W, b, _, _ = blocks[0]
    C, d = g.standard_normal((H, D)), g.standard_normal(D)
    expected = s0[0] + C.T @ np.maximum(W.T @ s0[0] + b, 0) + d
    np.testing.assert_allclose(mlp_residual_block(s0[0], (W, b, C, d)), expected, rtol=1e-13)
    check_grads(lambda s, W, b, C, d: mlp_residual_block(s, (W, b, C, d), dnp.tanh),
                (s0, W, b, C, d), order=2)
    with pytest.raises(ValueError, match="mlp_residual_block: 'C'"):
        mlp_residual_block(s0, (W, b, np.zeros((D, H)), d))


def test_net35_post_activation_relu():
    g = _rng(15)
    W, b = g.standard_normal((3, 5)), g.standard_normal(5)
    zero = (W, b, np.zeros((5, 3)), np.zeros(3))
    s_pos = np.abs(g.standard_normal((4, 3)))
    np.testing.assert_array_equal(mlp_residual_block(s_pos, zero, post_activation=relu), s_pos)
    s = np.array([[-1.0, 2.0, -0.5]])
    np.testing.assert_array_equal(mlp_residual_block(s, zero, post_activation=relu),
                                  [[0.0, 2.0, 0.0]])
    f = residual(lambda s, w: w * s, post_activation=relu)
    np.testing.assert_array_equal(f(np.array([-1.0, 1.0]), 1.0), [0.0, 2.0])


def test_residual_module_wraps_sublayer():
    sub = MLP.init(0, [3, 5, 3], activation=dnp.tanh)
    block = Residual(sub, post_activation=relu)
    x = _rng(16).standard_normal((4, 3))
    np.testing.assert_allclose(block(x), np.maximum(x + sub(x), 0), rtol=1e-14)
    check_grads(lambda m, x: m(x), (Residual(sub), x), order=2)
    with pytest.raises(ValueError, match="Residual: the sublayer maps"):
        Residual(MLP.init(0, [3, 2]))(x)


# ---------------------------------------------------------------- Sequential
def test_sequential_composes_modules_and_differentiates():
    l1, l2 = Linear.init(0, 3, 4), Linear.init(1, 4, 2)
    net = Sequential([l1, Lambda(dnp.tanh), l2])
    x = _rng(17).standard_normal((5, 3))
    np.testing.assert_allclose(net(x), np.tanh(x @ l1.W + l1.b) @ l2.W + l2.b, rtol=1e-14)
    assert isinstance(net.layers, tuple)
    g = diffprog.grad(lambda m: dnp.sum(m(x) ** 2))(net)
    assert isinstance(g, Sequential) and len(diffprog.tree_leaves(g)) == 4
    check_grads(lambda m, x: m(x), (net, x), order=2)
    with pytest.raises(TypeError, match="Sequential: layer 1 must be a Module"):
        Sequential((l1, relu, l2))


# ---------------------------------------------------------------- NET-54 Embedding
def test_net54_embedding_lookup_equals_one_hot_product():
    table = _rng(18).standard_normal((6, 3))
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    np.testing.assert_array_equal(embed(ids, table), table[ids])
    np.testing.assert_allclose(embed(ids, table), np.eye(6)[ids] @ table, rtol=1e-14)
    emb = Embedding(table)
    np.testing.assert_array_equal(emb(ids), table[ids])
    x = _rng(19).standard_normal((2, 3))
    np.testing.assert_allclose(emb.attend(x), x @ table.T, rtol=1e-14)


def test_net54_repeated_id_accumulates_cotangents():
    table = _rng(20).standard_normal((5, 2))
    ids = np.array([1, 3, 1])
    gy = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    _, vjp = diffprog.vjp(lambda T: embed(ids, T), table)
    (gT,) = vjp(gy)
    expected = np.zeros((5, 2))
    expected[1] = gy[0] + gy[2]
    expected[3] = gy[1]
    np.testing.assert_array_equal(gT, expected)
    g = diffprog.grad(lambda m: dnp.sum(m(ids) * gy))(Embedding(table))
    np.testing.assert_array_equal(g.table, expected)
    check_grads(lambda T, x: embed(ids, T) + Embedding(T).attend(x)[:, :2],
                (table, _rng(21).standard_normal((3, 2))), order=2)


def test_net54_embedding_rejects_bad_ids_and_works_under_jit_vmap_float32():
    emb = Embedding.init(0, 4, 3, std=0.5)
    with pytest.raises(ValueError, match=r"Embedding: argument 'ids' must lie in \[0, 4\)"):
        emb(np.array([0, 4]))
    with pytest.raises(ValueError, match="Embedding"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="integer token ids"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="embed"):
        diffprog.grad(lambda T: dnp.sum(embed(np.array([7]), T)))(emb.table)
    with pytest.raises(ValueError, match="Embedding.attend"):
        emb.attend(np.ones(4))
    ids = np.array([[3, 0], [1, 1]])
    np.testing.assert_array_equal(diffprog.jit(lambda m, i: m(i))(emb, ids), emb.table[ids])
    np.testing.assert_array_equal(diffprog.vmap(emb)(ids), emb.table[ids])
    e32 = Embedding.init(0, 4, 3, dtype=np.float32)
    g = diffprog.grad(lambda m: dnp.sum(m(ids) ** 2))(e32)
    assert e32(ids).dtype == np.float32 and g.table.dtype == np.float32
    np.testing.assert_allclose(g.table[1], 4 * e32.table[1], rtol=1e-6)


# ---------------------------------------------------------------- Dropout
def test_dropout_inverted_scaling_and_modes():
    layer = Dropout(0.3)
    x = np.full(200_000, 2.0)
    y = layer(x, rng=0)
    assert set(np.unique(y)) <= {0.0, 2.0 / 0.7}
    # E[y] = x: the mean of n i.i.d. entries has std 2·√(0.3/0.7)/√n
    assert abs(y.mean() - 2.0) < 5 * 2.0 * np.sqrt(0.3 / 0.7) / np.sqrt(x.size)
    assert abs(np.mean(y == 0) - 0.3) < 0.005
    np.testing.assert_array_equal(layer(x, rng=0), y)  # same seed, same mask
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(Dropout(0.0)(x, rng=1), x)
    with pytest.raises(ValueError, match="Dropout: training mode needs argument 'rng'"):
        layer(x)
    with pytest.raises(ValueError, match="Dropout: argument 'rate'"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="dropout: argument 'rate'"):
        dropout(x, -0.1, 0)


def test_dropout_gradient_is_the_scaled_mask():
    x = _rng(22).standard_normal(50)
    mask = dropout(np.ones(50), 0.5, rng=np.random.default_rng(3))
    g = diffprog.grad(lambda x: dnp.sum(dropout(x, 0.5, rng=np.random.default_rng(3))))(x)
    np.testing.assert_array_equal(g, mask)
    check_grads(lambda x: dropout(x, 0.5, rng=3) ** 2, (x,), order=2)
    x32 = x.astype(np.float32)
    assert Dropout(0.5)(x32, rng=0).dtype == np.float32


def test_dropout_refuses_to_freeze_its_mask_inside_jit():
    """Inside jit the mask would be drawn once at trace time: a clear error, not a fixed mask."""
    import diffprog
    from diffprog.nn.dropout import Dropout

    f = diffprog.jit(lambda x: Dropout(0.5)(x, rng=0))
    with pytest.raises(TypeError, match="dropout: inside jit"):
        f(np.ones(4))


def test_dropout_inside_jit_with_a_mask_drawn_outside():
    """``dropout_mask`` draws the keep-mask eagerly; the compiled function uses the mask it is
    given at each call (a fresh mask per step), with the inverted-dropout scaling."""
    import diffprog
    from diffprog.nn import dropout_mask

    x = np.arange(1.0, 9.0)
    layer = Dropout(0.5)
    f = diffprog.jit(lambda x, m: layer(x, mask=m))
    for seed in (0, 1):
        m = dropout_mask(seed, x.shape, 0.5)
        np.testing.assert_array_equal(f(x, m), np.where(m, 2.0 * x, 0.0))
    g = diffprog.grad(lambda x: dnp.sum(dropout(x, 0.25, mask=m)))(x)
    np.testing.assert_array_equal(g, np.where(m, 1 / 0.75, 0.0))
    with pytest.raises(ValueError, match="dropout: argument 'mask' must have the shape"):
        dropout(x, 0.5, mask=m[:3])
    with pytest.raises(ValueError, match="either 'rng' or 'mask'"):
        dropout(x, 0.5, rng=0, mask=m)
