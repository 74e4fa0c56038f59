"""Attention and multi-head attention (book §4.8.1–4.8.3).

Conventions. Queries ``q`` have shape ``(..., Lq, Dk)``, keys ``(..., Lk, Dk)``, values
``(..., Lk, Dv)``; ``Lq ≠ Lk`` is allowed (cross-attention). Masks are boolean, broadcastable to
``(..., Lq, Lk)``, with **True = may attend** (the book's ``m_ij = 1``).

Erratum (book §4.8.1, masked attention). The book writes ``softargmax((QKᵀ) ∘ M) V`` with a
Hadamard product and ``m_ij = −∞`` for blocked entries. Taken literally this is wrong: a negative
score times ``−∞`` is ``+∞`` (the blocked entry gets *all* the weight) and a zero score times
``−∞`` is NaN. The mask is applied here as ``where(mask, QKᵀ, −∞)``: blocked entries get exactly
zero weight and zero gradient.

Fully masked rows (a query allowed to attend to nothing, e.g. a padded query) return **zeros**
(weights all 0, output row 0, gradient 0), never NaN, in the forward and the backward pass.

The multi-head layer computes all heads with a few batched matrix products (book §4.8.3, the
"GPU-friendly" form): project once, reshape to ``(..., H, L, Dk)``, attend, merge heads. The
per-head loop of Algorithm 4.2 is kept as ``impl="loop"`` for reference and testing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from ..core.rng import as_generator
from ..numpy._base import dtype_of
from ..scipy.special import softmax
from .linear import Linear, check_last_dim
from .module import Module, static
from .positional import rope as _rope
from .primitives import masked_softargmax_p

__all__ = [
    "attention",
    "attention_weights",
    "causal_mask",
    "padding_mask",
    "self_attention",
    "projected_self_attention",
    "MultiHeadAttention",
]


def causal_mask(n: int) -> np.ndarray:
    """Causal mask ``M_N`` (book §4.8.8): boolean ``(n, n)``, lower-triangular including the
    diagonal (True = allowed). Position ``i`` attends to positions ``j ≤ i`` only.

    Example::

        >>> causal_mask(3).astype(int).tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"causal_mask: argument 'n' must be a non-negative int, got {n!r}")
    return np.tri(int(n), dtype=bool)


def padding_mask(lengths_or_valid: Any, L: int | None = None) -> np.ndarray:
    """Key-padding mask (book §4.8.6, padding tokens must not receive attention): boolean
    ``(..., 1, L)``, True at real (non-padded) key positions, broadcastable to ``(..., Lq, L)``.

    ``lengths_or_valid`` is either integer lengths ``(...)`` (position ``j`` is real iff
    ``j < length``, ``L`` required) or a boolean array ``(..., L)`` of real positions.

    Example::

        >>> padding_mask(np.array([2, 3]), 3).astype(int).tolist()
        [[[1, 1, 0]], [[1, 1, 1]]]
    """
    a = np.asarray(lengths_or_valid)
    if a.dtype == bool:
        if a.ndim == 0 or (L is not None and a.shape[-1] != L):
            raise ValueError(f"padding_mask: boolean 'lengths_or_valid' must have shape (..., L),"
                             f" got {a.shape} with L={L}")
        return a[..., None, :]
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError("padding_mask: argument 'lengths_or_valid' must be integer lengths or "
                        f"a boolean array, got dtype {a.dtype}")
    if L is None or L < 0:
        raise ValueError(f"padding_mask: argument 'L' must be a non-negative int, got {L!r}")
    if np.any(a < 0) or np.any(a > L):
        raise ValueError(f"padding_mask: lengths must lie in [0, {L}], got {a.tolist()}")
    return (np.arange(L) < a[..., None])[..., None, :]


def _check_qkv(q: Any, k: Any, v: Any, fname: str) -> None:
    sq, sk, sv = dnp.shape(q), dnp.shape(k), dnp.shape(v)
    for name, s in (("q", sq), ("k", sk), ("v", sv)):
        if len(s) < 2:
            raise ValueError(f"{fname}: argument '{name}' must have shape (..., L, D), got {s}")
    if sq[-1] != sk[-1]:
        raise ValueError(f"{fname}: queries and keys must share their last dimension Dk, "
                         f"got q {sq} and k {sk}")
    if sk[-2] != sv[-2]:
        raise ValueError(f"{fname}: keys and values must have the same length Lk, "
                         f"got k {sk} and v {sv}")


