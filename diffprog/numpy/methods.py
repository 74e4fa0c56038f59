"""NumPy operators and methods of traced values, and NumPy interoperability.

Installed on :class:`diffprog.core.primitive.Tracer` when :mod:`diffprog.numpy` is imported. A
NumPy function or ufunc applied to a traced value dispatches (``__array_ufunc__`` /
``__array_function__``) to the differentiable function of the same name, so plain NumPy code is
differentiable where diffprog supports it, and anything unsupported raises a clear ``TypeError``
instead of silently dropping the derivative.
"""

from __future__ import annotations

import numpy as np

from ..core.primitive import Tracer
from ..core.reverse import ReverseTracer, make_fast_binary
from . import creation, products, reduce_ops, shape_ops, ufuncs
from .contraction import matmul_p
from .elementwise import BINARY_PRIMS, NONDIFF_PRIMS, negative_p
from .structural import concrete_index, getitem_p

_EMPTY: dict = {}


def _fast_binary(prim):
    """``prim.bind(x, y)`` specialised for a traced first or second operand."""

    def left(s, o):
        t = s._trace
        if isinstance(o, Tracer) and o._trace.level > t.level:
            t = o._trace
        return t.process(prim, (s, o), _EMPTY)

    def right(s, o):
        t = s._trace
        if isinstance(o, Tracer) and o._trace.level > t.level:
            t = o._trace
        return t.process(prim, (o, s), _EMPTY)

    return left, right


_add, _radd = _fast_binary(BINARY_PRIMS["add"])
_sub, _rsub = _fast_binary(BINARY_PRIMS["subtract"])
_mul, _rmul = _fast_binary(BINARY_PRIMS["multiply"])
_div, _rdiv = _fast_binary(BINARY_PRIMS["divide"])
_pow, _rpow = _fast_binary(BINARY_PRIMS["power"])
_mod, _rmod = _fast_binary(BINARY_PRIMS["remainder"])

_REVERSE_FAST = {
    "__add__": BINARY_PRIMS["add"], "__sub__": BINARY_PRIMS["subtract"],
    "__mul__": BINARY_PRIMS["multiply"], "__truediv__": BINARY_PRIMS["divide"],
    "__pow__": BINARY_PRIMS["power"], "__matmul__": matmul_p,
}


def _install_reverse_fast_paths():
    for meth, prim in _REVERSE_FAST.items():
        left, right = make_fast_binary(prim)
        setattr(ReverseTracer, meth, left)
        setattr(ReverseTracer, "__r" + meth[2:], right)
_neg = negative_p.bind
_getitem = getitem_p.bind
_cmp = {n: NONDIFF_PRIMS[n].bind for n in
        ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "floor_divide",
         "bitwise_and", "bitwise_or", "bitwise_xor", "invert")}


