r"""Exponential families ``p_θ(y) = h(y) exp(⟨θ, φ(y)⟩ − A(θ))`` (book §3.4).

An :class:`ExponentialFamily` is described by its sufficient statistic ``φ``, log base measure
``log h`` and log-partition ``A``; everything else is derived by autodiff (book §3.4.2):

- the mean function ``μ(θ) = ∇A(θ) = E_{p_θ}[φ(Y)]`` (Prop. 3.2) and the covariance
  ``∇²A(θ) = Cov_{p_θ}[φ(Y)]``;
- the NLL ``A(θ) − ⟨θ, φ(y)⟩ − log h(y)``, convex in θ, with gradient ``∇A(θ) − φ(y)``
  (Prop. 3.3);
- the inverse mean map ``θ = (∇A)⁻¹(μ) = argmin_θ A(θ) − ⟨θ, μ⟩`` (closed form per family,
  Newton's method as the generic fallback), used for maximum likelihood (moment matching,
  §3.4.4) and maximum entropy (§3.4.3).

Natural parameters are arrays whose last ``event_ndims`` axes are the parameter's own axes
(leading axes batch), or tuples of such arrays (the multivariate normal: ``(θ₁, θ₂)``).

Table 3.1 misprints corrected here (and tested): the categorical ``θ = log π + A(θ)·1`` (not
``exp(A(θ))``); the Normal location-scale ``A = μ²/(2σ²) + log σ`` (not ``μ²/σ²``); the
multivariate normal ``A = −¼θ₁ᵀθ₂⁻¹θ₁ − ½ log det(−2θ₂)`` (not ``log|−θ₂|``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.api import grad, hessian
from diffprog.core.pytree import tree_leaves, tree_map
from diffprog.optim.losses import one_hot, softplus
from diffprog.optim.solvers.newton import newton
from diffprog.scipy.special import expit, gammaln, logit, logsumexp, softmax

from .continuous import Exponential, Gamma, Normal
from .discrete import Bernoulli, Categorical, Poisson
from .distribution import Distribution
from .multivariate import Dirichlet, MultivariateNormal

__all__ = [
    "ExponentialFamily",
    "MaxEntropyResult",
    "bernoulli_family",
    "categorical_family",
    "covariance",
    "dirichlet_family",
    "discrete_family",
    "discrete_log_partition",
    "exp_family_nll",
    "exponential_distribution_family",
    "fit_exp_family",
    "gamma_family",
    "max_entropy",
    "mean_function",
    "multivariate_normal_family",
    "natural_from_mean",
    "normal_family",
    "normal_location_family",
    "poisson_family",
]

Array = Any
_LOG_2PI = math.log(2.0 * math.pi)


def _sum_last(x: Array, k: int) -> Array:
    return x if k == 0 else dnp.sum(x, axis=tuple(range(-k, 0)))


@dataclasses.dataclass(frozen=True)
class ExponentialFamily:
    r"""An exponential family ``p_θ(y) = h(y) exp(⟨θ, φ(y)⟩ − A(θ))`` (book §3.4.1).

    Args:
        sufficient_stat: ``φ(y)``, shaped like ``θ`` (a tuple for tuple-valued ``θ``).
        log_base_measure: ``log h(y)``.
        log_partition: ``A(θ) = log Σ_y h(y) e^{⟨θ, φ(y)⟩}`` (an integral when continuous).
        event_ndims: number of trailing parameter axes (a tuple for tuple-valued ``θ``).
        name: a label for messages.
        to_natural_fn / from_natural_fn: conversions between the original parameters and
            ``θ`` (book Table 3.1).
        mean_to_natural_fn: closed-form ``(∇A)⁻¹`` (None: Newton's method).
        distribution_fn: ``θ ↦`` the :class:`Distribution` object (to sample, or for CDFs).
        natural_init: ``μ ↦`` a starting point inside ``Θ`` for the generic inverse mean map.

    Example:
        >>> import diffprog.numpy as dnp
        >>> fam = ExponentialFamily(lambda y: y, lambda y: 0.0 * y,
        ...                         lambda t: dnp.logaddexp(t, 0.0))  # the Bernoulli family
        >>> round(float(fam.prob(np.log(4.0), 1.0)), 12), float(fam.mean(0.0))
        (0.8, 0.5)
    """

    sufficient_stat: Callable[[Any], Any]
    log_base_measure: Callable[[Any], Any]
    log_partition: Callable[[Any], Any]
    event_ndims: Any = 0
    name: str = "ExponentialFamily"
    to_natural_fn: Callable[[Any], Any] | None = None
    from_natural_fn: Callable[[Any], Any] | None = None
    mean_to_natural_fn: Callable[[Any], Any] | None = None
    distribution_fn: Callable[[Any], Distribution] | None = None
    natural_init: Callable[[Any], Any] | None = None

    def inner(self, theta: Array, phi: Array) -> Array:
        r"""``⟨θ, φ⟩`` over the parameter axes (summed over the parts of a tuple). Book §3.4.1.

        Example:
            >>> float(normal_family.inner(np.array([1.0, -0.5]), np.array([2.0, 4.0])))
            0.0
        """
        if isinstance(theta, tuple):
            return sum(_sum_last(t * f, k)
                       for t, f, k in zip(theta, phi, self.event_ndims, strict=True))
        return _sum_last(theta * phi, self.event_ndims)

    def log_prob(self, theta: Array, y: Array) -> Array:
        r"""``log p_θ(y) = log h(y) + ⟨θ, φ(y)⟩ − A(θ)`` (book §3.4.1).

        Example:
            >>> round(float(poisson_family.log_prob(0.0, 0)), 12)  # Poisson(1) at 0
            -1.0
        """
        return (self.log_base_measure(y) + self.inner(theta, self.sufficient_stat(y))
                - self.log_partition(theta))

    def prob(self, theta: Array, y: Array) -> Array:
        """``p_θ(y)`` (book §3.4.1).

        Example:
            >>> round(float(bernoulli_family.prob(0.0, 1)), 12)
            0.5
        """
        return dnp.exp(self.log_prob(theta, y))

    def mean(self, theta: Array) -> Array:
        r"""The mean function ``μ(θ) = ∇A(θ) = E_{p_θ}[φ(Y)]`` by autodiff (book §3.4.2,
        Prop. 3.2); batched ``θ`` gives one mean per batch element.

        Example:
            >>> round(float(bernoulli_family.mean(np.log(4.0))), 12)  # logistic
            0.8
        """
        return grad(lambda t: sum(dnp.sum(a) for a in tree_leaves(self.log_partition(t))))(
            theta)

    def covariance(self, theta: Array) -> Array:
        r"""``∇²A(θ) = Cov_{p_θ}[φ(Y)]`` by autodiff, for one (unbatched) ``θ`` (book §3.4.2).

        Example:
            >>> round(float(bernoulli_family.covariance(np.log(4.0))), 12)  # π(1 − π)
            0.16
        """
        return hessian(self.log_partition)(theta)

    def to_natural(self, params: Any) -> Array:
        """Original parameters → ``θ`` (book Table 3.1).

        Example:
            >>> round(float(bernoulli_family.to_natural(0.8)), 12)
            1.38629436112
        """
        if self.to_natural_fn is None:
            raise NotImplementedError(f"{self.name}.to_natural: no conversion registered")
        return self.to_natural_fn(params)

    def from_natural(self, theta: Array) -> Any:
        """``θ`` → original parameters (book Table 3.1).

        Example:
            >>> normal_family.from_natural(np.array([1.0, -0.5]))
            (np.float64(1.0), np.float64(1.0))
        """
        if self.from_natural_fn is None:
            raise NotImplementedError(f"{self.name}.from_natural: no conversion registered")
        return self.from_natural_fn(theta)

    def nll(self, theta: Array, y: Array) -> Array:
        r"""``−log p_θ(y) = A(θ) − ⟨θ, φ(y)⟩ − log h(y)`` (book §3.4.4, Prop. 3.3).

        Example:
            >>> round(float(bernoulli_family.nll(np.log(4.0), 1)), 12)
            0.223143551314
        """
        return -self.log_prob(theta, y)

    def distribution(self, theta: Array) -> Distribution:
        """The :class:`Distribution` object with natural parameter ``θ`` (book §3.4.5: back to
        the original form, e.g. for the variance or the CDF).

        Example:
            >>> round(float(poisson_family.distribution(np.log(3.0)).mean()), 12)
            3.0
        """
        if self.distribution_fn is None:
            raise NotImplementedError(f"{self.name}.distribution: none registered")
        return self.distribution_fn(theta)


def mean_function(family: ExponentialFamily) -> Callable[[Array], Array]:
    r"""``θ ↦ ∇A(θ)``, the mean function of ``family`` (book §3.4.2, Prop. 3.2).

    Example:
        >>> round(float(mean_function(poisson_family)(np.log(2.0))), 12)
        2.0
    """
    return family.mean


def covariance(family: ExponentialFamily) -> Callable[[Array], Array]:
    r"""``θ ↦ ∇²A(θ) = Cov_{p_θ}[φ(Y)]`` (book §3.4.2).

    Example:
        >>> covariance(categorical_family(2))(np.zeros(2)).tolist()
        [[0.25, -0.25], [-0.25, 0.25]]
    """
    return family.covariance


def exp_family_nll(family: ExponentialFamily, theta: Array, y: Array) -> Array:
    r"""``−log p_θ(y) = A(θ) − ⟨θ, φ(y)⟩ − log h(y)``; gradient ``∇A(θ) − φ(y)``, Hessian
    ``∇²A(θ)`` (independent of ``y``), convex in ``θ`` (book §3.4.4, Prop. 3.3).

    Example:
        >>> round(float(exp_family_nll(poisson_family, np.log(4.0), 4)), 12)
        1.632876385868
    """
    return family.nll(theta, y)


def _solve_mean_map(family: ExponentialFamily, mu: Any, tol: float) -> Any:
    theta0 = family.natural_init(mu) if family.natural_init else tree_map(np.zeros_like, mu)

    def dual(t: Any) -> Array:
        return dnp.sum(family.log_partition(t)) - dnp.sum(family.inner(t, mu))

    with np.errstate(invalid="ignore", divide="ignore"):  # trial steps may leave Θ (A = nan)
        res = newton(dual, theta0, linesearch="armijo", hessian_fix="clip", tol=tol,
                     maxiter=200)
    if not res.converged or not all(np.all(np.isfinite(a)) for a in tree_leaves(res.solution)):
        raise ValueError(f"natural_from_mean: no natural parameter found for {family.name} "
                         "(is mu in the interior of the mean set M?)")
    return res.solution


def natural_from_mean(family: ExponentialFamily, mu: Any, method: str = "auto",
                      tol: float = 1e-12) -> Array:
    r"""The natural parameter with mean ``μ``: ``θ = (∇A)⁻¹(μ) = argmin_θ A(θ) − ⟨θ, μ⟩``
    (book §3.4.2, minimal families; §3.4.3 duality).

    ``method``: ``"closed_form"`` (the family's formula), ``"solve"`` (Newton's method with an
    Armijo line search on the convex dual; works for any family whose ``A`` is twice
    differentiable), ``"auto"`` (closed form when available). The categorical family with
    ``φ(y) = e_y`` is not minimal: ``θ`` is found up to ``+c·1``. ``μ`` must lie in the interior
    of the mean set ``M = conv φ(Y)``.

    Example:
        >>> round(float(natural_from_mean(poisson_family, 5.0, method="solve")), 12)
        1.609437912434
    """
    if method not in ("auto", "closed_form", "solve"):
        raise ValueError(f"natural_from_mean: argument 'method' must be 'auto', 'closed_form' or "
                         f"'solve', got {method!r}")
    if method != "solve" and family.mean_to_natural_fn is not None:
        return family.mean_to_natural_fn(mu)
    if method == "closed_form":
        raise NotImplementedError(f"natural_from_mean: {family.name} has no closed form; use "
                                  "method='solve'")
    mu = tree_map(lambda a: np.asarray(a, dtype=float), mu)
    return _solve_mean_map(family, mu, tol)


def fit_exp_family(family: ExponentialFamily, ys: Array) -> Array:
    r"""Maximum likelihood by moment matching: ``∇A(θ̂) = (1/N) Σ_i φ(y_i)`` (book §3.4.4).

    ``ys`` stacks the ``N`` observations on its first axis. Returns ``θ̂``.

    Example:
        >>> round(float(np.exp(fit_exp_family(poisson_family, np.array([1, 4, 10])))), 12)
        5.0
    """
    if dnp.ndim(ys) == 0 or dnp.shape(ys)[0] == 0:
        raise ValueError("fit_exp_family: argument 'ys' must stack at least one observation on "
                         "its first axis")
    mu_hat = tree_map(lambda a: np.mean(np.asarray(a, dtype=float), axis=0),
                      family.sufficient_stat(np.asarray(ys)))
    return natural_from_mean(family, mu_hat)


# ------------------------------------------------------------------------- discrete families


def discrete_log_partition(theta: Array, Phi: Array, log_h: Array = None) -> Array:
    r"""``A(θ) = log Σ_y h(y) e^{⟨θ, φ(y)⟩} = logsumexp(Φθ + log h)`` for a finite ``Y``, where
    row ``y`` of ``Φ`` (shape ``(K, d)``) is ``φ(y)`` (book §3.4.2, Prop. 3.1).

    Example:
        >>> Phi = np.array([[0.0], [1.0]])  # the Bernoulli statistic
        >>> round(float(discrete_log_partition(np.array([0.0]), Phi)), 12)  # softplus(0)
        0.69314718056
    """
    b = theta @ dnp.swapaxes(Phi, 0, 1) if dnp.ndim(Phi) == 2 else None
    if b is None:
        raise ValueError(f"discrete_log_partition: argument 'Phi' must be a (K, d) matrix, got "
                         f"shape {tuple(dnp.shape(Phi))}")
    if log_h is not None:
        b = b + log_h
    return logsumexp(b, axis=-1)


def discrete_family(Phi: Array, log_h: Array = None) -> ExponentialFamily:
    r"""The exponential family on ``Y = {0, …, K−1}`` with statistic rows ``φ(y) = Φ[y]`` and
    base measure ``log h`` (book §3.4.1–3.4.3); its distribution is
    ``Categorical(logits = Φθ + log h)``.

    Example:
        >>> fam = discrete_family(np.array([[0.0], [1.0]]))  # Bernoulli with θ of shape (1,)
        >>> round(float(fam.mean(np.array([np.log(4.0)]))[0]), 12)
        0.8
    """
    Phi = np.asarray(Phi, dtype=float)
    if Phi.ndim != 2:
        raise ValueError(f"discrete_family: argument 'Phi' must be (K, d), got {Phi.shape}")
    lh = np.zeros(Phi.shape[0]) if log_h is None else np.asarray(log_h, dtype=float)
    if lh.shape != (Phi.shape[0],):
        raise ValueError(f"discrete_family: argument 'log_h' must have shape ({Phi.shape[0]},)")

    def index(y: Any) -> np.ndarray:
        return np.asarray(y, dtype=np.int64)

    return ExponentialFamily(
        sufficient_stat=lambda y: Phi[index(y)],
        log_base_measure=lambda y: lh[index(y)],
        log_partition=lambda t: discrete_log_partition(t, Phi, lh),
        event_ndims=1,
        name="discrete_family",
        distribution_fn=lambda t: Categorical(logits=t @ Phi.T + lh),
    )


class MaxEntropyResult(NamedTuple):
    """``(theta, probs)`` returned by :func:`max_entropy` (book §3.4.3)."""

    theta: np.ndarray
    probs: np.ndarray


def max_entropy(Phi: Array, mu_hat: Array, log_h: Array = None) -> MaxEntropyResult:
    r"""Maximum-entropy distribution on ``Y = {0, …, K−1}`` with ``E_p[φ(Y)] = μ̂`` (book §3.4.3).

    ``p* = argmax_{p ∈ Δᴷ} H(p)`` s.t. ``Σ_y p(y)φ(y) = μ̂`` is the exponential-family member
    ``p_θ ∝ h(y) e^{⟨θ, φ(y)⟩}`` whose mean is ``μ̂``; ``θ`` (the Lagrange multipliers) solves
    the dual ``min_θ A(θ) − ⟨θ, μ̂⟩``. ``μ̂`` must lie in the interior of ``conv{Φ[y]}``.

    Example:
        >>> r = max_entropy(np.arange(4.0)[:, None], np.array([1.0]))
        >>> round(float(r.theta[0]), 9), r.probs.round(6).tolist()
        (-0.419617625, [0.421351, 0.276953, 0.182041, 0.119655])
    """
    Phi = np.asarray(Phi, dtype=float)
    mu = np.asarray(mu_hat, dtype=float)
    if Phi.ndim != 2 or mu.shape != (Phi.shape[1],):
        raise ValueError(f"max_entropy: 'Phi' must be (K, d) and 'mu_hat' of shape (d,), got "
                         f"{Phi.shape} and {mu.shape}")
    fam = discrete_family(Phi, log_h)
    theta = natural_from_mean(fam, mu, method="solve")
    lh = 0.0 if log_h is None else np.asarray(log_h, dtype=float)
    return MaxEntropyResult(np.asarray(theta), np.asarray(softmax(Phi @ theta + lh)))


# ---------------------------------------------------------------- the families of Table 3.1


def _float(y: Any) -> Any:
    return np.asarray(y, dtype=float)


bernoulli_family = ExponentialFamily(
    sufficient_stat=_float,
    log_base_measure=lambda y: np.zeros(np.shape(y)),
    log_partition=softplus,
    name="bernoulli_family",
    to_natural_fn=logit,
    from_natural_fn=expit,
    mean_to_natural_fn=logit,
    distribution_fn=lambda t: Bernoulli(logits=t),
)


def categorical_family(num_classes: int) -> ExponentialFamily:
    r"""Categorical over ``M = num_classes`` classes: ``φ(y) = e_y``, ``A = logsumexp``,
    ``π = softargmax θ``, ``θ = log π (+ c·1)``, ``h = 1`` (book §3.4.1, Table 3.1; the
    printed ``log π + exp(A(θ))`` is a misprint for ``log π + A(θ)·1``). Not minimal.

    Example:
        >>> fam = categorical_family(3)
        >>> fam.mean(np.log(np.array([0.3, 0.6, 0.1]))).round(12).tolist()
        [0.3, 0.6, 0.1]
    """
    m = int(num_classes)

    def stat(y: Any) -> Any:
        y = np.asarray(y)
        return one_hot(y, m) if np.issubdtype(y.dtype, np.integer) else _float(y)

    return ExponentialFamily(
        sufficient_stat=stat,
        log_base_measure=lambda y: np.zeros(np.shape(stat(y))[:-1]),
        log_partition=lambda t: logsumexp(t, axis=-1),
        event_ndims=1,
        name="categorical_family",
        to_natural_fn=dnp.log,
        from_natural_fn=lambda t: softmax(t, axis=-1),
        mean_to_natural_fn=dnp.log,
        distribution_fn=lambda t: Categorical(logits=t),
    )


def normal_location_family(sigma: float = 1.0) -> ExponentialFamily:
    r"""Normal with known ``σ``: ``θ = μ/σ``, ``φ(y) = y/σ``, ``A = θ²/2 = μ²/(2σ²)``,
    ``h(y) = exp(−y²/(2σ²))/(√(2π)σ)`` (book §3.4.1, Table 3.1).

    Example:
        >>> fam = normal_location_family(2.0)
        >>> float(fam.to_natural(3.0)), float(fam.mean(1.5))  # E[Y/σ] = θ
        (1.5, 1.5)
    """
    if not sigma > 0:
        raise ValueError(f"normal_location_family: argument 'sigma' must be > 0, got {sigma}")
    s = float(sigma)
    return ExponentialFamily(
        sufficient_stat=lambda y: _float(y) / s,
        log_base_measure=lambda y: -_float(y) ** 2 / (2 * s * s) - 0.5 * _LOG_2PI - math.log(s),
        log_partition=lambda t: 0.5 * t * t,
        name="normal_location_family",
        to_natural_fn=lambda mu: mu / s,
        from_natural_fn=lambda t: t * s,
        mean_to_natural_fn=lambda m: m,
        distribution_fn=lambda t: Normal(t * s, s),
    )


def _normal_from_natural(t: Array) -> tuple[Array, Array]:
    var = -0.5 / t[..., 1]
    return t[..., 0] * var, var


def _normal_to_natural(params: Any) -> Array:
    mu, var = params
    return dnp.stack([mu / var, -0.5 / var + 0.0 * mu], axis=-1)


def _normal_distribution(t: Array) -> Normal:
    mu, var = _normal_from_natural(t)
    return Normal(mu, dnp.sqrt(var))


def _normal_mean_to_natural(m: Array) -> Array:
    m1, m2 = m[..., 0], m[..., 1]
    return _normal_to_natural((m1, m2 - m1 * m1))


normal_family = ExponentialFamily(
    sufficient_stat=lambda y: np.stack([_float(y), _float(y) ** 2], axis=-1),
    log_base_measure=lambda y: np.full(np.shape(y), -0.5 * _LOG_2PI),
    log_partition=lambda t: -t[..., 0] ** 2 / (4.0 * t[..., 1]) - 0.5 * dnp.log(-2.0 * t[..., 1]),
    event_ndims=1,
    name="normal_family",
    to_natural_fn=_normal_to_natural,
    from_natural_fn=_normal_from_natural,
    mean_to_natural_fn=_normal_mean_to_natural,
    distribution_fn=_normal_distribution,
    natural_init=lambda m: np.array([0.0, -0.5]),
)


def _mvn_chol_precision(t2: Array) -> Array:
    return dnp.linalg.cholesky(-(t2 + dnp.swapaxes(t2, -1, -2)))  # P = −2 sym(θ₂) = Σ⁻¹


def _mvn_log_partition(theta: tuple[Array, Array]) -> Array:
    t1, t2 = theta
    L = _mvn_chol_precision(t2)
    z = dnp.linalg.solve(L, t1[..., None])[..., 0]
    return 0.5 * dnp.sum(z * z, axis=-1) - dnp.sum(dnp.log(dnp.diagonal(L, 0, -2, -1)), axis=-1)


def _mvn_from_natural(theta: tuple[Array, Array]) -> tuple[Array, Array]:
    t1, t2 = theta
    P = -(t2 + dnp.swapaxes(t2, -1, -2))
    cov = dnp.linalg.solve(P, dnp.broadcast_to(np.eye(dnp.shape(t1)[-1]), dnp.shape(P)))
    cov = 0.5 * (cov + dnp.swapaxes(cov, -1, -2))
    return (cov @ t1[..., None])[..., 0], cov


def _mvn_to_natural(params: tuple[Array, Array]) -> tuple[Array, Array]:
    mu, cov = params
    return MultivariateNormal(mu, cov=cov).natural_parameters()


def _mvn_distribution(theta: tuple[Array, Array]) -> MultivariateNormal:
    mu, cov = _mvn_from_natural(theta)
    return MultivariateNormal(mu, cov=cov)


def _mvn_stat(y: Any) -> tuple[Any, Any]:
    y = _float(y)
    return y, y[..., :, None] * y[..., None, :]


multivariate_normal_family = ExponentialFamily(
    sufficient_stat=_mvn_stat,
    log_base_measure=lambda y: np.full(np.shape(y)[:-1], -0.5 * np.shape(y)[-1] * _LOG_2PI),
    log_partition=_mvn_log_partition,
    event_ndims=(1, 2),
    name="multivariate_normal_family",
    to_natural_fn=_mvn_to_natural,
    from_natural_fn=_mvn_from_natural,
    mean_to_natural_fn=lambda m: _mvn_to_natural(
        (m[0], m[1] - m[0][..., :, None] * m[0][..., None, :])),
    distribution_fn=_mvn_distribution,
    natural_init=lambda m: (np.zeros_like(m[0]), -0.5 * np.eye(np.shape(m[0])[-1])),
)

poisson_family = ExponentialFamily(
    sufficient_stat=_float,
    log_base_measure=lambda y: -np.asarray(gammaln(_float(y) + 1.0)),
    log_partition=dnp.exp,
    name="poisson_family",
    to_natural_fn=dnp.log,
    from_natural_fn=dnp.exp,
    mean_to_natural_fn=dnp.log,
    distribution_fn=lambda t: Poisson(log_rate=t),
)

exponential_distribution_family = ExponentialFamily(
    sufficient_stat=_float,
    log_base_measure=lambda y: np.where(_float(y) >= 0, 0.0, -np.inf),
    log_partition=lambda t: -dnp.log(-t),
    name="exponential_distribution_family",
    to_natural_fn=lambda lam: -lam,
    from_natural_fn=lambda t: -t,
    mean_to_natural_fn=lambda m: -1.0 / m,
    distribution_fn=lambda t: Exponential(-t),
    natural_init=lambda m: -np.ones_like(m),
)


def _gamma_from_natural(t: Array) -> tuple[Array, Array]:
    return t[..., 0] + 1.0, -t[..., 1]


gamma_family = ExponentialFamily(
    sufficient_stat=lambda y: np.stack([np.log(_float(y)), _float(y)], axis=-1),
    log_base_measure=lambda y: np.zeros(np.shape(y)),
    log_partition=lambda t: gammaln(t[..., 0] + 1.0) - (t[..., 0] + 1.0) * dnp.log(-t[..., 1]),
    event_ndims=1,
    name="gamma_family",
    to_natural_fn=lambda p: dnp.stack([p[0] - 1.0, -p[1] + 0.0 * p[0]], axis=-1),
    from_natural_fn=_gamma_from_natural,
    distribution_fn=lambda t: Gamma(*_gamma_from_natural(t)),
    natural_init=lambda m: np.array([0.0, -1.0]),
)

dirichlet_family = ExponentialFamily(
    sufficient_stat=lambda y: np.log(_float(y)),
    log_base_measure=lambda y: np.zeros(np.shape(y)[:-1]),
    log_partition=lambda t: dnp.sum(gammaln(t + 1.0), axis=-1) - gammaln(dnp.sum(t + 1.0, -1)),
    event_ndims=1,
    name="dirichlet_family",
    to_natural_fn=lambda a: a - 1.0,
    from_natural_fn=lambda t: t + 1.0,
    distribution_fn=lambda t: Dirichlet(t + 1.0),
)
