"""Fused primitives for the layers' hot paths (book §8.4.3: any function with its own derivative
rules can be a primitive).

A Transformer's time outside matrix products goes to elementwise passes over large activations.
Written as compositions of elementwise NumPy operations, the exact GELU costs about twenty passes
over the MLP's hidden activations in the forward and backward passes, and masked attention about
fifteen over the attention scores. These primitives compute the same functions in a few passes,
with rules that are themselves written with differentiable operations (so every order of
differentiation, ``vmap`` and ``jit`` still work):

- ``gelu_p``: ``u Φ(u) = ½ u erfc(−u/√2)``, one ``erfc``. Its derivative ``Φ(u) + u φ(u)`` is
  ``gelu_grad_p(u, gelu(u))``, which reads ``Φ(u) = gelu(u)/u`` off the forward result (``½`` at
  ``u = 0``) instead of evaluating ``erfc`` again. ``gelu_grad_p`` is exact only on the pairs
  ``(u, gelu(u))`` it is given, so its rules differentiate the composition ``u ↦ gelu'(u)``: the
  derivative in ``u`` is ``gelu''(u) = φ(u)(2 − u²)`` and the one in the second argument is 0.
- ``gelu_tanh_p``: the tanh form ``½ u (1 + tanh(k(u + a u³)))`` (``k = √(2/π)``,
  ``a = 0.044715``) in nine in-place passes; its derivative ``gelu_tanh_grad_p(u, gelu(u))``
  uses ``c = gelu(u)/u = ½(1 + tanh(…))`` from the forward result:
  ``c + 2 k u c (1 − c)(1 + 3 a u²)``; its own derivative ``k(1 − T²)(P − k u T P² + 3 a u²)``
  (``T = tanh(…)``, ``P = 1 + 3 a u²``) is written with differentiable operations.
- ``masked_softargmax_p``: ``softargmax`` over the last axis restricted to a boolean mask
  (True = kept): blocked entries get probability exactly 0 and cotangent exactly 0, and a row
  with no kept entry is all zeros (never NaN). JVP ``p ⊙ (t − ⟨p, t⟩)``, the same VJP (the
  Jacobian ``diag(p) − ppᵀ`` is symmetric).
- ``standardize_p``: ``y = (x − μ)/√(σ² + ε)`` over the last axis (the core of layer
  normalization, §4.5.2). Its JVP and VJP are ``r (t − mean(t) − y mean(y t))`` (the Jacobian
  ``r(I − 11ᵀ/D − y yᵀ/D)`` is symmetric), with ``r = 1/√(σ² + ε)`` recovered from
  ``m = mean(y x) = σ² r`` as ``r = 2/(m + √(m² + 4ε))`` (the positive root of
  ``ε r² + m r − 1 = 0``): two passes over the data instead of recomputing the moments.
"""

from __future__ import annotations

import math

import numpy as np

from .. import numpy as dnp
from ..core.batching_rules import _elementwise, _ndim, pad_rank, to_front
from ..core.primitive import Primitive

__all__ = ["gelu_p", "gelu_grad_p", "gelu_tanh_p", "gelu_tanh_grad_p", "masked_softargmax_p",
           "standardize_p"]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------- GELU
def _gelu_impl(u):
    u = np.asarray(u)
    from scipy.special import erfc

    phi = erfc(u * -_INV_SQRT_2)
    phi *= 0.5
    phi *= u
    return phi[()] if phi.ndim == 0 else phi


