r"""``diffprog.proba``: probabilistic learning (book ch. 3).

- **Distributions** (:mod:`.discrete`, :mod:`.continuous`, :mod:`.multivariate`): Bernoulli,
  Categorical, Poisson, Normal, Logistic, Gumbel, Exponential, Gamma, MultivariateNormal,
  Dirichlet. Each is a :class:`diffprog.nn.module.Module` pytree with ``log_prob``, ``prob``,
  ``cdf`` (closed forms), ``mean``, ``variance``, ``mode``, ``entropy``, ``sample(rng, shape)``
  and ``kl``; ``grad`` flows through the parameters (book §3.3.1).
- **PMF vectors and divergences** (:mod:`.pmf`, :mod:`.kl`): ``expectation``, ``variance``,
  ``mode``, ``entropy``, ``in_simplex``, ``kl_divergence`` (§3.1.1, §3.4.3).
- **Exponential families** (:mod:`.exponential_family`): ``A``, ``∇A`` = mean,
  ``∇²A`` = covariance, natural ↔ mean conversions, MLE by moment matching, max entropy (§3.4).
- **Losses and GLMs** (:mod:`.losses`, :mod:`.glm`, :mod:`.fit`): NLLs on logits (§3.3.8),
  generalized linear models (§3.4.5), generic maximum likelihood (§3.2.1).
- **Convex primitives** (:mod:`.convex`): ``xlogx``, ``sum_largest``, ``lambda_max``,
  ``logdet``. Convexity checks are :func:`diffprog.optim.check_convex` and friends.

Example:
    >>> import numpy as np
    >>> from diffprog.proba import Categorical, softmax_cross_entropy
    >>> logits = np.array([1.0, 2.0, 3.0])
    >>> bool(np.isclose(-Categorical(logits=logits).log_prob(0), softmax_cross_entropy(logits, 0)))
    True
"""

from diffprog.optim.oracles import empirical_risk
from diffprog.scipy.special import erf, expit, logistic, logit, logsumexp, softargmax, softmax

from .continuous import Exponential, Gamma, Gumbel, Logistic, Normal, normal_cdf
from .convex import lambda_max, logdet, sum_largest, xlogx
from .discrete import Bernoulli, Categorical, Poisson
from .distribution import Distribution
from .exponential_family import (
    ExponentialFamily,
    MaxEntropyResult,
    bernoulli_family,
    categorical_family,
    covariance,
    dirichlet_family,
    discrete_family,
    discrete_log_partition,
    exp_family_nll,
    exponential_distribution_family,
    fit_exp_family,
    gamma_family,
    max_entropy,
    mean_function,
    multivariate_normal_family,
    natural_from_mean,
    normal_family,
    normal_location_family,
    poisson_family,
)
from .fit import fit_mle, negative_log_likelihood
from .glm import (
    fit_glm,
    glm_objective,
    linear_model,
    predict_distribution,
    predict_mean,
    predict_proba,
)
from .kl import kl_divergence
from .losses import (
    binary_logistic_loss,
    gaussian_nll,
    one_hot,
    poisson_loss,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softplus,
    squared_loss,
)
from .multivariate import Dirichlet, MultivariateNormal, psd_from_factor
from .pmf import entropy, expectation, in_simplex, kl_log_probs, mode, variance

#: Alias of :func:`logistic` (book §3.3.3: the logistic function is the sigmoid).
sigmoid = logistic

__all__ = [
    # distributions
    "Distribution", "Bernoulli", "Categorical", "Poisson", "Normal", "Logistic", "Gumbel",
    "Exponential", "Gamma", "MultivariateNormal", "Dirichlet", "psd_from_factor", "normal_cdf",
    # pmf vectors, divergences
    "expectation", "variance", "mode", "entropy", "in_simplex", "kl_divergence", "kl_log_probs",
    # exponential families
    "ExponentialFamily", "MaxEntropyResult", "bernoulli_family", "categorical_family",
    "normal_location_family", "normal_family", "multivariate_normal_family", "poisson_family",
    "exponential_distribution_family", "gamma_family", "dirichlet_family", "discrete_family",
    "discrete_log_partition", "mean_function", "covariance", "natural_from_mean",
    "exp_family_nll", "fit_exp_family", "max_entropy",
    # losses, GLMs, MLE
    "binary_logistic_loss", "sigmoid_binary_cross_entropy", "softmax_cross_entropy",
    "poisson_loss", "squared_loss", "gaussian_nll", "one_hot", "softplus", "empirical_risk",
    "glm_objective", "linear_model", "predict_mean", "predict_proba", "predict_distribution",
    "fit_glm", "fit_mle", "negative_log_likelihood",
    # link functions and special functions (book names)
    "logistic", "sigmoid", "expit", "logit", "erf", "logsumexp", "softmax", "softargmax",
    # convex primitives
    "xlogx", "sum_largest", "lambda_max", "logdet",
]
