"""Cross-attention, the encoder-decoder Transformer and prefix-LM inputs (NET-73..NET-75;
book §4.8.10)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check_grads
from diffprog.nn.attention import MultiHeadAttention, attention_weights, causal_mask
from diffprog.nn.encoder_decoder import EncoderDecoder, prefix_lm_inputs
from diffprog.nn.language_model import DecoderLM, sequence_log_likelihood
from diffprog.nn.positional import sinusoidal_positional_encoding
from diffprog.scipy.special import log_softmax

SRC, TGT, D, H, F = 9, 10, 8, 2, 16


def _model(num_layers=2, rng_tables=True, **kw):
    m = EncoderDecoder.init(0, SRC, TGT, D, H, F, num_layers, **kw)
    if rng_tables:  # token-sized embeddings so that tokens move the outputs visibly
        rng = np.random.default_rng(1)
        m = m.replace(src_embed=m.src_embed.replace(table=0.3 * rng.normal(size=(SRC, D))),
                      tgt_embed=m.tgt_embed.replace(table=0.3 * rng.normal(size=(TGT, D))))
    return m


# ----------------------------------------------------------------------------- NET-73


def test_net73_cross_attention_shapes_rows_and_hand_computation():
    """NET-73: Q = H_dec W'^Q, K = H_enc W'^K, V = H_enc W'^V; an L_dec × L_enc attention matrix
    (3 × 5) whose rows sum to 1; output (3, D) = Σ_heads A_h V_h W^O_h."""
    rng = np.random.default_rng(0)
    mha = MultiHeadAttention.init(0, D, H)
    h_dec, h_enc = rng.normal(size=(3, D)), rng.normal(size=(5, D))
    out = mha(h_dec, h_enc)
    assert out.shape == (3, D)
    dk = D // H
    expected = np.zeros((3, D))
    for h in range(H):
        cols = slice(h * dk, (h + 1) * dk)
        q = h_dec @ mha.q_proj.W[:, cols]
        k = h_enc @ mha.k_proj.W[:, cols]
        v = h_enc @ mha.v_proj.W[:, cols]
        A = np.asarray(attention_weights(q, k))
        assert A.shape == (3, 5)
        assert np.allclose(A.sum(1), 1.0, atol=1e-14) and (A > 0).all()
        s = q @ k.T / np.sqrt(dk)
        A_ref = np.exp(s - s.max(1, keepdims=True))
        A_ref /= A_ref.sum(1, keepdims=True)
        assert np.allclose(A, A_ref, atol=1e-14)
        expected += A_ref @ v @ mha.o_proj.W[cols, :]
    assert np.allclose(out, expected, atol=1e-12)


def test_net73_cross_attention_is_invariant_to_permuting_the_encoder_rows():
    """NET-73: permuting H_enc (and its padding mask with it) leaves the output unchanged; the
    decoder rows stay equivariant."""
    rng = np.random.default_rng(1)
    mha = MultiHeadAttention.init(2, D, H)
    h_dec, h_enc = rng.normal(size=(2, 3, D)), rng.normal(size=(2, 5, D))
    valid = np.array([[True] * 5, [True, True, True, False, False]])
    out = mha(h_dec, h_enc, mask=valid[:, None, :])
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(5)
        out_p = mha(h_dec, h_enc[:, perm], mask=valid[:, perm][:, None, :])
        assert np.allclose(out_p, out, atol=1e-12)
    perm_q = np.array([2, 0, 1])
    assert np.allclose(mha(h_dec[:, perm_q], h_enc, mask=valid[:, None, :]), out[:, perm_q],
                       atol=1e-12)


def test_net73_cross_attention_gradient_check():
    rng = np.random.default_rng(2)
    mha = MultiHeadAttention.init(3, 4, 2)
    check_grads(lambda m, x, c: m(x, c), (mha, rng.normal(size=(3, 4)), rng.normal(size=(5, 4))),
                order=2)


# ----------------------------------------------------------------------------- NET-74


def test_net74_forward_matches_hand_assembly():
    """NET-74: encoder = Algorithm 4.4 without mask on √D·W^E[x] + P; each decoder layer =
    causal self-attention → cross-attention to H_enc → MLP (own params); tied output layer."""
    m = _model()
    src, tgt = np.array([3, 4, 5, 6, 2]), np.array([1, 7, 8])
    x = np.sqrt(D) * m.src_embed.table[src] + sinusoidal_positional_encoding(5, D)
    for layer in m.encoder.layers:
        x = layer(x)
    y = np.sqrt(D) * m.tgt_embed.table[tgt] + sinusoidal_positional_encoding(3, D)
    for layer in m.decoder.layers:
        y = layer(y, mask=causal_mask(3), context=x)
    expected = y @ m.tgt_embed.table.T + m.out_bias
    assert np.allclose(m(src, tgt), expected, atol=1e-12)
    assert np.allclose(m.encode(src), x, atol=1e-12)
    # every decoder layer has its own cross-attention, distinct from the encoder's attention
    assert all(layer.cross_attn is not None for layer in m.decoder.layers)
    assert all(layer.cross_attn is None for layer in m.encoder.layers)


def test_net74_decoder_causality_and_encoder_independent_of_y():
    """NET-74: logits at t do not depend on Y_{>t} (zero Jacobian, unchanged values); the
    encoder output has zero gradient w.r.t. every target-side parameter; logits depend on every
    source token (bidirectional encoder)."""
    m = _model()
    src, tgt = np.array([3, 4, 5, 6, 2]), np.array([1, 7, 8, 9])
    h_enc = m.encode(src)
    y = np.sqrt(D) * m.tgt_embed.table[tgt] + sinusoidal_positional_encoding(4, D)

    def dec(y):
        for layer in m.decoder.layers:
            y = layer(y, mask=causal_mask(4), context=h_enc)
        return y

    J = diffprog.jacobian(dec)(y)  # (4, D, 4, D)
    for t in range(4):
        assert np.abs(J[t, :, t + 1:, :]).max(initial=0.0) == 0.0
        assert np.abs(J[t, :, : t + 1, :]).max() > 1e-4
    changed = tgt.copy()
    changed[2:] = [3, 4]
    a, b = m(src, tgt), m(src, changed)
    assert np.array_equal(a[:2], b[:2]) and np.abs(a[2:] - b[2:]).max() > 1e-3

    g = diffprog.grad(lambda m: (m.encode(src) ** 2).sum())(m)
    assert not np.any(g.tgt_embed.table) and not np.any(g.out_bias)
    assert all(not np.any(leaf) for leaf in diffprog.tree_leaves(g.decoder))
    assert np.any(g.src_embed.table)
    for i in range(5):  # the first logit row sees every source token
        s2 = src.copy()
        s2[i] = 7
        assert np.abs(m(s2, tgt)[0] - a[0]).max() > 1e-4


def test_net74_padding_masks():
    """Padded source/target batches give the unpadded per-sequence logits at real positions."""
    m = _model()
    srcs = [np.array([3, 4, 2]), np.array([5, 6, 7, 8, 2])]
    tgts = [np.array([1, 7, 8, 9]), np.array([1, 9])]
    S = np.zeros((2, 5), int)
    T = np.zeros((2, 4), int)
    sm, tm = np.zeros((2, 5), bool), np.zeros((2, 4), bool)
    for b in range(2):
        S[b, :srcs[b].size], sm[b, :srcs[b].size] = srcs[b], True
        T[b, :tgts[b].size], tm[b, :tgts[b].size] = tgts[b], True
    out = m(S, T, src_mask=sm, tgt_mask=tm)
    for b in range(2):
        alone = m(srcs[b], tgts[b])
        assert np.allclose(out[b, :tgts[b].size], alone, atol=1e-12)
    assert np.abs(m(S, T)[0, :4] - m(srcs[0], tgts[0])).max() > 1e-4  # mask needed


def test_net74_greedy_decoding_with_cache_equals_without():
    """NET-74: greedy decoding with the KV cache gives the same tokens and step logits (1e-10)
    as recomputing the prefix; each token is the argmax of the teacher-forced logits."""
    m = _model()
    src = np.array([[3, 4, 5, 6, 2], [6, 5, 4, 3, 2], [7, 7, 8, 8, 2]])
    a, la = m.greedy_decode(src, 1, 2, 8, return_logits=True)
    b, lb = m.greedy_decode(src, 1, 2, 8, use_cache=False, return_logits=True)
    assert np.array_equal(a, b)
    assert np.allclose(la, lb, rtol=0, atol=1e-10)
    assert (a[:, 0] == 1).all()
    tf = m(src, a[:, :-1])  # teacher forcing on the decoded prefix
    assert np.allclose(tf, la, atol=1e-10)
    for r in range(3):
        row = a[r, 1:]
        end = np.flatnonzero(row == 2)
        stop = end[0] + 1 if end.size else row.size
        assert np.array_equal(row[:stop], np.argmax(tf[r], -1)[:stop])
        assert (row[stop:] == 2).all()  # finished sequences are padded with EOS
    # single sequence and a padded source
    one = m.greedy_decode(src[0], 1, 2, 8)
    assert np.array_equal(one, a[0, :one.size])
    srcp = np.array([[3, 4, 2, 0, 0]])
    valid = srcp != 0
    c = m.greedy_decode(srcp, 1, 2, 6, src_mask=valid)
    d = m.greedy_decode(srcp, 1, 2, 6, src_mask=valid, use_cache=False)
    e = m.greedy_decode(np.array([[3, 4, 2]]), 1, 2, 6)
    assert np.array_equal(c, d) and np.array_equal(c, e)


def test_net74_greedy_decoding_stops_at_eos_or_max_len():
    m = _model(num_layers=1)
    forced_eos = m.replace(out_bias=np.where(np.arange(TGT) == 2, 100.0, 0.0))
    assert forced_eos.greedy_decode(np.array([3, 4]), 1, 2, 10).tolist() == [1, 2]
    forced_7 = m.replace(out_bias=np.where(np.arange(TGT) == 7, 100.0, 0.0))
    assert forced_7.greedy_decode(np.array([3, 4]), 1, 2, 4).tolist() == [1, 7, 7, 7, 7]


def test_net74_tiny_copy_task_training_reduces_the_loss():
    from diffprog.nn.language_model import token_cross_entropy
    from diffprog.optim import adam
    from diffprog.optim.training import fit

    m = EncoderDecoder.init(0, SRC, TGT, D, H, F, 1)
    src = np.array([[3, 4, 5, 2], [5, 4, 3, 2], [6, 7, 8, 2]])
    tgt = np.concatenate([np.ones((3, 1), int), src], axis=1)  # BOS + copy

    def loss(m):
        return token_cross_entropy(m(src, tgt[:, :-1]), tgt[:, 1:])

    trained, _ = fit(loss, m, adam(0.03), num_steps=25)
    assert float(loss(trained)) < 0.5 * float(loss(m))


def test_net74_gradient_check_tiny_encoder_decoder():
    m = EncoderDecoder.init(0, 5, 6, 4, 2, 6, 1)
    src, tgt = np.array([3, 4, 2]), np.array([1, 3])
    check_grads(lambda m: m(src, tgt), (m,), order=2)
    check_grads(lambda m: m(src[None], tgt[None], src_mask=np.array([[True, True, False]])),
                (m,), order=1)


def test_net74_float32():
    m = EncoderDecoder.init(0, SRC, TGT, D, H, F, 1, dtype=np.float32)
    out = m(np.array([3, 4, 2]), np.array([1, 5]))
    assert out.dtype == np.float32
    g = diffprog.grad(lambda m: m(np.array([3, 4, 2]), np.array([1, 5])).sum())(m)
    assert g.src_embed.table.dtype == np.float32
    assert m.greedy_decode(np.array([3, 4, 2]), 1, 2, 3)[0] == 1


def test_net74_bad_input():
    m = _model(num_layers=1)
    with pytest.raises(ValueError, match=r"Embedding: argument 'ids' must lie in \[0, 9\)"):
        m(np.array([3, 9]), np.array([1]))
    with pytest.raises(ValueError, match=r"Embedding: argument 'ids' must lie in \[0, 10\)"):
        m(np.array([3, 4]), np.array([1, 10]))
    with pytest.raises(ValueError, match="EncoderDecoder.encode: argument 'src_mask' must be "
                                         "boolean of shape"):
        m(np.array([3, 4]), np.array([1]), src_mask=np.array([True]))
    with pytest.raises(ValueError, match="EncoderDecoder.decode: argument 'tgt_mask'"):
        m(np.array([3, 4]), np.array([1]), tgt_mask=np.array([1]))
    with pytest.raises(ValueError, match="EncoderDecoder.decode: argument 'src_mask'"):
        m.decode(np.array([1]), m.encode(np.array([3, 4])), src_mask=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"EncoderDecoder.greedy_decode: argument 'eos_id' must "
                                         r"hold ids in \[0, 10\)"):
        m.greedy_decode(np.array([3]), 1, 10, 4)
    with pytest.raises(ValueError, match="EncoderDecoder.greedy_decode: argument 'max_len'"):
        m.greedy_decode(np.array([3]), 1, 2, 0)
    with pytest.raises(ValueError, match="EncoderDecoder.greedy_decode: argument 'src'"):
        m.greedy_decode(np.array(3), 1, 2, 3)
    with pytest.raises(ValueError, match="EncoderDecoder.init: argument 'rng' is required"):
        EncoderDecoder.init(None, SRC, TGT, D, H, F, 1)
    with pytest.raises(ValueError, match="EncoderDecoder.init: argument 'tgt_vocab'"):
        EncoderDecoder.init(0, SRC, 0, D, H, F, 1)
    with pytest.raises(ValueError, match="EncoderDecoder.init: argument 'pos_base'"):
        EncoderDecoder.init(0, SRC, TGT, D, H, F, 1, pos_base=0.0)


# ----------------------------------------------------------------------------- NET-75


def test_net75_prefix_lm_inputs_layout():
    inputs, targets, mask = prefix_lm_inputs(np.array([5, 6, 7]), np.array([8, 9]))
    assert inputs.tolist() == [5, 6, 7, 8] and targets.tolist() == [6, 7, 8, 9]
    assert mask.tolist() == [False, False, True, True]
    inputs, targets, mask = prefix_lm_inputs([], [8, 2], bos_id=1)
    assert inputs.tolist() == [1, 8] and targets.tolist() == [8, 2] and mask.all()


def test_net75_target_log_likelihood_is_a_sum_of_next_token_terms():
    """NET-75: Σ_i loss_mask_i log π_i[targets_i] over one causal pass on prompt ⊕ target equals
    Σ_k log p(y_k | prompt, y_{<k}) computed by separate calls on each prefix (NET-65 terms),
    and log p(prompt ⊕ target) − log p(prompt)."""
    rng = np.random.default_rng(0)
    lm = DecoderLM.init(3, 12, 8, 2, 16, 2, 12)
    lm = lm.replace(embed=lm.embed.replace(table=rng.normal(size=(12, 8))))
    prompt, target = np.array([3, 4, 5, 6]), np.array([7, 8, 9, 2])
    inputs, targets, mask = prefix_lm_inputs(prompt, target, bos_id=1)
    logp = np.asarray(log_softmax(lm(inputs), axis=-1))
    one_pass = float((logp[np.arange(inputs.size), targets] * mask).sum())
    seq = np.concatenate([[1], prompt, target])
    sequential = 0.0
    for j in range(1 + prompt.size, seq.size):
        last = np.asarray(log_softmax(lm(seq[:j])[-1]))
        sequential += last[seq[j]]
    assert np.isclose(one_pass, sequential, rtol=0, atol=1e-10)
    full = float(sequence_log_likelihood(lm, seq))
    head = float(sequence_log_likelihood(lm, seq[:1 + prompt.size]))
    assert np.isclose(one_pass, full - head, rtol=0, atol=1e-10)
    # the prompt is under the causal mask too: prompt positions ignore the target tokens
    other = np.concatenate([[1], prompt, [9, 9, 9]])
    assert np.allclose(lm(other)[:prompt.size + 1], lm(inputs)[:prompt.size + 1], atol=1e-12)


def test_net75_prefix_lm_inputs_bad_input():
    with pytest.raises(ValueError, match="prefix_lm_inputs: argument 'target' must not be empty"):
        prefix_lm_inputs([1, 2], [])
    with pytest.raises(ValueError, match="prefix_lm_inputs: an empty 'prompt' needs a 'bos_id'"):
        prefix_lm_inputs([], [3])
    with pytest.raises(ValueError, match="prefix_lm_inputs: 'prompt' and 'target' must be 1-D"):
        prefix_lm_inputs([[1, 2]], [3])
    with pytest.raises(TypeError, match="prefix_lm_inputs: argument 'target'"):
        prefix_lm_inputs([1], [2.5])
    with pytest.raises(ValueError, match="prefix_lm_inputs: argument 'prompt'"):
        prefix_lm_inputs([-1], [2])


def test_net74_cached_decoding_projects_the_encoder_output_once(monkeypatch):
    """The cross-attention keys/values of the encoder output are projected once per layer, not
    at every decoding step; attending to them equals cross-attention to the context."""
    from diffprog.nn.attention import MultiHeadAttention

    m = _model()
    src = np.array([[3, 4, 5, 6, 2], [6, 5, 4, 3, 2]])
    mha = m.decoder.layers[0].cross_attn
    h = m.encode(src)
    x = np.random.default_rng(0).normal(size=(2, 3, m.d_model))
    valid = np.array([[True] * 5, [True, True, True, False, False]])[:, None, :]
    np.testing.assert_allclose(mha.attend_context(x, *mha.project_context(h), mask=valid),
                               mha(x, h, mask=valid), atol=1e-13)
    calls = {"project": 0, "attend": 0}
    project, attend = MultiHeadAttention.project_context, MultiHeadAttention.attend_context

    def counting_project(self, *a, **k):
        calls["project"] += 1
        return project(self, *a, **k)

    def counting_attend(self, *a, **k):
        calls["attend"] += 1
        return attend(self, *a, **k)

    monkeypatch.setattr(MultiHeadAttention, "project_context", counting_project)
    monkeypatch.setattr(MultiHeadAttention, "attend_context", counting_attend)
    tokens = m.greedy_decode(src, 1, 2, 6)
    steps = tokens.shape[-1] - 1
    layers = len(m.decoder.layers)
    assert calls == {"project": layers, "attend": steps * layers}
