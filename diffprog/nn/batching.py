"""Batches for training language models: packing and random windows (book §4.8.8).

"To maximize GPU utilization, sequences of variable lengths are usually packed together in order
to form batches" (book §4.8.8, "Training"): :func:`pack_sequences` fills fixed-length rows with
whole sequences and builds the block-diagonal causal mask that keeps them apart.
:func:`random_windows` / :func:`batch_iterator` cut random next-token training windows out of one
long token stream (teacher forcing: the context always comes from the data).

Plain NumPy on concrete integer arrays; masks are boolean with True = may attend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..core.rng import as_generator
from .text import _as_sequences, _check_int

__all__ = ["PackedBatch", "batch_iterator", "pack_sequences", "random_windows"]


class PackedBatch(NamedTuple):
    """Rows of packed sequences (book §4.8.8), all arrays with leading shape ``(R, L)``.

    ``tokens``; ``segment_ids`` (1, 2, … per sequence in its row, 0 = padding); ``positions``
    (index within its own sequence, for positional encodings); ``mask`` ``(R, L, L)``
    block-diagonal causal attention mask; ``targets`` (next token within the same sequence) and
    ``loss_mask`` (``True`` where that next token exists).
    """

    tokens: np.ndarray
    segment_ids: np.ndarray
    positions: np.ndarray
    mask: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray


def pack_sequences(seqs: Sequence[Any], L: int, eos_id: int | None = None, *,
                   pad_id: int = 0) -> PackedBatch:
    """Pack variable-length sequences into rows of length ``L`` (book §4.8.8, "sequences of
    variable lengths are usually packed together in order to form batches").

    Each sequence (with ``eos_id`` appended when given) goes whole into the first row with room
    for it (first fit, in the given order). The attention mask of a row is block-diagonal and
    causal, ``mask[r, i, j] = (seg_i = seg_j) ∧ (j ≤ i)``, so no token attends another sequence
    (padding forms its own block and is never attended by real tokens). Hence a causal model
    run on a packed row with this mask and with ``positions`` gives each sequence the same
    log-likelihood as when run alone; ``targets``/``loss_mask`` select the next-token
    predictions inside each sequence.

    Example::

        >>> p = pack_sequences([[7, 8, 9], [10, 11], [12]], 5, eos_id=2)
        >>> p.tokens.tolist()
        [[7, 8, 9, 2, 0], [10, 11, 2, 12, 2]]
        >>> p.segment_ids.tolist()[1], p.positions.tolist()[1]
        ([1, 1, 1, 2, 2], [0, 1, 2, 0, 1])
        >>> p.mask[1].astype(int).tolist()
        [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1]]
    """
    fname = "pack_sequences"
    arrs = _as_sequences(seqs, fname)
    if not arrs:
        raise ValueError(f"{fname}: argument 'seqs' must contain at least one sequence")
    L = _check_int(L, fname, "L", low=1)
    pad_id = _check_int(pad_id, fname, "pad_id")
    if eos_id is not None:
        eos_id = _check_int(eos_id, fname, "eos_id")
        arrs = [np.append(a, eos_id) for a in arrs]
    for i, a in enumerate(arrs):
        if a.size == 0:
            raise ValueError(f"{fname}: seqs[{i}] is empty")
        if a.size > L:
            raise ValueError(f"{fname}: seqs[{i}] has length {a.size} (with EOS) > L={L}")
    rows: list[list[np.ndarray]] = []
    room: list[int] = []
    for a in arrs:
        r = next((k for k, free in enumerate(room) if free >= a.size), None)
        if r is None:
            rows.append([])
            room.append(L)
            r = len(rows) - 1
        rows[r].append(a)
        room[r] -= a.size
    R = len(rows)
    tokens = np.full((R, L), pad_id, dtype=np.int64)
    seg = np.zeros((R, L), dtype=np.int64)
    pos = np.zeros((R, L), dtype=np.int64)
    for r, row in enumerate(rows):
        start = 0
        for k, a in enumerate(row, start=1):
            tokens[r, start:start + a.size] = a
            seg[r, start:start + a.size] = k
            pos[r, start:start + a.size] = np.arange(a.size)
            start += a.size
    causal = np.tril(np.ones((L, L), dtype=bool))
    mask = (seg[:, :, None] == seg[:, None, :]) & causal
    targets = np.full((R, L), pad_id, dtype=np.int64)
    targets[:, :-1] = tokens[:, 1:]
    loss_mask = np.zeros((R, L), dtype=bool)
    loss_mask[:, :-1] = (seg[:, 1:] == seg[:, :-1]) & (seg[:, :-1] > 0)
    targets = np.where(loss_mask, targets, pad_id)
    return PackedBatch(tokens, seg, pos, mask, targets, loss_mask)


def random_windows(data: Any, rng: Any, batch_size: int,
                   context: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random training windows for a next-token language model (book §4.8.8,
    teacher forcing). With starts ``s_b ~ U{0, …, n − context − 1}``: inputs
    ``x[b] = data[s_b : s_b + context]`` and targets ``y[b] = data[s_b + 1 : s_b + context + 1]``
    (the next token at every position).

    Example::

        >>> x, y = random_windows(np.arange(10), 0, batch_size=2, context=3)
        >>> x.shape, bool((y == x + 1).all())
        ((2, 3), True)
    """
    fname = "random_windows"
    g = as_generator(rng, fname)
    batch_size = _check_int(batch_size, fname, "batch_size", low=1)
    context = _check_int(context, fname, "context", low=1)
    arr = np.asarray(data)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{fname}: argument 'data' must be a 1-D array of integer token ids, "
                         f"got shape {arr.shape} and dtype {arr.dtype}")
    if arr.size < context + 1:
        raise ValueError(f"{fname}: argument 'data' has {arr.size} tokens; a window of context "
                         f"{context} needs at least {context + 1}")
    starts = g.integers(0, arr.size - context, size=batch_size)
    idx = starts[:, None] + np.arange(context)[None, :]
    return arr[idx].astype(np.int64), arr[idx + 1].astype(np.int64)


def batch_iterator(data: Any, rng: Any, batch_size: int, context: int,
                   num_batches: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield :func:`random_windows` batches ``(inputs, targets)`` from one random generator
    (book §4.8.8, stochastic gradient training): ``num_batches`` of them, or forever if
    ``None``. Arguments are checked on the call, before the first batch is requested.

    Example::

        >>> batches = list(batch_iterator(np.arange(20), 0, 4, 5, num_batches=3))
        >>> len(batches), batches[0][0].shape
        (3, (4, 5))
    """
    fname = "batch_iterator"
    g = as_generator(rng, fname)
    if num_batches is not None:
        num_batches = _check_int(num_batches, fname, "num_batches")
    random_windows(data, np.random.default_rng(0), batch_size, context)  # validate eagerly

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        k = 0
        while num_batches is None or k < num_batches:
            yield random_windows(data, g, batch_size, context)
            k += 1

    return gen()
