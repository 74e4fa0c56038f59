"""Real datasets shipped with diffprog (book ch. 4 examples need real data, not synthetic noise).

- ``genesis_exodus_kjv.txt``: the books of Genesis and Exodus in the King James Version (1611),
  whose copyright has long expired (public domain). 366,366 characters, 62 distinct characters.
  It was extracted from Debian's ``bible-kjv-text`` package (verse numbers removed, one verse per
  line, a blank line between chapters). It trains the character-level language model of
  ``examples/char_transformer.py``.

Handwritten digits come from scikit-learn's bundled copy (``sklearn.datasets.load_digits``), a
package dependency of the examples.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_text", "split_text", "unigram_entropy"]

_TEXTS = {"genesis_exodus_kjv": "genesis_exodus_kjv.txt"}


def load_text(name: str = "genesis_exodus_kjv") -> str:
    """The text of a bundled public-domain corpus (book §4.8.8 trains language models on text).

    Example::

        >>> load_text()[:26]
        'The First Book of Moses, c'
    """
    if name not in _TEXTS:
        raise ValueError(f"load_text: argument 'name' must be one of {sorted(_TEXTS)}, "
                         f"got {name!r}")
    return resources.files(__name__).joinpath(_TEXTS[name]).read_text(encoding="utf-8")


def split_text(text: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, validation)``: the last ``validation_fraction`` of the text is held out (book
    §3.2: the empirical risk on held-out data estimates the expected loss).

    Example::

        >>> split_text("abcdefghij", 0.2)
        ('abcdefgh', 'ij')
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("split_text: argument 'validation_fraction' must lie in (0, 1), "
                         f"got {validation_fraction}")
    cut = int(round(len(text) * (1.0 - validation_fraction)))
    return text[:cut], text[cut:]


def unigram_entropy(text: str) -> float:
    """Entropy in nats per character of the text's character frequencies, ``−Σ p log p`` (book
    §3.4.3): the loss of the best model that ignores context.

    Example::

        >>> round(unigram_entropy("abab"), 6) == round(float(np.log(2)), 6)
        True
    """
    if not text:
        raise ValueError("unigram_entropy: argument 'text' must not be empty")
    _, counts = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32),
                          return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())
