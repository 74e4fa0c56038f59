"""``diffprog.numpy.linalg``: differentiable linear algebra (book §8.4.1 and §8.4.3).

Each matrix function is a **primitive** of the engine (book §8.4.1: higher-level functions may be
primitives of their own, kept whole for speed and numerical stability) with a JVP rule taken from
matrix calculus (book §8.4.3 derives the JVPs/VJPs of linear maps the same way: through
``⟨∂f(W)[V], U⟩ = ⟨V, ∂f(W)*[U]⟩``, §2.3.3). One mechanism carries all of them:

* every decomposition (``inv, det, slogdet, cholesky, eigh, svd, qr, pinv``) registers a
  **JVP rule only**, which applies *linear* operations (matmul by residuals, solves with a fixed
  matrix, transposes, masks, diagonals) to the tangent. Reverse mode comes from linearizing and
  transposing that rule (book §8.4.4), so forward mode, reverse mode and every higher order
  (grad of grad, jvp of grad) are exact, with a single rule to get right;
* ``solve`` is the linear workhorse of those rules: it is linear in its right-hand side, so it
  registers a transpose rule ``b̄ = A⁻ᵀ ȳ`` (used when transposing linearized rules), plus VJP
  rules for the reverse tape, where it is also non-linear in ``A``;
* the multiple-output functions (``eigh``, ``svd``, ``qr``, ``slogdet``) are primitives with
  ``multiple_results=True``; the public functions return NumPy 2's named tuples.

Conventions and choices (documented per function):

* **Symmetric inputs.** ``eigh`` and ``cholesky`` default to ``symmetrize_input=True``: they
  factorize ``(A + Aᵀ)/2`` (identical to NumPy for symmetric ``A``), so that the value and its
  derivative agree for every input and the gradient is the symmetric matrix of matrix calculus
  (e.g. ``∇λₖ = vₖvₖᵀ``). With ``symmetrize_input=False`` they read the ``UPLO`` triangle only,
  exactly like NumPy, and the derivative is that of the triangle-reading function.
* **Degenerate spectra.** Eigenvector and singular-vector derivatives contain the factors
  ``1/(wⱼ - wᵢ)`` (``1/(sⱼ² - sᵢ²)``, ``1/sᵢ``). Near a degenerate spectrum they blow up; at an
  *exactly* repeated eigenvalue (or zero singular value) the vectors are not differentiable and
  the coupling factor is set to 0, so the eigenvector/singular-vector tangents are finite but
  meaningless there, while every function of the eigenvalues alone (``eigvalsh``, ``norm(A, 2)``,
  ``norm(A, 'nuc')``, traces) keeps a finite, correct derivative (no ``0·inf = nan`` leaks into it).
* **Singular matrices.** ``inv``, ``solve``, ``det`` and ``slogdet`` differentiate through
  ``A⁻¹`` and raise ``numpy.linalg.LinAlgError`` (naming the function) at an exactly singular
  matrix, where ``inv``/``solve``/``log|det|`` are not differentiable (``det`` is, but its rule
  uses ``det(A) tr(A⁻¹ dA)``).
* **Non-smooth norms.** ``norm(x)`` (2-norm) has derivative 0 at ``x = 0`` (an element of its
  subdifferential, the unit ball); the p-norms likewise; ``abs'(0) = 0``; ties in the ``max`` of
  the matrix 1/inf-norms split the cotangent equally.
* **Dtypes.** float32 and float64 (and complex for ``inv, solve, det, slogdet, matrix_power,
  multi_dot`` and the Frobenius/vector norms) are supported; integer inputs are converted to
  float64 like NumPy; derivatives of complex inputs follow the engine's bilinear convention.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Primitive, Tracer
from ._base import dtype_of, is_undefined, primal, shape_of
from .contraction import matmul_p
from .structural import broadcast_to_p, transpose_p, unbroadcast

__all__ = [
    "inv",
    "solve",
    "det",
    "slogdet",
    "cholesky",
    "eigh",
    "eigvalsh",
    "svd",
    "qr",
    "norm",
    "pinv",
    "lstsq",
    "matrix_power",
    "multi_dot",
    "EighResult",
    "SVDResult",
    "QRResult",
    "SlogdetResult",
]

LinAlgError = np.linalg.LinAlgError


class EighResult(NamedTuple):
    """``(eigenvalues, eigenvectors)`` as returned by :func:`eigh` (NumPy 2 names). Book §8.4.1."""

    eigenvalues: Any
    eigenvectors: Any


class SVDResult(NamedTuple):
    """``(U, S, Vh)`` as returned by :func:`svd` (NumPy 2 names). Book §8.4.1."""

    U: Any
    S: Any
    Vh: Any


class QRResult(NamedTuple):
    """``(Q, R)`` as returned by :func:`qr` (NumPy 2 names). Book §8.4.1."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``(sign, logabsdet)`` as returned by :func:`slogdet` (NumPy 2 names). Book §8.4.1."""

    sign: Any
    logabsdet: Any


