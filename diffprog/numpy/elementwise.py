"""Elementwise (ufunc) primitives and their derivatives (book §2.3, §8.4.3 Example 8.4).

Elementwise functions are *separable*: their Jacobian is diagonal, so the JVP and the VJP are
the same product ``f'(x) ⊙ v`` and no Jacobian is ever materialised. Each unary primitive is one
row of :data:`UNARY` ``name -> (ufunc, derivative(x, ans))`` and each binary primitive one row of
:data:`BINARY` ``name -> (ufunc, ∂_x(x, y, ans), ∂_y(x, y, ans))``; derivatives are written with
this namespace's own functions, so they can be differentiated again. The arithmetic primitives
(add, subtract, multiply, divide, negative) are linear in each argument and also carry transpose
rules.

Non-smooth points (a documented element of the Clarke subdifferential):
``abs'(0) = 0``; ``maximum``/``minimum``/``fmax``/``fmin`` split ties ``1/2, 1/2``;
``clip`` has derivative 1 in x on the closed interval ``[lo, hi]`` (so 1 at the bounds);
step functions (``sign``, ``floor``, ``ceil``, ``round``, comparisons) have derivative 0.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.primitive import Primitive, Tracer
from ._base import dtype_of, is_undefined, shape_of
from .structural import broadcast_to_p, unbroadcast

# ----------------------------------------------------------------------------- arithmetic


def _fit(t, ans):
    """Broadcast a tangent to the output's shape."""
    s = shape_of(ans)
    if shape_of(t) != s:
        t = broadcast_to_p.bind(t, shape=s)
    return t


def _add_jvp(primals, tangents, ans):
    tx, ty = tangents
    if tx is None:
        return _fit(ty, ans)
    if ty is None:
        return _fit(tx, ans)
    return _fit(tx + ty, ans)


def _t_real(c, x):
    """The cotangent of a real linear input is the real part of a complex cotangent."""
    if dtype_of(c).kind == "c" and np.dtype(x.dtype).kind != "c":
        return real_p.bind(c)
    return c


def _add_t(ct, x, y):
    return (_t_real(unbroadcast(ct, x.shape), x) if is_undefined(x) else None,
            _t_real(unbroadcast(ct, y.shape), y) if is_undefined(y) else None)


add_p = Primitive("add", np.add, jvp=_add_jvp, transpose=_add_t)


def _ub(r, x):
    """``unbroadcast(r, shape of x)`` with a fast exit for equal shapes; the cotangent of a real
    input is the real part of a complex cotangent."""
    try:
        if r.dtype.kind == "c" and x.dtype.kind != "c":
            r = real_p.bind(r)
        if r.shape == x.shape:
            return r
    except AttributeError:
        if isinstance(r, complex) and dtype_of(x).kind != "c":
            r = r.real
    return unbroadcast(r, shape_of(x))


add_p.vjps = (lambda g, ans, x, y: _ub(g, x), lambda g, ans, x, y: _ub(g, y))


def _sub_jvp(primals, tangents, ans):
    tx, ty = tangents
    if tx is None:
        return _fit(-ty, ans)
    if ty is None:
        return _fit(tx, ans)
    return _fit(tx - ty, ans)


def _sub_t(ct, x, y):
    return (_t_real(unbroadcast(ct, x.shape), x) if is_undefined(x) else None,
            _t_real(unbroadcast(-ct, y.shape), y) if is_undefined(y) else None)


subtract_p = Primitive("subtract", np.subtract, jvp=_sub_jvp, transpose=_sub_t)
subtract_p.vjps = (lambda g, ans, x, y: _ub(g, x), lambda g, ans, x, y: _ub(-g, y))


def _mul_jvp(primals, tangents, ans):
    x, y = primals
    tx, ty = tangents
    if tx is None:
        return _fit(x * ty, ans)
    if ty is None:
        return _fit(tx * y, ans)
    return _fit(tx * y + x * ty, ans)


