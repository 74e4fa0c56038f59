"""Encoder-decoder Transformer for sequence-to-sequence tasks (book §4.8.10).

The encoder is Algorithm 4.4 without a causal mask, giving ``H_enc`` from the source ``X``. Each
decoder layer applies causal self-attention to the (shifted) target ``Y``, then multi-head
cross-attention with queries from the decoder and keys/values from ``H_enc``
(``Q_i = H_dec W'^Q_i``, ``K_i = H_enc W'^K_i``, ``V_i = H_enc W'^V_i``, an ``L_dec × L_enc``
attention matrix), then the MLP, each with residual + LayerNorm
(:class:`~diffprog.nn.transformer.TransformerLayer` with ``cross_attention=True``).

Inputs are ``x_i = √D · W^E[t_i] + p_i`` with sinusoidal ``p_i`` (parameter-free, any length;
the √D scale keeps the N(0, 0.02²) embeddings from being swamped by the unit-size encodings, as
in the original Transformer). The output layer is tied to the target embedding (Remark 4.5).

Greedy decoding runs the decoder incrementally with a KV cache of the self-attention keys and
values of every layer (book §4.8.8), the cross-attention keys and values of the encoder output
projected once; ``use_cache=False`` recomputes the whole prefix at every
step instead, and both give the same tokens and logits.

:func:`prefix_lm_inputs` covers the decoder-only alternative (book §4.8.10, "Differences with
decoder-only architectures"): prepend the prompt to the target and train a causal LM with the
loss on the target tokens only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from ..numpy._base import dtype_of
from .activations import gelu
from .attention import causal_mask
from .attention import padding_mask as _key_padding_mask
from .embedding import Embedding
from .module import Module, static
from .positional import sinusoidal_positional_encoding
from .text import check_ids
from .transformer import TransformerBlock

__all__ = ["EncoderDecoder", "prefix_lm_inputs"]


def _pos_int(val: Any, fname: str, name: str, low: int = 1) -> int:
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
        raise ValueError(f"{fname}: argument '{name}' must be an int >= {low}, got {val!r}")
    return int(val)


def _check_valid(mask: Any, shape: tuple[int, ...], fname: str, name: str) -> Any:
    """A key-padding mask of shape ``shape = (..., L)`` → attention mask ``(..., 1, L)``."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != tuple(shape):
        raise ValueError(f"{fname}: argument '{name}' must be boolean of shape {tuple(shape)} "
                         f"(True = real token), got {m.dtype} {m.shape}")
    return _key_padding_mask(m)


