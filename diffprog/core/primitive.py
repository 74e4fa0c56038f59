"""Primitives, traces and tracers: the machinery every transformation shares (book §8.4).

A **primitive** is an operation on arrays with rules:

- ``impl(*args, **params)``: the NumPy implementation (its output also fixes shapes and dtypes:
  tracing is *concrete*, so the IR carries example values instead of a separate shape rule);
- ``jvp(primals, tangents, ans, **params)``: the tangent of the output, where ``tangents`` holds
  ``None`` for a zero (symbolic zero) tangent (book §8.1.1);
- ``vjps``: one rule per positional argument ``rule(g, ans, *args, **params)`` returning that
  argument's cotangent (book §8.1.2), or ``vjp_joint(g, ans, argnums, *args, **params)``
  returning the cotangents of the arguments ``argnums`` at once, **or** for a linear primitive a
  ``transpose(ct, *args, **params)`` rule where the linear inputs are :class:`UndefinedPrimal`
  (book §8.4.4). A primitive with a JVP rule only still gets reverse mode through linearize and
  transpose (:mod:`diffprog.core.linearize`), and one with a VJP rule only gets forward mode by
  transposing its VJP (book §8.4.4, "the VJP of a VJP is the JVP").

Rules are written with differentiable primitives themselves, so transformations nest to any
order (book §8.4.2).

A **trace** is an interpreter; a **tracer** is a value being interpreted by a trace. Traces are
ordered by ``level`` (creation order), and :meth:`Primitive.bind` hands an operation to the
highest-level trace among its arguments; lower-level tracers are constants to it. This keeps the
perturbations of nested transformations apart (``grad(grad(f))``). The stack of active traces
is per thread, so gradients may be computed concurrently in threads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import numpy as np

__all__ = ["Primitive", "Trace", "Tracer", "UndefinedPrimal", "new_level"]

_level_counter = itertools.count(1)


def new_level() -> int:
    """A fresh trace level, higher than every level handed out before."""
    return next(_level_counter)


class _ThreadState(threading.local):
    def __init__(self):
        self.stack = []


thread_state = _ThreadState()


class Trace:
    """Base class of interpreters. Subclasses implement ``process(prim, args, params)``."""

    __slots__ = ("level",)

    def __init__(self):
        self.level = new_level()

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        thread_state.stack.append(self)
        return self

    def __exit__(self, *exc):
        thread_state.stack.pop()
        return False


class Tracer:
    """A value carried through a transformation. NumPy operators and methods are installed on
    this class by :mod:`diffprog.numpy` (they bind that namespace's primitives)."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000
    #: False for the abstract tracers of ``jit``: their example value must not steer the program
    concrete = True

    @property
    def primal_value(self):
        """The innermost concrete NumPy value of this tracer."""
        v = self
        while isinstance(v, Tracer):
            v = v.value
        return v

    @property
    def shape(self):
        return np.shape(self.primal_value)

    @property
    def dtype(self):
        return np.result_type(self.primal_value)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __len__(self):
        s = self.shape
        if not s:
            raise TypeError("len() of a 0-d traced array")
        return s[0]

    def __bool__(self):
        return bool(self.primal_value)

    def __float__(self):
        return float(self.primal_value)

    def __int__(self):
        return int(self.primal_value)

    def __index__(self):
        return int(self.primal_value)

    def __hash__(self):
        return id(self)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"{type(self).__name__}({self.primal_value!r})"


class UndefinedPrimal:
    """Marks a linear input of a primitive in a transpose rule; carries its shape and dtype."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"UndefinedPrimal({self.shape}, {self.dtype})"


class Primitive:
    """An operation with an implementation and differentiation rules (see module docstring)."""

    __slots__ = (
        "name",
        "impl",
        "jvp",
        "vjps",
        "vjp_joint",
        "transpose",
        "batch",
        "multiple_results",
        "nondiff",
        "dynamic_params",
        "inplace_arg",

        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        impl: Callable,
        *,
        jvp: Callable | None = None,
        vjps: tuple | None = None,
        transpose: Callable | None = None,
        multiple_results: bool = False,
        nondiff: bool = False,
        register: bool = True,
    ):
        self.name = name
        self.impl = impl
        self.jvp = jvp
        self.vjps = vjps
        self.vjp_joint = None
        self.transpose = transpose
        self.batch = None
        self.multiple_results = multiple_results
        self.nondiff = nondiff
        #: parameters may hold traced values (index arrays under jit): they take part in
        #: choosing the trace that processes an application
        self.dynamic_params = False
        #: index of an argument whose buffer ``impl`` may write its (first) result into when
        #: called with ``out=`` that argument; ``jit`` does so when the argument dies there
        self.inplace_arg = None
        if register:
            registry[name] = self

    def bind(self, *args, **params):
        """Apply the primitive: to the innermost-active trace among ``args``, else to arrays."""
        top = None
        for a in args:
            if isinstance(a, Tracer):
                t = a._trace
                if top is None or t.level > top.level:
                    top = t
        if self.dynamic_params:
            top = _top_in_params(params.values(), top)
        if top is None:
            if profiler is not None:
                return profiler.run(self, args, params)
            return self.impl(*args, **params)
        return top.process(self, args, params)

    def __repr__(self):
        return f"Primitive({self.name})"


def _top_in_params(values, top):
    for v in values:
        if isinstance(v, Tracer):
            t = v._trace
            if top is None or t.level > top.level:
                top = t
        elif type(v) is tuple:
            top = _top_in_params(v, top)
    return top


#: the active instrumentation probe (see :mod:`diffprog.core.instrument`), or None
profiler = None

#: every primitive ever created, by name (used by the test suite to check them all)
registry: dict[str, Primitive] = {}
