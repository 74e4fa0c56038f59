"""Decoder-only language model (book §4.8.8, NET-62..65, 67, 68): brute-force probabilities,
sequential vs teacher-forced likelihoods, untied vs tied gradients, sampling statistics, and
KV-cache decoding against full recomputation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import diffprog
from diffprog.nn import count_params
from diffprog.nn.language_model import DecoderLM, sequence_log_likelihood, token_cross_entropy

POSITIONAL = ["learned", "sinusoidal", "rope"]


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def small_lm(positional="learned", norm="pre", tie=False, seed=0, M=5, context=6, dtype=None):
    kw = {} if dtype is None else {"dtype": dtype}
    return DecoderLM.init(seed, M, 8, 2, 16, 2, context, norm=norm, tie_weights=tie,
                          positional=positional, std=0.5, **kw)


# ----------------------------------------------------------------------------- NET-63


@pytest.mark.parametrize("positional", POSITIONAL)
def test_net63_next_token_distribution_and_brute_force(positional):
    M, bos = 3, 0
    lm = DecoderLM.init(1, M, 8, 2, 16, 1, 4, positional=positional, std=1.0)
    p = np.exp(np_log_softmax(lm(np.array([bos, 1, 2]))))
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-14)
    total = 0.0
    for x1, x2 in itertools.product(range(M), repeat=2):
        total += np.exp(sequence_log_likelihood(lm, np.array([bos, x1, x2])))
    assert abs(total - 1.0) < 1e-12


@pytest.mark.parametrize("positional", POSITIONAL)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_net62_causality(positional, norm):
    lm = small_lm(positional, norm)
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 5, size=(2, 6))
    for t in range(5):
        other = toks.copy()
        other[:, t + 1:] = (toks[:, t + 1:] + 1 + rng.integers(0, 3, size=(2, 5 - t))) % 5
        np.testing.assert_allclose(lm(toks)[:, :t + 1], lm(other)[:, :t + 1], atol=1e-14)
        assert not np.allclose(lm(toks)[:, t + 1:], lm(other)[:, t + 1:])


def test_net63_output_jacobian_is_block_lower_triangular():
    """NET-62: d logits_t / d input_s = 0 for s > t (Jacobian through the embeddings)."""
    lm = small_lm("sinusoidal")
    toks = np.array([1, 2, 3, 4])

    def logits_of_table(table):
        return lm.replace(embed=lm.embed.replace(table=table))(toks)

    J = diffprog.jacobian(logits_of_table)(lm.embed.table)  # (4, M, M, D)
    for t in range(4):
        later = np.setdiff1d(toks[t + 1:], toks[:t + 1])
        assert np.all(J[t][:, later] == 0.0)


def test_net63_errors():
    lm = small_lm()
    with pytest.raises(ValueError, match="context=6"):
        lm(np.zeros(7, int))
    with pytest.raises(TypeError, match="integer"):
        lm(np.zeros(3))
    with pytest.raises(ValueError, match="'positional'"):
        DecoderLM.init(0, 5, 8, 2, 16, 1, 4, positional="alibi")
    with pytest.raises(ValueError, match="'norm'"):
        DecoderLM.init(0, 5, 8, 2, 16, 1, 4, norm="mid")
    with pytest.raises(ValueError, match="even head dimension"):
        DecoderLM.init(0, 5, 6, 2, 16, 1, 4, positional="rope")
    with pytest.raises(ValueError, match="context"):
        DecoderLM.init(0, 5, 8, 2, 16, 1, 0)


# ----------------------------------------------------------------------------- NET-64


def test_net64_weight_tying_count_and_gradient():
    M, D = 5, 8
    untied = small_lm(tie=False, M=M)
    tied = small_lm(tie=True, M=M)
    assert count_params(untied) - count_params(tied) == M * D
    assert tied.head is None and tied.tie_weights
    # untied model evaluated at equal values: W^D = (W^E)ᵀ
    same = untied.replace(head=untied.head.replace(W=tied.embed.table.T.copy()),
                          embed=tied.embed, block=tied.block, ln_f=tied.ln_f, pos=tied.pos)
    toks = np.array([[0, 3, 1, 4, 2], [2, 2, 1, 0, 4]])
    np.testing.assert_allclose(same(toks), tied(toks), atol=1e-14)

    def loss(m):
        return -sequence_log_likelihood(m, toks).sum()

    g_tied = diffprog.grad(loss)(tied)
    g_untied = diffprog.grad(loss)(same)
    np.testing.assert_allclose(g_tied.embed.table, g_untied.embed.table + g_untied.head.W.T,
                               atol=1e-12)


# ----------------------------------------------------------------------------- NET-65


@pytest.mark.parametrize("positional", POSITIONAL)
def test_net65_teacher_forcing_equals_sequential(positional):
    lm = small_lm(positional)
    toks = np.array([0, 4, 1, 1, 3, 2, 4])
    one_pass = sequence_log_likelihood(lm, toks)
    sequential = sum(np_log_softmax(lm(toks[:k])[-1])[toks[k]] for k in range(1, 7))
    assert abs(one_pass - sequential) < 1e-10
    batch = np.stack([toks, toks[::-1]])
    np.testing.assert_allclose(sequence_log_likelihood(lm, batch),
                               [one_pass, sequence_log_likelihood(lm, toks[::-1])], atol=1e-12)


def test_net65_token_cross_entropy():
    assert abs(token_cross_entropy(np.zeros((4, 2)), np.array([0, 1, 1, 0])) - np.log(2)) < 1e-15
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(2, 3, 5)), rng.integers(0, 5, size=(2, 3))
    ref = -np.take_along_axis(np_log_softmax(logits), y[..., None], -1)[..., 0]
    assert abs(token_cross_entropy(logits, y) - ref.mean()) < 1e-14
    mask = np.array([[True, True, False], [True, False, False]])
    assert abs(token_cross_entropy(logits, y, mask) - ref[mask].mean()) < 1e-14
    g = diffprog.grad(token_cross_entropy)(logits, y)
    p = np.exp(np_log_softmax(logits))
    np.testing.assert_allclose(g, (p - np.eye(5)[y]) / 6, atol=1e-15)
    with pytest.raises(ValueError, match="token_cross_entropy: argument 'targets'"):
        token_cross_entropy(logits, y[:, :2])
    with pytest.raises(ValueError, match=r"lie in \[0, 5\)"):
        token_cross_entropy(logits, y + 5)
    with pytest.raises(TypeError, match="integer"):
        token_cross_entropy(logits, y.astype(float))
    with pytest.raises(ValueError, match="'mask'"):
        token_cross_entropy(logits, y, mask[:, :2])


def test_net65_masked_log_likelihood_ignores_padding():
    lm = small_lm()
    toks = np.array([[0, 3, 1, 2, 2], [0, 4, 2, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    ll = sequence_log_likelihood(lm, toks, mask)
    assert abs(ll[1] - sequence_log_likelihood(lm, toks[1, :3])) < 1e-12
    with pytest.raises(ValueError, match="at least 2"):
        sequence_log_likelihood(lm, np.array([0]))


@pytest.mark.parametrize("positional", POSITIONAL)
def test_jit_value_and_grad_equals_eager(positional):
    lm = small_lm(positional, tie=positional == "rope")
    toks = np.random.default_rng(1).integers(0, 5, size=(3, 7))

    def loss(m, x, y):
        return token_cross_entropy(m(x), y)

    f = diffprog.jit(diffprog.value_and_grad(loss))
    v_eager, g_eager = diffprog.value_and_grad(loss)(lm, toks[:, :-1], toks[:, 1:])
    v_jit, g_jit = f(lm, toks[:, :-1], toks[:, 1:])
    assert abs(v_jit - v_eager) < 1e-13
    for a, b in zip(diffprog.tree_leaves(g_jit), diffprog.tree_leaves(g_eager), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-13)
    # new data, same shapes: the compiled program is reused and follows the data
    toks2 = (toks + 1) % 5
    v2, _ = f(lm, toks2[:, :-1], toks2[:, 1:])
    assert abs(v2 - loss(lm, toks2[:, :-1], toks2[:, 1:])) < 1e-13
    assert f.trace_count == 1


def test_float32_model_stays_float32():
    lm = small_lm("rope", dtype=np.float32)
    assert {leaf.dtype for leaf in diffprog.tree_leaves(lm)} == {np.dtype(np.float32)}
    toks = np.array([[0, 1, 2, 3]])
    assert lm(toks).dtype == np.float32
    for pos in POSITIONAL:
        m = small_lm(pos, dtype=np.float32)
        v, g = diffprog.jit(diffprog.value_and_grad(
            lambda m, x: token_cross_entropy(m(x[:, :-1]), x[:, 1:])))(m, toks)
        assert np.asarray(v).dtype == np.float32
        assert {leaf.dtype for leaf in diffprog.tree_leaves(g)} == {np.dtype(np.float32)}
        logits, _ = m.decode_step(np.array([1]), m.init_cache((1,)))
        assert logits.dtype == np.float32


# ----------------------------------------------------------------------------- NET-67


def test_net67_sampling_is_deterministic_and_stops_at_eos():
    lm = small_lm()
    eos = 4
    a = lm.sample(7, np.array([0]), 20, eos_id=eos)
    b = lm.sample(np.random.default_rng(7), np.array([0]), 20, eos_id=eos)
    np.testing.assert_array_equal(a, b)
    assert len(a) <= 20
    hits = np.flatnonzero(a == eos)
    assert len(hits) == 0 and len(a) == 20 or hits[0] == len(a) - 1
    batch = lm.sample(3, np.zeros((50, 1), int), 12, eos_id=eos, pad_id=0)
    assert batch.shape[0] == 50 and batch.shape[1] <= 12
    ended = (batch == eos).any(1)
    assert ended.all() or batch.shape[1] == 12  # stops early only when every row has ended
    first_eos = {int(np.flatnonzero(row == eos)[0]) for row in batch[ended]}
    assert len(first_eos) > 1  # rows end at different steps
    for row in batch:
        hits = np.flatnonzero(row == eos)
        if len(hits):
            np.testing.assert_array_equal(row[hits[0] + 1:], 0)  # padded after EOS
    assert lm.sample(0, np.array([0]), 0).shape == (0,)


def test_net67_first_token_frequencies_within_3_sigma():
    lm = small_lm(seed=3)
    n = 40000
    first = lm.sample(11, np.zeros((n, 1), int), 1)[:, 0]
    pi = np.exp(np_log_softmax(lm(np.array([0]))[0]))
    freq = np.bincount(first, minlength=5) / n
    sigma = np.sqrt(pi * (1 - pi) / n)
    assert np.all(np.abs(freq - pi) <= 3 * sigma + 1e-12)


def test_net67_temperature_and_top_k():
    lm = small_lm(seed=4)
    n = 20000
    logits = lm(np.array([0]))[0]
    top2 = np.argsort(logits)[-2:]
    first = lm.sample(1, np.zeros((n, 1), int), 1, top_k=2, temperature=0.5)[:, 0]
    assert set(np.unique(first)) <= set(top2.tolist())
    z = logits[top2] / 0.5
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    freq = np.mean(first == top2[1])
    assert abs(freq - p[1]) <= 3 * np.sqrt(p[1] * (1 - p[1]) / n)
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(0, np.array([0]), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        lm.sample(0, np.array([0]), 3, top_k=6)
    with pytest.raises(ValueError, match="prompt"):
        lm.sample(0, np.array([9]), 3)
    with pytest.raises(ValueError, match="max_len"):
        lm.sample(0, np.array([0]), -1)


@pytest.mark.parametrize("positional", POSITIONAL)
def test_net67_greedy_sampling_matches_window_recomputation(positional):
    """NET-63/67: top_k=1 is greedy decoding; beyond the window the context is the last N
    tokens, in chronological order (the sampler switches from the KV cache to re-encoding the
    window), so probabilities never depend on tokens outside the window."""
    lm = small_lm(positional, seed=5, context=4)
    prompt = np.array([0, 3])
    out = lm.sample(0, prompt, 9, top_k=1)
    seq = list(prompt)
    for _ in range(9):
        seq.append(int(np.argmax(lm(np.array(seq[-4:]))[-1])))
    np.testing.assert_array_equal(out, seq[2:])
    long_prompt = np.array([0, 3, 1, 2, 4, 1])  # longer than the window
    out = lm.sample(0, long_prompt, 2, top_k=1)
    assert out[0] == np.argmax(lm(long_prompt[-4:])[-1])


# ----------------------------------------------------------------------------- NET-68


@pytest.mark.parametrize("positional", POSITIONAL)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_net68_kv_cache_equals_full_recomputation(positional, norm):
    lm = small_lm(positional, norm, tie=norm == "post")
    toks = np.random.default_rng(2).integers(0, 5, size=(3, 6))
    cache = lm.init_cache((3,))
    for t in range(6):
        logits, cache = lm.decode_step(toks[:, t], cache)
        np.testing.assert_allclose(logits, lm(toks[:, :t + 1])[:, -1], atol=1e-10)
        assert cache.length == t + 1 and cache.position == t + 1
    # prefill of a prefix then single steps agrees too
    logits, cache = lm.prefill(toks[:, :3])
    np.testing.assert_allclose(logits, lm(toks[:, :3]), atol=1e-10)
    logits, cache = lm.decode_step(toks[:, 3], cache)
    np.testing.assert_allclose(logits, lm(toks[:, :4])[:, -1], atol=1e-10)


def test_net68_cache_is_clipped_to_the_context_window():
    lm = small_lm("sinusoidal", context=3)
    cache = lm.init_cache()
    lengths = []
    for t in range(6):
        _, cache = lm.decode_step(t % 5, cache)
        lengths.append(cache.length)
    assert lengths == [1, 2, 3, 3, 3, 3] and cache.position == 6
    assert cache.keys[0].shape == (2, 3, 4)
    learned = small_lm("learned", context=3)
    cache = learned.init_cache()
    for t in range(3):
        _, cache = learned.decode_step(t, cache)
    with pytest.raises(ValueError, match="beyond the learned positional encoding"):
        learned.decode_step(0, cache)
    with pytest.raises(ValueError, match="batch shape"):
        learned.decode_step(np.array([0, 1]), learned.init_cache())
    with pytest.raises(TypeError, match="KVCache"):
        learned.prefill(np.array([0]), cache=(1, 2))


@pytest.mark.parametrize("positional", POSITIONAL)
def test_net63_attention_weights_are_causal(positional):
    lm = small_lm(positional, seed=6)
    toks = np.array([[0, 3, 1, 2], [4, 4, 2, 1]])
    for layer in (0, 1):
        A = lm.attention_weights(toks, layer=layer)
        assert A.shape == (2, 2, 4, 4)
        np.testing.assert_array_equal(np.triu(A, 1), 0.0)
        np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-14)
    # layer 0 of a pre-norm model: attention of LN₁(embedding + position)
    x = lm._input(toks, 0)
    first = lm.block.layers[0]
    expected = first.attn.attention_weights(first.ln1(x), mask=np.tri(4, dtype=bool),
                                            rope=positional == "rope")
    np.testing.assert_allclose(lm.attention_weights(toks), expected, atol=0)
    with pytest.raises(ValueError, match="'layer'"):
        lm.attention_weights(toks, layer=2)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_whole_decoder_lm_passes_check_grads(positional):
    """The full model (embedding, positions, causal block, head): the teacher-forced loss's
    derivatives w.r.t. every parameter against finite differences, both modes (NET-63/65)."""
    from diffprog.derivatives import check_grads

    lm = DecoderLM.init(1, 6, 4, 2, 8, 1, 5, positional=positional)
    tokens = np.array([[1, 4, 2, 5, 0]])

    def loss(model):
        return token_cross_entropy(model(tokens[:, :-1]), tokens[:, 1:])

    check_grads(loss, (lm,), order=1)


def test_learned_positional_encoding_passes_check_grads():
    from diffprog.derivatives import check_grads
    from diffprog.nn import LearnedPositionalEncoding

    pe = LearnedPositionalEncoding.init(0, 6, 3)
    w = np.random.default_rng(0).normal(size=(4, 3))
    check_grads(lambda p: (p(4, start=1) * w).sum() + (p(2) ** 2).sum(), (pe,), order=2)
