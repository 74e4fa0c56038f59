"""Encoder-only (BERT) model and task heads (NET-55, NET-69..NET-72; book §4.8.9)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.attention import causal_mask
from diffprog.nn.encoder import EncoderLM, cls_classifier, span_head, token_classifier
from diffprog.nn.linear import Linear
from diffprog.nn.pretraining import mlm_loss, mlm_mask
from diffprog.nn.text import pad_sequences
from diffprog.scipy.special import softmax

V, D, H, F = 11, 8, 2, 16


def _model(num_layers=1, **kw):
    return EncoderLM.init(0, V, D, H, F, num_layers, 12, **kw)


def _bigger_embeddings(model, rng):
    """Scale the N(0, 0.02²) tables up so token/segment changes move the outputs visibly."""
    return model.replace(
        token_embed=model.token_embed.replace(table=rng.normal(size=(V, D))),
        segment_embed=model.segment_embed.replace(table=rng.normal(size=(2, D))))


def test_net69_forward_is_token_plus_position_plus_segment_then_unmasked_block():
    """NET-69: H = Transformer(W^E[t] + W^P[0:L] + W^S[s]) with mask=None (hand assembly)."""
    model = _model(num_layers=2)
    tokens = np.array([[3, 7, 8, 4, 9, 10, 4]])
    segments = np.array([[0, 0, 0, 0, 1, 1, 1]])
    x = (model.token_embed.table[tokens] + model.position_embed.table[:7]
         + model.segment_embed.table[segments])
    expected = x
    for layer in model.block.layers:
        expected = layer(expected)
    assert np.allclose(model(tokens, segments), expected, atol=1e-12)
    # segments=None means segment 0 everywhere
    assert np.allclose(model(tokens), model(tokens, np.zeros_like(tokens)), atol=1e-14)


def test_net69_bidirectional_position_one_depends_on_later_tokens():
    """NET-69: the output at the first position has a nonzero Jacobian w.r.t. later inputs, and
    changing a later token changes it; with a causal mask (the decoder) both are zero."""
    rng = np.random.default_rng(0)
    model = _bigger_embeddings(_model(), rng)
    tokens = np.array([3, 7, 8, 9, 4])
    x = model.embed(tokens)

    def first_row(x, mask):
        return model.block(x, mask=mask)[0]

    J = diffprog.jacobian(first_row)(x, None)  # (D, L, D)
    assert np.abs(J[:, 1:, :]).max() > 1e-3
    Jc = diffprog.jacobian(first_row)(x, causal_mask(5))
    assert np.abs(Jc[:, 1:, :]).max() == 0.0
    changed = tokens.copy()
    changed[3] = 10
    assert np.abs(model(tokens)[0] - model(changed)[0]).max() > 1e-3


def test_net69_segment_embedding_matters_and_can_be_dropped():
    rng = np.random.default_rng(1)
    model = _bigger_embeddings(_model(), rng)
    tokens = np.array([3, 7, 4, 8, 4])
    a = model(tokens, np.array([0, 0, 0, 1, 1]))
    b = model(tokens, np.array([0, 0, 0, 0, 0]))
    assert np.abs(a - b).max() > 1e-3
    no_seg = _model(num_segments=0)
    assert no_seg.segment_embed is None and no_seg(tokens).shape == (5, D)
    with pytest.raises(ValueError, match="EncoderLM: 'segments' given, but the model has no"):
        no_seg(tokens, np.zeros(5, int))


def test_net55_padded_batch_equals_unpadded_sequences_with_key_padding_mask():
    """NET-55: with the key-padding mask, the padded batch output at real positions equals each
    sequence run alone; without it, padding leaks into the real positions."""
    rng = np.random.default_rng(2)
    model = _bigger_embeddings(_model(num_layers=2), rng)
    seqs = [[3, 7, 8, 4], [3, 9, 4], [3, 10, 7, 8, 9, 4]]
    tokens, valid = pad_sequences(seqs, 6, pad_id=0)
    segs = np.zeros_like(tokens)
    h = model(tokens, segs, padding_mask=valid)
    h_nomask = model(tokens, segs)
    for b, s in enumerate(seqs):
        alone = model(np.array(s), np.zeros(len(s), int))
        assert np.allclose(h[b, :len(s)], alone, atol=1e-12)
        if len(s) < 6:
            assert np.abs(h_nomask[b, :len(s)] - alone).max() > 1e-4
    # padded positions do not influence the real ones (zero Jacobian through PAD tokens)
    x = model.embed(tokens, segs)
    mask = valid[:, None, :]
    J = diffprog.jacobian(lambda x: model.block(x, mask=mask)[1, :3])(x)  # (3, D, B, L, D)
    assert np.abs(J[:, :, 1, 3:, :]).max() == 0.0


def test_net70_mlm_head_is_tied_to_the_token_embedding():
    """NET-70 head: θ_i = h_i W^Eᵀ + b; the gradient of the table collects both the embedding and
    the output-projection contributions (one shared leaf)."""
    model = _model()
    h = np.random.default_rng(3).normal(size=(4, D))
    assert np.allclose(model.mlm_logits(h), h @ model.token_embed.table.T + model.mlm_bias,
                       atol=1e-14)


def test_net70_mlm_pretraining_gradient_ignores_unselected_positions():
    """NET-70: the MLM loss of the whole model depends on the logits of selected positions only:
    perturbing the final hidden state at an unselected position leaves it unchanged."""
    model = _model()
    tokens = np.array([[3, 7, 8, 9, 10, 7, 8, 4]])
    corrupted, targets, sel = mlm_mask(tokens, 4, 0.5, mask_id=5, vocab_size=V,
                                       exclude_ids=(0, 1, 2, 3, 4, 5, 6))
    assert sel.any() and (~sel).any()
    h = model(corrupted)
    g = diffprog.grad(lambda h: mlm_loss(model.mlm_logits(h), targets, sel))(h)
    assert (g[~sel] == 0).all() and np.abs(g[sel]).max() > 0


def test_net70_tiny_mlm_training_reduces_the_loss():
    """NET-70 end to end: a few Adam steps on a fixed masked batch lower the MLM loss."""
    from diffprog.optim import adam
    from diffprog.optim.training import fit

    model = _model()
    tokens = np.tile(np.array([3, 7, 8, 9, 10, 7, 8, 4]), (4, 1))
    corrupted, targets, sel = mlm_mask(tokens, 0, 0.3, mask_id=5, vocab_size=V,
                                       exclude_ids=(0, 1, 2, 3, 4, 5, 6))

    def loss(m):
        return mlm_loss(m.mlm_logits(m(corrupted)), targets, sel)

    trained, _ = fit(loss, model, adam(0.05), num_steps=15)
    assert float(loss(trained)) < 0.5 * float(loss(model))


def test_net71_nsp_head_reads_the_cls_state_only():
    """NET-71: nsp_logits(H) = H[0] W + b; rows other than [CLS] have no influence."""
    model = _model()
    h = np.random.default_rng(5).normal(size=(2, 6, D))
    out = model.nsp_logits(h)
    assert out.shape == (2, 2)
    assert np.allclose(out, h[:, 0] @ model.nsp_head.W + model.nsp_head.b, atol=1e-14)
    h2 = h.copy()
    h2[:, 1:] += 3.0
    assert np.allclose(model.nsp_logits(h2), out, atol=0)


def test_net72_task_heads_shapes_and_values():
    """NET-72: classification (C,), tagging (L, C), span (L,), (L,) with softargmax over
    positions summing to 1; values are the Linear maps of the right rows."""
    rng = np.random.default_rng(6)
    h = rng.normal(size=(7, D))
    cls_head, tag_head, sp_head = Linear.init(0, D, 3), Linear.init(1, D, 5), Linear.init(2, D, 2)
    c = cls_classifier(h, cls_head)
    t = token_classifier(h, tag_head)
    start, end = span_head(h, sp_head)
    assert c.shape == (3,) and t.shape == (7, 5) and start.shape == end.shape == (7,)
    assert np.allclose(c, h[0] @ cls_head.W + cls_head.b, atol=1e-14)
    for i in range(7):
        assert np.allclose(t[i], h[i] @ tag_head.W + tag_head.b, atol=1e-14)
    assert np.allclose(start, h @ sp_head.W[:, 0] + sp_head.b[0], atol=1e-14)
    assert np.allclose(end, h @ sp_head.W[:, 1] + sp_head.b[1], atol=1e-14)
    for logits in (start, end):
        p = np.asarray(softmax(logits))
        assert np.isclose(p.sum(), 1.0, atol=1e-14) and (p > 0).all()
    # batched
    hb = rng.normal(size=(2, 7, D))
    assert cls_classifier(hb, cls_head).shape == (2, 3)
    assert span_head(hb, sp_head)[0].shape == (2, 7)


def test_net72_heads_bad_input():
    h = np.ones((4, D))
    with pytest.raises(ValueError, match="span_head: argument 'head' must have 2 outputs"):
        span_head(h, Linear.init(0, D, 3))
    with pytest.raises(ValueError, match="cls_classifier: input 'h' must have last dimension"):
        cls_classifier(np.ones((4, D + 1)), Linear.init(0, D, 3))
    with pytest.raises(ValueError, match=r"token_classifier: argument 'h' must have shape"):
        token_classifier(np.ones(D), Linear.init(0, D, 3))


def test_net69_72_gradient_check_tiny_encoder():
    """NET-69..72: the encoder, its MLM/NSP heads and the task heads pass check_grads."""
    model = EncoderLM.init(1, 6, 4, 2, 6, 1, 4)
    tokens = np.array([3, 5, 1, 4])
    segs = np.array([0, 0, 1, 1])
    valid = np.array([True, True, True, False])

    def f(m):
        h = m(tokens, segs, padding_mask=valid)
        return m.mlm_logits(h)[:3].sum(-1) + m.nsp_logits(h).sum()

    check_grads(f, (model,), order=2)
    heads = (Linear.init(0, 4, 3), Linear.init(1, 4, 2))
    h = np.random.default_rng(0).normal(size=(4, 4))
    check_grads(lambda h, a, b: (cls_classifier(h, a), token_classifier(h, a), span_head(h, b)),
                (h, *heads), order=2)


def test_net69_float32_end_to_end():
    model = EncoderLM.init(0, V, D, H, F, 1, 12, dtype=np.float32)
    tokens = np.array([[3, 7, 8, 4, 0]])
    h = model(tokens, padding_mask=tokens != 0)
    assert h.dtype == np.float32 and model.mlm_logits(h).dtype == np.float32
    g = diffprog.grad(lambda m: m.mlm_logits(m(tokens)).sum())(model)
    assert g.token_embed.table.dtype == np.float32
    assert np.all(np.isfinite(g.token_embed.table))


def test_encoder_bad_input():
    model = _model()
    with pytest.raises(ValueError, match=r"Embedding: argument 'ids' must lie in \[0, 11\)"):
        model(np.array([3, 11]))
    with pytest.raises(ValueError, match="EncoderLM: argument 'padding_mask' must be boolean"):
        model(np.array([3, 7]), padding_mask=np.array([True, True, False]))
    with pytest.raises(ValueError, match="EncoderLM: argument 'padding_mask' must be boolean"):
        model(np.array([3, 7]), padding_mask=np.array([1, 1]))
    with pytest.raises(ValueError, match="EncoderLM: argument 'segments' must have the shape"):
        model(np.array([3, 7]), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="EncoderLM: sequence length 13 exceeds max_len=12"):
        model(np.full(13, 7))
    with pytest.raises(ValueError, match="Embedding: argument 'ids' must lie in"):
        model(np.array([3, 7]), np.array([0, 2]))
    with pytest.raises(ValueError, match="EncoderLM.init: argument 'rng' is required"):
        EncoderLM.init(None, V, D, H, F, 1, 12)
    with pytest.raises(ValueError, match="EncoderLM.init: argument 'vocab_size'"):
        EncoderLM.init(0, 0, D, H, F, 1, 12)
    with pytest.raises(ValueError, match="EncoderLM.init: argument 'num_segments'"):
        EncoderLM.init(0, V, D, H, F, 1, 12, num_segments=-1)
    with pytest.raises(ValueError, match="EncoderLM: argument 'tokens' must have shape"):
        model(np.array(3))