# ----------------------------------------------------------------------------- helpers
def _traced(*xs) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


def _mT(x):
    """Swap the last two axes (a linear primitive, so it differentiates and transposes)."""
    nd = len(shape_of(x))
    return transpose_p.bind(x, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _mm(a, b):
    return matmul_p.bind(a, b)


def _diag_part(x):
    """The diagonal of the last two axes, as the last axis."""
    return dnp.diagonal(x, 0, -2, -1)


def _trace(x):
    return dnp.sum(_diag_part(x), axis=-1)


def _row(v):
    """``v[..., None, :]``: broadcasts along rows (``X * _row(s)`` is ``X diag(s)``)."""
    return dnp.expand_dims(v, -2)


def _col(v):
    """``v[..., :, None]``: broadcasts along columns (``_col(s) * X`` is ``diag(s) X``)."""
    return dnp.expand_dims(v, -1)


def _real_dtype(dt) -> np.dtype:
    return np.empty((), dtype=dt).real.dtype


def _safe_reciprocal(x):
    """``1/x`` where ``x != 0`` and ``0`` where ``x == 0``, with a finite derivative everywhere
    (the double-``where`` keeps ``inf`` out of the unused branch's derivative)."""
    zero = dnp.equal(x, 0)
    return dnp.where(zero, 0.0, 1.0 / dnp.where(zero, 1.0, x))


def _gap_inverse(w):
    """``F[..., i, j] = 1/(w_j - w_i)`` for ``w_i != w_j`` and ``0`` otherwise (diagonal too)."""
    return _safe_reciprocal(_row(w) - _col(w))


_LAPACK_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def _prep(fname: str, arg: str, x: Any, *, square: bool = True, min_ndim: int = 2,
          complex_ok: bool = True, max_ndim: int | None = None):
    """Validate a matrix argument (shape and dtype) before any work; integers become float64."""
    if not isinstance(x, Tracer):
        try:
            x = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{fname}: argument '{arg}' must be an array, got {type(x).__name__}"
                            ) from e
        if x.dtype.kind in "biu":
            x = x.astype(np.float64)
    dt = dtype_of(x)
    if dt not in _LAPACK_DTYPES:
        raise TypeError(
            f"{fname}: argument '{arg}' must be a float32/float64"
            f"{'/complex' if complex_ok else ''} array, got dtype {dt}"
        )
    if dt.kind == "c" and not complex_ok:
        raise TypeError(
            f"{fname}: argument '{arg}' must be real (float32 or float64); complex matrices are "
            f"not supported by diffprog's {fname}, got dtype {dt}"
        )
    s = shape_of(x)
    if len(s) < min_ndim:
        want = "(..., M, M)" if square else "(..., M, N)"
        raise ValueError(
            f"{fname}: argument '{arg}' must be a {want} array with at least {min_ndim} "
            f"dimensions, got shape {s}"
        )
    if max_ndim is not None and len(s) > max_ndim:
        raise ValueError(
            f"{fname}: argument '{arg}' must have at most {max_ndim} dimensions, got shape {s}"
        )
    if square and s[-1] != s[-2]:
        raise ValueError(
            f"{fname}: argument '{arg}' must be square in its last two dimensions (..., M, M), "
            f"got shape {s}"
        )
    return x


def _wrap_linalg(fname: str, what: str, fn):
    """Run a NumPy LAPACK routine; re-raise its LinAlgError naming the diffprog function."""

    def impl(*args, **params):
        try:
            return fn(*args, **params)
        except LinAlgError as e:
            raise LinAlgError(f"{fname}: {what} ({e})") from e

    return impl


# ----------------------------------------------------------------------------- solve
def _solve_jvp(primals, tangents, ans):
    a, _b = primals
    ta, tb = tangents
    rhs = tb
    if ta is not None:
        c = -_mm(ta, ans)
        rhs = c if rhs is None else rhs + c
    out = solve_p.bind(a, rhs)
    if shape_of(out) != shape_of(ans):
        out = broadcast_to_p.bind(out, shape=shape_of(ans))
    return out


def _solve_vjp_b(g, ans, a, b):
    return unbroadcast(solve_p.bind(_mT(a), g), shape_of(b))


def _solve_vjp_a(g, ans, a, b):
    gb = solve_p.bind(_mT(a), g)
    return unbroadcast(-_mm(gb, _mT(ans)), shape_of(a))


def _solve_t(ct, a, b):
    if is_undefined(a):
        raise TypeError("linalg.solve: the solution is not linear in the matrix 'a'")
    return None, unbroadcast(solve_p.bind(_mT(a), ct), b.shape)


solve_p = Primitive(
    "linalg_solve",
    _wrap_linalg("solve", "argument 'a' is singular", np.linalg.solve),
    jvp=_solve_jvp,
    vjps=(_solve_vjp_a, _solve_vjp_b),
    transpose=_solve_t,
)


