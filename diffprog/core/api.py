"""The public transformations: jvp, vjp, grad, value_and_grad, jacobians, Hessians, HVPs.

All of them take and return pytrees and nest to any order (book §8.4.2):
``grad(grad(grad(dnp.sin)))``, ``jvp`` of ``grad``, ``jacfwd(jacrev(f))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .batching import vmap
from .forward import JVPTrace, JVPTracer
from .linearize import linearize
from .primitive import Tracer
from .pytree import PyTreeDef, ravel_pytree, tree_flatten
from .reverse import ReverseTrace, ReverseTracer, as_primal_array, backward

__all__ = [
    "jvp",
    "vjp",
    "grad",
    "value_and_grad",
    "jacfwd",
    "jacrev",
    "jacobian",
    "hessian",
    "hvp",
]


# ----------------------------------------------------------------------------- input checks


def _dtype_of(x):
    if type(x) is np.ndarray:
        return x.dtype
    if isinstance(x, Tracer):
        return np.result_type(x.primal_value)
    return np.result_type(x)


def _prepare_primals(fname: str, primals) -> tuple[list, PyTreeDef]:
    flat, treedef = tree_flatten(tuple(primals))
    nd = np.ndarray
    return [x if type(x) is nd else as_primal_array(x) for x in flat], treedef


def _check_float_leaves(fname: str, flat, what="argument"):
    for i, x in enumerate(flat):
        dt = _dtype_of(x)
        if dt.kind not in "fc":
            raise TypeError(
                f"{fname}: differentiation requires floating-point (or complex) inputs, but "
                f"{what} leaf {i} has dtype {dt}; cast it with .astype(float) or pass it as a "
                "non-differentiated argument"
            )


def _check_tangents(fname, flat_primals, in_def, tangents, unwrap=False):
    """Flatten tangents, checking they match the primals' structure, shapes and dtypes."""
    flat_t, t_def = tree_flatten(tuple(tangents))
    if unwrap:
        t_def = t_def.children[0] if t_def.children else t_def
        flat_t = flat_t
    if t_def != in_def:
        raise ValueError(
            f"{fname}: tangent structure {t_def} does not match primal structure {in_def}"
        )
    out = []
    for i, (p, t) in enumerate(zip(flat_primals, flat_t, strict=True)):
        pshape = np.shape(p.primal_value if isinstance(p, Tracer) else p)
        pdt = _dtype_of(p)
        if not isinstance(t, (Tracer, np.ndarray, np.generic)):
            t = np.asarray(t, dtype=pdt if pdt.kind in "fc" else None)
        tshape = np.shape(t.primal_value if isinstance(t, Tracer) else t)
        if tshape != pshape:
            raise ValueError(
                f"{fname}: tangent/cotangent leaf {i} has shape {tshape}, expected {pshape} "
                "(the shape of the corresponding primal)"
            )
        tdt = _dtype_of(t)
        if pdt.kind in "fc" and tdt != pdt and not (tdt.kind in "iub" and tshape == ()):
            raise TypeError(
                f"{fname}: tangent/cotangent leaf {i} has dtype {tdt}, expected {pdt} "
                "(the dtype of the corresponding primal)"
            )
        out.append(t)
    return out


def _normalize_argnums(fname, argnums):
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        return (int(argnums),), True
    if isinstance(argnums, (tuple, list)) and argnums and all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in argnums
    ):
        if len(set(argnums)) != len(argnums):
            raise ValueError(f"{fname}: argnums {argnums} contains duplicates")
        return tuple(int(a) for a in argnums), False
    raise TypeError(
        f"{fname}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}"
    )


def _check_argnums_range(fname, nums, nargs):
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(
                f"{fname}: argnums={a} is out of range for a function called with "
                f"{nargs} positional argument(s)"
            )
    return tuple(a % nargs for a in nums)


