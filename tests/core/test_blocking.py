"""Cache-blocked evaluation (diffprog.core.blocking): blocks must reproduce the whole-array
kernel exactly, keep rows whole, and fall back to one call for operands it cannot split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprog.core.blocking import BLOCK_BYTES, run_blocked


def _affine(out, a, b):
    np.multiply(a, 3.0, out=out)
    out += b


def _row_softmax(out, a):          # needs whole rows: a reduction over the last axis
    np.subtract(a, a.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 300_000), st.integers(0, 2 ** 31 - 1))
def test_elementwise_blocks_equal_one_call(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    got = run_blocked(_affine, np.empty(n), (a, b))
    np.testing.assert_array_equal(got, 3.0 * a + b)


@pytest.mark.parametrize("shape", [(70_000, 3), (40, 50, 64), (3, 200_000)])
def test_row_blocks_keep_rows_whole(shape):
    a = np.random.default_rng(1).normal(size=shape)
    assert a.nbytes > BLOCK_BYTES                         # the blocked path runs
    got = run_blocked(_row_softmax, np.empty(shape), (a,), row_ndim=1)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), rtol=1e-15)


def test_counts_blocks_and_passes_extra_unsplit():
    calls = []

    def kernel(out, a, m):
        calls.append(out.shape)
        np.multiply(a, m, out=out)

    a = np.ones((4096, 64))                               # 2 MiB: 8 blocks of 512 rows
    m = np.arange(64.0)
    got = run_blocked(kernel, np.empty_like(a), (a,), row_ndim=1, extra=(m,))
    np.testing.assert_array_equal(got, np.broadcast_to(m, a.shape))
    assert len(calls) == a.nbytes // BLOCK_BYTES and all(c == (512, 64) for c in calls)


def test_falls_back_to_one_call_for_strided_or_broadcast_operands():
    calls = []

    def kernel(out, a, b):
        calls.append(out.shape)
        np.add(a, b, out=out)

    big = np.ones((600, 600))
    run_blocked(kernel, np.empty((600, 600)), (big.T, big))         # a transposed view
    run_blocked(kernel, np.empty((600, 600)), (np.ones(600), big))  # a broadcast operand
    assert calls == [(600, 600), (600, 600)]
