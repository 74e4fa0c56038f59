"""Fused primitives for the layers' hot paths (book §8.4.3: any function with its own derivative
rules can be a primitive).

A Transformer's time outside matrix products goes to elementwise passes over large activations.
Written as compositions of elementwise NumPy operations, the exact GELU costs about twenty passes
over the MLP's hidden activations in the forward and backward passes, and masked attention about
fifteen over the attention scores. These primitives compute the same functions as one kernel
each, run on cache-sized blocks (:func:`~diffprog.core.blocking.run_blocked`: the kernel's
passes stay in L2), with rules that are themselves written with differentiable operations or
differentiate the plain composition (so every order of differentiation, ``vmap`` and ``jit``
still work). The derivative kernels (and the masked softargmax) declare an ``inplace_arg``:
under ``jit`` they overwrite the cotangent (the scores) they consume when nothing else reads it.

- ``gelu_p``: ``u Φ(u) = ½ u erfc(−u/√2)``, one ``erfc``; ``gelu_tanh_p``: the tanh form
  ``½ u (1 + tanh(k(u + a u³)))`` (``k = √(2/π)``, ``a = 0.044715``).
  Their JVP and VJP are one more primitive each, ``gelu_grad_p(t, u, gelu(u)) = t ⊙ gelu'(u)``
  (``t`` the tangent or the cotangent): the exact form reads ``Φ(u) = gelu(u)/u`` off the
  forward result (``½`` at ``u = 0``) instead of evaluating ``erfc`` again, and the tanh form
  reads ``½ (1 + T) = gelu(u)/u`` off it instead of evaluating ``tanh`` again (near ``u = 0``
  both recompute). Its rules: linear in
  ``t``, ``t ⊙ gelu''(u)`` in ``u`` (``φ(u)(2 − u²)``, resp.
  ``k(1 − T²)(P − k u T P² + 3 a u²)``, written with differentiable operations), zero in the
  forward result.
- ``masked_softargmax_p``: ``softargmax`` over the last axis restricted to a boolean mask
  (True = kept): blocked entries get probability exactly 0 and cotangent exactly 0, and a row
  with no kept entry is all zeros (never NaN); each row's result depends on its kept scores
  only, bit for bit. Its JVP and VJP are ``softargmax_grad_p(t, p) = p ⊙ (t − ⟨p, t⟩)`` (the
  Jacobian ``diag(p) − ppᵀ`` is symmetric).
- ``standardize_p``: ``y = (x − μ)/√(σ² + ε)`` over the last axis (the core of layer
  normalization, §4.5.2). Its JVP and VJP are ``standardize_grad_p(t, x, y) =
  r (t − mean(t) − y mean(y t))`` (the Jacobian ``r(I − 11ᵀ/D − y yᵀ/D)`` is symmetric), with
  ``r = 1/√(σ² + ε)`` recovered from ``m = mean(y x) = σ² r`` as ``r = 2/(m + √(m² + 4ε))``
  (the positive root of ``ε r² + m r − 1 = 0``).
- ``layer_norm_p(x, γ, β) = (standardize(x) ⊙ γ + β, μ, r)`` (the row statistics
  ``μ``, ``r = 1/√(σ² + ε)`` are results too) and its VJP
  ``layer_norm_grad_p(g, x, γ, μ, r) = (∂x, ∂γ, ∂β)``, which reads them instead of recomputing
  them, one kernel each way (the affine layer norm of :func:`~diffprog.nn.layer_norm` with γ, β
  of shape ``(D,)``).
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np

from .. import numpy as dnp
from ..core import blocking
from ..core.batching_rules import _elementwise, _ndim, pad_rank, to_front
from ..core.blocking import run_blocked
from ..core.primitive import Primitive
from ..numpy._base import dtype_of, is_undefined
from ..numpy.reductions import unshifted_range

__all__ = ["gelu_p", "gelu_grad_p", "gelu_tanh_p", "gelu_tanh_grad_p", "masked_softargmax_p",
           "standardize_p", "standardize_grad_p", "layer_norm_p", "layer_norm_grad_p",
           "softargmax_grad_p"]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------- row reductions
@functools.lru_cache(maxsize=64)
def _filled(n: int, value: float, dtype) -> np.ndarray:
    """A read-only vector of ``n`` copies of ``value`` (the row-sum and row-mean vectors of the
    matrix-vector products over a feature axis; cached, as they are the same at every call)."""
    v = np.full(n, value, dtype)
    v.flags.writeable = False
    return v


# Sums over the last axis as matrix-vector products: BLAS reads the rows once, about three times
# faster than ``np.sum`` of a product over short rows (the rules stay differentiable: matmul).
def _row_means(a, w=None):
    """``mean_i a[..., i] w[i]`` (``w = 1`` by default) as a matrix-vector product."""
    d = a.shape[-1]
    m = np.asarray(np.matmul(a, _filled(d, 1.0, a.dtype) if w is None else w))
    m *= 1.0 / d
    return m


def _row_dots_vecdot(a, b):
    """``Σ_i a[..., i] b[..., i]`` (NumPy arrays) with ``np.vecdot``: one pass, no temporary."""
    return np.asarray(np.vecdot(a, b))


def _row_dots_matmul(a, b):
    """``Σ_i a[..., i] b[..., i]`` as a product and a matrix-vector product (NumPy 1.x)."""
    return np.asarray(np.matmul(np.multiply(a, b), _filled(np.shape(a)[-1], 1.0, a.dtype)))


_row_dots = _row_dots_vecdot if hasattr(np, "vecdot") else _row_dots_matmul


def _run_rows(kernel, out, arrays, extra=(), row_ndim=1):
    """:func:`~diffprog.core.blocking.run_blocked` for kernels over rows (the last
    ``row_ndim`` axes). Operands of ``out``'s shape, all C-contiguous, are seen as a 2-D stack
    of rows (``row_ndim = 1``) or a 3-D stack of row blocks, so a row reduction is one
    matrix-vector product per block and yields a vector; others run as they are."""
    shape = out.shape
    if out.flags.c_contiguous and all(type(a) is np.ndarray and a.shape == shape
                                      and a.flags.c_contiguous for a in arrays):
        lead = (-1,) + shape[len(shape) - row_ndim:]
        run_blocked(kernel, out.reshape(lead), tuple(a.reshape(lead) for a in arrays),
                    row_ndim=row_ndim, extra=extra)
        return out
    return run_blocked(kernel, out, arrays, row_ndim=row_ndim, extra=extra)


def _inv_std(xc, eps):
    """``1/√(mean(xc²) + ε)`` per row of the centred ``xc``."""
    r = _row_dots(xc, xc)
    r *= 1.0 / xc.shape[-1]
    r += eps
    np.sqrt(r, out=r)
    np.divide(1.0, r, out=r)
    return r


def _row_dot_traced(a, b):
    """``Σ_i a[..., i] b[..., i]`` keeping the axis, with differentiable operations."""
    return dnp.matmul(dnp.expand_dims(a, -2), dnp.expand_dims(b, -1))[..., 0]


def _row_sum_traced(a):
    """``Σ_i a[..., i]`` keeping the axis, with differentiable operations."""
    s = dnp.shape(a)
    return dnp.expand_dims(dnp.matmul(a, np.ones(s[-1], dtype_of(a))), -1)


# ----------------------------------------------------------------------------------- GELU
def _float_array(u):
    """``u`` as a floating array (integers and booleans → float64, floats keep their dtype)."""
    u = np.asarray(u)
    return u if u.dtype.kind == "f" else u.astype(np.result_type(u.dtype, 1.0))


def _gelu_kernel(out, u):
    """``out = ½ u erfc(−u/√2)``."""
    from scipy.special import erfc

    np.multiply(u, -_INV_SQRT_2, out=out)
    erfc(out, out=out)
    out *= 0.5
    out *= u


def _ratio(u, ans):
    """``ans / u`` with the value ``½`` at ``u = 0`` (both GELUs are ``u c(u)``, ``c(0) = ½``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.asarray(ans / u)
    return np.where(u == 0, np.asarray(0.5, dtype=c.dtype), c)


def _gelu_grad_kernel(out, t, u, ans):
    """``out = t ⊙ (Φ(u) + u φ(u))`` with ``Φ(u) = gelu(u)/u`` read off the forward result."""
    e = np.multiply(u, u)
    e *= -0.5
    np.exp(e, out=e)
    e *= u
    e *= _INV_SQRT_2PI
    e += _ratio(u, ans)
    np.multiply(e, t, out=out)


def _gelu_second(u):
    """``gelu\'\'(u) = φ(u)(2 − u²)``, written with differentiable operations."""
    u2 = u * u
    return dnp.exp(-0.5 * u2) * (2.0 - u2) * _INV_SQRT_2PI


# ------------------------------------------------------------------------- tanh GELU
_K = math.sqrt(2.0 / math.pi)
_A = 0.044715


def _gelu_tanh_kernel(out, u):
    """``out = ½ u (1 + T)``, ``T = tanh(k u (1 + a u²))``."""
    s = np.multiply(u, u)
    s *= _A * _K
    s += _K
    s *= u
    np.tanh(s, out=s)
    s += 1.0
    np.multiply(s, u, out=out)
    out *= 0.5


#: beyond ±30 the tanh GELU's derivative is 1 or 0 to within 1e-300 (and ``u²`` may overflow)
_GELU_TANH_CLIP = 30.0


def _gelu_tanh_grad_recompute_kernel(out, t, u, ans):
    """``out = t ⊙ (1 + T)(½ + h (1 − T))`` with ``T`` recomputed, ``h = ½ k u P`` and
    ``P = 1 + 3 a u²``: the derivative ``½ (1 + T) + h (1 − T²)`` factored so that it takes one
    pass fewer."""
    h = np.multiply(u, u)
    T = np.multiply(h, _A * _K)
    T += _K
    T *= u
    np.tanh(T, out=T)
    h *= 1.5 * _A * _K
    h += 0.5 * _K
    h *= u                                   # h = ½ k u P
    w = np.subtract(1.0, T)
    w *= h
    w += 0.5
    T += 1.0
    w *= T
    np.multiply(w, t, out=out)


def _gelu_tanh_grad_kernel(out, t, u, ans):
    """``out = t ⊙ R (1 + H (1 − R))`` with ``R = ans/u = ½ (1 + T)`` read off the forward
    result and ``H = 2 k u P``: the derivative ``½ (1 + T) + ½ k u P (1 − T²)`` without a
    ``tanh`` (``1 − T² = 4 R (1 − R)``; ten passes instead of thirteen and a ``tanh``, 17%
    less time on 2048 × 512 float32). ``R`` carries the forward's rounding of ``1 + T``, so
    where ``T`` is near 1 (``u`` ≈ 1–6) the derivative is about 3× less accurate than with
    ``T`` recomputed (float32: absolute error ≤ 4e-6 instead of 1.3e-6 on a derivative in
    [−0.13, 1.13]). Blocks with ``u² < 4·tiny`` (``u = 0``, where ``R`` is ``0/0``, or so
    small that ``½ u`` is subnormal) or ``|u| > 30`` (where ``H`` may overflow; the derivative
    is 0 or 1 there to within 1e-300) take :func:`_gelu_tanh_grad_recompute_kernel` on ``u``
    clipped to ``[−30, 30]``."""
    H = np.multiply(u, u)
    if not (H.min(initial=np.inf) >= 4.0 * _tiny(u.dtype)          # NaN compares False
            and H.max(initial=0.0) <= _GELU_TANH_CLIP ** 2):
        return _gelu_tanh_grad_recompute_kernel(out, t, np.clip(u, -_GELU_TANH_CLIP,
                                                                _GELU_TANH_CLIP), ans)
    H *= 6.0 * _A * _K
    H += 2.0 * _K
    H *= u                                   # H = 2 k u P
    R = np.divide(ans, u)
    w = np.subtract(1.0, R)
    w *= H
    w += 1.0
    w *= R
    np.multiply(w, t, out=out)


@functools.cache
def _tiny(dtype) -> float:
    """The smallest normal number of a float dtype (cached: ``np.finfo`` costs microseconds)."""
    return float(np.finfo(dtype).tiny)


def _gelu_tanh_second(u):
    """``k (1 − T²)(P − k u T P² + 3 a u²)`` with ``T = tanh(k(u + a u³))``, ``P = 1 + 3 a u²``."""
    u2 = u * u
    T = dnp.tanh(_K * (u + _A * u2 * u))
    P = 1.0 + 3.0 * _A * u2
    return _K * (1.0 - T * T) * (P - _K * u * T * P * P + 3.0 * _A * u2)


def _elementwise_pair(name, kernel, grad_kernel, second):
    """``f_p`` (value) and ``grad_p(t, u, f(u)) = t ⊙ f\'(u)``, which serves as the JVP
    (``t`` = tangent) and the VJP (``t`` = cotangent) of ``f_p``. ``grad_p`` is linear in
    ``t``; its derivative in ``u`` is ``t ⊙ f\'\'(u)`` (``second``), in ``f(u)`` zero. Both run
    their kernels cache-blocked (:func:`~diffprog.core.blocking.run_blocked`)."""

    def value_impl(u):
        u = _float_array(u)
        if u.ndim == 0:
            out = np.empty(1, u.dtype)
            kernel(out, u.reshape(1))
            return out[0]
        with np.errstate(over="ignore"):  # u² overflows for huge |u|; the results are right
            return run_blocked(kernel, np.empty_like(u, order="C"), (u,))

    def derivative_impl(t, u, ans, out=None):
        u, t, ans = _float_array(u), np.asarray(t), np.asarray(ans)
        shape = np.broadcast_shapes(t.shape, u.shape)
        dtype = u.dtype if t.shape == shape else np.result_type(u, t)
        if not shape:
            res = np.empty(1, dtype)
            grad_kernel(res, t.reshape(1), u.reshape(1), ans.reshape(1))
            return res[0]
        if out is None:                   # jit passes out=t when t dies here (inplace_arg)
            out = np.empty(shape, dtype)
        with np.errstate(over="ignore"):
            return run_blocked(grad_kernel, out, (t, u, ans))

    f_p = Primitive(name, value_impl)
    grad_p = Primitive(name + "_grad", derivative_impl)
    f_p.jvp = lambda primals, tangents, ans: grad_p.bind(tangents[0], primals[0], ans)
    f_p.vjps = (lambda g, ans, u: grad_p.bind(g, u, ans),)

    def grad_jvp(primals, tangents, ans):
        t, u, a = primals
        dt, du, _ = tangents
        out = None if dt is None else grad_p.bind(dt, u, a)
        if du is not None:
            d = t * second(u) * du
            out = d if out is None else out + d
        return out

    grad_p.jvp = grad_jvp

    def grad_transpose(ct, t, u, a):
        if is_undefined(u) or is_undefined(a):
            raise TypeError(f"{name}_grad is linear only in its first argument")
        return grad_p.bind(ct, u, a), None, None

    grad_p.transpose = grad_transpose
    grad_p.inplace_arg = 0                # the kernel reads t only for its last product
    grad_p.vjps = (lambda g, ans, t, u, a: grad_p.bind(g, u, a),
                   lambda g, ans, t, u, a: g * t * second(u),
                   lambda g, ans, t, u, a: None)
    f_p.batch = _elementwise(f_p)
    grad_p.batch = _elementwise(grad_p)
    return f_p, grad_p


gelu_p, gelu_grad_p = _elementwise_pair("gelu", _gelu_kernel, _gelu_grad_kernel, _gelu_second)
gelu_tanh_p, gelu_tanh_grad_p = _elementwise_pair("gelu_tanh", _gelu_tanh_kernel,
                                                  _gelu_tanh_grad_kernel, _gelu_tanh_second)


# ------------------------------------------------------------------- masked softargmax
def _masked_softargmax_kernel(out, x, keep, blocked, inv_count):
    """``out = softargmax(x)`` over the last axis with the ``blocked`` entries at ``−∞``.

    Each row is shifted by the mean ``c`` of its kept scores instead of their maximum (a row
    mean is a matrix-vector product; a row maximum is a slow NumPy reduction over short rows).
    As the maximum is at least ``c``, the row sum of ``exp(x − c)`` is at least 1 and overflows
    only when the scores of the row are spread over more than the exponent range; such rows
    (and rows with non-finite scores) are recomputed with the maximum. A row's result depends
    on that row's kept scores only, bit for bit. ``out`` may be ``x``."""
    ones = _filled(out.shape[-1], 1.0, out.dtype)
    with np.errstate(over="ignore", invalid="ignore"):   # such rows are recomputed below
        c = _row_dots(x, keep)
        c *= inv_count
        e = np.subtract(x, c[..., None])
        np.copyto(e, -np.inf, where=blocked)
        np.exp(e, out=e)
        s = np.asarray(np.matmul(e, ones))
        bad = ~np.isfinite(s)
        if bad.any():                           # before x may be overwritten
            rows = np.nonzero(bad)
            fixed = _softargmax_rows(np.broadcast_to(x, out.shape)[rows],
                                     np.broadcast_to(blocked, out.shape)[rows])
        s[s == 0] = 1.0                         # a fully blocked row stays all zeros
        np.divide(1.0, s, out=s)
        np.multiply(e, s[..., None], out=out)
    if bad.any():
        out[rows] = fixed


def _softargmax_rows(x, blocked):
    """Row-wise softargmax of a 2-D ``x`` with ``blocked`` entries at ``−∞``, shifted by the
    row maximum (fully blocked rows give zeros)."""
    z = np.where(blocked, -np.inf, x)
    m = z.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    z -= m
    np.exp(z, out=z)
    s = z.sum(axis=-1, keepdims=True)
    s[s == 0] = 1.0
    z /= s
    return z


def _masked_softargmax_impl(x, mask, out=None):
    x = _float_array(x)
    mask = np.asarray(mask, dtype=bool)
    if out is None:                       # jit passes out=x when the scores die here
        out = np.empty(np.broadcast_shapes(x.shape, mask.shape), x.dtype)
    m = max(mask.ndim, 1)
    if (x.shape == out.shape and x.flags.c_contiguous and out.flags.c_contiguous
            and out.size and x.ndim >= m):
        # rows of the mask's shape, tiled to one block: same-shape passes and BLAS updates
        tile = out.shape[out.ndim - m:]
        lk = tile[-1]
        rows = math.prod(tile[:-1])
        per = max(1, blocking.BLOCK_BYTES // max(rows * lk * out.itemsize, 1))
        per = min(per, out.size // (rows * lk))
        return _run_rows(_masked_softargmax_rows_kernel, out, (x,), row_ndim=m,
                         extra=(_tiled_bias(mask, tile, per, out.dtype),))
    keep = mask.astype(x.dtype)
    count = np.maximum(keep.sum(axis=-1), 1.0)
    return _run_rows(_masked_softargmax_kernel, out, (x,), row_ndim=m,
                     extra=(keep, ~mask, 1.0 / count))


_BIAS_CACHE: dict = {}
_BIAS_LOCK = threading.Lock()
#: masks up to this many entries have their tiled bias cached (keyed by their bytes)
_BIAS_CACHE_MAX_MASK = 1 << 16


def _tiled_bias(mask, tile, per, dtype):
    """The mask as an additive bias (0 kept, −∞ blocked) of shape ``tile``, tiled ``per`` times
    along its rows: built once per distinct small mask (a causal mask is the same at every
    layer and step) and kept read-only in a small cache keyed by the mask's contents."""
    key = None
    if mask.size <= _BIAS_CACHE_MAX_MASK:
        key = (mask.tobytes(), mask.shape, tile, per, np.dtype(dtype).str)
        hit = _BIAS_CACHE.get(key)
        if hit is not None:
            return hit
    bias = np.where(np.broadcast_to(mask, tile), 0.0, -np.inf).astype(dtype)
    tiled = np.tile(bias.reshape(-1, tile[-1]), (per, 1))
    tiled.flags.writeable = False
    if key is not None:
        with _BIAS_LOCK:                  # threads (e.g. Dask workers) may fill it at once
            if len(_BIAS_CACHE) >= 32:
                _BIAS_CACHE.pop(next(iter(_BIAS_CACHE)))
            _BIAS_CACHE[key] = tiled
    return tiled


def _masked_softargmax_rows_kernel(out, x, bias):
    """:func:`_masked_softargmax_kernel` on a block seen as a 2-D stack of rows, with the mask
    tiled to the block as ``bias`` (0 kept, −∞ blocked), added to the scores in one same-shape
    pass. The scores are not shifted at all: ``softargmax(x) = eˣ / Σ eˣ`` exactly as long as
    the row sum ``s`` neither overflows nor falls below
    :func:`~diffprog.numpy.reductions.unshifted_range` (under which
    tail entries would lose precision as subnormals); such rows, rows with non-finite scores
    and fully blocked rows (``s = 0``) are recomputed with the row maximum. The normalization
    multiplies by ``(1/s) ⊗ 1`` built by BLAS (:func:`_outer2`), an in-place pass. ``out`` may
    be ``x`` (read for the last time before ``out`` is written)."""
    lk = out.shape[-1]
    o2, x2 = out.reshape(-1, lk), x.reshape(-1, lk)
    n = o2.shape[0]
    bias = bias[:n]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.add(x2, bias)
        np.exp(e, out=e)
        s = np.matmul(e, _filled(lk, 1.0, out.dtype))
        lo, hi = unshifted_range(out.dtype)
        bad = ~((s >= lo) & (s <= hi))
        fixed = None
        if bad.any():                           # before x may be overwritten
            rows = np.flatnonzero(bad)
            fixed = _softargmax_rows(x2[rows], bias[rows] != 0)
        np.divide(1.0, s, out=s)
        _outer2(o2, s, 1.0, 0.0, 0.0)
        o2 *= e
    if fixed is not None:
        o2[rows] = fixed


def _softargmax_tangent(p, t):
    return p * (t - _row_dot_traced(p, dnp.broadcast_to(t, dnp.shape(p))))


def _softargmax_grad_kernel(out, t, p):
    """``out = p ⊙ (t − ⟨p, t⟩)`` row by row (``out`` may be ``t``); on 2-D C-contiguous blocks
    ``⟨p, t⟩ ⊗ 1`` is built by BLAS (:func:`_outer2`) and the passes run in place."""
    s = _row_dots(p, t)
    if out.ndim == 2 and out.flags.c_contiguous and not np.may_share_memory(out, t):
        np.negative(s, out=s)
        _outer2(out, s, 1.0, 0.0, 0.0)
        out += t
    elif out.ndim == 2 and out.flags.c_contiguous:          # out is t
        out -= _outer2(np.empty_like(out), s, 1.0, 0.0, 0.0)
    else:
        np.subtract(t, s[..., None], out=out)
    out *= p


def _softargmax_grad_impl(t, p, out=None):
    t, p = np.asarray(t), np.asarray(p)
    if out is None:                       # jit passes out=t when t dies here (inplace_arg)
        out = np.empty(np.broadcast_shapes(t.shape, p.shape), np.result_type(t, p))
    t, p = (a if a.shape == out.shape else np.broadcast_to(a, out.shape) for a in (t, p))
    return _run_rows(_softargmax_grad_kernel, out, (t, p))


def _masked_softargmax_jvp(primals, tangents, ans):
    t = tangents[0]
    return None if t is None else softargmax_grad_p.bind(t, ans)


def _masked_softargmax_batch(args, dims):
    r = max(_ndim(a) - (d is not None) for a, d in zip(args, dims, strict=True))
    new = [a if d is None else pad_rank(to_front(a, d), r) for a, d in zip(args, dims,
                                                                           strict=True)]
    x, mask = new
    if dims[0] is None:          # only the mask is batched: give x the batch axis too
        ms = dnp.shape(mask)
        x = dnp.broadcast_to(x, ms[:1] + np.broadcast_shapes(dnp.shape(x), ms[1:]))
    return masked_softargmax_p.bind(x, mask), 0


masked_softargmax_p = Primitive("masked_softargmax", _masked_softargmax_impl)
masked_softargmax_p.jvp = _masked_softargmax_jvp
masked_softargmax_p.vjps = (lambda g, ans, x, mask: softargmax_grad_p.bind(g, ans),
                            lambda g, ans, x, mask: None)
masked_softargmax_p.batch = _masked_softargmax_batch
masked_softargmax_p.inplace_arg = 0


# ------------------------------------------------------------------------- standardize
def _standardize_kernel(out, x, eps):
    """``out = (x − μ)/√(σ² + ε)`` over the last axis."""
    mu = _row_means(x)
    np.subtract(x, mu[..., None], out=out)
    out *= _inv_std(out, eps)[..., None]


def _standardize_impl(x, *, eps):
    x = _float_array(x)
    return _run_rows(_standardize_kernel, np.empty_like(x, order="C"), (x,), extra=(eps,))


def _standardize_grad_kernel(out, t, x, y, eps):
    """``out = r (t − mean(t) − y mean(y t))`` with ``r = 2/(m + √(m² + 4ε))``,
    ``m = mean(y x)``: the JVP and VJP of :data:`standardize_p`."""
    m = _row_dots(y, x)
    m *= 1.0 / y.shape[-1]
    r = np.multiply(m, m)
    r += 4.0 * eps
    np.sqrt(r, out=r)
    r += m
    np.divide(2.0, r, out=r)
    ty = _row_dots(t, y)
    ty *= 1.0 / y.shape[-1]
    tm = _row_means(t)
    np.multiply(y, ty[..., None], out=out)
    np.subtract(t, out, out=out)
    out -= tm[..., None]
    out *= r[..., None]


def _standardize_grad_impl(t, x, y, *, eps):
    t, x, y = np.asarray(t), _float_array(x), _float_array(y)
    shape = np.broadcast_shapes(t.shape, x.shape, y.shape)
    out = np.empty(shape, np.result_type(t, x, y))
    t, x, y = (a if a.shape == shape else np.broadcast_to(a, shape) for a in (t, x, y))
    return _run_rows(_standardize_grad_kernel, out, (t, x, y), extra=(eps,))


def _standardize_tangent(x, y, t, eps):
    """The same map as :data:`standardize_grad_p`, with differentiable operations (its
    derivatives in ``x`` and ``y`` are taken from this composition)."""
    d = float(dnp.shape(y)[-1])
    t = dnp.broadcast_to(t, np.broadcast_shapes(dnp.shape(t), dnp.shape(y)))
    m = _row_dot_traced(y, x) / d
    r = 2.0 / (m + dnp.sqrt(m * m + 4.0 * eps))
    tm = _row_sum_traced(t) / d
    ty = _row_dot_traced(t, y) / d
    return r * (t - tm - y * ty)


def _standardize_jvp(primals, tangents, ans, *, eps):
    t = tangents[0]
    return None if t is None else standardize_grad_p.bind(t, primals[0], ans, eps=eps)


def _standardize_batch(args, dims, *, eps):
    (x,), (d,) = args, dims
    return standardize_p.bind(to_front(x, d), eps=eps), 0


standardize_p = Primitive("standardize", _standardize_impl)
standardize_p.jvp = _standardize_jvp
standardize_p.vjps = (lambda g, ans, x, *, eps: standardize_grad_p.bind(g, x, ans, eps=eps),)
standardize_p.batch = _standardize_batch


def _standardize_grad_jvp(primals, tangents, ans, *, eps):
    from ..core.api import jvp

    t, x, y = primals
    dt, dx, dy = tangents
    out = None if dt is None else standardize_grad_p.bind(dt, x, y, eps=eps)
    if dx is not None or dy is not None:
        dx = dnp.zeros_like(x) if dx is None else dx
        dy = dnp.zeros_like(y) if dy is None else dy
        d = jvp(lambda x_, y_: _standardize_tangent(x_, y_, t, eps), (x, y), (dx, dy))[1]
        out = d if out is None else out + d
    return out


def _standardize_grad_vjp_of(argnum):
    def rule(g, ans, t, x, y, *, eps):
        from ..core.api import vjp

        _, pull = vjp(lambda x_, y_: _standardize_tangent(x_, y_, t, eps), x, y)
        return pull(g)[argnum - 1]

    return rule


def _standardize_grad_transpose(ct, t, x, y, *, eps):
    if is_undefined(x) or is_undefined(y):
        raise TypeError("standardize_grad is linear only in its first argument")
    return standardize_grad_p.bind(ct, x, y, eps=eps), None, None


def _standardize_grad_batch(args, dims, *, eps):
    r = max(_ndim(a) - (d is not None) for a, d in zip(args, dims, strict=True))
    new = [a if d is None else pad_rank(to_front(a, d), r) for a, d in zip(args, dims,
                                                                           strict=True)]
    return standardize_grad_p.bind(*new, eps=eps), 0


#: ``standardize_grad(t, x, y) = r (t − mean(t) − y mean(y t))``: the JVP (``t`` a tangent) and
#: the VJP (``t`` a cotangent; the Jacobian is symmetric) of :data:`standardize_p` at ``x``
#: with ``y = standardize(x)``, in one cache-blocked kernel. Linear in ``t``; its derivatives in
#: ``x`` and ``y`` are those of the composition :func:`_standardize_tangent`.
standardize_grad_p = Primitive("standardize_grad", _standardize_grad_impl)
standardize_grad_p.jvp = _standardize_grad_jvp
standardize_grad_p.vjps = (
    lambda g, ans, t, x, y, *, eps: standardize_grad_p.bind(g, x, y, eps=eps),
    _standardize_grad_vjp_of(1), _standardize_grad_vjp_of(2))
standardize_grad_p.transpose = _standardize_grad_transpose
standardize_grad_p.batch = _standardize_grad_batch


# ------------------------------------------------------------ layer norm with scale and shift
# ``layer_norm_p(x, γ, β) = (standardize(x) ⊙ γ + β, μ, r)`` (γ, β of shape (D,)) and its VJP
# ``layer_norm_grad_p(g, x, γ, μ, r) = (∂x, ∂γ, ∂β)`` each run as one cache-blocked kernel: the
# backward pass reads the forward's row statistics (as PyTorch saves its mean and rstd), and
# the parameter gradients are accumulated over the blocks. Their JVPs, their VJPs and their
# batching rules come from the compositions ``_layer_norm_composed`` and
# ``_layer_norm_grad_composed`` of the primitives above (so every order works).
#
# NumPy's broadcasting passes (a row vector γ, a per-row μ) run one short inner loop per row and
# cost about twice a flat pass. The kernels therefore build every broadcast factor as a full
# block with one BLAS product of inner dimension 3 (e.g. ``[r, −μr, 1] @ [γ; 0; 0] = r ⊗ γ``,
# cheaper than one broadcasting pass; NumPy runs inner dimension 1 without BLAS) and combine the
# data with flat in-place passes only, from the row moments ``μ = mean(x)`` and
# ``σ² = mean(x²) − μ²``. That form loses ``log₂(μ²/σ²)`` bits, so rows where ``μ² > κσ²``
# (:data:`_MOMENT_KAPPA`; ≤ 5 bits) are recomputed from the centred formulas.

#: rows with ``μ² ≤ κ σ²`` are standardized from their raw moments (≤ log₂(1 + κ) bits lost)
_MOMENT_KAPPA = 16.0


def _outer2(out, a0, b0, a1, b1):
    """``out = a0 ⊗ b0 + a1 ⊗ b1`` (per-row ``a``, per-column ``b``, scalars broadcast) as one
    BLAS product of inner dimension 2 (NumPy runs inner dimension 1 without BLAS)."""
    n, d = out.shape
    a = np.empty((n, 2), out.dtype)
    a[:, 0] = a0
    a[:, 1] = a1
    b = np.empty((2, d), out.dtype)
    b[0] = b0
    b[1] = b1
    return np.matmul(a, b, out=out)


def _row_moments(x, eps):
    """Per row of the 2-D ``x``: ``(μ, r = 1/√(σ² + ε), bad)`` from ``mean(x)`` and
    ``mean(x²)``; ``bad`` lists the rows too ill-conditioned for the raw moments (``μ² > κσ²``,
    or a non-finite value), whose ``μ`` and ``r`` are set to 0."""
    inv_d = 1.0 / x.shape[-1]
    mu = np.matmul(x, _filled(x.shape[-1], inv_d, x.dtype))
    with np.errstate(invalid="ignore", over="ignore"):  # such rows are bad
        var = _row_dots(x, x)
        var *= inv_d
        mu2 = np.multiply(mu, mu)
        var -= mu2
        mu2 -= _MOMENT_KAPPA * var
    bad = None
    if not (mu2.max(initial=-np.inf) <= 0.0):          # NaN compares False
        bad = np.flatnonzero(~(mu2 <= 0.0))
        mu[bad] = 0.0
        var[bad] = 1.0
    var += eps
    np.sqrt(var, out=var)
    r = np.divide(1.0, var, out=var)
    if bad is not None:
        r[bad] = 0.0
    return mu, r, bad


def _block_rows(x):
    """Row slices of the 2-D ``x`` of about :data:`~diffprog.core.blocking.BLOCK_BYTES`."""
    n = x.shape[0]
    per = max(1, blocking.BLOCK_BYTES // max(x.shape[1] * x.itemsize, 1))
    return [slice(s, min(s + per, n)) for s in range(0, n, per)]


def _layer_norm_centred_kernel(out, x, gamma, beta, eps):
    """``out = γ ⊙ (x − μ)/√(σ² + ε) + β`` from the centred rows (any leading shape)."""
    mu = _row_means(x)
    np.subtract(x, mu[..., None], out=out)
    out *= _inv_std(out, eps)[..., None]
    out *= gamma
    out += beta


def _layer_norm_rows(out, x, gamma, beta, eps):
    """``out = x ⊙ (r ⊗ γ) + ((−μ r) ⊗ γ + 1 ⊗ β)`` for the 2-D C-contiguous ``x``: the row
    statistics once for all rows, then per block two products of inner dimension 3 (the
    broadcast factors) and two in-place passes; bad rows are recomputed centred. Returns the
    row statistics ``(μ, r)`` for the backward pass."""
    mu, r, bad = _row_moments(x, eps)
    n, d = x.shape
    a = np.empty((n, 3), x.dtype)                      # rows [r, −μ r, 1]
    a[:, 0] = r
    np.multiply(mu, r, out=a[:, 1])
    np.negative(a[:, 1], out=a[:, 1])
    a[:, 2] = 1.0
    scale = np.zeros((3, d), x.dtype)                  # a @ scale = r ⊗ γ
    scale[0] = gamma
    shift = np.zeros((3, d), x.dtype)                  # a @ shift = (−μ r) ⊗ γ + 1 ⊗ β
    shift[1] = gamma
    shift[2] = beta
    tmp = None
    for b in _block_rows(x):
        o = np.matmul(a[b], scale, out=out[b])
        o *= x[b]                                      # in place: faster than out = u ⊙ v
        tmp = np.matmul(a[b], shift, out=None if tmp is None or len(tmp) != len(o)
                        else tmp)
        o += tmp
    if bad is not None:
        sub = np.empty((len(bad), d), out.dtype)
        _layer_norm_centred_kernel(sub, x[bad], gamma, beta, eps)
        out[bad] = sub
        mu[bad], r[bad] = _centred_stats(x[bad], eps)
    return mu, r


def _centred_stats(x, eps):
    """``(μ, 1/√(σ² + ε))`` over the last axis from the centred rows."""
    mu = _row_means(x)
    return mu, _inv_std(np.subtract(x, mu[..., None]), eps)


def _as_rows(a, shape, dtype):
    """``a`` broadcast to ``shape`` as a C-contiguous 2-D stack of rows of ``dtype``."""
    if a.shape == shape and a.dtype == dtype and a.flags.c_contiguous:
        return a.reshape(-1, shape[-1])
    a = np.broadcast_to(a, shape) if a.shape != shape else a
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1, shape[-1])


def _flat_stats(v, lead, dtype):
    """Row statistics ``v`` broadcast to the leading shape ``lead``, flat, C-contiguous."""
    if type(v) is np.ndarray and v.shape == lead and v.dtype == dtype and v.flags.c_contiguous:
        return v.reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(v, lead), dtype=dtype).reshape(-1)


def _layer_norm_impl(x, gamma, beta, *, eps):
    """``(γ ⊙ (x − μ) r + β, μ, r)`` with ``r = 1/√(σ² + ε)`` over the last axis."""
    x = _float_array(x)
    if x.ndim == 0:
        raise ValueError("layer_norm: argument 'x' must have at least one axis")
    dtype = np.result_type(x, gamma, beta)
    d = x.shape[-1:]
    shape = (x.shape if np.shape(gamma) in ((), d) and np.shape(beta) in ((), d)
             else np.broadcast_shapes(x.shape, np.shape(gamma), np.shape(beta)))
    out = np.empty(shape, dtype)
    if out.shape != x.shape or dtype != x.dtype or out.size == 0:
        np.multiply(_standardize_impl(x, eps=eps), gamma, out=out)
        out += beta
        mu, r = _centred_stats(x, eps)
        return out, mu.astype(dtype, copy=False), r.astype(dtype, copy=False)
    rows = _as_rows(x, x.shape, dtype)
    mu, r = _layer_norm_rows(out.reshape(rows.shape), rows, np.asarray(gamma, dtype),
                             np.asarray(beta, dtype), eps)
    return out, mu.reshape(x.shape[:-1]), r.reshape(x.shape[:-1])


def _layer_norm_grad_centred_kernel(dx, g, x, gamma, eps, dgamma, dbeta):
    """With ``x̂ = x − μ``, ``r = 1/√(σ² + ε)``, ``y = r x̂`` and ``h = g γ``:
    ``∂β = Σ g``, ``∂γ = Σ g y = (g x̂)ᵀ r``, and
    ``∂x = r (h − mean(h) − y mean(h y)) = r ⊙ (g γ) − (r³ b) ⊙ x̂ − r a`` (per-row factors
    broadcast along the rows) with ``a = mean(g γ)``, ``b = mean((g x̂) γ)``, on the centred
    rows of a 2-D block."""
    dt = dx.dtype
    xh = np.subtract(x, _row_means(x)[..., None], dtype=dt)   # x̂
    r = _inv_std(xh, eps)
    gx = np.multiply(g, xh)
    dbeta += np.matmul(np.ones(dx.shape[0], dt), g)
    dgamma += np.matmul(r, gx)
    a = _row_means(g, gamma)
    b = _row_means(gx, gamma)
    b *= r
    b *= r
    b *= r
    np.multiply(g, gamma, out=dx)
    dx *= r[..., None]
    np.multiply(xh, b[..., None], out=gx)
    dx -= gx
    a *= r
    dx -= a[..., None]


def _layer_norm_grad_rows(dx, g, x, gamma, mu, r, eps, dgamma, dbeta):
    """The formulas of :func:`_layer_norm_grad_centred_kernel` with ``x̂ = x − μ`` expanded,
    for 2-D C-contiguous rows: ``a = mean(g γ)``, ``c = mean(h y) = r (mean(g x γ) − μ a)``,
    ``q = r² c``, ``∂γ = (g x)ᵀ r − gᵀ(r μ)``, ``∂β = gᵀ1`` and
    ``∂x = g ⊙ (r ⊗ γ) + x ⊙ (−q ⊗ 1) + (q μ − r a) ⊗ 1``: per block of rows (so that ``g``
    and ``x`` are read from memory once, the block staying in cache), ``a``, the column sums,
    the products ``g x``, its row sums and three broadcast factors (products of inner
    dimension 3) with in-place passes. ``dx`` may be ``g``'s buffer (``g``
    is read for the last time by ``dx *= r ⊗ γ``). ``μ`` and ``r`` are the forward pass's row
    statistics; rows too ill-conditioned for the expanded formulas (``μ² r² > κ (1 − ε r²)``,
    i.e. ``μ² > κσ²``, or non-finite) are recomputed centred."""
    with np.errstate(invalid="ignore", over="ignore"):
        r2 = np.multiply(r, r)
        bound = np.multiply(r2, -eps)
        bound += 1.0
        bound *= _MOMENT_KAPPA
        r2 *= mu
        r2 *= mu
        ok = r2 <= bound
    bad = None
    if not ok.all():
        bad = np.flatnonzero(~ok)
        mu, r = mu.copy(), r.copy()
        mu[bad] = 0.0
        r[bad] = 0.0
    n, d = x.shape
    inv_d = 1.0 / d
    cols = np.empty((2, n), x.dtype)                   # [1; −μ r]ᵀ g: ∂β and part of ∂γ
    cols[0] = 1.0
    np.multiply(mu, r, out=cols[1])
    np.negative(cols[1], out=cols[1])
    a = np.empty((n, 3), x.dtype)                      # rows [r, −q, q μ − r a]
    a[:, 0] = r
    fac_g = np.zeros((3, d), x.dtype)                  # a @ fac_g = r ⊗ γ
    fac_g[0] = gamma
    fac_x = np.zeros((3, d), x.dtype)                  # a @ fac_x = −q ⊗ 1
    fac_x[1] = 1.0
    fac_1 = np.zeros((3, d), x.dtype)                  # a @ fac_1 = (q μ − r a) ⊗ 1
    fac_1[2] = 1.0
    in_place = np.may_share_memory(dx, g)
    g_bad = None if bad is None else g[bad]            # a copy: dx may overwrite g below
    gx = tmp = None
    for b in _block_rows(x):                           # every read of g and x block-local
        gb, xb, rb, mub = g[b], x[b], r[b], mu[b]
        gx = np.multiply(gb, xb, out=None if gx is None or len(gx) != len(gb) else gx)
        sums = np.matmul(cols[:, b], gb)
        dbeta += sums[0]
        dgamma += sums[1]
        ab = np.matmul(gb, gamma)
        ab *= inv_d                                    # a = mean(g γ)
        dgamma += np.matmul(rb, gx)
        c = np.matmul(gx, gamma)
        c *= inv_d
        c -= mub * ab
        c *= rb
        q = np.multiply(rb, rb)
        q *= c                                         # q = r² c
        np.negative(q, out=a[b, 1])
        q *= mub
        q -= rb * ab
        a[b, 2] = q
        o = dx[b]
        if in_place:
            o *= np.matmul(a[b], fac_g, out=gx)        # g's last read
        else:
            np.matmul(a[b], fac_g, out=o)
            o *= gb
        tmp = np.matmul(a[b], fac_x, out=gx)
        tmp *= xb
        o += tmp
        o += np.matmul(a[b], fac_1, out=tmp)
    if bad is not None:
        sub = np.empty((len(bad), d), dx.dtype)
        _layer_norm_grad_centred_kernel(sub, g_bad, x[bad], gamma, eps, dgamma,
                                        np.zeros(d, dx.dtype))
        dx[bad] = sub


def _layer_norm_grad_impl(g, x, gamma, mu, r, *, eps, out=None):
    g, x = np.asarray(g), _float_array(x)
    shape = g.shape if g.shape == x.shape else np.broadcast_shapes(g.shape, x.shape)
    dtype = np.result_type(g, x, gamma)
    if out is None or not out.flags.c_contiguous:    # jit: out=g when g dies here
        out = np.empty(shape, dtype)
    dgamma = np.zeros(shape[-1], dtype)
    dbeta = np.zeros(shape[-1], dtype)
    if out.size:
        rows = (-1, shape[-1])
        g2 = g if g is out else _as_rows(g, shape, dtype)
        stats = [_flat_stats(v, shape[:-1], dtype) for v in (mu, r)]
        _layer_norm_grad_rows(out.reshape(rows), g2.reshape(rows), _as_rows(x, shape, dtype),
                              np.asarray(gamma, dtype), *stats, eps, dgamma, dbeta)
    return out, dgamma.reshape(np.shape(gamma)), dbeta


def _layer_norm_composed(x, gamma, beta, *, eps):
    mu = dnp.mean(x, axis=-1)
    xc = x - dnp.expand_dims(mu, -1)
    r = 1.0 / dnp.sqrt(dnp.mean(xc * xc, axis=-1) + eps)
    return standardize_p.bind(x, eps=eps) * gamma + beta, mu, r


def _layer_norm_grad_composed(g, x, gamma, mu, r, *, eps):
    """The VJP of the layer norm in ``x, γ, β`` written with the forward statistics ``μ, r``
    as inputs: equal to the VJP wherever they are ``x``'s statistics, so its derivatives along
    ``μ(x), r(x)`` (through :data:`layer_norm_p`'s second and third results) are right."""
    shape = np.broadcast_shapes(dnp.shape(g), dnp.shape(x))
    g = dnp.broadcast_to(g, shape)
    d = float(shape[-1])
    rr = dnp.expand_dims(r, -1)
    y = (x - dnp.expand_dims(mu, -1)) * rr
    h = g * gamma
    dx = rr * (h - _row_sum_traced(h) / d - y * (_row_dot_traced(h, y) / d))
    lead = tuple(range(len(shape) - 1))
    return dx, dnp.reshape(dnp.sum(g * y, axis=lead), dnp.shape(gamma)), dnp.sum(g, axis=lead)


def _from_composition(prim, composed, nout=None):
    """Attach JVP, VJP and batching rules to ``prim`` that differentiate / vectorize the
    composition ``composed`` (same arguments and parameters, same results)."""

    def jvp_rule(primals, tangents, ans, **params):
        from ..core.api import jvp

        ts = [dnp.zeros_like(p) if t is None else t
              for p, t in zip(primals, tangents, strict=True)]
        return jvp(lambda *a: composed(*a, **params), tuple(primals), tuple(ts))[1]

    def vjp_joint(g, ans, argnums, *args, **params):
        from ..core.api import vjp

        _, pull = vjp(lambda *a: composed(*a, **params), *args)
        if nout:                                      # symbolic-zero cotangents as zeros
            g = tuple(dnp.zeros_like(a) if c is None else c for c, a in zip(g, ans, strict=True))
        cts = pull(g)
        return [cts[i] for i in argnums]

    def batch_rule(args, dims, **params):
        from ..core.batching import vmap

        out = vmap(lambda *a: composed(*a, **params), in_axes=tuple(dims))(*args)
        return out, ((0,) * nout if nout else 0)

    prim.jvp = jvp_rule
    prim.vjp_joint = vjp_joint
    prim.batch = batch_rule


#: ``layer_norm_p(x, γ, β) = (γ ⊙ (x − μ) r + β, μ, r)``: the row statistics are results too,
#: so the backward pass reads them instead of recomputing them.
layer_norm_p = Primitive("layer_norm", _layer_norm_impl, multiple_results=True)
layer_norm_grad_p = Primitive("layer_norm_grad", _layer_norm_grad_impl, multiple_results=True)
_from_composition(layer_norm_p, _layer_norm_composed, nout=3)
_from_composition(layer_norm_grad_p, _layer_norm_grad_composed, nout=3)
_layer_norm_composed_vjp = layer_norm_p.vjp_joint


def _layer_norm_vjp_joint(g, ans, argnums, x, gamma, beta, *, eps):
    g_out, g_mu, g_r = g
    if g_out is None or g_mu is not None or g_r is not None:   # the statistics are read too
        return _layer_norm_composed_vjp(g, ans, argnums, x, gamma, beta, eps=eps)
    cts = layer_norm_grad_p.bind(g_out, x, gamma, ans[1], ans[2], eps=eps)
    return [cts[i] for i in argnums]


def _layer_norm_batch(args, dims, *, eps):
    x, gamma, beta = args
    if dims[1] is None and dims[2] is None:           # only the data is batched: fast path
        return layer_norm_p.bind(to_front(x, dims[0]), gamma, beta, eps=eps), (0, 0, 0)
    from ..core.batching import vmap

    f = lambda *a: _layer_norm_composed(*a, eps=eps)  # noqa: E731
    return vmap(f, in_axes=tuple(dims))(*args), (0, 0, 0)


layer_norm_grad_p.inplace_arg = 0                 # ∂x may overwrite g (read before)
layer_norm_p.vjp_joint = _layer_norm_vjp_joint        # the fused VJP for reverse mode
layer_norm_p.batch = _layer_norm_batch


# -------------------------------------------------------------- softargmax derivative
def _softargmax_grad_composed(t, p):
    return _softargmax_tangent(p, t)


def _softargmax_grad_transpose(ct, t, p):
    if is_undefined(p):
        raise TypeError("softargmax_grad is linear only in its first argument")
    return softargmax_grad_p.bind(ct, p), None


#: ``softargmax_grad(t, p) = p ⊙ (t − ⟨p, t⟩)`` over the last axis: the JVP (``t`` a tangent)
#: and the VJP (``t`` a cotangent; ``diag(p) − ppᵀ`` is symmetric) of a softargmax with result
#: ``p``, masked or not (blocked entries have ``p = 0``), in one cache-blocked kernel.
softargmax_grad_p = Primitive("softargmax_grad", _softargmax_grad_impl)
_from_composition(softargmax_grad_p, _softargmax_grad_composed)
softargmax_grad_p.transpose = _softargmax_grad_transpose
softargmax_grad_p.inplace_arg = 0
