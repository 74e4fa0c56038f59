r"""Discrete distributions: Bernoulli, Categorical, Poisson (book §3.1.1, §3.3.3, §3.3.4, §3.3.7).

Each takes either its mean parameter (``probs``, ``rate``) or its natural parameter (``logits``,
``log_rate``); computations stay in the parameterization given, so logits never pass through
probabilities (stable: ``log p = θ − logsumexp θ``, never ``log softargmax θ``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.losses import _concrete, softplus
from diffprog.scipy.special import (
    entr,
    expit,
    gammaln,
    log_softmax,
    logit,
    logsumexp,
    softmax,
    xlog1py,
    xlogy,
)

from .distribution import (
    Distribution,
    as_param,
    check_param,
    concrete_value,
    one_of,
    outside_to_neginf,
    support_mask,
)

__all__ = ["Bernoulli", "Categorical", "Poisson"]

Array = Any


def _unit(p: np.ndarray) -> np.ndarray:
    return (p >= 0) & (p <= 1)


def _is_int(y: np.ndarray) -> np.ndarray:
    return np.isfinite(y) & (np.floor(y) == y)


class Bernoulli(Distribution):
    r"""Bernoulli distribution on ``{0, 1}`` (book §3.3.3, Fig. 3.1, Table 3.1).

    ``p_π(y) = π^y (1−π)^{1−y} = exp(θy − softplus θ)``, ``π = logistic(θ)``, ``θ = logit π``.
    Pass ``probs`` (``π ∈ [0, 1]``) or ``logits`` (``θ ∈ R``), not both. ``E = π``,
    ``V = π(1−π)``; the exponential-family log-partition is ``A(θ) = softplus(θ)``.

    Example:
        >>> d = Bernoulli(probs=0.8)
        >>> float(d.prob(1)), round(float(d.cdf(0)), 12), round(float(d.variance()), 12)
        (0.8, 0.2, 0.16)
        >>> round(float(d.natural_parameters()), 12), round(float(d.log_partition()), 12)
        (1.38629436112, 1.609437912434)
    """

    probs: Any = None
    logits: Any = None

    def __post_init__(self) -> None:
        one_of("Bernoulli", "probs", self.probs, "logits", self.logits)
        object.__setattr__(self, "probs", as_param(self.probs))
        object.__setattr__(self, "logits", as_param(self.logits))
        check_param("Bernoulli", "probs", self.probs, _unit, "in [0, 1]")
        check_param("Bernoulli", "logits", self.logits, lambda t: ~np.isnan(t), "not nan")

    def probs_parameter(self) -> Array:
        """``π = logistic(θ)`` (book §3.3.3).

        Example:
            >>> float(Bernoulli(logits=0.0).probs_parameter())
            0.5
        """
        return self.probs if self.probs is not None else expit(self.logits)

    def logits_parameter(self) -> Array:
        """``θ = logit(π) = log(π/(1−π))`` (book §3.4.1 Ex. 3.2, corrected from ``1+π``).

        Example:
            >>> round(float(Bernoulli(probs=0.8).logits_parameter()), 12)
            1.38629436112
        """
        return self.logits if self.logits is not None else logit(self.probs)

    natural_parameters = logits_parameter

    def log_partition(self) -> Array:
        """``A(θ) = softplus(θ) = log(1 + e^θ) = −log(1 − π)`` (book Table 3.1).

        Example:
            >>> round(float(Bernoulli(logits=0.0).log_partition()), 6)
            0.693147
        """
        if self.logits is not None:
            return softplus(self.logits)
        return -dnp.log1p(-self.probs)

    def log_prob(self, y: Array) -> Array:
        r"""``log p(y) = θy − softplus(θ)`` (logits) or ``y log π + (1−y) log(1−π)`` (probs);
        ``−inf`` for ``y ∉ {0, 1}``. Book §3.3.3.

        Example:
            >>> round(float(Bernoulli(logits=np.log(4.0)).log_prob(0)), 12)
            -1.609437912434
        """
        y = as_param(y, self.logits if self.logits is not None else self.probs)
        if self.logits is not None:
            out = y * self.logits - softplus(self.logits)
        else:
            out = xlogy(y, self.probs) + xlog1py(1.0 - y, -self.probs)
        return outside_to_neginf(out, support_mask(y, lambda c: (c == 0) | (c == 1)))

    def cdf(self, y: Array) -> Array:
        """``F(y) = 0`` for ``y < 0``, ``1 − π`` on ``[0, 1)``, 1 for ``y ≥ 1`` (book §3.1.1).

        Example:
            >>> round(float(Bernoulli(probs=0.8).cdf(0.5)), 12)
            0.2
        """
        y = as_param(y)
        q = 1.0 - self.probs_parameter()
        return dnp.where(y < 0, 0.0 * q, dnp.where(y < 1, q, 0.0 * q + 1.0))

    def mean(self) -> Array:
        """``E[Y] = π`` (book §3.3.3).

        Example:
            >>> float(Bernoulli(probs=0.3).mean())
            0.3
        """
        return self.probs_parameter()

    def variance(self) -> Array:
        """``V[Y] = π(1 − π)`` (book §3.3.3).

        Example:
            >>> round(float(Bernoulli(probs=0.8).variance()), 12)
            0.16
        """
        if self.logits is not None:
            return expit(self.logits) * expit(-self.logits)
        return self.probs * (1.0 - self.probs)

    def mode(self) -> Array:
        """``1[π > ½]`` (the tie ``π = ½`` returns 0, the first maximizer). Book §3.1.1.

        Example:
            >>> float(Bernoulli(probs=0.8).mode())
            1.0
        """
        p = self.probs_parameter()
        return dnp.where(p > 0.5, 1.0, 0.0)

    def entropy(self) -> Array:
        r"""``H = softplus(θ) − θπ = −π log π − (1−π) log(1−π)`` (0 log 0 = 0). Book §3.4.3.

        Example:
            >>> float(Bernoulli(probs=1.0).entropy())
            0.0
        """
        if self.logits is not None:
            return softplus(self.logits) - self.logits * expit(self.logits)
        return entr(self.probs) + entr(1.0 - self.probs)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        p = concrete_value(self.probs_parameter(), "Bernoulli.sample")
        return (g.random(shape + p.shape) < p).astype(np.int64)


class Categorical(Distribution):
    r"""Categorical distribution on ``{0, …, M−1}`` (book §3.3.4, Fig. 3.2, Table 3.1).

    ``p_π(y) = ⟨π, e_y⟩ = π_y``, ``π = softargmax(θ) ∈ relint Δᴹ``; the last axis indexes the
    classes. Pass ``probs`` (on the simplex) or ``logits``. With the one-hot statistic
    ``φ(y) = e_y``: ``E[φ(Y)] = π``, ``Cov[φ(Y)] = diag(π) − ππᵀ``, ``A(θ) = logsumexp(θ)``.

    Example:
        >>> d = Categorical(probs=np.array([0.3, 0.6, 0.1]))
        >>> d.cdf(np.arange(3)).round(12).tolist(), int(d.mode())
        ([0.3, 0.9, 1.0], 1)
    """

    probs: Any = None
    logits: Any = None
    atol: float = 1e-6

    def __post_init__(self) -> None:
        one_of("Categorical", "probs", self.probs, "logits", self.logits)
        object.__setattr__(self, "probs", as_param(self.probs))
        object.__setattr__(self, "logits", as_param(self.logits))
        x = self.probs if self.probs is not None else self.logits
        if dnp.ndim(x) == 0:
            raise ValueError("Categorical: the parameter needs a class axis (last axis)")
        if self.probs is not None:
            from .pmf import in_simplex

            c = _concrete(self.probs)
            if c is not None and c.dtype != object and not np.all(in_simplex(c, self.atol)):
                raise ValueError("Categorical: argument 'probs' must lie on the probability "
                                 "simplex (non-negative, summing to 1 over the last axis)")
        check_param("Categorical", "logits", self.logits, lambda t: ~np.isnan(t), "not nan")

    @property
    def num_classes(self) -> int:
        """``M``, the size of the last axis (book §3.3.4).

        Example:
            >>> Categorical(logits=np.zeros(4)).num_classes
            4
        """
        return dnp.shape(self.probs if self.probs is not None else self.logits)[-1]

    def probs_parameter(self) -> Array:
        """``π = softargmax(θ)`` (book §3.3.4).

        Example:
            >>> Categorical(logits=np.zeros(2)).probs_parameter().tolist()
            [0.5, 0.5]
        """
        return self.probs if self.probs is not None else softmax(self.logits, axis=-1)

    def logits_parameter(self) -> Array:
        """Natural parameter ``θ = log π`` (defined up to ``+c·1``; Table 3.1, corrected from
        ``log π + exp(A(θ))``). Book §3.4.1.

        Example:
            >>> Categorical(probs=np.array([0.5, 0.5])).logits_parameter().round(6).tolist()
            [-0.693147, -0.693147]
        """
        return self.logits if self.logits is not None else dnp.log(self.probs)

    natural_parameters = logits_parameter

    def log_partition(self) -> Array:
        """``A(θ) = logsumexp(θ)`` (book §3.4.2, Table 3.1).

        Example:
            >>> round(float(Categorical(logits=np.zeros(2)).log_partition()), 6)
            0.693147
        """
        return logsumexp(self.logits_parameter(), axis=-1)

    def _log_probs(self) -> Array:
        if self.logits is not None:
            return log_softmax(self.logits, axis=-1)
        return dnp.log(self.probs)

    def log_prob(self, y: Array) -> Array:
        r"""``log π_y`` (``θ_y − logsumexp θ`` for logits) for integer labels ``y``; ``−inf``
        outside ``{0, …, M−1}``. Book §3.3.4.

        Example:
            >>> round(float(Categorical(probs=np.array([0.3, 0.6, 0.1])).log_prob(2)), 12)
            -2.302585092994
        """
        yc = np.asarray(y)
        if not np.issubdtype(yc.dtype, np.integer):
            if not np.all(_is_int(yc.astype(float))):
                raise TypeError(f"Categorical.log_prob: argument 'y' must hold integer class "
                                f"labels, got dtype {yc.dtype}")
            yc = yc.astype(np.int64)
        m = self.num_classes
        inside = (yc >= 0) & (yc < m)
        lp = self._log_probs()
        bshape = np.broadcast_shapes(yc.shape, tuple(dnp.shape(lp)[:-1]))
        idx = np.broadcast_to(np.where(inside, yc, 0), bshape)[..., None]
        lp = dnp.broadcast_to(lp, bshape + (m,))
        out = dnp.take_along_axis(lp, idx, axis=-1)[..., 0]
        return outside_to_neginf(out, None if np.all(inside) else np.broadcast_to(inside, bshape))

    def cdf(self, y: Array) -> Array:
        """``F(y) = Σ_{k ≤ y} π_k`` (book §3.3.4, Fig. 3.2).

        Example:
            >>> Categorical(probs=np.array([0.3, 0.6, 0.1])).cdf(1).round(12)
            np.float64(0.9)
        """
        yc = np.floor(np.asarray(y, dtype=float))
        m = self.num_classes
        mask = (np.arange(m) <= yc[..., None]).astype(float)
        return dnp.sum(self.probs_parameter() * mask, axis=-1)

    def mean(self) -> Array:
        """``E[e_Y] = π``, the mean of the one-hot statistic (book §3.1.1, §3.3.4).

        Example:
            >>> Categorical(probs=np.array([0.3, 0.7])).mean().tolist()
            [0.3, 0.7]
        """
        return self.probs_parameter()

    def covariance(self) -> Array:
        """``Cov[e_Y] = diag(π) − ππᵀ`` (book §3.4.2: it is ``∇²A(θ)``).

        Example:
            >>> Categorical(probs=np.array([0.5, 0.5])).covariance().tolist()
            [[0.25, -0.25], [-0.25, 0.25]]
        """
        p = self.probs_parameter()
        eye = np.eye(self.num_classes)
        return p[..., :, None] * eye - p[..., :, None] * p[..., None, :]

    def variance(self) -> Array:
        """``V[(e_Y)_k] = π_k(1 − π_k)``, the diagonal of :meth:`covariance` (book §3.1.1).

        Example:
            >>> Categorical(probs=np.array([0.5, 0.5])).variance().tolist()
            [0.25, 0.25]
        """
        p = self.probs_parameter()
        return p * (1.0 - p)

    def mode(self) -> Array:
        """``argmax_y π_y`` (ties: the first index). Book §3.1.1.

        Example:
            >>> int(Categorical(probs=np.array([0.3, 0.6, 0.1])).mode())
            1
        """
        return dnp.argmax(self.probs if self.probs is not None else self.logits, axis=-1)

    def entropy(self) -> Array:
        r"""``H = −Σ π log π = logsumexp(θ) − ⟨π, θ⟩`` (0 log 0 = 0). Book §3.4.3.

        Example:
            >>> round(float(Categorical(probs=np.array([0.3, 0.6, 0.1])).entropy()), 12)
            0.897945724857
        """
        if self.logits is not None:
            p = softmax(self.logits, axis=-1)
            return logsumexp(self.logits, axis=-1) - dnp.sum(p * self.logits, axis=-1)
        return dnp.sum(entr(self.probs), axis=-1)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        p = concrete_value(self.probs_parameter(), "Categorical.sample")
        c = np.cumsum(p, axis=-1)
        u = g.random(shape + p.shape[:-1])[..., None] * c[..., -1:]
        return np.minimum((u >= c).sum(axis=-1), p.shape[-1] - 1).astype(np.int64)


class Poisson(Distribution):
    r"""Poisson distribution on ``N`` (book §3.3.7, Fig. 3.4, Table 3.1).

    ``p_λ(y) = λ^y e^{−λ} / y!`` with ``log y! = gammaln(y + 1)``; ``E = V = λ``;
    ``θ = log λ``, ``A(θ) = e^θ``, ``h(y) = 1/y!``. Pass ``rate`` (``λ > 0``) or ``log_rate``.
    Non-integer or negative ``y`` have ``log_prob = −inf``.

    Example:
        >>> d = Poisson(rate=10.0)
        >>> round(float(d.prob(np.arange(200)).sum()), 12), float(d.mean()), float(d.variance())
        (1.0, 10.0, 10.0)
    """

    rate: Any = None
    log_rate: Any = None

    def __post_init__(self) -> None:
        one_of("Poisson", "rate", self.rate, "log_rate", self.log_rate)
        object.__setattr__(self, "rate", as_param(self.rate))
        object.__setattr__(self, "log_rate", as_param(self.log_rate))
        check_param("Poisson", "rate", self.rate, lambda r: r > 0, "> 0")
        check_param("Poisson", "log_rate", self.log_rate, lambda t: ~np.isnan(t), "not nan")

    def rate_parameter(self) -> Array:
        """``λ = exp θ`` (book §3.3.7).

        Example:
            >>> float(Poisson(log_rate=0.0).rate_parameter())
            1.0
        """
        return self.rate if self.rate is not None else dnp.exp(self.log_rate)

    def log_rate_parameter(self) -> Array:
        """``θ = log λ``, the natural parameter (book Table 3.1).

        Example:
            >>> float(Poisson(rate=1.0).log_rate_parameter())
            0.0
        """
        return self.log_rate if self.log_rate is not None else dnp.log(self.rate)

    natural_parameters = log_rate_parameter

    def log_partition(self) -> Array:
        """``A(θ) = e^θ = λ`` (book Table 3.1).

        Example:
            >>> float(Poisson(rate=2.0).log_partition())
            2.0
        """
        return self.rate_parameter()

    def log_prob(self, y: Array) -> Array:
        r"""``log p(y) = yθ − e^θ − gammaln(y + 1)``; ``−inf`` unless ``y ∈ N``. Book §3.3.7.

        Example:
            >>> round(float(Poisson(rate=1.0).log_prob(0)), 12)
            -1.0
        """
        y = as_param(y, self.log_rate if self.log_rate is not None else self.rate)
        mask = support_mask(y, lambda c: _is_int(c) & (c >= 0))
        if mask is not None:
            y = np.where(mask, y, 0.0)
        if self.log_rate is not None:
            out = y * self.log_rate - dnp.exp(self.log_rate)
        else:
            out = xlogy(y, self.rate) - self.rate
        return outside_to_neginf(out - gammaln(y + 1.0), mask)

    def cdf(self, y: Array) -> Array:
        r"""``F(y) = Σ_{i ≤ ⌊y⌋} p(i)`` (book §3.3.7), a finite sum (``y`` concrete).

        Example:
            >>> round(float(Poisson(rate=1.0).cdf(0)), 12)  # e^{-1}
            0.367879441171
        """
        yc = np.floor(np.asarray(y, dtype=float))
        n = len(np.broadcast_shapes(yc.shape, tuple(dnp.shape(self.rate_parameter()))))
        kmax = int(max(np.max(yc, initial=0.0), 0.0))
        ks = np.arange(kmax + 1, dtype=float).reshape((-1,) + (1,) * n)
        lp = self.log_prob(ks)
        mask = np.asarray(ks <= yc, dtype=float)
        return dnp.sum(dnp.exp(lp) * mask, axis=0)

    def mean(self) -> Array:
        """``E[Y] = λ`` (book §3.3.7).

        Example:
            >>> float(Poisson(rate=4.0).mean())
            4.0
        """
        return self.rate_parameter()

    def variance(self) -> Array:
        """``V[Y] = λ`` (index of dispersion 1; book §3.3.7).

        Example:
            >>> float(Poisson(rate=4.0).variance())
            4.0
        """
        return self.rate_parameter()

    def mode(self) -> Array:
        """``⌊λ⌋`` (for integer λ both λ−1 and λ are modes; λ is returned). Book §3.1.1.

        Example:
            >>> float(Poisson(rate=2.5).mode())
            2.0
        """
        return dnp.floor(self.rate_parameter())

    def entropy(self) -> Array:
        r"""``H = −Σ_y p(y) log p(y)``, a series truncated at ``λ + 12√λ + 30`` (relative
        error below 1e-15; needs a concrete rate). Book §3.4.3.

        Example:
            >>> round(float(Poisson(rate=1.0).entropy()), 6)
            1.304842
        """
        lam = concrete_value(self.rate_parameter(), "Poisson.entropy")
        kmax = int(np.ceil(np.max(lam) + 12 * np.sqrt(np.max(lam)) + 30))
        ks = np.arange(kmax + 1, dtype=float).reshape((-1,) + (1,) * lam.ndim)
        lp = self.log_prob(ks)
        return -dnp.sum(dnp.exp(lp) * lp, axis=0)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        lam = concrete_value(self.rate_parameter(), "Poisson.sample")
        return g.poisson(lam, size=shape + lam.shape)
