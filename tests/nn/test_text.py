"""Text utilities: vocabulary and padding (NET-55; book §4.8.6).

The model-level half of NET-55 (padded outputs equal unpadded ones with the key-padding mask)
is in test_encoder.py, next to the model it runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffprog.nn.text import SPECIAL_TOKENS, Vocabulary, check_ids, pad_sequences

ALPHABET = "abcdefghij .,"


# ----------------------------------------------------------------------------- Vocabulary


def test_net55_special_tokens_have_distinct_fixed_ids():
    """NET-55: BOS, EOS, PAD, CLS, SEP, MASK are distinct ids below the ordinary symbols."""
    v = Vocabulary("xyz")
    ids = [v.pad_id, v.bos_id, v.eos_id, v.cls_id, v.sep_id, v.mask_id, v.unk_id]
    assert len(set(ids)) == len(ids) == len(SPECIAL_TOKENS)
    assert sorted(ids) == list(v.special_ids)
    assert [v.symbols[i] for i in ids] == ["<pad>", "<bos>", "<eos>", "<cls>", "<sep>",
                                           "<mask>", "<unk>"]
    assert v.encode("xyz").tolist() == [7, 8, 9]
    assert len(v) == v.size == 10


@given(st.text(alphabet=ALPHABET, max_size=30), st.booleans(), st.booleans())
def test_net55_encode_decode_roundtrip(text, bos, eos):
    """NET-55: decode(encode(s)) == s at the character level, with or without BOS/EOS."""
    v = Vocabulary(ALPHABET)
    ids = v.encode(text, add_bos=bos, add_eos=eos)
    assert ids.dtype == np.int64
    assert ids.size == len(text) + bos + eos
    if bos:
        assert ids[0] == v.bos_id
    if eos:
        assert ids[-1] == v.eos_id
    assert v.decode(ids) == text
    # one id per character, and equal characters get equal ids
    body = ids[int(bos):ids.size - int(eos)]
    for i in range(len(text)):
        for j in range(len(text)):
            assert (body[i] == body[j]) == (text[i] == text[j])


def test_net55_decode_keeps_special_tokens_on_request():
    v = Vocabulary.from_text("ba")
    assert v.symbols[7:] == ("a", "b")
    assert v.decode([3, 7, 4, 8, 5], skip_special=False) == "<cls>a<sep>b<mask>"
    assert v.decode([3, 7, 4, 8, 5]) == "ab"


def test_net55_unknown_characters():
    v = Vocabulary("ab")
    with pytest.raises(ValueError, match="Vocabulary.encode.*'c'"):
        v.encode("abc")
    assert v.encode("abc", unknown="unk").tolist() == [7, 8, v.unk_id]
    # the text of a special token is not an ordinary symbol
    with pytest.raises(ValueError, match="Vocabulary.encode"):
        Vocabulary(["<"]).encode("<pad>")


def test_net55_vocabulary_bad_input():
    with pytest.raises(ValueError, match="Vocabulary.*repeat"):
        Vocabulary("aba")
    with pytest.raises(ValueError, match="Vocabulary.*single characters"):
        Vocabulary(["ab"])
    with pytest.raises(TypeError, match="Vocabulary.from_text"):
        Vocabulary.from_text(["a"])
    with pytest.raises(TypeError, match="Vocabulary.encode"):
        Vocabulary("a").encode(3)
    with pytest.raises(ValueError, match="unknown"):
        Vocabulary("a").encode("a", unknown="skip")
    with pytest.raises(ValueError, match=r"Vocabulary.decode.*\[0, 8\)"):
        Vocabulary("a").decode([8])
    with pytest.raises(TypeError, match="Vocabulary.decode"):
        Vocabulary("a").decode([1.0])


def test_check_ids():
    assert check_ids(np.array([[0, 1]], np.int32), 2, "f").dtype == np.int64
    with pytest.raises(ValueError, match=r"g: argument 'ids' must hold ids in \[0, 3\)"):
        check_ids([0, 3], 3, "g", "ids")
    with pytest.raises(ValueError, match="g"):
        check_ids([-1], 3, "g")
    with pytest.raises(TypeError, match="integer"):
        check_ids([0.5], 3, "g")


# ----------------------------------------------------------------------------- padding


@given(st.lists(st.lists(st.integers(1, 50), max_size=6), min_size=1, max_size=5),
       st.integers(0, 3))
def test_net55_pad_sequences_brute_force(seqs, extra):
    """NET-55: every real token is kept in place, every other cell is PAD, mask = real."""
    L = max(len(s) for s in seqs) + extra
    if L == 0:
        L = 1
    tokens, valid = pad_sequences(seqs, L, pad_id=0)
    assert tokens.shape == valid.shape == (len(seqs), L)
    assert valid.dtype == bool
    for b, s in enumerate(seqs):
        for i in range(L):
            if i < len(s):
                assert valid[b, i] and tokens[b, i] == s[i]
            else:
                assert not valid[b, i] and tokens[b, i] == 0


def test_net55_pad_sequences_options_and_errors():
    tokens, valid = pad_sequences([[1, 2, 3], [4]])
    assert tokens.shape == (2, 3)
    tokens, valid = pad_sequences([[1, 2, 3], [4]], 2, pad_id=9, truncate=True)
    assert tokens.tolist() == [[1, 2], [4, 9]] and valid.tolist() == [[True, True], [True, False]]
    with pytest.raises(ValueError, match=r"pad_sequences: seqs\[0\] has length 3 > L=2"):
        pad_sequences([[1, 2, 3]], 2)
    with pytest.raises(ValueError, match="pad_sequences.*at least one"):
        pad_sequences([], 3)
    with pytest.raises(ValueError, match=r"pad_sequences: seqs\[1\] must be a 1-D"):
        pad_sequences([[1], [[1, 2]]], 3)
    with pytest.raises(ValueError, match=r"pad_sequences: seqs\[0\].*integer"):
        pad_sequences([[1.5]], 3)
    with pytest.raises(ValueError, match="pad_sequences: argument 'L' must be >= 1"):
        pad_sequences([[1]], 0)
    with pytest.raises(TypeError, match="pad_sequences: argument 'pad_id'"):
        pad_sequences([[1]], 2, pad_id=0.0)
    with pytest.raises(TypeError, match="pad_sequences"):
        pad_sequences("abc", 2)
