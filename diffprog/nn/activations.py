r"""Activation functions and probability maps (Book §4.4, §4.8.4).

Elementwise activations: :func:`relu`, :func:`softplus`, :func:`gelu`, :func:`silu`,
:func:`sigmoid` (= :data:`logistic`), :func:`log_sigmoid`, :func:`tanh`, :func:`step`.
Reductions and probability maps along ``axis`` (default ``-1``: rows are examples):
:func:`max_pool`, :func:`logsumexp`, :func:`softargmax` (= :data:`softmax`), :func:`log_softmax`,
:func:`argmax_onehot`, :func:`sparseargmax`, with :func:`one_hot`, :func:`center`,
:func:`softargmax_inverse`, :func:`in_simplex` and :func:`in_relint_simplex`.

Names. The book calls the log-sum-exp a "softmax" (§4.4.2) and the normalized exponential a
"softargmax" (§4.4.4). Here :func:`logsumexp` and :func:`softargmax` are canonical; ``softmax``
is the documented alias of :func:`softargmax` (the probability map, JAX naming). No name binds
the scalar log-sum-exp to "softmax".

Temperatures. ``logsumexp(u, temperature=γ) = γ·logsumexp(u/γ)`` and
``softargmax(u, temperature=γ) = softargmax(u/γ)``; ``γ`` must be ``> 0`` (a ``ValueError``
otherwise). As ``γ → 0`` they tend to :func:`max_pool` and :func:`argmax_onehot`.

Non-smooth points (DESIGN.md): ``relu'(0) = 0``; ``step'(u) = 0`` everywhere (also at 0, what
AD of a piecewise-constant function gives) with ``step(0) = 1``; ties in :func:`max_pool` and
:func:`argmax_onehot` go to the first index, so the gradient of ``max_pool`` is the one-hot of
the first maximizer (a subgradient); :func:`argmax_onehot` has zero derivative.

Most of these wrap :mod:`diffprog.scipy.special` (stable logsumexp, softmax, expit, erfc) and
:mod:`diffprog.optim` (softplus, the simplex projection) instead of re-implementing them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from ..numpy._base import dtype_of, float_dtype, shape_of
from ..numpy.structural import normalize_axis
from ..optim.losses import softplus
from ..optim.projections import projection_simplex
from ..scipy import special as _special
from ..scipy.special import _real_input
from .primitives import gelu_p, gelu_tanh_p

__all__ = [
    "relu",
    "softplus",
    "gelu",
    "silu",
    "sigmoid",
    "logistic",
    "log_sigmoid",
    "tanh",
    "step",
    "max_pool",
    "logsumexp",
    "softargmax",
    "softmax",
    "log_softmax",
    "one_hot",
    "argmax_onehot",
    "center",
    "softargmax_inverse",
    "in_simplex",
    "in_relint_simplex",
    "sparseargmax",
]

#: an array-like or a traced value
Array = Any

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

#: Logistic sigmoid ``σ(u) = 1/(1 + e^{−u})`` (Book §4.4.3), :func:`diffprog.scipy.special.expit`.
sigmoid = _special.expit
#: Book name (§4.4.3) of :func:`sigmoid`.
logistic = _special.expit
#: ``log σ(u) = −softplus(−u)``, stable (Book §4.4.3), :func:`diffprog.scipy.special.log_expit`.
log_sigmoid = _special.log_expit
#: Hyperbolic tangent ``tanh(u) = 2σ(2u) − 1`` (Book §4.4.3), :func:`diffprog.numpy.tanh`.
tanh = dnp.tanh


# ----------------------------------------------------------------------------- checks


def _check_axis(fname: str, u: Any, axis: int) -> int:
    """``axis`` normalized for ``u`` (at least 1-d), or a ValueError naming ``fname``."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{fname}: argument 'axis' must be an int, got {axis!r}")
    ndim = len(shape_of(u))
    if ndim == 0:
        raise ValueError(f"{fname}: argument 'u' must have at least one dimension, got a scalar")
    return normalize_axis(int(axis), ndim, fname)[0]


def _check_temperature(fname: str, temperature: Any) -> None:
    """Raise unless ``temperature`` is a positive finite scalar (traced values pass through)."""
    if isinstance(temperature, Tracer):
        return
    t = np.asarray(temperature)
    if t.ndim != 0 or t.dtype.kind not in "iuf" or t.dtype == bool:
        raise TypeError(f"{fname}: argument 'temperature' must be a real scalar, "
                        f"got {temperature!r}")
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"{fname}: argument 'temperature' must be > 0 and finite, "
                         f"got {temperature!r}")


def _is_one(temperature: Any) -> bool:
    return not isinstance(temperature, Tracer) and float(temperature) == 1.0


