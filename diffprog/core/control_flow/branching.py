"""``cond`` and ``switch``: if-else and else-if as differentiable primitives (book §5.6–5.7).

The derivative with respect to the predicate or index is zero (book §5.6.2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ir import Var
from ..primitive import Primitive, Tracer
from ..pytree import tree_flatten
from .subprograms import (
    SubProgram,
    _active,
    _as_operand,
    _aval,
    _batch_program,
    _batch_size,
    _broadcast_batch,
    _check_callable,
    _dummy_ids,
    _example,
    _inexact,
    _is_concrete,
    _jvp_program,
    _make_transpose,
    _moveaxis,
    _select,
    _to_front,
    _trace_flat,
    _vjp_program,
    _walk,
)


def _cond_index_impl(x, *, num_branches, is_pred):
    v = np.asarray(x)
    if is_pred:
        return (v != 0).astype(np.int64)
    return np.clip(v, 0, num_branches - 1).astype(np.int64)


cond_index_p = Primitive("cond_index", _cond_index_impl, nondiff=True, register=False)


def _cond_impl(index, *args, branches):
    return tuple(branches[int(index)].runner()(*args))


def _cond_jvp(primals, tangents, ans, *, branches):
    index, args = primals[0], primals[1:]
    tans = tangents[1:]
    nz = [t is not None and _inexact(a) for a, t in zip(args, tans, strict=True)]
    if not any(nz):
        return (None,) * len(ans)
    tz = [t for t, z in zip(tans, nz, strict=True) if z]
    if _is_concrete(index):  # the branch is known for this evaluation: differentiate it only
        jp, m = _jvp_program(branches[int(_walk(index))], nz, primal_outs=False,
                             context="cond (jvp)")
        it = iter(jp(*args, *tz))
        return tuple(next(it) if u else None for u in m)
    jps = [_jvp_program(p, nz, primal_outs=False, context="cond (jvp)") for p in branches]
    union = [any(m[j] for _, m in jps) for j in range(len(ans))]
    progs = []
    for p, (jp, m) in zip(branches, jps, strict=True):
        if m != union:
            jp, m = _jvp_program(p, nz, union, primal_outs=False, context="cond (jvp)")
        progs.append(jp)
    touts = cond_p.bind(index, *args, *tz, branches=tuple(progs))
    it = iter(touts)
    return tuple(next(it) if u else None for u in union)


def _cond_vjp(g, ans, argnums, index, *args, branches):
    diff = [False] * len(args)
    for i in argnums:
        if i > 0 and _inexact(args[i - 1]):
            diff[i - 1] = True
    g = list(g)
    g_mask = [c is not None and _inexact(a) for c, a in zip(g, ans, strict=True)]
    if not any(diff) or not any(g_mask):
        return [None] * len(argnums)
    gs = [c for c, m in zip(g, g_mask, strict=True) if m]
    if _is_concrete(index):  # the taken branch is known: differentiate it only
        cts = _vjp_program(branches[int(_walk(index))], diff, g_mask, "cond (vjp)")(*args, *gs)
    else:
        progs = tuple(_vjp_program(p, diff, g_mask, "cond (vjp)") for p in branches)
        cts = cond_p.bind(index, *args, *gs, branches=progs)
    it = iter(cts)
    full = [next(it) if d else None for d in diff]
    return [None if i == 0 else full[i - 1] for i in argnums]


cond_p = Primitive("cond", _cond_impl, jvp=_cond_jvp, multiple_results=True, register=False)


cond_p.vjp_joint = _cond_vjp


def _check_pred(fname: str, name: str, pred, integer: bool):
    if isinstance(pred, Tracer):
        s, d = _aval(pred)
    else:
        a = np.asarray(pred)
        s, d = a.shape, a.dtype
    if s != ():
        raise TypeError(
            f"{fname}: argument '{name}' must be a scalar, got an array of shape {s}"
            + ("" if integer else "; for elementwise selection use diffprog.numpy.where")
        )
    if integer and d.kind not in "iub":
        raise TypeError(f"{fname}: argument '{name}' must be an integer scalar, got dtype {d}")
    if not integer and d.kind not in "biuf":
        raise TypeError(
            f"{fname}: argument '{name}' must be a boolean (or real number) scalar, got dtype {d}"
        )


def _switch_impl(fname, index, branches, names, operands, is_pred):
    leaves, in_def = tree_flatten(tuple(operands))
    leaves = [_as_operand(fname, x, i) for i, x in enumerate(leaves)]
    n = len(branches)
    if not _active([index, *leaves]):
        v = np.asarray(index)
        i = int(v != 0) if is_pred else int(np.clip(v, 0, n - 1))
        return branches[i](*operands)
    examples = [_example(x) for x in leaves]
    progs, consts_list, out_defs, weaks = [], [], [], []
    for k, br in enumerate(branches):
        box = []

        def flat(*ins, br=br, box=box):
            out = br(*in_def.unflatten(list(ins)))
            ol, od = tree_flatten(out)
            box.append(od)
            return ol

        prog, consts, weak = _trace_flat(flat, examples, f"{fname} ({names[k]})")
        progs.append(prog)
        consts_list.append(consts)
        out_defs.append(box[0])
        weaks.append(weak)
    for k in range(1, n):
        if out_defs[k] != out_defs[0]:
            raise TypeError(
                f"{fname}: all branches must return the same pytree structure, but "
                f"{names[0]} returns {out_defs[0]} and {names[k]} returns {out_defs[k]}"
            )
    # weakly typed (Python scalar) outputs take the dtype of their counterparts
    n_out = len(progs[0].outputs)
    for j in range(n_out):
        avals = [p.out_avals()[j] for p in progs]
        strong = [a for a, w in zip(avals, weaks, strict=True) if not w[j]]
        target = strong[0][1] if strong else avals[0][1]
        for k, p in enumerate(progs):
            if weaks[k][j] and avals[k][1] != target:
                p.outputs[j] = np.asarray(p.outputs[j], dtype=target)
        s0, d0 = progs[0].out_avals()[j]
        for k in range(1, n):
            s, d = progs[k].out_avals()[j]
            if s != s0 or d != d0:
                raise TypeError(
                    f"{fname}: all branches must return the same shapes and dtypes, but output "
                    f"leaf {j} is {d0}{list(s0)} in {names[0]} and {d}{list(s)} in {names[k]}"
                )
    # one input list for every branch: operands, then the union of the closed-over values
    all_consts: list = []
    pos: dict = {}
    for consts in consts_list:
        for c in consts:
            if id(c) not in pos:
                pos[id(c)] = len(all_consts)
                all_consts.append(c)
    final = []
    n_ops = len(leaves)
    for prog, consts in zip(progs, consts_list, strict=True):
        cvars = prog.invars[:len(consts)]
        opvars = prog.invars[len(consts):]
        slots = [Var(next(_dummy_ids), _example(c)) for c in all_consts]
        for c, v in zip(consts, cvars, strict=True):
            slots[pos[id(c)]] = v
        final.append(SubProgram(list(opvars) + slots, prog.eqns, prog.outputs))
    assert all(len(p.invars) == n_ops + len(all_consts) for p in final)
    idx = cond_index_p.bind(index, num_branches=n, is_pred=is_pred)
    outs = cond_p.bind(idx, *leaves, *all_consts, branches=tuple(final))
    return out_defs[0].unflatten(list(outs))


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)`` (book §5.6).

    ``ifelse(π, v₁, v₀) = π·v₁ + (1 − π)·v₀`` with ``v₁ = true_fun(*operands)`` and
    ``v₀ = false_fun(*operands)`` (Eq. 5.3). It is linear in the branch values, so
    ``∂_{u₁} f = π·∂g₁(u₁)`` and ``∂_{u₀} f = (1 − π)·∂g₀(u₀)`` (§5.6.1); the derivative with
    respect to the predicate is zero (§5.6.2: the step function has a null derivative almost
    everywhere). ``pred`` is a boolean (or real: nonzero is true) scalar; the operands are
    pytrees. Evaluation is lazy: eagerly only the selected branch runs; under a transformation
    both branches are traced, must return the same structure, shapes and dtypes, and the
    result is one ``cond`` node whose JVP is the ``cond`` of the JVP'd branches and whose VJP
    runs the VJP of the taken branch only.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> f = lambda x: diffprog.cond(x > 0, dnp.sin, dnp.exp, x)
        >>> bool(diffprog.grad(f)(np.array(0.5)) == np.cos(0.5))   # true branch: sin' = cos
        True
        >>> bool(diffprog.grad(f)(np.array(-1.0)) == np.exp(-1.0))  # false branch: exp' = exp
        True
    """
    _check_callable("cond", "true_fun", true_fun)
    _check_callable("cond", "false_fun", false_fun)
    _check_pred("cond", "pred", pred, integer=False)
    return _switch_impl("cond", pred, (false_fun, true_fun), ("false_fun", "true_fun"),
                        operands, True)


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """``branches[index](*operands)``, with ``index`` clamped to ``[0, len(branches) - 1]``.

    Book §5.7 (else-if statements, the conditional ``cond(π, v₁, …, v_K) = Σᵢ πᵢ·vᵢ`` with a
    one-hot ``π = e_index``, Eq. 5.5): ``∂_{uᵢ} f = ∂gᵢ(uᵢ)`` for the selected branch and 0 for
    the others; the derivative with respect to ``index`` is zero (§5.7.4). ``index`` is an
    integer scalar; out-of-range values are clamped (as in JAX). Lazy like :func:`cond`: eagerly
    only the selected branch is called.

    Example::

        >>> import numpy as np, diffprog
        >>> branches = [lambda x: x, lambda x: 2 * x, lambda x: 3 * x]
        >>> float(diffprog.switch(1, branches, np.array(5.0)))
        10.0
        >>> float(diffprog.switch(7, branches, np.array(5.0)))   # clamped to the last branch
        15.0
    """
    if callable(branches) or not isinstance(branches, Sequence) or not len(branches):
        raise TypeError("switch: argument 'branches' must be a non-empty sequence of functions")
    for k, b in enumerate(branches):
        _check_callable("switch", f"branches[{k}]", b)
    _check_pred("switch", "index", index, integer=True)
    names = tuple(f"branches[{k}]" for k in range(len(branches)))
    return _switch_impl("switch", index, tuple(branches), names, operands, False)


