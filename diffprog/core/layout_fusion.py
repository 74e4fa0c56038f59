"""Matrix products written straight into the layout their consumers ask for (book §8.3.3: memory
traffic is part of a program's cost).

Multi-head attention multiplies per-head stacks ``(batch, heads, length, d)`` and merges the heads
back with ``transpose(0, 2, 1, 3)`` and ``reshape(batch, length, heads·d)``; the transposed
view is not contiguous, so the reshape copies it, in the forward pass and twice more per layer in
the backward pass (where the gradient of a transposed operand also comes out transposed).
A compiled program (:func:`diffprog.jit`) instead allocates the final buffer and has BLAS write
the product into its permuted view: ``np.matmul(a, b, out=buf.transpose(perm⁻¹))``. When the
permutation swaps the two matrix axes, the product is computed as ``(AB)ᵀ = BᵀAᵀ`` so that the
result's rows stay rows of the buffer.

Only the generated code changes: the traced program, which ``grad(jit(f))`` and ``vmap(jit(f))``
replay, keeps its plain ``matmul``, ``transpose`` and ``reshape`` equations.
"""

from __future__ import annotations

import numpy as np

from .ir import Var

__all__ = ["matmul_into_layout"]


def matmul_into_layout(a: np.ndarray, b: np.ndarray, *, perm: tuple, swap: bool,
                       shape: tuple | None) -> np.ndarray:
    """``reshape(transpose(a @ b, perm), shape)`` with the product written by BLAS into a fresh
    C-contiguous buffer of the result (``swap``: ``a @ b`` is computed as ``(bᵀ aᵀ)ᵀ``, ``perm``
    then applies to ``bᵀ aᵀ``). Book §8.3.3: the copy a reshape of the transposed product would
    make is memory traffic the product can avoid.

    Example::

        >>> import numpy as np
        >>> p, v = np.ones((2, 3, 4, 4)), np.ones((2, 3, 4, 5))
        >>> y = matmul_into_layout(p, v, perm=(0, 2, 1, 3), swap=False, shape=(2, 4, 15))
        >>> y.shape, y.flags.c_contiguous, float(y[0, 0, 0])
        ((2, 4, 15), True, 4.0)
    """
    if swap:
        a, b = np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2)
    prod_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    buf = np.empty(tuple(prod_shape[p] for p in perm), np.result_type(a, b))
    np.matmul(a, b, out=buf.transpose(np.argsort(perm)))
    return buf if shape is None else buf.reshape(shape)


def _compose(first: tuple, then: tuple) -> tuple:
    """``x.transpose(first).transpose(then) == x.transpose(_compose(first, then))``."""
    return tuple(first[i] for i in then)


def layout_chains(prog, outputs: set, last_use: dict) -> dict:
    """(Used by :func:`diffprog.core.jit.compile_program`.)
    ``{k: (final var, skipped equation indices, perm, swap, shape)}`` for every ``matmul``
    equation ``k`` whose result is only transposed (one or more times, then at most one
    reshape) by single-use equations, where the composed permutation leaves the product's
    columns (or, swapping the product, its rows) on the last axis and the traced transposed
    value is not contiguous (a reshape would copy it, or
    its consumers would read it strided). Both operands must be stacks of matrices of one float
    dtype and the same rank, so NumPy runs the product as BLAS calls on the stack either way."""
    users: dict = {}
    for k, eq in enumerate(prog.eqns):
        for a in eq.inputs:
            if type(a) is Var:
                users.setdefault(a, []).append(k)
    chains: dict = {}
    for k, eq in enumerate(prog.eqns):
        if eq.prim.name != "matmul" or type(eq.outvars) is not Var or len(eq.inputs) != 2:
            continue
        a, b = (getattr(x, "value", x) for x in eq.inputs)
        y = eq.outvars.value
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and isinstance(y, np.ndarray) and a.ndim == b.ndim >= 3
                and a.dtype == b.dtype and a.dtype.kind == "f"):
            continue
        n = y.ndim
        perm, skipped, var, shape = tuple(range(n)), [], eq.outvars, None
        while var not in outputs and len(users.get(var, ())) == 1 and shape is None:
            nxt = users[var][0]
            user = prog.eqns[nxt]
            if user.dynamic or type(user.outvars) is not Var or last_use.get(var) != nxt:
                break
            if user.prim.name == "transpose":
                perm = _compose(perm, tuple(user.params["axes"]))
            elif user.prim.name == "reshape" and skipped:
                shape = tuple(user.params["shape"])
            else:
                break
            skipped.append(nxt)
            var = user.outvars
        if not skipped or perm == tuple(range(n)):
            continue
        swap = perm[-1] == n - 2                  # the rows would land on the last axis
        if swap:
            perm = _compose(tuple(range(n - 2)) + (n - 1, n - 2), perm)
        if perm[-1] != n - 1:                     # BLAS writes rows of unit-stride columns
            continue
        transposed = prog.eqns[skipped[-1] if shape is None else skipped[-2]].outvars.value
        if isinstance(transposed, np.ndarray) and transposed.flags.c_contiguous:
            continue
        chains[k] = (var, skipped, perm, swap, shape)
    return chains