def _zeros_like(x):
    if type(x) is np.ndarray:
        return np.zeros(x.shape, x.dtype)
    from ..numpy import zeros_like

    return zeros_like(x)


# ----------------------------------------------------------------------------- jvp / vjp


def jvp(fun: Callable, primals: Sequence, tangents: Sequence) -> tuple[Any, Any]:
    """Forward mode: ``(fun(*primals), ∂fun(primals)[tangents])`` (book §8.1.1, Alg. 8.1).

    ``primals`` and ``tangents`` are tuples (or lists) of pytrees of the same structure, shapes
    and dtypes. Cost and memory are about twice those of ``fun``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> diffprog.jvp(dnp.sin, (np.array([0.0]),), (np.array([2.0]),))
        (array([0.]), array([2.]))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            "jvp: primals and tangents must be tuples (or lists) of arguments, got "
            f"{type(primals).__name__} and {type(tangents).__name__}"
        )
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: got {len(primals)} primals but {len(tangents)} tangents"
        )
    flat, in_def = _prepare_primals("jvp", primals)
    _check_float_leaves("jvp", flat, "primal")
    flat_t = _check_tangents("jvp", flat, in_def, tangents)
    trace = JVPTrace()
    with trace:
        ins = [JVPTracer(trace, p, t) for p, t in zip(flat, flat_t, strict=True)]
        out = fun(*in_def.unflatten(ins))
    flat_out, out_def = tree_flatten(out)
    po, to = [], []
    for o in flat_out:
        if type(o) is JVPTracer and o._trace is trace:
            po.append(o.value)
            to.append(_zeros_like(o.value) if o.tangent is None else o.tangent)
        else:
            po.append(o)
            to.append(_zeros_like(o))
    return out_def.unflatten(po), out_def.unflatten(to)


def _run_reverse(fname, fun, flat, in_def):
    trace = ReverseTrace()
    try:
        with trace:
            ins = [trace.new_input(p) for p in flat]
            res = fun(*in_def.unflatten(ins))
    finally:
        tape = trace.finish()
    return trace, tape, ins, res


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """Reverse mode: ``(fun(*primals), vjp_fn)`` with ``vjp_fn(u) = ∂fun(primals)*[u]``.

    Book §8.1.2 (Alg. 8.2/8.5): the forward pass records the residuals once; ``vjp_fn`` can then
    be applied to any number of cotangents (AD-17). It returns a tuple with one cotangent per
    primal. With ``has_aux=True``, ``fun`` returns ``(out, aux)`` and ``vjp`` returns
    ``(out, vjp_fn, aux)``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> y, f_vjp = diffprog.vjp(lambda x: x * x, np.array([3.0]))
        >>> f_vjp(np.array([1.0]))
        (array([6.]),)
    """
    flat, in_def = _prepare_primals("vjp", primals)
    _check_float_leaves("vjp", flat, "primal")
    trace, tape, ins, res = _run_reverse("vjp", fun, flat, in_def)
    if has_aux:
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TypeError("vjp: with has_aux=True the function must return a pair (out, aux)")
        res, aux = res
    flat_out, out_def = tree_flatten(res)
    out_vals = [o.value if (type(o) is ReverseTracer and o._trace is trace) else o
                for o in flat_out]

    def vjp_fn(*cts):
        ct = cts[0] if len(cts) == 1 else cts
        flat_ct = _check_tangents("vjp (vjp_fn)", out_vals, out_def, (ct,), unwrap=True)
        seeds = [(o, c) for o, c in zip(flat_out, flat_ct, strict=True)
                 if type(o) is ReverseTracer and o._trace is trace]
        got = backward(tape, seeds, ins)
        got = [_zeros_like(p) if g is None else g for g, p in zip(got, flat, strict=True)]
        return tuple(in_def.unflatten(got))

    out = out_def.unflatten(out_vals)
    if has_aux:
        return out, vjp_fn, _strip(aux, trace)
    return out, vjp_fn


def _strip(tree, trace):
    flat, d = tree_flatten(tree)
    return d.unflatten([x.value if (type(x) is ReverseTracer and x._trace is trace) else x
                        for x in flat])


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   *, _name: str = "value_and_grad"):
    """Return a function computing ``(fun(*args), ∇fun(*args))`` (book §8.2.2, Alg. 8.3).

    ``fun`` must return a real scalar. ``argnums`` selects the differentiated positional
    arguments (an int gives one gradient, a tuple gives a tuple); each may be a pytree. With
    ``has_aux=True`` ``fun`` returns ``(value, aux)`` and the result is ``((value, aux), grad)``.

    Example::

        >>> import numpy as np, diffprog
        >>> diffprog.value_and_grad(lambda x: (x ** 2).sum())(np.array([1., 2.]))
        (np.float64(5.0), array([2., 4.]))
    """
    fname = _name
    nums, single = _normalize_argnums(fname, argnums)

    nd = np.ndarray

    def value_and_grad_fun(*args, **kwargs):
        if single and 0 <= nums[0] < len(args):
            idx = nums
            flat, in_def = tree_flatten(args[nums[0]])
        else:
            idx = _check_argnums_range(fname, nums, len(args))
            flat, in_def = tree_flatten(tuple(args[i] for i in idx))
        for k, x in enumerate(flat):
            if type(x) is not nd:
                x = flat[k] = as_primal_array(x)
            if x.dtype.kind not in "fc":
                _check_float_leaves(fname, flat)
        trace = ReverseTrace()
        ins = [ReverseTracer(trace, x) for x in flat]
        tree = in_def.unflatten(ins)
        full = list(args)
        if single:
            full[idx[0]] = tree
        else:
            for k, i in enumerate(idx):
                full[i] = tree[k]
        try:
            with trace:
                res = fun(*full, **kwargs)
        finally:
            tape = trace.finish()
        if has_aux:
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(
                    f"{fname}: with has_aux=True the function must return a pair (value, aux)"
                )
            res, aux = res
        is_ours = type(res) is ReverseTracer and res._trace is trace
        val = res.value if is_ours else res
        pv = val.primal_value if isinstance(val, Tracer) else val
        if isinstance(pv, (np.ndarray, np.generic)):
            shape, dt = pv.shape, pv.dtype
        elif isinstance(pv, (list, tuple, dict)):
            shape, dt = None, None
        else:
            shape, dt = np.shape(pv), np.result_type(pv)
        if dt is None or shape != ():
            raise TypeError(
                f"{fname}: the function must return a scalar (shape ()), got "
                f"{'a ' + type(pv).__name__ if dt is None else 'shape ' + str(shape)}; "
                "use vjp or jacrev for non-scalar outputs"
            )
        if dt.kind not in "f":
            raise TypeError(
                f"{fname}: the function must return a real floating-point scalar, got dtype {dt}"
            )
        if is_ours:
            got = backward(tape, [(res, np.ones((), dtype=dt))], ins, consume=True)
        else:
            got = [None] * len(ins)
        got = [_zeros_like(p) if g is None else g for g, p in zip(got, flat, strict=True)]
        g = in_def.unflatten(got)
        if not single:
            g = tuple(g)

        if has_aux:
            return (val, _strip(aux, trace)), g
        return val, g

    return value_and_grad_fun


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Return a function computing the gradient ``∇fun`` (book §8.2.2, reverse mode).

    The cost is a small constant times that of ``fun`` (§8.3.3). See :func:`value_and_grad`.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> float(diffprog.grad(diffprog.grad(diffprog.grad(dnp.sin)))(np.array(0.0)))
        -1.0
    """
    vg = value_and_grad(fun, argnums, has_aux, _name="grad")

    def grad_fun(*args, **kwargs):
        (res, g) = vg(*args, **kwargs)
        if has_aux:
            return g, res[1]
        return g

    return grad_fun


