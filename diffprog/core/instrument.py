"""Instrumentation: call counters and a live-buffer (peak memory) probe (book §7.7, §8.1, §8.5).

``with profile() as p:`` measures a computation:

- ``p.primitive_calls``: evaluations of each primitive dispatched through the engine (rules
  that apply NumPy operators directly to plain arrays do not go through primitives);
- ``p.jvp_calls`` / ``p.vjp_calls``: applications of each primitive's JVP / VJP rule;
- ``p.peak_bytes``: the peak of memory allocated during the block and still live, measured with
  :mod:`tracemalloc` (which sees every NumPy buffer) — book §8.1: memory usage at step t is what
  the remaining steps still need, and the cost is the maximum over t; ``p.live_bytes`` is what
  is still allocated now;
- ``p.peak_buffers`` / ``p.live_buffers``: the number of arrays produced by dispatched
  primitives that are simultaneously alive (exact: CPython frees an array as soon as its last
  reference goes; views such as reshapes share their base's memory and do not count).

``count_calls(f)`` wraps a function with a call counter (Table 7.1 call counts).

The profiler is process-wide; profile one computation at a time.
"""

from __future__ import annotations

import functools
import tracemalloc
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
        self.jvp_calls: Counter = Counter()
        self.vjp_calls: Counter = Counter()
        self.peak_bytes = 0
        self._baseline = 0
        self.live_buffers = 0
        self.peak_buffers = 0
        self._refs: dict[int, tuple] = {}
        self._active = False

    @property
    def live_bytes(self) -> int:
        """Bytes allocated since the block started and still alive."""
        if self._active:
            return tracemalloc.get_traced_memory()[0] - self._baseline
        return self._final_live

    @property
    def total_primitive_calls(self) -> int:
        return sum(self.primitive_calls.values())

    def _release(self, key):
        if self._refs.pop(key, None) is not None:
            self.live_buffers -= 1

    def run(self, prim, args, params):
        self.primitive_calls[prim.name] += 1
        out = prim.impl(*args, **params)
        for a in out if prim.multiple_results else (out,):
            if isinstance(a, np.ndarray) and a.base is None:
                key = id(a)
                if key in self._refs:
                    continue
                self._refs[key] = (weakref.ref(a, lambda _r, k=key: self._release(k)),)
                self.live_buffers += 1
                if self.live_buffers > self.peak_buffers:
                    self.peak_buffers = self.live_buffers
        return out

    def __repr__(self):
        return (f"Profile(primitive_calls={self.total_primitive_calls}, "
                f"peak_buffers={self.peak_buffers}, peak_bytes={self.peak_bytes})")


class profile:
    """Context manager: ``with profile() as p: ...`` then read ``p.primitive_calls``,
    ``p.peak_buffers``, ``p.peak_bytes``. Book §7.7 and §8.1 (counting calls and live memory).

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
        p = self.p = Profile()
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        p._baseline = tracemalloc.get_traced_memory()[0]
        p._active = True
        primitive.profiler = p
        return p

    def __exit__(self, *exc):
        primitive.profiler = None
        p = self.p
        current, peak = tracemalloc.get_traced_memory()
        p.peak_bytes = peak - p._baseline
        p._final_live = current - p._baseline
        p._active = False
        if self._started:
            tracemalloc.stop()
        return False


def count_calls(fn: Callable) -> Callable:
    """Wrap ``fn`` so that ``wrapped.calls`` counts its calls (book Table 7.1). Book §7.7 and §8.1
    (counting calls and live memory).

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
