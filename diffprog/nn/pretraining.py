"""Self-supervised pretraining tasks of encoder-only Transformers (book §4.8.9, BERT).

- Masked prediction: :func:`mlm_mask` corrupts a batch of ids (select each token with
  probability ``rate``; of the selected, 80% → [MASK], 10% → a random token, 10% unchanged) and
  :func:`mlm_loss` is the cross-entropy on the selected positions only.
- Next sentence prediction: :func:`nsp_pairs` builds ``[CLS] A [SEP] B [SEP]`` inputs with
  segment ids and IsNext (1) / NotNext (0) labels, 50/50.

Sampling happens on concrete integer arrays with an explicit ``rng`` (plain NumPy); only
:func:`mlm_loss` is differentiated.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import numpy as dnp
from ..core.rng import as_generator
from .language_model import token_cross_entropy
from .text import check_ids

__all__ = ["NSPBatch", "mlm_loss", "mlm_mask", "nsp_pairs"]


def _check_prob(value: Any, fname: str, argname: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fname}: argument '{argname}' must be a real number in [0, 1], "
                        f"got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{fname}: argument '{argname}' must lie in [0, 1], got {value}")
    return float(value)


def mlm_mask(tokens: Any, rng: Any, rate: float = 0.15, *, mask_id: int, vocab_size: int,
             p_mask: float = 0.8, p_random: float = 0.1, p_keep: float = 0.1,
             exclude_ids: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt token ids for masked prediction (book §4.8.9, "Pretraining").

    Each position is selected independently with probability ``rate`` (positions holding one
    of ``exclude_ids``, e.g. [CLS]/[SEP]/PAD, never are). A selected token becomes [MASK] with
    probability ``p_mask``, a random token with probability ``p_random`` (uniform over the ids
    in ``[0, vocab_size)`` not in ``exclude_ids``), and stays unchanged with probability
    ``p_keep``. Returns ``(corrupted, targets, loss_mask)``: ``targets`` are the original ids
    and ``loss_mask`` marks the selected positions, where :func:`mlm_loss` is evaluated.

    Example::

        >>> tokens = np.arange(7, 27)
        >>> corrupted, targets, selected = mlm_mask(tokens, 0, 0.5, mask_id=5, vocab_size=27)
        >>> bool((targets == tokens).all()), bool((corrupted[~selected] == tokens[~selected]).all())
        (True, True)
    """
    fname = "mlm_mask"
    g = as_generator(rng, fname)
    rate = _check_prob(rate, fname, "rate")
    probs = [_check_prob(p, fname, n) for p, n in
             ((p_mask, "p_mask"), (p_random, "p_random"), (p_keep, "p_keep"))]
    if abs(sum(probs) - 1.0) > 1e-9:
        raise ValueError(f"{fname}: p_mask + p_random + p_keep must equal 1, got {sum(probs)}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) \
            or vocab_size < 1:
        raise ValueError(f"{fname}: argument 'vocab_size' must be a positive int, "
                         f"got {vocab_size!r}")
    check_ids(mask_id, vocab_size, fname, "mask_id")
    excluded = check_ids(np.asarray(list(exclude_ids), dtype=np.int64), vocab_size, fname,
                         "exclude_ids")
    tok = check_ids(tokens, vocab_size, fname, "tokens")
    pool = np.setdiff1d(np.arange(vocab_size), excluded)
    if probs[1] > 0 and pool.size == 0:
        raise ValueError(f"{fname}: exclude_ids leaves no id to draw random tokens from")
    selected = (g.random(tok.shape) < rate) & ~np.isin(tok, excluded)
    u = g.random(tok.shape)
    to_mask = selected & (u < probs[0])
    to_random = selected & (u >= probs[0]) & (u < probs[0] + probs[1])
    corrupted = np.where(to_mask, mask_id, tok)
    if pool.size:
        corrupted = np.where(to_random, pool[g.integers(0, pool.size, size=tok.shape)],
                             corrupted)
    return corrupted.astype(np.int64), tok.copy(), selected


def mlm_loss(logits: Any, targets: Any, loss_mask: Any) -> Any:
    """Masked-prediction loss (book §4.8.9): the mean cross-entropy over the selected positions,
    ``Σ_i m_i (logsumexp(θ_i) − θ_{i,y_i}) / max(1, Σ_i m_i)``. Unselected positions
    contribute nothing, not even gradient. This is
    :func:`~diffprog.nn.language_model.token_cross_entropy` with ``mask = loss_mask``, after
    checking that ``loss_mask`` is a boolean selection.

    ``logits``: ``(..., L, M)``; ``targets``: integer ``(..., L)``; ``loss_mask``: boolean
    ``(..., L)``.

    Example::

        >>> logits = np.zeros((3, 4))
        >>> round(float(mlm_loss(logits, np.array([0, 1, 2]), np.array([True, False, True]))), 6)
        1.386294
    """
    fname = "mlm_loss"
    shape = tuple(dnp.shape(logits))
    if len(shape) < 1:
        raise ValueError(f"{fname}: argument 'logits' must have a class axis, got shape {shape}")
    tgt = check_ids(targets, shape[-1], fname, "targets")
    m = np.asarray(loss_mask)
    if m.dtype != bool:
        raise TypeError(f"{fname}: argument 'loss_mask' must be boolean, got dtype {m.dtype}")
    if tgt.shape != shape[:-1] or m.shape != shape[:-1]:
        raise ValueError(f"{fname}: 'targets' {tgt.shape} and 'loss_mask' {m.shape} must both "
                         f"have shape {shape[:-1]} (logits without the class axis)")
    return token_cross_entropy(logits, tgt, m)


class NSPBatch(NamedTuple):
    """Next-sentence-prediction examples (book §4.8.9): lists of 1-D ``tokens`` and
    ``segments`` (0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``) and ``labels`` (1 = IsNext)."""

    tokens: list[np.ndarray]
    segments: list[np.ndarray]
    labels: np.ndarray


def nsp_pairs(docs: Sequence[Sequence[Any]], rng: Any, num_pairs: int, *, cls_id: int,
              sep_id: int) -> NSPBatch:
    """Next-sentence-prediction pairs ``[CLS] A [SEP] B [SEP]`` (book §4.8.9, "Pretraining").

    ``docs`` is a list of documents, each a list of sentences (1-D integer id sequences). ``A``
    is a uniformly drawn sentence that has a successor in its document; with probability ½,
    ``B`` is that successor (label 1, IsNext), otherwise a uniformly drawn other sentence of the
    corpus (label 0, NotNext). Segment ids are 0 up to and including the first [SEP], 1 after.
    Pad the lists with :func:`diffprog.nn.text.pad_sequences`.

    Example::

        >>> docs = [[[7, 8], [9]], [[10], [11, 12]]]
        >>> batch = nsp_pairs(docs, 0, 4, cls_id=3, sep_id=4)
        >>> t, s = batch.tokens[0], batch.segments[0]
        >>> int(t[0]), int((t == 4).sum()), s.tolist() == sorted(s.tolist())
        (3, 2, True)
    """
    fname = "nsp_pairs"
    g = as_generator(rng, fname)
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, numbers.Integral) \
            or num_pairs < 1:
        raise ValueError(f"{fname}: argument 'num_pairs' must be a positive int, "
                         f"got {num_pairs!r}")
    big = np.iinfo(np.int64).max
    check_ids(cls_id, big, fname, "cls_id")
    check_ids(sep_id, big, fname, "sep_id")
    sentences: list[np.ndarray] = []
    firsts: list[int] = []  # flat indices of sentences that have a successor
    for d, doc in enumerate(docs):
        if isinstance(doc, (str, bytes)) or not isinstance(doc, Sequence):
            raise TypeError(f"{fname}: docs[{d}] must be a list of sentences (id sequences)")
        for i, sent in enumerate(doc):
            arr = check_ids(sent, big, fname, f"docs[{d}][{i}]")
            if arr.ndim != 1:
                raise ValueError(f"{fname}: docs[{d}][{i}] must be 1-D, got shape {arr.shape}")
            if i + 1 < len(doc):
                firsts.append(len(sentences))
            sentences.append(arr)
    if not firsts:
        raise ValueError(f"{fname}: argument 'docs' needs a document with at least 2 sentences")
    cls_a, sep_a = np.array([cls_id], np.int64), np.array([sep_id], np.int64)
    tokens, segments = [], []
    labels = (g.random(num_pairs) < 0.5).astype(np.int64)
    a_idx = np.asarray(firsts)[g.integers(0, len(firsts), size=num_pairs)]
    n = len(sentences)
    for a, is_next in zip(a_idx.tolist(), labels.tolist(), strict=True):
        if is_next:
            b = a + 1
        else:  # uniform over the corpus without the true successor a + 1
            b = int(g.integers(0, n - 1))
            b += b >= a + 1
        first = np.concatenate([cls_a, sentences[a], sep_a])
        second = np.concatenate([sentences[b], sep_a])
        tokens.append(np.concatenate([first, second]))
        segments.append(np.concatenate([np.zeros(first.size, np.int64),
                                        np.ones(second.size, np.int64)]))
    return NSPBatch(tokens, segments, labels)
