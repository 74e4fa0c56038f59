"""diffprog's malloc tuning: large freed buffers are reused instead of page-faulted again."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

_PROBE = """
import json, resource, numpy as np
import diffprog
from diffprog.core import allocator

def cycle():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):      # buffers of 4, 6, 8 and 10 MiB alive together, then all freed
        xs = [np.ones(s) for s in (1 << 19, 3 << 18, 1 << 20, 5 << 18)]
        del xs
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

cycle()                      # first touches of the heap
print(json.dumps({"applied": allocator.APPLIED, "faults": cycle()}))
"""


def _probe(**env_changes):
    env = dict(os.environ)
    for k in ("DIFFPROG_TUNE_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(k, None)
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _has_glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "gnu_get_libc_version")
    except OSError:
        return False


def test_tuning_is_applied_on_glibc_and_can_be_turned_off():
    assert _probe()["applied"] is _has_glibc()
    assert _probe(DIFFPROG_TUNE_MALLOC="0")["applied"] is False
    assert _probe(MALLOC_TRIM_THRESHOLD_="1000000")["applied"] is False   # the user's own


def test_freed_large_buffers_are_reused_without_page_faults():
    """Training steps allocate and free the same activations every step: with the tuning the
    second round touches no fresh page; glibc's default gives memory back and faults again."""
    tuned, plain = _probe()["faults"], _probe(DIFFPROG_TUNE_MALLOC="0")["faults"]
    if not _has_glibc():                       # nothing is tuned: both behave alike
        assert _probe()["applied"] is False
        return
    assert plain > 1000
    assert tuned * 20 < plain
