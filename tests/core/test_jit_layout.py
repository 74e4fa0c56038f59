"""jit's matrix products written into their consumers' layout (``diffprog.core.layout_fusion``):
results equal closed forms computed with ``np.einsum``, and only the generated code changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog
import diffprog.numpy as dnp
from diffprog.core.layout_fusion import matmul_into_layout
from diffprog.nn import MultiHeadAttention, causal_mask

RNG = np.random.default_rng(0)


def _chains(jitted, *args):
    """``{matmul index: (perm, swap, shape)}`` of the compiled program for ``args``."""
    from diffprog.core.jit import compile_program

    prog = jitted._entry_for(args, {}).program
    return [c[2:] for c in compile_program(prog).layout_chains.values()]


def _merge_heads(p, v):
    b, h, n, _ = p.shape
    return dnp.reshape(dnp.transpose(p @ v, (0, 2, 1, 3)), (b, n, h * v.shape[-1]))


def test_heads_merged_after_a_product_are_written_in_place_of_the_copy():
    p, v = RNG.normal(size=(3, 4, 5, 6)), RNG.normal(size=(3, 4, 6, 7))
    j = diffprog.jit(_merge_heads)
    got = j(p, v)
    expected = np.einsum("bhij,bhjd->bihd", p, v).reshape(3, 5, 28)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert got.flags.c_contiguous
    assert _chains(j, p, v) == [((0, 2, 1, 3), False, (3, 5, 28))]


def test_a_product_whose_rows_land_last_is_computed_transposed():
    """``transpose(a @ b, (0, 3, 1, 2))`` moves the product's rows to the last axis: computed
    as ``bᵀ aᵀ`` with the permutation (0, 2, 1, 3)."""
    a, b = RNG.normal(size=(2, 3, 4, 5)), RNG.normal(size=(2, 3, 5, 6))
    f = lambda a, b: dnp.reshape(dnp.transpose(a @ b, (0, 3, 1, 2)), (2, 6, 12))  # noqa: E731
    j = diffprog.jit(f)
    expected = np.einsum("bhik,bhkj->bjhi", a, b).reshape(2, 6, 12)
    np.testing.assert_allclose(j(a, b), expected, rtol=1e-13)
    assert _chains(j, a, b) == [((0, 2, 1, 3), True, (2, 6, 12))]
    g = lambda a, b: dnp.swapaxes(a @ b, -1, -2)       # noqa: E731  (ends in a transpose)
    jg = diffprog.jit(g)
    out = jg(a, b)
    np.testing.assert_allclose(out, np.einsum("bhik,bhkj->bhji", a, b), rtol=1e-13)
    assert out.flags.c_contiguous and _chains(jg, a, b) == [((0, 1, 2, 3), True, None)]


def test_products_with_other_readers_or_unsuitable_layouts_are_left_alone():
    a, b = RNG.normal(size=(2, 3, 4, 5)), RNG.normal(size=(2, 3, 5, 6))

    def shared(a, b):                          # the product has a second reader
        y = a @ b
        return dnp.transpose(y, (0, 2, 1, 3)), dnp.sum(y)

    def rows_in_the_middle(a, b):              # neither rows nor columns on the last axis
        return dnp.transpose(a @ b, (0, 2, 3, 1))

    def stack_times_matrix(a, w):              # one GEMM of the stacked rows is better
        return dnp.transpose(a @ w, (0, 2, 1, 3))

    y = np.einsum("bhik,bhkj->bhij", a, b)
    for f, args, expected in [
        (shared, (a, b), (y.transpose(0, 2, 1, 3), y.sum())),
        (rows_in_the_middle, (a, b), (y.transpose(0, 2, 3, 1),)),
        (stack_times_matrix, (a, b[0, 0]), (np.einsum("bhik,kj->bihj", a, b[0, 0]),)),
    ]:
        j = diffprog.jit(f)
        out = j(*args)
        for got, want in zip(out if isinstance(out, tuple) else (out,), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13)
        assert _chains(j, *args) == []


def test_attention_gradients_under_jit_use_the_layouts_and_match_eager():
    """Forward (heads merged) and backward (gradients of both operands of each product) of a
    causal multi-head attention, jitted, against eager evaluation and finite differences."""
    mha = MultiHeadAttention.init(1, 16, 4)
    x = RNG.normal(size=(3, 8, 16))
    mask = causal_mask(8)

    def loss(m, x):
        return dnp.sum(dnp.tanh(m(x, mask=mask)) ** 2)

    grad = diffprog.grad(loss, argnums=(0, 1))
    jitted = diffprog.jit(grad)
    eager_m, eager_x = grad(mha, x)
    jit_m, jit_x = jitted(mha, x)
    np.testing.assert_allclose(jit_x, eager_x, rtol=1e-10, atol=1e-12)
    for e, g in zip(diffprog.tree_leaves(eager_m), diffprog.tree_leaves(jit_m), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    chains = _chains(jitted, mha, x)
    assert len(chains) == 4 and any(swap for _, swap, _ in chains)
    h = 1e-6
    d = RNG.normal(size=x.shape)
    fd = (loss(mha, x + h * d) - loss(mha, x - h * d)) / (2 * h)
    assert np.sum(jit_x * d) == pytest.approx(fd, rel=1e-6)


def test_transformations_of_a_jitted_function_replay_the_plain_program():
    """``jvp`` and ``vmap`` of ``jit(f)`` see the traced matmul/transpose/reshape equations."""
    p, v = RNG.normal(size=(2, 3, 4, 4)), RNG.normal(size=(2, 3, 4, 5))
    j = diffprog.jit(_merge_heads)
    tp = RNG.normal(size=p.shape)
    _, tangent = diffprog.jvp(j, (p, v), (tp, np.zeros_like(v)))
    np.testing.assert_allclose(tangent, np.einsum("bhij,bhjd->bihd", tp, v).reshape(2, 4, 15),
                               rtol=1e-13)
    batched = diffprog.vmap(j)(np.stack([p, 2 * p]), np.stack([v, v]))
    np.testing.assert_allclose(batched[1], 2 * _merge_heads(p, v), rtol=1e-13)


def test_matmul_into_layout_float32_and_broadcast_batch():
    a = RNG.normal(size=(1, 3, 4, 5)).astype(np.float32)
    b = RNG.normal(size=(2, 1, 5, 6)).astype(np.float32)
    out = matmul_into_layout(a, b, perm=(0, 2, 1, 3), swap=False, shape=None)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3, 6) and out.flags.c_contiguous
    np.testing.assert_allclose(out, np.matmul(a, b).transpose(0, 2, 1, 3), rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.tuples(*[st.integers(1, 4)] * 5), st.permutations(range(4)), st.booleans(),
       st.booleans())
def test_random_permutations_of_products_match_numpy(dims, perm, merge, use_float32):
    """Any transpose (then optionally a reshape merging the last two axes) of a product of two
    stacks, jitted, equals NumPy's result, whether or not the layout is fused."""
    b, h, m, k, n = dims
    dtype = np.float32 if use_float32 else np.float64
    a = RNG.normal(size=(b, h, m, k)).astype(dtype)
    c = RNG.normal(size=(b, h, k, n)).astype(dtype)
    perm = tuple(perm)
    shape = np.matmul(a, c).transpose(perm).shape
    target = shape[:2] + (shape[2] * shape[3],) if merge else None

    def f(a, c):
        y = dnp.transpose(a @ c, perm)
        return dnp.reshape(y, target) if merge else y

    expected = np.einsum("bhik,bhkj->bhij", a.astype(np.float64), c.astype(np.float64))
    expected = expected.transpose(perm)
    expected = expected.reshape(target) if merge else expected
    got = diffprog.jit(f)(a, c)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5 if use_float32 else 1e-12,
                               atol=1e-5 if use_float32 else 1e-12)