def _check_mask(mask: Any, lq: int, lk: int, fname: str) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tracer):
        m = np.asarray(mask)
        if m.dtype != bool:
            raise TypeError(f"{fname}: argument 'mask' must be boolean (True = may attend), "
                            f"got dtype {m.dtype}")
    s = dnp.shape(mask)
    try:
        np.broadcast_shapes(s[-2:], (lq, lk))
    except ValueError:
        raise ValueError(f"{fname}: argument 'mask' of shape {s} does not broadcast to "
                         f"(..., Lq, Lk) = (..., {lq}, {lk})") from None


def _check_scale(scale: Any, fname: str) -> None:
    if scale is None or isinstance(scale, Tracer):
        return
    if not np.isfinite(scale) or np.ndim(scale) != 0:
        raise ValueError(f"{fname}: argument 'scale' must be a finite scalar, got {scale!r}")


def _masked_softmax(scores: Any, mask: Any) -> Any:
    """Row-wise softargmax over the last axis restricted to ``mask`` (True = kept): the fused
    primitive :data:`~diffprog.nn.primitives.masked_softargmax_p`, which computes
    ``where(mask, s, −∞)`` shifted by the row maximum over the kept entries. A row with no kept
    entry returns zeros; blocked entries have weight 0 and cotangent 0, so no ``0·∞`` appears in
    the backward pass.
    """
    return masked_softargmax_p.bind(scores, dnp.astype(mask, bool) if isinstance(mask, Tracer)
                                    else np.asarray(mask, dtype=bool))


def attention_weights(q: Any, k: Any, mask: Any = None, scale: Any = None) -> Any:
    """Attention matrix ``A = softargmax(s·QKᵀ)`` row-wise, ``A ∈ Δ^{Lq×Lk}`` (book §4.8.1,
    Remark 4.3 for the scale ``s``, default ``1/√Dk``). With a boolean ``mask``, blocked entries
    get weight exactly 0 (``where(mask, QKᵀ, −∞)``, not the book's Hadamard product, see the
    module docstring); a fully masked row is all zeros.

    Example::

        >>> A = attention_weights(np.zeros((2, 3)), np.ones((4, 3)))
        >>> A.tolist()[0]
        [0.25, 0.25, 0.25, 0.25]
    """
    _check_qkv(q, k, k, "attention_weights")
    sq, sk = dnp.shape(q), dnp.shape(k)
    _check_mask(mask, sq[-2], sk[-2], "attention_weights")
    _check_scale(scale, "attention_weights")
    return _weights(q, k, mask, scale)


def _weights(q: Any, k: Any, mask: Any, scale: Any) -> Any:
    if scale is None:
        scale = 1.0 / float(np.sqrt(dnp.shape(q)[-1]))
    if not (isinstance(scale, (int, float)) and scale == 1):
        q = q * scale
    scores = dnp.matmul(q, dnp.swapaxes(k, -1, -2))
    if mask is None:
        return softmax(scores, axis=-1)
    return _masked_softmax(scores, mask)


def attention(q: Any, k: Any, v: Any, mask: Any = None, scale: Any = None) -> Any:
    """Scaled dot-product attention ``U = softargmax(s·QKᵀ) V`` (book §4.8.1, Remark 4.3): each
    output row ``u_i = Σ_j a_ij v_j`` is a convex combination of the value rows, a soft
    dictionary lookup. ``s`` defaults to ``1/√Dk`` (``scale=1`` is the book's unscaled form).

    Shapes: ``q (..., Lq, Dk)``, ``k (..., Lk, Dk)``, ``v (..., Lk, Dv)`` → ``(..., Lq, Dv)``.
    ``mask``: boolean, broadcastable to ``(..., Lq, Lk)``, True = may attend; blocked entries get
    exactly zero weight and zero gradient; a fully masked row returns zeros (never NaN).

    Example::

        >>> v = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> attention(np.zeros((1, 2)), np.ones((2, 2)), v).tolist()
        [[0.5, 0.5]]
        >>> attention(np.zeros((2, 2)), np.ones((2, 2)), v, mask=causal_mask(2)).tolist()
        [[1.0, 0.0], [0.5, 0.5]]
    """
    _check_qkv(q, k, v, "attention")
    sq, sk = dnp.shape(q), dnp.shape(k)
    _check_mask(mask, sq[-2], sk[-2], "attention")
    _check_scale(scale, "attention")
    return dnp.matmul(_weights(q, k, mask, scale), v)


