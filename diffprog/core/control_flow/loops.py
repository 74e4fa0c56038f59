"""``while_loop`` and ``fori_loop`` (book §5.8, §5.10): loops with a data-dependent or a fixed
number of steps; reverse mode through ``while_loop`` stores the visited states (``max_steps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..primitive import Primitive, Tracer
from ..pytree import tree_flatten
from .scanning import (
    _check_carry,
    _scan,
    _scan_backward,
    _static_length,
)
from .subprograms import (
    MaxStepsExceeded,
    _active,
    _as_operand,
    _aval,
    _batch_program,
    _batch_size,
    _broadcast_batch,
    _check_callable,
    _example,
    _inexact,
    _is_concrete,
    _jvp_program,
    _make_transpose,
    _moveaxis,
    _permute,
    _select,
    _tangent_zeros_of,
    _to_front,
    _trace_flat,
    _under_reverse,
    _walk,
    _with_extra_inputs,
)


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)``; returns ``val`` (book §5.8).

    Alg. 5.1: ``s_k = f_k(s_{k-1})`` with ``f_k = body_fun(k, ·)`` — a computation chain, so
    ``∂ forloop(s_0) = ∂f_K ⋯ ∂f_1`` (a feed-forward network is a parameterized for loop,
    Fig. 5.8). With integer bounds the loop is a :func:`scan` over ``i`` (reverse-mode
    differentiable; the loop index is an int64 scalar inside a transformation and a Python int
    eagerly); with traced bounds (inside ``jit``) it is a :func:`while_loop` (forward mode).
    The carry must keep its structure, shapes and dtypes.

    Example (``dr/ds₀ = ∏ a_k`` for ``f_k(s) = a_k·s``)::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> a = np.array([2.0, 3.0, 4.0])
        >>> f = lambda s: diffprog.fori_loop(0, 3, lambda k, s: dnp.take(a, k) * s, s)
        >>> float(diffprog.grad(f)(np.array(1.0)))
        24.0

    Inside a transformation the index ``k`` is traced: index a plain NumPy array with it
    through ``diffprog.numpy`` (``dnp.take(a, k)``), since ``a[k]`` would need its value.
    """
    _check_callable("fori_loop", "body_fun", body_fun)
    if _is_concrete(lower) and _is_concrete(upper):
        lo = _static_length("fori_loop", "lower", lower)
        hi = _static_length("fori_loop", "upper", upper)
        leaves, treedef = tree_flatten(init_val)
        leaves = [_as_operand("fori_loop", x, i, "carry") for i, x in enumerate(leaves)]
        if not _active(leaves):
            avals = [_aval(x) for x in leaves]
            val = init_val
            for i in range(lo, hi):
                val = treedef.unflatten(
                    _check_carry("fori_loop", "body_fun", treedef, avals, body_fun(i, val)))
            return val
        n = max(hi - lo, 0)
        carry, _ = _scan("fori_loop", "body_fun", lambda c, i: (body_fun(i, c), None),
                         init_val, np.arange(lo, lo + n, dtype=np.int64), n, False)
        return carry
    for name, v in (("lower", lower), ("upper", upper)):
        s, d = _aval(v)
        if s != () or d.kind not in "iu":
            raise TypeError(
                f"fori_loop: argument '{name}' must be an integer scalar, got dtype {d} and "
                f"shape {s}"
            )
    lo = lower if isinstance(lower, Tracer) else np.asarray(lower, dtype=_aval(upper)[1])
    hi = upper
    _, val = _while("fori_loop", "body_fun", lambda c: c[0] < hi,
                    lambda c: (c[0] + 1, body_fun(c[0], c[1])), (lo, init_val), None)
    return val


def _no_max_steps():
    return ValueError(
        "while_loop: reverse-mode differentiation (grad, vjp) through a while loop needs a "
        "bound on its number of iterations: pass max_steps=... (the visited states are "
        "stored, book §5.10.2); forward mode (jvp) works without it"
    )