class EncoderDecoder(Module):
    """Encoder-decoder Transformer (book §4.8.10): ``H_enc = Encoder(X)`` (bidirectional),
    ``logits = Decoder(Y_in, H_enc) W^Eᵀ + b`` with causal self-attention and cross-attention
    to ``H_enc``. Trained with teacher forcing: ``Y_in = [BOS, y_1, …, y_{T−1}]`` predicts
    ``y_1, …, y_T``.

    Example::

        >>> model = EncoderDecoder.init(0, src_vocab=10, tgt_vocab=12, d_model=8, num_heads=2,
        ...                             d_ff=16, num_layers=1)
        >>> model(np.array([7, 8, 9, 2]), np.array([1, 7, 8])).shape
        (3, 12)
        >>> out = model.greedy_decode(np.array([7, 8, 9, 2]), bos_id=1, eos_id=2, max_len=5)
        >>> int(out[0]), out.shape[-1] <= 6
        (1, True)
    """

    src_embed: Embedding
    tgt_embed: Embedding
    encoder: TransformerBlock
    decoder: TransformerBlock
    out_bias: Any
    pos_base: float = static(default=10000.0)

    @classmethod
    def init(cls, rng: Any, src_vocab: int, tgt_vocab: int, d_model: int, num_heads: int,
             d_ff: int, num_layers: int, *, num_decoder_layers: int | None = None,
             norm: str = "post", activation: Any = gelu, pos_base: float = 10000.0,
             dtype: Any = np.float64) -> EncoderDecoder:
        """Random embeddings ``N(0, 0.02²)`` and Transformer weights, zero output bias (book
        §4.8.10); the encoder and the decoder each get their own parameters.

        Example::

            >>> m = EncoderDecoder.init(0, 10, 12, 8, 2, 16, 2, num_decoder_layers=1)
            >>> len(m.encoder.layers), len(m.decoder.layers)
            (2, 1)
        """
        fname = "EncoderDecoder.init"
        g = as_generator(rng, fname)
        for name, val in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab),
                          ("d_model", d_model), ("num_layers", num_layers)):
            _pos_int(val, fname, name)
        n_dec = num_layers if num_decoder_layers is None else \
            _pos_int(num_decoder_layers, fname, "num_decoder_layers")
        if not pos_base > 0:
            raise ValueError(f"{fname}: argument 'pos_base' must be > 0, got {pos_base!r}")
        src = Embedding.init(g, src_vocab, d_model, dtype=dtype)
        tgt = Embedding.init(g, tgt_vocab, d_model, dtype=dtype)
        enc = TransformerBlock.init(g, num_layers, d_model, num_heads, d_ff, norm=norm,
                                    activation=activation, dtype=dtype)
        dec = TransformerBlock.init(g, n_dec, d_model, num_heads, d_ff, norm=norm,
                                    cross_attention=True, activation=activation, dtype=dtype)
        return cls(src, tgt, enc, dec, np.zeros(tgt_vocab, dtype), pos_base=float(pos_base))

    @property
    def d_model(self) -> int:
        """Model width ``D`` (book §4.8.10)."""
        return self.src_embed.dim

    def _inputs(self, emb: Embedding, tokens: Any, start: int = 0) -> Any:
        shape = np.shape(tokens)
        if len(shape) < 1:
            raise ValueError(f"EncoderDecoder: token ids must have shape (..., L), got {shape}")
        D = self.d_model
        pe = sinusoidal_positional_encoding(shape[-1], D, base=self.pos_base, start=start)
        x = emb(tokens) * float(np.sqrt(D))
        return x + pe.astype(dtype_of(x))

    def encode(self, src: Any, *, src_mask: Any = None) -> Any:
        """``H_enc = Transformer(√D W^E[x] + P)`` without causal mask (book §4.8.10);
        ``src_mask`` (boolean ``(..., Ls)``, True = real token) hides padding.
        ``(..., Ls) → (..., Ls, D)``.

        Example::

            >>> m = EncoderDecoder.init(0, 10, 12, 8, 2, 16, 1)
            >>> m.encode(np.array([[7, 8, 9]])).shape
            (1, 3, 8)
        """
        mask = _check_valid(src_mask, np.shape(src), "EncoderDecoder.encode", "src_mask")
        return self.encoder(self._inputs(self.src_embed, src), mask=mask)

    def decode(self, tgt_in: Any, h_enc: Any, *, src_mask: Any = None,
               tgt_mask: Any = None) -> Any:
        """Next-token logits of the decoder (book §4.8.10): causal self-attention over
        ``tgt_in`` (plus ``tgt_mask`` padding), cross-attention to ``h_enc`` (minus ``src_mask``
        padding), MLP; then ``h W^Eᵀ + b``. ``(..., Lt), (..., Ls, D) → (..., Lt, M)``.

        Example::

            >>> m = EncoderDecoder.init(0, 10, 12, 8, 2, 16, 1)
            >>> m.decode(np.array([1, 7]), m.encode(np.array([7, 8, 9]))).shape
            (2, 12)
        """
        fname = "EncoderDecoder.decode"
        cmask = _check_valid(src_mask, dnp.shape(h_enc)[:-1], fname, "src_mask")
        L = np.shape(tgt_in)[-1] if np.ndim(tgt_in) else 0
        smask = causal_mask(L)
        tmask = _check_valid(tgt_mask, np.shape(tgt_in), fname, "tgt_mask")
        if tmask is not None:
            smask = smask & tmask
        h = self.decoder(self._inputs(self.tgt_embed, tgt_in), mask=smask, context=h_enc,
                         context_mask=cmask)
        return self.tgt_embed.attend(h) + self.out_bias

    def __call__(self, src: Any, tgt_in: Any, *, src_mask: Any = None,
                 tgt_mask: Any = None) -> Any:
        """Teacher-forced logits ``decode(tgt_in, encode(src))`` (book §4.8.10).

        Example::

            >>> m = EncoderDecoder.init(0, 10, 12, 8, 2, 16, 1)
            >>> m(np.array([[7, 8, 9]]), np.array([[1, 7]])).shape
            (1, 2, 12)
        """
        h_enc = self.encode(src, src_mask=src_mask)
        return self.decode(tgt_in, h_enc, src_mask=src_mask, tgt_mask=tgt_mask)

    def greedy_decode(self, src: Any, bos_id: int, eos_id: int, max_len: int, *,
                      src_mask: Any = None, use_cache: bool = True,
                      return_logits: bool = False) -> Any:
        """Greedy generation ``y_t = argmax_y p(y | y_{<t}, X)`` from ``y_0 = BOS`` (book
        §4.8.10), stopping after EOS or ``max_len`` new tokens. ``src`` ``(..., Ls)`` gives
        ``(..., T)`` ids starting with BOS; a sequence that has finished is padded with EOS.

        ``use_cache=True`` encodes once, projects the encoder output to every layer's
        cross-attention keys/values once, and feeds the decoder one token per step, keeping the
        self-attention keys/values of every layer (KV cache, book §4.8.8); ``use_cache=False``
        reruns the decoder on the whole prefix at every step. Both give the same result.
        ``return_logits=True`` also returns the step logits ``(..., T−1, M)``.

        Example::

            >>> m = EncoderDecoder.init(0, 10, 12, 8, 2, 16, 1)
            >>> src = np.array([7, 8, 9])
            >>> a = m.greedy_decode(src, 1, 2, 6)
            >>> b = m.greedy_decode(src, 1, 2, 6, use_cache=False)
            >>> int(a[0]), bool((a == b).all())
            (1, True)
        """
        fname = "EncoderDecoder.greedy_decode"
        M = self.tgt_embed.num_embeddings
        bos_id = int(check_ids(bos_id, M, fname, "bos_id"))
        eos_id = int(check_ids(eos_id, M, fname, "eos_id"))
        max_len = _pos_int(max_len, fname, "max_len")
        if np.ndim(src) < 1:
            raise ValueError(f"{fname}: argument 'src' must have shape (..., Ls), "
                             f"got {np.shape(src)}")
        h_enc = self.encode(src, src_mask=src_mask)
        cmask = _check_valid(src_mask, np.shape(src), fname, "src_mask")
        batch = np.shape(src)[:-1]
        tokens = np.full((*batch, 1), bos_id, dtype=np.int64)
        done = np.zeros(batch, dtype=bool)
        caches = [(np.zeros((*batch, lay.attn.num_heads, 0, lay.attn.d_k), h_enc.dtype),
                   np.zeros((*batch, lay.attn.num_heads, 0, lay.attn.d_v), h_enc.dtype))
                  for lay in self.decoder.layers]
        # the cross-attention keys/values of the encoder output: projected once, not per step
        context_kv = ([layer.cross_attn.project_context(h_enc) for layer in self.decoder.layers]
                      if use_cache else None)
        step_logits = []
        for t in range(max_len):
            if use_cache:
                x = self._inputs(self.tgt_embed, tokens[..., -1:], start=t)
                new = []
                for layer, (ck, cv), kv in zip(self.decoder.layers, caches, context_kv,
                                               strict=True):
                    x, ck, cv = layer.attend_cached(x, ck, cv, position=t, context_kv=kv,
                                                    context_mask=cmask)
                    new.append((ck, cv))
                caches = new
                logits = (self.tgt_embed.attend(x) + self.out_bias)[..., -1, :]
            else:
                logits = self.decode(tokens, h_enc, src_mask=src_mask)[..., -1, :]
            logits = np.asarray(logits)
            step_logits.append(logits)
            nxt = np.where(done, eos_id, np.argmax(logits, axis=-1))
            tokens = np.concatenate([tokens, nxt[..., None]], axis=-1)
            done = done | (nxt == eos_id)
            if done.all():
                break
        if return_logits:
            return tokens, np.stack(step_logits, axis=-2)
        return tokens


