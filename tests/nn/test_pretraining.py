"""BERT pretraining tasks: masked prediction and next sentence prediction (NET-70, NET-71;
book §4.8.9)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.pretraining import mlm_loss, mlm_mask, nsp_pairs
from diffprog.scipy.special import softmax

SPECIAL = (0, 1, 2, 3, 4, 5, 6)


def test_net70_mlm_mask_statistics_over_a_million_tokens():
    """NET-70: 15% selected (±0.002); of those 80% [MASK], 10% random, 10% unchanged (±0.005).

    Random replacements are uniform over the non-special ids, so a random draw equals the
    original token with probability 1/|pool|: the unchanged fraction is 0.1 + 0.1/|pool|.
    """
    vocab_size, mask_id = 50, 5
    rng = np.random.default_rng(0)
    tokens = rng.integers(7, vocab_size, size=(1000, 1000))
    corrupted, targets, sel = mlm_mask(tokens, 1, 0.15, mask_id=mask_id, vocab_size=vocab_size,
                                       exclude_ids=SPECIAL)
    assert (targets == tokens).all()
    assert abs(sel.mean() - 0.15) < 0.002
    assert (corrupted[~sel] == tokens[~sel]).all()  # unselected positions are untouched
    c, t = corrupted[sel], tokens[sel]
    pool = vocab_size - len(SPECIAL)
    frac_mask = np.mean(c == mask_id)
    frac_changed_random = np.mean((c != mask_id) & (c != t))
    frac_same = np.mean(c == t)
    assert abs(frac_mask - 0.8) < 0.005
    assert abs(frac_same - (0.1 + 0.1 / pool)) < 0.005
    assert abs(frac_changed_random - 0.1 * (1 - 1 / pool)) < 0.005
    # random tokens come from the pool only (never a special id other than [MASK] itself)
    assert not np.isin(c[c != mask_id], SPECIAL).any()
    # they are uniform over the pool: a chi-square statistic at 4 sigma of its mean
    rnd = c[(c != mask_id) & (c != t)]
    counts = np.bincount(rnd - 7, minlength=pool)
    expected = rnd.size / pool
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < (pool - 1) + 4 * np.sqrt(2 * (pool - 1))


def test_net70_mlm_mask_never_selects_excluded_ids_and_is_reproducible():
    tokens = np.array([[3, 9, 9, 9, 4, 0, 0]] * 200)
    out1 = mlm_mask(tokens, 5, 0.9, mask_id=5, vocab_size=12, exclude_ids=(0, 3, 4, 5))
    out2 = mlm_mask(tokens, np.random.default_rng(5), 0.9, mask_id=5, vocab_size=12,
                    exclude_ids=(0, 3, 4, 5))
    for a, b in zip(out1, out2, strict=True):
        assert (a == b).all()
    sel = out1[2]
    assert not sel[:, [0, 4, 5, 6]].any() and sel[:, 1:4].any()
    # rate 0 selects nothing; rate 1 selects every allowed position
    assert not mlm_mask(tokens, 0, 0.0, mask_id=5, vocab_size=12)[2].any()
    assert mlm_mask(tokens, 0, 1.0, mask_id=5, vocab_size=12)[2].all()
    # p_mask = 1: every selected position is [MASK]
    c, _, s = mlm_mask(tokens, 0, 0.5, mask_id=5, vocab_size=12, p_mask=1.0, p_random=0.0,
                       p_keep=0.0)
    assert (c[s] == 5).all()


def test_net70_mlm_mask_bad_input():
    t = np.array([7, 8, 9])
    kw = dict(mask_id=5, vocab_size=10)
    with pytest.raises(ValueError, match="mlm_mask: argument 'rate' must lie in"):
        mlm_mask(t, 0, 1.5, **kw)
    with pytest.raises(ValueError, match="mlm_mask: argument 'rate'"):
        mlm_mask(t, 0, -0.1, **kw)
    with pytest.raises(ValueError, match="mlm_mask: argument 'rng' is required"):
        mlm_mask(t, None, **kw)
    with pytest.raises(ValueError, match="mlm_mask: p_mask"):
        mlm_mask(t, 0, p_mask=0.5, **kw)
    with pytest.raises(ValueError, match=r"mlm_mask: argument 'tokens' must hold ids in \[0, 10\)"):
        mlm_mask(np.array([7, 10]), 0, **kw)
    with pytest.raises(TypeError, match="mlm_mask: argument 'tokens'"):
        mlm_mask(np.array([7.0]), 0, **kw)
    with pytest.raises(ValueError, match="mlm_mask: argument 'mask_id'"):
        mlm_mask(t, 0, mask_id=10, vocab_size=10)
    with pytest.raises(ValueError, match="mlm_mask: argument 'vocab_size'"):
        mlm_mask(t, 0, mask_id=0, vocab_size=0)
    with pytest.raises(ValueError, match="mlm_mask: exclude_ids leaves no id"):
        mlm_mask(np.array([0]), 0, mask_id=0, vocab_size=2, exclude_ids=(0, 1))


def test_net70_mlm_loss_closed_form_and_zero_gradient_off_selection():
    """NET-70: the loss is the mean cross-entropy on the selected positions only; its gradient
    is (softargmax(θ_i) − e_{y_i})/n_selected there and exactly 0 elsewhere."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6))
    targets = rng.integers(0, 6, size=(2, 5))
    sel = np.zeros((2, 5), bool)
    sel[0, 1] = sel[1, 3] = sel[1, 4] = True
    ref = 0.0
    for b, i in zip(*np.nonzero(sel), strict=True):
        z = logits[b, i]
        ref += np.log(np.exp(z - z.max()).sum()) + z.max() - z[targets[b, i]]
    assert np.isclose(float(mlm_loss(logits, targets, sel)), ref / 3, atol=1e-12)
    g = diffprog.grad(mlm_loss)(logits, targets, sel)
    assert (g[~sel] == 0).all()
    expected = (np.asarray(softmax(logits, axis=-1)) - np.eye(6)[targets]) / 3
    assert np.allclose(g[sel], expected[sel], atol=1e-12)
    # changing an unselected logit (even to a huge value) changes nothing
    bumped = logits.copy()
    bumped[0, 0] += 1e6
    assert float(mlm_loss(bumped, targets, sel)) == float(mlm_loss(logits, targets, sel))
    check_grads(lambda z: mlm_loss(z, targets, sel), (logits,), order=2)
    # no selected position: the loss is 0 (not NaN)
    assert float(mlm_loss(logits, targets, np.zeros((2, 5), bool))) == 0.0