def _while_impl(*args, cond, body, num_cond_consts, num_body_consts, max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    if save and max_steps is None:
        raise _no_max_steps()
    cc = list(args[:ncc])
    bc = list(args[ncc:ncc + nbc])
    carry = list(args[ncc + nbc:])
    bufs = ([np.empty((max_steps, *np.shape(c)), np.result_type(c)) for c in carry]
            if save else [])
    n = 0
    crun, brun = cond.runner(16), body.runner(16)
    while bool(crun(*cc, *carry)[0]):
        if max_steps is not None and n >= max_steps:
            raise MaxStepsExceeded(
                f"while_loop: the loop did not stop within max_steps={max_steps} iterations; "
                "raise max_steps or check cond_fun"
            )
        for b, c in zip(bufs, carry, strict=False):
            b[n] = c
        carry = list(brun(*bc, *carry))
        n += 1
    carry = [np.asarray(c) for c in carry]
    if save:
        for b, c in zip(bufs, carry, strict=True):
            b[n:] = c
        return (*carry, np.asarray(n, dtype=np.int64), *bufs)
    return tuple(carry)


def _while_split(args, ncc, nbc):
    return list(args[:ncc]), list(args[ncc:ncc + nbc]), list(args[ncc + nbc:])


def _while_jvp(primals, tangents, ans, *, cond, body, num_cond_consts, num_body_consts,
               max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    cc, bc, init = _while_split(primals, ncc, nbc)
    _, tbc, tinit = _while_split(tangents, ncc, nbc)
    ncar = len(init)
    nz_b = [t is not None and _inexact(a) for a, t in zip(bc, tbc, strict=True)]
    carry_nz = [t is not None and _inexact(a) for a, t in zip(init, tinit, strict=True)]
    while True:
        jp, mask = _jvp_program(body, nz_b + carry_nz, carry_nz, context="while_loop (jvp)")
        new = [a or b for a, b in zip(carry_nz, mask, strict=True)]
        if new == carry_nz:
            break
        carry_nz = new
    if not any(carry_nz):
        return (None,) * len(ans)
    kb, kcar = sum(nz_b), sum(carry_nz)
    n_in = nbc + ncar
    in_order = (list(range(nbc)) + list(range(n_in, n_in + kb)) + list(range(nbc, n_in))
                + list(range(n_in + kb, n_in + kb + kcar)))
    jbody = _permute(jp, in_order, list(range(ncar + kcar)))
    tis = [(_tangent_zeros_of(a) if t is None else t)
           for a, t, z in zip(init, tinit, carry_nz, strict=True) if z]
    jcond = _with_extra_inputs(cond, tis)
    tbs = [t for t, z in zip(tbc, nz_b, strict=True) if z]
    save2 = save or (max_steps is not None and _under_reverse([*primals, *tbs, *tis]))
    res = while_p.bind(*cc, *bc, *tbs, *init, *tis, cond=jcond, body=jbody,
                       num_cond_consts=ncc, num_body_consts=nbc + kb, max_steps=max_steps,
                       save=save2)
    it = iter(res[ncar:ncar + kcar])
    out = [next(it) if z else None for z in carry_nz]
    if save:
        base = ncar + kcar + 1 + ncar
        it = iter(res[base:base + kcar])
        out += [None] + [next(it) if z else None for z in carry_nz]
    return tuple(out)


def _concrete_int(x):
    if not _is_concrete(x):
        return None
    return int(np.asarray(_walk(x)))


def _while_vjp(g, ans, argnums, *args, cond, body, num_cond_consts, num_body_consts,
               max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    cc, bc, init = _while_split(args, ncc, nbc)
    ncar = len(init)
    want = set(argnums)
    body_d = [(ncc + i) in want and _inexact(c) for i, c in enumerate(bc)]
    carry_d = [_inexact(c) for c in init]
    g = list(g)
    g_carry = g[:ncar]
    g_saved = g[ncar + 1:] if save else [None] * ncar
    if (not any(c is not None for c in g_carry + g_saved)
            or not any(body_d + [d and (ncc + nbc + j) in want for j, d in enumerate(carry_d)])):
        return [None] * len(argnums)
    if max_steps is None:
        raise _no_max_steps()
    if save:
        n = ans[ncar]
        saved = list(ans[ncar + 1:])
    else:
        res = while_p.bind(*args, cond=cond, body=body, num_cond_consts=ncc,
                           num_body_consts=nbc, max_steps=max_steps, save=True)
        n = res[ncar]
        saved = list(res[ncar + 1:ncar + 1 + ncar])
    n_c = _concrete_int(n)
    if n_c is not None:  # eager: a reverse pass over exactly the n visited states
        saved = [s[:n_c] for s in saved]
        g_saved = [None if c is None else c[:n_c] for c in g_saved]
        ct_bc, ct_init, _ = _scan_backward(body, nbc, ncar, bc, saved, [], g_carry, [], g_saved,
                                           n_c, False, body_d, carry_d, [],
                                           context="while_loop (reverse pass)")
    else:  # traced trip count: a masked reverse pass over max_steps rows
        ct_bc, ct_init, _ = _scan_backward(body, nbc, ncar, bc, saved, [], g_carry, [], g_saved,
                                           max_steps, False, body_d, carry_d, [], n=n,
                                           context="while_loop (reverse pass)")
    full = [None] * ncc + ct_bc + ct_init
    return [full[i] for i in argnums]


while_p = Primitive("while", _while_impl, jvp=_while_jvp, multiple_results=True, register=False)


while_p.vjp_joint = _while_vjp


def _check_pred_out(fname, what, p):
    s, d = _aval(p)
    if s != () or d.kind not in "biuf":
        raise TypeError(
            f"{fname}: {what} must return a boolean scalar, got dtype {d} and shape {s}"
        )


def _while(fname, what, cond_fun, body_fun, init_val, max_steps):
    if max_steps is not None:
        max_steps = _static_length(fname, "max_steps", max_steps)
        if max_steps < 0:
            raise ValueError(f"{fname}: argument 'max_steps' must be >= 0, got {max_steps}")
    leaves, init_def = tree_flatten(init_val)
    leaves = [_as_operand(fname, x, i, "carry") for i, x in enumerate(leaves)]
    init_avals = [_aval(x) for x in leaves]
    cond_name = "cond_fun" if fname == "while_loop" else "the loop condition"
    if not _active(leaves):
        val = init_val
        n = 0
        while True:
            p = cond_fun(val)
            _check_pred_out(fname, cond_name, p)
            if not p:
                return val
            if max_steps is not None and n >= max_steps:
                raise MaxStepsExceeded(
                    f"{fname}: the loop did not stop within max_steps={max_steps} iterations; "
                    "raise max_steps or check cond_fun"
                )
            val = init_def.unflatten(_check_carry(fname, what, init_def, init_avals,
                                                  body_fun(val)))
            n += 1
    examples = [_example(x) for x in leaves]

    def flat_cond(*ins):
        p = cond_fun(init_def.unflatten(list(ins)))
        pl, pd = tree_flatten(p)
        if len(pl) != 1:
            raise TypeError(f"{fname}: {cond_name} must return a boolean scalar, got {pd}")
        _check_pred_out(fname, cond_name, pl[0])
        return pl

    def flat_body(*ins):
        return _check_carry(fname, what, init_def, init_avals,
                            body_fun(init_def.unflatten(list(ins))))

    cprog, cconsts, _ = _trace_flat(flat_cond, examples, f"{fname} ({cond_name})")
    bprog, bconsts, _ = _trace_flat(flat_body, examples, f"{fname} ({what})")
    save = max_steps is not None and _under_reverse(bconsts + leaves)
    outs = while_p.bind(*cconsts, *bconsts, *leaves, cond=cprog, body=bprog,
                        num_cond_consts=len(cconsts), num_body_consts=len(bconsts),
                        max_steps=max_steps, save=save)
    return init_def.unflatten(list(outs[:len(leaves)]))


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any,
               max_steps: int | None = None) -> Any:
    """``while cond_fun(val): val = body_fun(val)``; returns ``val`` (book §5.10, Alg. 5.3).

    ``cond_fun`` returns a boolean scalar (note: *true means continue*, as in JAX; the book's
    stopping predicate is ``π = not cond_fun``). The number of iterations is unknown in advance
    — a cyclic graph (Fig. 5.10) — so forward mode (JVP: a while loop of the body's JVP) always
    works, while reverse mode needs ``max_steps``: the loop is then a truncated, unrolled while
    loop (§5.10.2) whose visited states are stored, and its VJP runs the body's VJP backwards
    over them. Without ``max_steps`` ``grad`` raises a clear error. A loop that needs more than
    ``max_steps`` iterations raises :class:`MaxStepsExceeded`. The derivative with respect to
    the predicate is zero; the carry must keep its structure, shapes and dtypes.

    Example (Newton's method for √x, Example 5.5: stop once ``ε(s) = ½(s² − x)² ≤ τ``)::

        >>> import numpy as np, diffprog
        >>> sqrt = lambda x: diffprog.while_loop(lambda s: 0.5 * (s * s - x) ** 2 > 1e-6,
        ...                                      lambda s: 0.5 * (s + x / s), np.array(1.0),
        ...                                      max_steps=20)
        >>> round(float(sqrt(2.0)), 10)
        1.4142156863
        >>> round(float(diffprog.grad(sqrt)(np.array(2.0))), 6)   # ds_3/dx; 1/(2√2) = 0.353553
        0.353566
    """
    _check_callable("while_loop", "cond_fun", cond_fun)
    _check_callable("while_loop", "body_fun", body_fun)
    return _while("while_loop", "body_fun", cond_fun, body_fun, init_val, max_steps)


while_p.transpose = _make_transpose(while_p, _while_vjp, True)


def _while_batch(args, dims, *, cond, body, num_cond_consts, num_body_consts, max_steps, save):
    ncc, nbc = num_cond_consts, num_body_consts
    size = _batch_size(args, dims)
    cc, bc, init = _while_split(args, ncc, nbc)
    ccd, bcd, idims = _while_split(dims, ncc, nbc)
    cc, ccd = _to_front(cc, ccd)
    bc, bcd = _to_front(bc, bcd)
    init = [_moveaxis(a, d, 0) if d is not None else _broadcast_batch(a, size)
            for a, d in zip(init, idims, strict=True)]
    ncar = len(init)
    ex_cc = [_example(c) for c in cc]
    ex_bc = [_example(c) for c in bc]
    ex_init = [_example(c) for c in init]
    bcond = _batch_program(cond, ccd + [0] * ncar, ex_cc + ex_init, "while_loop (vmap)")
    bbody = _batch_program(body, bcd + [0] * ncar, ex_bc + ex_init, "while_loop (vmap)")
    count0 = np.zeros(size, np.int64)  # per-member step counts (the residual n of each member)

    def any_active(*ins):
        from ...numpy import any as any_

        return [any_(bcond(*ins[:-1])[0])]

    def masked_body(*ins):
        from ...numpy import astype, reshape

        c, b = list(ins[:ncc]), list(ins[ncc:ncc + nbc])
        carry, count = list(ins[ncc + nbc:-1]), ins[-1]
        active = bcond(*c, *carry)[0]
        new = bbody(*b, *carry)
        out = []
        for a, old in zip(new, carry, strict=True):
            nd = len(_aval(a)[0])
            out.append(_select(reshape(active, (size,) + (1,) * (nd - 1)), a, old))
        return out + [count + astype(active, np.int64)]

    ncond, k1, _ = _trace_flat(any_active, ex_cc + ex_init + [count0], "while_loop (vmap)")
    nbody, k2, _ = _trace_flat(masked_body, ex_cc + ex_bc + ex_init + [count0],
                               "while_loop (vmap)")
    assert not k1 and not k2
    outs = while_p.bind(*cc, *cc, *bc, *init, count0, cond=ncond, body=nbody,
                        num_cond_consts=ncc, num_body_consts=ncc + nbc, max_steps=max_steps,
                        save=save)
    carry = tuple(outs[:ncar])
    if not save:
        return carry, (0,) * ncar
    # the member's own step count and visited states (rows past its last step repeat its
    # final state, as for an unbatched loop)
    saved = tuple(outs[ncar + 2:ncar + 2 + ncar])
    return carry + (outs[ncar],) + saved, (0,) * ncar + (0,) + (1,) * ncar


while_p.batch = _while_batch
