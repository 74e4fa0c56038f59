"""The character-level Transformer example (issue: its validation loss falls below the unigram
entropy of the text by at least 1 nat/char). Book §4.8.8.

The validation loss is recomputed here from the trained weights with a plain-NumPy forward pass
written from the book's equations (pre-norm layers, causal softargmax attention, tanh-GELU MLP),
independent of diffprog.nn's modules.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffprog.datasets import load_text, split_text, unigram_entropy
from diffprog.gallery.char_transformer import (
    GALLERY_STEPS,
    load_checkpoint,
    save_checkpoint,
    train_char_transformer,
    validation_loss,
)
from diffprog.nn import Vocabulary


def _layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _numpy_logits(model, tokens):
    """Forward pass of a pre-norm decoder-only Transformer (book Alg. 4.4, §4.8.8) in NumPy."""
    x = np.asarray(model.embed.table, np.float64)[tokens]
    L = tokens.shape[-1]
    x = x + np.asarray(model.pos.table, np.float64)[:L]
    causal = np.tril(np.ones((L, L), bool))
    for layer in model.block.layers:
        att = layer.attn
        H = att.num_heads
        z = _layer_norm(x, layer.ln1.gamma, layer.ln1.beta)

        def heads(W, z=z, H=H):
            y = z @ np.asarray(W, np.float64)
            return y.reshape(*y.shape[:-1], H, -1).swapaxes(-2, -3)

        q, k, v = heads(att.q_proj.W), heads(att.k_proj.W), heads(att.v_proj.W)
        s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
        s = np.where(causal, s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = (a @ v).swapaxes(-2, -3)
        x = x + y.reshape(*y.shape[:-2], -1) @ att.o_proj.W
        z = _layer_norm(x, layer.ln2.gamma, layer.ln2.beta)
        h = z @ layer.mlp.fc1.W
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
        x = x + h @ layer.mlp.fc2.W
    x = _layer_norm(x, model.ln_f.gamma, model.ln_f.beta)
    return x @ model.head.W


@pytest.fixture(scope="module")
def trained():
    return train_char_transformer(steps=GALLERY_STEPS, eval_every=100)


def test_validation_loss_beats_the_unigram_entropy_by_one_nat(trained):
    text = load_text()
    train, val = split_text(text, 0.1)
    h = unigram_entropy(train)
    vocab = Vocabulary(trained.symbols)
    ids = vocab.encode(val)
    ctx = trained.config["context"]
    n = (len(ids) - 1) // ctx
    x = ids[: n * ctx].reshape(n, ctx)
    y = ids[1: n * ctx + 1].reshape(n, ctx)
    logits = _numpy_logits(trained.model, x)
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
    nll = float(np.mean(lse - np.take_along_axis(logits, y[..., None], -1)[..., 0]))
    assert nll == pytest.approx(trained.val_loss[-1], rel=1e-4)
    assert nll == pytest.approx(validation_loss(trained.model, ids, ctx), rel=1e-4)
    assert nll < h - 1.0
    assert trained.train_loss[-20:].mean() < trained.train_loss[:5].mean() - 2.0


def test_samples_are_text_from_the_vocabulary(trained):
    vocab = Vocabulary(trained.symbols)
    out = trained.model.sample(0, vocab.encode("And God said"), 40, temperature=0.8)
    assert len(out) == 40
    assert set(vocab.decode(out)) <= set(trained.symbols)
    again = trained.model.sample(0, vocab.encode("And God said"), 40, temperature=0.8)
    np.testing.assert_array_equal(out, again)


def test_checkpoint_round_trip(trained, tmp_path):
    path = save_checkpoint(trained, tmp_path / "char.npz")
    back = load_checkpoint(path)
    assert back.symbols == trained.symbols and back.config == trained.config
    tokens = Vocabulary(back.symbols).encode("In the beginning")
    np.testing.assert_array_equal(np.asarray(back.model(tokens)),
                                  np.asarray(trained.model(tokens)))
    np.testing.assert_allclose(back.val_loss, trained.val_loss)
