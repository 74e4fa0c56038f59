r"""Univariate continuous distributions (book §3.1.2, §3.3.3 Rem. 3.1, §3.3.5).

Normal, Logistic and Gumbel are location-scale families: ``p_{μ,σ}(y) = (1/σ) p_{0,1}((y−μ)/σ)``
(the ``1/σ`` factor is what makes the density integrate to one; book Rem. 3.1 omits it for the
logistic density). Exponential and Gamma live on ``y ≥ 0`` (``log_prob = −inf`` below).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.losses import softplus
from diffprog.scipy.special import digamma, erfc, expit, gammaln, xlogy

from .distribution import (
    Distribution,
    as_param,
    check_param,
    concrete_value,
    outside_to_neginf,
    support_mask,
)

__all__ = ["Normal", "Logistic", "Gumbel", "Exponential", "Gamma", "normal_cdf"]

Array = Any

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EULER_GAMMA = 0.5772156649015329


def normal_cdf(z: Array) -> Array:
    r"""Standard normal CDF ``Φ(z) = ½[1 + erf(z/√2)] = ½ erfc(−z/√2)`` (book §3.3.5, Eq. 3.1).

    Computed with ``erfc`` so that the left tail keeps its relative accuracy;
    ``Φ'(z) = e^{−z²/2}/√(2π)``.

    Example:
        >>> round(float(normal_cdf(1.96)), 12)
        0.975002104852
    """
    return 0.5 * erfc(-z * (1.0 / math.sqrt(2.0)))


def _positive(cls: str, arg: str, x: Any) -> None:
    check_param(cls, arg, x, lambda s: s > 0, "> 0")


def _finite(cls: str, arg: str, x: Any) -> None:
    check_param(cls, arg, x, np.isfinite, "finite")


def _shape(*xs: Any) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(tuple(dnp.shape(x)) for x in xs)))


class _LocScale(Distribution):
    """Shared fields and validation of the location-scale families (book §3.3.5)."""

    loc: Any = 0.0
    scale: Any = 1.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "loc", as_param(self.loc))
        object.__setattr__(self, "scale", as_param(self.scale))
        _finite(name, "loc", self.loc)
        _positive(name, "scale", self.scale)

    def _z(self, y: Array) -> Array:
        return (as_param(y, self.scale) - self.loc) / self.scale

    def mode(self) -> Array:
        """``μ`` (book §3.1.2).

        Example:
            >>> from diffprog.proba import Logistic
            >>> float(Logistic(2.0, 1.0).mode())
            2.0
        """
        return self.loc + 0.0 * self.scale

    @abc.abstractmethod
    def _standard(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Samples of the standard member (location 0, scale 1) of the family."""

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        fname = f"{type(self).__name__}.sample"
        mu, s = concrete_value(self.loc, fname), concrete_value(self.scale, fname)
        return mu + s * self._standard(g, shape + _shape(mu, s))


