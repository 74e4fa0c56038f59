"""Tests of ``diffprog.numpy.linalg`` (book §8.4.1/§8.4.3: linear-algebra primitives).

Values are checked against NumPy and closed forms; derivatives against central finite
differences with ``check_grads`` (forward and reverse mode, to second order). Data seeds differ
from the ``check_grads`` direction seed so that random directions are never parallel to the data.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.numpy import linalg as la

BOTH = ("fwd", "rev")


def rng_(seed=1234):
    return np.random.default_rng(seed)


def well_conditioned(n, seed=1, batch=()):
    r = rng_(seed)
    return r.normal(size=batch + (n, n)) / np.sqrt(n) + 2.0 * np.eye(n)


def spd_of(x):
    """A symmetric positive-definite matrix built from any square ``x`` (differentiable)."""
    n = x.shape[-1]
    return dnp.matmul(x, dnp.swapaxes(x, -1, -2)) + n * np.eye(n, dtype=x.dtype)


def sym_of(x):
    return x + dnp.swapaxes(x, -1, -2)


def check(f, args, order=2, **kw):
    check_grads(f, args, order=order, modes=BOTH, seed=7, **kw)


# ----------------------------------------------------------------------------- values


def test_values_match_numpy():
    a = well_conditioned(4, 2)
    b = rng_(3).normal(size=(4, 2))
    s = a @ a.T + np.eye(4)
    np.testing.assert_allclose(la.inv(a), np.linalg.inv(a))
    np.testing.assert_allclose(la.solve(a, b), np.linalg.solve(a, b))
    np.testing.assert_allclose(la.solve(a, b[:, 0]), np.linalg.solve(a, b[:, 0]))
    np.testing.assert_allclose(la.det(a), np.linalg.det(a))
    sign, logdet = la.slogdet(a)
    np.testing.assert_allclose((sign, logdet), tuple(np.linalg.slogdet(a)))
    np.testing.assert_allclose(la.cholesky(s), np.linalg.cholesky(s))
    np.testing.assert_allclose(la.cholesky(s, upper=True), np.linalg.cholesky(s).T)
    w, v = la.eigh(s)
    np.testing.assert_allclose(w, np.linalg.eigh(s)[0])
    np.testing.assert_allclose(v @ np.diag(w) @ v.T, s, atol=1e-12)
    np.testing.assert_allclose(la.eigvalsh(s), np.linalg.eigvalsh(s))
    m = rng_(4).normal(size=(5, 3))
    u, sv, vh = la.svd(m, full_matrices=False)
    np.testing.assert_allclose(sv, np.linalg.svd(m, compute_uv=False))
    np.testing.assert_allclose(u @ np.diag(sv) @ vh, m, atol=1e-12)
    assert la.svd(m)[0].shape == (5, 5)
    q, r = la.qr(m)
    np.testing.assert_allclose(q @ r, m, atol=1e-12)
    np.testing.assert_allclose(r, np.linalg.qr(m)[1])
    np.testing.assert_allclose(la.qr(m, mode="r"), np.linalg.qr(m, mode="r"))
    np.testing.assert_allclose(la.pinv(m), np.linalg.pinv(m))
    np.testing.assert_allclose(la.matrix_power(a, 3), np.linalg.matrix_power(a, 3))
    np.testing.assert_allclose(la.matrix_power(a, -2), np.linalg.matrix_power(a, -2))
    np.testing.assert_allclose(la.matrix_power(a, 0), np.eye(4))
    chain = [rng_(i).normal(size=sh) for i, sh in enumerate([(3,), (3, 6), (6, 2), (2, 4)])]
    np.testing.assert_allclose(la.multi_dot(chain), np.linalg.multi_dot(chain))
    x, res, rank, svals = la.lstsq(m, b[:, 0].repeat(2)[:5])
    ref = np.linalg.lstsq(m, b[:, 0].repeat(2)[:5])
    np.testing.assert_allclose(x, ref[0])
    np.testing.assert_allclose(res, ref[1])
    assert rank == ref[2]


def test_named_tuples_like_numpy():
    s = np.diag([1.0, 2.0])
    assert la.eigh(s).eigenvalues.shape == (2,)
    assert la.svd(s).S.shape == (2,)
    assert la.qr(s).R.shape == (2, 2)
    assert la.slogdet(s).logabsdet == pytest.approx(np.log(2.0))


# ----------------------------------------------------------------------------- derivatives
A = well_conditioned(3, 11)
B = rng_(12).normal(size=(3, 2))
TALL = rng_(13).normal(size=(4, 3))
WIDE = rng_(14).normal(size=(3, 5))
X3 = rng_(15).normal(size=(3, 3))
BATCH = well_conditioned(3, 16, batch=(2,))


@pytest.mark.parametrize(
    "name,f,args",
    [
        ("inv", la.inv, (A,)),
        ("inv_batched", la.inv, (BATCH,)),
        ("solve", la.solve, (A, B)),
        ("solve_vector", la.solve, (A, B[:, 0])),
        ("solve_batched_a", la.solve, (BATCH, B)),
        ("solve_batched_vector", la.solve, (BATCH, B[:, 0])),
        ("det", la.det, (A,)),
        ("det_batched", la.det, (BATCH,)),
        ("slogdet", lambda a: la.slogdet(a).logabsdet, (A,)),
        ("slogdet_negative_det", lambda a: la.slogdet(a)[1], (A[::-1].copy(),)),
        ("cholesky", lambda x: la.cholesky(spd_of(x)), (X3,)),
        ("cholesky_upper", lambda x: la.cholesky(spd_of(x), upper=True), (X3,)),
        ("cholesky_batched", lambda x: la.cholesky(spd_of(x)), (BATCH,)),
        ("eigh_values", lambda x: la.eigh(sym_of(x))[0], (X3,)),
        # eigenvectors up to sign: the elementwise squares and a matrix function are invariant
        ("eigh_vectors", lambda x: la.eigh(sym_of(x))[1] ** 2, (X3,)),
        ("eigh_function", lambda x: _matrix_function(la.eigh(sym_of(x))), (X3,)),
        ("eigh_batched", lambda x: la.eigh(sym_of(x))[1] ** 2, (BATCH,)),
        ("eigvalsh", lambda x: la.eigvalsh(sym_of(x)), (X3,)),
        ("svd_values", lambda x: la.svd(x, compute_uv=False), (TALL,)),
        ("svd_tall", lambda x: _svd_invariants(la.svd(x, full_matrices=False)), (TALL,)),
        ("svd_wide", lambda x: _svd_invariants(la.svd(x, full_matrices=False)), (WIDE,)),
        ("svd_square_full", lambda x: _svd_invariants(la.svd(x)), (X3,)),
        ("svd_batched", lambda x: _svd_invariants(la.svd(x, full_matrices=False)), (BATCH,)),
        ("qr_tall", la.qr, (TALL,)),
        ("qr_square", la.qr, (A,)),
        ("qr_wide", la.qr, (WIDE,)),
        ("qr_r", lambda x: la.qr(x, mode="r"), (TALL,)),
        ("qr_batched", la.qr, (BATCH,)),
        ("pinv_tall", la.pinv, (TALL,)),
        ("pinv_wide", la.pinv, (WIDE,)),
        ("matrix_power", lambda a: la.matrix_power(a, 3), (A,)),
        ("matrix_power_negative", lambda a: la.matrix_power(a, -2), (A,)),
        ("multi_dot", lambda x, y, z: la.multi_dot([x, y, z]), (B[:, 0], A, TALL.T)),
        ("lstsq", lambda a, b: la.lstsq(a, b)[0], (TALL, B[:, 0].repeat(2)[:4])),
        ("lstsq_residuals", lambda a, b: la.lstsq(a, b)[1], (TALL, B[:, 0].repeat(2)[:4])),
    ],
)
def test_check_grads_second_order(name, f, args):
    check(f, args)


def _matrix_function(res):
    w, v = res
    return dnp.matmul(v * dnp.tanh(w)[..., None, :], dnp.swapaxes(v, -1, -2))


def _svd_invariants(res):
    u, s, vh = res
    k = s.shape[-1]
    # U ⊙ U, Vh ⊙ Vh and U Vh are invariant to the joint sign flips (u_k, v_k) -> -(u_k, v_k)
    return (u[..., :, :k] ** 2, vh[..., :k, :] ** 2,
            dnp.matmul(u[..., :, :k], vh[..., :k, :]), s)


@pytest.mark.parametrize(
    "ord,axis,shape",
    [
        (None, None, (5,)),
        (2, None, (5,)),
        (1, None, (5,)),
        (3, None, (5,)),
        (0.5, None, (5,)),
        (np.inf, None, (5,)),
        (-np.inf, None, (5,)),
        (None, 1, (3, 4)),
        (2, 0, (3, 4)),
        (None, None, (3, 4)),
        ("fro", None, (3, 4)),
        ("nuc", None, (3, 4)),
        (2, None, (3, 4)),
        (-2, None, (3, 4)),
        (1, None, (3, 4)),
        (-1, None, (3, 4)),
        (np.inf, None, (3, 4)),
        (-np.inf, None, (3, 4)),
        ("fro", (2, 0), (3, 2, 4)),
        ("nuc", (0, 2), (3, 2, 4)),
    ],
)
def test_norm_values_and_grads(ord, axis, shape):
    x = rng_(21).normal(size=shape)
    for keepdims in (False, True):
        got = la.norm(x, ord=ord, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(got, np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims))
    check(lambda y: la.norm(y, ord=ord, axis=axis), (x,))


def test_norm_keepdims_grad():
    x = rng_(22).normal(size=(3, 4))
    check(lambda y: la.norm(y, axis=1, keepdims=True), (x,))
    check(lambda y: la.norm(y, ord="nuc", keepdims=True), (x,))


def test_complex_holomorphic_rules():
    r = rng_(23)
    a = well_conditioned(3, 24) + 0.3j * r.normal(size=(3, 3))
    b = r.normal(size=(3,)) + 1j * r.normal(size=(3,))
    check(la.inv, (a,))
    check(la.solve, (a, b))
    check(la.det, (a,))
    check(lambda m: la.slogdet(m).logabsdet, (a,))
    check(lambda m: la.slogdet(m).sign, (a,))
    check(lambda z: la.norm(z), (b,))


# ----------------------------------------------------------------------------- closed forms


def test_grad_logabsdet_is_inverse_transpose():
    g = diffprog.grad(lambda a: la.slogdet(a)[1])(A)
    np.testing.assert_allclose(g, np.linalg.inv(A).T, rtol=1e-12)
    # spec FUND-88: log det(2 I₃) = 3 log 2, gradient ½ I
    val, g = diffprog.value_and_grad(lambda a: la.slogdet(a)[1])(2 * np.eye(3))
    assert val == pytest.approx(3 * np.log(2))
    np.testing.assert_allclose(g, 0.5 * np.eye(3))
    # second order: d²/dt² log det(A + tV) = -tr(A⁻¹ V A⁻¹ V)
    v = rng_(31).normal(size=(3, 3))
    ai = np.linalg.inv(A)
    hv = diffprog.jvp(diffprog.grad(lambda a: la.slogdet(a)[1]), (A,), (v,))[1]
    assert np.sum(hv * v) == pytest.approx(-np.trace(ai @ v @ ai @ v), rel=1e-10)


def test_grad_det_is_det_times_inverse_transpose():
    g = diffprog.grad(la.det)(A)
    np.testing.assert_allclose(g, np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-12)


def test_grad_trace_inverse():
    # d tr(A⁻¹) = -tr(A⁻¹ dA A⁻¹)  =>  ∇ = -(A⁻²)ᵀ
    g = diffprog.grad(lambda a: dnp.trace(la.inv(a)))(A)
    ai = np.linalg.inv(A)
    np.testing.assert_allclose(g, -(ai @ ai).T, rtol=1e-12)
    gf = diffprog.jacfwd(lambda a: dnp.trace(la.inv(a)))(A)
    np.testing.assert_allclose(gf, g, rtol=1e-12)


def test_eigenvalue_gradient_is_outer_product():
    s = sym_of(X3)
    w, v = np.linalg.eigh(s)
    for k in range(3):
        g = diffprog.grad(lambda m, k=k: la.eigvalsh(m)[k])(s)
        np.testing.assert_allclose(g, np.outer(v[:, k], v[:, k]), atol=1e-12)
    # spec FUND-88: λ_max(diag(1, 3)) = 3 with gradient diag(0, 1)
    val, g = diffprog.value_and_grad(lambda m: la.eigvalsh(m)[-1])(np.diag([1.0, 3.0]))
    assert val == 3.0
    np.testing.assert_allclose(g, np.diag([0.0, 1.0]), atol=1e-15)


def test_repeated_eigenvalues_keep_finite_value_gradients():
    # all eigenvalues equal: eigenvectors are not differentiable, but sum(w) = tr(A) is
    g = diffprog.grad(lambda m: dnp.sum(la.eigvalsh(m) ** 2))(np.eye(3))
    np.testing.assert_allclose(g, 2 * np.eye(3), atol=1e-12)
    g = diffprog.grad(lambda m: la.norm(m, "nuc"))(np.eye(3))
    np.testing.assert_allclose(g, np.eye(3), atol=1e-12)
    assert np.all(np.isfinite(diffprog.jacrev(lambda m: la.eigh(m)[1])(np.eye(2))))


def test_singular_value_gradients():
    m = TALL
    u, s, vh = np.linalg.svd(m, full_matrices=False)
    g = diffprog.grad(lambda x: la.norm(x, 2))(m)
    np.testing.assert_allclose(g, np.outer(u[:, 0], vh[0]), atol=1e-12)
    g = diffprog.grad(lambda x: la.norm(x, "nuc"))(m)
    np.testing.assert_allclose(g, u @ vh, atol=1e-12)


def test_cholesky_reconstructs_and_gradient_is_symmetric():
    s = spd_of(X3)
    L = la.cholesky(s)
    np.testing.assert_allclose(L @ L.T, s, atol=1e-12)
    g = diffprog.grad(lambda m: dnp.sum(dnp.log(dnp.diagonal(la.cholesky(m)))))(s)
    # Σ log L_ii = ½ log det A  =>  ∇ = ½ A⁻¹ (symmetric)
    np.testing.assert_allclose(g, 0.5 * np.linalg.inv(s), atol=1e-12)


def test_symmetrize_input_false_reads_one_triangle():
    x = rng_(41).normal(size=(3, 3))
    s = spd_of(x)
    s_bad = np.tril(s) + 5.0 * np.triu(np.ones((3, 3)), 1)  # garbage above the diagonal
    np.testing.assert_allclose(la.cholesky(s_bad, symmetrize_input=False), np.linalg.cholesky(s))
    np.testing.assert_allclose(la.cholesky(s_bad.T, upper=True, symmetrize_input=False),
                               np.linalg.cholesky(s_bad.T, upper=True))
    np.testing.assert_allclose(la.eigh(s_bad, symmetrize_input=False)[0],
                               np.linalg.eigh(s_bad)[0])
    np.testing.assert_allclose(la.eigh(s_bad.T, "U", symmetrize_input=False)[0],
                               np.linalg.eigh(s)[0])
    g = diffprog.grad(lambda m: la.eigvalsh(m, symmetrize_input=False)[-1])(s_bad)
    assert np.all(np.triu(g, 1) == 0)
    check(lambda m: la.cholesky(m, symmetrize_input=False), (s_bad,))
    check(lambda m: la.eigvalsh(m, symmetrize_input=False), (s_bad,))


def test_vector_norm_gradient_at_zero_is_zero():
    z = np.zeros(4)
    for ord in (None, 2, 3, 1.5):
        g = diffprog.grad(lambda x, o=ord: la.norm(x, o))(z)
        np.testing.assert_array_equal(g, np.zeros(4))
    _, t = diffprog.jvp(la.norm, (z,), (np.ones(4),))
    assert t == 0.0
    g = diffprog.grad(lambda x: la.norm(x, "fro"))(np.zeros((2, 2)))
    np.testing.assert_array_equal(g, np.zeros((2, 2)))
    x = rng_(42).normal(size=4)
    np.testing.assert_allclose(diffprog.grad(la.norm)(x), x / np.linalg.norm(x))


def test_pinv_moore_penrose_identities_and_gradient():
    a = TALL
    p = la.pinv(a)
    np.testing.assert_allclose(a @ p @ a, a, atol=1e-12)
    np.testing.assert_allclose(p @ a @ p, p, atol=1e-12)
    # for full column rank, A⁺ = (AᵀA)⁻¹Aᵀ: the two derivatives agree
    v = rng_(43).normal(size=a.shape)
    t1 = diffprog.jvp(la.pinv, (a,), (v,))[1]
    t2 = diffprog.jvp(lambda m: la.solve(m.T @ m, m.T), (a,), (v,))[1]
    np.testing.assert_allclose(t1, t2, atol=1e-12)


def test_hessian_and_jacobians_agree():
    f = lambda a: la.slogdet(a)[1] + dnp.sum(la.inv(a))
    h = diffprog.hessian(f)(A)
    assert h.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(h.reshape(9, 9), h.reshape(9, 9).T, atol=1e-10)
    jf = diffprog.jacfwd(la.inv)(A)
    jr = diffprog.jacrev(la.inv)(A)
    np.testing.assert_allclose(jf, jr, atol=1e-12)


# ----------------------------------------------------------------------------- float32


def test_float32_end_to_end():
    a = A.astype(np.float32)
    x = X3.astype(np.float32)
    fns = [
        lambda m: dnp.sum(la.inv(m)),
        lambda m: la.det(m),
        lambda m: la.slogdet(m)[1],
        lambda m: dnp.sum(la.solve(m, np.ones(3, np.float32))),
        lambda m: dnp.sum(la.cholesky(spd_of(m)) ** 2),
        lambda m: dnp.sum(la.eigvalsh(sym_of(m)) ** 3),
        lambda m: dnp.sum(_matrix_function(la.eigh(sym_of(m)))),
        lambda m: dnp.sum(la.svd(m, compute_uv=False) ** 2),
        lambda m: dnp.sum(la.qr(m)[1] ** 2),
        lambda m: dnp.sum(la.pinv(m)),
        lambda m: la.norm(m, "nuc") + la.norm(m) + la.norm(m, 1),
    ]
    for f in fns:
        for arg in (a, x):
            val, g = diffprog.value_and_grad(f)(arg)
            assert np.asarray(val).dtype == np.float32
            assert g.dtype == np.float32
            g64 = diffprog.grad(f)(arg.astype(np.float64))
            np.testing.assert_allclose(g, g64, rtol=2e-3, atol=2e-3)
            _, t = diffprog.jvp(f, (arg,), (np.ones_like(arg),))
            assert np.asarray(t).dtype == np.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"inv: argument 'a' must be square"):
        la.inv(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"det: argument 'a' .* at least 2 dimensions"):
        la.det(np.ones(3))
    with pytest.raises(ValueError, match=r"slogdet: argument 'a' must be square"):
        la.slogdet(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"solve: argument 'b'"):
        la.solve(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match=r"solve: argument 'b'"):
        la.solve(np.eye(3), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"cholesky: argument 'a' must be real"):
        la.cholesky(np.eye(2) + 0j)
    with pytest.raises(np.linalg.LinAlgError, match=r"cholesky: argument 'a' is not positive"):
        la.cholesky(-np.eye(2))
    with pytest.raises(np.linalg.LinAlgError, match=r"inv: argument 'a' is singular"):
        la.inv(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"eigh: UPLO"):
        la.eigh(np.eye(2), UPLO="X")
    with pytest.raises(ValueError, match=r"eigh: argument 'a' must be square"):
        la.eigh(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"inv: argument 'a' must be a float32/float64"):
        la.inv(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(TypeError, match=r"det: argument 'a' must be a float32/float64"):
        la.det(np.eye(2, dtype=np.float16))
    with pytest.raises(ValueError, match=r"qr: mode"):
        la.qr(np.eye(2), mode="economic")
    with pytest.raises(ValueError, match=r"norm: invalid norm order 'fro' for vectors"):
        la.norm(np.ones(3), "fro", axis=0)
    with pytest.raises(ValueError, match=r"norm: invalid norm order 3 for matrices"):
        la.norm(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match=r"norm: axis 2 is out of bounds"):
        la.norm(np.ones((2, 2)), axis=2)
    with pytest.raises(TypeError, match=r"matrix_power: exponent 'n' must be an integer"):
        la.matrix_power(np.eye(2), 1.5)
    with pytest.raises(ValueError, match=r"multi_dot: shapes"):
        la.multi_dot([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"lstsq: argument 'b'"):
        la.lstsq(np.ones((3, 2)), np.ones(4))


def test_underivable_cases_raise_when_differentiated():
    m = TALL
    # full_matrices=True is fine to evaluate, but its derivative is not defined for M != N
    assert la.svd(m)[0].shape == (4, 4)
    with pytest.raises(ValueError, match=r"svd: the derivative of full_matrices=True"):
        diffprog.jvp(lambda x: la.svd(x)[0], (m,), (np.ones_like(m),))
    with pytest.raises(ValueError, match=r"qr: the derivative of mode='complete'"):
        diffprog.grad(lambda x: dnp.sum(la.qr(x, mode="complete")[0]))(m)
    with pytest.raises(ValueError, match=r"qr: mode='raw' is not differentiable"):
        diffprog.grad(lambda x: dnp.sum(la.qr(x, mode="raw")[0]))(m)
    # integer input to a derivative is rejected by the engine
    with pytest.raises(TypeError):
        diffprog.grad(la.det)(np.eye(2, dtype=int))
