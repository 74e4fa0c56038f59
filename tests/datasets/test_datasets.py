"""The bundled public-domain corpus and its statistics (book §3.4.3 entropy, §4.8.8 LM data)."""

from __future__ import annotations

import collections
import math

import pytest

from diffprog.datasets import load_text, split_text, unigram_entropy


def test_bundled_text_is_the_king_james_genesis_and_exodus():
    text = load_text()
    assert text.startswith("The First Book of Moses, called Genesis\n\nIn the beginning God "
                           "created the heaven and the earth.\n")
    assert "The Second Book of Moses, called Exodus" in text
    assert len(text.encode("utf-8")) <= 1_000_000        # the size limit
    assert text.isascii()


def test_unigram_entropy_matches_brute_force_count():
    text = load_text()
    n = len(text)
    brute = -sum(c / n * math.log(c / n) for c in collections.Counter(text).values())
    assert unigram_entropy(text) == pytest.approx(brute, rel=1e-12)
    assert unigram_entropy("aaaa") == 0.0
    assert unigram_entropy("abcd") == pytest.approx(math.log(4))


def test_split_keeps_every_character_in_order():
    text = load_text()
    train, val = split_text(text, 0.1)
    assert train + val == text
    assert len(val) == pytest.approx(0.1 * len(text), abs=1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="load_text: argument 'name'"):
        load_text("moby_dick")
    with pytest.raises(ValueError, match="split_text: argument 'validation_fraction'"):
        split_text("abc", 1.5)
    with pytest.raises(ValueError, match="unigram_entropy"):
        unigram_entropy("")
