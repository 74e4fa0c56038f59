"""Oracles: zero-, first- and second-order access to an objective (Book §15.2, §16.2).

An optimization algorithm is ``w^{t+1} = A(w^t, O(w^t), λ)`` where the oracle ``O`` returns the
value ``L(w)`` (order 0), the gradient ``∇L(w)`` (order 1) or the Hessian / HVP ``∇²L(w)v``
(order 2). :class:`Oracle` bundles these over the AD engine and counts calls; solvers declare the
order they need with :data:`ORACLE_ORDER`-style integers. :class:`StochasticOracle` returns
mini-batch gradients ``g(w;S) = 1/m Σ_{i∈S} ∇L(w;s_i)`` (Book §16.2.1, Def 16.1);
:func:`empirical_risk` / :func:`linear_erm` build ``L(w) = 1/n Σ L(w;(x_i,y_i))`` (Peyré 003
(14.8)–(14.13)); :func:`fd_grad` / :func:`check_grad` are the zero-order gradient and the
gradient checker (003 §14.3.1).

Design note: parameters are any pytree; random draws take an ``rng`` (Generator or int seed).

Example::

    >>> import numpy as np
    >>> o = Oracle(lambda w: 0.5 * (w ** 2).sum())
    >>> o.grad(np.array([1.0, 2.0]))
    array([1., 2.])
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.api import grad as _grad
from ..core.api import hessian as _hessian
from ..core.api import hvp as _hvp
from ..core.api import value_and_grad as _value_and_grad
from ..core.pytree import ravel_pytree
from ..derivatives import fd_grad as _fd_grad

__all__ = [
    "GradCheckResult",
    "Oracle",
    "StochasticOracle",
    "check_grad",
    "empirical_risk",
    "fd_grad",
    "linear_erm",
    "value",
]


def _check_callable(fname: str, arg: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f"{fname}: argument {arg!r} must be callable, got {type(f).__name__}")


def _make_rng(fname: str, rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{fname}: argument 'rng' must be a numpy Generator, an int seed or None, got {rng!r}"
    )


def value(f: Callable[[Any], Any], w: Any) -> float:
    """Zero-order oracle: the value ``L(w)`` as a Python float (Book §15.2).

    Example: ``value(lambda w: (w ** 2).sum(), np.array([1., 2.]))`` → ``5.0``.
    """
    _check_callable("value", "f", f)
    out = np.asarray(f(w))
    if out.size != 1:
        raise ValueError(f"value: f must return a scalar, got shape {out.shape}")
    return float(out.reshape(()))


class Oracle:
    r"""Oracle of order 0, 1 or 2 over the AD engine, with call counters (Book §15.2).

    ``value(w) = L(w)``; ``grad(w) = ∇L(w)``; ``value_and_grad(w)``; ``hvp(w, v) = ∇²L(w)v``
    (forward-over-reverse, never forms the Hessian); ``hessian(w)`` (dense). ``order`` is the
    highest order the caller may use: asking for more raises ``ValueError``. ``counts`` records
    the number of calls per kind.

    Example::

        >>> o = Oracle(lambda w: 0.5 * (w ** 2).sum(), order=2)
        >>> o.hvp(np.ones(2), np.array([1.0, -1.0]))
        array([ 1., -1.])
    """

    def __init__(self, fun: Callable[[Any], Any], order: int = 2) -> None:
        _check_callable("Oracle", "fun", fun)
        if order not in (0, 1, 2):
            raise ValueError(f"Oracle: argument 'order' must be 0, 1 or 2, got {order!r}")
        self.fun = fun
        self.order = int(order)
        self.counts = {"value": 0, "grad": 0, "hvp": 0, "hessian": 0}
        self._vg = _value_and_grad(fun)

    def _need(self, k: int, what: str) -> None:
        if self.order < k:
            raise ValueError(
                f"Oracle.{what}: needs an oracle of order {k}, this one has order {self.order}"
            )

    def value(self, w: Any) -> float:
        self.counts["value"] += 1
        return value(self.fun, w)

    def value_and_grad(self, w: Any) -> tuple[float, Any]:
        self._need(1, "value_and_grad")
        self.counts["value"] += 1
        self.counts["grad"] += 1
        v, g = self._vg(w)
        return float(np.asarray(v)), g

    def grad(self, w: Any) -> Any:
        return self.value_and_grad(w)[1]

    def hvp(self, w: Any, v: Any) -> Any:
        self._need(2, "hvp")
        self.counts["hvp"] += 1
        return _hvp(self.fun, w, v)

    def hessian(self, w: Any) -> Any:
        self._need(2, "hessian")
        self.counts["hessian"] += 1
        return _hessian(self.fun)(w)


def _index_data(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, tuple):
        return tuple(np.asarray(d)[idx] for d in data)
    return np.asarray(data)[idx]


class StochasticOracle:
    r"""Mini-batch gradient oracle ``g(w;S) = 1/m Σ_{i∈S} ∇L(w; s_i)`` (Book §16.2.1, Def 16.1).

    ``loss_i(w, batch)`` returns the *per-sample* losses (a vector of length ``len(batch)``) on a
    batch given as an array (rows are samples) or a tuple of arrays sharing their first axis.
    ``S`` holds ``batch_size`` indices drawn uniformly, with replacement (iid; variance
    ``σ₁²/m``, erratum: the seed prints ``σ_m = σ₁²/m`` for ``σ_m² = σ₁²/m``) or without.
    The draw never looks at ``w`` (``S^t`` independent of ``w^t``), so ``E_S[g] = ∇L(w)``.

    Example::

        >>> X = np.arange(4.0)
        >>> o = StochasticOracle(lambda w, x: 0.5 * (w - x) ** 2, X, batch_size=2, rng=0)
        >>> float(o.full_grad(np.array(0.0)))
        -1.5
    """

    def __init__(
        self,
        loss_i: Callable[[Any, Any], Any],
        data: Any,
        batch_size: int = 1,
        replace: bool = True,
        rng: Any = None,
    ) -> None:
        _check_callable("StochasticOracle", "loss_i", loss_i)
        leaves = data if isinstance(data, tuple) else (data,)
        if not leaves:
            raise ValueError(
                "StochasticOracle: argument 'data' must be an array or a non-empty tuple of arrays"
            )
        ns = {np.shape(d)[0] if np.ndim(d) else -1 for d in leaves}
        if len(ns) != 1 or -1 in ns:
            raise ValueError(
                "StochasticOracle: arrays in 'data' must share a non-empty first axis (samples)"
            )
        self.n = ns.pop()
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise ValueError(
                "StochasticOracle: argument 'batch_size' must be an integer >= 1, "
                f"got {batch_size!r}"
            )
        if not replace and batch_size > self.n:
            raise ValueError(
                f"StochasticOracle: batch_size={batch_size} > n={self.n} without replacement"
            )
        self.loss_i = loss_i
        self.data = data
        self.batch_size = int(batch_size)
        self.replace = bool(replace)
        self.rng = _make_rng("StochasticOracle", rng)

        def batch_loss(w: Any, batch: Any) -> Any:
            return loss_i(w, batch).mean()

        self._vg = _value_and_grad(batch_loss)

    def sample_indices(self) -> np.ndarray:
        """Draw the indices ``S`` of one mini-batch (uniform, independent of ``w``)."""
        return self.rng.choice(self.n, size=self.batch_size, replace=self.replace)

    def value_and_grad(self, w: Any, indices: Sequence[int] | None = None) -> tuple[float, Any]:
        """``(1/m Σ_{i∈S} L(w;s_i), g(w;S))``; draws ``S`` unless ``indices`` are given."""
        idx = self.sample_indices() if indices is None else np.asarray(indices, dtype=int)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= self.n:
            raise ValueError(
                "StochasticOracle.value_and_grad: 'indices' must be a non-empty 1-D array "
                f"in [0, {self.n})"
            )
        v, g = self._vg(w, _index_data(self.data, idx))
        return float(np.asarray(v)), g

    def __call__(self, w: Any, indices: Sequence[int] | None = None) -> Any:
        """The stochastic gradient ``g(w;S)``."""
        return self.value_and_grad(w, indices)[1]

    def full_value_and_grad(self, w: Any) -> tuple[float, Any]:
        """The full-batch value and gradient ``∇L(w) = 1/n Σ_i ∇L(w;s_i)`` (cost ∝ n)."""
        return self.value_and_grad(w, np.arange(self.n))

    def full_grad(self, w: Any) -> Any:
        return self.full_value_and_grad(w)[1]

    def per_sample_grads(self, w: Any) -> np.ndarray:
        """Matrix ``G`` (n × P, flattened parameters) with rows ``∇L(w; s_i)``."""
        rows = [ravel_pytree(self(w, [i]))[0] for i in range(self.n)]
        return np.stack([np.asarray(r, dtype=float) for r in rows])


@dataclass
class EmpiricalRisk:
    r"""``L(w) = 1/n Σ_i loss(model(w, x_i), y_i)`` with value, gradient and per-sample gradients.

    Built by :func:`empirical_risk` (Book §16.2, empirical distribution ρ_n).
    """

    per_sample: Callable[[Any], Any]
    n: int

    def __call__(self, w: Any) -> Any:
        return self.per_sample(w).mean()

    def value(self, w: Any) -> float:
        return value(self, w)

    def value_and_grad(self, w: Any) -> tuple[float, Any]:
        v, g = _value_and_grad(self)(w)
        return float(np.asarray(v)), g

    def grad(self, w: Any) -> Any:
        return _grad(self)(w)

    def per_sample_grads(self, w: Any) -> np.ndarray:
        """Rows ``∇_w loss(model(w, x_i), y_i)`` (flattened), one reverse pass per sample."""
        rows = []
        for i in range(self.n):
            g = _grad(lambda u, i=i: self.per_sample(u)[i])(w)
            rows.append(np.asarray(ravel_pytree(g)[0], dtype=float))
        return np.stack(rows)


def empirical_risk(
    loss: Callable[[Any, Any], Any], model: Callable[[Any, Any], Any], X: Any, Y: Any
) -> EmpiricalRisk:
    r"""Empirical risk ``L(w) = 1/n Σ_i loss(model(w, X)_i, Y_i)`` (Book §16.2; 003 (14.8)–(14.10)).

    ``model(w, X)`` maps the whole batch to predictions and ``loss(pred, Y)`` returns the vector of
    per-sample losses; ``∇L = 1/n Σ ∇L(w;(x_i,y_i))`` costs ∝ n.

    Example::

        >>> R = empirical_risk(lambda p, y: (p - y) ** 2, lambda w, X: X @ w, np.eye(2), np.ones(2))
        >>> R.value(np.zeros(2))
        1.0
    """
    _check_callable("empirical_risk", "loss", loss)
    _check_callable("empirical_risk", "model", model)
    n = int(np.shape(Y)[0]) if np.ndim(Y) else 0
    if n == 0 or (np.ndim(X) and np.shape(X)[0] != n):
        raise ValueError(
            "empirical_risk: X and Y must share a non-empty first axis, "
            f"got {np.shape(X)} and {np.shape(Y)}"
        )
    return EmpiricalRisk(lambda w: loss(model(w, X), Y), n)


def linear_erm(loss: Callable[[Any, Any], Any], A: Any, y: Any) -> EmpiricalRisk:
    r"""Linear-model risk ``L(x) = 1/n Σ_i ℓ(⟨a_i, x⟩, y_i)`` (Peyré 003 (14.12)–(14.13)).
    Book §15.1 (objective functions).

    ``∇f_i(x) = ℓ'(⟨a_i,x⟩, y_i) a_i``, so ``∇L(x) = Aᵀℓ'(Ax, y)/n``. ``loss(s, y)`` is
    elementwise.

    Example::

        >>> R = linear_erm(lambda s, y: 0.5 * (s - y) ** 2, np.eye(2), np.ones(2))
        >>> R.grad(np.zeros(2))
        array([-0.5, -0.5])
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"linear_erm: argument 'A' must be a 2-D matrix, got shape {A.shape}")
    if np.shape(y)[:1] != A.shape[:1]:
        raise ValueError(f"linear_erm: 'y' must have {A.shape[0]} rows, got shape {np.shape(y)}")
    return empirical_risk(loss, lambda x, X: X @ x, A, y)