def _mul_t(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise TypeError("multiply: the product of two linear inputs is not linear")
    if is_undefined(x):
        return _t_real(unbroadcast(ct * y, x.shape), x), None
    return None, _t_real(unbroadcast(x * ct, y.shape), y)


multiply_p = Primitive("multiply", np.multiply, jvp=_mul_jvp, transpose=_mul_t)
multiply_p.vjps = (lambda g, ans, x, y: _ub(g * y, x), lambda g, ans, x, y: _ub(x * g, y))


def _div_jvp(primals, tangents, ans):
    x, y = primals
    tx, ty = tangents
    if ty is None:
        return _fit(tx / y, ans)
    if tx is None:
        return _fit(-(ty * ans) / y, ans)
    return _fit((tx - ty * ans) / y, ans)


def _div_t(ct, x, y):
    if is_undefined(y):
        raise TypeError("divide: the function is not linear in the denominator")
    return _t_real(unbroadcast(ct / y, x.shape), x), None


divide_p = Primitive("divide", np.divide, jvp=_div_jvp, transpose=_div_t)
divide_p.vjps = (lambda g, ans, x, y: _ub(g / y, x), lambda g, ans, x, y: _ub(-(g * ans) / y, y))

negative_p = Primitive("negative", np.negative, transpose=lambda ct, x: (-ct,))
negative_p.jvp = lambda primals, tangents, ans: -tangents[0]
negative_p.vjps = (lambda g, ans, x: -g,)

# ----------------------------------------------------------------------------- unary table
# derivative(x, ans) written with the differentiable namespace (resolved at call time)
_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


#: the differentiable namespace, set by ``diffprog.numpy`` once it is fully imported
dnp = None


UNARY = {
    "exp": (np.exp, lambda x, y: y),
    "exp2": (np.exp2, lambda x, y: y * _LN2),
    "expm1": (np.expm1, lambda x, y: y + 1),
    "log": (np.log, lambda x, y: 1 / x),
    "log2": (np.log2, lambda x, y: 1 / (x * _LN2)),
    "log10": (np.log10, lambda x, y: 1 / (x * _LN10)),
    "log1p": (np.log1p, lambda x, y: 1 / (1 + x)),
    "sqrt": (np.sqrt, lambda x, y: 0.5 / y),
    "cbrt": (np.cbrt, lambda x, y: 1 / (3 * y * y)),
    "square": (np.square, lambda x, y: 2 * x),
    "reciprocal": (np.reciprocal, lambda x, y: -(y * y)),
    "sin": (np.sin, lambda x, y: dnp.cos(x)),
    "cos": (np.cos, lambda x, y: -dnp.sin(x)),
    "tan": (np.tan, lambda x, y: 1 + y * y),
    "arcsin": (np.arcsin, lambda x, y: 1 / dnp.sqrt(1 - x * x)),
    "arccos": (np.arccos, lambda x, y: -1 / dnp.sqrt(1 - x * x)),
    "arctan": (np.arctan, lambda x, y: 1 / (1 + x * x)),
    "sinh": (np.sinh, lambda x, y: dnp.cosh(x)),
    "cosh": (np.cosh, lambda x, y: dnp.sinh(x)),
    "tanh": (np.tanh, lambda x, y: 1 - y * y),
    "arcsinh": (np.arcsinh, lambda x, y: 1 / dnp.sqrt(x * x + 1)),
    "arccosh": (np.arccosh, lambda x, y: 1 / dnp.sqrt(x * x - 1)),
    "arctanh": (np.arctanh, lambda x, y: 1 / (1 - x * x)),
    "abs": (np.abs, lambda x, y: dnp.sign(x)),  # real inputs; complex handled below
    "deg2rad": (np.deg2rad, lambda x, y: math.pi / 180),
    "rad2deg": (np.rad2deg, lambda x, y: 180 / math.pi),
}

#: formulas shown in the generated docstrings
_FORMULAS = {
    "exp": "exp(x)", "exp2": "2^x log 2", "expm1": "exp(x)", "log": "1/x",
    "log2": "1/(x log 2)", "log10": "1/(x log 10)", "log1p": "1/(1+x)",
    "sqrt": "1/(2 sqrt x)", "cbrt": "1/(3 x^(2/3))", "square": "2x", "reciprocal": "-1/x^2",
    "sin": "cos x", "cos": "-sin x", "tan": "1 + tan^2 x", "arcsin": "1/sqrt(1-x^2)",
    "arccos": "-1/sqrt(1-x^2)", "arctan": "1/(1+x^2)", "sinh": "cosh x", "cosh": "sinh x",
    "tanh": "1 - tanh^2 x", "arcsinh": "1/sqrt(x^2+1)", "arccosh": "1/sqrt(x^2-1)",
    "arctanh": "1/(1-x^2)", "abs": "sign(x) (0 at x = 0)", "deg2rad": "pi/180",
    "rad2deg": "180/pi",
}


def _tanh_vjp_plain(g, ans):
    t = ans * ans
    np.subtract(1.0, t, out=t)
    t *= g
    return t


#: in-place NumPy versions of ``g * f'(x)`` for plain arrays: the same formula as the table
#: with fewer temporaries (first-order fast paths)
_PLAIN_VJP = {"tanh": _tanh_vjp_plain, "exp": lambda g, ans: g * ans}


def _unary(name, ufunc, deriv):
    prim = Primitive(name, ufunc)
    plain = _PLAIN_VJP.get(name)

    def jvp(primals, tangents, ans):
        return tangents[0] * deriv(primals[0], ans)

    def vjp(g, ans, x):
        if plain is not None and type(g) is np.ndarray and type(ans) is np.ndarray:
            return plain(g, ans)
        return g * deriv(x, ans)

    prim.jvp = jvp
    prim.vjps = (vjp,)
    return prim


UNARY_PRIMS = {name: _unary(name, uf, d) for name, (uf, d) in UNARY.items()}


def _abs_jvp(primals, tangents, ans):
    (x,), (t,) = primals, tangents
    if dtype_of(x).kind == "c":  # |z|' [v] = Re(conj(z/|z|) v)
        return real_p.bind(conj_p.bind(dnp.sign(x)) * t)
    return t * dnp.sign(x)


def _abs_vjp(g, ans, x):
    if dtype_of(x).kind == "c":
        return g * conj_p.bind(dnp.sign(x))
    return g * dnp.sign(x)


UNARY_PRIMS["abs"].jvp = _abs_jvp
UNARY_PRIMS["abs"].vjps = (_abs_vjp,)
UNARY_PRIMS["negative"] = negative_p

# ----------------------------------------------------------------------------- binary table


def _pow_dx(x, y, ans):
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        if y == 0:
            return 0.0 * x
        if y == 2:
            return 2 * x
        return y * x ** (y - 1)
    return dnp.where(y == 0, 0.0, y * x ** dnp.where(y == 0, 1.0, y - 1))


def _pow_dy(x, y, ans):
    if isinstance(x, (int, float)) and not isinstance(x, bool):  # a Python base stays weak
        return ans * math.log(x) if x > 0 else 0.0 * ans
    safe = dnp.where(x > 0, x, 1.0)
    return dnp.where(x > 0, ans * dnp.log(safe), 0.0)


def _half_tie(cmp):
    """Weight 1 where ``cmp(x, y)``, 1/2 at ties, 0 elsewhere (a constant: zero derivative)."""

    def d(x, y, ans):
        dt = np.result_type(dtype_of(ans), np.float16)
        if not isinstance(x, Tracer) and not isinstance(y, Tracer):
            w = np.where(cmp(x, y), 1.0, np.where(np.equal(x, y), 0.5, 0.0))
            return w.astype(dt)
        one, half, zero = dt.type(1.0), dt.type(0.5), dt.type(0.0)
        return dnp.where(cmp(x, y), one, dnp.where(dnp.equal(x, y), half, zero))

    return d


BINARY = {
    "power": (np.power, _pow_dx, _pow_dy),
    "maximum": (np.maximum, _half_tie(lambda a, b: a > b), _half_tie(lambda a, b: b > a)),
    "minimum": (np.minimum, _half_tie(lambda a, b: a < b), _half_tie(lambda a, b: b < a)),
    "fmax": (np.fmax, _half_tie(lambda a, b: a > b), _half_tie(lambda a, b: b > a)),
    "fmin": (np.fmin, _half_tie(lambda a, b: a < b), _half_tie(lambda a, b: b < a)),
    "arctan2": (np.arctan2, lambda y, x, a: x / (x * x + y * y),
                lambda y, x, a: -y / (x * x + y * y)),
    "hypot": (np.hypot, lambda x, y, a: x / a, lambda x, y, a: y / a),
    "logaddexp": (np.logaddexp, lambda x, y, a: dnp.exp(x - a),
                  lambda x, y, a: dnp.exp(y - a)),
    "logaddexp2": (np.logaddexp2, lambda x, y, a: dnp.exp2(x - a),
                   lambda x, y, a: dnp.exp2(y - a)),
    "remainder": (np.remainder, lambda x, y, a: 1.0 + 0.0 * x,
                  lambda x, y, a: -dnp.floor_divide(x, y)),
    "fmod": (np.fmod, lambda x, y, a: 1.0 + 0.0 * x,
             lambda x, y, a: -dnp.trunc(x / y)),
}


def _binary(name, ufunc, d0, d1):
    prim = Primitive(name, ufunc)

    def jvp(primals, tangents, ans):
        x, y = primals
        tx, ty = tangents
        out = None
        if tx is not None:
            out = tx * d0(x, y, ans)
        if ty is not None:
            c = ty * d1(x, y, ans)
            out = c if out is None else out + c
        return _fit(out, ans)

    prim.jvp = jvp
    prim.vjps = (lambda g, ans, x, y: _ub(g * d0(x, y, ans), x),
                 lambda g, ans, x, y: _ub(g * d1(x, y, ans), y))
    return prim


BINARY_PRIMS = {name: _binary(name, uf, d0, d1) for name, (uf, d0, d1) in BINARY.items()}
BINARY_PRIMS.update(add=add_p, subtract=subtract_p, multiply=multiply_p, divide=divide_p)

# ----------------------------------------------------------------------------- clip


def _clip_impl(x, lo, hi):
    return np.clip(x, lo, hi)


def _clip_jvp(primals, tangents, ans):
    x, lo, hi = primals
    tx, tlo, thi = tangents
    out = None
    if tx is not None:
        out = dnp.where((x >= lo) & (x <= hi), tx, 0.0)
    if tlo is not None:
        c = dnp.where(x < lo, tlo, 0.0)
        out = c if out is None else out + c
    if thi is not None:
        c = dnp.where(x > hi, thi, 0.0)
        out = c if out is None else out + c
    return _fit(out, ans)


def _clip_vjp(i):
    def rule(g, ans, x, lo, hi):
        mask = [(x >= lo) & (x <= hi), x < lo, x > hi][i]
        return unbroadcast(dnp.where(mask, g, 0.0), shape_of((x, lo, hi)[i]))

    return rule


clip_p = Primitive("clip", _clip_impl, jvp=_clip_jvp,
                   vjps=(_clip_vjp(0), _clip_vjp(1), _clip_vjp(2)))

# ----------------------------------------------------------------------------- zero-derivative
NONDIFF_UNARY = {
    name: getattr(np, name)
    for name in ["sign", "floor", "ceil", "rint", "trunc", "isfinite", "isnan", "isinf",
                 "logical_not", "signbit", "invert"]
}
NONDIFF_BINARY = {
    name: getattr(np, name)
    for name in ["greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
                 "logical_and", "logical_or", "logical_xor", "floor_divide", "heaviside",
                 "bitwise_and", "bitwise_or", "bitwise_xor"]
}
NONDIFF_PRIMS = {name: Primitive(name, uf, nondiff=True)
                 for name, uf in {**NONDIFF_UNARY, **NONDIFF_BINARY}.items()}

# ----------------------------------------------------------------------------- complex parts


def _real_t(ct, x):
    return (ct if np.dtype(x.dtype).kind != "c" else ct + 0j,)


real_p = Primitive("real", np.real, transpose=_real_t)
real_p.jvp = lambda primals, tangents, ans: real_p.bind(tangents[0])
conj_p = Primitive("conjugate", np.conjugate, transpose=lambda ct, x: (conj_p.bind(ct),))
conj_p.jvp = lambda primals, tangents, ans: conj_p.bind(tangents[0])


def _imag_t(ct, x):
    return ((-1j) * ct if np.dtype(x.dtype).kind == "c" else 0.0 * ct,)


imag_p = Primitive("imag", np.imag, transpose=_imag_t)
imag_p.jvp = lambda primals, tangents, ans: imag_p.bind(tangents[0])