def self_attention(x: Any, mask: Any = None, scale: Any = None) -> Any:
    """Parameter-free self-attention ``attention(X, X, X)`` (book §4.8.2): ``A = softargmax(s·XXᵀ)``
    (a row-normalized Gram matrix). Permutation equivariant: ``f(PX) = P f(X)``.

    Example::

        >>> self_attention(np.eye(2), scale=1.0).round(4).tolist()
        [[0.7311, 0.2689], [0.2689, 0.7311]]
    """
    return attention(x, x, x, mask=mask, scale=scale)


def projected_self_attention(x: Any, W_q: Any, W_k: Any, W_v: Any, mask: Any = None,
                             scale: Any = None) -> Any:
    """Self-attention with learned projections ``attention(XW^Q, XW^K, XW^V)`` (book §4.8.2):
    ``W^Q, W^K ∈ ℝ^{D×Dk}``, ``W^V ∈ ℝ^{D×Dv}``; the parameters do not depend on the length L.

    Example::

        >>> W = np.eye(3)
        >>> projected_self_attention(np.ones((5, 3)), W, W, W[:, :2]).shape
        (5, 2)
    """
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)):
        if len(dnp.shape(W)) != 2:
            raise ValueError(f"projected_self_attention: argument '{name}' must be a matrix "
                             f"(D, d), got shape {dnp.shape(W)}")
        check_last_dim(x, dnp.shape(W)[0], "projected_self_attention")
    return attention(dnp.matmul(x, W_q), dnp.matmul(x, W_k), dnp.matmul(x, W_v), mask=mask,
                     scale=scale)