cond_p.transpose = _make_transpose(cond_p, _cond_vjp, False)


def _cond_batch(args, dims, *, branches):
    size = _batch_size(args, dims)
    index, di = args[0], dims[0]
    ops, odims = _to_front(args[1:], dims[1:])
    if di is None:
        progs = tuple(_batch_program(p, odims, ops, "cond (vmap)") for p in branches)
        outs = cond_p.bind(index, *ops, branches=progs)
        return tuple(outs), (0,) * len(outs)
    from ...numpy import equal, reshape
    from ..batching import vmap

    index = _moveaxis(index, di, 0)
    results = []
    for p in branches:
        if any(d is not None for d in odims):
            r = vmap(lambda *a, p=p: tuple(p(*a)), in_axes=tuple(odims), out_axes=0)(*ops)
        else:
            r = tuple(_broadcast_batch(o, size) for o in p(*ops))
        results.append(list(r))
    outs = results[-1]
    for k in range(len(branches) - 2, -1, -1):
        new = []
        for a, b in zip(results[k], outs, strict=True):
            nd = len(_aval(a)[0])
            c = reshape(equal(index, k), (size,) + (1,) * (nd - 1))
            new.append(_select(c, a, b))
        outs = new
    return tuple(outs), (0,) * len(outs)


cond_p.batch = _cond_batch


cond_index_p.batch = lambda args, dims, **p: (cond_index_p.bind(args[0], **p), dims[0])
