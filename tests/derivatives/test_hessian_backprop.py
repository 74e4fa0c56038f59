"""Hessian backpropagation, block-diagonal and diagonal schemes (Book §9.5–9.7; spec AD-72…AD-81).

Reference values come from ``diffprog.hessian`` of the whole composition, closed forms, or
finite differences; approximate schemes are checked to *differ* where the spec says so.
"""

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives.diagonal import (
    diag_hessian_approx,
    diag_hessian_approx_graph,
    diag_oracle,
    mlp_diag_hessian,
)
from diffprog.derivatives.hessian_backprop import (
    block_diag_gn,
    block_diag_hessian,
    block_diag_hessian_approx,
    graph_hessian_backprop,
    hessian_backprop,
    mlp_block_diag_gn,
)


def _hess(f, x):
    x = np.asarray(x, dtype=float)
    return np.asarray(diffprog.hessian(f)(x)).reshape(x.size, x.size)


def _fd_hessian(f, x, h=1e-4):
    """Central finite-difference Hessian of a NumPy scalar function (independent of AD)."""
    n = x.size
    H = np.zeros((n, n))
    E = np.eye(n) * h
    for i in range(n):
        for j in range(n):
            H[i, j] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j])
                       + f(x - E[i] - E[j])) / (4 * h * h)
    return H


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _dense(W, b):
    return lambda s: dnp.tanh(W @ s + b)


def _mlp3(rng):
    dims = [4, 5, 3, 2]
    Ws = [rng.standard_normal((dims[k + 1], dims[k])) for k in range(3)]
    bs = [rng.standard_normal(dims[k + 1]) for k in range(3)]
    return [_dense(W, b) for W, b in zip(Ws, bs, strict=True)], rng.standard_normal(4)


def _compose(chain, loss):
    def f(x):
        for g in chain:
            x = g(x)
        return loss(x)
    return f


def _quad_loss(A):
    return lambda z: 0.5 * dnp.sum((A @ z) ** 2) + dnp.sum(z ** 3)


# ---------------------------------------------------------------- AD-72 / AD-73 example rules


def test_ad72_elementwise_rule(rng):
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    loss = _quad_loss(A)
    z = np.tanh(x)
    f1, f2 = 1 - z ** 2, -2 * z * (1 - z ** 2)
    gl = A.T @ A @ z + 3 * z ** 2
    Hl = A.T @ A + np.diag(6 * z)
    rule = np.diag(gl * f2) + Hl * np.outer(f1, f1)
    np.testing.assert_allclose(rule, _hess(lambda x: loss(dnp.tanh(x)), x), atol=1e-10)


def test_ad73_linear_rule(rng):
    A = rng.standard_normal((3, 3))
    x, W, V = rng.standard_normal(4), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = _quad_loss(A)
    z = W @ x
    H = A.T @ A + np.diag(6 * z)
    out = diffprog.hvp(lambda W: loss(W @ x), W, V)
    np.testing.assert_allclose(out, H @ V @ np.outer(x, x), atol=1e-10)


# ---------------------------------------------------------------- AD-74 chains


def test_ad74_chain_hessian_backprop(rng):
    chain, x = _mlp3(rng)
    loss = _quad_loss(rng.standard_normal((3, 2)))
    val, r0, R0 = hessian_backprop(chain, loss, x)
    f = _compose(chain, loss)
    np.testing.assert_allclose(val, f(x), atol=1e-12)
    np.testing.assert_allclose(R0, _hess(f, x), atol=1e-8)
    np.testing.assert_allclose(r0, diffprog.grad(f)(x), atol=1e-12)
    np.testing.assert_allclose(R0, R0.T, atol=1e-12)
    np.testing.assert_allclose(R0, _fd_hessian(lambda x: float(f(x)), x), atol=1e-5)