# ----------------------------------------------------------------------------- Jacobians


def _jac(fname, fun, argnums, mode):
    nums, single = _normalize_argnums(fname, argnums)

    def jac_fun(*args):
        idx = _check_argnums_range(fname, nums, len(args))
        diff = tuple(args[i] for i in idx)
        flat, in_def = _prepare_primals(fname, diff)
        _check_float_leaves(fname, flat)

        def f_flat(*leaves):
            tree = in_def.unflatten(leaves)
            full = list(args)
            for k, i in enumerate(idx):
                full[i] = tree[k]
            return fun(*full)

        in_shapes = [np.shape(x.primal_value if isinstance(x, Tracer) else x) for x in flat]
        n_in = sum(int(np.prod(s)) for s in in_shapes)
        m = mode
        rev = None
        if m in ("auto", "rev"):
            rev = vjp(f_flat, *flat)
            n_out = sum(int(np.size(o.primal_value if isinstance(o, Tracer) else o))
                        for o in tree_flatten(rev[0])[0])
            if m == "auto":
                m = "rev" if n_out < n_in else "fwd"
        if m == "rev":  # M VJPs of one forward pass, batched with vmap (book §8.1.3)
            out, f_vjp = rev
            flat_out, out_def = tree_flatten(out)
            out_shapes = [_shape(o) for o in flat_out]
            basis = _one_hot_blocks(flat_out)
            cts = tree_flatten(vmap(f_vjp)(out_def.unflatten(basis)))[0]
            blocks = [[_block(c, k, o_shape, i_shape, out_first=True)
                       for c, i_shape in zip(cts, in_shapes, strict=True)]
                      for k, o_shape in zip(_offsets(out_shapes), out_shapes, strict=True)]
        else:  # D JVPs of one linearization, batched with vmap
            out, f_jvp = linearize(f_flat, *flat)
            flat_out, out_def = tree_flatten(out)
            out_shapes = [_shape(o) for o in flat_out]
            tangents = _one_hot_blocks(flat)
            t_out = tree_flatten(vmap(f_jvp)(*tangents))[0]
            blocks = [[_block(t, k, i_shape, o_shape, out_first=False)
                       for k, i_shape in zip(_offsets(in_shapes), in_shapes, strict=True)]
                      for t, o_shape in zip(t_out, out_shapes, strict=True)]
        # structure: out tree of (argnums structure of input trees)
        per_out = []
        for o in range(len(flat_out)):
            tree = in_def.unflatten(blocks[o])
            per_out.append(tree[0] if single else tuple(tree))
        return out_def.unflatten(per_out)

    return jac_fun


