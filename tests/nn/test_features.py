"""Random Fourier features (book §4.8.7 contrast): spec row NET-77."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.features import RandomFourierFeatures, random_fourier_features


def rbf(X: np.ndarray, lengthscale: float) -> np.ndarray:
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * lengthscale**2))


def test_net77_rff_approximates_rbf_kernel_with_decreasing_error():
    """NET-77: Z Zᵀ ≈ RBF kernel; mean |error| < 0.05 at 5000 features and shrinks with D."""
    X = np.random.default_rng(0).normal(size=(12, 3))
    K = rbf(X, 1.5)
    errs = []
    for D in (50, 500, 5000):
        Z = random_fourier_features(X, D, rng=1, lengthscale=1.5)
        assert Z.shape == (12, D)
        errs.append(np.mean(np.abs(Z @ Z.T - K)))
    assert errs[2] < 0.05
    assert errs[0] > errs[1] > errs[2]


def test_net77_rff_module_is_deterministic_and_differentiable():
    """NET-77: same seed → same map; gradient in x matches FD; shapes and pytree leaves."""
    a = RandomFourierFeatures.init(3, 2, 64, lengthscale=0.7)
    b = RandomFourierFeatures.init(np.random.default_rng(3), 2, 64, lengthscale=0.7)
    np.testing.assert_array_equal(a.omega, b.omega)
    assert a.omega.shape == (2, 64) and a.phase.shape == (64,) and a.n_features == 64
    assert np.all((a.phase >= 0) & (a.phase < 2 * np.pi))
    x = np.array([[0.3, -0.2], [1.0, 0.5]])
    check_grads(a, (x,), order=2)
    g = diffprog.grad(lambda m: (m(x) ** 2).sum())(a)
    assert isinstance(g, RandomFourierFeatures) and g.omega.shape == a.omega.shape
    z32 = random_fourier_features(x.astype(np.float32), 16, rng=0)
    assert z32.dtype == np.float32


def test_net77_rff_bad_input():
    """NET-77 bad input: feature count, lengthscale, rng and input width are checked."""
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="random_fourier_features: argument 'n_features'"):
        random_fourier_features(X, 0, rng=0)
    with pytest.raises(ValueError, match="lengthscale"):
        random_fourier_features(X, 4, rng=0, lengthscale=-1.0)
    with pytest.raises(ValueError, match="random_fourier_features: argument 'rng'"):
        random_fourier_features(X, 4, rng=None)
    with pytest.raises(ValueError, match="argument 'x'"):
        random_fourier_features(1.0, 4, rng=0)
    with pytest.raises(ValueError, match="RandomFourierFeatures: input 'x'"):
        RandomFourierFeatures.init(0, 3, 4)(X)
