"""Public elementwise functions of :mod:`diffprog.numpy` (book §2.3; rules in ``elementwise``).

Each function mirrors the NumPy ufunc of the same name and broadcasts like it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.primitive import Primitive, Tracer
from ..core.reverse import make_fast_unary
from .elementwise import (
    _FORMULAS,
    BINARY_PRIMS,
    NONDIFF_PRIMS,
    UNARY_PRIMS,
    clip_p,
    conj_p,
    imag_p,
    real_p,
)
from .structural import select_p

_BINARY_FORMULAS = {
    "add": "∂x = 1, ∂y = 1", "subtract": "∂x = 1, ∂y = -1", "multiply": "∂x = y, ∂y = x",
    "divide": "∂x = 1/y, ∂y = -x/y²", "power": "∂x = y x^(y-1), ∂y = x^y log x (0 for x ≤ 0)",
    "maximum": "1 where x > y, 1/2 at ties", "minimum": "1 where x < y, 1/2 at ties",
    "fmax": "as maximum", "fmin": "as minimum",
    "arctan2": "∂y = x/(x²+y²), ∂x = -y/(x²+y²)", "hypot": "∂x = x/h, ∂y = y/h",
    "logaddexp": "∂x = exp(x - out), ∂y = exp(y - out)",
    "logaddexp2": "∂x = 2^(x - out), ∂y = 2^(y - out)",
    "remainder": "∂x = 1, ∂y = -floor(x/y)", "fmod": "∂x = 1, ∂y = -trunc(x/y)",
}


def _make_unary(name: str, prim: Primitive):
    fn = make_fast_unary(prim)
    fn.__name__ = fn.__qualname__ = name
    formula = _FORMULAS.get(name, "-1" if name == "negative" else "")
    fn.__doc__ = (
        f"Elementwise ``numpy.{name}``, differentiable: d/dx {name}(x) = {formula}.\n\n"
        f"Book §2.3 (separable functions, Example 8.4: the JVP and VJP are f'(x) ⊙ v).\n\n"
        f"Example: ``diffprog.numpy.{name}(np.array([0.5]))``."
    )
    return fn


def _make_binary(name: str, prim: Primitive):
    bind = prim.bind

    def fn(x: Any, y: Any) -> Any:
        return bind(x, y)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"Elementwise ``numpy.{name}`` with broadcasting, differentiable: "
        f"{_BINARY_FORMULAS.get(name, '')}.\n\n"
        "Book §2.3; broadcast arguments receive summed cotangents (§8.3.2).\n\n"
        f"Example: ``diffprog.numpy.{name}(np.array([1.0, 2.0]), 2.0)``."
    )
    return fn


def _make_nondiff(name: str, prim: Primitive):
    bind = prim.bind

    def fn(*args: Any) -> Any:
        return bind(*args)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"``numpy.{name}``: piecewise constant, so its derivative is 0 wherever it exists "
        "(book §5.1, step functions); traced inputs give plain NumPy outputs.\n\n"
        f"Example: ``diffprog.numpy.{name}(np.array([1.5]){_second_arg(prim.name)})``."
    )
    return fn


def _second_arg(name):
    return ", 1.0" if name in _BIN else ""


_BIN = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and",
        "logical_or", "logical_xor", "floor_divide", "heaviside", "bitwise_and", "bitwise_or",
        "bitwise_xor"}

UFUNCS: dict[str, Any] = {}
for _name, _prim in UNARY_PRIMS.items():
    UFUNCS[_name] = _make_unary(_name, _prim)
for _name, _prim in BINARY_PRIMS.items():
    UFUNCS[_name] = _make_binary(_name, _prim)
for _name, _prim in NONDIFF_PRIMS.items():
    UFUNCS[_name] = _make_nondiff(_name, _prim)
UFUNCS["real"] = _make_unary("real", real_p)
UFUNCS["imag"] = _make_unary("imag", imag_p)
UFUNCS["conjugate"] = _make_unary("conjugate", conj_p)
UFUNCS["true_divide"] = UFUNCS["divide"]
UFUNCS["absolute"] = UFUNCS["abs"]
UFUNCS["fabs"] = UFUNCS["abs"]
UFUNCS["mod"] = UFUNCS["remainder"]
UFUNCS["conj"] = UFUNCS["conjugate"]
UFUNCS["radians"] = UFUNCS["deg2rad"]
UFUNCS["degrees"] = UFUNCS["rad2deg"]
UFUNCS["round"] = UFUNCS["rint"]
UFUNCS["around"] = UFUNCS["rint"]
UFUNCS["fix"] = UFUNCS["trunc"]

globals().update(UFUNCS)



def positive(x: Any) -> Any:
    """Identity ``+x`` (book §2.3). Example: ``positive(np.array([1.]))`` → ``array([1.])``."""
    return x


def float_power(x: Any, y: Any) -> Any:
    """``x ** y`` computed in float64 (see :func:`power`). Book §2.3.

    Example: ``float_power(np.array([2.0]), 3)`` → ``array([8.])``.
    """
    return UFUNCS["power"](x, y)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """``numpy.where(condition, x, y)``: select, linear in ``x`` and ``y`` (book §5.1).

    The condition is not differentiated (a step function). With one argument it returns the
    indices of the non-zero entries, like NumPy.

    Example: ``where(np.array([True, False]), 1.0, 2.0)`` → ``array([1., 2.])``.
    """
    from ._base import primal

    if x is None and y is None:
        return np.nonzero(primal(condition))
    if x is None or y is None:
        raise TypeError("where: give both x and y, or neither")
    if isinstance(condition, Tracer):  # a traced condition is a constant of the program
        c = condition
        while isinstance(c, Tracer) and c.concrete:
            c = c.value
        condition = c
    return select_p.bind(condition, x, y)


def clip(a: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """``numpy.clip``: ``min(max(a, a_min), a_max)``.

    Derivative 1 in ``a`` on the closed interval ``[a_min, a_max]`` (so 1 at the bounds, an
    element of the Clarke subdifferential), 1 in ``a_min`` where ``a < a_min`` and 1 in
    ``a_max`` where ``a > a_max``. Book §2.3 / §13 (projection onto a box).

    Example: ``clip(np.array([-2., 0., 2.]), -1, 1)`` → ``array([-1., 0., 1.])``.
    """
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given")
    lo = -np.inf if a_min is None else a_min
    hi = np.inf if a_max is None else a_max
    return clip_p.bind(a, lo, hi)


__all__ = [*UFUNCS, "positive", "float_power", "where", "clip"]
