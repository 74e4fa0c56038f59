"""Finite differences and complex-step derivatives (Book ch. 7).

Everything here treats ``f`` as a black box: only function evaluations are used, so these
routines are the test oracle for the automatic-differentiation engine (Book §7.8, use case ii)
and a fallback for low-dimensional black boxes.

Design notes
------------
* All stencils come from one exact solver, :func:`fd_coefficients`, which solves the book's
  Vandermonde system (Book §7.4–7.5) in rational arithmetic, so the weights are exact before
  the final conversion to float.
* The book's parameter ``p`` (``accuracy=``) counts *points*, not the truncation order:
  forward/backward use the ``p + 1`` offsets ``0..±p``, central uses ``-p..p`` and never
  evaluates a point whose weight is exactly zero (the centre, for odd derivative orders).
* Truncation orders: forward/backward ``p - k + 1`` (Book §7.5); central
  ``2p + 2 - 2*ceil(k/2)``. **Errata:** the book prints ``2p + 2 - 2*ceil((k+1)/2)``, which
  is wrong for even ``k`` (it gives ``δ⁰`` for ``k=2, p=1``, contradicting the book's own
  ``O(δ²)`` example). The book's printed forward ``k = p = 2`` stencil ``(-3/2, 2, -1/2)/δ²``
  is also wrong: those are first-derivative weights (over ``δ``); the second-derivative
  weights are ``(1, -2, 1)/δ²``.
* Default step (the book gives no rule). With ``m`` the truncation order and ``k`` the
  derivative order, balancing truncation ``~δ^m`` against round-off ``~ε/δ^k`` gives
  ``δ = s · ε^(1/(m+k))`` with ``s = max(1, ‖w‖_∞) / ‖v‖₂`` and ``ε`` the machine epsilon of
  the working dtype. This is ``s·√ε`` for forward/backward, ``s·ε^(1/3)`` for central
  first differences, and ``s·ε^(1/(order+1))`` in general, where ``order = m + k - 1`` is the
  combined order of the error model. float32 inputs are evaluated in float32 with float32's ε.
* Results keep the dtype of ``f``'s outputs (float32 stays float32). Zero-dimensional results
  are returned as NumPy scalars.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "fd_coefficients",
    "fd_jvp",
    "fd_directional_derivative",
    "fd_second_directional",
    "complex_step_jvp",
    "fd_grad",
    "fd_jacobian",
    "fd_error_study",
]

_SCHEMES = ("forward", "backward", "central")
_GRAD_SCHEMES = ("forward", "backward", "central", "complex")
_MAX_FD_DIM = 10_000


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _check_callable(fname: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f"{fname}: argument 'f' must be callable, got {type(f).__name__}")


def _check_int(fname: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{fname}: argument '{name}' must be an integer >= {minimum}, "
            f"got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"{fname}: argument '{name}' must be an integer >= {minimum}, got {value}")
    return value


def _check_scheme(fname: str, scheme: Any, allowed: Sequence[str]) -> str:
    if not isinstance(scheme, str) or scheme not in allowed:
        raise ValueError(
            f"{fname}: argument 'scheme' must be one of {tuple(allowed)}, got {scheme!r}"
        )
    return scheme


def _check_delta(fname: str, delta: Any) -> float:
    if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, numbers.Real):
        raise TypeError(
            f"{fname}: argument 'delta' must be a positive finite real number, "
            f"got {delta!r} of type {type(delta).__name__}"
        )
    delta = float(delta)
    if not (math.isfinite(delta) and delta > 0.0):
        raise ValueError(
            f"{fname}: argument 'delta' must be a positive finite real number, got {delta}"
        )
    return delta


def _as_point(fname: str, name: str, x: Any, allow_complex: bool = True) -> tuple[np.ndarray, bool]:
    """Return ``(array, was_scalar)``; integers are promoted to float64."""
    was_scalar = np.ndim(x) == 0 and not isinstance(x, np.ndarray)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(
            f"{fname}: argument '{name}' must be array-like, got {type(x).__name__}"
        ) from exc
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError(
            f"{fname}: argument '{name}' must be a real floating-point array, got dtype bool"
        )
    if kind in "iu":
        arr = arr.astype(np.float64)
    elif kind == "c":
        if not allow_complex:
            raise TypeError(
                f"{fname}: argument '{name}' must be real (float), got complex dtype {arr.dtype}"
            )
    elif kind != "f":
        raise TypeError(
            f"{fname}: argument '{name}' must be a numeric array, got dtype {arr.dtype}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{fname}: argument '{name}' must contain only finite values")
    return arr, was_scalar


def _point_and_direction(
    fname: str, w: Any, v: Any, allow_complex: bool = True
) -> tuple[np.ndarray, np.ndarray, bool, np.dtype]:
    w_arr, scalar = _as_point(fname, "w", w, allow_complex)
    v_arr, _ = _as_point(fname, "v", v, allow_complex)
    if w_arr.shape != v_arr.shape:
        raise ValueError(
            f"{fname}: direction 'v' must have the shape of 'w', got v.shape={v_arr.shape} "
            f"and w.shape={w_arr.shape}"
        )
    # Python scalars are "weak" (NEP 50): a float32 point with v=1.0 stays float32.
    weak = (int, float, complex)
    dtype = np.result_type(
        w if isinstance(w, weak) and not isinstance(w, bool) else w_arr,
        v if isinstance(v, weak) and not isinstance(v, bool) else v_arr,
    )
    if dtype.kind in "iu":
        dtype = np.dtype(np.float64)
    return w_arr.astype(dtype, copy=False), v_arr.astype(dtype, copy=False), scalar, dtype


def _as_output(fname: str, y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{fname}: f must return a numeric array, got dtype {arr.dtype}")
    return arr


def _unwrap(x: np.ndarray) -> Any:
    """0-d arrays become NumPy scalars; other arrays are returned unchanged."""
    return x[()] if x.ndim == 0 else x


def _call_point(x: np.ndarray, scalar: bool) -> Any:
    return x[()] if scalar else x


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps)


def _truncation_order(scheme: str, order: int, accuracy: int) -> int:
    """Truncation order ``m`` of the ``accuracy=p`` stencil for the ``order=k`` derivative.

    forward/backward: ``p - k + 1`` (Book §7.5); central: ``2p + 2 - 2*ceil(k/2)`` (corrected
    from the book's ``2p + 2 - 2*ceil((k+1)/2)``, see the module docstring).
    """
    if scheme == "central":
        return 2 * accuracy + 2 - 2 * math.ceil(order / 2)
    return accuracy - order + 1


def _default_delta(w: np.ndarray, v: np.ndarray, dtype: np.dtype, order: int, trunc: int) -> float:
    w_inf = float(np.max(np.abs(w))) if w.size else 0.0
    v_norm = float(np.linalg.norm(v.ravel())) if v.size else 0.0
    scale = max(1.0, w_inf) / v_norm if v_norm > 0.0 else max(1.0, w_inf)
    return scale * _eps(dtype) ** (1.0 / (trunc + order))


def _stencil_offsets(scheme: str, accuracy: int) -> list[int]:
    if scheme == "forward":
        return list(range(0, accuracy + 1))
    if scheme == "backward":
        return list(range(-accuracy, 1))
    return list(range(-accuracy, accuracy + 1))


def _check_stencil(fname: str, scheme: str, order: int, accuracy: int) -> None:
    if scheme in ("forward", "backward") and accuracy < order:
        raise ValueError(
            f"{fname}: too few points for scheme={scheme!r}: accuracy p={accuracy} must be >= "
            f"order k={order} (p + 1 points are needed for a k-th derivative)"
        )
    if scheme == "central" and 2 * accuracy + 1 <= order:
        raise ValueError(
            f"{fname}: too few points for scheme='central': need 2p+1 > k, got accuracy "
            f"p={accuracy} and order k={order}"
        )


# ----------------------------------------------------------------------------------------------
# AD-04: coefficients
# ----------------------------------------------------------------------------------------------


def _to_fraction(fname: str, x: Any) -> Fraction:
    if isinstance(x, (bool, np.bool_, str, bytes)) or not isinstance(x, numbers.Real):
        raise TypeError(
            f"{fname}: argument 'offsets' must contain real numbers (ints or Fractions), "
            f"got {x!r} of type {type(x).__name__}"
        )
    if isinstance(x, numbers.Rational):
        return Fraction(int(x.numerator), int(x.denominator))
    xf = float(x)
    if not math.isfinite(xf):
        raise ValueError(f"{fname}: argument 'offsets' must be finite, got {x!r}")
    return Fraction(xf)


def fd_coefficients(
    offsets: Sequence[Any] | np.ndarray, deriv_order: int = 1, exact: bool = False
) -> Any:
    r"""Finite-difference weights ``a`` for the stencil ``offsets`` (Book §7.4–7.5, AD-04).

    With ``n = len(offsets)`` distinct offsets ``i`` and derivative order ``k``, the weights
    solve the Vandermonde system

    .. math:: \sum_i a_i\, i^j = k!\,[j = k], \qquad j = 0, \dots, n-1,

    so that ``∂^k f(w)[v, ..., v] ≈ Σ_i a_i f(w + iδv) / δ^k``. The system is solved exactly
    in rational arithmetic (:class:`fractions.Fraction`); the result is converted to float64
    unless ``exact=True``.

    Book §7.5 errata: the printed forward ``p = k = 2`` example ``(-3/2, 2, -1/2)/δ²`` is
    wrong; the correct weights are ``(1, -2, 1)`` (and ``(-3/2, 2, -1/2)`` are the ``k = 1``
    weights, over ``δ``).

    Args:
        offsets: distinct real offsets (ints, Fractions or floats, which are taken exactly).
        deriv_order: the derivative order ``k >= 1``; needs ``len(offsets) >= k + 1``.
        exact: return a tuple of :class:`~fractions.Fraction` instead of a float array.

    Returns:
        ``np.ndarray`` of float64 weights, one per offset, in the given order (or a tuple of
        Fractions when ``exact=True``).

    Raises:
        ValueError: repeated offsets, too few offsets, ``deriv_order <= 0``.
        TypeError: non-numeric offsets or a non-integer ``deriv_order``.

    Example:
        >>> fd_coefficients((-1, 0, 1), 2, exact=True) == (1, -2, 1)
        True
        >>> fd_coefficients((0, 1, 2)).tolist()
        [-1.5, 2.0, -0.5]
    """
    fname = "fd_coefficients"
    k = _check_int(fname, "deriv_order", deriv_order, minimum=1)
    if isinstance(offsets, (str, bytes)) or not isinstance(offsets, (Sequence, np.ndarray)):
        raise TypeError(
            f"{fname}: argument 'offsets' must be a 1-D sequence of numbers, "
            f"got {type(offsets).__name__}"
        )
    if isinstance(offsets, np.ndarray):
        if offsets.ndim != 1:
            raise ValueError(f"{fname}: argument 'offsets' must be 1-D, got shape {offsets.shape}")
        offsets = offsets.tolist()
    pts = [_to_fraction(fname, x) for x in offsets]
    n = len(pts)
    if n == 0:
        raise ValueError(f"{fname}: argument 'offsets' must not be empty")
    if len(set(pts)) != n:
        repeated = sorted({str(p) for p in pts if pts.count(p) > 1})
        raise ValueError(f"{fname}: argument 'offsets' must be distinct, got repeated {repeated}")
    if n <= k:
        raise ValueError(
            f"{fname}: a derivative of order deriv_order={k} needs at least {k + 1} offsets, "
            f"got {n}"
        )
    # Augmented matrix rows j = 0..n-1: [i_0^j, ..., i_{n-1}^j | k! [j == k]].
    mat = [[p**j for p in pts] + [Fraction(math.factorial(k) if j == k else 0)] for j in range(n)]
    for col in range(n):
        piv = next(r for r in range(col, n) if mat[r][col] != 0)  # non-singular: distinct pts
        mat[col], mat[piv] = mat[piv], mat[col]
        pivot = mat[col][col]
        mat[col] = [x / pivot for x in mat[col]]
        for r in range(n):
            if r != col and mat[r][col] != 0:
                factor = mat[r][col]
                mat[r] = [a - factor * b for a, b in zip(mat[r], mat[col], strict=True)]
    coeffs = tuple(mat[r][n] for r in range(n))
    if exact:
        return coeffs
    return np.array([float(c) for c in coeffs], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# AD-01..AD-09: directional derivatives
# ----------------------------------------------------------------------------------------------


def _apply_stencil(
    f: Callable[..., Any],
    w: np.ndarray,
    v: np.ndarray,
    scalar: bool,
    offsets: Sequence[int],
    order: int,
    delta: float,
    fname: str,
) -> Any:
    """``Σ_i a_i f(w + iδv) / δ^k``, skipping points whose weight is exactly zero."""
    weights = fd_coefficients(offsets, order, exact=True)
    total = None
    for i, a in zip(offsets, weights, strict=True):
        if a == 0:
            continue
        x = np.asarray(w + (i * delta) * v) if i != 0 else w.copy()
        y = _as_output(fname, f(_call_point(x, scalar)))
        term = float(a) * y
        total = term if total is None else total + term
    assert total is not None
    result = np.asarray(total / delta**order)
    if not np.any(v):  # zero direction: every point is w, the derivative is exactly zero
        result = np.zeros_like(result)
    return _unwrap(result)


def fd_directional_derivative(
    f: Callable[..., Any],
    w: Any,
    v: Any,
    order: int = 1,
    scheme: str = "central",
    accuracy: int = 1,
    delta: float | None = None,
) -> Any:
    r"""Finite-difference ``k``-th directional derivative ``∂^k f(w)[v, ..., v]`` (Book §7.5).

    .. math:: \partial^k f(w)[v,\dots,v] \approx \sum_i \frac{a_i}{\delta^k} f(w + i\delta v)

    with weights from :func:`fd_coefficients` on the offsets ``i = 0..p`` (forward, ``p + 1``
    evaluations, truncation ``O(δ^{p-k+1})``), ``i = -p..0`` (backward, same) or ``i = -p..p``
    (central, truncation ``O(δ^{2p+2-2⌈k/2⌉})`` — the book's ``⌈(k+1)/2⌉`` is a misprint;
    points with a zero weight, e.g. ``i = 0`` for odd ``k``, are never evaluated).

    Args:
        f: black-box function of an array (or scalar) of ``w``'s shape; any output shape.
        w: the point (array of any shape, or a Python float). Integers are promoted to float64.
        v: the direction, of ``w``'s shape.
        order: the derivative order ``k >= 1``.
        scheme: ``"forward"``, ``"backward"`` or ``"central"``.
        accuracy: the book's ``p`` (number of points, not the truncation order). Needs
            ``p >= k`` for forward/backward and ``2p + 1 > k`` for central.
        delta: the step ``δ > 0``. Default ``max(1, ‖w‖_∞)/‖v‖₂ · ε^(1/(m+k))`` with ``m`` the
            truncation order and ``ε`` the working dtype's machine epsilon.

    Returns:
        An array of ``f``'s output shape (a NumPy scalar for scalar outputs).

    Example:
        >>> d2 = fd_directional_derivative(np.exp, 0.0, 1.0, order=2, accuracy=2)
        >>> bool(abs(d2 - 1.0) < 1e-8)
        True
    """
    fname = "fd_directional_derivative"
    _check_callable(fname, f)
    k = _check_int(fname, "order", order)
    scheme = _check_scheme(fname, scheme, _SCHEMES)
    p = _check_int(fname, "accuracy", accuracy)
    _check_stencil(fname, scheme, k, p)
    if delta is not None:
        delta = _check_delta(fname, delta)
    w_arr, v_arr, scalar, dtype = _point_and_direction(fname, w, v)
    if delta is None:
        delta = _default_delta(w_arr, v_arr, dtype, k, _truncation_order(scheme, k, p))
    return _apply_stencil(f, w_arr, v_arr, scalar, _stencil_offsets(scheme, p), k, delta, fname)


def fd_jvp(
    f: Callable[..., Any],
    w: Any,
    v: Any,
    delta: float | None = None,
    scheme: str = "central",
    accuracy: int = 1,
) -> Any:
    r"""Finite-difference JVP ``∂f(w)[v]`` from calls to ``f`` only (Book §7.1–7.4).

    * forward (§7.1): ``(f(w + δv) - f(w)) / δ``, truncation ``O(δ)``;
    * backward (§7.2): ``(f(w) - f(w - δv)) / δ``, truncation ``O(δ)``;
    * central (§7.3): ``(f(w + δv) - f(w - δv)) / (2δ)``, truncation ``O(δ²)``.

    ``accuracy=p`` (§7.4) uses ``Σ_{i=0}^{p} a_i f(w ± iδv)/δ`` (``p + 1`` calls,
    ``O(δ^p)``) or ``Σ_{i=-p}^{p} a_i f(w + iδv)/δ`` (``2p`` calls since ``a_0 = 0``,
    ``O(δ^{2p})``).

    Args:
        f: black-box function; ``w`` may have any shape and ``f`` may return any shape.
        w: the point; v: the direction, of ``w``'s shape.
        delta: the step. Default ``max(1, ‖w‖_∞)/‖v‖₂`` times ``√ε`` (forward/backward,
            ``p = 1``), ``ε^(1/3)`` (central, ``p = 1``), ``ε^(1/(m+1))`` for truncation order
            ``m`` in general, with ``ε`` the working dtype's machine epsilon.
        scheme: ``"forward"``, ``"backward"`` or ``"central"``.
        accuracy: the book's ``p >= 1``.

    Returns:
        ``∂f(w)[v]`` with ``f``'s output shape.

    Example:
        >>> bool(abs(fd_jvp(np.sin, 0.0, 1.0) - 1.0) < 1e-9)
        True
    """
    fname = "fd_jvp"
    _check_callable(fname, f)
    scheme = _check_scheme(fname, scheme, _SCHEMES)
    p = _check_int(fname, "accuracy", accuracy)
    if delta is not None:
        delta = _check_delta(fname, delta)
    w_arr, v_arr, scalar, dtype = _point_and_direction(fname, w, v)
    if delta is None:
        delta = _default_delta(w_arr, v_arr, dtype, 1, _truncation_order(scheme, 1, p))
    return _apply_stencil(f, w_arr, v_arr, scalar, _stencil_offsets(scheme, p), 1, delta, fname)


def fd_second_directional(f: Callable[..., Any], w: Any, v: Any, delta: float | None = None) -> Any:
    r"""Second-order central difference ``∂²f(w)[v, v]`` (``= vᵀ∇²f(w)v``), Book §7.5 (AD-09).

    .. math:: \partial^2 f(w)[v,v] \approx \frac{f(w+\delta v) + f(w-\delta v) - 2f(w)}{\delta^2}

    Three evaluations; the odd-order terms cancel, so the truncation error is ``O(δ²)``
    (leading term ``δ²/12 · ∂⁴f(w)[v,v,v,v]``). A test oracle for HVPs:
    ``vdot(v, hvp(f, w, v))``. Default ``δ = max(1, ‖w‖_∞)/‖v‖₂ · ε^(1/4)``.

    Example:
        >>> bool(abs(fd_second_directional(np.exp, 1.0, 1.0, delta=1e-3) - np.e) < 1e-6)
        True
    """
    fname = "fd_second_directional"
    _check_callable(fname, f)
    if delta is not None:
        delta = _check_delta(fname, delta)
    w_arr, v_arr, scalar, dtype = _point_and_direction(fname, w, v)
    if delta is None:
        delta = _default_delta(w_arr, v_arr, dtype, 2, 2)
    return _apply_stencil(f, w_arr, v_arr, scalar, (-1, 0, 1), 2, delta, fname)


# ----------------------------------------------------------------------------------------------
# AD-10: complex step
# ----------------------------------------------------------------------------------------------

_HOLOMORPHIC_HINT = (
    "the complex step needs f written with holomorphic operations only (+, *, /, exp, log, "
    "sin, tanh, ...); abs, np.maximum/np.minimum, comparisons, sign, np.logaddexp, "
    "np.real/np.imag, conj and casts to float are not"
)


def _complex_call(fname: str, f: Callable[..., Any], z: Any) -> np.ndarray:
    try:
        out = f(z)
    except TypeError as exc:
        raise TypeError(f"{fname}: f failed on complex input ({exc}); {_HOLOMORPHIC_HINT}") from exc
    arr = np.asarray(out)
    if arr.dtype.kind != "c":
        raise TypeError(
            f"{fname}: f returned dtype {arr.dtype} on complex input, i.e. it dropped the "
            f"imaginary part; {_HOLOMORPHIC_HINT}"
        )
    return arr


def _check_complex_delta(fname: str, delta: Any, v: np.ndarray, dtype: np.dtype) -> float:
    delta = _check_delta(fname, delta)
    tiny = float(np.finfo(dtype).tiny)
    nz = np.abs(v[v != 0])
    if nz.size and delta * float(np.min(nz)) < tiny:
        raise ValueError(
            f"{fname}: delta*|v| underflows ({delta:g} * {float(np.min(nz)):g} < {tiny:g}) "
            f"in {np.dtype(dtype).name}; use a larger 'delta'"
        )
    return delta


def complex_step_jvp(
    f: Callable[..., Any], w: Any, v: Any, delta: float = 1e-20, check_real: bool = True
) -> tuple[Any, Any]:
    r"""Complex-step value and JVP, ``(f(w), ∂f(w)[v])`` (Book §7.6, AD-10).

    .. math:: \partial f(w)[v] \approx \operatorname{Im} f(w + i\delta v)/\delta, \qquad
              \operatorname{Re} f(w + i\delta v) = f(w) + O(\delta^2)

    Truncation error ``O(δ²)`` and no subtraction, hence no cancellation: ``δ = 1e-20`` is fine
    (``δ·|v|`` must not underflow). ``w`` and ``v`` must be real; the evaluation runs in
    complex128 (complex64 for float32 inputs).

    ``f`` must be *holomorphic code* that is real on real inputs: ``np.logaddexp`` does not
    accept complex numbers; ``abs``, ``np.maximum``/``np.minimum``, comparisons, ``sign``,
    ``conj``, ``real``/``imag`` and casts to float give wrong answers or drop the imaginary
    part. An output of real dtype (a dropped imaginary part) raises ``TypeError``; a failure of
    ``f`` on complex input is re-raised as ``TypeError`` with this explanation.

    Args:
        f: the function, evaluated once on ``w + iδv``.
        w: real point (any shape, or a Python float); v: real direction of ``w``'s shape.
        delta: the imaginary step ``δ > 0``.
        check_real: also evaluate ``f(w)`` once on the real input and raise ``ValueError`` if
            it is not real (``f`` must be real-valued on reals); the returned value is then
            that exact ``f(w)``. With ``check_real=False`` only the single complex call of
            Table 7.1 is made and the value is ``Re f(w + iδv)``.

    Returns:
        ``(value, jvp)`` with ``f``'s output shape.

    Example:
        >>> val, d = complex_step_jvp(np.exp, 1.0, 1.0)
        >>> bool(d == np.exp(1.0))
        True
    """
    fname = "complex_step_jvp"
    _check_callable(fname, f)
    w_arr, v_arr, scalar, dtype = _point_and_direction(fname, w, v, allow_complex=False)
    delta = _check_complex_delta(fname, delta, v_arr, dtype)
    value = None
    if check_real:
        real_out = _as_output(fname, f(_call_point(w_arr.copy(), scalar)))
        if real_out.dtype.kind == "c":
            if np.any(real_out.imag != 0):
                raise ValueError(
                    f"{fname}: f must be real-valued on real input, but f(w) has a non-zero "
                    "imaginary part; the complex step would mix it into the derivative"
                )
            real_out = real_out.real
        value = real_out
    cdtype = np.result_type(dtype, np.complex64)
    z = w_arr.astype(cdtype) + (1j * delta) * v_arr.astype(cdtype)
    out = _complex_call(fname, f, _call_point(z, scalar))
    jvp = out.imag / delta
    if not np.any(v_arr):
        jvp = np.zeros_like(jvp)
    if value is None:
        value = out.real
    return _unwrap(np.asarray(value)), _unwrap(np.asarray(jvp))


# ----------------------------------------------------------------------------------------------
# AD-11: gradients and Jacobians (Table 7.1)
# ----------------------------------------------------------------------------------------------


def _coordinate_steps(fname: str, w: np.ndarray, scheme: str, delta: Any) -> np.ndarray:
    if delta is None:
        if scheme == "complex":
            return np.full(w.size, 1e-20)
        trunc = 2 if scheme == "central" else 1
        base = _eps(w.dtype) ** (1.0 / (trunc + 1))
        return np.maximum(1.0, np.abs(w.ravel()).astype(np.float64)) * base
    if np.ndim(delta) == 0:
        return np.full(w.size, _check_delta(fname, delta))
    d = np.asarray(delta)
    if d.dtype.kind not in "iuf" or d.shape != w.shape:
        raise ValueError(
            f"{fname}: argument 'delta' must be a positive scalar or a positive real array of "
            f"w's shape {w.shape}, got shape {d.shape} and dtype {d.dtype}"
        )
    d = d.astype(np.float64).ravel()
    if not np.all(np.isfinite(d) & (d > 0)):
        raise ValueError(f"{fname}: argument 'delta' must be positive and finite everywhere")
    return d


def _jacobian(
    fname: str, f: Callable[..., Any], w: Any, scheme: str, delta: Any, need_scalar: bool
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Jacobian as a ``(out.size, P)`` matrix and the output shape, with Table 7.1 call counts."""
    _check_callable(fname, f)
    scheme = _check_scheme(fname, scheme, _GRAD_SCHEMES)
    w_arr, scalar = _as_point(fname, "w", w, allow_complex=False)
    n = w_arr.size
    if n == 0:
        raise ValueError(f"{fname}: argument 'w' must have at least one element")
    steps = _coordinate_steps(fname, w_arr, scheme, delta)
    if scheme == "complex":
        cdtype = np.result_type(w_arr.dtype, np.complex64)
        tiny = float(np.finfo(cdtype).tiny)
        if np.any(steps < tiny):
            raise ValueError(f"{fname}: argument 'delta' underflows in {np.dtype(cdtype).name}")
    if n > _MAX_FD_DIM:
        warnings.warn(
            f"{fname}: finite differences over P={n} > {_MAX_FD_DIM} coordinates need O(P) calls "
            "to f; use automatic differentiation (diffprog.grad / jacrev) instead",
            RuntimeWarning,
            stacklevel=3,
        )
    out_shape: tuple[int, ...] | None = None

    def call(x: np.ndarray) -> np.ndarray:
        nonlocal out_shape
        if scheme == "complex":
            y = _complex_call(fname, f, _call_point(x, scalar))
        else:
            y = _as_output(fname, f(_call_point(x, scalar)))
        if out_shape is None:
            out_shape = y.shape
            if need_scalar and y.size != 1:
                raise ValueError(
                    f"{fname}: f must return a scalar, got output of shape {y.shape}; "
                    "use fd_jacobian for non-scalar outputs"
                )
        elif y.shape != out_shape:
            raise ValueError(
                f"{fname}: f returned shapes {out_shape} and {y.shape} at different points"
            )
        return y.ravel()

    cols = []
    if scheme in ("forward", "backward"):
        sign = 1.0 if scheme == "forward" else -1.0
        y0 = call(w_arr.copy())
        for j in range(n):
            x = w_arr.copy()
            x.flat[j] += sign * steps[j]
            cols.append(sign * (call(x) - y0) / steps[j])
    elif scheme == "central":
        for j in range(n):
            xp = w_arr.copy()
            xp.flat[j] += steps[j]
            xm = w_arr.copy()
            xm.flat[j] -= steps[j]
            cols.append((call(xp) - call(xm)) / (2.0 * steps[j]))
    else:
        cdtype = np.result_type(w_arr.dtype, np.complex64)
        for j in range(n):
            z = w_arr.astype(cdtype)
            z.flat[j] += 1j * steps[j]
            cols.append(call(z).imag / steps[j])
    assert out_shape is not None
    return np.stack(cols, axis=-1), out_shape


def fd_jacobian(f: Callable[..., Any], w: Any, scheme: str = "central", delta: Any = None) -> Any:
    r"""Finite-difference Jacobian, one column per coordinate: ``∂f(w)[e_j]`` (Book §7.7).

    Calls to ``f`` (Table 7.1): forward/backward ``P + 1``, central ``2P``, complex step ``P``
    (complex calls; ``f`` must be holomorphic code, see :func:`complex_step_jvp`; real-valuedness
    on reals is *not* re-checked here to keep exactly ``P`` calls). Warns for ``P > 10_000``.

    Args:
        f: real function of ``w``; any output shape.
        w: real point of any shape (``P = w.size``).
        scheme: ``"forward"``, ``"backward"``, ``"central"`` or ``"complex"``.
        delta: scalar or per-coordinate array of steps. Default for coordinate ``j``:
            ``max(1, |w_j|)·√ε`` (forward/backward), ``max(1, |w_j|)·ε^(1/3)`` (central),
            ``1e-20`` (complex).

    Returns:
        Array of shape ``f(w).shape + w.shape`` (JAX's ``jacobian`` layout).

    Example:
        >>> J = fd_jacobian(lambda x: np.array([x[0] * x[1], x[1]]), np.array([2.0, 3.0]))
        >>> bool(np.allclose(J, [[3.0, 2.0], [0.0, 1.0]]))
        True
    """
    mat, out_shape = _jacobian("fd_jacobian", f, w, scheme, delta, need_scalar=False)
    return mat.reshape(out_shape + np.shape(w))


def fd_grad(f: Callable[..., Any], w: Any, scheme: str = "central", delta: Any = None) -> Any:
    r"""Finite-difference gradient ``[∇f(w)]_j = ∂f(w)[e_j]`` of a scalar ``f`` (Book §7.7).

    Calls to ``f`` (Table 7.1): forward/backward ``P + 1``, central ``2P``, complex step
    ``P``. For testing and low-dimensional black boxes only; warns for ``P > 10_000``. See
    :func:`fd_jacobian` for the default steps.

    Example:
        >>> A, b, w = np.eye(2), np.ones(2), np.zeros(2)
        >>> g = fd_grad(lambda w: 0.5 * np.sum((A @ w - b) ** 2), w)
        >>> bool(np.allclose(g, A.T @ (A @ w - b)))
        True
    """
    mat, _ = _jacobian("fd_grad", f, w, scheme, delta, need_scalar=True)
    return _unwrap(mat.reshape(np.shape(w)))


# ----------------------------------------------------------------------------------------------
# AD-12: error study (Fig 7.1)
# ----------------------------------------------------------------------------------------------


def fd_error_study(
    f: Callable[..., Any],
    df_true: Any,
    x: Any,
    deltas: Sequence[float] | np.ndarray,
    schemes: Sequence[str] = ("forward", "central", "complex"),
    v: Any = None,
) -> dict[str, np.ndarray]:
    r"""Truncation-versus-round-off study of Fig 7.1 (Book §7.1, AD-12).

    For each scheme and step ``δ`` returns ``max |D_δ f(x)[v] - df_true|`` (the largest
    absolute error over ``f``'s outputs), where ``D_δ`` is the forward, backward or central
    difference (:func:`fd_jvp`, ``accuracy=1``) or the complex step (:func:`complex_step_jvp`).
    The total error behaves like truncation (``O(δ)`` or ``O(δ²)``) plus round-off ``O(ε/δ)``
    for differences; the complex step has no round-off cancellation.

    Args:
        f: the function; df_true: the exact ``∂f(x)[v]``.
        x: the point; v: the direction (defaults to ``1`` for a scalar ``x``).
        deltas: positive steps. schemes: names among forward, backward, central, complex.

    Returns:
        ``{scheme: np.ndarray of len(deltas)}``.

    Example:
        >>> sp = lambda z: np.log(1 + np.exp(z))
        >>> err = fd_error_study(sp, 1 / (1 + np.exp(-1.0)), 1.0, [1e-2], ("forward",))
        >>> bool(9e-4 < err["forward"][0] < 1.1e-3)
        True
    """
    fname = "fd_error_study"
    _check_callable(fname, f)
    if isinstance(schemes, str):
        schemes = (schemes,)
    for s in schemes:
        _check_scheme(fname, s, _GRAD_SCHEMES)
    d_arr = np.asarray(deltas, dtype=np.float64) if not isinstance(deltas, str) else None
    if d_arr is None or d_arr.ndim != 1 or d_arr.size == 0:
        raise ValueError(f"{fname}: argument 'deltas' must be a non-empty 1-D sequence of steps")
    for d in d_arr:
        _check_delta(fname, float(d))
    if v is None:
        if np.ndim(x) != 0:
            raise ValueError(f"{fname}: argument 'v' is required when 'x' is not a scalar")
        v = 1.0
    true = np.asarray(df_true)
    out: dict[str, np.ndarray] = {}
    for s in schemes:
        errs = np.empty(d_arr.size)
        for n, d in enumerate(d_arr):
            if s == "complex":
                # f's real-valuedness is checked once, at the first step
                approx = complex_step_jvp(f, x, v, delta=float(d), check_real=(n == 0))[1]
            else:
                approx = fd_jvp(f, x, v, delta=float(d), scheme=s)
            errs[n] = float(np.max(np.abs(np.asarray(approx) - true)))
        out[s] = errs
    return out