def test_ad74_matrix_input_and_errors(rng):
    W = rng.standard_normal((3, 2))
    chain = [lambda X: dnp.sin(X), lambda X: W.T @ X]
    X = rng.standard_normal((3, 2))
    loss = lambda Z: dnp.sum(Z ** 4)  # noqa: E731
    _, g, H = hessian_backprop(chain, loss, X)
    f = _compose(chain, loss)
    assert g.shape == X.shape and H.shape == (6, 6)
    np.testing.assert_allclose(H, _hess(f, X), atol=1e-9)
    with pytest.raises(TypeError):
        hessian_backprop([1, 2], loss, X)
    with pytest.raises(ValueError, match="scalar"):
        hessian_backprop(chain, lambda Z: Z, X)


# ---------------------------------------------------------------- AD-75 fan-in cross terms


def test_ad75_fan_in_cross_terms():
    # ℓ(a, b) = ab with a = b = w: exact rule gives 2, the true value
    _, (g,), H = graph_hessian_backprop(lambda w: (1.0 * w) * (1.0 * w), None, 1.5)
    assert H.shape == (1, 1)
    np.testing.assert_allclose(H[0, 0], 2.0, atol=1e-14)
    np.testing.assert_allclose(g, 3.0, atol=1e-14)
    # same through an explicit two-argument loss on the graph's output
    _, _, H = graph_hessian_backprop(lambda w: dnp.stack([1.0 * w, 1.0 * w]),
                                     lambda ab: ab[0] * ab[1], 0.7)
    np.testing.assert_allclose(H[0, 0], 2.0, atol=1e-14)


def test_ad75_graph_with_fan_in_and_fan_out(rng):
    A = rng.standard_normal((3, 3))

    def f(x, y):
        u = dnp.sin(x) * y            # fan-in
        v = dnp.exp(0.3 * x) + A @ u  # x fans out
        return dnp.sum(v * u) + dnp.sum(dnp.tanh(y) ** 2) * dnp.sum(x)

    x, y = rng.standard_normal(3), rng.standard_normal(3)
    val, (gx, gy), H = graph_hessian_backprop(f, None, x, y)
    np.testing.assert_allclose(val, f(x, y), atol=1e-12)
    full = _hess(lambda z: f(z[:3], z[3:]), np.concatenate([x, y]))
    np.testing.assert_allclose(H, full, atol=1e-9)
    np.testing.assert_allclose(gx, diffprog.grad(f, 0)(x, y), atol=1e-12)
    np.testing.assert_allclose(gy, diffprog.grad(f, 1)(x, y), atol=1e-12)
    # the graph block scheme (AD-78) drops the cross terms here: it differs from the truth
    _, _, (Bx, By) = block_diag_hessian_approx(f, None, x, y)
    assert np.abs(Bx - full[:3, :3]).max() > 1e-3
    # a prebuilt Graph and a separate loss work too
    g = diffprog.make_graph(lambda x: dnp.sin(x) * dnp.cos(x[::-1]), x)
    loss = _quad_loss(A)
    _, _, H2 = graph_hessian_backprop(g, loss)
    np.testing.assert_allclose(
        H2, _hess(lambda x: loss(dnp.sin(x) * dnp.cos(x[::-1])), x), atol=1e-9)


def test_graph_nodes_with_several_outputs(rng):
    # control flow, eigh and slogdet are primitives with several results
    x = rng.standard_normal(3)
    M = lambda x: dnp.outer(x, x) + dnp.diag(dnp.exp(x))  # noqa: E731
    cases = [
        lambda x: diffprog.cond(x[0] > 0, lambda x: dnp.sum(dnp.sin(x) * x),
                                lambda x: dnp.sum(x ** 3), x),
        lambda x: dnp.sum(diffprog.fori_loop(0, 3, lambda i, c: dnp.sin(c) * x, x)),
        lambda x: dnp.sum(dnp.linalg.eigh(M(x)).eigenvalues ** 2),
        lambda x: dnp.linalg.slogdet(M(x))[1] * dnp.sum(x),
    ]
    for f in cases:
        _, (g,), H = graph_hessian_backprop(f, None, x)
        np.testing.assert_allclose(H, _hess(f, x), atol=1e-10)
        np.testing.assert_allclose(g, diffprog.grad(f)(x), atol=1e-12)


