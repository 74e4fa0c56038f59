"""Public products of :mod:`diffprog.numpy`: matmul, dot, einsum, tensordot, outer, inner,
vdot, trace, kron (book §8.4.3, Example 8.3: linear maps and their adjoints)."""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from ._base import dtype_of, shape_of
from .contraction import einsum_p, matmul_p

__all__ = ["matmul", "dot", "einsum", "tensordot", "outer", "inner", "vdot", "trace", "kron"]


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``. For ``W ↦ W x`` the JVP is ``V x`` and the VJP ``u xᵀ`` (book Example 8.3).
    Book §8.4.3 (Example 8.3: linear maps and their adjoints).

    Example: ``matmul(np.eye(2), np.ones(2))`` → ``array([1., 1.])``.
    """
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        raise ValueError("matmul: operands must be at least 1-dimensional (use multiply)")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} are not aligned ({ka} != {kb})")
    return matmul_p.bind(a, b)


_LETTERS = string.ascii_letters


def _expand_ellipsis(spec: str, shapes: list[tuple]) -> str:
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins, out = spec, None
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand terms for {len(shapes)} operands")
    used = set(spec) - set(".,->")
    free = [c for c in _LETTERS if c not in used]
    ell_nd = 0
    for t, s in zip(terms, shapes, strict=True):
        if "..." in t:
            ell_nd = max(ell_nd, len(s) - (len(t) - 3))
    ell = "".join(free[:ell_nd])
    new_terms = []
    for t, s in zip(terms, shapes, strict=True):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_nd - k:])
        if len(t) != len(s):
            raise ValueError(f"einsum: term '{t}' does not match an operand of shape {s}")
        new_terms.append(t)
    if out is None:
        counts = {}
        for t in new_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return ",".join(new_terms) + "->" + out


def einsum(subscripts: str, *operands: Any) -> Any:
    """``numpy.einsum`` (explicit, implicit and ``...`` forms). Linear in each operand: the
    transpose with respect to one operand is another einsum (book §8.4.4).

    Example: ``einsum('ij,j->i', np.eye(2), np.ones(2))`` → ``array([1., 1.])``.
    """
    from .shape_ops import broadcast_to, diagonal

    if not isinstance(subscripts, str):
        raise TypeError("einsum: only the string form of subscripts is supported")
    spec = _expand_ellipsis(subscripts.replace(" ", ""), [shape_of(o) for o in operands])
    ins, out = spec.split("->")
    terms = ins.split(",")
    ops = list(operands)
    # reduce repeated letters inside one operand to a diagonal first
    for k, t in enumerate(terms):
        while len(set(t)) != len(t):
            c = next(ch for ch in t if t.count(ch) > 1)
            i = t.index(c)
            j = t.index(c, i + 1)
            ops[k] = diagonal(ops[k], 0, i, j)
            t = "".join(ch for n, ch in enumerate(t) if n not in (i, j)) + c
        terms[k] = t
    # broadcast size-1 dimensions explicitly
    sizes: dict[str, int] = {}
    for t, o in zip(terms, ops, strict=True):
        for c, n in zip(t, shape_of(o), strict=True):
            if n != 1:
                if sizes.get(c, n) != n:
                    raise ValueError(f"einsum: size mismatch for index '{c}'")
                sizes[c] = n
    for k, (t, o) in enumerate(zip(terms, ops, strict=True)):
        target = tuple(sizes.get(c, 1) for c in t)
        if shape_of(o) != target:
            ops[k] = broadcast_to(o, target)
    return einsum_p.bind(*ops, spec=",".join(terms) + "->" + out)


def dot(a: Any, b: Any) -> Any:
    """``numpy.dot``: inner product, matrix product, or sum over the last axis of ``a`` and the
    second-to-last of ``b``. Book §8.4.3. Example: ``dot(np.ones(2), np.ones(2))`` → ``2.0``."""
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return a * b
    if len(sb) <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([len(sa) - 1], [len(sb) - 2]))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """``numpy.tensordot`` via :func:`einsum`. Book §8.4.3 (Example 8.3: linear maps and their
    adjoints).

    Example: ``tensordot(np.ones((2, 3)), np.ones((3, 4)), 1).shape`` → ``(2, 4)``.
    """
    na, nb = len(shape_of(a)), len(shape_of(b))
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(na - axes, na))
        ax_b = list(range(axes))
    else:
        ax_a = [int(i) % na for i in np.atleast_1d(axes[0])]
        ax_b = [int(i) % nb for i in np.atleast_1d(axes[1])]
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b, strict=True):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in ax_a] + [c for j, c in enumerate(lb)
                                                             if j not in ax_b]
    return einsum("".join(la) + "," + "".join(lb) + "->" + "".join(out), a, b)


def outer(a: Any, b: Any) -> Any:
    """``numpy.outer`` of the flattened inputs. Example: ``outer([1., 2.], [1., 1.]).shape``
    → ``(2, 2)``. Book §8.4.3 (Example 8.3: linear maps and their adjoints)."""
    from .shape_ops import ravel, reshape

    return reshape(ravel(a), (-1, 1)) * reshape(ravel(b), (1, -1))


def inner(a: Any, b: Any) -> Any:
    """``numpy.inner``: sum over the last axes. Example: ``inner(np.ones(2), np.ones(2))`` → 2.
    Book §8.4.3 (Example 8.3: linear maps and their adjoints)."""
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return a * b
    return tensordot(a, b, axes=([len(sa) - 1], [len(sb) - 1]))


def vdot(a: Any, b: Any) -> Any:
    """``numpy.vdot``: ``Σ conj(a) b`` over flattened inputs. Example: ``vdot([1., 2.], [3., 4.])``
    → 11. Book §8.4.3 (Example 8.3: linear maps and their adjoints)."""
    from .reduce_ops import sum
    from .shape_ops import ravel
    from .ufuncs import conjugate

    a, b = ravel(a), ravel(b)
    if dtype_of(a).kind == "c":
        a = conjugate(a)
    return sum(a * b)


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``numpy.trace`` = sum of the diagonal (linear). Example: ``trace(np.eye(3))`` → 3.
    Book §8.4.3 (Example 8.3: linear maps and their adjoints)."""
    from .reduce_ops import sum
    from .shape_ops import diagonal

    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


def kron(a: Any, b: Any) -> Any:
    """``numpy.kron`` (bilinear). Example: ``kron(np.eye(2), np.ones((1, 2))).shape`` → (2, 4).
    Book §8.4.3 (Example 8.3: linear maps and their adjoints)."""
    from .shape_ops import reshape

    sa, sb = shape_of(a), shape_of(b)
    nd = max(len(sa), len(sb))
    sa = (1,) * (nd - len(sa)) + sa
    sb = (1,) * (nd - len(sb)) + sb
    a = reshape(a, tuple(x for n in sa for x in (n, 1)))
    b = reshape(b, tuple(x for n in sb for x in (1, n)))
    return reshape(a * b, tuple(p * q for p, q in zip(sa, sb, strict=True)))