def _split_heads(y: Any, num_heads: int) -> Any:
    """``(..., L, H·d) → (..., H, L, d)``."""
    s = dnp.shape(y)
    y = dnp.reshape(y, (*s[:-1], num_heads, s[-1] // num_heads))
    return dnp.swapaxes(y, -2, -3)


def _merge_heads(y: Any) -> Any:
    """``(..., H, L, d) → (..., L, H·d)`` (the concatenation of the heads)."""
    y = dnp.swapaxes(y, -2, -3)
    s = dnp.shape(y)
    return dnp.reshape(y, (*s[:-2], s[-2] * s[-1]))


def _head_mask(mask: Any) -> Any:
    """Insert the head axis into a mask of shape ``(..., Lq, Lk)`` (kept 2-D masks as they are)."""
    if mask is None or len(dnp.shape(mask)) <= 2:
        return mask
    return dnp.expand_dims(mask, -3)


def _rope_positions(rope: bool, positions: Any, context: Any, lq: int,
                    lk: int) -> tuple[Any, Any]:
    """Query and key positions for RoPE (``None`` without RoPE): ``positions`` (default
    ``0…Lq−1``) for both in self-attention; ``0…Lk−1`` for the keys of a ``context``."""
    if not rope:
        return None, None
    if positions is None:
        positions = np.arange(lq)
    s = dnp.shape(positions)
    if not s or s[-1] != lq:
        raise ValueError(f"MultiHeadAttention: argument 'positions' must have shape "
                         f"(..., {lq}), got {s}")
    return positions, positions if context is None else np.arange(lk)


class MultiHeadAttention(Module):
    """Multi-head attention (book §4.8.3, Algorithm 4.2):
    ``Y_i = Attention(X W_i^Q, C W_i^K, C W_i^V; M)``, ``Y = Concat(Y_1, …, Y_H) W^O``
    (``= Σ_i Y_i W_i^O``), with ``C = X`` (self-attention) or ``C = context`` (cross-attention).

    The head projections are stored stacked: ``q_proj.W ∈ ℝ^{D×H·Dk}`` holds ``W_1^Q … W_H^Q``
    side by side, ``o_proj.W ∈ ℝ^{H·Dv×D}`` is ``W^O``. With ``rope=True`` the queries and keys of
    every head are rotated by RoPE *after* the projections (book §4.8.7); values are not rotated.
    Self-attention computes the three projections as one product ``X [W^Q·s | W^K | W^V]`` split
    three ways (same values; one larger matrix product, and under :func:`diffprog.jit` a backward
    pass that writes ``dQ, dK, dV`` straight into that product's cotangent).

    Example::

        >>> mha = MultiHeadAttention.init(0, 8, 2)
        >>> mha(np.ones((3, 5, 8)), mask=causal_mask(5)).shape
        (3, 5, 8)
    """

    q_proj: Linear
    k_proj: Linear
    v_proj: Linear
    o_proj: Linear
    num_heads: int = static(default=1)

    @classmethod
    def init(cls, rng: Any, d_model: int, num_heads: int, *, d_k: int | None = None,
             d_v: int | None = None, use_bias: bool = False,
             dtype: Any = np.float64) -> MultiHeadAttention:
        """Glorot-uniform projections (book §4.8.3); ``d_k = d_v = d_model // num_heads`` by
        default. Parameters: ``H·D·(2Dk + Dv) + H·Dv·D`` (+ biases with ``use_bias``).

        Example::

            >>> from diffprog.nn import count_params
            >>> count_params(MultiHeadAttention.init(0, 8, 2))
            256
        """
        g = as_generator(rng, "MultiHeadAttention.init")
        for name, val in (("d_model", d_model), ("num_heads", num_heads)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"MultiHeadAttention.init: argument '{name}' must be a "
                                 f"positive int, got {val!r}")
        if (d_k is None or d_v is None) and d_model % num_heads:
            raise ValueError(f"MultiHeadAttention.init: d_model={d_model} is not divisible by "
                             f"num_heads={num_heads}; pass d_k and d_v explicitly")
        d_k = d_model // num_heads if d_k is None else d_k
        d_v = d_model // num_heads if d_v is None else d_v
        H = num_heads
        return cls(Linear.init(g, d_model, H * d_k, use_bias=use_bias, dtype=dtype),
                   Linear.init(g, d_model, H * d_k, use_bias=use_bias, dtype=dtype),
                   Linear.init(g, d_model, H * d_v, use_bias=use_bias, dtype=dtype),
                   Linear.init(g, H * d_v, d_model, use_bias=use_bias, dtype=dtype),
                   num_heads=H)

    @property
    def d_model(self) -> int:
        return self.q_proj.in_features

    @property
    def d_k(self) -> int:
        return self.q_proj.out_features // self.num_heads

    @property
    def d_v(self) -> int:
        return self.v_proj.out_features // self.num_heads

    def _check(self, x: Any, context: Any, impl: str) -> Any:
        check_last_dim(x, self.d_model, "MultiHeadAttention", "x")
        if len(dnp.shape(x)) < 2:
            raise ValueError(f"MultiHeadAttention: input 'x' must have shape (..., L, D), "
                             f"got {dnp.shape(x)}")
        if impl not in ("batched", "loop"):
            raise ValueError(f"MultiHeadAttention: argument 'impl' must be 'batched' or 'loop', "
                             f"got {impl!r}")
        if context is None:
            return x
        check_last_dim(context, self.d_model, "MultiHeadAttention", "context")
        if len(dnp.shape(context)) < 2:
            raise ValueError(f"MultiHeadAttention: argument 'context' must have shape "
                             f"(..., Lk, D), got {dnp.shape(context)}")
        return context

    def __call__(self, x: Any, context: Any = None, *, mask: Any = None, rope: bool = False,
                 positions: Any = None, impl: str = "batched") -> Any:
        """``(..., Lq, D) → (..., Lq, D)``; self-attention when ``context`` is None, otherwise
        cross-attention to ``context (..., Lk, D)`` (book §4.8.3, §4.8.10). ``positions`` (the
        query/key positions for RoPE) default to ``0, …, L−1`` (keys of a context: ``0…Lk−1``).

        Example::

            >>> mha = MultiHeadAttention.init(0, 4, 2)
            >>> y1 = mha(np.ones((3, 4)), impl="loop")
            >>> bool(np.allclose(y1, mha(np.ones((3, 4)))))
            True
        """
        c = self._check(x, context, impl)
        lq, lk = dnp.shape(x)[-2], dnp.shape(c)[-2]
        _check_mask(mask, lq, lk, "MultiHeadAttention")
        pos_q, pos_k = _rope_positions(rope, positions, context, lq, lk)
        if impl == "loop":
            return self._loop(x, c, mask, pos_q, pos_k)
        # the 1/√Dk of the scores is applied to W^Q (D×H·Dk) rather than to the queries
        scale = 1.0 / float(np.sqrt(self.d_k))
        if context is None:
            q, k, v = self._self_projections(x, pos_q, scale)
        else:
            q, k = self._queries_keys(x, c, pos_q, pos_k, scale=scale)
            v = _split_heads(self.v_proj(c), self.num_heads)
        y = _weights(q, k, _head_mask(mask), 1.0)
        return self.o_proj(_merge_heads(dnp.matmul(y, v)))

    def _self_projections(self, x: Any, positions: Any, scale: float) -> tuple[Any, Any, Any]:
        """Self-attention's queries (times ``scale``), keys and values ``(..., H, L, d)`` from
        one product ``X [W^Q·s | W^K | W^V] (+ [b^Q·s | b^K | b^V])`` split three ways (book
        §4.8.3: one larger matrix product instead of three; under :func:`diffprog.jit` the
        backward pass writes ``dQ, dK, dV`` straight into the cotangent of that product)."""
        projs = (self.q_proj, self.k_proj, self.v_proj)
        W = dnp.concatenate([projs[0].W * scale, projs[1].W, projs[2].W], axis=1)
        y = dnp.matmul(x, W)
        if any(p.b is not None for p in projs):
            b = [p.b if p.b is not None else np.zeros(p.out_features, dtype_of(p.W))
                 for p in projs]
            y = y + dnp.concatenate([b[0] * scale, b[1], b[2]])
        dq, dk = projs[0].out_features, projs[1].out_features
        q, k, v = (_split_heads(t, self.num_heads) for t in dnp.split(y, [dq, dq + dk], axis=-1))
        if positions is not None:
            pos = _head_positions(positions)
            q, k = _rope(q, pos), _rope(k, pos)
        return q, k, v

    def _queries_keys(self, x: Any, c: Any, pos_q: Any, pos_k: Any,
                      scale: float | None = None) -> tuple[Any, Any]:
        """All heads' queries ``(..., H, Lq, Dk)`` (times ``scale`` if given, folded into the
        projection) and keys ``(..., H, Lk, Dk)``, RoPE-rotated when positions are given."""
        q = self._queries(x, scale)
        k = _split_heads(self.k_proj(c), self.num_heads)
        if pos_q is not None:
            q, k = _rope(q, _head_positions(pos_q)), _rope(k, _head_positions(pos_k))
        return q, k

    def _queries(self, x: Any, scale: float | None = None) -> Any:
        """All heads' queries ``(..., H, Lq, Dk)``, times ``scale`` (folded into ``W^Q``)."""
        if scale is None:
            q = self.q_proj(x)
        else:
            W, b = self.q_proj.W, self.q_proj.b
            q = dnp.matmul(x, W * scale) if b is None else dnp.matmul(x, W * scale) + b * scale
        return _split_heads(q, self.num_heads)

    def attention_weights(self, x: Any, context: Any = None, *, mask: Any = None,
                          rope: bool = False, positions: Any = None) -> Any:
        """Every head's attention matrix ``A_i = softargmax(X W_i^Q (C W_i^K)ᵀ/√Dk)``, shape
        ``(..., H, Lq, Lk)`` (book §4.8.3), for inspection and plots.

        Example::

            >>> mha = MultiHeadAttention.init(0, 4, 2)
            >>> A = mha.attention_weights(np.ones((3, 4)), mask=causal_mask(3))
            >>> A.shape, A[0, 0].tolist()
            ((2, 3, 3), [1.0, 0.0, 0.0])
        """
        c = self._check(x, context, "batched")
        lq, lk = dnp.shape(x)[-2], dnp.shape(c)[-2]
        _check_mask(mask, lq, lk, "MultiHeadAttention.attention_weights")
        pos_q, pos_k = _rope_positions(rope, positions, context, lq, lk)
        q, k = self._queries_keys(x, c, pos_q, pos_k)
        return _weights(q, k, _head_mask(mask), None)

    def _loop(self, x: Any, c: Any, mask: Any, pos_q: Any, pos_k: Any) -> Any:
        """Algorithm 4.2 literally: one attention per head, then concatenate and project."""
        heads = []
        for h in range(self.num_heads):
            q = _head_proj(self.q_proj, x, h, self.d_k)
            k = _head_proj(self.k_proj, c, h, self.d_k)
            v = _head_proj(self.v_proj, c, h, self.d_v)
            if pos_q is not None:
                q, k = _rope(q, pos_q), _rope(k, pos_k)
            heads.append(attention(q, k, v, mask=mask))
        return self.o_proj(dnp.concatenate(heads, axis=-1))

    def project_context(self, context: Any) -> tuple[Any, Any]:
        """All heads' keys ``(..., H, Lk, Dk)`` and values ``(..., H, Lk, Dv)`` of a context
        ``(..., Lk, D)`` (book §4.8.10): computed once, they serve every decoding step's
        cross-attention through :meth:`attend_context`.

        Example::

            >>> mha = MultiHeadAttention.init(0, 4, 2)
            >>> k, v = mha.project_context(np.ones((5, 4)))
            >>> k.shape, v.shape
            ((2, 5, 2), (2, 5, 2))
        """
        check_last_dim(context, self.d_model, "MultiHeadAttention.project_context", "context")
        return (_split_heads(self.k_proj(context), self.num_heads),
                _split_heads(self.v_proj(context), self.num_heads))

    def attend_context(self, x: Any, keys: Any, values: Any, *, mask: Any = None) -> Any:
        """Cross-attention of ``x (..., Lq, D)`` to a context projected by
        :meth:`project_context` (book §4.8.10): ``softargmax(X W^Q Kᵀ/√Dk) V`` per head, then
        ``W^O``; equal to ``self(x, context, mask=mask)``.

        Example::

            >>> mha = MultiHeadAttention.init(0, 4, 2)
            >>> x, c = np.ones((3, 4)), np.arange(20.0).reshape(5, 4) / 20
            >>> bool(np.allclose(mha.attend_context(x, *mha.project_context(c)), mha(x, c)))
            True
        """
        self._check(x, None, "batched")
        _check_mask(mask, dnp.shape(x)[-2], dnp.shape(keys)[-2], "MultiHeadAttention")
        q = self._queries(x, scale=1.0 / float(np.sqrt(self.d_k)))
        y = _weights(q, keys, _head_mask(mask), 1.0)
        return self.o_proj(_merge_heads(dnp.matmul(y, values)))

    def attend_cached(self, x: Any, cache_k: Any, cache_v: Any, *, position: int,
                      rope: bool = False, window: int | None = None) -> tuple[Any, Any, Any]:
        """Causal self-attention of new tokens against cached keys/values (book §4.8.8, KV cache).

        ``x (..., Lnew, D)`` holds the tokens at absolute positions ``position, …,
        position+Lnew−1``; ``cache_k (..., H, Lc, Dk)`` and ``cache_v (..., H, Lc, Dv)`` hold the
        (already rotated) keys and values of positions ``position−Lc, …, position−1``. Query ``p``
        attends to keys ``p−window < j ≤ p``. Returns the output ``(..., Lnew, D)`` and the
        updated cache, clipped to its last ``window`` entries.

        Example::

            >>> mha = MultiHeadAttention.init(0, 4, 2)
            >>> x = np.random.default_rng(0).normal(size=(3, 4))
            >>> e = np.zeros((2, 0, 2))
            >>> y, k, v = mha.attend_cached(x, e, e, position=0)
            >>> bool(np.allclose(y, mha(x, mask=causal_mask(3)))), k.shape
            (True, (2, 3, 2))
        """
        self._check(x, None, "batched")
        H, lnew = self.num_heads, dnp.shape(x)[-2]
        lc = dnp.shape(cache_k)[-2]
        if position < lc:
            raise ValueError(f"MultiHeadAttention.attend_cached: argument 'position'={position}"
                             f" is smaller than the cache length {lc}")
        q = _split_heads(self.q_proj(x), H)
        k = _split_heads(self.k_proj(x), H)
        v = _split_heads(self.v_proj(x), H)
        qpos = position + np.arange(lnew)
        if rope:
            q, k = _rope(q, qpos), _rope(k, qpos)
        k = dnp.concatenate([dnp.astype(cache_k, dtype_of(k)), k], axis=-2)
        v = dnp.concatenate([dnp.astype(cache_v, dtype_of(v)), v], axis=-2)
        kpos = np.arange(position - lc, position + lnew)
        allowed = kpos[None, :] <= qpos[:, None]
        if window is not None:
            allowed &= kpos[None, :] > qpos[:, None] - window
        mask = None if allowed.all() else allowed
        y = dnp.matmul(_weights(q, k, mask, None), v)
        if window is not None and dnp.shape(k)[-2] > window:
            k, v = k[..., -window:, :], v[..., -window:, :]
        return self.o_proj(_merge_heads(y)), k, v


def _head_positions(pos: Any) -> Any:
    """Positions ``(..., L)`` broadcast over the head axis of ``(..., H, L, d)`` arrays."""
    return pos if len(dnp.shape(pos)) <= 1 else dnp.expand_dims(pos, -2)


def _head_proj(lin: Linear, x: Any, h: int, d: int) -> Any:
    """Head ``h`` of a stacked projection: ``x W_h (+ b_h)`` with ``W_h = W[:, h·d:(h+1)·d]``."""
    y = dnp.matmul(x, lin.W[:, h * d:(h + 1) * d])
    return y if lin.b is None else y + lin.b[h * d:(h + 1) * d]