def test_graph_errors():
    with pytest.raises(ValueError, match="scalar"):
        graph_hessian_backprop(lambda x: x * 2.0, None, np.ones(2))
    with pytest.raises(TypeError):
        graph_hessian_backprop(3, None)
    with pytest.raises(TypeError, match="example arguments"):
        block_diag_hessian_approx(lambda x: x, None)


# ---------------------------------------------------------------- AD-76 block-diagonal Hessian


def _param_net(rng):
    dims = [3, 4, 2]
    params = [rng.standard_normal((dims[k + 1], dims[k])) for k in range(2)]
    layers = [lambda s, W: dnp.tanh(W @ s), lambda s, W: dnp.sin(W @ s)]
    return layers, params, rng.standard_normal(3)


def test_ad76_block_diag_hessian_exact_blocks(rng):
    layers, params, x = _param_net(rng)
    loss = _quad_loss(rng.standard_normal((2, 2)))
    R0, Hs = block_diag_hessian(layers, loss, x, params)
    sizes = [x.size] + [W.size for W in params]
    shapes = [x.shape] + [W.shape for W in params]
    offs = np.concatenate([[0], np.cumsum(sizes)])

    def total(z):
        parts = [z[offs[i]:offs[i + 1]].reshape(shapes[i]) for i in range(3)]
        s = parts[0]
        for f, W in zip(layers, parts[1:], strict=True):
            s = f(s, W)
        return loss(s)

    full = _hess(total, np.concatenate([x.ravel()] + [W.ravel() for W in params]))
    np.testing.assert_allclose(R0, full[:3, :3], atol=1e-8)
    for k in range(2):
        blk = full[offs[k + 1]:offs[k + 2], offs[k + 1]:offs[k + 2]]
        np.testing.assert_allclose(Hs[k], blk, atol=1e-8)
    # the off-diagonal blocks are not zero: the block form really drops information
    assert np.abs(full[offs[1]:offs[2], offs[2]:]).max() > 1e-3


# ---------------------------------------------------------------- AD-77 block Gauss-Newton


def test_ad77_block_gn_mlp_kronecker(rng):
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    x = rng.standard_normal(3)
    A = rng.standard_normal((2, 2))
    loss = lambda z: 0.5 * dnp.sum((A @ z) ** 2)  # noqa: E731  quadratic loss
    sizes = [W.size for W in Ws]

    def net(w):
        W1, W2 = w[:12].reshape(4, 3), w[12:].reshape(2, 4)
        return dnp.tanh(W2 @ dnp.tanh(W1 @ x))

    w = np.concatenate([W.ravel() for W in Ws])
    J = np.asarray(diffprog.jacfwd(net)(w))
    GN = J.T @ (A.T @ A) @ J
    offs = np.concatenate([[0], np.cumsum(sizes)])
    Gk = mlp_block_diag_gn(Ws, dnp.tanh, loss, x)
    Gg = block_diag_gn([lambda s, W: dnp.tanh(W @ s)] * 2, loss, x, Ws)
    assert len(Gk) == len(Gg) == 2  # G_1..G_K, no "G_0"
    for k in range(2):
        blk = GN[offs[k]:offs[k + 1], offs[k]:offs[k + 1]]
        np.testing.assert_allclose(Gk[k], blk, atol=1e-9)
        np.testing.assert_allclose(Gg[k], blk, atol=1e-9)
        Jk, ss = mlp_block_diag_gn(Ws, dnp.tanh, loss, x, kron=False)[k]
        np.testing.assert_allclose(np.kron(Jk, ss), Gk[k], atol=1e-14)
    with pytest.raises(ValueError, match="shape"):
        mlp_block_diag_gn([Ws[1], Ws[0]], dnp.tanh, loss, x)
    with pytest.raises(ValueError, match="parameter arrays"):
        block_diag_gn([lambda s, W: W @ s], loss, x, Ws)


