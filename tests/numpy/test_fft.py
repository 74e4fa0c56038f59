"""Tests of ``diffprog.numpy.fft`` (book §14.2 Fourier transforms; §8.4.4 linear transposition).

The transforms are linear primitives with transpose rules. Checked here: values against NumPy;
derivatives of real-valued compositions against central finite differences (``check_grads``,
forward and reverse, second order); adjointness ``Re Σ (F x)·y = Re Σ x·(Fᵀ y)`` through
``diffprog.linear_transpose`` against explicit matrices of the transforms; the rfft/irfft pair;
float32; bad inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.derivatives import check_grads
from diffprog.numpy import fft

BOTH = ("fwd", "rev")
NORMS = (None, "backward", "ortho", "forward")


def rng_(seed):
    return np.random.default_rng(seed)


def power(z):
    """A real-valued, non-trivial quadratic of a complex array (no complex ``abs`` needed)."""
    re, im = dnp.real(z), dnp.imag(z)
    return dnp.sum(re * re + 1.3 * im * im + re * im)


def check(f, args, order=2):
    check_grads(f, args, order=order, modes=BOTH, seed=3)


X = rng_(101).normal(size=(3, 6))
X5 = rng_(102).normal(size=(5,))
Z = rng_(103).normal(size=(3, 6)) + 1j * rng_(104).normal(size=(3, 6))
W = rng_(105).normal(size=(3, 6))


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("norm", NORMS)
def test_values_match_numpy(norm):
    for n in (None, 4, 9):
        np.testing.assert_allclose(fft.fft(Z, n, 0 if n == 9 else -1, norm),
                                   np.fft.fft(Z, n, 0 if n == 9 else -1, norm))
        np.testing.assert_allclose(fft.ifft(Z, n, norm=norm), np.fft.ifft(Z, n, norm=norm))
        np.testing.assert_allclose(fft.rfft(X, n, norm=norm), np.fft.rfft(X, n, norm=norm))
        np.testing.assert_allclose(fft.irfft(Z, n, norm=norm), np.fft.irfft(Z, n, norm=norm))
        np.testing.assert_allclose(fft.irfft(Z, n, axis=0, norm=norm),
                                   np.fft.irfft(Z, n, axis=0, norm=norm))
    for s in (None, (4, 5), (2, 8)):
        np.testing.assert_allclose(fft.fft2(Z, s, norm=norm), np.fft.fft2(Z, s, norm=norm))
        np.testing.assert_allclose(fft.ifft2(Z, s, norm=norm), np.fft.ifft2(Z, s, norm=norm))
        np.testing.assert_allclose(fft.rfft2(X, s, norm=norm), np.fft.rfft2(X, s, norm=norm))
        np.testing.assert_allclose(fft.irfft2(Z, s, norm=norm), np.fft.irfft2(Z, s, norm=norm))
    x3 = rng_(106).normal(size=(2, 3, 4))
    np.testing.assert_allclose(fft.fftn(x3, norm=norm), np.fft.fftn(x3, norm=norm))
    np.testing.assert_allclose(fft.ifftn(x3, axes=(0, 2), norm=norm),
                               np.fft.ifftn(x3, axes=(0, 2), norm=norm))
    np.testing.assert_allclose(fft.rfftn(x3, s=(3, 5), norm=norm),
                               np.fft.rfftn(x3, s=(3, 5), axes=(1, 2), norm=norm))
    np.testing.assert_allclose(fft.irfftn(x3, s=(2, 3, 7), norm=norm),
                               np.fft.irfftn(x3, s=(2, 3, 7), axes=(0, 1, 2), norm=norm))


def test_irfft_ignores_imaginary_dc_and_nyquist_like_numpy():
    z = np.array([1.0 + 5j, 2.0 - 1j, 3.0 + 7j])
    np.testing.assert_allclose(fft.irfft(z), np.fft.irfft(z))
    np.testing.assert_allclose(fft.irfft(z), fft.irfft(z.real + 1j * np.array([0, -1.0, 0])))


# ----------------------------------------------------------------------------- finite differences


@pytest.mark.parametrize(
    "name,f,args",
    [
        ("fft", lambda x: power(fft.fft(x)), (X,)),
        ("fft_crop", lambda x: power(fft.fft(x, n=4)), (X,)),
        ("fft_pad_axis0_ortho", lambda x: power(fft.fft(x, n=8, axis=0, norm="ortho")), (X,)),
        ("ifft_forward", lambda x: power(fft.ifft(x * (1 + 0.5j), norm="forward")), (X,)),
        ("rfft", lambda x: power(fft.rfft(x)), (X,)),
        ("rfft_odd", lambda x: power(fft.rfft(x)), (X5,)),
        ("rfft_pad_ortho", lambda x: power(fft.rfft(x, n=9, norm="ortho")), (X,)),
        ("rfft_crop_axis0", lambda x: power(fft.rfft(x, n=2, axis=0)), (X,)),
        ("irfft_even", lambda x: dnp.sum(W * fft.irfft(fft.rfft(x) * (1 + 2j) + 0.3j, n=6) ** 2),
         (X,)),
        ("irfft_odd", lambda x: dnp.sum(fft.irfft(fft.fft(x) * (1 + 2j), n=7) ** 3), (X,)),
        ("irfft_real_input", lambda x: dnp.sum(fft.irfft(x, norm="ortho") ** 3), (X,)),
        ("irfft_forward_axis0", lambda x: dnp.sum(fft.irfft(x * (1 - 1j), axis=0,
                                                              norm="forward") ** 3), (X,)),
        ("fft2", lambda x: power(fft.fft2(x, s=(4, 5))), (X,)),
        ("ifft2", lambda x: power(fft.ifft2(x * (0.3 + 1j))), (X,)),
        ("fftn", lambda x: power(fft.fftn(x, axes=(0,))), (X,)),
        ("rfft2", lambda x: power(fft.rfft2(x)), (X,)),
        ("rfftn_s", lambda x: power(fft.rfftn(x, s=(2, 9))), (X,)),
        ("irfft2", lambda x: dnp.sum(fft.irfft2(fft.fft2(x) * (0.5 - 1j), s=(3, 5)) ** 3), (X,)),
        ("irfftn", lambda x: dnp.sum(fft.irfftn(x * (0.5 - 1j), s=(4, 8), norm="forward") ** 3),
         (X,)),
    ],
)
def test_real_compositions_match_finite_differences(name, f, args):
    check(f, args)


@pytest.mark.parametrize(
    "f,arg",
    [
        (fft.fft, X5), (fft.fft, Z), (fft.ifft, Z), (fft.rfft, X5), (fft.irfft, Z),
        (lambda z: fft.irfft(z, n=9), Z), (fft.fft2, Z), (fft.rfftn, X), (fft.irfftn, Z),
    ],
)
def test_complex_outputs_match_finite_differences(f, arg):
    # check_grads pairs complex values with Re Σ a·b, the engine's convention
    check(f, (arg,), order=1)


def test_parseval_gradients():
    x = X5
    n = x.size
    # Σ |fft x|² = n Σ x²  =>  ∇ = 2 n x
    g = diffprog.grad(lambda v: power(fft.fft(v)) - dnp.sum(dnp.real(fft.fft(v))
                                                               * dnp.imag(fft.fft(v)))
                      - 0.3 * dnp.sum(dnp.imag(fft.fft(v)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * n * x, rtol=1e-12)
    # one-sided: Σ α_k |rfft(x)_k|² = n Σ x² with α = (1, 2, ..., 2[, 1])
    for m in (5, 6):
        xm = rng_(107 + m).normal(size=m)
        alpha = np.full(m // 2 + 1, 2.0)
        alpha[0] = 1.0
        if m % 2 == 0:
            alpha[-1] = 1.0

        def f(v, alpha=alpha):
            z = fft.rfft(v, norm="ortho")
            return dnp.sum(alpha * (dnp.real(z) ** 2 + dnp.imag(z) ** 2))

        val, g = diffprog.value_and_grad(f)(xm)
        assert val == pytest.approx(np.sum(xm ** 2))
        np.testing.assert_allclose(g, 2 * xm, rtol=1e-12)
        assert g.dtype == np.float64


# ----------------------------------------------------------------------------- adjointness


def _bilinear(a, b):
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _real_matrix(f, x0, complex_input):
    """The R-linear map f as a real matrix acting on (Re x, Im x) (or x for real input)."""
    cols = []
    n = x0.size
    basis = [np.eye(n)[j].reshape(x0.shape) for j in range(n)]
    if complex_input:
        basis = basis + [1j * e for e in basis]
    for e in basis:
        y = np.asarray(f(e))
        cols.append(np.concatenate([y.real.ravel(), y.imag.ravel()]))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(
    "name,f,x0,complex_input",
    [
        ("fft", lambda x, nm: fft.fft(x, norm=nm), np.zeros(6, complex), True),
        ("fft_real", lambda x, nm: fft.fft(x, n=4, norm=nm), np.zeros(5), False),
        ("ifft", lambda x, nm: fft.ifft(x, n=7, norm=nm), np.zeros(5, complex), True),
        ("rfft", lambda x, nm: fft.rfft(x, norm=nm), np.zeros(6), False),
        ("rfft_odd", lambda x, nm: fft.rfft(x, norm=nm), np.zeros(7), False),
        ("irfft", lambda x, nm: fft.irfft(x, norm=nm), np.zeros(4, complex), True),
        ("irfft_odd", lambda x, nm: fft.irfft(x, n=7, norm=nm), np.zeros(4, complex), True),
        ("fft2", lambda x, nm: fft.fft2(x, norm=nm), np.zeros((2, 3), complex), True),
        ("rfft2", lambda x, nm: fft.rfft2(x, norm=nm), np.zeros((3, 4)), False),
        ("irfftn", lambda x, nm: fft.irfftn(x, s=(3, 5), norm=nm), np.zeros((3, 3), complex),
         True),
    ],
)
def test_linear_transpose_is_the_adjoint(name, f, x0, complex_input, norm):
    g = lambda x: f(x, norm)
    ft = diffprog.linear_transpose(g, x0)
    y0 = np.asarray(g(x0))
    r = rng_(200)
    y = r.normal(size=y0.shape) + (1j * r.normal(size=y0.shape) if y0.dtype.kind == "c" else 0)
    x = r.normal(size=x0.shape) + (1j * r.normal(size=x0.shape) if complex_input else 0)
    (xt,) = ft(y)
    assert xt.shape == x0.shape
    assert xt.dtype.kind == ("c" if complex_input else "f")
    assert _bilinear(g(x), y) == pytest.approx(_bilinear(x, xt), rel=1e-10, abs=1e-10)
    # against the explicit real matrix M of the map: with pairing Re Σ a·b, the transpose sends
    # y = p + i q to Mᵀ(p, -q) read back as (Re, -Im) of the input cotangent
    m = _real_matrix(g, x0, complex_input)
    yy = np.concatenate([y.real.ravel(), -y.imag.ravel()])
    v = m.T @ yy
    n = x0.size
    expect = v[:n] - 1j * v[n:] if complex_input else v
    np.testing.assert_allclose(np.ravel(xt), expect, atol=1e-10)


def test_fft_is_its_own_transpose():
    y = Z[0]
    (xt,) = diffprog.linear_transpose(fft.fft, np.zeros(6, complex))(y)
    np.testing.assert_allclose(xt, np.fft.fft(y), atol=1e-12)
    (xt,) = diffprog.linear_transpose(lambda v: fft.fft(v, norm="ortho"), np.zeros(6))(y)
    np.testing.assert_allclose(xt, np.fft.fft(y, norm="ortho").real, atol=1e-12)


def test_rfft_irfft_pair():
    for n in (6, 7):
        x = rng_(300 + n).normal(size=(2, n))
        w = rng_(310 + n).normal(size=(2, n))
        roundtrip = lambda v, n=n: fft.irfft(fft.rfft(v), n=n)
        np.testing.assert_allclose(roundtrip(x), x, atol=1e-12)
        # the composition is the identity, so its gradient and its transpose are too
        g = diffprog.grad(lambda v, rt=roundtrip, w=w: dnp.sum(w * rt(v)))(x)
        np.testing.assert_allclose(g, w, atol=1e-12)
        (xt,) = diffprog.linear_transpose(roundtrip, x)(w)
        np.testing.assert_allclose(xt, w, atol=1e-12)
        _, t = diffprog.jvp(roundtrip, (x,), (w,))
        np.testing.assert_allclose(t, w, atol=1e-12)


def test_jvp_is_the_transform_of_the_tangent():
    for f in (fft.fft, fft.ifft, fft.rfft, fft.irfft, fft.fft2, fft.rfftn):
        _, t = diffprog.jvp(f, (X,), (W,))
        np.testing.assert_allclose(t, f(W), atol=1e-12)


# ----------------------------------------------------------------------------- float32


def test_float32_end_to_end():
    x = X.astype(np.float32)
    assert fft.rfft(x).dtype == np.complex64
    assert fft.irfft(fft.rfft(x)).dtype == np.float32
    for f in (lambda v: power(fft.rfft(v)), lambda v: power(fft.fft2(v)),
              lambda v: dnp.sum(fft.irfft(fft.rfft(v) * (1 + 1j)) ** 2),
              lambda v: dnp.sum(fft.irfftn(v * (1 - 2j), s=(3, 5)) ** 2)):
        val, g = diffprog.value_and_grad(f)(x)
        assert np.asarray(val).dtype == np.float32
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, diffprog.grad(f)(X), rtol=1e-3, atol=1e-3)
        _, t = diffprog.jvp(f, (x,), (np.ones_like(x),))
        assert np.asarray(t).dtype == np.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match=r"rfft: argument 'a' must be real"):
        fft.rfft(Z)
    with pytest.raises(ValueError, match=r"fft: argument 'norm'"):
        fft.fft(X, norm="unitary")
    with pytest.raises(ValueError, match=r"irfft: invalid number of data points 0"):
        fft.irfft(Z, n=0)
    with pytest.raises(ValueError, match=r"ifft: axis 2 is out of bounds"):
        fft.ifft(X, axis=2)
    with pytest.raises(ValueError, match=r"fftn: repeated axes"):
        fft.fftn(X, axes=(0, 0))
    with pytest.raises(ValueError, match=r"fft2: arguments 's' and 'axes'"):
        fft.fft2(X, s=(2, 2, 2))
    with pytest.raises(ValueError, match=r"fft: argument 'a' must be at least 1-dimensional"):
        fft.fft(np.float64(1.0))
    with pytest.raises(TypeError, match=r"fft: argument 'a' must be a numeric array"):
        fft.fft(np.array(["a", "b"]))