# ----------------------------------------------------------------------- concatenation elided
def _compiled(jitted, *args):
    from diffprog.core.jit import compile_program

    return compile_program(jitted._entry_for(args, {}).program)


def test_a_concatenation_of_fresh_pieces_is_written_by_its_producers():
    """``concatenate([x·2, sin(y), x + 1])``: the three ufuncs write into slices of one buffer
    allocated before the first of them; the concatenation is that buffer."""
    x, y = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 4))
    f = lambda x, y: dnp.concatenate([x * 2.0, dnp.sin(y), x + 1.0], axis=1)  # noqa: E731
    j = diffprog.jit(f)
    got = j(x, y)
    np.testing.assert_array_equal(got, np.hstack([x * 2.0, np.sin(y), x + 1.0]))
    assert got.flags.c_contiguous and got.flags.owndata
    compiled = _compiled(j, x, y)
    assert [len(p) for p in compiled.concats.values()] == [3]
    assert "out=b" in compiled.source and "np.concatenate" not in compiled.source


@pytest.mark.parametrize("case", ["input", "read_elsewhere", "repeated", "output"])
def test_concatenations_whose_pieces_live_on_are_copied(case):
    """A piece that is an argument, is read by another equation, appears twice, or is itself
    returned keeps its own buffer: the concatenation copies (and the values stay right)."""
    x = RNG.normal(size=(4, 3))
    fs = {
        "input": lambda x: dnp.concatenate([x, dnp.exp(x)]),
        "read_elsewhere": lambda x: dnp.concatenate([dnp.exp(x), dnp.cos(x)]) * dnp.sum(
            dnp.exp(x)),
        "repeated": lambda x: (lambda e: dnp.concatenate([e, e]))(dnp.exp(x)),
        "output": lambda x: (lambda e: (dnp.concatenate([e, dnp.cos(x)]), e))(dnp.exp(x)),
    }
    expected = {
        "input": np.vstack([x, np.exp(x)]),
        "read_elsewhere": np.vstack([np.exp(x), np.cos(x)]) * np.exp(x).sum(),
        "repeated": np.vstack([np.exp(x), np.exp(x)]),
        "output": (np.vstack([np.exp(x), np.cos(x)]), np.exp(x)),
    }[case]
    j = diffprog.jit(fs[case])
    got = j(x)
    if case == "output":
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-15)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-15)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert _compiled(j, x).concats == {}


