"""Instrumentation: call counters and a live-buffer (peak memory) probe (book §7.7, §8.1, §8.5).

``with profile() as p:`` counts every concrete primitive evaluation (``p.primitive_calls``) and
tracks the NumPy buffers those evaluations allocate while they stay alive: ``p.peak_buffers`` and
``p.peak_bytes`` are the largest number and size of simultaneously live buffers (book §8.1:
memory usage at step t is what the remaining steps still need; the cost is the maximum over t).
Only arrays that own their memory count (views such as reshapes share their base's memory).
Liveness is exact because CPython frees an array as soon as its last reference goes.

``count_calls(f)`` wraps a function with a call counter (Table 7.1 call counts).

The profiler is process-wide; profile one computation at a time.
"""

from __future__ import annotations

import functools
import weakref
from collections import Counter
from collections.abc import Callable

import numpy as np

from . import primitive

__all__ = ["profile", "Profile", "count_calls"]


class Profile:
    """Counters filled while a :func:`profile` block runs."""

    def __init__(self):
        self.primitive_calls: Counter = Counter()
        self.live_buffers = 0
        self.live_bytes = 0
        self.peak_buffers = 0
        self.peak_bytes = 0
        self._refs: dict[int, tuple] = {}

    @property
    def total_primitive_calls(self) -> int:
        return sum(self.primitive_calls.values())

    def _release(self, key, nbytes):
        if self._refs.pop(key, None) is not None:
            self.live_buffers -= 1
            self.live_bytes -= nbytes

    def run(self, prim, args, params):
        self.primitive_calls[prim.name] += 1
        out = prim.impl(*args, **params)
        for a in out if prim.multiple_results else (out,):
            if isinstance(a, np.ndarray) and a.base is None:
                key = id(a)
                if key in self._refs:
                    continue
                nbytes = a.nbytes
                self._refs[key] = (weakref.ref(a, lambda _r, k=key, n=nbytes: self._release(k, n)),)
                self.live_buffers += 1
                self.live_bytes += nbytes
                if self.live_buffers > self.peak_buffers:
                    self.peak_buffers = self.live_buffers
                if self.live_bytes > self.peak_bytes:
                    self.peak_bytes = self.live_bytes
        return out

    def __repr__(self):
        return (f"Profile(primitive_calls={self.total_primitive_calls}, "
                f"peak_buffers={self.peak_buffers}, peak_bytes={self.peak_bytes})")


class profile:
    """Context manager: ``with profile() as p: ...`` then read ``p.primitive_calls``,
    ``p.peak_buffers``, ``p.peak_bytes``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> with diffprog.profile() as p:
        ...     _ = dnp.sin(np.ones(3))
        >>> p.primitive_calls["sin"]
        1
    """

    def __enter__(self) -> Profile:
        if primitive.profiler is not None:
            raise RuntimeError("profile: a profile is already active (profiles do not nest)")
        self.p = Profile()
        primitive.profiler = self.p
        return self.p

    def __exit__(self, *exc):
        primitive.profiler = None
        return False


def count_calls(fn: Callable) -> Callable:
    """Wrap ``fn`` so that ``wrapped.calls`` counts its calls (book Table 7.1).

    Example::

        >>> f = count_calls(lambda x: x + 1)
        >>> _ = f(1); _ = f(2)
        >>> f.calls
        2
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        wrapped.calls += 1
        return fn(*args, **kwargs)

    wrapped.calls = 0
    return wrapped