def _scaled(fname: str, u: Any, axis: int, temperature: Any) -> tuple[Any, int]:
    """Checked ``(u/γ, axis)`` for the tempered reductions (``u`` itself when ``γ = 1``)."""
    u = _real_input(fname, "u", u)
    ax = _check_axis(fname, u, axis)
    _check_temperature(fname, temperature)
    return (u if _is_one(temperature) else u / temperature), ax


def _concrete(fname: str, argname: str, x: Any) -> np.ndarray:
    if isinstance(x, Tracer):
        raise TypeError(f"{fname}: argument '{argname}' must be a concrete array (this is a "
                        "non-differentiable predicate), got a traced value")
    return np.asarray(x)


# ----------------------------------------------------------------------------- elementwise


def relu(x: Array) -> Array:
    """Rectified linear unit ``relu(u) = max(u, 0)`` (Book §4.4.1).

    Non-smooth point: ``relu'(0) = 0`` (an element of the Clarke subdifferential [0, 1]).

    Example::

        >>> import numpy as np
        >>> relu(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 2.])
    """
    x = _real_input("relu", "x", x)
    return dnp.where(x > 0, x, 0.0)


def gelu(u: Array, approximate: bool = False) -> Array:
    r"""Gaussian error linear unit ``gelu(u) = u Φ(u)``, Φ the standard Normal CDF (Book §4.8.4).

    The exact form is computed as ``½ u erfc(−u/√2)``, accurate in the left tail, by the fused
    primitive :data:`~diffprog.nn.primitives.gelu_p` (one ``erfc`` for value and derivative);
    ``approximate=True`` gives the tanh form ``½ u (1 + tanh(√(2/π)(u + 0.044715 u³)))``.
    The exact form satisfies ``gelu(u) − gelu(−u) = u``.

    Example::

        >>> round(float(gelu(1.0)), 12)
        0.841344746069
    """
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: argument 'approximate' must be a bool, got {approximate!r}")
    u = _real_input("gelu", "u", u)
    if approximate:
        return gelu_tanh_p.bind(u)
    return gelu_p.bind(u)


def gelu_tanh(u: Array) -> Array:
    r"""The tanh form of GELU, ``½ u (1 + tanh(√(2/π)(u + 0.044715 u³)))`` (Book §4.8.4): the same
    as ``gelu(u, approximate=True)``, as a named function (a layer's ``activation`` field is
    saved by name). About three times cheaper than the exact form on float32 activations.

    Example::

        >>> round(float(gelu_tanh(1.0)), 6)
        0.841192
    """
    return gelu(u, approximate=True)


def silu(u: Array) -> Array:
    r"""Sigmoid linear unit (swish) ``silu(u) = u σ(u)`` (Book §4.4.3, §13.6).

    Derivative ``σ(u)(1 + u σ(−u))``.

    Example::

        >>> round(float(silu(1.0)), 12)
        0.73105857863
    """
    u = _real_input("silu", "u", u)
    return u * _special.expit(u)


def step(u: Array) -> Array:
    r"""Binary step (Heaviside) ``step(u) = 1`` if ``u ≥ 0`` else ``0`` (Book §4.4.3).

    Convention: ``step(0) = 1``; the derivative is ``0`` everywhere (also at ``0``, where the
    function jumps): AD of a piecewise-constant function gives no signal.

    Example::

        >>> step(np.array([-1.0, 0.0, 2.0]))
        array([0., 1., 1.])
    """
    u = _real_input("step", "u", u)
    dt = float_dtype(dtype_of(u))
    return dnp.where(u >= 0, np.ones((), dt), np.zeros((), dt))


# ----------------------------------------------------------------------------- soft and hard max


def max_pool(u: Array, axis: int = -1, keepdims: bool = False) -> Array:
    r"""Max pooling ``max(u) = max_j u_j`` along ``axis`` (Book §4.4.2).

    Piecewise linear. Its gradient is the one-hot of the maximizer; with ties, of the first one
    (a subgradient, the convention of :func:`argmax_onehot`).

    Example::

        >>> float(max_pool(np.array([1.0, 5.0, 2.0])))
        5.0
    """
    u = _real_input("max_pool", "u", u)
    ax = _check_axis("max_pool", u, axis)
    idx = dnp.expand_dims(dnp.argmax(u, axis=ax), ax)
    out = dnp.take_along_axis(u, idx, axis=ax)
    return out if keepdims else dnp.squeeze(out, axis=ax)