def _primal_of(x):
    return x.primal_value if isinstance(x, Tracer) else x


def _shape(x):
    return np.shape(x.primal_value if isinstance(x, Tracer) else x)


def _offsets(shapes):
    out, k = [], 0
    for s in shapes:
        out.append(k)
        k += int(np.prod(s))
    return out


def _one_hot_blocks(leaves):
    """Rows of the identity of size Σ|leaf|, split by leaf: leaf i gets shape (N,) + shape_i."""
    shapes = [_shape(x) for x in leaves]
    n = sum(int(np.prod(s)) for s in shapes)
    blocks = []
    for k, s, x in zip(_offsets(shapes), shapes, leaves, strict=True):
        size = int(np.prod(s))
        e = np.zeros((n, size), dtype=_dtype_of(x))
        e[np.arange(k, k + size), np.arange(size)] = 1
        blocks.append(e.reshape((n,) + tuple(s)))
    return blocks


def _block(batched, k, rows_shape, cols_shape, out_first):
    """Cut the Jacobian block of one (output, input) leaf pair out of a batched result."""
    from ..numpy import moveaxis, reshape

    size = int(np.prod(rows_shape))
    part = batched[k:k + size]  # (size,) + shape of the other leaf
    if out_first:  # reverse mode: rows index the output
        return reshape(part, tuple(rows_shape) + tuple(cols_shape))
    # forward mode: rows index the input; the Jacobian is output-shape first
    return reshape(moveaxis(part, 0, -1), tuple(cols_shape) + tuple(rows_shape))


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0):
    """Jacobian by forward mode, column by column: D JVPs of one linearization (book §8.1.3).

    The result for an output leaf of shape ``S_out`` and an input leaf of shape ``S_in`` has
    shape ``S_out + S_in``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> diffprog.jacfwd(dnp.sin)(np.zeros(2))
        array([[1., 0.],
               [0., 1.]])
    """
    return _jac("jacfwd", fun, argnums, "fwd")


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0):
    """Jacobian by reverse mode, row by row: M VJPs of one forward pass (book §8.1.3).

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> diffprog.jacrev(lambda x: x * 2.0)(np.zeros(2))
        array([[2., 0.],
               [0., 2.]])
    """
    return _jac("jacrev", fun, argnums, "rev")


