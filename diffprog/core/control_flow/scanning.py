"""``scan``: a loop that carries a state and stacks outputs (book §5.9), with forward mode,
reverse mode from stored per-step residuals, transposition and batching.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ..ir import Var
from ..primitive import Primitive
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
    _example,
    _inexact,
    _is_concrete,
    _is_weak,
    _jvp_program,
    _make_transpose,
    _moveaxis,
    _out_example,
    _permute,
    _select,
    _tangent_zeros_of,
    _to_front,
    _trace_flat,
    _under_reverse,
    _vjp_apply,
    _walk,
    _zeros_of,
)


def _scan_impl(*args, body, num_consts, num_carry, length, reverse, residuals=None):
    nc, ncar = num_consts, num_carry
    consts = list(args[:nc])
    carry = list(args[nc:nc + ncar])
    xs = args[nc + ncar:]
    out_avals = body.out_avals()
    ys = [np.empty((length, *s), d) for s, d in out_avals[ncar:]]
    run = body.runner(length)
    ny = len(ys)
    for k in (range(length - 1, -1, -1) if reverse else range(length)):
        out = run(*consts, *carry, *[x[k] for x in xs])
        carry = out[:ncar]
        for j in range(ny):
            ys[j][k] = out[ncar + j]
    carry = [np.asarray(c) for c in carry]
    return (*carry, *ys)


def _scan_split(args, nc, ncar):
    return list(args[:nc]), list(args[nc:nc + ncar]), list(args[nc + ncar:])


def _bind_scan(consts, init, xs, body, length, reverse):
    """Bind ``scan``; under reverse mode, with the body split so that the forward pass also
    stores the residuals of the reverse pass. Returns the outputs ``carry + ys``."""
    nc, ncar = len(consts), len(init)
    residuals = None
    if _under_reverse([*consts, *init, *xs]):
        const_d = [_under_reverse([c]) and _inexact(c) for c in consts]
        carry_d = [_inexact(c) for c in init]
        x_d = [_under_reverse([x]) and _inexact(x) for x in xs]
        if any(const_d + carry_d + x_d):
            body, residuals = _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d)
    outs = scan_p.bind(*consts, *init, *xs, body=body, num_consts=nc, num_carry=ncar,
                       length=length, reverse=reverse, residuals=residuals)
    return list(outs[:len(outs) - (residuals.num_res if residuals is not None else 0)])


def _scan_jvp(primals, tangents, ans, *, body, num_consts, num_carry, length, reverse,
              residuals=None):
    nc, ncar = num_consts, num_carry
    consts, init, xs = _scan_split(primals, nc, ncar)
    tc, tinit, tx = _scan_split(tangents, nc, ncar)
    nx, ny = len(xs), len(body.outputs) - ncar
    nz_c = [t is not None and _inexact(a) for a, t in zip(consts, tc, strict=True)]
    nz_x = [t is not None and _inexact(a) for a, t in zip(xs, tx, strict=True)]
    carry_nz = [t is not None and _inexact(a) for a, t in zip(init, tinit, strict=True)]
    while True:  # fixpoint: which carries get a nonzero tangent
        jp, mask = _jvp_program(body, nz_c + carry_nz + nz_x, carry_nz + [False] * ny,
                                context="scan (jvp)")
        new = [a or b for a, b in zip(carry_nz, mask[:ncar], strict=True)]
        if new == carry_nz:
            break
        carry_nz = new
    y_nz = mask[ncar:]
    if not any(carry_nz) and not any(y_nz):
        return (None,) * len(ans)
    kc, kx, kcar, ky = sum(nz_c), sum(nz_x), sum(carry_nz), sum(y_nz)
    # reorder the JVP program's inputs and outputs into scan's groups
    n_in = nc + ncar + nx
    t0 = n_in
    in_order = (list(range(nc)) + list(range(t0, t0 + kc))
                + list(range(nc, nc + ncar)) + list(range(t0 + kc, t0 + kc + kcar))
                + list(range(nc + ncar, n_in)) + list(range(t0 + kc + kcar, t0 + kc + kcar + kx)))
    n_out = ncar + ny
    out_order = (list(range(ncar)) + list(range(n_out, n_out + kcar))
                 + list(range(ncar, n_out)) + list(range(n_out + kcar, n_out + kcar + ky)))
    jbody = _permute(jp, in_order, out_order)
    tcs = [t for t, z in zip(tc, nz_c, strict=True) if z]
    tis = [(_tangent_zeros_of(a) if t is None else t)
           for a, t, z in zip(init, tinit, carry_nz, strict=True) if z]
    txs = [t for t, z in zip(tx, nz_x, strict=True) if z]
    res = _bind_scan(consts + tcs, init + tis, xs + txs, jbody, length, reverse)
    it = iter(res[ncar:ncar + kcar])
    t_carry = [next(it) if z else None for z in carry_nz]
    it = iter(res[ncar + kcar + ny:ncar + kcar + ny + ky])
    t_ys = [next(it) if z else None for z in y_nz]
    return tuple(t_carry + t_ys)


def _scan_bwd_program(body, nc, ncar, nx, const_d, carry_d, x_d, gy_m, gs_m, masked,
                      context):
    """The body of the reverse pass: one step of the body's VJP.

    Inputs: consts [, n]; carry ``(ct_carry[carry_d], acc_consts[const_d])``; xs
    ``(carry_k (all), x_k (all), g_y_k[gy_m], g_s_k[gs_m] [, k])``. Outputs: the new carry,
    then ``ct_x_k[x_d]`` as ys. With ``masked``, steps ``k >= n`` leave the carry unchanged.
    """
    ex = [_example(v.value) for v in body.invars]
    c_ex, car_ex, x_ex = ex[:nc], ex[nc:nc + ncar], ex[nc + ncar:]
    out_ex = [_out_example(o) for o in body.outputs]
    kc, ka = sum(carry_d), sum(const_d)
    examples = (c_ex + ([np.zeros((), np.int64)] if masked else [])
                + [_zeros_of(e) for e, d in zip(car_ex, carry_d, strict=True) if d]
                + [_zeros_of(e) for e, d in zip(c_ex, const_d, strict=True) if d]
                + car_ex + x_ex
                + [_zeros_of(e) for e, m in zip(out_ex[ncar:], gy_m, strict=True) if m]
                + [_zeros_of(e) for e, m in zip(car_ex, gs_m, strict=True) if m]
                + ([np.zeros((), np.int64)] if masked else []))

    def fn(*ins):
        it = iter(ins)

        def take(k):
            return [next(it) for _ in range(k)]

        consts = take(nc)
        n = take(1)[0] if masked else None
        ctc, acc = take(kc), take(ka)
        carry, xk = take(ncar), take(nx)
        gy, gs = take(sum(gy_m)), take(sum(gs_m))
        k = take(1)[0] if masked else None
        it_c = iter(ctc)
        gouts = [next(it_c) if d else None for d in carry_d]
        it_y = iter(gy)
        gouts += [next(it_y) if m else None for m in gy_m]
        cts = _vjp_apply(body, consts + carry + xk, const_d + carry_d + x_d, gouts)
        ct_c, ct_car, ct_x = cts[:ka], cts[ka:ka + kc], cts[ka + kc:]
        it_s = iter(gs)
        new_ctc = []
        j = 0
        for d, m in zip(carry_d, gs_m, strict=True):
            if d:
                c = ct_car[j]
                new_ctc.append(c + next(it_s) if m else c)
                j += 1
            elif m:
                next(it_s)
        new_acc = [a + c for a, c in zip(acc, ct_c, strict=True)]
        if masked:
            from ...numpy import less

            active = less(k, n)
            new_ctc = [_select(active, a, b) for a, b in zip(new_ctc, ctc, strict=True)]
            new_acc = [_select(active, a, b) for a, b in zip(new_acc, acc, strict=True)]
            ct_x = [_select(active, a, _zeros_of(a)) for a in ct_x]
        return new_ctc + new_acc + ct_x

    prog, consts, _ = _trace_flat(fn, examples, context)
    assert not consts
    return prog


def _scan_backward(body, nc, ncar, consts, saved, xs, g_carry, g_ys, g_saved, length, reverse,
                   const_d, carry_d, x_d, n=None, context="scan (reverse pass)"):
    """Run the reverse pass of a scan; returns ``(ct_consts, ct_init, ct_xs)`` lists aligned
    with ``const_d``/``carry_d``/``x_d`` (``None`` where not differentiated)."""
    nx = len(xs)
    gy_m = [c is not None for c in g_ys]
    gs_m = [c is not None and d for c, d in zip(g_saved, carry_d, strict=True)]
    masked = n is not None
    bwd = _scan_bwd_program(body, nc, ncar, nx, const_d, carry_d, x_d, gy_m, gs_m, masked,
                            context)
    init_ex = [_example(v.value) for v in body.invars[nc:nc + ncar]]
    ctc0 = [(_zeros_of(e) if g is None else g)
            for e, g, d in zip(init_ex, g_carry, carry_d, strict=True) if d]
    acc0 = [_zeros_of(c) for c, d in zip(consts, const_d, strict=True) if d]
    gys = [c for c in g_ys if c is not None]
    gss = [c for c, m in zip(g_saved, gs_m, strict=True) if m]
    extra_c = [n] if masked else []
    extra_x = [np.arange(length)] if masked else []
    bconsts = list(consts) + extra_c
    bcarry = ctc0 + acc0
    bxs = list(saved) + list(xs) + gys + gss + extra_x
    res = _bind_scan(bconsts, bcarry, bxs, bwd, length, not reverse)
    kc, ka, kx = len(ctc0), len(acc0), sum(x_d)
    it = iter(res[:kc])
    ct_init = [next(it) if d else None for d in carry_d]
    it = iter(res[kc:kc + ka])
    ct_consts = [next(it) if d else None for d in const_d]
    it = iter(res[kc + ka:kc + ka + kx])
    ct_xs = [next(it) if d else None for d in x_d]
    return ct_consts, ct_init, ct_xs


def _scan_vjp(g, ans, argnums, *args, body, num_consts, num_carry, length, reverse,
              residuals=None):
    nc, ncar = num_consts, num_carry
    consts, init, xs = _scan_split(args, nc, ncar)
    ny = len(body.outputs) - ncar
    want = set(argnums)
    const_d = [i in want and _inexact(c) for i, c in enumerate(consts)]
    carry_d = [_inexact(c) for c in init]
    x_d = [nc + ncar + i in want and _inexact(x) for i, x in enumerate(xs)]
    g = [c if _inexact(a) else None for c, a in zip(g, ans, strict=True)]
    if (all(c is None for c in g)
            or not any(const_d + x_d + [d and (nc + j) in want for j, d in enumerate(carry_d)])):
        return [None] * len(argnums)
    if residuals is not None:  # the forward pass stored the residuals
        fast = _scan_vjp_residuals(residuals, g, ans, argnums, consts, xs, nc, ncar, ny, length,
                                   reverse)
        if fast is not None:
            return fast
    # recorded without (suitable) residuals, e.g. grad(jit(f)) or at second order: one forward
    # pass computes them, then the reverse pass runs from them
    gy_m = [c is not None for c in g[ncar:]]
    fbody, r = _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d, gy_m)
    outs = scan_p.bind(*args, body=fbody, num_consts=nc, num_carry=ncar, length=length,
                       reverse=reverse, residuals=r)
    return _scan_vjp_residuals(r, g + [None] * r.num_res, outs, argnums, consts, xs, nc, ncar,
                               ny + r.num_res, length, reverse, strict=False)


class ScanResiduals:
    """Parameter of a ``scan`` whose forward pass also emits its reverse pass's residuals.

    The body's last ``num_res`` outputs are residuals (stacked like ``ys``); ``bwd`` is the
    backward step ``(consts, residuals, ct_carry[carry_d], g_y[gy_m]) -> (ct_consts[const_d],
    ct_carry[carry_d], ct_x[x_d])``. The split comes from partial evaluation of the body's joint
    forward-and-VJP program: equations that do not depend on cotangents run in the forward
    pass (book §8.2: a VJP needs the forward pass's intermediate values), those that do run
    in the reverse pass, and loop-invariant ones (functions of the consts only) are recomputed
    in the reverse pass rather than stored once per step.
    """

    __slots__ = ("num_res", "bwd", "const_d", "carry_d", "x_d", "gy_m")

    def __init__(self, num_res, bwd, const_d, carry_d, x_d, gy_m):
        self.num_res = num_res
        self.bwd = bwd
        self.const_d = const_d
        self.carry_d = carry_d
        self.x_d = x_d
        self.gy_m = gy_m

    def __repr__(self):
        return f"ScanResiduals(num_res={self.num_res})"


def _param_vars(params, acc):
    for v in params.values():
        stack = [v]
        while stack:
            x = stack.pop()
            if type(x) is Var:
                acc.append(x)
            elif type(x) is tuple:
                stack.extend(x)


def _eq_vars(eq):
    vs = [a for a in eq.inputs if type(a) is Var]
    if eq.dynamic:
        _param_vars(eq.params, vs)
    return vs


def _scan_residual_split(body, nc, ncar, const_d, carry_d, x_d, gy_m=None):
    """Split ``body`` into a forward step emitting residuals and a backward step consuming them
    (for cotangents on the carries and on the outputs ``y`` with ``gy_m``, default all).

    Returns ``(forward body, ScanResiduals)``."""
    ex = [_example(v.value) for v in body.invars]
    n_in = len(ex)
    out_ex = [_out_example(o) for o in body.outputs]
    ny = len(out_ex) - ncar
    if gy_m is None:
        gy_m = [e.dtype.kind in "fc" for e in out_ex[ncar:]]
    else:
        gy_m = [bool(m) and e.dtype.kind in "fc" for m, e in zip(gy_m, out_ex[ncar:], strict=True)]
    diff = const_d + carry_d + x_d
    examples = (ex + [_zeros_of(e) for e, d in zip(ex[nc:nc + ncar], carry_d, strict=True) if d]
                + [_zeros_of(e) for e, m in zip(out_ex[ncar:], gy_m, strict=True) if m])

    def joint(*ins):
        it = iter(ins[n_in:])
        gouts = ([next(it) if d else None for d in carry_d]
                 + [next(it) if m else None for m in gy_m])
        outs, cts = _vjp_apply(body, list(ins[:n_in]), diff, gouts, with_outputs=True)
        return outs + cts

    jp, consts, _ = _trace_flat(joint, examples, "scan (reverse pass)")
    assert not consts
    # dependency levels: 0 = consts only (loop invariant), 1 = forward, 2 = needs cotangents
    level = {v: (0 if i < nc else 1 if i < n_in else 2) for i, v in enumerate(jp.invars)}
    eq_level = []
    for eq in jp.eqns:
        lv = max((level[v] for v in _eq_vars(eq)), default=0)
        eq_level.append(lv)
        for o in (eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)):
            level[o] = lv
    prim_outs = jp.outputs[:ncar + ny]
    ct_outs = jp.outputs[ncar + ny:]
    if any(type(o) is Var and level[o] == 2 for o in prim_outs):  # pragma: no cover
        raise AssertionError("scan: a forward output depends on cotangents")
    # the backward step: cotangent-dependent equations and the invariant ones they need
    need = {o for o in ct_outs if type(o) is Var}
    bk = []
    for eq, lv in zip(reversed(jp.eqns), reversed(eq_level), strict=True):
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        if lv == 1 or not any(o in need for o in outs):
            continue
        bk.append(eq)
        need.update(_eq_vars(eq))
    bk.reverse()
    order = {v: i for i, v in enumerate(jp.invars)}
    for k, eq in enumerate(jp.eqns):
        for o in (eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)):
            order[o] = n_in + k
    res = sorted((v for v in need if level[v] == 1), key=order.__getitem__)
    # the forward step: the body's outputs and the residuals
    needf = {o for o in prim_outs if type(o) is Var} | set(res)
    fw = []
    for eq in reversed(jp.eqns):
        outs = eq.outvars if type(eq.outvars) is tuple else (eq.outvars,)
        if any(o in needf for o in outs):
            fw.append(eq)
            needf.update(_eq_vars(eq))
    fw.reverse()
    fbody = SubProgram(list(jp.invars[:n_in]), fw, list(prim_outs) + res)
    bwd = SubProgram(list(jp.invars[:nc]) + res + list(jp.invars[n_in:]), bk, list(ct_outs))
    return fbody, ScanResiduals(len(res), bwd, const_d, carry_d, x_d, gy_m)


def _scan_vjp_residuals(r, g, ans, argnums, consts, xs, nc, ncar, ny, length, reverse,
                        strict=True):
    """The reverse pass from stored residuals, or None when it does not apply (cotangents on
    the residuals themselves, at second order, or on outputs or inputs outside the masks the
    residuals were made for)."""
    nyu = ny - r.num_res
    g = list(g)
    if strict:
        if any(c is not None for c in g[ncar + nyu:]):
            return None
        if any(c is not None and not m for c, m in zip(g[ncar:ncar + nyu], r.gy_m, strict=True)):
            return None
        for i in argnums:
            if i < nc:
                ok = r.const_d[i]
            elif i < nc + ncar:
                ok = r.carry_d[i - nc]
            else:
                ok = r.x_d[i - nc - ncar]
            if not ok:
                return None
    carry_ex = [_example(v.value) for v in r.bwd.invars[nc + r.num_res:]][:sum(r.carry_d)]
    ctc0 = [g[j] for j, d in enumerate(r.carry_d) if d]
    ctc0 = [_zeros_of(e) if c is None else c for c, e in zip(ctc0, carry_ex, strict=True)]
    acc0 = [_zeros_of(c) for c, d in zip(consts, r.const_d, strict=True) if d]
    gys = [(np.zeros(_aval(a)[0], _aval(a)[1]) if c is None else c)
           for c, a, m in zip(g[ncar:ncar + nyu], ans[ncar:ncar + nyu], r.gy_m, strict=True) if m]
    res = list(ans[ncar + nyu:ncar + ny])
    kc, ka, kx = len(ctc0), len(acc0), sum(r.x_d)
    bwd = r.bwd
    n_res, n_gy = r.num_res, len(gys)
    step_ex = ([_example(c) for c in consts] + [_example(c) for c in ctc0]
               + [_example(c) for c in acc0]
               + [_example(v.value) for v in bwd.invars[nc:nc + n_res]]
               + [_example(v.value) for v in bwd.invars[nc + n_res + kc:]])

    def step(*ins):
        it = iter(ins)

        def take(k):
            return [next(it) for _ in range(k)]

        c, ctc, acc, rs, gy = take(nc), take(kc), take(ka), take(n_res), take(n_gy)
        cts = bwd(*c, *rs, *ctc, *gy)
        return cts[ka:ka + kc] + [a + b for a, b in zip(acc, cts[:ka], strict=True)] + cts[ka + kc:]

    sp, k2, _ = _trace_flat(step, step_ex, "scan (reverse pass)")
    assert not k2
    bcarry = ctc0 + acc0
    bxs = res + gys
    out = _bind_scan(consts, bcarry, bxs, sp, length, not reverse)
    it = iter(out[:kc])
    ct_init = [next(it) if d else None for d in r.carry_d]
    it = iter(out[kc:kc + ka])
    ct_consts = [next(it) if d else None for d in r.const_d]
    it = iter(out[kc + ka:kc + ka + kx])
    ct_xs = [next(it) if d else None for d in r.x_d]
    full = ct_consts + ct_init + ct_xs
    return [full[i] for i in argnums]


scan_p = Primitive("scan", _scan_impl, jvp=_scan_jvp, multiple_results=True, register=False)


scan_p.vjp_joint = _scan_vjp


def _static_length(fname: str, name: str, v) -> int:
    if isinstance(v, bool) or isinstance(v, np.bool_):
        raise TypeError(f"{fname}: argument '{name}' must be an integer, got a boolean")
    with contextlib.suppress(TypeError):  # not an index: the checks below explain why
        return operator.index(v)
    if not _is_concrete(v):
        raise TypeError(
            f"{fname}: argument '{name}' must be a static integer, but it is a traced value (its "
            "value is not known while tracing, e.g. inside jit or vmap); pass a Python int or "
            "mark the argument static"
        )
    a = np.asarray(_walk(v))
    if a.shape != () or a.dtype.kind not in "iu":
        s, d = _aval(v)
        raise TypeError(
            f"{fname}: argument '{name}' must be an integer scalar, got dtype {d} and shape {s}"
        )
    return int(a)


def _split_pair(fname: str, what: str, out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{fname}: {what} must return a pair (carry, y), got {type(out).__name__}"
            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        )
    return out[0], out[1]


def _kind_rank(t) -> int:
    return {bool: 0, int: 1, float: 2, complex: 3}[t]


def _kind_rank_dt(dt: np.dtype) -> int:
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}.get(dt.kind, -1)


def _check_carry(fname: str, what: str, init_def, init_avals, new):
    """Check that the carry returned by ``what`` keeps the initial structure, shapes and dtypes;
    returns its leaves (Python scalars cast to the carry's dtype)."""
    leaves, d = tree_flatten(new)
    if d != init_def:
        raise TypeError(
            f"{fname}: {what} must return a carry with the same pytree structure as the initial "
            f"carry: got {d}, expected {init_def}"
        )
    out = []
    for i, (x, (s, dt)) in enumerate(zip(leaves, init_avals, strict=True)):
        if _is_weak(x) and s == () and _kind_rank(type(x)) <= _kind_rank_dt(dt):
            out.append(np.asarray(x, dtype=dt))
            continue
        s2, d2 = _aval(x)
        if s2 != s:
            raise TypeError(
                f"{fname}: {what} changed the shape of carry leaf {i} from {s} to {s2}; the "
                "carry must keep its shape and dtype across iterations"
            )
        if d2 != dt:
            raise TypeError(
                f"{fname}: {what} changed the dtype of carry leaf {i} from {dt} to {d2}; the "
                "carry must keep its shape and dtype across iterations (cast it, e.g. with "
                ".astype, or start from an initial value of the right dtype)"
            )
        out.append(x)
    return out


def _scan(fname, what, f, init, xs, length, reverse):
    _check_callable(fname, what, f)
    init_leaves, init_def = tree_flatten(init)
    init_leaves = [_as_operand(fname, x, i, "carry") for i, x in enumerate(init_leaves)]
    init_avals = [_aval(x) for x in init_leaves]
    xs_leaves, xs_def = tree_flatten(xs)
    xs_leaves = [_as_operand(fname, x, i, "xs") for i, x in enumerate(xs_leaves)]
    lengths = []
    for i, x in enumerate(xs_leaves):
        s = _aval(x)[0]
        if not s:
            raise ValueError(
                f"{fname}: every leaf of xs must have a leading axis to scan over, but leaf {i} "
                "is a scalar (shape ())"
            )
        lengths.append(s[0])
    if length is not None:
        length = _static_length(fname, "length", length)
        if length < 0:
            raise ValueError(f"{fname}: argument 'length' must be >= 0, got {length}")
    if lengths:
        if len(set(lengths)) > 1:
            raise ValueError(
                f"{fname}: the leaves of xs have inconsistent leading lengths {lengths}; all must "
                "have the same length along axis 0"
            )
        if length is not None and length != lengths[0]:
            raise ValueError(
                f"{fname}: argument 'length'={length} does not match the leading length "
                f"{lengths[0]} of xs"
            )
        n = lengths[0]
    elif length is None:
        raise ValueError(f"{fname}: give xs (with a leading axis) or length")
    else:
        n = length
    reverse = bool(reverse)
    x_ex = [_example(x) for x in xs_leaves]
    if not _active(init_leaves + xs_leaves):
        return _scan_eager(fname, what, f, init, init_def, init_avals, xs_leaves, xs_def, n,
                           reverse)
    slices = [e[0] if n else np.zeros(e.shape[1:], e.dtype) for e in x_ex]
    ncar = len(init_leaves)
    box = []

    def flat_body(*ins):
        c = init_def.unflatten(list(ins[:ncar]))
        x = xs_def.unflatten(list(ins[ncar:]))
        carry, y = _split_pair(fname, what, f(c, x))
        cl = _check_carry(fname, what, init_def, init_avals, carry)
        yl, yd = tree_flatten(y)
        box.append(yd)
        return cl + yl

    prog, consts, _ = _trace_flat(flat_body, [_example(x) for x in init_leaves] + slices,
                                  f"{fname} ({what})")
    y_def = box[0]
    outs = _bind_scan(consts, init_leaves, xs_leaves, prog, n, reverse)
    ny = y_def.num_leaves
    return init_def.unflatten(list(outs[:ncar])), y_def.unflatten(list(outs[ncar:ncar + ny]))


def _scan_eager(fname, what, f, init, init_def, init_avals, xs_leaves, xs_def, n, reverse):
    carry = init
    ys = []
    y_def = None
    y_avals = None
    for k in (range(n - 1, -1, -1) if reverse else range(n)):
        x = xs_def.unflatten([x[k] for x in xs_leaves])
        carry, y = _split_pair(fname, what, f(carry, x))
        carry = init_def.unflatten(_check_carry(fname, what, init_def, init_avals, carry))
        yl, yd = tree_flatten(y)
        if y_def is None:
            y_def, y_avals = yd, [_aval(v) for v in yl]
        elif yd != y_def or [_aval(v) for v in yl] != y_avals:
            raise TypeError(
                f"{fname}: {what} returned outputs y of a different structure, shape or dtype at "
                f"step {k}: {yd} {[_aval(v) for v in yl]} instead of {y_def} {y_avals}"
            )
        ys.append(yl)
    if n == 0:  # one call on zero slices, to learn the structure of y
        x = xs_def.unflatten([np.zeros(np.shape(x)[1:], np.result_type(x)) for x in xs_leaves])
        _, y = _split_pair(fname, what, f(init, x))
        yl, y_def = tree_flatten(y)
        stacked = [np.zeros((0, *np.shape(v)), np.result_type(v)) for v in yl]
        return carry, y_def.unflatten(stacked)
    if reverse:
        ys.reverse()
    stacked = [np.stack([np.asarray(y[j]) for y in ys]) for j in range(len(ys[0]))]
    return carry, y_def.unflatten(stacked)


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False) -> tuple[Any, Any]:
    """Scan ``f`` over the leading axis of ``xs``, carrying a state (book §5.9, Alg. 5.2).

    For ``k = 1..K``: ``(s_k, v_k) = f(s_{k-1}, u_k)``; returns ``(s_K, [v_1, …, v_K])`` with the
    outputs stacked on a new leading axis. ``init`` (the carry ``s_0``), ``xs`` and the outputs
    are pytrees (``y`` may be ``None``); ``xs=None`` needs ``length``. ``reverse=True`` scans
    from the end (outputs stay aligned with ``xs``). The carry must keep its structure, shapes
    and dtypes. A scan is a computation chain (Fig. 5.9), so it is differentiated like any
    program: JVP = scan of the body's JVP; VJP = the forward pass stores the carries entering
    each step, then a reversed scan runs the body's VJP (memory ``O(K·|s|)``). A
    sequence-to-sequence RNN is a parameterized scan (§5.9).

    Example (prefix sum, Example 5.4)::

        >>> import numpy as np, diffprog
        >>> s, v = diffprog.scan(lambda s, u: (s + u, s + u), 0.0, np.array([1., 2., 3., 4.]))
        >>> float(s), v
        (10.0, array([ 1.,  3.,  6., 10.]))
    """
    return _scan("scan", "f", f, init, xs, length, reverse)


scan_p.transpose = _make_transpose(scan_p, _scan_vjp, False)


def _scan_batch(args, dims, *, body, num_consts, num_carry, length, reverse, residuals=None):
    nc, ncar = num_consts, num_carry
    size = _batch_size(args, dims)
    consts, init, xs = _scan_split(args, nc, ncar)
    cdims, idims, xdims = _scan_split(dims, nc, ncar)
    consts, cdims = _to_front(consts, cdims)
    init = [_moveaxis(a, d, 0) if d is not None else _broadcast_batch(a, size)
            for a, d in zip(init, idims, strict=True)]
    xs = [_moveaxis(a, d, 1) if d is not None else a for a, d in zip(xs, xdims, strict=True)]
    xdims = [0 if d is not None else None for d in xdims]
    slices = [(_example(x)[0] if length else np.zeros(_aval(x)[0][1:], _aval(x)[1]))
              for x in xs]
    bbody = _batch_program(body, cdims + [0] * ncar + xdims,
                           [_example(c) for c in consts] + [_example(c) for c in init] + slices,
                           "scan (vmap)")
    # (the residual outputs of a body split for reverse mode are plain outputs here)
    outs = scan_p.bind(*consts, *init, *xs, body=bbody, num_consts=nc, num_carry=ncar,
                       length=length, reverse=reverse, residuals=None)
    ny = len(body.outputs) - ncar
    return tuple(outs), (0,) * ncar + (1,) * ny


scan_p.batch = _scan_batch
