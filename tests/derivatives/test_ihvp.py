"""Inverse-Hessian-vector products (spec AD-66, AD-69; Book §9.4)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.core.pytree import ravel_pytree
from diffprog.derivatives.ihvp import ihvp, make_ihvp
from diffprog.scipy.sparse.linalg import CGBreakdownError

RNG = np.random.default_rng(3)
N, P = 40, 20
X = RNG.standard_normal((N, P))
Y = np.where(RNG.random(N) < 0.5, -1.0, 1.0)
LAM = 0.1
W = 0.3 * RNG.standard_normal(P)
U = RNG.standard_normal(P)


def logreg(w):  # ℓ2-regularized logistic regression: strictly convex
    return dnp.mean(dnp.logaddexp(0.0, -Y * dnp.matmul(X, w))) + 0.5 * LAM * dnp.vdot(w, w)


H = diffprog.hessian(logreg)(W)


@pytest.mark.parametrize("solver", ["cg", "gmres", "bicgstab", "direct"])
def test_ad66_ihvp_logistic_regression(solver):
    v = ihvp(logreg, W, U, solver=solver)
    assert np.linalg.norm(H @ v - U) <= 1e-8
    np.testing.assert_allclose(v, np.linalg.solve(H, U), rtol=0, atol=1e-8)


def test_ad69_direct_uses_p_hvps_and_agrees_with_cg():
    f = diffprog.count_calls(logreg)
    v_direct = ihvp(f, W, U, solver="direct")
    assert f.calls == P  # one fwd-rev HVP (one pass of f) per column
    np.testing.assert_allclose(v_direct, ihvp(logreg, W, U, solver="cg"), rtol=0, atol=1e-8)


def test_damping_solves_shifted_system():
    v = ihvp(logreg, W, U, damping=0.5)
    np.testing.assert_allclose(v, np.linalg.solve(H + 0.5 * np.eye(P), U), rtol=0, atol=1e-9)
    v = ihvp(logreg, W, U, damping=0.5, solver="direct")
    np.testing.assert_allclose(v, np.linalg.solve(H + 0.5 * np.eye(P), U), rtol=0, atol=1e-9)


def saddle(w):  # Hessian diag(2, -2, 4): indefinite, invertible
    return w[0] ** 2 - w[1] ** 2 + 2 * w[2] ** 2


def test_cg_breakdown_on_nonconvex_f_raises_and_gmres_works():
    u = np.array([1.0, 1.0, 1.0])
    with pytest.raises(CGBreakdownError, match="ihvp: CG broke down"):
        ihvp(saddle, np.zeros(3), u)
    for solver in ("gmres", "bicgstab", "direct"):
        np.testing.assert_allclose(ihvp(saddle, np.zeros(3), u, solver=solver),
                                   [0.5, -0.5, 0.25], rtol=0, atol=1e-10)


def test_nonconvergence_raises():
    with pytest.raises(RuntimeError, match="did not converge"):
        ihvp(logreg, W, U, maxiter=2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="ihvp: solver must be one of"):
        ihvp(logreg, W, U, solver="lu")
    with pytest.raises(ValueError, match="ihvp: damping"):
        ihvp(logreg, W, U, damping=-1.0)
    with pytest.raises(ValueError, match="hvp: method"):
        ihvp(logreg, W, U, method="nope")
    with pytest.raises(np.linalg.LinAlgError, match="ihvp"):
        ihvp(lambda w: w[0] ** 2, np.zeros(2), np.ones(2), solver="direct")


def test_pytree_parameters_and_operator_form():
    tree = {"a": W[:5], "b": W[5:]}
    f = lambda t: logreg(dnp.concatenate([t["a"], t["b"]]))  # noqa: E731
    u = {"a": U[:5], "b": U[5:]}
    expected = np.linalg.solve(H, U)
    for solver in ("cg", "direct"):
        v = ihvp(f, tree, u, solver=solver)
        np.testing.assert_allclose(ravel_pytree(v)[0], expected, rtol=0, atol=1e-8)
        Hinv = make_ihvp(f, tree, solver=solver)
        np.testing.assert_allclose(ravel_pytree(Hinv(u))[0], expected, rtol=0, atol=1e-8)


def test_ihvp_is_differentiable_in_u():
    c = RNG.standard_normal(P)
    g = diffprog.grad(lambda u: dnp.vdot(c, ihvp(logreg, W, u)))(U)
    np.testing.assert_allclose(g, np.linalg.solve(H, c), rtol=0, atol=1e-8)
