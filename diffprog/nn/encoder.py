"""Encoder-only Transformers (BERT) and their finetuning heads (book §4.8.9).

:class:`EncoderLM` embeds tokens (token + learned positional + segment encodings, summed) and runs
Algorithm 4.4 *without* a causal mask, so every output row depends on the whole input
("bidirectional"). Only padding is masked: a key-padding mask keeps real tokens from attending to
PAD. The first token is [CLS] by convention; its final state feeds the sequence-level heads.

Pretraining heads: :meth:`EncoderLM.mlm_logits` (masked prediction, tied to the token
embedding, ``θ_i = h_i W^Eᵀ + b``) and :meth:`EncoderLM.nsp_logits` (next sentence prediction
from the [CLS] state). Finetuning heads (:func:`cls_classifier`, :func:`token_classifier`,
:func:`span_head`) are a :class:`~diffprog.nn.linear.Linear` layer applied to the right rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from .activations import gelu
from .attention import padding_mask as _key_padding_mask
from .embedding import Embedding, embed
from .linear import Linear, check_last_dim
from .module import Module
from .positional import LearnedPositionalEncoding
from .transformer import TransformerBlock

__all__ = ["EncoderLM", "cls_classifier", "token_classifier", "span_head"]


def _check_rows(h: Any, fname: str) -> None:
    if len(dnp.shape(h)) < 2:
        raise ValueError(f"{fname}: argument 'h' must have shape (..., L, D), "
                         f"got {dnp.shape(h)}")


def cls_classifier(h: Any, head: Linear) -> Any:
    """Sequence classification from the [CLS] state (book §4.8.9, "Finetuning"):
    ``logits = h_1 W + b`` with ``h_1 = h[..., 0, :]``. ``(..., L, D) → (..., C)``.

    Example::

        >>> cls_classifier(np.ones((5, 4)), Linear.init(0, 4, 3)).shape
        (3,)
    """
    _check_rows(h, "cls_classifier")
    check_last_dim(h, head.in_features, "cls_classifier", "h")
    return head(h[..., 0, :])


def token_classifier(h: Any, head: Linear) -> Any:
    """Token-level classification, e.g. NER or POS tagging (book §4.8.9, "Finetuning"):
    ``logits_i = h_i W + b`` at every position. ``(..., L, D) → (..., L, C)``.

    Example::

        >>> token_classifier(np.ones((5, 4)), Linear.init(0, 4, 3)).shape
        (5, 3)
    """
    _check_rows(h, "token_classifier")
    check_last_dim(h, head.in_features, "token_classifier", "h")
    return head(h)


def span_head(h: Any, head: Linear) -> tuple[Any, Any]:
    """Span prediction for question answering as two token-level classifications (book §4.8.9):
    ``[s_i, e_i] = h_i W + b`` with ``W ∈ ℝ^{D×2}``; returns the start logits ``s`` and the end
    logits ``e``, each ``(..., L)`` (softargmax over positions gives the start/end
    distributions).

    Example::

        >>> start, end = span_head(np.ones((5, 4)), Linear.init(0, 4, 2))
        >>> start.shape, end.shape
        ((5,), (5,))
    """
    _check_rows(h, "span_head")
    if head.out_features != 2:
        raise ValueError(f"span_head: argument 'head' must have 2 outputs (start, end), "
                         f"got {head.out_features}")
    check_last_dim(h, head.in_features, "span_head", "h")
    logits = head(h)
    return logits[..., 0], logits[..., 1]


class EncoderLM(Module):
    """Encoder-only (BERT-style) Transformer (book §4.8.9): ``x_i = W^E[t_i] + W^P[i] +
    W^S[s_i]`` (token, position, segment), then ``H = Transformer(X)`` (Algorithm 4.4, no causal
    mask; ``padding_mask`` hides PAD keys).

    Example::

        >>> model = EncoderLM.init(0, vocab_size=12, d_model=8, num_heads=2, d_ff=16,
        ...                        num_layers=1, max_len=10)
        >>> tokens = np.array([[3, 7, 8, 4, 0]])
        >>> h = model(tokens, padding_mask=tokens != 0)
        >>> h.shape, model.mlm_logits(h).shape, model.nsp_logits(h).shape
        ((1, 5, 8), (1, 5, 12), (1, 2))
    """

    token_embed: Embedding
    position_embed: LearnedPositionalEncoding
    segment_embed: Embedding | None
    block: TransformerBlock
    mlm_bias: Any
    nsp_head: Linear

    @classmethod
    def init(cls, rng: Any, vocab_size: int, d_model: int, num_heads: int, d_ff: int,
             num_layers: int, max_len: int, *, num_segments: int = 2, norm: str = "post",
             activation: Any = gelu, dtype: Any = np.float64) -> EncoderLM:
        """Embeddings ``N(0, 0.02²)``, Glorot projections, zero MLM bias (book §4.8.9).
        ``num_segments=0`` drops the segment embedding.

        Example::

            >>> m = EncoderLM.init(0, 10, 4, 2, 8, 1, 6, num_segments=0)
            >>> m.segment_embed is None, m.mlm_bias.shape
            (True, (10,))
        """
        fname = "EncoderLM.init"
        g = as_generator(rng, fname)
        for name, val in (("vocab_size", vocab_size), ("d_model", d_model),
                          ("num_layers", num_layers), ("max_len", max_len)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{fname}: argument '{name}' must be a positive int, "
                                 f"got {val!r}")
        if isinstance(num_segments, bool) or not isinstance(num_segments, (int, np.integer)) \
                or num_segments < 0:
            raise ValueError(f"{fname}: argument 'num_segments' must be an int >= 0, "
                             f"got {num_segments!r}")
        tok = Embedding.init(g, vocab_size, d_model, dtype=dtype)
        pos = LearnedPositionalEncoding.init(g, max_len, d_model, dtype=dtype)
        seg = Embedding.init(g, num_segments, d_model, dtype=dtype) if num_segments else None
        block = TransformerBlock.init(g, num_layers, d_model, num_heads, d_ff, norm=norm,
                                      activation=activation, dtype=dtype)
        nsp = Linear.init(g, d_model, 2, dtype=dtype)
        return cls(tok, pos, seg, block, np.zeros(vocab_size, dtype), nsp)

    @property
    def vocab_size(self) -> int:
        """Vocabulary size ``M`` (book §4.8.6)."""
        return self.token_embed.num_embeddings

    @property
    def max_len(self) -> int:
        """Number of learned positions (book §4.8.7)."""
        return self.position_embed.max_len

    def embed(self, tokens: Any, segments: Any = None, positions: Any = None) -> Any:
        """The input encoding ``x_i = W^E[t_i] + W^P[p_i] + W^S[s_i]`` (book §4.8.6–4.8.7,
        §4.8.9), shape ``(..., L, D)``; positions default to ``0, …, L−1``.

        Example::

            >>> m = EncoderLM.init(0, 10, 4, 2, 8, 1, 6)
            >>> m.embed(np.array([1, 2, 3])).shape
            (3, 4)
        """
        fname = "EncoderLM"
        shape = np.shape(tokens)
        if len(shape) < 1:
            raise ValueError(f"{fname}: argument 'tokens' must have shape (..., L), got {shape}")
        L = shape[-1]
        if positions is None:
            if L > self.max_len:
                raise ValueError(f"{fname}: sequence length {L} exceeds max_len={self.max_len}")
            x = self.token_embed(tokens) + self.position_embed(L)
        else:
            if np.shape(positions)[-1:] != (L,):
                raise ValueError(f"{fname}: argument 'positions' must have shape (..., {L}), "
                                 f"got {np.shape(positions)}")
            x = self.token_embed(tokens) + embed(positions, self.position_embed.table)
        if segments is not None:
            if self.segment_embed is None:
                raise ValueError(f"{fname}: 'segments' given, but the model has no segment "
                                 "embedding (num_segments=0)")
            if np.shape(segments) != shape:
                raise ValueError(f"{fname}: argument 'segments' must have the shape of 'tokens'"
                                 f" {shape}, got {np.shape(segments)}")
            x = x + self.segment_embed(segments)
        elif self.segment_embed is not None:
            x = x + self.segment_embed.table[0]
        return x

    def __call__(self, tokens: Any, segments: Any = None, *, padding_mask: Any = None) -> Any:
        """Hidden states ``H = Transformer(embed(tokens, segments))`` (book §4.8.9), bidirectional;
        ``padding_mask`` (boolean ``(..., L)``, True = real token) hides PAD keys, so outputs at
        real positions do not depend on the padding. ``(..., L) → (..., L, D)``.

        Example::

            >>> m = EncoderLM.init(0, 10, 4, 2, 8, 1, 6)
            >>> m(np.array([3, 7, 4]), np.array([0, 0, 0])).shape
            (3, 4)
        """
        mask = None
        if padding_mask is not None:
            pm = np.asarray(padding_mask)
            if pm.dtype != bool or pm.shape != np.shape(tokens):
                raise ValueError(f"EncoderLM: argument 'padding_mask' must be boolean with the "
                                 f"shape of 'tokens' {np.shape(tokens)}, got {pm.dtype} "
                                 f"{pm.shape}")
            mask = _key_padding_mask(pm)
        return self.block(self.embed(tokens, segments), mask=mask)

    def mlm_logits(self, h: Any) -> Any:
        """Masked-prediction logits with weights tied to the token embedding (book §4.8.9,
        Remark 4.5): ``θ_i = h_i W^Eᵀ + b ∈ ℝ^M``. ``(..., L, D) → (..., L, M)``.

        Example::

            >>> m = EncoderLM.init(0, 10, 4, 2, 8, 1, 6)
            >>> m.mlm_logits(np.ones((3, 4))).shape
            (3, 10)
        """
        return self.token_embed.attend(h) + self.mlm_bias

    def nsp_logits(self, h: Any) -> Any:
        """Next-sentence-prediction logits ``[NotNext, IsNext]`` from the final [CLS] state
        (book §4.8.9): ``cls_classifier(h, nsp_head)``. ``(..., L, D) → (..., 2)``.

        Example::

            >>> m = EncoderLM.init(0, 10, 4, 2, 8, 1, 6)
            >>> m.nsp_logits(np.ones((3, 4))).shape
            (2,)
        """
        return cls_classifier(h, self.nsp_head)
