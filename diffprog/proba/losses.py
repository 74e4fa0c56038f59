r"""Probabilistic losses: negative log-likelihoods on logits / natural parameters (book §3.3.8).

Losses take the network output ``θ`` (logits, log-rates, means), never probabilities: the
binary loss is ``softplus(θ) − θy`` (finite at ``|θ| = 1000``), the multiclass loss
``logsumexp(θ) − ⟨θ, e_y⟩`` (book §3.3.8 writes it on probabilities, a misprint), the Poisson
loss ``e^θ − yθ + log y!`` (integer regression, §3.3.7) and the Gaussian NLL
``(y−μ)²/(2σ²) + log σ + ½ log 2π`` (the book prints ``1/σ²``, a misprint). The first four
live in :mod:`diffprog.optim.losses` and are re-exported here; every exponential family has its
NLL in :func:`diffprog.proba.exp_family_nll`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffprog.optim.losses import (
    _concrete,
    binary_logistic_loss,
    one_hot,
    poisson_loss,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softplus,
    squared_loss,
)

from .continuous import Normal

__all__ = [
    "binary_logistic_loss",
    "gaussian_nll",
    "one_hot",
    "poisson_loss",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softplus",
    "squared_loss",
]

Array = Any

def gaussian_nll(mean: Array, y: Array, sigma: Array = 1.0) -> Array:
    r"""Gaussian negative log-likelihood ``−log N(y; μ, σ²) = (y−μ)²/(2σ²) + ½ log σ² +
    ½ log 2π``, elementwise (book §3.3.8, Fig. 3.3; corrected from the printed ``1/σ²``).

    With ``σ = 1`` it is the squared loss ``½(y−μ)²`` plus ``½ log 2π``; gradient in ``μ``:
    ``(μ − y)/σ²``. ``sigma`` must be ``> 0``.

    Example:
        >>> round(float(gaussian_nll(0.0, 0.0)), 12)  # ½ log 2π
        0.918938533205
        >>> round(float(gaussian_nll(0.0, 2.0, sigma=2.0)), 6)  # ½ + log 2 + ½ log 2π
        2.112086
    """
    s = _concrete(sigma)
    if s is not None and s.dtype != object and not np.all(s > 0):
        raise ValueError(f"gaussian_nll: argument 'sigma' must be > 0, got {s.ravel()[:3]}")
    return -Normal(mean, sigma).log_prob(y)


