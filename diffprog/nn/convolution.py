"""Convolutional layers as parameterized linear maps (book §4.3.1, §4.9).

Layout (channels last, rows are examples): an input ``x`` has shape ``(..., *spatial, C_in)``
and the filters ``W`` have shape ``(*kernel, C_in, C_out)``; the number of spatial dimensions is
``W.ndim − 2`` (1 for sequences, 2 for images). :func:`conv` is the cross-correlation of deep
learning (no kernel flip)::

    y[..., o, c'] = Σ_{k, c} x_pad[..., o·s + k, c] · W[k, c, c']

It is linear in ``x`` and in ``W``. It is computed by gathering the ``∏ kernel`` shifted (strided)
views of ``x`` and one matrix product, so every derivative comes from the engine's rules for
slicing, stacking and ``matmul``.

:func:`conv_transpose` is the adjoint ``Aᵀ`` of ``x ↦ A x = conv(x, W)``, computed independently
of automatic differentiation by the classical identity: dilate ``y`` by the stride, pad it by
``kernel − 1``, correlate it with the spatially flipped filters with ``C_in``/``C_out`` swapped, and
crop the padding. So ``⟨conv(x, W), y⟩ = ⟨x, conv_transpose(y, W)⟩`` (the dot-product test) and
``conv_transpose`` equals the VJP of ``conv`` with respect to ``x``.

``padding``: ``"VALID"`` (none), ``"SAME"`` (output size ``⌈L/s⌉``, extra padding at the end),
an int (both sides of every spatial axis), or one ``(lo, hi)`` pair per spatial axis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from .linear import check_last_dim
from .module import Module, static

__all__ = ["conv", "conv_transpose", "Conv"]

Padding = str | int | Sequence[tuple[int, int]]


def _as_tuple(v: Any, n: int, fname: str, argname: str) -> tuple[int, ...]:
    t = (v,) * n if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != n or any(not isinstance(e, (int, np.integer)) or e < 1 for e in t):
        raise ValueError(f"{fname}: argument '{argname}' must be a positive int or {n} positive "
                         f"ints, got {v!r}")
    return tuple(int(e) for e in t)


def _pads(padding: Padding, spatial: Sequence[int], kernel: Sequence[int],
          strides: Sequence[int], fname: str) -> tuple[tuple[int, int], ...]:
    """``(lo, hi)`` padding per spatial axis."""
    n = len(kernel)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            out = []
            for L, K, s in zip(spatial, kernel, strides, strict=True):
                total = max((-(-L // s) - 1) * s + K - L, 0)
                out.append((total // 2, total - total // 2))
            return tuple(out)
    elif isinstance(padding, (int, np.integer)):
        if padding >= 0:
            return ((int(padding), int(padding)),) * n
    else:
        try:
            pairs = tuple(tuple(int(e) for e in p) for p in padding)
        except (TypeError, ValueError):
            pairs = ()
        if len(pairs) == n and all(len(p) == 2 and min(p) >= 0 for p in pairs):
            return pairs
    raise ValueError(f"{fname}: argument 'padding' must be 'VALID', 'SAME', an int >= 0 or "
                     f"{n} (lo, hi) pairs, got {padding!r}")


def _check_filters(W: Any, fname: str) -> int:
    n = np.ndim(W) - 2
    if n < 1:
        raise ValueError(f"{fname}: argument 'W' must have shape (*kernel, C_in, C_out) with at "
                         f"least one spatial axis, got shape {tuple(np.shape(W))}")
    return n


def _check_input(x: Any, W: Any, n: int, channels: int, fname: str, argname: str) -> None:
    if np.ndim(x) < n + 1:
        raise ValueError(f"{fname}: input '{argname}' must have shape (..., {n} spatial axes, "
                         f"{channels} channels), got shape {tuple(np.shape(x))}")
    check_last_dim(x, channels, fname, argname)


def _correlate(xp: Any, W: Any, strides: Sequence[int]) -> Any:
    """Valid cross-correlation of the (already padded) ``xp`` with ``W``."""
    n = np.ndim(W) - 2
    kernel, c_in, c_out = np.shape(W)[:n], np.shape(W)[-2], np.shape(W)[-1]
    spatial = np.shape(xp)[-n - 1:-1]
    out = [(L - K) // s + 1 for L, K, s in zip(spatial, kernel, strides, strict=True)]
    views = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        idx = tuple(slice(o, o + s * (m - 1) + 1, s)
                    for o, s, m in zip(offset, strides, out, strict=True))
        views.append(xp[(Ellipsis, *idx, slice(None))])
    patches = dnp.stack(views, axis=-2)  # (..., *out, ∏kernel, C_in)
    lead = tuple(np.shape(patches)[:-2])
    patches = dnp.reshape(patches, (*lead, math.prod(kernel) * c_in))
    return dnp.matmul(patches, dnp.reshape(W, (math.prod(kernel) * c_in, c_out)))


def _pad_spatial(x: Any, pads: Sequence[tuple[int, int]]) -> Any:
    if all(p == (0, 0) for p in pads):
        return x
    lead = np.ndim(x) - len(pads) - 1
    return dnp.pad(x, ((0, 0),) * lead + tuple(pads) + ((0, 0),))


def conv(x: Any, W: Any, stride: int | Sequence[int] = 1, padding: Padding = "VALID") -> Any:
    """Convolution (cross-correlation) of ``x`` ``(..., *spatial, C_in)`` with filters ``W``
    ``(*kernel, C_in, C_out)`` (book §4.3.1): ``y[o, c'] = Σ_{k,c} x_pad[o·s + k, c] W[k, c, c']``,
    a linear map in ``x`` (a block-Toeplitz matrix) and in ``W``. 1-D when ``W.ndim == 3``,
    2-D when ``W.ndim == 4``.

    Example::

        >>> x = np.array([1.0, 2.0, 3.0, 4.0])[:, None]          # L = 4, C_in = 1
        >>> W = np.array([1.0, -1.0])[:, None, None]             # K = 2, C_out = 1
        >>> conv(x, W)[:, 0].tolist()
        [-1.0, -1.0, -1.0]
    """
    n = _check_filters(W, "conv")
    _check_input(x, W, n, int(np.shape(W)[-2]), "conv", "x")
    kernel = tuple(np.shape(W)[:n])
    strides = _as_tuple(stride, n, "conv", "stride")
    pads = _pads(padding, np.shape(x)[-n - 1:-1], kernel, strides, "conv")
    xp = _pad_spatial(x, pads)
    spatial = np.shape(xp)[-n - 1:-1]
    if any(L < K for L, K in zip(spatial, kernel, strict=True)):
        raise ValueError(f"conv: padded spatial shape {tuple(spatial)} is smaller than the kernel "
                         f"{kernel}")
    return _correlate(xp, W, strides)


def _dilate(y: Any, axis: int, s: int) -> Any:
    """Insert ``s − 1`` zeros between consecutive entries of ``y`` along ``axis`` (< 0)."""
    if s == 1:
        return y
    shape = tuple(np.shape(y))
    ye = dnp.expand_dims(y, axis)  # (..., O, 1, ...) with the new axis after ``axis``
    zshape = list(np.shape(ye))
    zshape[axis] = s - 1
    z = dnp.zeros(tuple(zshape), np.result_type(y.dtype if hasattr(y, "dtype") else y))
    inter = dnp.concatenate([ye, z], axis=axis)
    k = len(shape) + axis
    merged = dnp.reshape(inter, shape[:k] + (shape[k] * s,) + shape[k + 1:])
    idx = [slice(None)] * len(shape)
    idx[k] = slice(0, (shape[k] - 1) * s + 1)
    return merged[tuple(idx)]


def conv_transpose(y: Any, W: Any, stride: int | Sequence[int] = 1, padding: Padding = "VALID",
                   input_shape: Sequence[int] | None = None) -> Any:
    """Transposed convolution, the adjoint of ``x ↦ conv(x, W, stride, padding)`` (book §4.3.1,
    the transpose of a linear map): ``⟨conv(x, W), y⟩ = ⟨x, conv_transpose(y, W)⟩``. Maps
    ``(..., *out, C_out)`` to ``(..., *input_shape, C_in)``; ``input_shape`` (the spatial shape of
    ``x``) is needed for ``"SAME"`` padding and to resolve stride rounding, and defaults to the
    smallest consistent shape otherwise.

    Example::

        >>> W = np.array([1.0, -1.0])[:, None, None]
        >>> conv_transpose(np.ones((3, 1)), W)[:, 0].tolist()
        [1.0, 0.0, 0.0, -1.0]
    """
    n = _check_filters(W, "conv_transpose")
    _check_input(y, W, n, int(np.shape(W)[-1]), "conv_transpose", "y")
    kernel = tuple(np.shape(W)[:n])
    strides = _as_tuple(stride, n, "conv_transpose", "stride")
    out = tuple(np.shape(y)[-n - 1:-1])
    if input_shape is None:
        if isinstance(padding, str) and padding.upper() == "SAME":
            raise ValueError("conv_transpose: 'SAME' padding needs argument 'input_shape'")
        pads = _pads(padding, (0,) * n, kernel, strides, "conv_transpose")
        input_shape = tuple((m - 1) * s + K - lo - hi for m, s, K, (lo, hi)
                            in zip(out, strides, kernel, pads, strict=True))
    input_shape = tuple(int(L) for L in input_shape)
    if len(input_shape) != n:
        raise ValueError(f"conv_transpose: argument 'input_shape' must have {n} entries, got "
                         f"{input_shape}")
    pads = _pads(padding, input_shape, kernel, strides, "conv_transpose")
    padded = [L + lo + hi for L, (lo, hi) in zip(input_shape, pads, strict=True)]
    expect = tuple((Lp - K) // s + 1 for Lp, K, s in zip(padded, kernel, strides, strict=True))
    if expect != out:
        raise ValueError(f"conv_transpose: input spatial shape {input_shape} gives a convolution "
                         f"output of spatial shape {expect}, but 'y' has {out}")
    z = y
    for i, s in enumerate(strides):
        z = _dilate(z, i - n - 1, s)
    full = []
    for Lp, K, s, m in zip(padded, kernel, strides, out, strict=True):
        full.append((K - 1, K - 1 + Lp - ((m - 1) * s + K)))
    z = _pad_spatial(z, full)
    Wt = dnp.swapaxes(dnp.flip(W, axis=tuple(range(n))), -1, -2)
    xp = _correlate(z, Wt, (1,) * n)
    idx = tuple(slice(lo, lo + L) for L, (lo, _) in zip(input_shape, pads, strict=True))
    return xp[(Ellipsis, *idx, slice(None))]


class Conv(Module):
    """Convolutional layer ``x ↦ conv(x, W, stride, padding) + b`` (book §4.3.1), channels
    last; ``W`` has shape ``(*kernel, C_in, C_out)`` (1-D or 2-D by the kernel's length).

    Example::

        >>> layer = Conv.init(0, 3, 8, (3, 3), padding="SAME")
        >>> layer(np.ones((2, 5, 5, 3))).shape
        (2, 5, 5, 8)
    """

    W: Any
    b: Any = None
    stride: Any = static(default=1)
    padding: Any = static(default="VALID")

    @classmethod
    def init(cls, rng: Any, in_channels: int, out_channels: int,
             kernel_size: int | Sequence[int], *, stride: int | Sequence[int] = 1,
             padding: Padding = "VALID", use_bias: bool = True,
             dtype: Any = np.float64) -> Conv:
        """Glorot-uniform filters ``U(−a, a)``, ``a = √(6/((C_in + C_out)·∏ kernel))``, zero bias
        (book §4.3.1). An int ``kernel_size`` gives a 1-D convolution.

        Example::

            >>> Conv.init(0, 2, 4, 5).W.shape
            (5, 2, 4)
        """
        kernel = ((int(kernel_size),) if isinstance(kernel_size, (int, np.integer))
                  else tuple(int(k) for k in kernel_size))
        _as_tuple(kernel, len(kernel), "Conv.init", "kernel_size")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv.init: channel counts must be >= 1, got {in_channels} and "
                             f"{out_channels}")
        g = as_generator(rng, "Conv.init")
        a = math.sqrt(6.0 / ((in_channels + out_channels) * math.prod(kernel)))
        W = g.uniform(-a, a, size=(*kernel, in_channels, out_channels)).astype(dtype)
        b = np.zeros(out_channels, dtype) if use_bias else None
        if not isinstance(padding, (str, int)):
            padding = tuple(tuple(p) for p in padding)
        stride = stride if isinstance(stride, int) else tuple(stride)
        return cls(W, b, stride, padding)

    def __call__(self, x: Any) -> Any:
        n = np.ndim(self.W) - 2
        _check_input(x, self.W, n, int(np.shape(self.W)[-2]), "Conv", "x")
        y = conv(x, self.W, self.stride, self.padding)
        return y if self.b is None else y + self.b