# ---------------------------------------------------------------- AD-78 graph block approximation


def test_ad78_equals_ad74_on_chains(rng):
    chain, x = _mlp3(rng)
    loss = _quad_loss(rng.standard_normal((3, 2)))
    f = _compose(chain, loss)
    _, (g,), (B,) = block_diag_hessian_approx(f, None, x)
    _, r0, R0 = hessian_backprop(chain, loss, x)
    np.testing.assert_allclose(B, R0, atol=1e-10)
    np.testing.assert_allclose(g, r0, atol=1e-12)


def test_ad78_is_an_approximation_on_graphs():
    # s1 = w, s2 = w, s3 = s1·s2, ℓ = s3: returns 0 while the true Hessian is 2
    f = lambda w: (1.0 * w) * (1.0 * w)  # noqa: E731
    _, (g,), (B,) = block_diag_hessian_approx(f, None, 1.3)
    assert B[0, 0] == 0.0
    np.testing.assert_allclose(_hess(f, 1.3), [[2.0]], atol=1e-14)
    np.testing.assert_allclose(g, 2.6, atol=1e-14)  # gradients stay exact


# ---------------------------------------------------------------- AD-79 Becker–LeCun on chains


def test_ad79_exact_when_all_R_diagonal(rng):
    c = rng.standard_normal(4)
    chain = [dnp.tanh, lambda s: c * s, dnp.sin]
    loss = lambda z: dnp.sum(z ** 3) + dnp.sum(dnp.exp(z))  # noqa: E731  separable
    x = rng.standard_normal(4)
    f = _compose(chain, loss)
    d0, r0 = diag_hessian_approx(chain, loss, x)
    np.testing.assert_allclose(d0, np.diag(_hess(f, x)), atol=1e-10)
    np.testing.assert_allclose(r0, diffprog.grad(f)(x), atol=1e-12)


def test_ad79_differs_on_generic_mlp(rng):
    W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    chain = [lambda s: dnp.tanh(W1 @ s), lambda s: dnp.tanh(W2 @ s)]
    loss = _quad_loss(rng.standard_normal((2, 2)))
    x = rng.standard_normal(3)
    f = _compose(chain, loss)
    exact = np.diag(_hess(f, x))
    d0, r0 = diag_hessian_approx(chain, loss, x)
    d0f, _ = diag_hessian_approx(chain, loss, x, init="full_first")
    np.testing.assert_allclose(r0, diffprog.grad(f)(x), atol=1e-12)
    err = np.abs(d0 - exact).max()
    assert err > 1e-3, err  # an approximation: recorded, not asserted equal
    assert np.abs(d0f - exact).max() > 1e-3
    assert np.abs(d0f - d0).max() > 1e-6  # the two initialisations differ


def test_ad79_full_first_exact_for_one_layer(rng):
    W = rng.standard_normal((3, 3))
    chain = [lambda s: dnp.tanh(W @ s)]
    loss = _quad_loss(rng.standard_normal((3, 3)))  # non-separable: ∇²ℓ not diagonal
    x = rng.standard_normal(3)
    exact = np.diag(_hess(_compose(chain, loss), x))
    d_full, _ = diag_hessian_approx(chain, loss, x, init="full_first")
    d_diag, _ = diag_hessian_approx(chain, loss, x, init="diag")
    np.testing.assert_allclose(d_full, exact, atol=1e-10)
    assert np.abs(d_diag - exact).max() > 1e-3
    with pytest.raises(ValueError, match="init"):
        diag_hessian_approx(chain, loss, x, init="bogus")


# ---------------------------------------------------------------- AD-80 graphs