def logsumexp(u: Array, axis: int = -1, temperature: float = 1.0,
              keepdims: bool = False) -> Array:
    r"""Log-sum-exp, the soft maximum ``logsumexp_γ(u) = γ log Σ_j exp(u_j/γ)`` (Book §4.4.2).

    Computed stably as ``c + γ log Σ exp((u − c)/γ)`` with ``c = max u``
    (:func:`diffprog.scipy.special.logsumexp`), so ``[1001, 1002, 1003]`` or ``γ = 0.01`` do
    not overflow. Bounds: ``max(u) ≤ logsumexp_γ(u) ≤ max(u) + γ log M``; its gradient is
    ``softargmax(u/γ)``; ``logsumexp((u, 0)) = softplus(u)``. It is also the log-domain sum
    ``log Σ_i x_i = logsumexp(log x)`` (§4.4.2, used in §10.7.1). The book also calls this
    function "softmax". ``temperature ≤ 0`` raises.

    Example::

        >>> round(float(logsumexp(np.array([1.0, 2.0, 3.0]))), 12)
        3.407605964444
        >>> float(logsumexp(np.array([1.0, 2.0, 3.0]), temperature=0.01))
        3.0
    """
    z, ax = _scaled("logsumexp", u, axis, temperature)
    out = _special.logsumexp(z, axis=ax, keepdims=keepdims)
    return out if _is_one(temperature) else temperature * out


