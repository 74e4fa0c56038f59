r"""The :class:`Distribution` base class and shared validation helpers (book §3.1).

A distribution is a :class:`diffprog.nn.module.Module`: a frozen dataclass pytree whose array
fields are its parameters, so ``diffprog.grad`` flows through them (book §3.3.1: a conditional
model is a distribution whose parameters are computed by a network, ``λ = f(x, w)``).

Conventions shared by every distribution:

- **Validation.** Constructors check *concrete* parameters (NumPy arrays, Python numbers) and
  raise ``ValueError`` naming the class and the argument (probabilities outside ``[0, 1]``,
  non-positive scales, covariances that are not positive definite). Traced values (inside
  ``grad``/``jit``) are not checked: their values are unknown or are gradients.
- **Shapes.** Parameters broadcast to a *batch shape*; multivariate distributions add an *event
  shape* (the last axis, or the last two for matrices). ``sample(rng, shape)`` returns an array
  of shape ``shape + batch_shape + event_shape``.
- **Randomness.** ``sample`` requires ``rng`` (a ``numpy.random.Generator`` or an int seed);
  samples are plain NumPy arrays (no gradient: reparametrized sampling is a later chapter).
- **Outside the support** ``log_prob`` is ``−inf`` (``prob`` is 0), as in NumPy/SciPy.
"""

from __future__ import annotations

import abc
import numbers
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.primitive import Tracer
from diffprog.core.pytree import tree_leaves
from diffprog.core.rng import as_generator
from diffprog.nn.module import Module
from diffprog.optim.losses import _concrete

__all__ = ["Distribution"]

Array = Any


def as_param(x: Any, like: Any = None) -> Any:
    """A parameter (or data) as a floating array (tracers and ``None`` pass through); integer
    input takes the floating dtype of ``like`` (so float32 parameters keep float32 results)."""
    if x is None or isinstance(x, Tracer):
        return x
    a = np.asarray(x)
    if a.dtype == object:
        return x  # e.g. a list of tracers: left to the dnp operations
    if not np.issubdtype(a.dtype, np.floating):
        dt = getattr(like, "dtype", None)
        a = a.astype(dt if dt is not None and np.issubdtype(dt, np.floating) else np.float64)
    return a


def check_param(cls: str, arg: str, x: Any, ok: Any, expected: str) -> None:
    """Raise ``ValueError`` when the concrete parameter ``x`` fails ``ok(x)``."""
    c = None if x is None else _concrete(x)
    if c is None or c.dtype == object:
        return
    if not np.all(ok(c)):
        bad = c[~np.broadcast_to(ok(c), c.shape)] if c.ndim else c
        raise ValueError(f"{cls}: argument '{arg}' must be {expected}, got "
                         f"{np.asarray(bad).ravel()[:3].tolist()}")


def one_of(cls: str, first: str, a: Any, second: str, b: Any) -> None:
    """Exactly one of two alternative parameterizations must be given."""
    if (a is None) == (b is None):
        raise ValueError(f"{cls}: pass exactly one of '{first}' and '{second}'")


def concrete_value(x: Any, fname: str) -> np.ndarray:
    """The NumPy value of a parameter, or a clear error when it is being traced."""
    if isinstance(x, Tracer):
        raise TypeError(f"{fname}: needs concrete parameter values (samples carry no gradient; "
                        "call it outside grad/jit)")
    return np.asarray(x)