def _install():
    T = Tracer
    T.__add__ = _add
    T.__radd__ = _radd
    T.__sub__ = _sub
    T.__rsub__ = _rsub
    T.__mul__ = _mul
    T.__rmul__ = _rmul
    T.__truediv__ = _div
    T.__rtruediv__ = _rdiv
    T.__pow__ = _pow
    T.__rpow__ = _rpow
    T.__mod__ = _mod
    T.__rmod__ = _rmod
    T.__floordiv__ = lambda s, o: _cmp["floor_divide"](s, o)
    T.__rfloordiv__ = lambda s, o: _cmp["floor_divide"](o, s)
    T.__neg__ = lambda s: _neg(s)
    T.__pos__ = lambda s: s
    T.__abs__ = lambda s: ufuncs.abs(s)
    T.__matmul__ = lambda s, o: products.matmul(s, o)
    T.__rmatmul__ = lambda s, o: products.matmul(o, s)
    T.__lt__ = lambda s, o: _cmp["less"](s, o)
    T.__le__ = lambda s, o: _cmp["less_equal"](s, o)
    T.__gt__ = lambda s, o: _cmp["greater"](s, o)
    T.__ge__ = lambda s, o: _cmp["greater_equal"](s, o)
    T.__eq__ = lambda s, o: _cmp["equal"](s, o)
    T.__ne__ = lambda s, o: _cmp["not_equal"](s, o)
    T.__and__ = lambda s, o: _cmp["bitwise_and"](s, o)
    T.__rand__ = lambda s, o: _cmp["bitwise_and"](o, s)
    T.__or__ = lambda s, o: _cmp["bitwise_or"](s, o)
    T.__ror__ = lambda s, o: _cmp["bitwise_or"](o, s)
    T.__xor__ = lambda s, o: _cmp["bitwise_xor"](s, o)
    T.__rxor__ = lambda s, o: _cmp["bitwise_xor"](o, s)
    T.__invert__ = lambda s: _cmp["invert"](s)
    T.__getitem__ = lambda s, idx: _getitem(s, idx=concrete_index(idx))
    T.T = property(lambda s: shape_ops.transpose(s))
    T.mT = property(lambda s: shape_ops.swapaxes(s, -1, -2))
    T.at = property(lambda s: creation.at(s))
    T.real = property(lambda s: ufuncs.real(s))
    T.imag = property(lambda s: ufuncs.imag(s))
    T.conj = lambda s: ufuncs.conjugate(s)
    T.conjugate = lambda s: ufuncs.conjugate(s)
    T.sum = lambda s, axis=None, keepdims=False: reduce_ops.sum(s, axis, keepdims)
    T.mean = lambda s, axis=None, keepdims=False: reduce_ops.mean(s, axis, keepdims)
    T.prod = lambda s, axis=None, keepdims=False: reduce_ops.prod(s, axis, keepdims)
    T.max = lambda s, axis=None, keepdims=False: reduce_ops.max(s, axis, keepdims)
    T.min = lambda s, axis=None, keepdims=False: reduce_ops.min(s, axis, keepdims)
    T.var = lambda s, axis=None, keepdims=False, ddof=0: reduce_ops.var(s, axis, keepdims, ddof)
    T.std = lambda s, axis=None, keepdims=False, ddof=0: reduce_ops.std(s, axis, keepdims, ddof)
    T.cumsum = lambda s, axis=None: reduce_ops.cumsum(s, axis)
    T.cumprod = lambda s, axis=None: reduce_ops.cumprod(s, axis)
    T.argmax = lambda s, axis=None: reduce_ops.argmax(s, axis)
    T.argmin = lambda s, axis=None: reduce_ops.argmin(s, axis)
    T.argsort = lambda s, axis=-1: reduce_ops.argsort(s, axis)
    T.all = lambda s, axis=None: reduce_ops.all(s, axis)
    T.any = lambda s, axis=None: reduce_ops.any(s, axis)
    T.reshape = lambda s, *shape: shape_ops.reshape(
        s, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
    T.transpose = lambda s, *axes: shape_ops.transpose(
        s, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.swapaxes = lambda s, a, b: shape_ops.swapaxes(s, a, b)
    T.ravel = lambda s: shape_ops.ravel(s)
    T.flatten = lambda s: shape_ops.ravel(s)
    T.squeeze = lambda s, axis=None: shape_ops.squeeze(s, axis)
    T.astype = lambda s, dtype: shape_ops.astype(s, dtype)
    T.dot = lambda s, o: products.dot(s, o)
    T.clip = lambda s, a_min=None, a_max=None: ufuncs.clip(s, a_min, a_max)
    T.diagonal = lambda s, offset=0, axis1=0, axis2=1: shape_ops.diagonal(s, offset, axis1, axis2)
    T.trace = lambda s, offset=0: products.trace(s, offset)
    T.copy = lambda s: s
    T.item = lambda s: s.primal_value.item()
    T.tolist = lambda s: np.asarray(s.primal_value).tolist()
    T.__array__ = _no_array
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function


#: NumPy ufuncs that map directly onto one primitive (NumPy operators on a plain array and a
#: traced value arrive here)
_UFUNC_PRIMS = {np.matmul: matmul_p}
for _n, _p in BINARY_PRIMS.items():
    _UFUNC_PRIMS[getattr(np, _n)] = _p


def _no_array(self, dtype=None, copy=None):
    raise TypeError(
        "diffprog: a traced value cannot be converted to a NumPy array (that would silently "
        "drop its derivative); use diffprog.numpy functions instead (to index a NumPy array "
        "with a traced index, use diffprog.numpy.take(a, k)), or "
        "diffprog.stop_gradient(x) and its .primal_value for a constant"
    )


def _lookup(name):
    from .. import numpy as dnp

    return getattr(dnp, name, None)


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    if method == "__call__" and not kwargs:
        prim = _UFUNC_PRIMS.get(ufunc)
        if prim is not None:
            return prim.bind(*inputs)
    name = ufunc.__name__
    fn = _lookup(name) if method == "__call__" and not kwargs else None
    if fn is None:
        detail = f"numpy.{name}" + ("" if method == "__call__" else f".{method}")
        if kwargs:
            detail += f" with keyword arguments {sorted(kwargs)}"
        raise TypeError(
            f"diffprog: {detail} is not supported on traced values; diffprog.numpy has no "
            "differentiable version of it"
        )
    return fn(*inputs)


#: NumPy functions that only inspect their arguments: they see the concrete values
_INSPECT = {"result_type", "iscomplexobj", "isrealobj", "min_scalar_type", "can_cast",
            "isscalar", "array_equal", "allclose", "isclose", "array_equiv", "shares_memory",
            "may_share_memory", "array_repr", "array_str", "ndim", "shape", "size"}


def _concrete(x):
    if isinstance(x, Tracer):
        return x.primal_value
    if isinstance(x, (list, tuple)):
        return type(x)(_concrete(v) for v in x)
    return x


def _array_function(self, func, types, args, kwargs):
    name = func.__name__
    if name in _INSPECT:
        return func(*_concrete(args), **{k: _concrete(v) for k, v in kwargs.items()})
    fn = _lookup(name)
    if fn is None or fn is func:
        raise TypeError(
            f"diffprog: numpy.{name} is not supported on traced values; diffprog.numpy has no "
            "differentiable version of it"
        )
    return fn(*args, **kwargs)


_install()
_install_reverse_fast_paths()
