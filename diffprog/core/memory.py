"""Allocator settings for array-heavy differentiation (book §8.1.2: reverse mode's memory).

A reverse-mode pass allocates every intermediate and every cotangent afresh and frees them in a
burst when the step ends. With glibc's default (dynamic) thresholds, arrays of a few hundred
kilobytes and up are returned to the operating system on free and page-faulted back on the next
step, which can cost as much as the arithmetic (about 1 µs per 4 KiB page here; measured in
``benchmarks/``). Like the caching allocators of other frameworks, diffprog asks glibc to keep
freed memory for reuse: arrays below 32 MiB come from the heap, and up to 128 MiB of free heap
is kept instead of being trimmed. Larger arrays are still mapped and unmapped individually.

This is done once, at import, on Linux with glibc only. Set the environment variable
``DIFFPROG_MALLOC_TUNING=0`` before importing diffprog to leave the allocator untouched.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["tune_malloc", "MALLOC_TUNED"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc(trim_threshold: int = 128 * 2**20, mmap_threshold: int = 32 * 2**20) -> bool:
    """Raise glibc's trim and mmap thresholds (see the module docstring); True on success.

    Example::

        >>> isinstance(tune_malloc(), bool)
        True
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
        ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
    except (OSError, AttributeError):
        return False
    return bool(ok_trim and ok_mmap)


MALLOC_TUNED = False
if os.environ.get("DIFFPROG_MALLOC_TUNING", "1") != "0":
    MALLOC_TUNED = tune_malloc()
