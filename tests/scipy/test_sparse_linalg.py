"""Matrix-free Krylov solvers (spec AD-67, AD-68; Book §9.4.2)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
import diffprog.scipy
from diffprog.scipy.sparse.linalg import CGBreakdownError, bicgstab, cg, gmres

RNG = np.random.default_rng(1)


def spd_with_spectrum(eigs, seed=0):
    n = len(eigs)
    Qm, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (Qm * np.asarray(eigs, dtype=float)) @ Qm.T


def test_subpackage_is_reachable_from_diffprog_scipy():
    assert diffprog.scipy.sparse.linalg.cg is cg


def test_ad67_cg_spd_condition_10():
    A = spd_with_spectrum(np.linspace(1.0, 10.0, 50))
    b = RNG.standard_normal(50)
    iters = []
    x, info = cg(A, b, tol=0, atol=1e-11, maxiter=50, callback=iters.append)
    assert info == 0 and len(iters) <= 50
    assert np.linalg.norm(A @ x - b) <= 1e-10
    # matvec form gives the same result
    x2, info2 = cg(lambda v: A @ v, b, tol=0, atol=1e-11, maxiter=50)
    assert info2 == 0
    np.testing.assert_allclose(x2, x, rtol=0, atol=1e-12)


def test_ad67_cg_converges_in_three_iterations_for_three_distinct_eigenvalues():
    A = spd_with_spectrum([1.0] * 10 + [3.0] * 10 + [7.0] * 10, seed=3)
    b = RNG.standard_normal(30)
    iters = []
    x, info = cg(A, b, tol=1e-10, callback=iters.append)
    assert info == 0 and len(iters) <= 3
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=0, atol=1e-9)


def test_ad67_cg_reports_breakdown_on_indefinite_operator():
    A = spd_with_spectrum([-2.0, -1.0, 1.0, 3.0, 4.0], seed=5)
    b = np.ones(5)
    x, info = cg(A, b)
    assert info == -1
    assert np.all(np.isfinite(x))
    with pytest.raises(CGBreakdownError, match="cg: breakdown"):
        cg(A, b, raise_on_breakdown=True)
    with pytest.raises(CGBreakdownError):
        cg(-np.eye(3), np.ones(3), raise_on_breakdown=True)  # negative definite: first step


def test_cg_reports_nonconvergence_with_positive_info():
    A = spd_with_spectrum(np.logspace(0, 6, 40))
    x, info = cg(A, np.ones(40), maxiter=3)
    assert info == 3


def test_cg_tol_semantics_squared_residual_of_alg_9_1():
    # Alg 9.1's ⟨r, r⟩ ≤ ε is tol=0, atol=sqrt(ε)
    A = spd_with_spectrum(np.linspace(1.0, 5.0, 20))
    b = np.ones(20)
    eps = 1e-20
    x, info = cg(A, b, tol=0.0, atol=np.sqrt(eps))
    r = b - A @ x
    assert info == 0 and r @ r <= eps


def test_bad_inputs_name_function_and_argument():
    with pytest.raises(ValueError, match="cg: the matrix argument A must be square"):
        cg(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="gmres: the matrix argument A must be square"):
        gmres(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="bicgstab: A has shape"):
        bicgstab(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="cg: the matrix argument A must be symmetric"):
        cg(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match="gmres: restart"):
        gmres(np.eye(2), np.ones(2), restart=0)


def _saddle(n=30, seed=7):
    eigs = np.concatenate([np.linspace(-5.0, -0.5, n // 2), np.linspace(0.5, 5.0, n - n // 2)])
    return spd_with_spectrum(eigs, seed=seed)


def test_ad68_gmres_indefinite_30x30():
    A = _saddle()
    b = RNG.standard_normal(30)
    x, info = gmres(A, b, tol=1e-12)
    assert info == 0
    assert np.linalg.norm(A @ x - b) <= 1e-8
    # restarted, and nonsymmetric
    B = A + 0.3 * np.triu(RNG.standard_normal((30, 30)), 1)
    x, info = gmres(lambda v: B @ v, b, tol=1e-12, restart=10, maxiter=2000)
    assert info == 0 and np.linalg.norm(B @ x - b) <= 1e-8


def test_bicgstab_nonsymmetric_and_indefinite():
    B = 4 * np.eye(25) + RNG.standard_normal((25, 25)) / 5
    b = RNG.standard_normal(25)
    x, info = bicgstab(B, b, tol=1e-12)
    assert info == 0 and np.linalg.norm(B @ x - b) <= 1e-9
    A = _saddle(20, seed=2)
    x, info = bicgstab(A, b[:20], tol=1e-12, maxiter=2000)
    assert info == 0 and np.linalg.norm(A @ x - b[:20]) <= 1e-8


def test_bicgstab_breakdown_is_reported():
    # rotation: ⟨r̂, A r̂⟩ = 0 gives a zero denominator at the first step
    A = np.array([[0.0, -1.0], [1.0, 0.0]])
    x, info = bicgstab(A, np.array([1.0, 0.0]))
    assert info == -1 and np.all(np.isfinite(x))


@pytest.mark.parametrize("solver", [cg, gmres, bicgstab])
def test_solvers_on_pytrees(solver):
    A = spd_with_spectrum(np.linspace(1.0, 4.0, 5), seed=11)

    def matvec(t):
        flat = dnp.concatenate([t["a"], t["b"]])
        out = dnp.matmul(A, flat)
        return {"a": out[:2], "b": out[2:]}

    b = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, -1.0, 0.5])}
    x, info = solver(matvec, b, tol=1e-12)
    assert info == 0
    flat = np.linalg.solve(A, np.concatenate([b["a"], b["b"]]))
    np.testing.assert_allclose(np.concatenate([x["a"], x["b"]]), flat, rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", [cg, gmres, bicgstab])
def test_solvers_are_differentiable_by_unrolling(solver):
    A = spd_with_spectrum(np.linspace(1.0, 3.0, 6), seed=4)
    b = RNG.standard_normal(6)
    c = RNG.standard_normal(6)
    # d/db cᵀA⁻¹b = A⁻ᵀc
    g = diffprog.grad(lambda bb: dnp.vdot(c, solver(A, bb, tol=1e-14)[0]))(b)
    np.testing.assert_allclose(g, np.linalg.solve(A.T, c), rtol=0, atol=1e-8)
    # d/dA of cᵀA⁻¹b along a direction E = −cᵀA⁻¹EA⁻¹b (through the matvec)
    E = RNG.standard_normal((6, 6))
    E = E + E.T
    t = diffprog.jvp(lambda AA: dnp.vdot(c, solver(lambda v: dnp.matmul(AA, v), b,
                                                   tol=1e-14)[0]), (A,), (E,))[1]
    expected = -c @ np.linalg.solve(A, E @ np.linalg.solve(A, b))
    assert abs(float(t) - expected) <= 1e-8
    # the same with A passed as a (traced) matrix
    t = diffprog.jvp(lambda AA: dnp.vdot(c, solver(AA, b, tol=1e-14)[0]), (A,), (E,))[1]
    assert abs(float(t) - expected) <= 1e-8


def test_zero_rhs_and_x0():
    A = spd_with_spectrum([1.0, 2.0, 3.0])
    for solver in (cg, gmres, bicgstab):
        x, info = solver(A, np.zeros(3))
        assert info == 0 and np.all(x == 0)
        b = np.ones(3)
        x, info = solver(A, b, x0=np.linalg.solve(A, b) + 1e-3, tol=1e-12)
        assert info == 0
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=0, atol=1e-10)
