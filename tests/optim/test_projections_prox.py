"""Projections and proximal operators (OPT-39..48, OPT-41 simplex, OPT-46/47 prox)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.optim.projections import (
    projection_affine_set,
    projection_box,
    projection_hyperplane,
    projection_l1_ball,
    projection_l2_ball,
    projection_non_negative,
    projection_simplex,
)
from diffprog.optim.prox import (
    make_indicator,
    make_prox_from_projection,
    prox_elastic_net,
    prox_group_lasso,
    prox_l2,
    prox_lasso,
    prox_non_negative_lasso,
    prox_none,
    prox_nuclear_norm,
)

RNG = np.random.default_rng(0)
A_AFF = RNG.standard_normal((2, 5))
B_AFF = RNG.standard_normal(2)
A_HYP = RNG.standard_normal(5)

PROJECTIONS = {
    "box": lambda x: projection_box(x, (-0.5, 0.7)),
    "nonneg": projection_non_negative,
    "simplex": projection_simplex,
    "simplex3": lambda x: projection_simplex(x, 3.0),
    "l1": lambda x: projection_l1_ball(x, 1.3),
    "l2": lambda x: projection_l2_ball(x, 0.8),
    "hyperplane": lambda x: projection_hyperplane(x, (A_HYP, 0.4)),
    "affine": lambda x: projection_affine_set(x, (A_AFF, B_AFF)),
}

vec = arrays(np.float64, 5, elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False))


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
@settings(max_examples=30, deadline=None)
@given(x=vec, y=vec)
def test_idempotent_and_nonexpansive(name, x, y):
    P = PROJECTIONS[name]
    px, py = np.asarray(P(x)), np.asarray(P(y))
    np.testing.assert_allclose(P(px), px, atol=1e-9)
    assert np.linalg.norm(px - py) <= np.linalg.norm(x - y) + 1e-9


def _qp_projection(x, cons, bounds=None):
    res = minimize(
        lambda v: 0.5 * np.sum((v - x) ** 2),
        np.zeros_like(x),
        jac=lambda v: v - x,
        constraints=cons,
        bounds=bounds,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


def _sort_reference(x, z=1.0):
    # independent reference (Held/Wolfe/Crowder; Duchi et al. Fig. 1): pivot rho by loop
    u = np.sort(x)[::-1]
    rho, css = 0, 0.0
    for j in range(len(u)):
        css += u[j]
        if u[j] - (css - z) / (j + 1) > 0:
            rho, c = j, css
    theta = (c - z) / (rho + 1)
    return np.maximum(x - theta, 0)


def test_simplex_worked_example():
    np.testing.assert_allclose(projection_simplex(np.array([0.5, 1.2, -0.3])), [0.15, 0.85, 0.0])


def test_simplex_matches_qp_and_reference():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.standard_normal(6) * 2
        p = np.asarray(projection_simplex(x))
        assert np.all(p >= 0) and abs(p.sum() - 1) < 1e-12
        np.testing.assert_allclose(p, _sort_reference(x), atol=1e-12)
        q = _qp_projection(
            x,
            [{"type": "eq", "fun": lambda v: v.sum() - 1, "jac": lambda v: np.ones_like(v)}],
            bounds=[(0, None)] * 6,
        )
        np.testing.assert_allclose(p, q, atol=1e-6)
    # ties and batches
    np.testing.assert_allclose(projection_simplex(np.ones(4)), np.full(4, 0.25))
    X = rng.standard_normal((3, 5))
    np.testing.assert_allclose(
        projection_simplex(X), np.stack([_sort_reference(r) for r in X]), atol=1e-12
    )


def test_box_nonneg_l2_hyperplane_affine_closed_forms():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(5) * 3
    np.testing.assert_array_equal(projection_box(x, (-1.0, 1.0)), np.clip(x, -1, 1))
    lo, hi = -np.ones(5), np.arange(5.0)
    q = _qp_projection(x, [], bounds=list(zip(lo, hi, strict=True)))
    np.testing.assert_allclose(projection_box(x, (lo, hi)), q, atol=1e-7)
    p = np.asarray(projection_non_negative(x))
    assert np.all(p >= 0) and np.all(x - p <= 0) and abs(np.dot(x - p, p)) < 1e-12
    np.testing.assert_allclose(projection_l2_ball(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])
    np.testing.assert_array_equal(projection_l2_ball(np.array([0.1, 0.2]), 1.0), [0.1, 0.2])
    ph = np.asarray(projection_hyperplane(x, (A_HYP, 0.4)))
    assert abs(A_HYP @ ph - 0.4) < 1e-12
    pa = np.asarray(projection_affine_set(x, (A_AFF, B_AFF)))
    np.testing.assert_allclose(A_AFF @ pa, B_AFF, atol=1e-12)
    q = _qp_projection(x, [{"type": "eq", "fun": lambda v: A_AFF @ v - B_AFF}])
    np.testing.assert_allclose(pa, q, atol=1e-6)


def test_l1_ball_matches_qp_and_moreau():
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.standard_normal(5) * 2
        r = 1.3
        p = np.asarray(projection_l1_ball(x, r))
        assert np.abs(p).sum() <= r + 1e-12
        # Moreau: x = prox_{λ‖·‖_∞}(x) + λ·proj_{B_1}(x/λ); prox of λ‖·‖∞ computed by brute force
        lam = r
        n = len(x)
        cons = [{"type": "ineq", "fun": lambda z, n=n: z[n] - np.abs(z[:n])}]
        res = minimize(
            lambda z, n=n, x=x, lam=lam: 0.5 * np.sum((z[:n] - x) ** 2) + lam * z[n],
            np.append(np.zeros(n), np.abs(x).max()),
            constraints=cons,
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        res.x = res.x[:n]
        np.testing.assert_allclose(
            res.x + lam * np.asarray(projection_l1_ball(x / lam, 1.0)), x, atol=1e-5
        )
        # Moreau with prox_lasso: proj onto l∞ ball is the prox of the conjugate of ‖·‖₁
        np.testing.assert_allclose(prox_lasso(x, 1.0) + np.clip(x, -1, 1), x, atol=1e-12)


def test_simplex_jacobian_custom_jvp():
    x = np.array([0.5, 1.2, -0.3, 0.9])
    p = np.asarray(projection_simplex(x))
    s = (p > 0).astype(float)
    J = np.diag(s) - np.outer(s, s) / s.sum()
    np.testing.assert_allclose(diffprog.jacfwd(projection_simplex)(x), J, atol=1e-14)
    np.testing.assert_allclose(diffprog.jacrev(projection_simplex)(x), J, atol=1e-14)
    check_grads(projection_simplex, (x,), order=1)
    check_grads(lambda v: projection_l1_ball(v, 1.0), (x,), order=1)
    check_grads(lambda v: projection_l2_ball(v, 1.0), (x,), order=2)
    check_grads(
        lambda v: projection_affine_set(v, (A_AFF, B_AFF)), (RNG.standard_normal(5),), order=1
    )
    # no NaN at zero
    assert np.all(np.isfinite(diffprog.jacrev(lambda v: projection_l2_ball(v, 1.0))(np.zeros(3))))


def test_projection_errors():
    with pytest.raises(ValueError):
        projection_box(np.zeros(2), (1.0, 0.0))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            projection_simplex(np.zeros(3), bad)
        with pytest.raises(ValueError):
            projection_l1_ball(np.zeros(3), bad)
        with pytest.raises(ValueError):
            projection_l2_ball(np.zeros(3), bad)
    with pytest.raises(ValueError):
        projection_hyperplane(np.zeros(3), (np.zeros(3), 1.0))
    with pytest.raises(ValueError):
        projection_hyperplane(np.zeros(3), (np.ones(2), 1.0))
    with pytest.raises(ValueError):
        projection_affine_set(np.zeros(3), (A_AFF, B_AFF))


# ---------------------------------------------------------------- proximal operators


def test_prox_lasso_values_and_subgradient_optimality():
    np.testing.assert_array_equal(prox_lasso(np.array([3.0, -0.5, 1.0]), 1.0), [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(
        prox_non_negative_lasso(np.array([3.0, -0.5, 1.0]), 1.0), [2.0, 0.0, 0.0]
    )
    rng = np.random.default_rng(4)
    w = rng.standard_normal(50) * 2
    lam, gam = 0.7, 1.5
    v = np.asarray(prox_lasso(w, lam, gam))
    r = (w - v) / (gam * lam)  # must be a subgradient of ‖·‖₁ at v
    nz = v != 0
    np.testing.assert_allclose(r[nz], np.sign(v[nz]), atol=1e-12)
    assert np.all(np.abs(r[~nz]) <= 1 + 1e-12)


def test_prox_moreau_decomposition_l1_l2():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(6) * 2
    # (‖·‖₁)* = ι_{‖·‖∞≤1}, (‖·‖₂)* = ι_{‖·‖₂≤1}
    np.testing.assert_allclose(prox_lasso(x, 1.0) + projection_box(x, (-1.0, 1.0)), x, atol=1e-12)
    np.testing.assert_allclose(prox_l2(x, 1.0) + projection_l2_ball(x, 1.0), x, atol=1e-12)
    # with a step: prox_{γf}(x) + γ prox_{f*/γ}(x/γ) = x
    g = 0.3
    np.testing.assert_allclose(
        prox_l2(x, 1.0, g) + g * projection_l2_ball(x / g, 1.0), x, atol=1e-12
    )


def _brute_prox(f, x):
    res = minimize(
        lambda v: 0.5 * np.sum((v - x) ** 2) + f(v),
        x,
        method="Powell",
        options={"xtol": 1e-12, "ftol": 1e-15, "maxiter": 50000},
    )
    return res.x


def test_prox_group_elastic_nuclear_vs_bruteforce():
    x = np.array([3.0, 4.0, 0.1, -1.0, 2.0])
    groups = [np.array([0, 1]), np.array([2]), np.array([3, 4])]
    v = np.asarray(prox_group_lasso(x, 1.0, 1.0, groups))
    np.testing.assert_allclose(v[:3], [2.4, 3.2, 0.0])
    bf = _brute_prox(lambda u: sum(np.linalg.norm(u[g]) for g in groups), x)
    np.testing.assert_allclose(v, bf, atol=1e-4)
    lab = np.array([0, 0, 1, 2, 2])
    np.testing.assert_allclose(prox_group_lasso(x, 1.0, 1.0, lab), v)
    z = prox_group_lasso(np.zeros(5), 1.0, 1.0, lab)
    assert np.all(np.asarray(z) == 0)
    assert np.all(
        np.isfinite(diffprog.jacrev(lambda u: prox_group_lasso(u, 1.0, 1.0, lab))(np.zeros(5)))
    )
    en = np.asarray(prox_elastic_net(x, (0.5, 2.0), 0.7))
    bf = _brute_prox(lambda u: 0.7 * (0.5 * np.abs(u).sum() + np.sum(u * u)), x)
    np.testing.assert_allclose(en, bf, atol=1e-4)
    X = np.random.default_rng(6).standard_normal((4, 3))
    P = np.asarray(prox_nuclear_norm(X, 0.5))
    s = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(
        np.linalg.svd(P, compute_uv=False), np.maximum(s - 0.5, 0), atol=1e-12
    )
    np.testing.assert_allclose(
        prox_nuclear_norm(np.diag([3.0, 0.5]), 1.0), np.diag([2.0, 0.0]), atol=1e-14
    )


def test_prox_none_indicator_and_grads():
    x = np.array([-1.0, 0.3, 2.0])
    np.testing.assert_array_equal(prox_none(x), x)
    prox = make_prox_from_projection(projection_simplex)
    for g in (0.1, 1.0, 10.0):
        np.testing.assert_allclose(prox(x, scaling=g), projection_simplex(x))
    boxprox = make_prox_from_projection(projection_box)
    np.testing.assert_allclose(boxprox(x, (0.0, 1.0)), [0.0, 0.3, 1.0])
    ind = make_indicator(projection_non_negative)
    assert ind(np.array([1.0, 0.0])) == 0.0 and ind(x) == np.inf
    y = np.array([-2.0, 0.3, 1.7, 0.05])
    check_grads(lambda u: prox_lasso(u, 0.5, 1.0), (y,), order=2)
    check_grads(lambda u: prox_l2(u, 0.5), (y,), order=2)
    check_grads(lambda u: prox_elastic_net(u, (0.5, 1.0)), (y,), order=1)
    check_grads(lambda u: prox_nuclear_norm(u, 0.3), (np.array([[3.0, 1.0], [0.5, 2.0]]),), order=1)
    # derivative w.r.t. the regularization strength
    assert float(diffprog.grad(lambda lam: dnp.sum(dnp.abs(prox_lasso(y, lam))))(0.5)) == -2.0


def test_prox_errors():
    with pytest.raises(ValueError):
        prox_lasso(np.zeros(2), -1.0)
    with pytest.raises(ValueError):
        prox_lasso(np.zeros(2), 1.0, 0.0)
    with pytest.raises(ValueError):
        prox_group_lasso(np.zeros(3), 1.0, 1.0, [[0, 1], [1, 2]])
    with pytest.raises(ValueError):
        prox_group_lasso(np.zeros(3), 1.0, 1.0, [[0, 1]])
    with pytest.raises(ValueError):
        prox_nuclear_norm(np.zeros(3), 1.0)
    with pytest.raises(TypeError):
        prox_elastic_net(np.zeros(3), 1.0)
