"""``diffprog.numpy.fft``: differentiable discrete Fourier transforms (book §14.2, §8.4.4).

The DFT is linear, so each transform is a **linear primitive** that registers only a transpose
rule (book §8.4.4): its JVP applies the transform to the tangent, its VJP is the transpose, and
``diffprog.linear_transpose`` sees the same rule. Three primitives cover NumPy's twelve
functions (``fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft, rfft2, irfft2, rfftn, irfftn``):
the public functions first crop or zero-pad the input to the requested lengths ``n``/``s`` with
the slicing and padding primitives (whose transposes are each other), then apply

* ``fftn`` (complex → complex, also the inverse): ``y = c · F x`` with the symmetric DFT matrix
  ``F_kj = exp(∓2πi jk/n)``, hence ``Fᵀ = F`` and the transpose is the *same* transform (for a
  real input the cotangent is the real part, see below);
* ``rfftn`` (real → half spectrum): ``y = T F x`` keeps the ``n//2 + 1`` non-negative
  frequencies; its transpose zero-pads the cotangent back to ``n`` frequencies, applies ``F``
  and keeps the real part: ``x̄ = Re F pad(ȳ)``;
* ``irfftn`` (half spectrum → real): ``y_j = c Σ_k α_k Re(z_k e^{2πi jk/n})`` with ``α_0 = 1``,
  ``α_k = 2`` and ``α_{n/2} = 1`` (even ``n``), the imaginary parts of the DC and Nyquist bins
  being ignored as in NumPy; its transpose is ``z̄_k = c α_k Σ_j ȳ_j e^{2πi jk/n}`` (an
  unnormalized inverse DFT of the real cotangent, truncated to ``n//2 + 1`` bins and weighted by
  the doubled non-DC/non-Nyquist bins).

**Complex convention.** Cotangents pair with values through the real bilinear form
``⟨a, b⟩ = Re Σ a·b`` (no conjugation), the engine's convention (the transposes of ``real``,
``imag``, ``conjugate`` and ``multiply`` in :mod:`diffprog.numpy.elementwise` use it; it is
JAX's convention): for a real loss ``L(z)`` the cotangent of ``z`` is ``∂L/∂Re z - i ∂L/∂Im z``.
The cotangent of a *real* input is real: the real part of the complex-linear transpose, which
is the adjoint of the map restricted to real inputs. Real-valued compositions such as
``sum(real(rfft(x))**2 + imag(rfft(x))**2)`` therefore have real gradients that agree with
finite differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.primitive import Primitive, Tracer
from ._base import dtype_of, shape_of
from .elementwise import real_p
from .structural import getitem_p, pad_p

__all__ = [
    "fft",
    "ifft",
    "fft2",
    "ifft2",
    "fftn",
    "ifftn",
    "rfft",
    "irfft",
    "rfft2",
    "irfft2",
    "rfftn",
    "irfftn",
]

_NORMS = (None, "backward", "ortho", "forward")


def _inverse_scale(n_total: int, norm: str | None) -> float:
    """The factor of the *inverse* transform for ``norm`` (forward: the reciprocal pattern)."""
    if norm in (None, "backward"):
        return 1.0 / n_total
    if norm == "ortho":
        return 1.0 / math.sqrt(n_total)
    return 1.0


# ----------------------------------------------------------------------------- primitives
def _fftn_impl(x, *, axes, norm, inverse):
    f = np.fft.ifftn if inverse else np.fft.fftn
    return f(x, axes=axes, norm=norm)


def _fftn_t(ct, x, *, axes, norm, inverse):
    # the DFT matrix (with its scaling) is symmetric: the transpose is the same transform
    out = fftn_p.bind(ct, axes=axes, norm=norm, inverse=inverse)
    if np.dtype(x.dtype).kind != "c":
        out = real_p.bind(out)
    return (out,)


fftn_p = Primitive("fft_fftn", _fftn_impl, transpose=_fftn_t)
fftn_p.jvp = lambda primals, tangents, ans, **params: fftn_p.bind(tangents[0], **params)


def _rfftn_impl(x, *, axes, norm):
    return np.fft.rfftn(x, axes=axes, norm=norm)


def _rfftn_t(ct, x, *, axes, norm):
    last = axes[-1]
    n = x.shape[last]
    m = shape_of(ct)[last]
    pw = tuple((0, n - m) if i == last else (0, 0) for i in range(len(x.shape)))
    full = pad_p.bind(ct, pad_width=pw)
    return (real_p.bind(fftn_p.bind(full, axes=axes, norm=norm, inverse=False)),)


rfftn_p = Primitive("fft_rfftn", _rfftn_impl, transpose=_rfftn_t)
rfftn_p.jvp = lambda primals, tangents, ans, **params: rfftn_p.bind(tangents[0], **params)


def _irfftn_impl(c, *, axes, norm, n):
    s = [c.shape[a] for a in axes[:-1]] + [n]
    return np.fft.irfftn(c, s=s, axes=axes, norm=norm)


def _irfftn_t(ct, c, *, axes, norm, n):
    last = axes[-1]
    cshape = c.shape
    m = cshape[last]
    total = n * int(np.prod([cshape[a] for a in axes[:-1]], dtype=np.int64))
    # unnormalized inverse DFT of the real cotangent (norm="forward": no factor on the inverse)
    w = fftn_p.bind(ct, axes=axes, norm="forward", inverse=True)
    idx = tuple(slice(0, m) if i == last else slice(None) for i in range(len(cshape)))
    w = getitem_p.bind(w, idx=idx)
    rdt = np.empty((), dtype=dtype_of(w)).real.dtype
    alpha = np.full(m, 2.0, dtype=rdt)
    alpha[0] = 1.0
    if n % 2 == 0 and m - 1 == n // 2:
        alpha[-1] = 1.0
    alpha *= _inverse_scale(total, norm)
    alpha = alpha.reshape(tuple(m if i == last else 1 for i in range(len(cshape))))
    out = w * alpha
    if np.dtype(c.dtype).kind != "c":
        out = real_p.bind(out)
    return (out,)


irfftn_p = Primitive("fft_irfftn", _irfftn_impl, transpose=_irfftn_t)
irfftn_p.jvp = lambda primals, tangents, ans, **params: irfftn_p.bind(tangents[0], **params)


# ----------------------------------------------------------------------------- argument handling
def _prep(fname: str, a: Any, real: bool = False):
    if not isinstance(a, Tracer):
        try:
            a = np.asarray(a)
        except Exception as e:
            raise TypeError(f"{fname}: argument 'a' must be an array, got {type(a).__name__}"
                            ) from e
        if a.dtype.kind in "biu":
            a = a.astype(np.float64)
    dt = dtype_of(a)
    if dt.kind not in "fc":
        raise TypeError(f"{fname}: argument 'a' must be a numeric array, got dtype {dt}")
    if real and dt.kind == "c":
        raise TypeError(
            f"{fname}: argument 'a' must be real, got dtype {dt} (use fft/fftn for complex input)"
        )
    if len(shape_of(a)) == 0:
        raise ValueError(f"{fname}: argument 'a' must be at least 1-dimensional, got a scalar")
    return a


def _check_norm(fname: str, norm: Any) -> None:
    if norm not in _NORMS:
        raise ValueError(
            f"{fname}: argument 'norm' must be None, 'backward', 'ortho' or 'forward', got "
            f"{norm!r}"
        )


def _axes_and_s(fname: str, a, s, axes, last_default=None):
    """NumPy's rules for ``s`` and ``axes``; returns normalized ``axes`` and lengths ``s``."""
    nd = len(shape_of(a))
    shape = shape_of(a)
    if axes is None:
        if s is None:
            axes = tuple(range(nd))
        else:
            s = tuple(s)
            if len(s) > nd:
                raise ValueError(f"{fname}: argument 's' has more entries ({len(s)}) than the "
                                 f"array has dimensions ({nd})")
            axes = tuple(range(nd - len(s), nd))
    else:
        axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    norm_axes = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or not -nd <= ax < nd:
            raise ValueError(f"{fname}: axis {ax!r} is out of bounds for an array of ndim {nd}")
        norm_axes.append(int(ax) % nd)
    if len(set(norm_axes)) != len(norm_axes):
        raise ValueError(f"{fname}: repeated axes {tuple(axes)} are not supported")
    if not norm_axes:
        raise ValueError(f"{fname}: at least one axis is needed")
    if s is None:
        s = [shape[ax] for ax in norm_axes]
        if last_default is not None:
            s[-1] = last_default(shape[norm_axes[-1]])
    else:
        s = list(s)
        if len(s) != len(norm_axes):
            raise ValueError(f"{fname}: arguments 's' and 'axes' must have the same length "
                             f"({len(s)} != {len(norm_axes)})")
    for n in s:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(
                f"{fname}: invalid number of data points {n!r}: lengths must be integers >= 1"
            )
    return tuple(norm_axes), tuple(int(n) for n in s)


