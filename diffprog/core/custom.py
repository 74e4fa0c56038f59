"""User-defined differentiation rules: ``custom_jvp``, ``custom_vjp`` and ``stop_gradient``.

Book §8.4.1: any function can be made a primitive of its own. A ``custom_jvp`` function gets
reverse mode by linearizing and transposing its JVP rule (the rule must be linear in the
tangents); a ``custom_vjp`` function gets forward mode by transposing its backward rule (the VJP
of a VJP is the JVP, §8.4.4). Both become one node of the program graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .primitive import Primitive, Tracer
from .pytree import tree_flatten

__all__ = ["custom_jvp", "custom_vjp", "stop_gradient"]


def _has_tracer(leaves):
    for x in leaves:
        if isinstance(x, Tracer):
            return True
    return False


class custom_jvp:
    """Decorator giving a function its own JVP rule (book §8.4.1).

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> @diffprog.custom_jvp
        ... def softplus(x):
        ...     return dnp.logaddexp(x, 0.0)
        >>> @softplus.defjvp
        ... def softplus_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return softplus(x), t * (1 / (1 + dnp.exp(-x)))
        >>> float(diffprog.grad(softplus)(np.array(0.0)))
        0.5
    """

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.jvp_rule: Callable | None = None
        self.prim = Primitive(
            f"custom_jvp[{getattr(fun, '__name__', 'f')}]",
            self._impl,
            jvp=self._jvp,
            multiple_results=True,
            register=False,
        )

    def defjvp(self, rule: Callable) -> Callable:
        """Set ``rule(primals, tangents) -> (out, tangent_out)``; returns ``rule``."""
        self.jvp_rule = rule
        return rule

    def _impl(self, *leaves, in_def, box):
        out = self.fun(*in_def.unflatten(leaves))
        flat, out_def = tree_flatten(out)
        box[0] = out_def
        return tuple(flat)

    def _jvp(self, primals, tangents, ans, *, in_def, box):
        from ..numpy import tangent_zeros

        ts = [tangent_zeros(p) if t is None else t for p, t in zip(primals, tangents, strict=True)]
        _, tout = self.jvp_rule(tuple(in_def.unflatten(primals)), tuple(in_def.unflatten(ts)))
        flat_t, t_def = tree_flatten(tout)
        if t_def != box[0]:
            raise TypeError(
                f"custom_jvp rule of {self.__name__}: tangent output structure {t_def} does "
                f"not match the function's output structure {box[0]}"
            )
        return tuple(flat_t)

    def __call__(self, *args):
        if self.jvp_rule is None:
            raise TypeError(
                f"custom_jvp function {self.__name__} has no JVP rule: define one with @f.defjvp"
            )
        leaves, in_def = tree_flatten(args)
        if not _has_tracer(leaves):
            return self.fun(*args)
        box = [None]
        outs = self.prim.bind(*leaves, in_def=in_def, box=box)
        return box[0].unflatten(outs)


class custom_vjp:
    """Decorator giving a function its own VJP rule (book §8.4.1).

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and
    ``bwd(residuals, g) -> tuple`` with one cotangent per positional argument.

    Example::

        >>> import numpy as np, diffprog
        >>> @diffprog.custom_vjp
        ... def square(x):
        ...     return x * x
        >>> square.defvjp(lambda x: (x * x, x), lambda x, g: (2 * x * g,))
        >>> float(diffprog.grad(square)(np.array(3.0)))
        6.0
    """

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self.prim = Primitive(
            f"custom_vjp[{getattr(fun, '__name__', 'f')}]",
            self._impl,
            multiple_results=True,
            register=False,
        )
        self.prim.vjp_joint = self._vjp_joint

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set the forward rule (returning residuals) and the backward rule."""
        self.fwd = fwd
        self.bwd = bwd

    def _impl(self, *leaves, in_def, box):
        out, res = self.fwd(*in_def.unflatten(leaves))
        flat, out_def = tree_flatten(out)
        flat_res, res_def = tree_flatten(res)
        box[0] = (out_def, len(flat), res_def)
        return tuple(flat) + tuple(flat_res)

    def _vjp_joint(self, g, ans, argnums, *leaves, in_def, box):
        from ..numpy import zeros_like

        out_def, n_out, res_def = box[0]
        res = res_def.unflatten(ans[n_out:])
        g_out = [zeros_like(a) if c is None else c for c, a in zip(g[:n_out], ans, strict=False)]
        cts = self.bwd(res, out_def.unflatten(g_out))
        if not isinstance(cts, (tuple, list)) or len(cts) != len(in_def.children):
            raise TypeError(
                f"custom_vjp bwd of {self.__name__} must return a tuple with one cotangent per "
                f"positional argument ({len(in_def.children)}), got {type(cts).__name__}"
            )
        flat_ct, ct_def = tree_flatten(tuple(cts))
        if ct_def != in_def:
            raise TypeError(
                f"custom_vjp bwd of {self.__name__}: cotangent structure {ct_def} does not "
                f"match the arguments' structure {in_def}"
            )
        g_res = g[n_out:]
        if any(c is not None for c in g_res):
            # the residuals are functions of the inputs too (this matters at second order, when
            # an outer transformation differentiates the backward rule): add their VJP
            from .api import vjp

            def residuals(*xs):
                return tuple(tree_flatten(self.fwd(*in_def.unflatten(xs))[1])[0])

            _, res_vjp = vjp(residuals, *leaves)
            extra = res_vjp(tuple(zeros_like(a) if c is None else c
                                  for c, a in zip(g_res, ans[n_out:], strict=True)))
            flat_ct = [c if e is None else c + e for c, e in zip(flat_ct, extra, strict=True)]
        return [flat_ct[i] for i in argnums]

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(
                f"custom_vjp function {self.__name__} has no VJP rule: call f.defvjp(fwd, bwd)"
            )
        leaves, in_def = tree_flatten(args)
        if not _has_tracer(leaves):
            return self.fun(*args)
        box = [None]
        outs = self.prim.bind(*leaves, in_def=in_def, box=box)
        out_def, n_out, _ = box[0]
        return out_def.unflatten(outs[:n_out])


stop_gradient_p = Primitive("stop_gradient", lambda x: x, nondiff=True)


def stop_gradient(x: Any) -> Any:
    """Identity whose derivative is zero: ``∂ stop_gradient(x) = 0`` (all leaves of a pytree).
    Book §8.4.1 (primitive functions).

    Example::

        >>> import numpy as np, diffprog
        >>> float(diffprog.grad(lambda x: x * diffprog.stop_gradient(x))(np.array(3.0)))
        3.0
    """
    leaves, d = tree_flatten(x)
    return d.unflatten([stop_gradient_p.bind(v) for v in leaves])