def prefix_lm_inputs(prompt: Any, target: Any, *,
                     bos_id: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequence-to-sequence with a decoder-only LM (book §4.8.10, "Differences with decoder-only
    architectures"): the context is ``s = [BOS] ⊕ prompt ⊕ target`` under one causal mask.
    Returns ``(inputs, targets, loss_mask)`` with ``inputs = s[:-1]``, ``targets = s[1:]`` and
    ``loss_mask`` True exactly where the predicted token belongs to ``target``, so that
    ``Σ_i loss_mask_i log π_i[targets_i] = log p(target | prompt)``.

    Example::

        >>> inputs, targets, mask = prefix_lm_inputs([7, 8], [9, 10, 2], bos_id=1)
        >>> inputs.tolist(), targets.tolist(), mask.tolist()
        ([1, 7, 8, 9, 10], [7, 8, 9, 10, 2], [False, False, True, True, True])
    """
    fname = "prefix_lm_inputs"
    big = np.iinfo(np.int64).max
    p = check_ids(prompt, big, fname, "prompt")
    t = check_ids(target, big, fname, "target")
    if p.ndim != 1 or t.ndim != 1:
        raise ValueError(f"{fname}: 'prompt' and 'target' must be 1-D id sequences, got shapes "
                         f"{p.shape} and {t.shape}")
    if t.size == 0:
        raise ValueError(f"{fname}: argument 'target' must not be empty")
    head = p if bos_id is None else np.concatenate([[check_ids(bos_id, big, fname, "bos_id")],
                                                    p])
    if head.size == 0:
        raise ValueError(f"{fname}: an empty 'prompt' needs a 'bos_id' to condition the first "
                         "target token on")
    s = np.concatenate([head, t]).astype(np.int64)
    loss_mask = np.arange(1, s.size) >= head.size
    return s[:-1], s[1:], loss_mask