def _resize(x, axes, lengths):
    """Crop or zero-pad ``x`` along ``axes`` to ``lengths`` (slicing and padding primitives)."""
    shape = shape_of(x)
    nd = len(shape)
    crop = [slice(None)] * nd
    pw = [(0, 0)] * nd
    need_crop = need_pad = False
    for ax, n in zip(axes, lengths, strict=True):
        if shape[ax] > n:
            crop[ax] = slice(0, n)
            need_crop = True
        elif shape[ax] < n:
            pw[ax] = (0, n - shape[ax])
            need_pad = True
    if need_crop:
        x = getitem_p.bind(x, idx=tuple(crop))
    if need_pad:
        x = pad_p.bind(x, pad_width=tuple(pw))
    return x


def _c2c(fname, a, s, axes, norm, inverse):
    _check_norm(fname, norm)
    a = _prep(fname, a)
    axes, s = _axes_and_s(fname, a, s, axes)
    return fftn_p.bind(_resize(a, axes, s), axes=axes, norm=norm, inverse=inverse)


def _r2c(fname, a, s, axes, norm):
    _check_norm(fname, norm)
    a = _prep(fname, a, real=True)
    axes, s = _axes_and_s(fname, a, s, axes)
    return rfftn_p.bind(_resize(a, axes, s), axes=axes, norm=norm)


