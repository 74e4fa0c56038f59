"""Text as token ids: a character vocabulary with special tokens, and padding.

Book §4.8.6 (tokens ``x_i ∈ [M]`` with the special tokens BOS, EOS, PAD; PAD makes every
sequence of a batch the same length L) and §4.8.9 ([CLS], [SEP], [MASK]). Packing and LM
training windows are in :mod:`diffprog.nn.batching`.

Everything here is data preparation on concrete integer arrays (plain NumPy; nothing is
differentiated). Masks follow the attention convention of :mod:`diffprog.nn.attention`:
boolean, ``True`` = may attend / is a real token.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["SPECIAL_TOKENS", "Vocabulary", "check_ids", "pad_sequences"]

#: Special tokens, in id order: PAD = 0, BOS = 1, EOS = 2, CLS = 3, SEP = 4, MASK = 5, UNK = 6.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<cls>", "<sep>", "<mask>", "<unk>")


def _check_int(value: Any, fname: str, argname: str, low: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fname}: argument '{argname}' must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{fname}: argument '{argname}' must be >= {low}, got {value}")
    return int(value)


def check_ids(ids: Any, vocab_size: int, fname: str, argname: str = "tokens") -> np.ndarray:
    """``ids`` as an int64 array, after checking that every id lies in ``[0, vocab_size)``.
    Book §4.8.6 (tokens are ``x_i ∈ [M]``).

    Raises ``TypeError`` for non-integer ids and ``ValueError`` for ids out of range, naming
    ``fname`` and ``argname``.

    Example::

        >>> check_ids([0, 2, 1], 3, "f").tolist()
        [0, 2, 1]
    """
    arr = np.asarray(ids)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{fname}: argument '{argname}' must hold integer token ids, "
                        f"got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{fname}: argument '{argname}' must hold ids in [0, {vocab_size}), "
                         f"got values in [{arr.min()}, {arr.max()}]")
    return arr


def _as_sequences(seqs: Any, fname: str) -> list[np.ndarray]:
    if isinstance(seqs, np.ndarray) and seqs.ndim == 2:
        seqs = list(seqs)
    if isinstance(seqs, (str, bytes)) or not isinstance(seqs, Iterable):
        raise TypeError(f"{fname}: argument 'seqs' must be a sequence of 1-D integer sequences")
    out = []
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{fname}: seqs[{i}] must be a 1-D sequence of integer ids, "
                             f"got shape {a.shape} and dtype {a.dtype}")
        out.append(a.astype(np.int64))
    return out


class Vocabulary:
    """A character-level vocabulary ``[M] ↔ symbols`` with the special tokens of book §4.8.6
    (BOS, EOS, PAD) and §4.8.9 (CLS, SEP, MASK), plus UNK.

    Ids ``0..6`` are the special tokens (:data:`SPECIAL_TOKENS`: PAD = 0, BOS = 1, EOS = 2,
    CLS = 3, SEP = 4, MASK = 5, UNK = 6); the ordinary symbols follow in the order given.
    ``encode`` maps a string to ids one character at a time, ``decode`` maps back.

    Example::

        >>> v = Vocabulary.from_text("hello")
        >>> len(v), v.pad_id, v.mask_id
        (11, 0, 5)
        >>> ids = v.encode("hole", add_bos=True, add_eos=True)
        >>> ids.tolist()
        [1, 8, 10, 9, 7, 2]
        >>> v.decode(ids)
        'hole'
    """

    __slots__ = ("_symbols", "_index")

    def __init__(self, symbols: Iterable[str]) -> None:
        if isinstance(symbols, str):
            symbols = list(symbols)
        syms = list(symbols)
        for s in syms:
            if not isinstance(s, str) or len(s) != 1:
                raise ValueError(f"Vocabulary: argument 'symbols' must hold single characters, "
                                 f"got {s!r}")
        if len(set(syms)) != len(syms):
            raise ValueError("Vocabulary: argument 'symbols' must not repeat a character")
        self._symbols: tuple[str, ...] = SPECIAL_TOKENS + tuple(syms)
        self._index: dict[str, int] = {s: i for i, s in enumerate(self._symbols)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The vocabulary of the distinct characters of ``text``, sorted (book §4.8.6).

        Example::

            >>> Vocabulary.from_text("abba").symbols[-2:]
            ('a', 'b')
        """
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.from_text: argument 'text' must be a str, "
                            f"got {type(text).__name__}")
        return cls(sorted(set(text)))

    @property
    def symbols(self) -> tuple[str, ...]:
        """All tokens by id, special tokens first (book §4.8.6).

        Example::

            >>> Vocabulary("ab").symbols[0]
            '<pad>'
        """
        return self._symbols

    def __len__(self) -> int:
        return len(self._symbols)

    @property
    def size(self) -> int:
        """Vocabulary size ``M`` (book §4.8.6).

        Example::

            >>> Vocabulary("ab").size
            9
        """
        return len(self._symbols)

    pad_id = property(lambda self: 0, doc="Id of PAD (book §4.8.6).")
    bos_id = property(lambda self: 1, doc="Id of BOS (book §4.8.6).")
    eos_id = property(lambda self: 2, doc="Id of EOS (book §4.8.6).")
    cls_id = property(lambda self: 3, doc="Id of [CLS] (book §4.8.9).")
    sep_id = property(lambda self: 4, doc="Id of [SEP] (book §4.8.9).")
    mask_id = property(lambda self: 5, doc="Id of [MASK] (book §4.8.9).")
    unk_id = property(lambda self: 6, doc="Id of UNK, unknown characters (book §4.8.6).")

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Ids of the special tokens (book §4.8.6).

        Example::

            >>> Vocabulary("a").special_ids
            (0, 1, 2, 3, 4, 5, 6)
        """
        return tuple(range(len(SPECIAL_TOKENS)))

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False,
               unknown: str = "error") -> np.ndarray:
        """Character ids of ``text`` (book §4.8.6), optionally framed by BOS … EOS.

        ``unknown="error"`` raises on a character outside the vocabulary; ``"unk"`` maps it to
        UNK.

        Example::

            >>> Vocabulary("ab").encode("ba").tolist()
            [8, 7]
        """
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.encode: argument 'text' must be a str, "
                            f"got {type(text).__name__}")
        if unknown not in ("error", "unk"):
            raise ValueError(f"Vocabulary.encode: argument 'unknown' must be 'error' or 'unk', "
                             f"got {unknown!r}")
        ids = []
        for ch in text:
            i = self._index.get(ch)
            if i is None or i < len(SPECIAL_TOKENS):
                if unknown == "error":
                    raise ValueError(f"Vocabulary.encode: character {ch!r} is not in the "
                                     "vocabulary (pass unknown='unk' to map it to UNK)")
                i = self.unk_id
            ids.append(i)
        ids = [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Any, *, skip_special: bool = True) -> str:
        """The string of token ids (book §4.8.6). Special tokens are dropped
        (``skip_special=True``) or written as ``<eos>`` etc.

        Example::

            >>> v = Vocabulary("ab")
            >>> v.decode([1, 7, 8, 2]), v.decode([1, 7], skip_special=False)
            ('ab', '<bos>a')
        """
        arr = check_ids(ids, len(self), "Vocabulary.decode", "ids")
        if arr.ndim != 1:
            raise ValueError(f"Vocabulary.decode: argument 'ids' must be 1-D, got shape "
                             f"{arr.shape}")
        n_special = len(SPECIAL_TOKENS)
        return "".join(self._symbols[i] for i in arr.tolist()
                       if not (skip_special and i < n_special))

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, symbols={''.join(self._symbols[7:])!r})"


def pad_sequences(seqs: Sequence[Any], L: int | None = None, pad_id: int = 0, *,
                  truncate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad integer sequences to a common length ``L`` (book §4.8.6: PAD makes every
    sequence of length L). Returns ``(tokens, valid)``, both of shape ``(B, L)``; ``valid`` is
    the key-padding mask (``True`` at real tokens), so that padding never receives attention:
    as an attention mask use ``valid[:, None, :]`` (broadcast over queries).

    ``L=None`` uses the longest length. A sequence longer than ``L`` raises unless
    ``truncate=True`` (it is then cut to its first ``L`` tokens).

    Example::

        >>> tokens, valid = pad_sequences([[5, 6, 7], [8]], 4, pad_id=0)
        >>> tokens.tolist(), valid.tolist()
        ([[5, 6, 7, 0], [8, 0, 0, 0]], [[True, True, True, False], [True, False, False, False]])
    """
    fname = "pad_sequences"
    arrs = _as_sequences(seqs, fname)
    if not arrs:
        raise ValueError(f"{fname}: argument 'seqs' must contain at least one sequence")
    if L is None:
        L = max(a.size for a in arrs)
    L = _check_int(L, fname, "L", low=1)
    pad_id = _check_int(pad_id, fname, "pad_id")
    too_long = [i for i, a in enumerate(arrs) if a.size > L]
    if too_long and not truncate:
        raise ValueError(f"{fname}: seqs[{too_long[0]}] has length {arrs[too_long[0]].size} > "
                         f"L={L} (pass truncate=True to cut it)")
    tokens = np.full((len(arrs), L), pad_id, dtype=np.int64)
    valid = np.zeros((len(arrs), L), dtype=bool)
    for i, a in enumerate(arrs):
        n = min(a.size, L)
        tokens[i, :n] = a[:n]
        valid[i, :n] = True
    return tokens, valid
