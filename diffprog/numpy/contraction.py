"""Tensor contractions: ``matmul`` and ``einsum`` primitives (book §8.4.3, Example 8.3).

Both are linear in each operand. For ``W ↦ W x`` the JVP is ``V x`` and the VJP is ``u xᵀ``;
for ``W ↦ W X`` the VJP is ``U Xᵀ``. ``einsum`` handles every contraction through one rule: the
transpose with respect to operand ``k`` is again an einsum, of the cotangent with the other
operands, producing operand ``k``'s subscripts (then broadcast along the letters that only
operand ``k`` carried).
"""

from __future__ import annotations

import numpy as np

from ..core.primitive import Primitive
from ._base import is_undefined, shape_of
from .structural import broadcast_to_p, reshape_p, transpose_p, unbroadcast

__all__ = ["matmul_p", "einsum_p"]


def _swap(x):
    nd = len(shape_of(x))
    axes = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    return transpose_p.bind(x, axes=axes)


_nd = np.ndarray


def _sum_to(r, shape):
    """Plain-array unbroadcast (leading batch axes and size-1 axes)."""
    if r.shape == shape:
        return r
    lead = r.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and r.shape[lead + i] != 1)
    return np.add.reduce(r, axis=axes).reshape(shape)


#: stacks of products with ``m·n·k`` below this go through OpenBLAS's small-matrix kernels
_SMALL_PRODUCT = 1 << 20


