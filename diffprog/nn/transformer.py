"""Transformer MLP block, Transformer layers (post- and pre-norm) and blocks (book §4.8.4–4.8.5).

A layer maps ``X ∈ ℝ^{L×D}`` to ``ℝ^{L×D}`` (any leading batch shape). Post-norm (the original
Transformer, Algorithm 4.4): ``Z = LN₁(MHA(X; M) + X)``, ``X ← LN₂(MLP(Z) + Z)``. Pre-norm (Remark
4.4): ``Z = MHA(LN₁(X); M) + X``, ``X ← MLP(LN₂(Z)) + Z``. With ``cross_attention=True`` the
layer is an encoder–decoder *decoder* layer (book §4.8.10): self-attention (with ``mask``), then
attention to the encoder output ``context`` (with ``context_mask``), then the MLP, each sublayer
with its residual connection and LayerNorm.

The parameter count does not depend on the length L (book §4.8.5): with no biases and post-norm,
``H·D·(2Dk + Dv) + H·Dv·D + D·D₁ + D₁·D + 4D``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.rng import as_generator
from .activations import gelu
from .attention import MultiHeadAttention
from .linear import Linear, check_last_dim
from .module import Module, static
from .normalization import LayerNorm

__all__ = ["TransformerMLP", "FeedForward", "TransformerLayer", "TransformerBlock"]

Activation = Callable[[Any], Any]


def _check_norm(norm: str, fname: str) -> None:
    if norm not in ("post", "pre"):
        raise ValueError(f"{fname}: argument 'norm' must be 'post' or 'pre', got {norm!r}")


class TransformerMLP(Module):
    """The Transformer's MLP block (book §4.8.4, Algorithm 4.3), applied token-wise:
    ``Z ↦ σ(Z W₁) W₂`` with ``W₁ ∈ ℝ^{D×D₁}``, ``W₂ ∈ ℝ^{D₁×D}``, σ = GELU by default. No biases
    by default, as in the book (``use_bias=True`` adds them). Output width = input width, for the
    residual connection.

    Example::

        >>> mlp = TransformerMLP.init(0, 4, 16)
        >>> mlp(np.ones((2, 3, 4))).shape
        (2, 3, 4)
    """

    fc1: Linear
    fc2: Linear
    activation: Activation = static(default=gelu)

    @classmethod
    def init(cls, rng: Any, d_model: int, d_ff: int, *, use_bias: bool = False,
             activation: Activation = gelu, dtype: Any = np.float64) -> TransformerMLP:
        """Glorot-uniform ``W₁ (D, D₁)`` and ``W₂ (D₁, D)`` (book §4.8.4).

        Example::

            >>> TransformerMLP.init(0, 4, 8).fc1.W.shape
            (4, 8)
        """
        g = as_generator(rng, "TransformerMLP.init")
        if not callable(activation):
            raise TypeError(f"TransformerMLP.init: argument 'activation' must be callable, "
                            f"got {activation!r}")
        return cls(Linear.init(g, d_model, d_ff, use_bias=use_bias, dtype=dtype),
                   Linear.init(g, d_ff, d_model, use_bias=use_bias, dtype=dtype),
                   activation=activation)

    def __call__(self, z: Any) -> Any:
        """``σ(Z W₁) W₂`` token-wise, ``(..., L, D) → (..., L, D)`` (book §4.8.4).

        Example::

            >>> TransformerMLP.init(0, 2, 4)(np.zeros((3, 2))).tolist()
            [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
        """
        return self.fc2(self.activation(self.fc1(z)))


#: The usual name of :class:`TransformerMLP` (book §4.8.4, "feed-forward" sublayer).
FeedForward = TransformerMLP


class TransformerLayer(Module):
    """One Transformer layer (book §4.8.4, Algorithm 4.4 body; Remark 4.4 for pre-norm):
    post-norm ``Z = LN₁(MHA(X; M) + X)``, ``X ← LN₂(MLP(Z) + Z)``; pre-norm
    ``Z = MHA(LN₁(X); M) + X``, ``X ← MLP(LN₂(Z)) + Z``. With ``cross_attention=True``, a
    cross-attention sublayer to ``context`` sits between the two (book §4.8.10).

    Example::

        >>> layer = TransformerLayer.init(0, 8, 2, 16)
        >>> layer(np.ones((5, 8))).shape
        (5, 8)
    """

    attn: MultiHeadAttention
    ln1: LayerNorm
    mlp: TransformerMLP
    ln2: LayerNorm
    cross_attn: MultiHeadAttention | None = None
    ln_cross: LayerNorm | None = None
    norm: str = static(default="post")

    @classmethod
    def init(cls, rng: Any, d_model: int, num_heads: int, d_ff: int, *, norm: str = "post",
             cross_attention: bool = False, activation: Activation = gelu,
             use_bias: bool = False, d_k: int | None = None, d_v: int | None = None,
             eps: float = 1e-5, dtype: Any = np.float64) -> TransformerLayer:
        """Random attention and MLP weights, LayerNorms with ``γ = 1, β = 0`` (book §4.8.4).

        Example::

            >>> from diffprog.nn import count_params
            >>> count_params(TransformerLayer.init(0, 8, 2, 16))  # 4·8·8 + 2·8·16 + 4·8
            544
        """
        fname = "TransformerLayer.init"
        _check_norm(norm, fname)
        g = as_generator(rng, fname)
        kw = dict(d_k=d_k, d_v=d_v, use_bias=use_bias, dtype=dtype)
        attn = MultiHeadAttention.init(g, d_model, num_heads, **kw)
        mlp = TransformerMLP.init(g, d_model, d_ff, use_bias=use_bias, activation=activation,
                                  dtype=dtype)
        cross = MultiHeadAttention.init(g, d_model, num_heads, **kw) if cross_attention else None
        ln_cross = LayerNorm.init(d_model, eps=eps, dtype=dtype) if cross_attention else None
        return cls(attn, LayerNorm.init(d_model, eps=eps, dtype=dtype), mlp,
                   LayerNorm.init(d_model, eps=eps, dtype=dtype), cross, ln_cross, norm=norm)

    def _sublayer(self, x: Any, f: Callable[[Any], Any], ln: LayerNorm) -> Any:
        """Residual connection with LayerNorm after (post-norm) or before (pre-norm) ``f``."""
        if self.norm == "pre":
            return x + f(ln(x))
        return ln(x + f(x))

    def _apply(self, x: Any, self_attn: Callable[[Any], Any], context: Any,
               context_mask: Any, context_kv: Any = None) -> Any:
        x = self._sublayer(x, self_attn, self.ln1)
        if self.cross_attn is not None:
            cross = self.cross_attn
            if context_kv is not None:          # keys/values projected once (decoding)
                def cross_fn(h):
                    return cross.attend_context(h, *context_kv, mask=context_mask)
            elif context is None:
                raise ValueError("TransformerLayer: this layer has cross-attention; argument "
                                 "'context' (the encoder output) is required")
            else:
                def cross_fn(h):
                    return cross(h, context, mask=context_mask)
            x = self._sublayer(x, cross_fn, self.ln_cross)
        elif context is not None:
            raise ValueError("TransformerLayer: argument 'context' given to a layer built "
                             "without cross_attention")
        return self._sublayer(x, self.mlp, self.ln2)

    def __call__(self, x: Any, *, mask: Any = None, context: Any = None, context_mask: Any = None,
                 rope: bool = False, positions: Any = None, impl: str = "batched") -> Any:
        """Apply the layer to ``x (..., L, D)`` (book §4.8.4). ``mask`` masks the self-attention
        (e.g. :func:`~diffprog.nn.attention.causal_mask`), ``context_mask`` the cross-attention;
        ``rope``/``positions``/``impl`` are passed to the self-attention.

        Example::

            >>> from diffprog.nn.attention import causal_mask
            >>> TransformerLayer.init(0, 4, 1, 8, norm="pre")(np.ones((3, 4)),
            ...                                                mask=causal_mask(3)).shape
            (3, 4)
        """
        check_last_dim(x, self.attn.d_model, "TransformerLayer")
        attn = self.attn

        def self_attn(h: Any) -> Any:
            return attn(h, mask=mask, rope=rope, positions=positions, impl=impl)

        return self._apply(x, self_attn, context, context_mask)

    def attention_weights(self, x: Any, *, mask: Any = None, rope: bool = False,
                          positions: Any = None) -> Any:
        """The self-attention matrices ``(..., H, L, L)`` of this layer on its input ``x`` (after
        ``LN₁`` in a pre-norm layer), book §4.8.3–4.8.4.

        Example::

            >>> TransformerLayer.init(0, 4, 2, 8).attention_weights(np.ones((3, 4))).shape
            (2, 3, 3)
        """
        check_last_dim(x, self.attn.d_model, "TransformerLayer.attention_weights")
        h = self.ln1(x) if self.norm == "pre" else x
        return self.attn.attention_weights(h, mask=mask, rope=rope, positions=positions)

    def attend_cached(self, x: Any, cache_k: Any, cache_v: Any, *, position: int,
                      rope: bool = False, window: int | None = None,
                      context: Any = None, context_mask: Any = None,
                      context_kv: Any = None) -> tuple[Any, Any, Any]:
        """The layer on new tokens ``x (..., Lnew, D)`` at positions ``position, …``, with causal
        self-attention against cached keys/values (book §4.8.8, KV cache); returns the output and
        the updated (clipped to ``window``) cache. See
        :meth:`~diffprog.nn.attention.MultiHeadAttention.attend_cached`. A layer with
        cross-attention takes the encoder output as ``context``, or its keys and values already
        projected as ``context_kv = cross_attn.project_context(context)`` (computed once for all
        decoding steps).

        Example::

            >>> from diffprog.nn.attention import causal_mask
            >>> layer = TransformerLayer.init(0, 4, 2, 8)
            >>> x = np.random.default_rng(0).normal(size=(3, 4))
            >>> e = np.zeros((2, 0, 2))
            >>> y, k, v = layer.attend_cached(x, e, e, position=0)
            >>> bool(np.allclose(y, layer(x, mask=causal_mask(3))))
            True
        """
        check_last_dim(x, self.attn.d_model, "TransformerLayer.attend_cached")
        new: list[Any] = []
        attn = self.attn

        def self_attn(h: Any) -> Any:
            y, k, v = attn.attend_cached(h, cache_k, cache_v, position=position, rope=rope,
                                         window=window)
            new.extend((k, v))
            return y

        y = self._apply(x, self_attn, context, context_mask, context_kv)
        return y, new[0], new[1]


class TransformerBlock(Module):
    """A stack of K Transformer layers, each with its own parameters (book §4.8.5, Algorithm
    4.4): ``X ← layer_K(… layer_1(X; M) …; M)``. Without mask and positional encoding it is
    permutation equivariant: ``f(PX) = P f(X)``.

    Example::

        >>> block = TransformerBlock.init(0, 2, 8, 2, 16)
        >>> block(np.ones((4, 8))).shape
        (4, 8)
    """

    layers: tuple[TransformerLayer, ...]

    @classmethod
    def init(cls, rng: Any, num_layers: int, d_model: int, num_heads: int, d_ff: int, *,
             norm: str = "post", cross_attention: bool = False, activation: Activation = gelu,
             use_bias: bool = False, d_k: int | None = None, d_v: int | None = None,
             eps: float = 1e-5, dtype: Any = np.float64) -> TransformerBlock:
        """``num_layers`` independently initialized layers (book §4.8.5).

        Example::

            >>> len(TransformerBlock.init(0, 3, 4, 1, 8).layers)
            3
        """
        fname = "TransformerBlock.init"
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) \
                or num_layers < 1:
            raise ValueError(f"{fname}: argument 'num_layers' must be a positive int, "
                             f"got {num_layers!r}")
        _check_norm(norm, fname)
        g = as_generator(rng, fname)
        return cls(tuple(
            TransformerLayer.init(g, d_model, num_heads, d_ff, norm=norm,
                                  cross_attention=cross_attention, activation=activation,
                                  use_bias=use_bias, d_k=d_k, d_v=d_v, eps=eps, dtype=dtype)
            for _ in range(num_layers)))

    def __call__(self, x: Any, *, mask: Any = None, context: Any = None, context_mask: Any = None,
                 rope: bool = False, positions: Any = None, impl: str = "batched") -> Any:
        """Apply the layers in order (book §4.8.5, Algorithm 4.4).

        Example::

            >>> block = TransformerBlock.init(0, 2, 4, 2, 8, norm="pre")
            >>> block(np.ones((2, 3, 4)), mask=np.tri(3, dtype=bool)).shape
            (2, 3, 4)
        """
        for layer in self.layers:
            x = layer(x, mask=mask, context=context, context_mask=context_mask, rope=rope,
                      positions=positions, impl=impl)
        return x