def _gelu_grad_impl(u, ans):
    shape = np.shape(u)
    u = np.atleast_1d(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = np.asarray(ans / u)
    cdf = np.where(u == 0, np.asarray(0.5, dtype=cdf.dtype), cdf)
    e = np.multiply(u, u)
    e *= -0.5
    np.exp(e, out=e)
    e *= u
    e *= _INV_SQRT_2PI
    e += cdf
    return e.reshape(shape) if shape else e[0]


def _gelu_second(u):
    """``gelu''(u) = φ(u)(2 − u²)``, written with differentiable operations."""
    u2 = u * u
    return dnp.exp(-0.5 * u2) * (2.0 - u2) * _INV_SQRT_2PI


gelu_p = Primitive("gelu", _gelu_impl)
gelu_grad_p = Primitive("gelu_grad", _gelu_grad_impl)
gelu_p.jvp = lambda primals, tangents, ans: tangents[0] * gelu_grad_p.bind(primals[0], ans)
gelu_p.vjps = (lambda g, ans, u: g * gelu_grad_p.bind(u, ans),)


def _gelu_grad_jvp(primals, tangents, ans):
    t = tangents[0]
    return None if t is None else t * _gelu_second(primals[0])


gelu_grad_p.jvp = _gelu_grad_jvp
gelu_grad_p.vjps = (lambda g, ans, u, a: g * _gelu_second(u), lambda g, ans, u, a: None)
gelu_p.batch = _elementwise(gelu_p)
gelu_grad_p.batch = _elementwise(gelu_grad_p)


# ------------------------------------------------------------------------- tanh GELU
_K = math.sqrt(2.0 / math.pi)
_A = 0.044715


def _gelu_tanh_impl(u):
    shape = np.shape(u)
    u = np.atleast_1d(u)
    s = np.multiply(u, u)
    s *= _A
    s += 1.0
    s *= u
    s *= _K
    np.tanh(s, out=s)
    s += 1.0
    s *= u
    s *= 0.5
    return s.reshape(shape) if shape else s[0]


def _gelu_tanh_grad_impl(u, ans):
    shape = np.shape(u)
    u = np.atleast_1d(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.asarray(ans / u)
    c = np.where(u == 0, np.asarray(0.5, dtype=c.dtype), c)
    q = np.multiply(u, u)
    q *= 3.0 * _A
    q += 1.0
    q *= u
    q *= 2.0 * _K
    q *= c
    q *= 1.0 - c
    q += c
    return q.reshape(shape) if shape else q[0]


def _gelu_tanh_second(u):
    """``k (1 − T²)(P − k u T P² + 3 a u²)`` with ``T = tanh(k(u + a u³))``, ``P = 1 + 3 a u²``."""
    u2 = u * u
    T = dnp.tanh(_K * (u + _A * u2 * u))
    P = 1.0 + 3.0 * _A * u2
    return _K * (1.0 - T * T) * (P - _K * u * T * P * P + 3.0 * _A * u2)


gelu_tanh_p = Primitive("gelu_tanh", _gelu_tanh_impl)
gelu_tanh_grad_p = Primitive("gelu_tanh_grad", _gelu_tanh_grad_impl)
gelu_tanh_p.jvp = lambda primals, tangents, ans: tangents[0] * gelu_tanh_grad_p.bind(primals[0],
                                                                                     ans)
gelu_tanh_p.vjps = (lambda g, ans, u: g * gelu_tanh_grad_p.bind(u, ans),)


def _gelu_tanh_grad_jvp(primals, tangents, ans):
    t = tangents[0]
    return None if t is None else t * _gelu_tanh_second(primals[0])


gelu_tanh_grad_p.jvp = _gelu_tanh_grad_jvp
gelu_tanh_grad_p.vjps = (lambda g, ans, u, a: g * _gelu_tanh_second(u),
                         lambda g, ans, u, a: None)
gelu_tanh_p.batch = _elementwise(gelu_tanh_p)
gelu_tanh_grad_p.batch = _elementwise(gelu_tanh_grad_p)


# ------------------------------------------------------------------- masked softargmax
def _masked_softargmax_impl(x, mask):
    z = np.where(mask, x, np.asarray(-np.inf, dtype=np.result_type(x)))
    m = z.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    z -= m
    np.exp(z, out=z)
    s = z.sum(axis=-1, keepdims=True)
    s[s == 0] = 1.0
    z /= s
    return z


def _softargmax_tangent(p, t):
    return p * (t - dnp.sum(p * t, axis=-1, keepdims=True))


def _masked_softargmax_jvp(primals, tangents, ans):
    t = tangents[0]
    return None if t is None else _softargmax_tangent(ans, t)


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
masked_softargmax_p.vjps = (lambda g, ans, x, mask: _softargmax_tangent(ans, g),
                            lambda g, ans, x, mask: None)
masked_softargmax_p.batch = _masked_softargmax_batch


# ------------------------------------------------------------------------- standardize
def _standardize_impl(x, *, eps):
    xc = x - x.mean(axis=-1, keepdims=True)
    var = np.square(xc).mean(axis=-1, keepdims=True)
    var += eps
    np.sqrt(var, out=var)
    xc /= var
    return xc


def _standardize_tangent(x, y, t, eps):
    m = dnp.mean(y * x, axis=-1, keepdims=True)
    r = 2.0 / (m + dnp.sqrt(m * m + 4.0 * eps))
    tm = dnp.mean(t, axis=-1, keepdims=True)
    ty = dnp.mean(t * y, axis=-1, keepdims=True)
    return r * (t - tm - y * ty)


def _standardize_jvp(primals, tangents, ans, *, eps):
    t = tangents[0]
    return None if t is None else _standardize_tangent(primals[0], ans, t, eps)


def _standardize_batch(args, dims, *, eps):
    (x,), (d,) = args, dims
    return standardize_p.bind(to_front(x, d), eps=eps), 0


standardize_p = Primitive("standardize", _standardize_impl)
standardize_p.jvp = _standardize_jvp
standardize_p.vjps = (lambda g, ans, x, *, eps: _standardize_tangent(x, ans, g, eps),)
standardize_p.batch = _standardize_batch
