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

A ``concatenate`` whose inputs are such products (or NumPy ufuncs), each used by it alone, is
elided the same way: the compiled program allocates the concatenation first and each producer
writes into its slice (``out=buf[..., lo:hi]``), so the pieces are never copied. This is what
makes one product on concatenated weights pay: ``x @ [W_q | W_k | W_v]`` split into the
queries, keys and values has, in the backward pass, the cotangent ``concatenate(dQ, dK, dV)``
of the split, whose pieces are the head-merging products of the attention.

Only the generated code changes: the traced program, which ``grad(jit(f))`` and ``vmap(jit(f))``
replay, keeps its plain ``matmul``, ``transpose``, ``reshape`` and ``concatenate`` equations.
"""

from __future__ import annotations

import numpy as np

from .ir import Var

__all__ = ["matmul_into_layout", "concat_targets"]


def matmul_into_layout(a: np.ndarray, b: np.ndarray, *, perm: tuple, swap: bool,
                       shape: tuple | None, out: np.ndarray | None = None) -> np.ndarray:
    """``reshape(transpose(a @ b, perm), shape)`` with the product written by BLAS into a fresh
    C-contiguous buffer of the result (``swap``: ``a @ b`` is computed as ``(bᵀ aᵀ)ᵀ``, ``perm``
    then applies to ``bᵀ aᵀ``), or into ``out`` (a view of the result's shape, e.g. a slice of
    a concatenation, which ``reshape`` must not copy). Book §8.3.3: the copy a reshape of the
    transposed product would make is memory traffic the product can avoid.

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
    layout = tuple(prod_shape[p] for p in perm)
    if out is None:
        buf = np.empty(layout, np.result_type(a, b))
        out = buf if shape is None else buf.reshape(shape)
    else:
        buf = out.reshape(layout)
    np.matmul(a, b, out=buf.transpose(np.argsort(perm)))
    return out


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


def _reshapes_as_view(view: np.ndarray, shape: tuple) -> bool:
    """Whether ``view.reshape(shape)`` is a view of ``view``'s memory (not a copy)."""
    r = view.reshape(shape)
    return r.size == 0 or np.shares_memory(r, view)


def concat_targets(prog, chains: dict, inplace: dict, outputs: set, readers: dict) -> dict:
    """(Used by :func:`diffprog.core.jit.compile_program`.)
    ``{k: [(producer equation index, slice index), ...]}`` for every ``concatenate`` equation
    ``k`` that can be elided: each input is a variable of the concatenation's dtype that this
    equation alone reads (``readers`` counts the equations reading each variable), not an
    output and not repeated, computed either by a layout chain of ``chains`` (its final
    variable; the permuted buffer of its product must be a view of the slice) or by a
    single-output NumPy ufunc without parameters that does not already write into an input
    (``inplace``). The producers then write into slices of one buffer allocated
    before the first of them, and the concatenation is that buffer."""
    maker: dict = {}
    for k, (final, _, perm, swap, shape) in chains.items():
        maker[final] = (k, perm, shape, swap)
    for k, eq in enumerate(prog.eqns):
        impl = eq.prim.impl
        if (type(eq.outvars) is Var and isinstance(impl, np.ufunc) and impl.nout == 1
                and not eq.params and k not in inplace):
            maker[eq.outvars] = (k, None, None, False)
    targets: dict = {}
    for k, eq in enumerate(prog.eqns):
        if eq.prim.name != "concatenate" or type(eq.outvars) is not Var:
            continue
        y = eq.outvars.value
        if not (isinstance(y, np.ndarray) and y.size and eq.inputs
                and len(set(map(id, eq.inputs))) == len(eq.inputs)):
            continue
        axis = eq.params["axis"]
        example = np.empty(y.shape, y.dtype)
        pieces, start = [], 0
        for a in eq.inputs:
            v = getattr(a, "value", None)
            if (type(a) is not Var or a in outputs or readers.get(a) != 1 or a not in maker
                    or not isinstance(v, np.ndarray) or v.dtype != y.dtype or v.ndim != y.ndim):
                break
            idx = (slice(None),) * axis + (slice(start, start + v.shape[axis]),)
            start += v.shape[axis]
            producer, perm, shape, swap = maker[a]
            if perm is not None:
                ps = prog.eqns[producer].outvars.value.shape
                if swap:
                    ps = ps[:-2] + (ps[-1], ps[-2])
                layout = tuple(ps[p] for p in perm)
                if shape is not None and not _reshapes_as_view(example[idx], layout):
                    break
            pieces.append((producer, idx))
        else:
            targets[k] = pieces
    return targets
