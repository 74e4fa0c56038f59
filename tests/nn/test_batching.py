"""LM batches: packing and random windows (NET-66; book §4.8.8)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffprog.nn.batching import batch_iterator, pack_sequences, random_windows
from diffprog.nn.embedding import embed
from diffprog.nn.language_model import DecoderLM, sequence_log_likelihood
from diffprog.scipy.special import log_softmax

# ----------------------------------------------------------------------------- packing


@given(st.lists(st.lists(st.integers(3, 40), min_size=1, max_size=7), min_size=1, max_size=8),
       st.integers(8, 12))
def test_net66_pack_sequences_structure_brute_force(seqs, L):
    """NET-66: each sequence (+EOS) appears once, contiguously; mask[i, j] holds exactly when
    i and j are in the same sequence and j <= i; targets are the next token of that sequence."""
    p = pack_sequences(seqs, L, eos_id=2, pad_id=0)
    R = p.tokens.shape[0]
    assert p.tokens.shape == p.segment_ids.shape == p.positions.shape == (R, L)
    assert p.mask.shape == (R, L, L)
    found = []
    for r in range(R):
        for k in range(1, p.segment_ids[r].max() + 1):
            where = np.flatnonzero(p.segment_ids[r] == k)
            assert where.size and (np.diff(where) == 1).all()
            found.append(p.tokens[r, where].tolist())
            assert p.positions[r, where].tolist() == list(range(where.size))
        pad = p.segment_ids[r] == 0
        assert (p.tokens[r, pad] == 0).all()
        # padding only at the end of a row
        assert not pad.any() or pad[np.argmax(pad):].all()
        for i in range(L):
            for j in range(L):
                same = p.segment_ids[r, i] == p.segment_ids[r, j]
                assert p.mask[r, i, j] == (same and j <= i)
                if p.segment_ids[r, i] and p.segment_ids[r, j] == 0:
                    assert not p.mask[r, i, j]  # real tokens never see padding
            nxt = i + 1 < L and p.segment_ids[r, i] > 0 and \
                p.segment_ids[r, i + 1] == p.segment_ids[r, i]
            assert p.loss_mask[r, i] == nxt
            if nxt:
                assert p.targets[r, i] == p.tokens[r, i + 1]
    assert sorted(found) == sorted(s + [2] for s in seqs)
    # no row could have taken a later row's first sequence (first fit)
    used = (p.segment_ids > 0).sum(1)
    for r in range(R):
        for r2 in range(r + 1, R):
            first_len = int((p.segment_ids[r2] == 1).sum())
            assert L - used[r] < first_len


def test_net66_pack_sequences_errors():
    with pytest.raises(ValueError, match=r"pack_sequences: seqs\[1\] has length 4 \(with EOS\)"):
        pack_sequences([[5], [5, 6, 7]], 3, eos_id=2)
    with pytest.raises(ValueError, match="pack_sequences.*empty"):
        pack_sequences([[]], 3)
    with pytest.raises(ValueError, match="pack_sequences.*at least one"):
        pack_sequences([], 3)
    with pytest.raises(ValueError, match="pack_sequences: argument 'eos_id'"):
        pack_sequences([[1]], 3, eos_id=-2)
    p = pack_sequences([[5, 6, 7]], 3)  # no EOS appended
    assert p.tokens.tolist() == [[5, 6, 7]]


def _packed_logits(lm, tokens, positions, mask):
    """A DecoderLM's pipeline run on packed rows: learned positions looked up by ``positions``
    (restarting in each sequence) and the block-diagonal causal ``mask`` instead of M_L."""
    x = lm.embed(tokens) + embed(positions, lm.pos.table)
    h = lm.block(x, mask=mask)
    if lm.ln_f is not None:
        h = lm.ln_f(h)
    return lm.head(h)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_net66_packed_log_likelihood_equals_sum_of_separate_log_likelihoods(norm):
    """NET-66: Σ_i loss_mask_i log π_i[target_i] of each packed row equals the sum of the
    separate teacher-forced log-likelihoods (NET-65) of the sequences packed into it."""
    rng = np.random.default_rng(0)
    lm = DecoderLM.init(0, 12, 8, 2, 16, 2, 10, norm=norm)
    lm = lm.replace(embed=lm.embed.replace(table=rng.normal(size=(12, 8))),
                    pos=lm.pos.replace(table=rng.normal(size=(10, 8))))
    seqs = [[3, 4, 5], [6, 7], [8, 9, 10, 11, 3], [4], [5, 6, 7, 8]]
    p = pack_sequences(seqs, 10, eos_id=2)
    assert p.tokens.shape[0] < len(seqs)  # several sequences share a row
    logp = np.asarray(log_softmax(_packed_logits(lm, p.tokens, p.positions, p.mask), axis=-1))
    picked = np.take_along_axis(logp, p.targets[..., None], -1)[..., 0]
    packed_ll = (picked * p.loss_mask).sum(-1)
    for r in range(p.tokens.shape[0]):
        expected = 0.0
        for k in range(1, p.segment_ids[r].max() + 1):
            seq = p.tokens[r, p.segment_ids[r] == k]
            if seq.size >= 2:
                expected += float(sequence_log_likelihood(lm, seq))
        assert np.isclose(packed_ll[r], expected, rtol=0, atol=1e-10)
    # the block-diagonal mask matters: a plain causal mask mixes the sequences
    logp_mixed = np.asarray(log_softmax(
        _packed_logits(lm, p.tokens, p.positions, np.tri(10, dtype=bool)), axis=-1))
    mixed = (np.take_along_axis(logp_mixed, p.targets[..., None], -1)[..., 0] * p.loss_mask)
    assert np.abs(mixed.sum(-1) - packed_ll).max() > 1e-3


# ----------------------------------------------------------------------------- LM windows


def test_random_windows_targets_are_next_tokens_and_cover_all_starts():
    data = np.arange(100, 120)
    x, y = random_windows(data, np.random.default_rng(1), batch_size=2000, context=5)
    assert x.shape == y.shape == (2000, 5) and x.dtype == np.int64
    assert (y == x + 1).all() and (np.diff(x, axis=1) == 1).all()
    # every start 0..n-context-1 is drawn, none beyond (the last target is data[-1])
    assert set((x[:, 0] - 100).tolist()) == set(range(20 - 5))
    # explicit randomness: same seed, same batch
    x1, _ = random_windows(data, 7, 4, 3)
    x2, _ = random_windows(data, 7, 4, 3)
    assert (x1 == x2).all()


def test_random_windows_errors():
    with pytest.raises(ValueError, match="random_windows: argument 'rng' is required"):
        random_windows(np.arange(10), None, 2, 3)
    with pytest.raises(ValueError, match="random_windows: argument 'data' has 4 tokens"):
        random_windows(np.arange(4), 0, 2, 4)
    with pytest.raises(ValueError, match="random_windows: argument 'data' must be a 1-D"):
        random_windows(np.ones((3, 4), int), 0, 2, 2)
    with pytest.raises(ValueError, match="random_windows: argument 'batch_size'"):
        random_windows(np.arange(10), 0, 0, 2)


def test_batch_iterator():
    data = np.arange(30)
    batches = list(batch_iterator(data, 3, 4, 6, num_batches=5))
    assert len(batches) == 5
    for x, y in batches:
        assert x.shape == (4, 6) and (y == x + 1).all()
    # the same generator stream as repeated random_windows calls
    g = np.random.default_rng(3)
    expected = [random_windows(data, g, 4, 6)[0] for _ in range(5)]
    assert all((a[0] == b).all() for a, b in zip(batches, expected, strict=True))
    it = batch_iterator(data, 0, 2, 3)  # endless
    assert all(next(it)[0].shape == (2, 3) for _ in range(20))
    with pytest.raises(ValueError, match="batch_iterator: argument 'rng' is required"):
        batch_iterator(data, None, 2, 3)
    with pytest.raises(ValueError, match="random_windows: argument 'data' has 30 tokens"):
        batch_iterator(data, 0, 2, 30)  # raised on the call, not at the first next()