def test_attention_backward_writes_dq_dk_dv_into_the_cotangent_of_one_projection():
    """Self-attention projects with one product ``x [W_q·s | W_k | W_v]`` split three ways; the
    split's transpose concatenates ``dQ, dK, dV``, which the jitted backward pass writes
    straight into one buffer (the three head-merging products). The gradients equal those of
    the per-head loop (three separate projections, Algorithm 4.2) and finite differences."""
    mha = MultiHeadAttention.init(2, 12, 3, use_bias=True)
    mha = mha.replace(q_proj=mha.q_proj.replace(b=RNG.normal(size=12)),
                      k_proj=mha.k_proj.replace(b=RNG.normal(size=12)))
    x = RNG.normal(size=(2, 5, 12))
    mask = causal_mask(5)

    def loss(m, x, impl="batched"):
        return dnp.sum(dnp.tanh(m(x, mask=mask, impl=impl)) ** 2)

    jitted = diffprog.jit(diffprog.grad(loss, argnums=(0, 1)))
    jit_m, jit_x = jitted(mha, x)
    loop_m, loop_x = diffprog.grad(lambda m, x: loss(m, x, "loop"), argnums=(0, 1))(mha, x)
    np.testing.assert_allclose(jit_x, loop_x, rtol=1e-10, atol=1e-12)
    for e, g in zip(diffprog.tree_leaves(loop_m), diffprog.tree_leaves(jit_m), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    compiled = _compiled(jitted, mha, x)
    (pieces,) = compiled.concats.values()
    assert len(pieces) == 3 and all(p in compiled.layout_chains for p, _ in pieces)
    h = 1e-6
    d = RNG.normal(size=x.shape)
    fd = (loss(mha, x + h * d) - loss(mha, x - h * d)) / (2 * h)
    assert np.sum(jit_x * d) == pytest.approx(fd, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2), st.lists(st.integers(0, 3), min_size=2,
                                                      max_size=4), st.booleans())
def test_random_concatenations_of_products_and_ufuncs_match_numpy(b, axis, sizes, use_float32):
    """Pieces of random sizes along a random axis, each a head-merged product (a layout chain:
    ``(b, n, h·2) → (b, h, n, 2)``, times the identity, heads merged back; where ``n, h > 1``,
    so that the merge is not a plain reshape) or a ufunc, jitted, equal NumPy's concatenation
    of the same pieces; every piece is written in place."""
    dtype = np.float32 if use_float32 else np.float64
    pieces = []
    for s in sizes:
        shape = [b, 3, 4]
        shape[axis] = 2 * s if axis == 2 else s
        pieces.append(RNG.normal(size=shape).astype(dtype))
    eye = np.eye(2, dtype=dtype)

    def f(*ps):
        out = []
        for i, p in enumerate(ps):
            if _as_product(i, p):
                m, n, d = p.shape
                heads = dnp.transpose(dnp.reshape(p, (m, n, d // 2, 2)), (0, 2, 1, 3))
                prod = dnp.matmul(heads, np.broadcast_to(eye, (m, d // 2, 2, 2)))
                out.append(dnp.reshape(dnp.transpose(prod, (0, 2, 1, 3)), (m, n, d)))
            else:
                out.append(dnp.exp(p))
        return dnp.concatenate(out, axis=axis)

    expected = np.concatenate([p if _as_product(i, p) else np.exp(p)
                               for i, p in enumerate(pieces)], axis=axis)
    j = diffprog.jit(f)
    got = j(*pieces)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6 if use_float32 else 1e-14)
    if expected.size:
        assert [len(p) for p in _compiled(j, *pieces).concats.values()] == [len(pieces)]


def _as_product(i, p):
    return i % 2 == 0 and p.shape[0] > 0 and p.shape[1] > 1 and p.shape[2] > 2


def test_concatenation_elided_inside_a_compiled_scan_body():
    """A scan body is compiled like any program: its concatenation of fresh pieces is written
    in place at every step, and the carried and stacked values equal a NumPy loop."""
    xs = RNG.normal(size=(5, 3))

    def f(xs):
        def body(c, x):
            y = dnp.concatenate([dnp.sin(x), dnp.cos(x) * c])
            return c + dnp.sum(y), y
        return diffprog.scan(body, 0.0, xs)

    c, ys = 0.0, []
    for x in xs:
        y = np.concatenate([np.sin(x), np.cos(x) * c])
        c, ys = c + y.sum(), ys + [y]
    got_c, got_ys = diffprog.jit(f)(xs)
    assert got_c == pytest.approx(c, rel=1e-13)
    np.testing.assert_allclose(got_ys, np.stack(ys), rtol=1e-13)