class Normal(_LocScale):
    r"""Normal (Gaussian) distribution ``N(μ, σ²)`` (book §3.3.5, Fig. 3.3, Table 3.1).

    ``p(y) = exp(−(y−μ)²/(2σ²)) / (σ√(2π))``, ``F(y) = Φ((y−μ)/σ)``, ``E = μ``, ``V = σ²``.
    ``scale = σ > 0``. Natural parameters ``θ = (μ/σ², −1/(2σ²))`` and
    ``A = μ²/(2σ²) + log σ`` (Table 3.1, corrected from ``μ²/σ²``).

    Example:
        >>> d = Normal(0.0, 1.0)
        >>> round(float(d.cdf(1.0)), 12), round(float(d.prob_interval(-1.0, 1.0)), 12)
        (0.841344746069, 0.682689492137)
        >>> round(float(Normal(1.5, 2.0).log_partition()), 12)
        0.97439718056
    """

    def log_prob(self, y: Array) -> Array:
        r"""``−(y−μ)²/(2σ²) − log σ − ½ log 2π`` (book §3.3.5).

        Example:
            >>> round(float(Normal(0.0, 1.0).log_prob(0.0)), 12)
            -0.918938533205
        """
        z = self._z(y)
        return -0.5 * z * z - dnp.log(self.scale) - _HALF_LOG_2PI

    def cdf(self, y: Array) -> Array:
        r"""``F(y) = ½[1 + erf((y−μ)/(σ√2))] = Φ((y−μ)/σ)`` (book §3.3.5, Eq. 3.1).

        Example:
            >>> float(Normal(3.0, 2.0).cdf(3.0))
            0.5
        """
        return normal_cdf(self._z(y))

    def mean(self) -> Array:
        """``E[Y] = μ`` (book §3.3.5).

        Example:
            >>> float(Normal(3.0, 2.0).mean())
            3.0
        """
        return self.loc + 0.0 * self.scale

    def variance(self) -> Array:
        """``V[Y] = σ²`` (book §3.3.5).

        Example:
            >>> float(Normal(3.0, 2.0).variance())
            4.0
        """
        return self.scale * self.scale + 0.0 * self.loc

    def entropy(self) -> Array:
        r"""``H = ½ log(2πe σ²)`` (book §3.4.3).

        Example:
            >>> round(float(Normal(0.0, 1.0).entropy()), 6)
            1.418939
        """
        return dnp.log(self.scale) + (_HALF_LOG_2PI + 0.5) + 0.0 * self.loc

    def natural_parameters(self) -> Array:
        r"""``θ = (μ/σ², −1/(2σ²))`` stacked on a last axis of size 2 (book Table 3.1).

        Example:
            >>> Normal(1.0, 1.0).natural_parameters().tolist()
            [1.0, -0.5]
        """
        v = self.scale * self.scale
        return dnp.stack([self.loc / v, -0.5 / v + 0.0 * self.loc], axis=-1)

    def log_partition(self) -> Array:
        r"""``A = μ²/(2σ²) + log σ = −θ₁²/(4θ₂) − ½ log(−2θ₂)`` (book Table 3.1, corrected).

        Example:
            >>> round(float(Normal(0.0, 1.0).log_partition()), 12)
            0.0
        """
        return 0.5 * self.loc ** 2 / self.scale ** 2 + dnp.log(self.scale)

    def _standard(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return g.standard_normal(shape)


class Logistic(_LocScale):
    r"""Logistic distribution (book §3.3.3, Rem. 3.1).

    ``p_{μ,σ}(u) = (1/σ) p_{0,1}((u−μ)/σ)`` with ``p_{0,1}(z) = e^{−z}/(1+e^{−z})²`` (the book
    omits ``1/σ``: without it the density integrates to σ). ``F(u) = logistic((u−μ)/σ)``,
    ``E = μ``, ``V = σ²π²/3``. If ``U ~ Logistic(μ, σ)`` then ``P(U ≤ u) = logistic((u−μ)/σ)``,
    the Bernoulli probability of Rem. 3.1.

    Example:
        >>> d = Logistic(1.0, 2.0)
        >>> float(d.cdf(1.0)), round(float(d.prob(1.0)), 12)  # 1/(4σ) at the mode
        (0.5, 0.125)
    """

    def log_prob(self, y: Array) -> Array:
        r"""``−z − 2 softplus(−z) − log σ``, ``z = (y−μ)/σ`` (book Rem. 3.1, corrected).

        Example:
            >>> round(float(Logistic(0.0, 1.0).log_prob(0.0)), 6)  # log(1/4)
            -1.386294
        """
        z = self._z(y)
        return -z - 2.0 * softplus(-z) - dnp.log(self.scale)

    def cdf(self, y: Array) -> Array:
        """``F(u) = logistic((u−μ)/σ)`` (book Rem. 3.1).

        Example:
            >>> round(float(Logistic(0.0, 1.0).cdf(np.log(4.0))), 12)
            0.8
        """
        return expit(self._z(y))

    def mean(self) -> Array:
        """``E[U] = μ`` (book Rem. 3.1).

        Example:
            >>> float(Logistic(1.0, 2.0).mean())
            1.0
        """
        return self.loc + 0.0 * self.scale

    def variance(self) -> Array:
        """``V[U] = σ²π²/3`` (book Rem. 3.1).

        Example:
            >>> round(float(Logistic(0.0, 1.0).variance()), 6)
            3.289868
        """
        return self.scale ** 2 * (math.pi ** 2 / 3.0) + 0.0 * self.loc

    def entropy(self) -> Array:
        """``H = log σ + 2`` (book §3.4.3).

        Example:
            >>> float(Logistic(0.0, 1.0).entropy())
            2.0
        """
        return dnp.log(self.scale) + 2.0 + 0.0 * self.loc

    def _standard(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        u = g.random(shape)
        return np.log(u) - np.log1p(-u)


class Gumbel(_LocScale):
    r"""Gumbel (maximum) distribution (book §3.3.3; it reappears in the Gumbel trick, Part IV).

    ``p(y) = (1/β) exp(−(z + e^{−z}))``, ``z = (y−μ)/β``; ``F(y) = exp(−e^{−z})``,
    ``E = μ + βγ`` (γ the Euler–Mascheroni constant), ``V = π²β²/6``, mode ``μ``.

    Example:
        >>> round(float(Gumbel(0.0, 1.0).cdf(0.0)), 12)  # e^{-1}
        0.367879441171
    """

    def log_prob(self, y: Array) -> Array:
        r"""``−(z + e^{−z}) − log β`` (book §3.1.2).

        Example:
            >>> round(float(Gumbel(0.0, 1.0).log_prob(0.0)), 12)
            -1.0
        """
        z = self._z(y)
        return -(z + dnp.exp(-z)) - dnp.log(self.scale)

    def cdf(self, y: Array) -> Array:
        """``F(y) = exp(−e^{−(y−μ)/β})`` (book §3.1.2).

        Example:
            >>> float(Gumbel(0.0, 1.0).cdf(np.inf))
            1.0
        """
        return dnp.exp(-dnp.exp(-self._z(y)))

    def mean(self) -> Array:
        """``E[Y] = μ + βγ`` (book §3.1.2).

        Example:
            >>> round(float(Gumbel(0.0, 1.0).mean()), 6)
            0.577216
        """
        return self.loc + _EULER_GAMMA * self.scale

    def variance(self) -> Array:
        """``V[Y] = π²β²/6`` (book §3.1.2).

        Example:
            >>> round(float(Gumbel(0.0, 1.0).variance()), 6)
            1.644934
        """
        return self.scale ** 2 * (math.pi ** 2 / 6.0) + 0.0 * self.loc

    def entropy(self) -> Array:
        """``H = log β + γ + 1`` (book §3.4.3).

        Example:
            >>> round(float(Gumbel(0.0, 1.0).entropy()), 6)
            1.577216
        """
        return dnp.log(self.scale) + (_EULER_GAMMA + 1.0) + 0.0 * self.loc

    def _standard(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return -np.log(-np.log(g.random(shape)))


def _nonneg(y: Any) -> tuple[Any, np.ndarray | None]:
    """``(y with 1 outside y ≥ 0, mask)`` so that no nan reaches the gradient (book §3.1.2)."""
    y = as_param(y)
    mask = support_mask(y, lambda c: c >= 0)
    return (y if mask is None else np.where(mask, y, 1.0)), mask


class Exponential(Distribution):
    r"""Exponential distribution with rate ``λ > 0`` on ``y ≥ 0`` (book §3.1.2).

    ``p(y) = λ e^{−λy}``, ``F(y) = 1 − e^{−λy}``, ``E = 1/λ``, ``V = 1/λ²``, ``H = 1 − log λ``.

    Example:
        >>> d = Exponential(2.0)
        >>> float(d.mean()), float(d.variance()), float(d.prob(-1.0))
        (0.5, 0.25, 0.0)
    """

    rate: Any = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", as_param(self.rate))
        _positive("Exponential", "rate", self.rate)

    def log_prob(self, y: Array) -> Array:
        """``log λ − λy`` for ``y ≥ 0``, else ``−inf`` (book §3.1.2).

        Example:
            >>> float(Exponential(1.0).log_prob(2.0))
            -2.0
        """
        y, mask = _nonneg(y)
        return outside_to_neginf(dnp.log(self.rate) - self.rate * y, mask)

    def cdf(self, y: Array) -> Array:
        """``F(y) = 1 − e^{−λ max(y, 0)}`` (book §3.1.2).

        Example:
            >>> round(float(Exponential(1.0).cdf(np.log(2.0))), 12)
            0.5
        """
        y = dnp.maximum(as_param(y), 0.0)
        return -dnp.expm1(-self.rate * y)

    def mean(self) -> Array:
        """``E[Y] = 1/λ`` (book §3.1.2).

        Example:
            >>> float(Exponential(4.0).mean())
            0.25
        """
        return 1.0 / self.rate

    def variance(self) -> Array:
        """``V[Y] = 1/λ²`` (book §3.1.2).

        Example:
            >>> float(Exponential(2.0).variance())
            0.25
        """
        return 1.0 / (self.rate * self.rate)

    def mode(self) -> Array:
        """0 (book §3.1.2).

        Example:
            >>> float(Exponential(2.0).mode())
            0.0
        """
        return 0.0 * self.rate

    def entropy(self) -> Array:
        """``H = 1 − log λ`` (book §3.4.3).

        Example:
            >>> float(Exponential(1.0).entropy())
            1.0
        """
        return 1.0 - dnp.log(self.rate)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        lam = concrete_value(self.rate, "Exponential.sample")
        return g.standard_exponential(shape + lam.shape) / lam


class Gamma(Distribution):
    r"""Gamma distribution with shape ``α > 0`` and rate ``β > 0`` on ``y > 0`` (book §3.1.2).

    ``p(y) = β^α y^{α−1} e^{−βy} / Γ(α)``, ``E = α/β``, ``V = α/β²``, mode ``(α−1)/β`` for
    ``α ≥ 1`` (else 0), ``H = α − log β + log Γ(α) + (1−α)ψ(α)``. ``Gamma(1, λ)`` is
    ``Exponential(λ)``.

    Example:
        >>> d = Gamma(3.0, 2.0)
        >>> float(d.mean()), float(d.variance()), float(d.mode())
        (1.5, 0.75, 1.0)
    """

    concentration: Any = 1.0
    rate: Any = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "concentration", as_param(self.concentration))
        object.__setattr__(self, "rate", as_param(self.rate))
        _positive("Gamma", "concentration", self.concentration)
        _positive("Gamma", "rate", self.rate)

    def log_prob(self, y: Array) -> Array:
        r"""``α log β + (α−1) log y − βy − log Γ(α)`` for ``y ≥ 0``, else ``−inf`` (§3.1.2).

        Example:
            >>> float(Gamma(1.0, 1.0).log_prob(2.0))
            -2.0
        """
        a, b = self.concentration, self.rate
        y, mask = _nonneg(y)
        out = a * dnp.log(b) + xlogy(a - 1.0, y) - b * y - gammaln(a)
        return outside_to_neginf(out, mask)

    def mean(self) -> Array:
        """``E[Y] = α/β`` (book §3.1.2).

        Example:
            >>> float(Gamma(2.0, 4.0).mean())
            0.5
        """
        return self.concentration / self.rate

    def variance(self) -> Array:
        """``V[Y] = α/β²`` (book §3.1.2).

        Example:
            >>> float(Gamma(2.0, 2.0).variance())
            0.5
        """
        return self.concentration / (self.rate * self.rate)

    def mode(self) -> Array:
        """``max(α − 1, 0)/β`` (book §3.1.2).

        Example:
            >>> float(Gamma(0.5, 1.0).mode())
            0.0
        """
        return dnp.maximum(self.concentration - 1.0, 0.0) / self.rate

    def entropy(self) -> Array:
        r"""``H = α − log β + log Γ(α) + (1 − α)ψ(α)`` (book §3.4.3).

        Example:
            >>> float(Gamma(1.0, 1.0).entropy())
            1.0
        """
        a = self.concentration
        return a - dnp.log(self.rate) + gammaln(a) + (1.0 - a) * digamma(a)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        a = concrete_value(self.concentration, "Gamma.sample")
        b = concrete_value(self.rate, "Gamma.sample")
        return g.standard_gamma(np.broadcast_to(a, shape + _shape(a, b))) / b