def jacobian(fun: Callable, argnums: int | Sequence[int] = 0, mode: str = "auto"):
    """Jacobian with the mode chosen by Table 8.1: reverse if outputs < inputs, else forward.

    Book §8.1.3 / §8.8. ``mode`` is ``"auto"``, ``"fwd"`` or ``"rev"``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> diffprog.jacobian(dnp.sum)(np.ones(3))   # M=1 < D=3: one VJP
        array([1., 1., 1.])
    """
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
    return _jac("jacobian", fun, argnums, mode)


def hessian(fun: Callable, argnums: int | Sequence[int] = 0):
    """Hessian as the forward-mode Jacobian of the gradient (book §9.1.2: P HVPs, fwd-over-rev).

    Example::

        >>> import numpy as np, diffprog
        >>> diffprog.hessian(lambda x: (x ** 3).sum())(np.array([1., 2.]))
        array([[ 6.,  0.],
               [ 0., 12.]])
    """
    return jacfwd(jacrev(fun, argnums), argnums)


_HVP_METHODS = ("fwd-rev", "rev-rev", "rev-fwd", "fwd-fwd")


def hvp(fun: Callable, w: Any, v: Any, method: str = "fwd-rev") -> Any:
    """Hessian-vector product ``∇²fun(w)[v]`` without forming the Hessian (book §9.1).

    ``method``: ``"fwd-rev"`` (default; JVP of the gradient, §9.1.1 (2)), ``"rev-rev"`` (VJP of
    the gradient), ``"rev-fwd"`` (gradient of the JVP) or ``"fwd-fwd"`` (P nested JVPs; costly).
    ``w`` and ``v`` are pytrees of the same structure; ``fun(w)`` is a real scalar.

    Example::

        >>> import numpy as np, diffprog
        >>> diffprog.hvp(lambda x: (x ** 3).sum(), np.array([1., 2.]), np.array([1., 1.]))
        array([ 6., 12.])
    """
    if method == "fwd-rev":
        return jvp(grad(fun), (w,), (v,))[1]
    if method == "rev-rev":
        return vjp(grad(fun), w)[1](v)[0]
    if method == "rev-fwd":
        return grad(lambda x: jvp(fun, (x,), (v,))[1])(w)
    if method == "fwd-fwd":  # P nested JVPs, one per basis vector (book §9.1.1 (4))
        w_flat, unravel = ravel_pytree(w)
        v_flat = ravel_pytree(v)[0]
        dd = lambda x: jvp(lambda y: fun(unravel(y)), (x,), (v_flat,))[1]
        out = []
        for j in range(int(np.size(_primal_of(w_flat)))):
            e = np.zeros(_shape(w_flat), dtype=_dtype_of(w_flat))
            e[j] = 1.0
            out.append(jvp(dd, (w_flat,), (e,))[1])
        from ..numpy import stack

        return unravel(stack(out))
    raise ValueError(f"hvp: method must be one of {_HVP_METHODS}, got {method!r}")

