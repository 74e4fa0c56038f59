"""Reuse of large freed buffers (book §8.3.3: a gradient should cost a small constant times the
function, and fresh memory is part of that cost).

Every NumPy operation allocates its result. glibc's ``malloc`` serves large requests (above a
threshold that it raises adaptively, up to 32 MiB) with ``mmap`` and gives them back to the
system on ``free``, so the next allocation of the same size page-faults on every 4 KiB page it
touches. A training step of a Transformer allocates and frees hundreds of multi-megabyte
activations; measured on the character model of ``examples/char_transformer.py``, the page
faults cost 10–20% of the step (``benchmarks/transformer_step.py``). PyTorch and JAX avoid them
with caching allocators.

At import, diffprog therefore asks glibc (through ``mallopt``) to serve requests up to 64 MiB
from the heap and to keep up to 512 MiB of free memory at its top instead of returning it at
once: freed activations are reused by the next step without page faults. The resident size of
the process can stay up to that much above its live data. Set the environment variable
``DIFFPROG_TUNE_MALLOC=0`` to leave ``malloc`` as it is; it is also left alone when the user has
set glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, and on other C
libraries (nothing happens where ``mallopt`` is not glibc's).
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_malloc", "APPLIED"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: whether :func:`tune_malloc` changed glibc's settings at import
APPLIED = False


def tune_malloc(mmap_threshold: int = 64 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Ask glibc to keep large freed blocks for reuse; ``True`` when the settings took effect.
    Book §8.3.3 (the cost of a gradient includes its memory traffic).

    Example::

        >>> isinstance(tune_malloc(), bool)
        True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
        bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


def _tune_at_import() -> bool:
    env = os.environ
    if env.get("DIFFPROG_TUNE_MALLOC", "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env:
        return False
    return tune_malloc()


APPLIED = _tune_at_import()