def _c2r(fname, a, s, axes, norm):
    _check_norm(fname, norm)
    a = _prep(fname, a)
    axes, s = _axes_and_s(fname, a, s, axes, last_default=lambda m: 2 * (m - 1))
    n = s[-1]
    lengths = s[:-1] + (n // 2 + 1,)
    return irfftn_p.bind(_resize(a, axes, lengths), axes=axes, norm=norm, n=n)


def _one(n):
    return None if n is None else (n,)


# ----------------------------------------------------------------------------- public API
def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """One-dimensional DFT ``y_k = Σ_j x_j e^{-2πi jk/n}`` (``numpy.fft.fft``).

    Linear: JVP ``fft(dx)``; transpose ``fft(ȳ)`` (the DFT matrix is symmetric), cropped or
    padded back to the input length, real part for a real input (book §8.4.4; Fourier
    transforms: §14.2). ``n`` crops or zero-pads the input; ``norm`` as NumPy.

    Example::

        >>> fft(np.array([1., 0., 0., 0.]))
        array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    return _c2c("fft", a, _one(n), (axis,), norm, False)


def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Inverse DFT ``x_j = (1/n) Σ_k y_k e^{2πi jk/n}`` (``numpy.fft.ifft``).

    Linear, with the (symmetric) inverse DFT as its own transpose (book §8.4.4, §14.2).

    Example::

        >>> ifft(np.array([4., 0., 0., 0.]))
        array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    return _c2c("ifft", a, _one(n), (axis,), norm, True)


def fft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
         norm: str | None = None) -> Any:
    """Two-dimensional DFT (``numpy.fft.fft2``); linear, self-transposed (book §8.4.4, §14.2).

    Example: ``fft2(np.ones((2, 2)))`` → ``[[4, 0], [0, 0]]`` (complex).
    """
    return _c2c("fft2", a, s, axes, norm, False)


def ifft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """Two-dimensional inverse DFT (``numpy.fft.ifft2``); linear (book §8.4.4, §14.2).

    Example: ``ifft2(np.array([[4., 0.], [0., 0.]]))`` → ``ones((2, 2))`` (complex).
    """
    return _c2c("ifft2", a, s, axes, norm, True)


def fftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
         norm: str | None = None) -> Any:
    """N-dimensional DFT (``numpy.fft.fftn``); linear, self-transposed (book §8.4.4, §14.2).

    Example: ``fftn(np.ones((2, 2, 2)))[0, 0, 0]`` → ``(8+0j)``.
    """
    return _c2c("fftn", a, s, axes, norm, False)


def ifftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """N-dimensional inverse DFT (``numpy.fft.ifftn``); linear (book §8.4.4, §14.2).

    Example: ``ifftn(fftn(x))`` ≈ ``x``.
    """
    return _c2c("ifftn", a, s, axes, norm, True)


def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """DFT of a real signal, non-negative frequencies only (``numpy.fft.rfft``): ``n//2 + 1``
    bins of ``fft(a, n)``.

    Transpose (book §8.4.4): zero-pad the cotangent to ``n`` bins, apply ``fft``, keep the real
    part, ``x̄ = Re fft(pad(ȳ))`` — the cotangent of the real input is real. Book §14.2.

    Example::

        >>> rfft(np.array([1., 1., 1., 1.]))
        array([4.+0.j, 0.+0.j, 0.+0.j])
    """
    return _r2c("rfft", a, _one(n), (axis,), norm)


def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Inverse of :func:`rfft`: a real signal of length ``n`` (default ``2(m - 1)``) from ``m``
    non-negative-frequency bins (``numpy.fft.irfft``; imaginary parts of the DC and Nyquist bins
    are ignored).

    ``y_j = (1/n) Σ_k α_k Re(z_k e^{2πi jk/n})``, ``α`` = 1 for DC/Nyquist and 2 otherwise;
    transpose ``z̄_k = (α_k/n) Σ_j ȳ_j e^{2πi jk/n}`` (book §8.4.4, §14.2).

    Example::

        >>> irfft(np.array([4., 0., 0.]))
        array([1., 1., 1., 1.])
    """
    return _c2r("irfft", a, _one(n), (axis,), norm)


def rfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """Two-dimensional :func:`rfftn` (``numpy.fft.rfft2``). Book §8.4.4, §14.2.

    Example: ``rfft2(np.ones((2, 4))).shape`` → ``(2, 3)``.
    """
    return _r2c("rfft2", a, s, axes, norm)


def irfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
           norm: str | None = None) -> Any:
    """Two-dimensional :func:`irfftn` (``numpy.fft.irfft2``). Book §8.4.4, §14.2.

    Example: ``irfft2(rfft2(x), s=x.shape)`` ≈ ``x``.
    """
    return _c2r("irfft2", a, s, axes, norm)


def rfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """N-dimensional real DFT (``numpy.fft.rfftn``): ``rfft`` on the last axis, ``fft`` on the
    others; transpose ``Re fftn(pad_last(ȳ))`` (book §8.4.4, §14.2).

    Example: ``rfftn(np.ones((2, 2, 4))).shape`` → ``(2, 2, 3)``.
    """
    return _r2c("rfftn", a, s, axes, norm)


def irfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
           norm: str | None = None) -> Any:
    """N-dimensional inverse of :func:`rfftn` (``numpy.fft.irfftn``). Book §8.4.4, §14.2.

    Example: ``irfftn(rfftn(x), s=x.shape)`` ≈ ``x``.
    """
    return _c2r("irfftn", a, s, axes, norm)