def solve(a: Any, b: Any) -> Any:
    """Solve ``a x = b`` (``numpy.linalg.solve``; batched, ``b`` of shape (M,) or (..., M, K)).

    Derivatives: ``dx = a⁻¹ (db - da x)``; the VJP is ``b̄ = a⁻ᵀ x̄`` and ``ā = -b̄ xᵀ``.
    ``solve`` is linear in ``b`` and registers that transpose (book §8.4.4), which the other
    linear-algebra rules use. Book §8.4.3 (JVPs and VJPs of linear maps) / §9.4 (linear solves).

    Example::

        >>> solve(np.array([[2., 0.], [0., 4.]]), np.array([2., 2.]))
        array([1. , 0.5])
    """
    a = _prep("solve", "a", a)
    b = _prep("solve", "b", b, square=False, min_ndim=1)
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:
        if sb[0] != sa[-1]:
            raise ValueError(
                f"solve: argument 'b' of shape {sb} does not match 'a' of shape {sa} "
                f"(expected b of shape ({sa[-1]},) or (..., {sa[-1]}, K))"
            )
        x = solve_p.bind(a, dnp.reshape(b, (sb[0], 1)))
        return dnp.reshape(x, shape_of(x)[:-1])
    if sb[-2] != sa[-1]:
        raise ValueError(
            f"solve: argument 'b' of shape {sb} does not match 'a' of shape {sa} "
            f"(expected b of shape ({sa[-1]},) or (..., {sa[-1]}, K))"
        )
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError as e:
        raise ValueError(
            f"solve: the batch dimensions of 'a' {sa[:-2]} and 'b' {sb[:-2]} do not broadcast"
        ) from e
    return solve_p.bind(a, b)


# ----------------------------------------------------------------------------- inv
def _inv_jvp(primals, tangents, ans):
    (da,) = tangents
    return -_mm(_mm(ans, da), ans)


inv_p = Primitive("linalg_inv", _wrap_linalg("inv", "argument 'a' is singular", np.linalg.inv),
                  jvp=_inv_jvp)


def inv(a: Any) -> Any:
    """Matrix inverse ``a⁻¹`` (``numpy.linalg.inv``, batched over leading dimensions).

    JVP ``d(A⁻¹) = -A⁻¹ dA A⁻¹``; its transpose gives the VJP ``Ā = -A⁻ᵀ Ȳ A⁻ᵀ``
    (book §8.4.3, derived as in Example 8.3; reverse mode by transposition, §8.4.4).

    Example::

        >>> inv(np.array([[2., 0.], [0., 4.]]))
        array([[0.5 , 0.  ],
               [0.  , 0.25]])
    """
    a = _prep("inv", "a", a)
    return inv_p.bind(a)


# ----------------------------------------------------------------------------- det / slogdet
def _det_jvp(primals, tangents, ans):
    (a,), (da,) = primals, tangents
    return ans * _trace(solve_p.bind(a, da))


det_p = Primitive("linalg_det", np.linalg.det, jvp=_det_jvp)


def det(a: Any) -> Any:
    """Determinant (``numpy.linalg.det``, batched).

    Jacobi's formula: ``d det(A) = det(A) tr(A⁻¹ dA)``, so ``∇det(A) = det(A) A⁻ᵀ``
    (book §8.4.3). The rule solves with ``A``: at an exactly singular ``A`` it raises
    ``LinAlgError``. Prefer :func:`slogdet` for log-densities (no overflow).

    Example::

        >>> float(det(np.array([[2., 0.], [1., 3.]])))
        6.0
    """
    a = _prep("det", "a", a)
    return det_p.bind(a)


def _slogdet_impl(a):
    r = np.linalg.slogdet(a)
    return (r[0], r[1])


def _slogdet_jvp(primals, tangents, ans):
    (a,), (da,) = primals, tangents
    sign, _ = ans
    t = _trace(solve_p.bind(a, da))
    if dtype_of(t).kind == "c":
        # d sign = i Im(t) sign, written (t - conj t)/2 so that every intermediate stays complex
        return (0.5 * sign) * (t - dnp.conjugate(t)), dnp.real(t)
    return None, t


slogdet_p = Primitive("linalg_slogdet", _slogdet_impl, jvp=_slogdet_jvp, multiple_results=True)


def slogdet(a: Any) -> SlogdetResult:
    """Sign and log of the absolute determinant: ``det(A) = sign · exp(logabsdet)``.

    ``d logabsdet = tr(A⁻¹ dA)`` (real part for complex ``A``), so ``∇ log|det A| = A⁻ᵀ``;
    the sign is piecewise constant (derivative 0; for complex ``A``,
    ``d sign = i sign Im tr(A⁻¹ dA)``). Book §8.4.3; the log-det also appears in §9.3
    (its derivative via trace estimation) and in change-of-variables densities (§12.4.5).

    Example::

        >>> slogdet(2 * np.eye(3))   # log|det| = 3 log 2, gradient ½ I
        SlogdetResult(sign=np.float64(1.0), logabsdet=np.float64(2.0794415416798357))
    """
    a = _prep("slogdet", "a", a)
    return SlogdetResult(*slogdet_p.bind(a))