def row_major_operand(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b``, copied to row-major matrices when ``a @ b`` is a stack of small products with
    ``a`` row-major and ``b`` column-major (a transposed view, as ``q @ kᵀ`` in attention) and
    ``k ≤ min(m, n)``: OpenBLAS runs that case about 1.6× slower than the all-row-major one,
    which pays for the copy of ``b`` (measured on 128 products of ``64×32 @ 32×64``: 0.47 ms
    against 0.36 ms with the copy). Book §8.3.3: the cost of a program includes its operands'
    layout.

    Example::

        >>> import numpy as np
        >>> k = np.ones((8, 64, 32), np.float32)
        >>> row_major_operand(np.ones((8, 64, 32), np.float32), k.swapaxes(-1, -2)).strides
        (8192, 256, 4)
    """
    if (a.ndim >= 3 and b.ndim >= 3 and a.dtype == b.dtype and a.dtype.char in "fd"
            and a.strides[-1] == a.itemsize and b.strides[-2] == b.itemsize
            and b.strides[-1] != b.itemsize and 0 not in b.strides[:-2]):   # no broadcast view
        m, k = a.shape[-2:]
        n = b.shape[-1]
        if k <= min(m, n) and m * n * k < _SMALL_PRODUCT:
            return np.ascontiguousarray(b)
    return b


def _matmul_impl(a, b):
    """``np.matmul``, with a stack of matrices times one matrix done as a single GEMM: for
    ``a (..., n, k) @ b (k, m)`` the rows of all the matrices of ``a`` form one ``(N, k)``
    matrix (one BLAS call instead of one per matrix of the stack); small stacked products take
    ``b`` row-major (:func:`row_major_operand`)."""
    if type(a) is _nd and type(b) is _nd:
        if a.ndim > 2 and b.ndim == 2:
            k = a.shape[-1]
            return np.matmul(a.reshape(-1, k), b).reshape(a.shape[:-1] + (b.shape[1],))
        b = row_major_operand(a, b)
    return np.matmul(a, b)


def _stack_rows(x):
    """``(..., n, k) → (N, k)`` (the rows of every matrix of the stack)."""
    s = shape_of(x)
    return reshape_p.bind(x, shape=(int(np.prod(s[:-1], dtype=np.int64)), s[-1]))


def _matmul_vjp_a(g, ans, a, b):
    if type(g) is _nd and type(b) is _nd and type(a) is _nd and b.ndim >= 2 and a.ndim >= 2:
        return _sum_to(_matmul_impl(g, b.swapaxes(-1, -2)), a.shape)
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:
        if len(sa) == 1:  # inner product
            return g * b
        # (..., n, k) @ (k,) -> (..., n)
        ga = reshape_p.bind(g, shape=shape_of(g) + (1,)) * b
        return unbroadcast(ga, sa)
    if len(sa) == 1:
        # (k,) @ (..., k, m) -> (..., m)
        ga = matmul_p.bind(b, reshape_p.bind(g, shape=shape_of(g) + (1,)))
        return unbroadcast(reshape_p.bind(ga, shape=shape_of(ga)[:-1]), sa)
    return unbroadcast(matmul_p.bind(g, _swap(b)), sa)


def _matmul_vjp_b(g, ans, a, b):
    if type(g) is _nd and type(a) is _nd and type(b) is _nd and b.ndim >= 2 and a.ndim >= 2:
        if b.ndim == 2 and a.ndim > 2:      # Σ over the stack of aᵀg: one GEMM of the rows
            ga = g.reshape(-1, g.shape[-1])
            return a.reshape(-1, a.shape[-1]).T @ ga
        return _sum_to(a.swapaxes(-1, -2) @ g, b.shape)
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 2 and len(sa) > 2 and shape_of(g)[:-2] == sa[:-2]:
        return matmul_p.bind(_swap(_stack_rows(a)), _stack_rows(g))
    if len(sa) == 1:
        if len(sb) == 1:
            return g * a
        # (k,) @ (..., k, m): gb[..., k, m] = a[k] g[..., m]
        gb = reshape_p.bind(a, shape=(sa[0], 1)) * reshape_p.bind(
            g, shape=shape_of(g)[:-1] + (1, shape_of(g)[-1])
        )
        return unbroadcast(gb, sb)
    if len(sb) == 1:
        # (..., n, k) @ (k,) -> (..., n): gb[k] = sum a[..., n, k] g[..., n]
        gb = matmul_p.bind(_swap(a), reshape_p.bind(g, shape=shape_of(g) + (1,)))
        return unbroadcast(reshape_p.bind(gb, shape=shape_of(gb)[:-1]), sb)
    return unbroadcast(matmul_p.bind(_swap(a), g), sb)


def _matmul_jvp(primals, tangents, ans):
    a, b = primals
    ta, tb = tangents
    out = None
    if ta is not None:
        out = matmul_p.bind(ta, b)
    if tb is not None:
        c = matmul_p.bind(a, tb)
        out = c if out is None else out + c
    if shape_of(out) != shape_of(ans):
        out = broadcast_to_p.bind(out, shape=shape_of(ans))
    return out


def _matmul_t(ct, a, b):
    if is_undefined(a) and is_undefined(b):
        raise TypeError("matmul: the product of two linear inputs is not linear")
    if is_undefined(a):
        return _matmul_vjp_a(ct, None, a, b), None
    return None, _matmul_vjp_b(ct, None, a, b)


matmul_p = Primitive("matmul", _matmul_impl, jvp=_matmul_jvp, vjps=(_matmul_vjp_a, _matmul_vjp_b),
                     transpose=_matmul_t)


# ----------------------------------------------------------------------------- einsum
def _einsum_impl(*ops, spec):
    return np.einsum(spec, *ops, optimize=len(ops) > 2)


def _parse(spec):
    ins, out = spec.split("->")
    return ins.split(","), out


def _einsum_jvp(primals, tangents, ans, *, spec):
    out = None
    for k, t in enumerate(tangents):
        if t is None:
            continue
        ops = list(primals)
        ops[k] = t
        c = einsum_p.bind(*ops, spec=spec)
        out = c if out is None else out + c
    return out


def _einsum_t(ct, *ops, spec):
    ins, out = _parse(spec)
    lin = [k for k, o in enumerate(ops) if is_undefined(o)]
    if len(lin) != 1:
        raise TypeError("einsum: not linear (several operands depend on the linear input)")
    k = lin[0]
    target = ins[k]
    others = [(ins[j], ops[j]) for j in range(len(ops)) if j != k]
    avail = set(out).union(*[set(s) for s, _ in others]) if others else set(out)
    present = "".join(c for c in target if c in avail)
    new_spec = ",".join([out] + [s for s, _ in others]) + "->" + present
    res = einsum_p.bind(ct, *[o for _, o in others], spec=new_spec)
    shape = ops[k].shape
    if present != target:
        sizes = dict(zip(target, shape, strict=True))
        # insert missing axes (size 1) then broadcast
        kshape = tuple(sizes[c] if c in avail else 1 for c in target)
        order = [c for c in target if c in avail]
        perm = [order.index(c) for c in present]
        if perm != sorted(perm):
            res = transpose_p.bind(res, axes=tuple(int(i) for i in np.argsort(perm)))
        res = reshape_p.bind(res, shape=kshape)
        res = broadcast_to_p.bind(res, shape=shape)
    out_list = [None] * len(ops)
    out_list[k] = res
    return tuple(out_list)


einsum_p = Primitive("einsum", _einsum_impl, jvp=_einsum_jvp, transpose=_einsum_t)
