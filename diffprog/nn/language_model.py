"""Decoder-only language model: definition, training loss, sampling, KV cache (book §4.8.8).

Pipeline (GPT-style): token embedding → + positional encoding (learned or sinusoidal; RoPE
instead rotates queries and keys inside every layer) → causal Transformer block → final
LayerNorm (pre-norm models only; post-norm layers already end with one) → disembedding
``W^D ∈ ℝ^{D×M}`` (row form of the book's ``W^D ∈ ℝ^{M×D}``), giving at every position ``k`` the
logits ``θ_{k+1}`` of the next token, ``π_{k+1} = softargmax(θ_{k+1})``. With weight tying
(Remark 4.5) the disembedding is the transposed embedding table (one shared leaf).

The model is a higher-order Markov chain with context window N (``context``):
``P(x_1..x_L) = Π_k P(x_k | x_{k−N..k−1})``; the context is always chronological (oldest token
first). Sampling follows that definition exactly: while the sequence fits in the window it
decodes incrementally with the KV cache; beyond, it re-encodes the last N tokens.

KV cache. :meth:`DecoderLM.decode_step` keeps every layer's keys and values (after RoPE), so a
new token costs one row of attention instead of re-running the prefix. Its logits equal a full
recomputation as long as the sequence fits in the window. The cache is clipped to the last N
entries: past the window each layer attends to its last N cached positions (sliding-window
attention), which is *not* a recomputation of the window from scratch (the deeper layers' keys
still carry older context) — :meth:`DecoderLM.sample` therefore re-encodes the window instead.
With ``positional="learned"`` positions beyond ``context`` do not exist and raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from ..core.rng import as_generator
from ..numpy._base import dtype_of
from ..scipy.special import logsumexp
from .activations import gelu
from .attention import causal_mask
from .embedding import Embedding
from .linear import Linear
from .module import Module, static
from .normalization import LayerNorm
from .positional import LearnedPositionalEncoding, sinusoidal_positional_encoding
from .transformer import TransformerBlock

__all__ = ["DecoderLM", "KVCache", "sequence_log_likelihood", "token_cross_entropy"]

_POSITIONAL = ("learned", "sinusoidal", "rope")


def _check_tokens(tokens: Any, fname: str, argname: str = "tokens") -> None:
    dt = dtype_of(tokens)
    if not np.issubdtype(dt, np.integer):
        raise TypeError(f"{fname}: argument '{argname}' must hold integer token ids, "
                        f"got dtype {dt}")
    if len(dnp.shape(tokens)) < 1:
        raise ValueError(f"{fname}: argument '{argname}' must have shape (..., L), got a scalar")


def _check_positive_int(val: Any, name: str, fname: str) -> None:
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
        raise ValueError(f"{fname}: argument '{name}' must be a positive int, got {val!r}")


class KVCache(Module):
    """Per-layer cached keys and values of a :class:`DecoderLM` (book §4.8.8, KV cache):
    ``keys[l]`` has shape ``(..., H, n, Dk)``, ``values[l]`` ``(..., H, n, Dv)`` with
    ``n ≤ context``; ``position`` is the absolute position of the next token.

    Example::

        >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 1, 4)
        >>> cache = lm.init_cache()
        >>> cache.keys[0].shape, cache.position
        ((2, 0, 4), 0)
    """

    keys: tuple
    values: tuple
    position: int = static(default=0)

    @property
    def length(self) -> int:
        """Number of cached positions ``n`` (at most the context window)."""
        return int(dnp.shape(self.keys[0])[-2])


class DecoderLM(Module):
    """Decoder-only Transformer language model (book §4.8.8): ``tokens (..., L) → logits
    (..., L, M)``, where ``logits[..., k, :] = θ_{k+1}`` are the next-token logits given tokens
    ``0..k`` (causal mask), ``π_{k+1} = softargmax(θ_{k+1})``. ``L ≤ context``.

    Example::

        >>> lm = DecoderLM.init(0, vocab_size=7, d_model=8, num_heads=2, d_ff=16,
        ...                     num_layers=2, context=6)
        >>> lm(np.array([[1, 2, 3]])).shape
        (1, 3, 7)
    """

    embed: Embedding
    block: TransformerBlock
    ln_f: LayerNorm | None
    head: Linear | None
    pos: LearnedPositionalEncoding | None
    context: int = static(default=1)
    positional: str = static(default="learned")
    base: float = static(default=10000.0)

    @classmethod
    def init(cls, rng: Any, vocab_size: int, d_model: int, num_heads: int, d_ff: int,
             num_layers: int, context: int, *, norm: str = "pre", tie_weights: bool = False,
             positional: str = "learned", activation: Callable[[Any], Any] = gelu,
             use_bias: bool = False, base: float = 10000.0, std: float = 0.02,
             dtype: Any = np.float64) -> DecoderLM:
        """Random initialization (book §4.8.8): embeddings and learned positions ``N(0, std²)``,
        Glorot-uniform projections, LayerNorms ``γ = 1, β = 0``. ``tie_weights=True`` shares the
        embedding table as disembedding (Remark 4.5): ``M·D`` fewer parameters.

        Example::

            >>> from diffprog.nn import count_params
            >>> a = DecoderLM.init(0, 10, 8, 2, 16, 1, 4)
            >>> b = DecoderLM.init(0, 10, 8, 2, 16, 1, 4, tie_weights=True)
            >>> count_params(a) - count_params(b)
            80
        """
        fname = "DecoderLM.init"
        for name, val in (("vocab_size", vocab_size), ("d_model", d_model),
                          ("num_layers", num_layers), ("context", context)):
            _check_positive_int(val, name, fname)
        if positional not in _POSITIONAL:
            raise ValueError(f"{fname}: argument 'positional' must be one of {_POSITIONAL}, "
                             f"got {positional!r}")
        if norm not in ("pre", "post"):
            raise ValueError(f"{fname}: argument 'norm' must be 'pre' or 'post', got {norm!r}")
        g = as_generator(rng, fname)
        embed = Embedding.init(g, vocab_size, d_model, std=std, dtype=dtype)
        block = TransformerBlock.init(g, num_layers, d_model, num_heads, d_ff, norm=norm,
                                      activation=activation, use_bias=use_bias, dtype=dtype)
        if positional == "rope" and block.layers[0].attn.d_k % 2:
            raise ValueError(f"{fname}: positional='rope' needs an even head dimension "
                             f"d_model // num_heads, got {block.layers[0].attn.d_k}")
        ln_f = LayerNorm.init(d_model, dtype=dtype) if norm == "pre" else None
        head = None if tie_weights else Linear.init(g, d_model, vocab_size, use_bias=False,
                                                    dtype=dtype)
        pos = (LearnedPositionalEncoding.init(g, context, d_model, std=std, dtype=dtype)
               if positional == "learned" else None)
        return cls(embed, block, ln_f, head, pos, context=int(context), positional=positional,
                   base=float(base))

    @property
    def vocab_size(self) -> int:
        return self.embed.num_embeddings

    @property
    def d_model(self) -> int:
        return self.embed.dim

    @property
    def tie_weights(self) -> bool:
        return self.head is None

    def _input(self, tokens: Any, start: int) -> Any:
        """Token embeddings plus additive positional encodings for positions ``start…``."""
        x = self.embed(tokens)
        L = dnp.shape(tokens)[-1]
        if self.positional == "learned":
            if start + L > self.pos.max_len:
                raise ValueError(f"DecoderLM: position {start + L - 1} is beyond the learned "
                                 f"positional encoding (context={self.context}); use "
                                 f"positional='sinusoidal' or 'rope' to decode further")
            return x + self.pos(L, start)
        if self.positional == "sinusoidal":
            return x + sinusoidal_positional_encoding(L, self.d_model, self.base, start,
                                                      dtype=dtype_of(x))
        return x

    def _logits(self, h: Any) -> Any:
        if self.ln_f is not None:
            h = self.ln_f(h)
        return self.embed.attend(h) if self.head is None else self.head(h)

    def __call__(self, tokens: Any) -> Any:
        """Next-token logits ``(..., L, M)`` for integer ``tokens (..., L)``, ``L ≤ context``
        (book §4.8.8, teacher forcing: every position in one parallel pass).

        Example::

            >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 1, 4, positional="rope")
            >>> lm(np.array([0, 1])).shape
            (2, 5)
        """
        fname = "DecoderLM"
        _check_tokens(tokens, fname)
        L = dnp.shape(tokens)[-1]
        if not 1 <= L <= self.context:
            raise ValueError(f"{fname}: the sequence length must lie in [1, context="
                             f"{self.context}], got L={L}")
        x = self._input(tokens, 0)
        h = self.block(x, mask=causal_mask(L), rope=self.positional == "rope")
        return self._logits(h)

    def attention_weights(self, tokens: Any, layer: int = 0) -> Any:
        """The causal attention matrices ``(..., H, L, L)`` of layer ``layer`` (0-based) on
        ``tokens (..., L)`` (book §4.8.8), for inspection and plots: lower-triangular rows on
        the probability simplex.

        Example::

            >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 2, 4)
            >>> A = lm.attention_weights(np.array([1, 2, 3]), layer=1)
            >>> A.shape, float(A[0, 0, 1])
            ((2, 3, 3), 0.0)
        """
        fname = "DecoderLM.attention_weights"
        _check_tokens(tokens, fname)
        n = len(self.block.layers)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
                or not 0 <= layer < n:
            raise ValueError(f"{fname}: argument 'layer' must be an int in [0, {n}), "
                             f"got {layer!r}")
        L = dnp.shape(tokens)[-1]
        if not 1 <= L <= self.context:
            raise ValueError(f"{fname}: the sequence length must lie in [1, context="
                             f"{self.context}], got L={L}")
        x = self._input(tokens, 0)
        rope = self.positional == "rope"
        for lay in self.block.layers[:layer]:
            x = lay(x, mask=causal_mask(L), rope=rope)
        return self.block.layers[layer].attention_weights(x, mask=causal_mask(L), rope=rope)

    # ------------------------------------------------------------------------ KV cache

    def init_cache(self, batch_shape: tuple[int, ...] = ()) -> KVCache:
        """An empty KV cache for sequences of batch shape ``batch_shape`` (book §4.8.8).

        Example::

            >>> DecoderLM.init(0, 5, 8, 2, 16, 2, 4).init_cache((3,)).values[1].shape
            (3, 2, 0, 4)
        """
        dt = dtype_of(self.embed.table)
        keys, values = [], []
        for layer in self.block.layers:
            a = layer.attn
            keys.append(np.zeros((*batch_shape, a.num_heads, 0, a.d_k), dt))
            values.append(np.zeros((*batch_shape, a.num_heads, 0, a.d_v), dt))
        return KVCache(tuple(keys), tuple(values), position=0)

    def prefill(self, tokens: Any, cache: KVCache | None = None) -> tuple[Any, KVCache]:
        """Run new ``tokens (..., Lnew)`` through the model against ``cache`` (empty by default):
        returns their logits ``(..., Lnew, M)`` and the extended cache (book §4.8.8).

        Example::

            >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 1, 4)
            >>> logits, cache = lm.prefill(np.array([1, 2, 3]))
            >>> bool(np.allclose(logits, lm(np.array([1, 2, 3])))), cache.position
            (True, 3)
        """
        fname = "DecoderLM.prefill"
        _check_tokens(tokens, fname)
        batch = tuple(dnp.shape(tokens)[:-1])
        if cache is None:
            cache = self.init_cache(batch)
        if not isinstance(cache, KVCache) or len(cache.keys) != len(self.block.layers):
            raise TypeError(f"{fname}: argument 'cache' must be a KVCache from init_cache")
        if tuple(dnp.shape(cache.keys[0])[:-3]) != batch:
            raise ValueError(f"{fname}: the cache has batch shape "
                             f"{tuple(dnp.shape(cache.keys[0])[:-3])}, tokens {batch}")
        x = self._input(tokens, cache.position)
        keys, values = [], []
        for layer, k, v in zip(self.block.layers, cache.keys, cache.values, strict=True):
            x, k, v = layer.attend_cached(x, k, v, position=cache.position,
                                          rope=self.positional == "rope", window=self.context)
            keys.append(k)
            values.append(v)
        new = KVCache(tuple(keys), tuple(values), position=cache.position + dnp.shape(x)[-2])
        return self._logits(x), new

    def decode_step(self, token: Any, cache: KVCache) -> tuple[Any, KVCache]:
        """One incremental decoding step (book §4.8.8, KV cache): ``token`` of the cache's batch
        shape → next-token logits ``(..., M)`` and the cache with one more position (clipped to
        the last ``context`` positions). Equal to ``self(prefix)[..., -1, :]`` while the prefix
        fits in the context window.

        Example::

            >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 1, 4)
            >>> logits, cache = lm.decode_step(np.array(2), lm.init_cache())
            >>> bool(np.allclose(logits, lm(np.array([2]))[-1])), cache.length
            (True, 1)
        """
        token = token if isinstance(token, Tracer) else np.asarray(token)
        logits, cache = self.prefill(dnp.expand_dims(token, -1), cache)
        return logits[..., 0, :], cache

    # ------------------------------------------------------------------------ sampling

    def _last_logits(self, seq: np.ndarray,
                     cache: KVCache | None) -> tuple[np.ndarray, KVCache | None]:
        """Next-token logits after ``seq`` (whose last token is not yet in ``cache``): with the
        cache while the sequence fits in the window, by re-encoding the window otherwise."""
        if cache is not None and cache.position < self.context:
            logits, cache = self.decode_step(seq[..., -1], cache)
            return np.asarray(logits), cache
        return np.asarray(self(seq[..., -self.context:])[..., -1, :]), None

    def sample(self, rng: Any, prompt: Any, max_len: int, *, temperature: float = 1.0,
               top_k: int | None = None, eos_id: int | None = None,
               pad_id: int | None = None) -> np.ndarray:
        """Ancestral sampling (book §4.8.8): ``X_k ∼ softargmax(θ_k / T)`` given the previous
        (at most ``context``) tokens, chronologically, after the ``prompt`` (e.g. ``[BOS]``),
        optionally restricted to the ``top_k`` most likely tokens. Stops at ``eos_id`` (which is
        included) or after ``max_len`` new tokens; returns the new tokens only.

        ``prompt``: ``(L0,)`` or ``(B, L0)`` (B independent samples, returned as ``(B, T)``; rows
        that ended early are filled with ``pad_id``, default ``eos_id``). Deterministic for a
        fixed ``rng`` (a Generator or an int seed).

        Example::

            >>> lm = DecoderLM.init(0, 5, 8, 2, 16, 1, 4)
            >>> out = lm.sample(0, np.array([0]), 6)
            >>> out.shape, bool(np.array_equal(out, lm.sample(0, np.array([0]), 6)))
            ((6,), True)
        """
        fname = "DecoderLM.sample"
        g = as_generator(rng, fname)
        prompt = np.asarray(prompt)
        _check_tokens(prompt, fname, "prompt")
        M = self.vocab_size
        if prompt.ndim not in (1, 2) or prompt.shape[-1] < 1:
            raise ValueError(f"{fname}: argument 'prompt' must have shape (L0,) or (B, L0) with "
                             f"L0 >= 1, got {prompt.shape}")
        if prompt.min() < 0 or prompt.max() >= M:
            raise ValueError(f"{fname}: argument 'prompt' must hold ids in [0, {M})")
        if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) \
                or max_len < 0:
            raise ValueError(f"{fname}: argument 'max_len' must be an int >= 0, got {max_len!r}")
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"{fname}: argument 'temperature' must be > 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(
                top_k, (int, np.integer)) or not 1 <= top_k <= M):
            raise ValueError(f"{fname}: argument 'top_k' must be an int in [1, {M}], "
                             f"got {top_k!r}")
        for name, tok in (("eos_id", eos_id), ("pad_id", pad_id)):
            if tok is not None and not 0 <= tok < M:
                raise ValueError(f"{fname}: argument '{name}' must lie in [0, {M}), got {tok}")
        pad = eos_id if pad_id is None else pad_id
        seq = prompt if prompt.ndim == 2 else prompt[None]
        if seq.shape[-1] <= self.context:
            logits, cache = self.prefill(seq)
            last = np.asarray(logits[..., -1, :])
        else:
            last, cache = self._last_logits(seq, None)
        done = np.zeros(seq.shape[0], bool)
        out = []
        for t in range(max_len):
            nxt = _categorical(g, last, temperature, top_k)
            if eos_id is not None:
                nxt = np.where(done, pad, nxt)
                done = done | (nxt == eos_id)
            out.append(nxt)
            if done.all() or t == max_len - 1:
                break
            seq = np.concatenate([seq, nxt[:, None]], axis=1)
            last, cache = self._last_logits(seq, cache)
        res = np.stack(out, axis=1) if out else np.zeros((seq.shape[0], 0), prompt.dtype)
        return res if prompt.ndim == 2 else res[0]


def _categorical(g: np.random.Generator, logits: np.ndarray, temperature: float,
                 top_k: int | None) -> np.ndarray:
    """One draw per row from ``softargmax(logits / T)`` (top-k restricted), by inverse CDF."""
    z = np.asarray(logits, np.float64) / temperature
    if top_k is not None:
        kth = np.partition(z, -top_k, axis=-1)[..., -top_k, None]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = g.random(z.shape[:-1])[..., None] * cdf[..., -1:]
    idx = (cdf <= u).sum(axis=-1)
    return np.minimum(idx, z.shape[-1] - 1)


# ---------------------------------------------------------------------------- training losses


def _token_nll(logits: Any, targets: Any, fname: str) -> Any:
    """``logsumexp(θ_k) − θ_{k, y_k}`` per position (book §4.8.8): shape ``targets.shape``."""
    if not np.issubdtype(dtype_of(targets), np.integer):
        raise TypeError(f"{fname}: argument 'targets' must hold integer ids, "
                        f"got dtype {dtype_of(targets)}")
    ls, ts = dnp.shape(logits), dnp.shape(targets)
    if tuple(ls[:-1]) != tuple(ts):
        raise ValueError(f"{fname}: argument 'targets' of shape {ts} must have shape "
                         f"logits.shape[:-1] = {tuple(ls[:-1])}")
    if not isinstance(targets, Tracer):
        t = np.asarray(targets)
        if t.size and (t.min() < 0 or t.max() >= ls[-1]):
            raise ValueError(f"{fname}: argument 'targets' must lie in [0, {ls[-1]})")
    picked = dnp.take_along_axis(logits, dnp.expand_dims(targets, -1), -1)[..., 0]
    return logsumexp(logits, axis=-1) - picked


def _weights(mask: Any, shape: tuple, dt: Any, fname: str) -> Any:
    if tuple(dnp.shape(mask)) != tuple(shape):
        raise ValueError(f"{fname}: argument 'mask' of shape {dnp.shape(mask)} must have the "
                         f"shape of the targets {tuple(shape)}")
    return dnp.astype(mask, dt)


def token_cross_entropy(logits: Any, targets: Any, mask: Any = None) -> Any:
    """Mean token-wise cross-entropy (book §4.8.8, "Training"): the average over positions
    ``k`` (weighted by ``mask``, e.g. False at padding) of ``logsumexp(θ_k) − θ_{k, y_k}``, the
    multiclass logistic loss on logits. ``logits (..., L, M)``, integer ``targets (..., L)``.

    (:func:`diffprog.optim.losses.softmax_cross_entropy` builds a float64 one-hot target; this
    gathers the target logit instead, which keeps float32 models in float32.)

    Example::

        >>> round(float(token_cross_entropy(np.zeros((3, 2)), np.array([0, 1, 1]))), 12)
        0.69314718056
    """
    fname = "token_cross_entropy"
    nll = _token_nll(logits, targets, fname)
    if mask is None:
        return dnp.mean(nll)
    w = _weights(mask, dnp.shape(nll), dtype_of(nll), fname)
    return dnp.sum(nll * w) / dnp.maximum(dnp.sum(w), 1.0)


def sequence_log_likelihood(model: DecoderLM, tokens: Any, mask: Any = None) -> Any:
    """Teacher-forced log-likelihood ``log p(x_1..x_{L−1} | x_0) = Σ_k log π_k[x_k]`` of
    ``tokens (..., L)`` under ``model`` (book §4.8.8): one parallel pass over ``x_0..x_{L−2}``,
    the context always taken from the data. ``mask (..., L)`` (True = real token) drops
    padded targets. Returns shape ``tokens.shape[:-1]``; needs ``L − 1 ≤ context``.

    Example::

        >>> lm = DecoderLM.init(0, 3, 4, 1, 8, 1, 4)
        >>> ll = sequence_log_likelihood(lm, np.array([0, 1, 2]))
        >>> bool(ll < 0)
        True
    """
    fname = "sequence_log_likelihood"
    _check_tokens(tokens, fname)
    if dnp.shape(tokens)[-1] < 2:
        raise ValueError(f"{fname}: argument 'tokens' needs at least 2 tokens (a context and a "
                         f"target), got shape {dnp.shape(tokens)}")
    logits = model(tokens[..., :-1])
    lp = -_token_nll(logits, tokens[..., 1:], fname)
    if mask is not None:
        lp = lp * _weights(mask, dnp.shape(tokens), dtype_of(lp), fname)[..., 1:]
    return dnp.sum(lp, axis=-1)