# ----------------------------------------------------------------------------- cholesky
def _cholesky_jvp(primals, tangents, ans):
    (da,) = tangents
    L = ans
    n = shape_of(L)[-1]
    dt = _real_dtype(dtype_of(L))
    phi = (np.tril(np.ones((n, n), dtype=dt), -1) + 0.5 * np.eye(n, dtype=dt)).astype(dt)
    # Z = L⁻¹ dA L⁻ᵀ  (dA symmetric):  Z = L⁻¹ (L⁻¹ dA)ᵀ
    z = solve_p.bind(L, _mT(solve_p.bind(L, da)))
    return _mm(L, z * phi)


cholesky_p = Primitive(
    "linalg_cholesky",
    _wrap_linalg("cholesky", "argument 'a' is not positive definite", np.linalg.cholesky),
    jvp=_cholesky_jvp,
)


def _symmetric_part(fname, a, symmetrize_input, UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError(f"{fname}: UPLO must be 'L' or 'U', got {UPLO!r}")
    if symmetrize_input:
        return 0.5 * (a + _mT(a))
    if UPLO == "L":
        return dnp.tril(a) + _mT(dnp.tril(a, -1))
    return dnp.triu(a) + _mT(dnp.triu(a, 1))


def cholesky(a: Any, /, *, upper: bool = False, symmetrize_input: bool = True) -> Any:
    """Cholesky factor ``A = L Lᵀ`` of a symmetric positive-definite matrix (batched).

    JVP (book §8.4.3, matrix calculus): ``dL = L Φ(L⁻¹ dA L⁻ᵀ)`` where ``Φ`` keeps the strictly
    lower triangle and halves the diagonal; reverse mode is its transpose (§8.4.4).
    ``upper=True`` returns ``U = Lᵀ`` (NumPy 2). By default the factorized matrix is
    ``(A + Aᵀ)/2`` (equal to ``A`` when it is symmetric), so the gradient is symmetric;
    ``symmetrize_input=False`` reads only the lower triangle (the upper one when ``upper=True``),
    like NumPy. Raises
    ``LinAlgError`` when the matrix is not positive definite.

    Example::

        >>> cholesky(np.array([[4., 2.], [2., 5.]]))
        array([[2., 0.],
               [1., 2.]])
    """
    a = _prep("cholesky", "a", a, complex_ok=False)
    a = _symmetric_part("cholesky", a, symmetrize_input, "U" if upper else "L")
    L = cholesky_p.bind(a)
    return _mT(L) if upper else L


# ----------------------------------------------------------------------------- eigh
def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    return (w, v)


def _eigh_jvp(primals, tangents, ans):
    (da,) = tangents
    w, v = ans
    s = _mm(_mm(_mT(v), da), v)  # Vᵀ dA V  (dA symmetric)
    dw = _diag_part(s)
    dv = _mm(v, _gap_inverse(w) * s)
    return dw, dv


eigh_p = Primitive("linalg_eigh", _wrap_linalg("eigh", "no convergence", _eigh_impl),
                   jvp=_eigh_jvp, multiple_results=True)


def eigh(a: Any, UPLO: str = "L", *, symmetrize_input: bool = True) -> EighResult:
    """Eigen-decomposition ``A = V diag(w) Vᵀ`` of a real symmetric matrix (batched).

    Eigenvalues ascend, eigenvectors are the columns of ``V``. JVP (book §8.4.3)::

        dw = diag(Vᵀ dA V),   dV = V (F ∘ (Vᵀ dA V)),   F_ij = 1/(w_j - w_i) (i ≠ j), F_ii = 0

    for symmetric ``dA``; reverse mode is its transpose (§8.4.4), so ``∇w_k = v_k v_kᵀ``.
    Repeated eigenvalues: the eigenvectors are not differentiable there (nearly repeated ones
    give very large derivatives); at an exact tie ``F_ij`` is set to 0 so that functions of the
    eigenvalues alone keep finite, correct derivatives. By default the decomposed matrix is
    ``(A + Aᵀ)/2``; ``symmetrize_input=False`` reads the ``UPLO`` triangle only, like NumPy.

    Example::

        >>> w, v = eigh(np.diag([3., 1.]))
        >>> w
        array([1., 3.])
    """
    a = _prep("eigh", "a", a, complex_ok=False)
    a = _symmetric_part("eigh", a, symmetrize_input, UPLO)
    return EighResult(*eigh_p.bind(a))


def eigvalsh(a: Any, UPLO: str = "L", *, symmetrize_input: bool = True) -> Any:
    """Eigenvalues (ascending) of a real symmetric matrix: the first output of :func:`eigh`.

    ``dw_k = v_kᵀ dA v_k``, i.e. ``∇w_k = v_k v_kᵀ`` (e.g. ``∇λ_max = q qᵀ`` for a simple top
    eigenvalue). Finite at repeated eigenvalues. Book §8.4.3.

    Example::

        >>> eigvalsh(np.diag([1., 3.]))
        array([1., 3.])
    """
    a = _prep("eigvalsh", "a", a, complex_ok=False)
    a = _symmetric_part("eigvalsh", a, symmetrize_input, UPLO)
    if not _traced(a):
        return _wrap_linalg("eigvalsh", "no convergence", np.linalg.eigvalsh)(a)
    return eigh_p.bind(a)[0]


# ----------------------------------------------------------------------------- svd
def _svd_impl(a, *, full_matrices):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return (u, s, vh)


def _svd_jvp(primals, tangents, ans, *, full_matrices):
    (a,), (da,) = primals, tangents
    u, s, vh = ans
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n:
        raise ValueError(
            "svd: the derivative of full_matrices=True with a non-square matrix is not defined "
            f"(shape {shape_of(a)}: the extra singular vectors are not unique); use "
            "full_matrices=False"
        )
    v = _mT(vh)
    dp = _mm(_mm(_mT(u), da), v)  # Uᵀ dA V  (k × k)
    ds = _diag_part(dp)
    f = _gap_inverse(s * s)  # 1/(s_j² - s_i²)
    sr, sc = _row(s), _col(s)
    dpt = _mT(dp)
    du = _mm(u, f * (dp * sr + sc * dpt))
    dv = _mm(v, f * (sc * dp + dpt * sr))
    sinv = _row(_safe_reciprocal(s))
    k = min(m, n)
    if m > k:  # (I - U Uᵀ) dA V S⁻¹
        du = du + (_mm(da, v) - _mm(u, dp)) * sinv
    if n > k:  # (I - V Vᵀ) dAᵀ U S⁻¹
        dv = dv + (_mm(_mT(da), u) - _mm(v, dpt)) * sinv
    return du, ds, _mT(dv)


svd_p = Primitive("linalg_svd", _wrap_linalg("svd", "no convergence", _svd_impl),
                  jvp=_svd_jvp, multiple_results=True)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """Singular value decomposition ``A = U diag(S) Vh`` (``numpy.linalg.svd``, batched).

    With ``P = Uᵀ dA V`` (reduced factors, ``k = min(M, N)``), the JVP is (book §8.4.3)::

        dS = diag(P)
        dU = U (F ∘ (P S + S Pᵀ)) + (I - U Uᵀ) dA V S⁻¹
        dV = V (F ∘ (S P + Pᵀ S)) + (I - V Vᵀ) dAᵀ U S⁻¹,   F_ij = 1/(s_j² - s_i²) (i ≠ j)

    and ``dVh = dVᵀ``; reverse mode is its transpose (§8.4.4). ``∇s_k = u_k v_kᵀ``.
    Derivatives of ``full_matrices=True`` with a non-square matrix raise ``ValueError`` (the
    completion of ``U`` or ``V`` is not unique): use ``full_matrices=False``. Repeated or zero
    singular values: the vectors are not differentiable (see :func:`eigh`); the singular
    values (``compute_uv=False``) stay finite. ``hermitian`` is accepted for NumPy
    compatibility; a general SVD is always computed (a valid SVD, signs may differ).

    Example::

        >>> svd(np.diag([3., 4.]), compute_uv=False)
        array([4., 3.])
    """
    a = _prep("svd", "a", a, square=False, complex_ok=False)
    if not compute_uv:
        if not _traced(a):
            return _wrap_linalg("svd", "no convergence", np.linalg.svd)(a, compute_uv=False)
        return svd_p.bind(a, full_matrices=False)[1]
    return SVDResult(*svd_p.bind(a, full_matrices=bool(full_matrices)))


# ----------------------------------------------------------------------------- qr
def _qr_impl(a, *, mode):
    q, r = np.linalg.qr(a, mode=mode)
    return (q, r)


def _qr_square_jvp(q, r, da):
    """QR JVP for ``A = QR`` with ``M >= N`` (R square, invertible)."""
    x = _mT(solve_p.bind(_mT(r), _mT(da)))  # dA R⁻¹
    c = _mm(_mT(q), x)  # Qᵀ dA R⁻¹
    low = dnp.tril(c, -1)
    omega = low - _mT(low)  # Qᵀ dQ, skew-symmetric
    dq = _mm(q, omega - c) + x
    dr = _mm(c - omega, r)
    return dq, dr


def _qr_jvp(primals, tangents, ans, *, mode):
    (a,), (da,) = primals, tangents
    q, r = ans
    m, n = shape_of(a)[-2:]
    if m > n and mode == "complete":
        raise ValueError(
            "qr: the derivative of mode='complete' with M > N is not defined (the extra "
            f"columns of Q are not unique; shape {shape_of(a)}); use mode='reduced'"
        )
    if m >= n:
        return _qr_square_jvp(q, r, da)
    # wide: A = Q [R1 R2] with X = A[:, :M] = Q R1 and R2 = Qᵀ Y
    r1 = r[..., :, :m]
    y = a[..., :, m:]
    dq, dr1 = _qr_square_jvp(q, r1, da[..., :, :m])
    dr2 = _mm(_mT(dq), y) + _mm(_mT(q), da[..., :, m:])
    return dq, dnp.concatenate([dr1, dr2], axis=-1)


qr_p = Primitive("linalg_qr", _qr_impl, jvp=_qr_jvp, multiple_results=True)


def qr(a: Any, mode: str = "reduced") -> Any:
    """QR decomposition ``A = QR`` (``numpy.linalg.qr``, batched), modes 'reduced', 'complete',
    'r' (``R`` only).

    JVP for ``M ≥ N`` (book §8.4.3): with ``C = Qᵀ dA R⁻¹`` and ``Ω = tril(C, -1) -
    tril(C, -1)ᵀ`` (``= Qᵀ dQ``), ``dR = (C - Ω) R`` and ``dQ = Q (Ω - C) + dA R⁻¹``. For
    ``M < N`` the rule is applied to the leading square block ``X = Q R₁`` and
    ``dR₂ = dQᵀ Y + Qᵀ dY``. Reverse mode is its transpose (§8.4.4). The leading ``min(M, N)``
    columns must be linearly independent. Mode 'complete' with ``M > N`` has no derivative
    (``ValueError`` when differentiated); mode 'raw' is not differentiable.

    Example::

        >>> q, r = qr(np.array([[3., 0.], [4., 5.]]))
        >>> np.round(np.abs(r), 6)
        array([[5., 4.],
               [0., 3.]])
    """
    a = _prep("qr", "a", a, square=False, complex_ok=False)
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ValueError(
            f"qr: mode must be 'reduced', 'complete', 'r' or 'raw', got {mode!r}"
        )
    if mode == "raw":
        if _traced(a):
            raise ValueError("qr: mode='raw' is not differentiable; use mode='reduced'")
        return np.linalg.qr(a, mode="raw")
    if mode == "r":
        if not _traced(a):
            return np.linalg.qr(a, mode="r")
        return qr_p.bind(a, mode="reduced")[1]
    return QRResult(*qr_p.bind(a, mode=mode))


# ----------------------------------------------------------------------------- pinv
def _pinv_impl(a, *, rcond, rtol, hermitian):
    kw = {"hermitian": hermitian}
    if rcond is not None:
        kw["rcond"] = rcond
    if rtol is not None:
        kw["rtol"] = rtol
    return np.linalg.pinv(a, **kw)


def _pinv_jvp(primals, tangents, ans, **params):
    (a,), (da,) = primals, tangents
    p = ans
    dat = _mT(da)
    pt = _mT(p)
    t1 = -_mm(_mm(p, da), p)
    # P Pᵀ dAᵀ (I - A P)
    t2 = _mm(_mm(p, pt), dat - _mm(dat, _mm(a, p)))
    # (I - P A) dAᵀ Pᵀ P
    w = _mm(dat, _mm(pt, p))
    t3 = w - _mm(_mm(p, a), w)
    return t1 + t2 + t3


pinv_p = Primitive("linalg_pinv", _wrap_linalg("pinv", "no convergence", _pinv_impl),
                   jvp=_pinv_jvp)


def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    """Moore–Penrose pseudo-inverse ``A⁺`` (``numpy.linalg.pinv``, batched).

    For perturbations that keep the rank (Golub–Pereyra), with ``P = A⁺``::

        dP = -P dA P + P Pᵀ dAᵀ (I - A P) + (I - P A) dAᵀ Pᵀ P

    and reverse mode is its transpose (book §8.4.3/§8.4.4). Singular values below the cutoff
    (``rcond``/``rtol``, as in NumPy) are treated as zero; at a rank change ``A⁺`` is
    discontinuous.

    Example::

        >>> pinv(np.array([[1., 0.], [0., 0.]]))
        array([[1., 0.],
               [0., 0.]])
    """
    a = _prep("pinv", "a", a, square=False, complex_ok=False)
    return pinv_p.bind(a, rcond=rcond, rtol=rtol, hermitian=bool(hermitian))


def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """Least-squares solution ``x = argmin ‖b - a x‖²`` (minimum norm): ``(x, residuals, rank,
    s)`` as ``numpy.linalg.lstsq``.

    Differentiable as ``x = A⁺ b`` (see :func:`pinv`: constant rank), ``residuals = ‖b - A x‖²``
    per column (when ``rank == N < M``, else empty), ``s`` = singular values; ``rank`` is an
    integer. Book §8.4.3; the normal equations are the implicit-function view of §11.

    Example::

        >>> x, res, rank, s = lstsq(np.array([[1., 0.], [0., 1.], [0., 0.]]),
        ...                         np.array([1., 2., 3.]))
        >>> x, res
        (array([1., 2.]), array([9.]))
    """
    a = _prep("lstsq", "a", a, square=False, complex_ok=False, max_ndim=2)
    b = _prep("lstsq", "b", b, square=False, min_ndim=1, complex_ok=False, max_ndim=2)
    m, n = shape_of(a)
    sb = shape_of(b)
    if sb[0] != m:
        raise ValueError(f"lstsq: argument 'b' of shape {sb} does not match 'a' of shape "
                         f"({m}, {n}): expected {m} rows")
    if not _traced(a, b):
        return np.linalg.lstsq(a, b, rcond=rcond)
    cut = (np.finfo(dtype_of(a)).eps * max(m, n)) if rcond is None else rcond
    s = svd(a, compute_uv=False)
    sv = np.asarray(primal(s))
    rank = int(np.sum(sv > cut * sv.max())) if sv.size else 0
    x = _mm(pinv(a, rcond=cut), b) if len(sb) == 2 else dnp.reshape(
        _mm(pinv(a, rcond=cut), dnp.reshape(b, (m, 1))), (n,))
    if rank == n and m > n:
        r = b - (_mm(a, x) if len(sb) == 2 else dnp.reshape(_mm(a, dnp.reshape(x, (n, 1))),
                                                            (m,)))
        res = dnp.sum(r * r, axis=0)
        if len(sb) == 1:
            res = dnp.reshape(res, (1,))
    else:
        res = np.empty((0,), dtype=dtype_of(a))
    return x, res, rank, s


# ----------------------------------------------------------------------------- norm
def _safe_sqrt(s):
    """``sqrt(s)`` with derivative 0 (not inf/nan) at ``s = 0``."""
    zero = dnp.equal(s, 0)
    return dnp.where(zero, 0.0, dnp.sqrt(dnp.where(zero, 1.0, s)))


def _abs2(x):
    if dtype_of(x).kind == "c":
        re, im = dnp.real(x), dnp.imag(x)
        return re * re + im * im
    return x * x


def _abs(x):
    if dtype_of(x).kind == "c":
        return _safe_sqrt(_abs2(x))
    return dnp.abs(x)


def _vector_norm(x, ord, axis, keepdims):
    if ord is None or ord == 2:
        return _safe_sqrt(dnp.sum(_abs2(x), axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    if ord == math.inf:
        return dnp.max(_abs(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return dnp.min(_abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        xv = primal(x)
        return np.sum(xv != 0, axis=axis, keepdims=keepdims).astype(_real_dtype(xv.dtype))
    if ord == 1:
        return dnp.sum(_abs(x), axis=axis, keepdims=keepdims)
    p = float(ord)
    s = dnp.sum(_abs(x) ** p, axis=axis, keepdims=keepdims)
    zero = dnp.equal(s, 0)
    return dnp.where(zero, 0.0, dnp.where(zero, 1.0, s) ** (1.0 / p))


_MATRIX_ORDS = (None, "fro", "f", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _matrix_norm(x, ord, axes, keepdims):
    nd = len(shape_of(x))
    row, col = axes
    y = dnp.moveaxis(x, (row, col), (nd - 2, nd - 1))
    if ord in (None, "fro", "f"):
        out = _safe_sqrt(dnp.sum(_abs2(y), axis=(-2, -1)))
    elif ord in ("nuc", 2, -2):
        if dtype_of(x).kind == "c":
            raise TypeError(f"norm: ord={ord!r} is not supported for complex matrices")
        s = svd(y, compute_uv=False)
        out = dnp.sum(s, axis=-1) if ord == "nuc" else (s[..., 0] if ord == 2 else s[..., -1])
    elif ord in (1, -1):
        colsum = dnp.sum(_abs(y), axis=-2)
        out = dnp.max(colsum, axis=-1) if ord == 1 else dnp.min(colsum, axis=-1)
    else:  # ±inf
        rowsum = dnp.sum(_abs(y), axis=-1)
        out = dnp.max(rowsum, axis=-1) if ord == math.inf else dnp.min(rowsum, axis=-1)
    if keepdims:
        shape = list(shape_of(x))
        shape[row] = 1
        shape[col] = 1
        out = dnp.reshape(out, tuple(shape))
    return out


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """Vector or matrix norm (``numpy.linalg.norm``: same ``ord``, ``axis``, ``keepdims``).

    Vectors (``axis`` an int, or 1-D input): ``ord`` = None/2 (``sqrt Σ|x|²``), any real p
    (``(Σ|x|^p)^(1/p)``), ``inf``/``-inf`` (max/min of ``|x|``), 0 (count of non-zeros,
    derivative 0). Matrices (``axis`` a pair, or 2-D input): None/'fro' (Frobenius), 'nuc'
    (sum of singular values), 2/-2 (largest/smallest singular value, ``∇ = u₁v₁ᵀ``),
    1/-1 (max/min column sum of ``|x|``), inf/-inf (max/min row sum).

    Derivatives: ``∇‖x‖₂ = x/‖x‖₂`` and **0 at x = 0** (an element of the subdifferential, the
    unit ball; likewise for the p-norms), ``abs'(0) = 0``, and ``max``/``min`` ties split the
    cotangent equally (Clarke subdifferential, DESIGN non-smooth convention). Book §8.4.3, and
    dual norms §18.1.

    Example::

        >>> float(norm(np.array([3., 4.])))
        5.0
    """
    if not isinstance(x, Tracer):
        x = np.asarray(x)
        if x.dtype.kind in "biu":
            x = x.astype(np.float64)
    dt = dtype_of(x)
    if dt.kind not in "fc":
        raise TypeError(f"norm: argument 'x' must be a floating-point array, got dtype {dt}")
    nd = len(shape_of(x))
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            out = _safe_sqrt(dnp.sum(_abs2(x)))
            if keepdims:
                out = dnp.reshape(out, (1,) * nd)
            return out
        axis = tuple(range(nd))
    elif isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    else:
        axis = tuple(int(a) for a in axis)
    for a in axis:
        if not -nd <= a < nd:
            raise ValueError(f"norm: axis {a} is out of bounds for an array of ndim {nd}")
    axis = tuple(a % nd for a in axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, axis, keepdims)
    if len(axis) == 2:
        if axis[0] == axis[1]:
            raise ValueError(f"norm: duplicate axes {axis}")
        if ord not in _MATRIX_ORDS:
            raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
        return _matrix_norm(x, ord, axis, keepdims)
    raise ValueError(
        f"norm: improper number of dimensions to norm: axis={axis} (a vector norm needs one "
        "axis, a matrix norm two)"
    )


# ----------------------------------------------------------------------------- products
def matrix_power(a: Any, n: int) -> Any:
    """``A^n`` for an integer ``n`` (``numpy.linalg.matrix_power``; ``n < 0`` uses ``inv``).

    Computed by repeated squaring with ``matmul``, so ``d(Aⁿ) = Σ_k A^k dA A^(n-1-k)`` comes from
    composition (book §8.4.2: closure under composition); ``A⁰ = I`` has derivative 0.

    Example::

        >>> matrix_power(np.array([[1., 1.], [0., 1.]]), 3)
        array([[1., 3.],
               [0., 1.]])
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"matrix_power: exponent 'n' must be an integer, got {n!r}")
    a = _prep("matrix_power", "a", a)
    n = int(n)
    if n == 0:
        s = shape_of(a)
        return np.broadcast_to(np.eye(s[-1], dtype=dtype_of(a)), s).copy()
    if n < 0:
        a = inv(a)
        n = -n
    result = None
    base = a
    while n:
        if n & 1:
            result = base if result is None else _mm(result, base)
        n >>= 1
        if n:
            base = _mm(base, base)
    return result


def _chain_order(dims):
    """Optimal parenthesization of a matrix chain (dynamic programming on ``dims``)."""
    k = len(dims) - 1
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = math.inf
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j] = c
                    split[i][j] = s
    return split


def multi_dot(arrays: Sequence[Any], *, out: None = None) -> Any:
    """Product of a chain of matrices in the cheapest order (``numpy.linalg.multi_dot``).

    The first/last array may be 1-D (row/column vector). Differentiated as a composition of
    ``matmul`` (book §8.4.3, Example 8.3: ``d(AB) = dA B + A dB``).

    Example::

        >>> multi_dot([np.ones(2), np.eye(2), np.ones(2)])
        np.float64(2.0)
    """
    if out is not None:
        raise TypeError("multi_dot: 'out' is not supported (diffprog arrays are immutable)")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("multi_dot: argument 'arrays' needs at least 2 arrays")
    arrays = [_prep("multi_dot", f"arrays[{i}]", x, square=False, min_ndim=1, max_ndim=2)
              for i, x in enumerate(arrays)]
    for i, x in enumerate(arrays[1:-1], 1):
        if len(shape_of(x)) != 2:
            raise ValueError(f"multi_dot: arrays[{i}] must be 2-D, got shape {shape_of(x)}")
    first_1d = len(shape_of(arrays[0])) == 1
    last_1d = len(shape_of(arrays[-1])) == 1
    if first_1d:
        arrays[0] = dnp.reshape(arrays[0], (1, shape_of(arrays[0])[0]))
    if last_1d:
        arrays[-1] = dnp.reshape(arrays[-1], (shape_of(arrays[-1])[0], 1))
    for i in range(len(arrays) - 1):
        if shape_of(arrays[i])[1] != shape_of(arrays[i + 1])[0]:
            raise ValueError(
                f"multi_dot: shapes of arrays[{i}] {shape_of(arrays[i])} and arrays[{i + 1}] "
                f"{shape_of(arrays[i + 1])} are not aligned"
            )
    dims = [shape_of(arrays[0])[0]] + [shape_of(x)[1] for x in arrays]
    split = _chain_order(dims)

    def prod(i, j):
        if i == j:
            return arrays[i]
        s = split[i][j]
        return _mm(prod(i, s), prod(s + 1, j))

    res = prod(0, len(arrays) - 1)
    if first_1d and last_1d:
        return res[0, 0]
    if first_1d:
        return dnp.reshape(res, (shape_of(res)[1],))
    if last_1d:
        return dnp.reshape(res, (shape_of(res)[0],))
    return res