def sample_shape(shape: Any, fname: str) -> tuple[int, ...]:
    """Normalize ``shape`` (an int or a tuple of non-negative ints)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{fname}: argument 'shape' must be an int or a tuple of ints, "
                        f"got {shape!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"{fname}: argument 'shape' must be non-negative, got {out}")
    return out


def support_mask(y: Any, ok: Any) -> np.ndarray | None:
    """``ok(y)`` for concrete data ``y`` when some points fall outside the support, else None."""
    c = _concrete(y)
    if c is None:
        return None
    m = np.asarray(ok(c))
    return None if bool(np.all(m)) else m


def outside_to_neginf(value: Array, mask: np.ndarray | None) -> Array:
    """``value`` with ``−inf`` where ``mask`` is False (no-op when ``mask`` is None)."""
    if mask is None:
        return value
    return dnp.where(mask, value, -np.inf)


class Distribution(Module, metaclass=abc.ABCMeta):
    r"""Base class of probability distributions (book §3.1): ``p(y)``, its moments and samples.

    Subclasses implement the abstract methods ``log_prob``, ``mean``, ``variance``, ``mode``,
    ``entropy`` and ``_sample(generator, shape)``, and ``cdf`` where it has a closed form. The
    base class adds ``prob = exp ∘ log_prob``, ``stddev``, ``prob_interval(a, b) = F(b) − F(a)``
    (book §3.1.2: ``P(a < Y ≤ b) = F(b) − F(a)``), ``sample`` (rng required) and ``kl``.

    Example:
        >>> from diffprog.proba import Normal
        >>> round(float(Normal(0.0, 1.0).prob_interval(-1.0, 1.0)), 12)
        0.682689492137
    """

    def _name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    def log_prob(self, y: Array) -> Array:
        """``log p(y)`` (book §3.1).

        Example:
            >>> from diffprog.proba import Bernoulli
            >>> round(float(Bernoulli(probs=0.8).log_prob(1)), 6)
            -0.223144
        """

    def prob(self, y: Array) -> Array:
        """``p(y) = exp(log p(y))``: the PMF (discrete) or PDF (continuous). Book §3.1.1–3.1.2.

        Example:
            >>> from diffprog.proba import Bernoulli
            >>> float(Bernoulli(probs=0.8).prob(1))
            0.8
        """
        return dnp.exp(self.log_prob(y))

    def cdf(self, y: Array) -> Array:
        """Cumulative distribution function ``F(y) = P(Y ≤ y)`` (book §3.1.2).

        Example:
            >>> from diffprog.proba import Normal
            >>> float(Normal(0.0, 1.0).cdf(0.0))
            0.5
        """
        raise NotImplementedError(f"{self._name()}.cdf has no closed form")

    def prob_interval(self, a: Array, b: Array) -> Array:
        r"""``P(a < Y ≤ b) = F(b) − F(a)`` (book §3.1.2).

        Example:
            >>> from diffprog.proba import Normal
            >>> round(float(Normal(0.0, 1.0).prob_interval(-1.96, 1.96)), 4)
            0.95
        """
        return self.cdf(b) - self.cdf(a)

    @abc.abstractmethod
    def mean(self) -> Array:
        """``E[Y]`` (book §3.1.1).

        Example:
            >>> from diffprog.proba import Poisson
            >>> float(Poisson(rate=3.0).mean())
            3.0
        """

    @abc.abstractmethod
    def variance(self) -> Array:
        """``V[Y] = E[(Y − E[Y])²]`` (book §3.1.1).

        Example:
            >>> from diffprog.proba import Poisson
            >>> float(Poisson(rate=3.0).variance())
            3.0
        """

    def stddev(self) -> Array:
        """``√V[Y]`` (book §3.1.1).

        Example:
            >>> from diffprog.proba import Normal
            >>> float(Normal(0.0, 2.0).stddev())
            2.0
        """
        return dnp.sqrt(self.variance())

    @abc.abstractmethod
    def mode(self) -> Array:
        """``argmax_y p(y)`` (book §3.1.1).

        Example:
            >>> from diffprog.proba import Normal
            >>> float(Normal(1.5, 2.0).mode())
            1.5
        """

    @abc.abstractmethod
    def entropy(self) -> Array:
        r"""Shannon entropy ``H = −E[log p(Y)]`` (book §3.4.3).

        Example:
            >>> from diffprog.proba import Bernoulli
            >>> round(float(Bernoulli(probs=0.5).entropy()), 6)  # log 2
            0.693147
        """

    @abc.abstractmethod
    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Samples of shape ``shape + batch_shape + event_shape`` drawn from ``g``."""

    def sample(self, rng: Any = None, shape: Any = ()) -> np.ndarray:
        """Draw samples of shape ``shape + batch_shape + event_shape`` (book §3.1).

        ``rng`` (a ``numpy.random.Generator`` or an int seed) is required; samples are NumPy
        arrays without gradient.

        Example:
            >>> from diffprog.proba import Normal
            >>> Normal(0.0, 1.0).sample(0, (3, 2)).shape
            (3, 2)
        """
        fname = f"{self._name()}.sample"
        g = as_generator(rng, fname)
        out = np.asarray(self._sample(g, sample_shape(shape, fname)))
        if out.dtype.kind == "f":        # continuous samples in the parameters' precision
            dtypes = [leaf.dtype for leaf in tree_leaves(self)
                      if isinstance(leaf, (np.ndarray, np.generic)) and leaf.dtype.kind == "f"]
            if dtypes and all(d == np.float32 for d in dtypes):
                out = out.astype(np.float32)
        return out

    def kl(self, other: Distribution) -> Array:
        r"""``KL(self ‖ other) = E_self[log p(Y) − log q(Y)]`` in closed form (book §3.1.2).

        Example:
            >>> from diffprog.proba import Normal
            >>> float(Normal(0.0, 1.0).kl(Normal(0.0, 1.0)))
            0.0
        """
        from .kl import kl_divergence

        return kl_divergence(self, other)