def test_ad80_graph_equals_chain(rng):
    W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    chain = [lambda s: dnp.tanh(W1 @ s), dnp.sin, lambda s: dnp.tanh(W2 @ s)]
    loss = _quad_loss(rng.standard_normal((2, 2)))
    x = rng.standard_normal(3)
    d_chain, r_chain = diag_hessian_approx(chain, loss, x)
    (d_graph,), (r_graph,) = diag_hessian_approx_graph(_compose(chain, lambda z: z), loss, x)
    np.testing.assert_allclose(d_graph, d_chain, atol=1e-10)
    np.testing.assert_allclose(r_graph, r_chain, atol=1e-12)


@pytest.mark.parametrize("prim", ["exp", "tanh", "multiply", "matmul", "sum"])
def test_ad80_oracle_is_diag_of_sandwich(prim, rng):
    fs = {"exp": (dnp.exp, 1), "tanh": (dnp.tanh, 1), "multiply": (lambda a, b: a * b, 2),
          "matmul": (lambda a, b: a.reshape(3, 3) @ b, 2),
          "sum": (lambda a: dnp.sum(a * a).reshape(1), 1)}
    f, nargs = fs[prim]
    args = [rng.standard_normal(9 if (prim == "matmul" and i == 0) else 3) for i in range(nargs)]
    out = np.asarray(f(*args)).ravel()
    r, d = rng.standard_normal(out.size), rng.random(out.size)
    parts = diag_oracle(f, args, r, d)
    z0 = np.concatenate(args)
    sizes = np.cumsum([a.size for a in args])[:-1]

    def g(z):
        return f(*[z[a:b] for a, b in zip([0, *sizes], [*sizes, z0.size], strict=True)]).ravel()

    J = np.asarray(diffprog.jacfwd(g)(z0))
    H = _hess(lambda z: dnp.sum(r * g(z)), z0)
    expected = np.diag(H + J.T @ np.diag(d) @ J)
    np.testing.assert_allclose(np.concatenate(parts), expected, atol=1e-12)


# ---------------------------------------------------------------- AD-81 MLP diagonal (Example 9.4)


def _mlp_total(Ws_shapes, act, loss, x, y):
    sizes = [int(np.prod(s)) for s in Ws_shapes]
    offs = np.concatenate([[0], np.cumsum(sizes)])

    def total(w):
        s = x
        for k, shp in enumerate(Ws_shapes):
            s = act(w[offs[k]:offs[k + 1]].reshape(shp) @ s)
        return loss(s, y)

    return total, offs


def test_ad81_mlp_diag(rng):
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    x, y = rng.standard_normal(3), rng.standard_normal(2)
    loss = lambda s, y: dnp.sum((s - y) ** 2) + dnp.sum(s ** 3)  # noqa: E731
    gs, hs = mlp_diag_hessian(Ws, dnp.tanh, loss, x, y)
    total, offs = _mlp_total([W.shape for W in Ws], dnp.tanh, loss, x, y)
    w = np.concatenate([W.ravel() for W in Ws])
    g = np.asarray(diffprog.grad(total)(w))
    H = np.diag(_hess(total, w))
    for k in range(3):
        np.testing.assert_allclose(gs[k].ravel(), g[offs[k]:offs[k + 1]], atol=1e-12)
    np.testing.assert_allclose(hs[2].ravel(), H[offs[2]:], atol=1e-10)  # last layer exact
    # earlier layers: an approximation that differs from the exact diagonal
    assert np.abs(hs[0].ravel() - H[:offs[1]]).max() > 1e-3


def test_ad81_single_layer_fully_exact(rng):
    Ws = [rng.standard_normal((3, 4))]
    x, y = rng.standard_normal(4), rng.standard_normal(3)
    loss = lambda s, y: 0.5 * dnp.sum((s - y) ** 2)  # noqa: E731
    gs, hs = mlp_diag_hessian(Ws, dnp.sin, loss, x, y)
    total, _ = _mlp_total([(3, 4)], dnp.sin, loss, x, y)
    w = Ws[0].ravel()
    np.testing.assert_allclose(gs[0].ravel(), diffprog.grad(total)(w), atol=1e-12)
    np.testing.assert_allclose(hs[0].ravel(), np.diag(_hess(total, w)), atol=1e-10)
