r"""``diffprog.scipy.special``: differentiable special functions with SciPy's names.

Every function here has derivatives of any order in forward and reverse mode. The elementwise
functions are primitives (Book §8.4.1) whose implementation is the SciPy routine and whose
derivative rules are written with differentiable functions, so that derivatives nest
(Book §8.4.2): ``gammaln' = digamma``, ``digamma' = polygamma(1, ·)``, ``polygamma(n, ·)' =
polygamma(n + 1, ·)``; ``erf' = 2/√π e^{-x²}``; ``erfinv' = √π/2 e^{erfinv(y)²}``;
``expit' = σ(1 − σ)``; ``logit' = 1/(p(1 − p))``. The reductions (``logsumexp``, ``softmax``,
``log_softmax``) are built on the logsumexp primitive of :mod:`diffprog.numpy` (kept whole for
numerical stability, Book §4.4.2 and §8.4.1).

Names (book ↔ SciPy). The book calls the log-sum-exp a "softmax" (§4.4.2) and the normalized
exponential a "softargmax" (§4.4.4); it calls the sigmoid ``expit`` the "logistic" function
(§4.4.3). This module follows SciPy: ``softmax`` is the normalized exponential. The book's names
are offered as documented aliases: :data:`softargmax` (= :func:`softmax`) and :data:`logistic`
(= :func:`expit`). There is deliberately no alias binding ``softmax`` to ``logsumexp``.

Conventions at special points (documented elements of the derivative where the function is
singular or extended by continuity):

- ``xlogy(0, y) = 0``; ``∂x xlogy(x, y) = log y`` (also at ``x = 0``) and
  ``∂y xlogy(x, y) = x / y``, which is ``0`` at ``x = 0`` (even when ``y = 0``).
  ``xlog1py`` likewise with ``log1p(y)`` and ``x / (1 + y)``.
- ``entr(x) = −x log x`` for ``x > 0``, ``0`` at ``0`` and ``−∞`` for ``x < 0`` (SciPy);
  ``entr'(x) = −1 − log x`` for ``x > 0``, ``+∞`` at ``x = 0`` (the one-sided limit) and ``nan``
  for ``x < 0``, where the function is ``−∞``.
- ``logsumexp`` with ``b`` uses the shift ``m = max{a_i : b_i ≠ 0}``, treated as a constant
  (the value does not depend on it), so every derivative is exact; entries with ``b_i = 0``
  still get their derivative ``∂/∂b_i = e^{a_i − m}/s`` (SciPy-style masking of ``a`` with
  ``−∞`` would make it 0), except that ``a_i − m`` is capped just below the overflow
  threshold (``≈ 708`` in float64) where the true value is beyond the float range anyway.
- ``softmax`` and ``log_softmax`` shift by ``m = max x`` (a constant) and normalize, which
  keeps them accurate to a few ulps even for huge inputs (``exp(x − logsumexp(x))`` would
  lose ``|x|·ε`` relative accuracy).

Inputs are real (boolean, integer or floating) arrays; integers give float64 outputs, floating
inputs keep their dtype (float32 in, float32 out). Complex inputs are rejected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special as _sc

from ..core.custom import stop_gradient
from ..core.primitive import Primitive, Tracer
from ..numpy._base import dtype_of, float_dtype, shape_of
from ..numpy.reductions import lse_p, softmax_p
from ..numpy.structural import broadcast_to_p, normalize_axis, unbroadcast

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "softargmax",
    "expit",
    "logistic",
    "logit",
    "log_expit",
    "erf",
    "erfc",
    "erfinv",
    "gammaln",
    "digamma",
    "psi",
    "polygamma",
    "xlogy",
    "xlog1py",
    "entr",
]

#: an array-like or a traced value
Array = Any

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(math.pi) / 2.0


def _dnp():
    return _DNP


from .. import numpy as _DNP  # noqa: E402

# ----------------------------------------------------------------------------- input checks


def _real_input(fname: str, argname: str, x: Any) -> Any:
    """``x`` as an array (tracers pass through) after checking that it is real and numeric."""
    if not isinstance(x, Tracer):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{fname}: {argname} must be a real numeric array ({exc})") from None
    dt = dtype_of(x)
    if dt.kind not in "biuf":
        raise TypeError(
            f"{fname}: {argname} must be a real numeric array (bool, integer or floating), "
            f"got dtype {dt}"
        )
    return x


def _same_float(fn):
    """Wrap a SciPy function so that a floating input keeps its dtype (integers → float64)."""

    def impl(*xs, **params):
        out = fn(*xs, **params)
        want = np.result_type(*[float_dtype(np.result_type(x)) for x in xs])
        if np.result_type(out) != want:
            out = np.asarray(out).astype(want)[()]
        return out

    impl.__name__ = getattr(fn, "__name__", "impl")
    return impl


# ----------------------------------------------------------------------------- primitive builders


def _unary(name: str, fn, deriv) -> Primitive:
    """Elementwise primitive: ``impl = fn``, derivative ``deriv(x, ans)`` (separable, §8.4.3)."""
    prim = Primitive(name, _same_float(fn))
    prim.jvp = lambda primals, tangents, ans: tangents[0] * deriv(primals[0], ans)
    prim.vjps = (lambda g, ans, x: g * deriv(x, ans),)
    return prim


def _fit(t, ans):
    s = shape_of(ans)
    if shape_of(t) != s:
        t = broadcast_to_p.bind(t, shape=s)
    return t


def _binary(name: str, fn, d0, d1) -> Primitive:
    """Elementwise binary primitive with partial derivatives ``d0(x, y)``, ``d1(x, y)``."""
    prim = Primitive(name, _same_float(fn))

    def jvp(primals, tangents, ans):
        x, y = primals
        tx, ty = tangents
        out = None
        if tx is not None:
            out = tx * d0(x, y)
        if ty is not None:
            c = ty * d1(x, y)
            out = c if out is None else out + c
        return _fit(out, ans)

    prim.jvp = jvp
    prim.vjps = (lambda g, ans, x, y: unbroadcast(g * d0(x, y), shape_of(x)),
                 lambda g, ans, x, y: unbroadcast(g * d1(x, y), shape_of(y)))
    return prim


# ----------------------------------------------------------------------------- polygamma family


def _polygamma_impl(x, *, n):
    if n == 0:
        return _sc.psi(x)
    return _sc.polygamma(n, x)


def _polygamma_deriv_jvp(primals, tangents, ans, *, n):
    return tangents[0] * polygamma_p.bind(primals[0], n=n + 1)


polygamma_p = Primitive("polygamma", _same_float(_polygamma_impl), jvp=_polygamma_deriv_jvp)
polygamma_p.vjps = (lambda g, ans, x, *, n: g * polygamma_p.bind(x, n=n + 1),)

gammaln_p = _unary("gammaln", _sc.gammaln, lambda x, y: polygamma_p.bind(x, n=0))


# ----------------------------------------------------------------------------- other elementwise


def _entr_deriv(x, y):
    dnp = _dnp()
    pos = x > 0
    d = -1.0 - dnp.log(dnp.where(pos, x, 1.0))
    dt = float_dtype(dtype_of(x))
    edge = dnp.where(x == 0, np.asarray(np.inf, dt), np.asarray(np.nan, dt))
    return dnp.where(pos, d, edge)


# σ'(x) = σ(x) σ(−x) (Book §4.4.3): accurate in both tails, unlike σ(1 − σ) near σ = 1
expit_p = _unary("expit", _sc.expit, lambda x, y: y * expit_p.bind(-x))
logit_p = _unary("logit", _sc.logit, lambda x, y: 1.0 / (x * (1.0 - x)))
erf_p = _unary("erf", _sc.erf, lambda x, y: _TWO_OVER_SQRT_PI * _dnp().exp(-(x * x)))
erfc_p = _unary("erfc", _sc.erfc, lambda x, y: -_TWO_OVER_SQRT_PI * _dnp().exp(-(x * x)))
erfinv_p = _unary("erfinv", _sc.erfinv, lambda x, y: _SQRT_PI_OVER_TWO * _dnp().exp(y * y))
entr_p = _unary("entr", _sc.entr, _entr_deriv)


def _safe_den(x, den):
    """``den`` with 1 where ``x == 0`` and ``den == 0`` (so that ``x / den = 0`` there)."""
    return _dnp().where((x == 0) & (den == 0), 1.0, den)


def _xlogy_dx(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return _dnp().log(y)


def _xlogy_dy(x, y):
    return x / _safe_den(x, y)


def _xlog1py_dx(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return _dnp().log1p(y)


def _xlog1py_dy(x, y):
    return x / _safe_den(x, 1.0 + y)


xlogy_p = _binary("xlogy", _sc.xlogy, _xlogy_dx, _xlogy_dy)
xlog1py_p = _binary("xlog1py", _sc.xlog1py, _xlog1py_dx, _xlog1py_dy)


# ----------------------------------------------------------------------------- public elementwise


def expit(x: Array) -> Array:
    r"""Logistic sigmoid ``expit(x) = 1 / (1 + e^{-x})``, stable for large ``|x|``.

    Derivative ``expit'(x) = σ(x)(1 − σ(x)) = σ(x)σ(−x)`` (the last form is used: accurate
    in both tails). Book §4.4.3 ("logistic function"; book alias
    :data:`logistic`) and §3.3.3 (Bernoulli output layer).

    Example::

        >>> import numpy as np
        >>> float(expit(np.log(4.0)))
        0.8
    """
    return expit_p.bind(_real_input("expit", "x", x))


#: Book name (§4.4.3) for :func:`expit`, the logistic sigmoid.
logistic = expit


def logit(p: Array) -> Array:
    r"""Inverse of :func:`expit`: ``logit(p) = log(p / (1 − p))`` for ``p ∈ [0, 1]``.

    Derivative ``1 / (p (1 − p))``; ``logit(0) = −∞``, ``logit(1) = +∞``, ``nan`` outside
    ``[0, 1]``. Book §3.4.1 Example 3.2 and Table 3.1 (the natural parameter of the Bernoulli;
    the book misprints it as ``log(π/(1 + π))``, the correct form is ``log(π/(1 − π))``).

    Example::

        >>> round(float(logit(0.8)), 12)
        1.38629436112
    """
    return logit_p.bind(_real_input("logit", "p", p))


def log_expit(x: Array) -> Array:
    r"""``log expit(x) = −log(1 + e^{−x}) = −logaddexp(0, −x)``, stable for large ``|x|``.

    Derivative ``expit(−x) = 1 − expit(x)``. Book §4.4.3 (logistic) and §3.3.8 (the binary
    logistic loss is ``−log expit(θ)`` for the label 1).

    Example::

        >>> float(log_expit(-1000.0))
        -1000.0
    """
    x = _real_input("log_expit", "x", x)
    dnp = _dnp()
    zero = np.zeros((), dtype=float_dtype(dtype_of(x)))
    return -dnp.logaddexp(zero, -x)


def erf(x: Array) -> Array:
    r"""Error function ``erf(x) = 2/√π ∫₀ˣ e^{−t²} dt``; ``erf'(x) = 2/√π e^{−x²}``.

    Book §3.3.5 (the Normal CDF, Eq. 3.1: ``Φ(z) = ½[1 + erf(z/√2)]``).

    Example::

        >>> float(erf(0.0))
        0.0
    """
    return erf_p.bind(_real_input("erf", "x", x))


def erfc(x: Array) -> Array:
    r"""Complementary error function ``erfc(x) = 1 − erf(x)`` (accurate for large ``x``);
    ``erfc'(x) = −2/√π e^{−x²}``.

    Book §3.3.5 (Normal tail probabilities).

    Example::

        >>> float(erfc(0.0))
        1.0
    """
    return erfc_p.bind(_real_input("erfc", "x", x))


def erfinv(y: Array) -> Array:
    r"""Inverse error function, ``erf(erfinv(y)) = y`` for ``y ∈ (−1, 1)``.

    Derivative by the inverse-function rule: ``erfinv'(y) = √π/2 · e^{erfinv(y)²}``.
    Book §12.4.3 Example 12.4 (the Normal quantile ``μ + σ√2 erfinv(2π − 1)``).

    Example::

        >>> float(erfinv(0.0))
        0.0
    """
    return erfinv_p.bind(_real_input("erfinv", "y", y))


def gammaln(x: Array) -> Array:
    r"""``gammaln(x) = log |Γ(x)|``; its derivative is :func:`digamma`.

    Book §3.3.7 (Poisson: ``log y! = gammaln(y + 1)``, which does not overflow).

    Example::

        >>> round(float(gammaln(5.0)), 12)  # log 4! = log 24
        3.178053830348
    """
    return gammaln_p.bind(_real_input("gammaln", "x", x))


def digamma(x: Array) -> Array:
    r"""Digamma ``ψ(x) = d/dx log Γ(x) = Γ'(x)/Γ(x)``; ``ψ'(x) = polygamma(1, x)``.

    The derivative of :func:`gammaln`, a primitive (Book §8.4.1) whose derivatives nest
    through :func:`polygamma` (Book §8.4.2). Alias :data:`psi`.

    Example::

        >>> round(float(digamma(1.0)), 12)  # −γ (Euler–Mascheroni)
        -0.577215664902
    """
    return polygamma_p.bind(_real_input("digamma", "x", x), n=0)


#: SciPy's other name for :func:`digamma`.
psi = digamma


def polygamma(n: int, x: Array) -> Array:
    r"""``polygamma(n, x) = ψ⁽ⁿ⁾(x) = dⁿ⁺¹/dxⁿ⁺¹ log Γ(x)``, with ``n ≥ 0`` a static integer.

    Derivative in ``x``: ``polygamma(n + 1, x)``; ``n`` is an order, not differentiated.
    ``polygamma(0, x) = digamma(x)``. Book §8.4.1–8.4.2 (a primitive whose rule uses itself, so
    derivatives of every order exist).

    Example::

        >>> round(float(polygamma(1, 1.0)), 12)  # π²/6
        1.644934066848
    """
    if isinstance(n, Tracer):
        raise TypeError("polygamma: n must be a static non-negative integer, got a traced value "
                        "(the order n is not differentiable)")
    n_arr = np.asarray(n)
    if n_arr.ndim != 0 or n_arr.dtype.kind not in "iu" or int(n_arr) < 0:
        if n_arr.ndim == 0 and n_arr.dtype.kind == "f" and float(n_arr).is_integer() \
                and float(n_arr) >= 0:
            n_arr = np.asarray(int(n_arr))
        else:
            raise ValueError(f"polygamma: n must be a non-negative integer scalar, got {n!r}")
    return polygamma_p.bind(_real_input("polygamma", "x", x), n=int(n_arr))


def xlogy(x: Array, y: Array) -> Array:
    r"""``xlogy(x, y) = x log y``, with ``xlogy(0, y) = 0`` (so ``0 log 0 = 0``).

    Partial derivatives: ``∂x = log y`` (also at ``x = 0``), ``∂y = x / y`` (``0`` at
    ``x = 0``, even for ``y = 0``). Book §3.1.1 (KL divergence) and §3.4.3 (Shannon entropy,
    with the convention ``0 log 0 = 0``).

    Example::

        >>> float(xlogy(0.0, 0.0)), round(float(xlogy(2.0, np.e)), 12)
        (0.0, 2.0)
    """
    return xlogy_p.bind(_real_input("xlogy", "x", x), _real_input("xlogy", "y", y))


def xlog1py(x: Array, y: Array) -> Array:
    r"""``xlog1py(x, y) = x log(1 + y)``, with ``xlog1py(0, y) = 0``.

    Partial derivatives: ``∂x = log1p(y)``, ``∂y = x / (1 + y)`` (``0`` at ``x = 0``).
    Book §3.1.1 and §3.4.3 (as :func:`xlogy`, accurate for small ``y``).

    Example::

        >>> float(xlog1py(0.0, -1.0))
        0.0
    """
    return xlog1py_p.bind(_real_input("xlog1py", "x", x), _real_input("xlog1py", "y", y))


def entr(x: Array) -> Array:
    r"""Elementwise entropy term ``entr(x) = −x log x`` (``0`` at ``0``, ``−∞`` for ``x < 0``).

    Derivative ``−1 − log x`` for ``x > 0``; ``+∞`` at ``x = 0`` (one-sided limit) and ``nan``
    for ``x < 0``. The Shannon entropy is ``Σ entr(p)``: Book §3.4.3 and §13.3.5.

    Example::

        >>> float(entr(0.0)), round(float(entr(0.5)), 12)
        (0.0, 0.34657359028)
    """
    return entr_p.bind(_real_input("entr", "x", x))


# ----------------------------------------------------------------------------- reductions


def _reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def logsumexp(
    a: Array,
    axis: int | tuple[int, ...] | None = None,
    b: Array | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
) -> Array | tuple[Array, np.ndarray]:
    r"""Stable ``log Σᵢ bᵢ exp(aᵢ)`` over ``axis`` (all axes when ``None``), as in SciPy.

    Without ``b`` this is the logsumexp primitive ``m + log Σ exp(a − m)``, ``m = max a``
    (Book §4.4.2 "log-sum-exp as a soft maximum", §8.4.1 "kept as a primitive for numerical
    stability"); its gradient is :func:`softmax` (Book §2.2.2 Example 2.3) and its Hessian
    ``diag(p) − ppᵀ``. The book also calls this function "softmax" (§4.4.2); here ``softmax`` is
    the normalized exponential, as in SciPy.

    With weights ``b`` (broadcast against ``a``) it is the shifted form
    ``m + log Σ b exp(a − m)`` with ``m = max{aᵢ : bᵢ ≠ 0}`` held constant, differentiable in
    ``a`` and ``b``. If the weighted sum is negative the result is ``nan`` unless
    ``return_sign=True``, which returns ``(log |Σ b eᵃ|, sign)`` with ``sign ∈ {−1, 0, 1}`` a
    plain (non-differentiable) array; without ``b`` the sign is 1 (0 where the sum is 0).

    Example::

        >>> import numpy as np
        >>> float(logsumexp(np.array([1000.0, 1000.0]))) == 1000.0 + float(np.log(2.0))
        True
        >>> logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -1.0]), return_sign=True)[1]
        np.float64(-1.0)
    """
    fname = "logsumexp"
    dnp = _dnp()
    if b is None and not return_sign and isinstance(a, Tracer):
        # common case: one primitive application (shape and dtype checks happen in the primitive)
        dt = dtype_of(a)
        shape = shape_of(a)
        if dt.kind == "f" and all(n for n in shape):
            axes = normalize_axis(axis, len(shape), fname)
            return lse_p.bind(a, axis=axes, keepdims=bool(keepdims))
    a = _real_input(fname, "a", a)
    if b is not None:
        b = _real_input(fname, "b", b)
        sa, sb = shape_of(a), shape_of(b)
        try:
            shape = np.broadcast_shapes(sa, sb)
        except ValueError:
            raise ValueError(
                f"{fname}: b has shape {sb}, which does not broadcast with a of shape {sa}"
            ) from None
        if sa != shape:
            a = dnp.broadcast_to(a, shape)
        if sb != shape:
            b = dnp.broadcast_to(b, shape)
    shape = shape_of(a)
    axes = normalize_axis(axis, len(shape), fname)
    keepdims = bool(keepdims)
    out_dtype = float_dtype(dtype_of(a) if b is None else np.result_type(dtype_of(a),
                                                                         dtype_of(b)))

    if any(shape[i] == 0 for i in axes):  # an empty sum: log 0 = −∞ (as SciPy)
        out = np.full(_reduced_shape(shape, axes, keepdims), -np.inf, dtype=out_dtype)[()]
        return (out, np.zeros_like(out)) if return_sign else out

    if b is None:
        out = dnp.logsumexp_prim(a, axis=axes, keepdims=keepdims)
        if not return_sign:
            return out
        with np.errstate(over="ignore"):
            sign = dnp.sign(dnp.exp(stop_gradient(out)))
        return out, sign

    # weighted: m + log Σ b exp(a − m), with the shift m = max{a_i : b_i ≠ 0} a constant
    masked = dnp.where(stop_gradient(b) != 0, stop_gradient(a), -np.inf)
    m = dnp.max(masked, axis=axes, keepdims=True)
    m = dnp.astype(dnp.where(dnp.isfinite(m), m, 0.0), out_dtype)
    # a_i − m ≤ 0 wherever b_i ≠ 0; where b_i = 0 the exponent is capped below the overflow
    # threshold so that 0 · e^{a_i − m} stays 0 (the derivative in such a b_i is e^{a_i − m}/s,
    # exact unless a_i − m exceeds the cap, where the true value is astronomically large).
    cap = float(np.floor(np.log(np.finfo(out_dtype).max))) - 1.0
    z = a - m
    s = dnp.sum(b * dnp.exp(dnp.where(z > cap, cap, z)), axis=axes, keepdims=keepdims)
    m_out = dnp.reshape(m, shape_of(s))
    with np.errstate(divide="ignore", invalid="ignore"):
        if return_sign:
            out = m_out + dnp.log(dnp.abs(s))
            sign = dnp.astype(dnp.sign(stop_gradient(s)), out_dtype)
            return out, sign
        return m_out + dnp.log(s)


def _shift(x, axes):
    """``max x`` over ``axes`` (kept), 0 where not finite, as a constant: the stable shift."""
    dnp = _dnp()
    m = dnp.max(stop_gradient(x), axis=axes, keepdims=True)
    return dnp.astype(dnp.where(dnp.isfinite(m), m, 0.0), float_dtype(dtype_of(x)))


def softmax(x: Array, axis: int | tuple[int, ...] | None = None) -> Array:
    r"""Normalized exponential ``softmax(x)ᵢ = exp(xᵢ) / Σⱼ exp(xⱼ)`` over ``axis``.

    One primitive (``softmax_p``: unshifted over the last axis of large float arrays while the
    row sums stay in range, shifted by the maximum otherwise); its Jacobian is
    ``diag(p) − ppᵀ`` and it is unchanged when a constant is added to ``x`` (Book §4.4.4
    Remark 4.2). This is the
    gradient of :func:`logsumexp` (Book §2.2.2 Example 2.3). SciPy's default ``axis=None``
    normalizes over all entries. Book name: "softargmax" (§4.4.4; alias :data:`softargmax`).

    Example::

        >>> import numpy as np
        >>> softmax(np.array([0.0, 0.0])).tolist()
        [0.5, 0.5]
    """
    fname = "softmax"
    x = _real_input(fname, "x", x)
    shape = shape_of(x)
    axes = normalize_axis(axis, len(shape), fname)
    if any(shape[i] == 0 for i in axes):
        return np.zeros(shape, dtype=float_dtype(dtype_of(x)))
    if dtype_of(x).kind != "f":
        x = _dnp().astype(x, float_dtype(dtype_of(x)))
    return softmax_p.bind(x, axis=axes)


#: Book name (§4.4.4) for :func:`softmax`, the normalized exponential. (The book's own
#: "softmax" is :func:`logsumexp`.)
softargmax = softmax


def log_softmax(x: Array, axis: int | tuple[int, ...] | None = None) -> Array:
    r"""Log-probabilities ``log softmax(x) = x − logsumexp(x)`` over ``axis``, stable.

    Never computed as ``log(softmax(x))``, which underflows to ``−∞`` (Book §3.3.4 and §3.3.8:
    the multiclass logistic loss is ``−log_softmax(θ)_y``). Its derivative is
    ``I − 1 softmax(x)ᵀ``. Book §4.4.4.

    Example::

        >>> import numpy as np
        >>> log_softmax(np.array([1000.0, 0.0])).tolist()
        [0.0, -1000.0]
    """
    fname = "log_softmax"
    x = _real_input(fname, "x", x)
    shape = shape_of(x)
    axes = normalize_axis(axis, len(shape), fname)
    if any(shape[i] == 0 for i in axes):
        return np.zeros(shape, dtype=float_dtype(dtype_of(x)))
    dnp = _dnp()
    z = x - _shift(x, axes)
    return z - dnp.log(dnp.sum(dnp.exp(z), axis=axes, keepdims=True))