def softargmax(u: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    r"""Softargmax ``softargmax_γ(u)_i = exp(u_i/γ) / Σ_j exp(u_j/γ)`` along ``axis`` (Book §4.4.4).

    The gradient of :func:`logsumexp` (``∇ logsumexp_γ = softargmax_γ``), a map into the
    relative interior of the simplex, unchanged by ``u + c1``, with Jacobian
    ``(diag(π) − ππᵀ)/γ``; ``softargmax((u, 0))_1 = σ(u)``. Stable (shifted by ``max u``). As
    ``γ → 0`` it tends to :func:`argmax_onehot`. Alias :data:`softmax` (JAX's name; the book's
    "softmax" is :func:`logsumexp`). ``temperature ≤ 0`` raises.

    Example::

        >>> np.round(softargmax(np.array([1.0, 2.0, 3.0])), 8)
        array([0.09003057, 0.24472847, 0.66524096])
    """
    z, ax = _scaled("softargmax", u, axis, temperature)
    return _special.softmax(z, axis=ax)


#: The probability map :func:`softargmax` under its JAX/SciPy name (Book §4.4.4 calls it the
#: misnomer "softmax"; §4.4.2 uses "softmax" for :func:`logsumexp`, which this is not).
softmax = softargmax


def log_softmax(u: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    r"""Log-probabilities ``log softargmax_γ(u) = u/γ − logsumexp(u/γ)`` along ``axis``.

    Stable (never ``log`` of an underflowed probability); Book §4.4.4 (and §3.3.8, the
    multiclass logistic loss is ``−log_softmax(θ)_y``). ``temperature ≤ 0`` raises.

    Example::

        >>> log_softmax(np.array([1000.0, 0.0])).tolist()
        [0.0, -1000.0]
    """
    z, ax = _scaled("log_softmax", u, axis, temperature)
    return _special.log_softmax(z, axis=ax)


def one_hot(j: Array, num_classes: int, dtype: Any = np.float64) -> Array:
    r"""One-hot encoding ``φ(j) = e_j ∈ {0, 1}^M`` (a new last axis of size ``M``; Book §4.4.4).

    ``j`` holds integers in ``[0, M)`` (0-based; the book's ``[M]`` is 1-based).

    Example::

        >>> one_hot(np.array([2, 0]), 3)
        array([[0., 0., 1.],
               [1., 0., 0.]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"one_hot: argument 'num_classes' must be a positive int, "
                         f"got {num_classes!r}")
    if not isinstance(j, Tracer):
        j = np.asarray(j)
    if dtype_of(j).kind not in "iu":
        raise TypeError(f"one_hot: argument 'j' must hold integers, got dtype {dtype_of(j)}")
    if not isinstance(j, Tracer):
        jj = j
        if jj.size and (jj.min() < 0 or jj.max() >= num_classes):
            raise ValueError(f"one_hot: argument 'j' must be in [0, {num_classes}), "
                             f"got values in [{jj.min()}, {jj.max()}]")
    return dnp.astype(dnp.expand_dims(j, -1) == dnp.arange(num_classes), dtype)


def argmax_onehot(u: Array, axis: int = -1) -> Array:
    r"""Hard probability map ``argmax(u) = e_{j*}``, ``j* = argmax_j u_j``, along ``axis``.

    Book §4.4.4: maps onto the vertices of the simplex. Ties go to the first index
    (deterministic). Piecewise constant: its derivative is ``0`` (the motivation for
    :func:`softargmax`).

    Example::

        >>> argmax_onehot(np.array([1.0, 3.0, 3.0]))
        array([0., 1., 0.])
    """
    u = _real_input("argmax_onehot", "u", u)
    ax = _check_axis("argmax_onehot", u, axis)
    m = shape_of(u)[ax]
    oh = one_hot(dnp.argmax(u, axis=ax), m, float_dtype(dtype_of(u)))
    return dnp.moveaxis(oh, -1, ax)


def sparseargmax(u: Array, axis: int = -1) -> Array:
    r"""Sparseargmax (sparsemax) ``argmin_{π ∈ Δ^M} ‖u − π‖² = [u − τ*]_+`` along ``axis``.

    The Euclidean projection onto the simplex (Book §4.4.4 Fig. 4.6, §13.7), by
    :func:`diffprog.optim.projection_simplex`; reaches all of ``Δ^M`` (exact zeros included)
    and is unchanged by ``u + c1``.

    Example::

        >>> sparseargmax(np.array([3.0, 0.0, 0.0]))
        array([1., 0., 0.])
    """
    u = _real_input("sparseargmax", "u", u)
    ax = _check_axis("sparseargmax", u, axis)
    last = len(shape_of(u)) - 1
    if ax == last:
        return projection_simplex(u)
    return dnp.moveaxis(projection_simplex(dnp.moveaxis(u, ax, -1)), -1, ax)


# ----------------------------------------------------------------------------- simplex helpers


def center(u: Array, axis: int = -1) -> Array:
    r"""``center(u) = u − mean(u) 1`` along ``axis``: the representative of ``u`` modulo
    constants, on which :func:`softargmax` is invertible (Book §4.4.4 Remark 4.2).

    Example::

        >>> center(np.array([1.0, 2.0, 3.0]))
        array([-1.,  0.,  1.])
    """
    u = _real_input("center", "u", u)
    ax = _check_axis("center", u, axis)
    return u - dnp.mean(u, axis=ax, keepdims=True)


def softargmax_inverse(pi: Array, axis: int = -1, atol: float = 1e-6) -> Array:
    r"""Centered logits of ``π``: ``u_i = log π_i − (1/M) Σ_j log π_j`` (Book §4.4.4 Remark 4.2).

    The inverse of :func:`softargmax` on ``{u : ⟨u, 1⟩ = 0}``:
    ``softargmax_inverse(softargmax(u)) = center(u)``. ``π`` must be in the relative interior
    of the simplex: entries ``> 0`` and sums within ``atol`` of 1 (checked when concrete).

    Example::

        >>> u = softargmax_inverse(softargmax(np.array([1.0, 2.0, 3.0])))
        >>> bool(np.allclose(u, [-1.0, 0.0, 1.0], atol=1e-12))
        True
    """
    pi = _real_input("softargmax_inverse", "pi", pi)
    ax = _check_axis("softargmax_inverse", pi, axis)
    if not isinstance(pi, Tracer):
        p = np.asarray(pi)
        if not np.all(p > 0):
            raise ValueError("softargmax_inverse: argument 'pi' must have entries > 0 (relative "
                             "interior of the simplex; log 0 = -inf)")
        if not np.all(np.abs(p.sum(axis=ax) - 1.0) <= atol):
            raise ValueError(f"softargmax_inverse: argument 'pi' must sum to 1 along axis {axis} "
                             f"(within atol={atol})")
    return center(dnp.log(pi), axis=ax)


def in_simplex(pi: Array, axis: int = -1, tol: float = 1e-9) -> Any:
    r"""Whether ``π ∈ Δ^M = {π ≥ 0, Σ π = 1}`` along ``axis`` (within ``tol``; Book §4.4.4).

    Returns a bool (or a bool array over the other axes). Not differentiable.

    Example::

        >>> bool(in_simplex(np.array([0.0, 1.0]))), bool(in_simplex(np.array([0.5, 0.6])))
        (True, False)
    """
    p = _concrete("in_simplex", "pi", pi)
    ax = _check_axis("in_simplex", p, axis)
    return np.all(p >= -tol, axis=ax) & (np.abs(p.sum(axis=ax) - 1.0) <= tol)


def in_relint_simplex(pi: Array, axis: int = -1, tol: float = 1e-9) -> Any:
    r"""Whether ``π ∈ relint(Δ^M) = {π ∈ Δ^M : π > 0}`` along ``axis`` (Book §4.4.4, Fig. 4.6).

    :func:`softargmax` maps there (for moderate inputs; in floating point large gaps underflow
    to exact zeros); :func:`argmax_onehot` does not.

    Example::

        >>> bool(in_relint_simplex(np.array([0.0, 1.0]))), bool(in_relint_simplex([0.5, 0.5]))
        (False, True)
    """
    p = _concrete("in_relint_simplex", "pi", pi)
    ax = _check_axis("in_relint_simplex", p, axis)
    return in_simplex(p, axis=ax, tol=tol) & np.all(p > 0, axis=ax)