def test_net70_mlm_loss_float32_and_bad_input():
    logits = np.zeros((3, 4), np.float32)
    val = mlm_loss(logits, np.array([0, 1, 2]), np.array([True, True, False]))
    assert np.isclose(float(val), np.log(4), atol=1e-6)
    with pytest.raises(ValueError, match=r"mlm_loss: argument 'targets' must hold ids in \[0, 4\)"):
        mlm_loss(logits, np.array([0, 1, 4]), np.ones(3, bool))
    with pytest.raises(ValueError, match="mlm_loss: 'targets'.*must both"):
        mlm_loss(logits, np.array([0, 1]), np.ones(2, bool))
    with pytest.raises(TypeError, match="mlm_loss: argument 'loss_mask' must be boolean"):
        mlm_loss(logits, np.array([0, 1, 2]), np.ones(3))


def _corpus():
    # sentence ids are unique (each sentence is [100 + flat index]), so B identifies itself
    docs, k = [], 0
    for n in (3, 1, 4, 2, 5):
        doc = []
        for _ in range(n):
            doc.append([100 + k, 7])
            k += 1
        docs.append(doc)
    return docs


def test_net71_nsp_pairs_format_and_label_balance():
    """NET-71: [CLS] A [SEP] B [SEP]; segments switch after the first [SEP]; labels 0.5±0.02
    over 10⁴ pairs; IsNext ⇔ B is A's successor in its document."""
    docs = _corpus()
    successor = {}
    for doc in docs:
        for a, b in zip(doc[:-1], doc[1:], strict=True):
            successor[a[0]] = b[0]
    batch = nsp_pairs(docs, 0, 10_000, cls_id=3, sep_id=4)
    assert abs(batch.labels.mean() - 0.5) < 0.02
    seen_b = set()
    for t, s, label in zip(batch.tokens, batch.segments, batch.labels, strict=True):
        assert t.tolist()[0] == 3 and t.size == s.size == 7
        seps = np.flatnonzero(t == 4)
        assert seps.tolist() == [3, 6]
        assert s.tolist() == [0, 0, 0, 0, 1, 1, 1]
        a, b = int(t[1]), int(t[4])
        assert a in successor  # A always has a successor
        assert (successor[a] == b) == bool(label)
        if not label:
            seen_b.add(b)
    # NotNext sentences come from the whole corpus (all 15 sentences appear)
    assert seen_b == set(range(100, 115))


def test_net71_nsp_pairs_bad_input():
    with pytest.raises(ValueError, match="nsp_pairs: argument 'docs' needs a document"):
        nsp_pairs([[[1]], [[2]]], 0, 3, cls_id=3, sep_id=4)
    with pytest.raises(ValueError, match="nsp_pairs: argument 'rng' is required"):
        nsp_pairs(_corpus(), None, 3, cls_id=3, sep_id=4)
    with pytest.raises(ValueError, match="nsp_pairs: argument 'num_pairs'"):
        nsp_pairs(_corpus(), 0, 0, cls_id=3, sep_id=4)
    with pytest.raises(TypeError, match=r"nsp_pairs: argument 'docs\[0\]\[1\]'"):
        nsp_pairs([[[1], [2.5]]], 0, 1, cls_id=3, sep_id=4)
    with pytest.raises(TypeError, match=r"nsp_pairs: docs\[0\] must be a list"):
        nsp_pairs(["abc"], 0, 1, cls_id=3, sep_id=4)
    with pytest.raises(ValueError, match="nsp_pairs: argument 'cls_id'"):
        nsp_pairs(_corpus(), 0, 1, cls_id=-1, sep_id=4)
