"""Common machinery of the solvers: result container, flattened problems, stopping rules.

Book §15.2 (oracles), §16.1.2 and §16.3.2 / OPT-09 (stopping criteria: ``‖∇L(ŵ)‖₂ ≤ ε``).
Parameters may be arbitrary pytrees: every solver ravels them into one flat float vector
(``diffprog.core.pytree.ravel_pytree``), works on NumPy arrays and unravels the solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.api import hessian as _hessian
from ...core.api import hvp as _hvp
from ...core.api import value_and_grad as _value_and_grad
from ...core.pytree import ravel_pytree

__all__ = ["OptResult", "Problem", "check_positive", "check_finite"]


@dataclass
class OptResult:
    """Result of a solver run.
    Book §15.2 (oracles and solvers).

    ``solution``: final parameters (same pytree structure as ``w0``); ``value``: objective there;
    ``grad_norm``: ``‖∇L‖₂`` (or the optimality residual used by the solver); ``iterations``;
    ``num_fun_evals`` (objective oracle calls; a value-and-gradient evaluation counts as one, as
    scipy's ``jac=True``), ``num_grad_evals``, ``num_hvp_evals``; ``converged``; ``status``
    (a short message); ``history``: dict of per-iteration lists (``"value"``, ``"grad_norm"``,
    ``"params"`` (flat), plus solver-specific entries).

    Example: ``gradient_descent(f, w0).solution`` is the final iterate; ``.value`` its objective.
    """

    solution: Any
    value: float
    grad_norm: float
    iterations: int
    num_fun_evals: int
    num_grad_evals: int = 0
    num_hvp_evals: int = 0
    converged: bool = False
    status: str = ""
    history: dict = field(default_factory=dict)

    @property
    def x(self) -> Any:
        """Alias of :attr:`solution` (scipy naming)."""
        return self.solution

    @property
    def params(self) -> Any:
        """Alias of :attr:`solution` (JAXopt naming)."""
        return self.solution


def check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite positive (or non-negative) number."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return v


def check_finite(name: str, value: Any) -> None:
    """Raise ``FloatingPointError`` if ``value`` contains NaN or inf."""
    if not np.all(np.isfinite(value)):
        raise FloatingPointError(f"{name} is not finite: {value!r}")


def flatten(w0: Any) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """Ravel a pytree into a float vector; plain arrays skip the pytree machinery."""
    if isinstance(w0, (int, float, np.ndarray, np.generic)):
        arr = np.asarray(w0, dtype=float)
        shape = arr.shape
        return arr.ravel().copy(), (lambda x: x.reshape(shape))
    flat, unravel = ravel_pytree(w0)
    return np.asarray(flat, dtype=float).copy(), unravel


class Problem:
    """Counting oracle over a flattened objective ``x ↦ fun(unravel(x), *args)`` (Book §15.2).

    Orders: :meth:`value` (0), :meth:`value_and_grad` (1), :meth:`hvp` / :meth:`hessian` (2).
    """

    def __init__(self, fun: Callable, w0: Any, args: tuple = ()) -> None:
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        self.x0, self.unravel = flatten(w0)
        check_finite("w0", self.x0)
        unravel = self.unravel
        self.f = lambda x: fun(unravel(x), *args)
        self._vg = _value_and_grad(self.f)
        self.nfev = 0
        self.ngev = 0
        self.nhev = 0

    def value(self, x: np.ndarray) -> float:
        self.nfev += 1
        return float(self.f(x))

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.nfev += 1
        self.ngev += 1
        v, g = self._vg(x)
        return float(v), np.asarray(g, dtype=float).reshape(-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.nhev += 1
        return np.asarray(_hvp(self.f, x, v), dtype=float).reshape(-1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.nhev += 1
        H = np.asarray(_hessian(self.f)(x), dtype=float)
        return H.reshape(x.size, x.size)

    def result(self, x: np.ndarray, value: float, gnorm: float, it: int, converged: bool,
               status: str, history: dict) -> OptResult:
        return OptResult(solution=self.unravel(x), value=float(value), grad_norm=float(gnorm),
                         iterations=it, num_fun_evals=self.nfev + self.nhev,
                         num_grad_evals=self.ngev, num_hvp_evals=self.nhev,
                         converged=converged, status=status, history=history)


def new_history() -> dict:
    return {"value": [], "grad_norm": [], "params": []}


def record(history: dict | None, x: np.ndarray, value: float, gnorm: float) -> None:
    if history is None:
        return
    history["value"].append(float(value))
    history["grad_norm"].append(float(gnorm))
    history["params"].append(np.array(x, dtype=float))


def check_maxiter(maxiter: int) -> int:
    if int(maxiter) != maxiter or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer, got {maxiter!r}")
    return int(maxiter)
