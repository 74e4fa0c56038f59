"""Higher-order directional derivatives along a curve: ``jet`` (book §2.5, §9.1.2).

Book §2.5.4 expands ``f(w + v)`` in a Taylor series; §9.1.2 mentions Taylor-mode AD for higher
derivatives. :func:`jet` pushes a truncated Taylor series through ``f``: given the curve
``x(t) = x_0 + x_1 t + x_2 t²/2! + … + x_K t^K/K!`` (``series = [x_1, …, x_K]``, derivatives at
``t = 0``), it returns ``f(x_0)`` and the derivatives ``d^k/dt^k f(x(t))|_{t=0}``, ``k = 1..K``.

The implementation differentiates the univariate function ``t ↦ f(x(t))`` with ``K`` nested
forward-mode JVPs in the scalar ``t``: exact to rounding, composable with every other
transformation, and meant for small orders (the cost grows like ``2^K``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.api import jvp
from ..core.pytree import tree_map

__all__ = ["jet"]


def jet(fun: Callable, primals: Sequence[Any], series: Sequence[Sequence[Any]]) -> tuple:
    """Push Taylor series through ``fun``: ``(f(x_0), [d^k/dt^k f(x(t)) at 0 for k = 1..K])``.

    ``primals = (x_0, y_0, …)`` are ``fun``'s arguments; ``series = ([x_1, …, x_K],
    [y_1, …, y_K], …)`` gives, for each argument, the derivatives of its curve at ``t = 0`` (so
    ``x(t) = Σ_k x_k t^k / k!``). With ``series = ([v, 0, …, 0],)`` the outputs are the
    directional derivatives ``∂^k f(x_0)[v, …, v]`` (book §2.5.2). Book §2.5.4 (Taylor
    expansions), §9.1.2 (Taylor mode).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> y0, (y1, y2, y3) = jet(dnp.exp, (np.array(1.0),), ([np.array(1.0), 0.0, 0.0],))
        >>> bool(np.allclose([y1, y2, y3], np.e))
        True
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(series, (tuple, list)):
        raise TypeError("jet: primals and series must be tuples (one entry per argument)")
    if len(primals) != len(series):
        raise ValueError(f"jet: got {len(primals)} primals but {len(series)} series")
    orders = {len(s) for s in series}
    if len(orders) != 1:
        raise ValueError(f"jet: every argument needs a series of the same length, got {orders}")
    order = orders.pop()
    if order < 1:
        raise ValueError("jet: each series needs at least one term (the first derivative)")

    def curve(t):
        args = []
        for x0, terms in zip(primals, series, strict=True):
            x = x0
            for k, xk in enumerate(terms, start=1):
                x = tree_map(lambda a, b, k=k: a + b * (t ** k / math.factorial(k)), x, xk)
            args.append(x)
        return fun(*args)

    def derivative(g):
        return lambda t: jvp(g, (t,), (np.ones_like(t),))[1]

    t0 = np.array(0.0)
    value = fun(*primals)
    out = []
    g = curve
    for _ in range(order):
        g = derivative(g)
        out.append(g(t0))
    return value, out