def fd_grad(
    f: Callable[[Any], Any], x: Any, eps: float | None = None, scheme: str = "forward"
) -> Any:
    r"""Zero-order gradient by finite differences (Peyré 003 §14.3.1; Book §7.7).

    Forward scheme: ``(1/ε)(f(x+εe_1)−f(x), …, f(x+εe_p)−f(x))ᵀ``, exactly ``p+1`` calls of f;
    ``scheme='central'`` uses ``(f(x+εe_j)−f(x−εe_j))/(2ε)`` (2p calls, error O(ε²)).

    Example::

        >>> np.round(fd_grad(lambda x: (x ** 2).sum(), np.array([1.0, 2.0]), scheme='central'), 6)
        array([2., 4.])
    """
    if scheme not in ("forward", "central"):
        raise ValueError(
            f"fd_grad: argument 'scheme' must be 'forward' or 'central', got {scheme!r}"
        )
    return _fd_grad(f, x, scheme=scheme, delta=eps)


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of :func:`check_grad`; truthy when the gradient passed.
    Book §15.2 (oracles).

    Example: ``check_grad(f, grad_f, x)`` returns a ``GradCheckResult``; it is truthy when the
    gradients agree.
    """

    passed: bool
    rel_error: float
    abs_error: float

    def __bool__(self) -> bool:
        return self.passed


def check_grad(
    f: Callable[[Any], Any],
    grad_f: Callable[[Any], Any],
    x: Any,
    rtol: float = 1e-5,
    eps: float | None = None,
) -> GradCheckResult:
    r"""Compare ``grad_f(x)`` with central finite differences of ``f`` (Peyré 003 §14.3.1).

    ``rel_error = ‖g − g_FD‖ / max(‖g_FD‖, tiny)``; passes when ``rel_error ≤ rtol``. The default
    tolerance flags a gradient wrong by 1% (central FD error in float64 is about 1e-9).

    Example::

        >>> bool(check_grad(lambda x: (x ** 2).sum(), lambda x: 2 * x, np.array([1.0, 2.0])))
        True
    """
    _check_callable("check_grad", "f", f)
    _check_callable("check_grad", "grad_f", grad_f)
    if not (isinstance(rtol, numbers.Real) and rtol > 0):
        raise ValueError(f"check_grad: argument 'rtol' must be > 0, got {rtol!r}")
    g_fd = np.asarray(ravel_pytree(_fd_grad(f, x, scheme="central", delta=eps))[0], dtype=float)
    g = np.asarray(ravel_pytree(grad_f(x))[0], dtype=float)
    if g.shape != g_fd.shape:
        raise ValueError(f"check_grad: grad_f returned {g.size} entries, expected {g_fd.size}")
    err = float(np.linalg.norm(g - g_fd))
    rel = err / max(float(np.linalg.norm(g_fd)), np.finfo(float).tiny)
    return GradCheckResult(bool(rel <= rtol), rel, err)
