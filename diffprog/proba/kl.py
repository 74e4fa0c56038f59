r"""Kullback–Leibler divergence ``KL(p‖q) = E_p[log p(Y) − log q(Y)]`` (book §3.1.1, §3.1.2).

:func:`kl_divergence` accepts probability vectors (discrete KL over the last axis) or two
distribution objects. Same-family pairs use closed forms (registered in ``_CLOSED_FORMS``;
the book gives none, they are standard and tested against quadrature / brute-force sums).
Other pairs fall back to a Monte Carlo estimate ``(1/n) Σ log p(y_i) − log q(y_i)``,
``y_i ~ p``, when an ``rng`` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.losses import softplus
from diffprog.scipy.special import digamma, expit, gammaln, log_softmax, xlogy

from .continuous import _EULER_GAMMA, Exponential, Gamma, Gumbel, Normal
from .discrete import Bernoulli, Categorical, Poisson
from .distribution import Distribution
from .multivariate import Dirichlet, MultivariateNormal, _tril_solve
from .pmf import discrete_kl, kl_log_probs

__all__ = ["kl_divergence"]

Array = Any

def _kl_bernoulli(p: Bernoulli, q: Bernoulli) -> Array:
    if p.logits is not None and q.logits is not None:
        a, b = p.logits, q.logits  # π(a−b) − softplus(a) + softplus(b)
        return expit(a) * (a - b) - softplus(a) + softplus(b)
    pp, qq = p.probs_parameter(), q.probs_parameter()
    return xlogy(pp, pp) - xlogy(pp, qq) + xlogy(1.0 - pp, 1.0 - pp) - xlogy(1.0 - pp, 1.0 - qq)


def _kl_categorical(p: Categorical, q: Categorical) -> Array:
    if p.logits is not None and q.logits is not None:
        return kl_log_probs(log_softmax(p.logits, axis=-1), log_softmax(q.logits, axis=-1))
    return discrete_kl(p.probs_parameter(), q.probs_parameter())


def _kl_poisson(p: Poisson, q: Poisson) -> Array:
    lp, lq = p.rate_parameter(), q.rate_parameter()
    return lp * (p.log_rate_parameter() - q.log_rate_parameter()) - lp + lq


def _kl_normal(p: Normal, q: Normal) -> Array:
    r = p.scale / q.scale
    d = (p.loc - q.loc) / q.scale
    return 0.5 * (r * r + d * d - 1.0) - dnp.log(r)


def _kl_gumbel(p: Gumbel, q: Gumbel) -> Array:
    r = p.scale / q.scale
    d = (p.loc - q.loc) / q.scale
    return (-dnp.log(r) + _EULER_GAMMA * (r - 1.0) + dnp.exp(-d + gammaln(r + 1.0)) - 1.0
            + d)


def _kl_exponential(p: Exponential, q: Exponential) -> Array:
    r = q.rate / p.rate
    return r - 1.0 - dnp.log(r)


def _kl_gamma(p: Gamma, q: Gamma) -> Array:
    a1, b1, a2, b2 = p.concentration, p.rate, q.concentration, q.rate
    return ((a1 - a2) * digamma(a1) - gammaln(a1) + gammaln(a2) + a2 * (dnp.log(b1) - dnp.log(b2))
            + a1 * (b2 - b1) / b1)


def _kl_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Array:
    Lp, Lq = p.scale_tril_parameter(), q.scale_tril_parameter()
    m = p.dim
    bshape = tuple(np.broadcast_shapes(tuple(dnp.shape(Lp)[:-2]), tuple(dnp.shape(Lq)[:-2])))
    A = dnp.linalg.solve(dnp.broadcast_to(Lq, bshape + (m, m)),
                         dnp.broadcast_to(Lp, bshape + (m, m)))  # Lq⁻¹ Lp
    z = _tril_solve(Lq, q.loc - p.loc)
    trace = dnp.sum(A * A, axis=(-2, -1))
    return 0.5 * (trace + dnp.sum(z * z, axis=-1) - m) + q._half_logdet() - p._half_logdet()


def _kl_dirichlet(p: Dirichlet, q: Dirichlet) -> Array:
    a, b = p.concentration, q.concentration
    a0, b0 = p._a0(), q._a0()
    return (gammaln(a0) - dnp.sum(gammaln(a), -1) - gammaln(b0) + dnp.sum(gammaln(b), -1)
            + dnp.sum((a - b) * (digamma(a) - digamma(a0)[..., None]), axis=-1))


_CLOSED_FORMS: dict[type, Callable[[Any, Any], Array]] = {
    Bernoulli: _kl_bernoulli,
    Categorical: _kl_categorical,
    Poisson: _kl_poisson,
    Normal: _kl_normal,
    Gumbel: _kl_gumbel,
    Exponential: _kl_exponential,
    Gamma: _kl_gamma,
    MultivariateNormal: _kl_mvn,
    Dirichlet: _kl_dirichlet,
}


def kl_divergence(p: Any, q: Any, rng: Any = None, num_samples: int = 100_000) -> Array:
    r"""Kullback–Leibler divergence ``KL(p‖q)`` (book §3.1.1, §3.1.2, §3.2.2).

    * Probability vectors: ``Σ_y p(y) log(p(y)/q(y))`` over the last axis, with ``0 log 0 = 0``
      and ``+inf`` when ``p(y) > 0 = q(y)``.
    * Distributions of the same family: the closed form (Bernoulli, Categorical, Poisson,
      Normal, Gumbel, Exponential, Gamma, MultivariateNormal, Dirichlet), differentiable in both
      parameter sets.
    * Other pairs: a Monte Carlo estimate from ``num_samples`` draws of ``p`` when ``rng`` is
      given (no gradient), else ``NotImplementedError``.

    ``KL ≥ 0``, ``KL(p‖p) = 0``, and it is not symmetric.

    Example:
        >>> p = np.array([0.3, 0.6, 0.1])
        >>> round(float(kl_divergence(p, np.ones(3) / 3)), 12)
        0.200666563811
        >>> from diffprog.proba import Normal
        >>> float(kl_divergence(Normal(0.0, 1.0), Normal(1.0, 1.0)))
        0.5
    """
    if isinstance(p, Distribution) or isinstance(q, Distribution):
        if not (isinstance(p, Distribution) and isinstance(q, Distribution)):
            raise TypeError("kl_divergence: arguments 'p' and 'q' must both be distributions or "
                            "both be probability vectors")
        fn = _CLOSED_FORMS.get(type(p)) if type(p) is type(q) else None
        if fn is not None:
            return fn(p, q)
        if rng is None:
            raise NotImplementedError(
                f"kl_divergence: no closed form for KL({type(p).__name__} ‖ {type(q).__name__});"
                " pass rng= for a Monte Carlo estimate")
        y = p.sample(rng, (int(num_samples),))
        return np.mean(np.asarray(p.log_prob(y)) - np.asarray(q.log_prob(y)), axis=0)
    if dnp.ndim(p) == 0 or dnp.shape(p)[-1] != dnp.shape(q)[-1]:
        raise ValueError(f"kl_divergence: probability vectors must share their last axis, got "
                         f"shapes {tuple(dnp.shape(p))} and {tuple(dnp.shape(q))}")
    return discrete_kl(p, q)

