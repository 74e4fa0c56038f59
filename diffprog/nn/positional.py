"""Positional encodings (book §4.8.7): learned, sinusoidal, and rotary (RoPE).

Self-attention is permutation equivariant; adding a position-dependent ``p_i`` to each token
(``x_i ← x_i + p_i``) breaks that symmetry. Learned and sinusoidal encodings are added to the
input before the first layer; RoPE rotates the queries and keys inside every attention layer,
after the projections.

Erratum (book §4.8.7, sinusoidal encoding). The formula ``p_{i,j} = sin(ω_j i)`` for even ``j``,
``cos(ω_{j−1} i)`` for odd ``j``, ``ω_j = N^{−j/D}``, only pairs the columns correctly with a
0-based column index ``j`` (with 1-based ``j`` the sine of ``ω_{j}`` would sit in column 2 and
its cosine partner would use ``ω_{j−1}`` from the previous pair). Indices here are 0-based.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from ..core.rng import as_generator
from ..numpy._base import dtype_of, float_dtype
from .module import Module, normal_init

__all__ = [
    "sinusoidal_positional_encoding",
    "sinusoidal_shift_matrix",
    "rope",
    "rope_frequencies",
    "LearnedPositionalEncoding",
    "check_permutation_equivariance",
]


def _check_int(val: Any, name: str, fname: str, low: int = 0) -> None:
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
        raise ValueError(f"{fname}: argument '{name}' must be an int >= {low}, got {val!r}")


def _check_base(base: Any, fname: str) -> None:
    if not np.isfinite(base) or base <= 0:
        raise ValueError(f"{fname}: argument 'base' must be a positive finite number, "
                         f"got {base!r}")


def sinusoidal_positional_encoding(L: int, D: int, base: float = 10000.0, start: int = 0,
                                   dtype: Any = np.float64) -> np.ndarray:
    """Sinusoidal positional encoding ``P ∈ ℝ^{L×D}`` (book §4.8.7, 0-based ``j``, see the module
    erratum): ``p_{i,j} = sin(ω_j i)`` for even ``j``, ``cos(ω_{j−1} i)`` for odd ``j``,
    ``ω_j = base^{−j/D}``, for positions ``i = start, …, start+L−1``. Values lie in ``[−1, 1]``;
    the frequencies ``ω_j`` decrease with ``j`` (wavelength ``2π/ω_j``).

    Example::

        >>> sinusoidal_positional_encoding(2, 4).round(6).tolist()
        [[0.0, 1.0, 0.0, 1.0], [0.841471, 0.540302, 0.01, 0.99995]]
    """
    fname = "sinusoidal_positional_encoding"
    _check_int(L, "L", fname)
    _check_int(D, "D", fname, 1)
    _check_int(start, "start", fname)
    _check_base(base, fname)
    i = np.arange(start, start + L, dtype=np.float64)[:, None]
    j = np.arange(D)
    omega = float(base) ** (-(j - j % 2) / D)
    angles = i * omega
    P = np.where(j % 2 == 0, np.sin(angles), np.cos(angles))
    return P.astype(dtype)


def sinusoidal_shift_matrix(delta: float, D: int, base: float = 10000.0) -> np.ndarray:
    """The rotation ``R(δ)`` with ``p_{i+δ} = R(δ) p_i`` for every position ``i`` (book §4.8.7,
    "recovering relative positional information"): block-diagonal, one block
    ``[[cos ω_jδ, sin ω_jδ], [−sin ω_jδ, cos ω_jδ]]`` per pair ``(sin, cos)`` of columns
    ``(j, j+1)`` (the book's block acts on ``(cos, sin)``); ``D`` must be even. ``R(δ)`` is
    orthogonal and independent of ``i``.

    Example::

        >>> P = sinusoidal_positional_encoding(10, 6)
        >>> bool(np.allclose(sinusoidal_shift_matrix(3, 6) @ P[2], P[5]))
        True
    """
    fname = "sinusoidal_shift_matrix"
    _check_int(D, "D", fname, 1)
    if D % 2:
        raise ValueError(f"{fname}: argument 'D' must be even (with odd D the last column is a "
                         f"lone sine that no position-independent matrix shifts), got D={D}")
    _check_base(base, fname)
    R = np.eye(D)
    for j in range(0, D, 2):
        w = float(base) ** (-j / D) * delta
        c, s = np.cos(w), np.sin(w)
        R[j:j + 2, j:j + 2] = [[c, s], [-s, c]]
    return R


def rope_frequencies(D: int, base: float = 10000.0) -> np.ndarray:
    """RoPE frequencies ``θ_j = base^{−2(j−1)/D}``, ``j = 1, …, D/2`` (book §4.8.7).

    Example::

        >>> rope_frequencies(4).tolist()
        [1.0, 0.01]
    """
    fname = "rope_frequencies"
    _check_int(D, "D", fname, 1)
    if D % 2:
        raise ValueError(f"{fname}: the dimension D must be even (RoPE rotates pairs of "
                         f"coordinates), got D={D}")
    _check_base(base, fname)
    return float(base) ** (-np.arange(0, D, 2) / D)


def rope(x: Any, positions: Any = None, base: float = 10000.0) -> Any:
    """Rotary positional encoding (book §4.8.7): ``x_m ↦ R_D(θ, m) x_m`` for the token at position
    ``m``, ``R_D = blockdiag(R_2(θ_1, m), …, R_2(θ_{D/2}, m))``,
    ``R_2(θ, m) = [[cos mθ, −sin mθ], [sin mθ, cos mθ]]``, ``θ_j = base^{−2(j−1)/D}``.

    Computed matrix-free, as the book suggests: for each pair ``(v_{2j−1}, v_{2j})``,
    ``v ⊙ (cos mθ_j, cos mθ_j) + (−v_{2j}, v_{2j−1}) ⊙ (sin mθ_j, sin mθ_j)``, i.e. the complex
    product ``(v_{2j−1} + i v_{2j}) e^{i mθ_j}``. Norm preserving, and
    ``⟨rope(q, m), rope(k, n)⟩`` depends on ``m − n`` only.

    ``x``: ``(..., L, D)`` with ``D`` even; ``positions``: ``(..., L)`` broadcastable against
    ``x.shape[:-1]`` (default ``0, …, L−1``).

    Example::

        >>> rope(np.array([[1.0, 0.0]]), positions=np.array([np.pi / 2])).round(12).tolist()
        [[0.0, 1.0]]
    """
    fname = "rope"
    s = dnp.shape(x)
    if len(s) < 2:
        raise ValueError(f"{fname}: argument 'x' must have shape (..., L, D), got {s}")
    D = s[-1]
    if D % 2:
        raise ValueError(f"{fname}: the last dimension of 'x' must be even (RoPE rotates pairs "
                         f"of coordinates), got shape {s}")
    theta = rope_frequencies(D, base)
    dt = float_dtype(dtype_of(x))
    if positions is None:
        positions = np.arange(s[-2])
    ps = dnp.shape(positions)
    try:
        np.broadcast_shapes(ps, s[:-1])
    except ValueError:
        raise ValueError(f"{fname}: argument 'positions' of shape {ps} does not broadcast "
                         f"against x.shape[:-1] = {s[:-1]}") from None
    if isinstance(positions, Tracer):
        ang = dnp.expand_dims(dnp.astype(positions, np.float64), -1) * theta
        c, sn = dnp.astype(dnp.cos(ang), dt), dnp.astype(dnp.sin(ang), dt)
        cos2, sin2 = dnp.stack([c, c], axis=-1), dnp.stack([-sn, sn], axis=-1)
    else:
        ang = np.asarray(positions, dtype=np.float64)[..., None] * theta
        c, sn = np.cos(ang), np.sin(ang)
        cos2 = np.stack([c, c], axis=-1).astype(dt)
        sin2 = np.stack([-sn, sn], axis=-1).astype(dt)
    pairs = dnp.reshape(x, (*s[:-1], D // 2, 2))
    out = pairs * cos2 + dnp.flip(pairs, -1) * sin2
    return dnp.reshape(out, s)


class LearnedPositionalEncoding(Module):
    """Learned positional encoding (book §4.8.7): a table ``W^P`` whose row ``i`` is ``p_i``
    (the book's column ``W^P e_i``), limited to ``max_len`` positions.

    Example::

        >>> pe = LearnedPositionalEncoding.init(0, 16, 4)
        >>> pe(5).shape
        (5, 4)
    """

    table: Any

    @classmethod
    def init(cls, rng: Any, max_len: int, dim: int, *, std: float = 0.02,
             dtype: Any = np.float64) -> LearnedPositionalEncoding:
        """``W^P ∼ N(0, std²)`` of shape ``(max_len, dim)`` (book §4.8.7).

        Example::

            >>> LearnedPositionalEncoding.init(0, 8, 3).table.shape
            (8, 3)
        """
        g = as_generator(rng, "LearnedPositionalEncoding.init")
        _check_int(max_len, "max_len", "LearnedPositionalEncoding.init", 1)
        _check_int(dim, "dim", "LearnedPositionalEncoding.init", 1)
        return cls(normal_init(g, (max_len, dim), std, dtype))

    @property
    def max_len(self) -> int:
        return int(dnp.shape(self.table)[0])

    def __call__(self, length: int, start: int = 0) -> Any:
        """Rows ``start, …, start+length−1`` of the table, shape ``(length, dim)`` (book §4.8.7);
        raises beyond ``max_len``. Only these rows receive a gradient.

        Example::

            >>> pe = LearnedPositionalEncoding(np.arange(6.0).reshape(3, 2))
            >>> pe(2, start=1).tolist()
            [[2.0, 3.0], [4.0, 5.0]]
        """
        fname = "LearnedPositionalEncoding"
        _check_int(length, "length", fname)
        _check_int(start, "start", fname)
        if start + length > self.max_len:
            raise ValueError(f"{fname}: positions up to {start + length - 1} requested, but the "
                             f"table only has max_len={self.max_len} positions")
        return self.table[start:start + length]


def check_permutation_equivariance(fn: Callable[[Any], Any], x: Any, rng: Any, *,
                                   axis: int = -2, num_perms: int = 3, atol: float = 1e-10,
                                   rtol: float = 1e-10) -> bool:
    """Whether ``fn(𝒫X) = 𝒫 fn(X)`` for random non-identity permutations ``𝒫`` of the sequence
    axis (book §4.8.7: without positional encoding and mask, a Transformer treats its input as a
    multiset). True for self-attention, multi-head attention, Transformer layers and blocks;
    False (as it should be) with a causal mask or after adding positional encodings.

    Example::

        >>> check_permutation_equivariance(lambda x: 2 * x, np.ones((4, 2)), 0)
        True
        >>> check_permutation_equivariance(lambda x: np.cumsum(x, 0),
        ...                                np.arange(8.0).reshape(4, 2), 0)
        False
    """
    fname = "check_permutation_equivariance"
    if not callable(fn):
        raise TypeError(f"{fname}: argument 'fn' must be callable, got {fn!r}")
    x = np.asarray(x)
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fname}: argument 'axis'={axis} is out of range for x of shape "
                         f"{x.shape}")
    _check_int(num_perms, "num_perms", fname, 1)
    g = as_generator(rng, fname)
    n = x.shape[axis]
    y = np.asarray(fn(x))
    for _ in range(num_perms):
        perm = g.permutation(n)
        while n > 1 and np.array_equal(perm, np.arange(n)):
            perm = g.permutation(n)
        lhs = np.asarray(fn(np.take(x, perm, axis=axis)))
        if not np.allclose(lhs, np.take(y, perm, axis=axis), atol=atol, rtol=rtol):
            return False
    return True
