r"""Functions of probability vectors (PMFs over a finite set; book §3.1.1, §3.3.4, §3.4.3).

``probs`` has the support on its last axis. ``expectation``/``variance`` take the values
``φ(y)`` of a statistic on the support (shape ``(M,)`` or ``(M, D)``). ``entropy`` and
``kl_divergence`` use ``0 log 0 = 0`` and return ``+inf`` when ``p_y > 0 = q_y``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.scipy.special import entr, xlogy

from .distribution import Distribution

__all__ = ["expectation", "variance", "mode", "entropy", "in_simplex", "kl_log_probs"]

Array = Any


def _values(values: Any, m: int, fname: str) -> Any:
    if values is None:
        return np.arange(m, dtype=float)
    if dnp.ndim(values) not in (1, 2) or dnp.shape(values)[0] != m:
        raise ValueError(f"{fname}: argument 'values' must have shape ({m},) or ({m}, D) to "
                         f"match probs, got {tuple(dnp.shape(values))}")
    return values


def expectation(probs: Array, values: Array = None) -> Array:
    r"""``E[φ(Y)] = Σ_y p(y) φ(y)`` (book §3.1.1). ``values`` (default ``0, …, M−1``) holds
    ``φ(y)`` for each ``y`` of the support, as ``(M,)`` or ``(M, D)``.

    Example:
        >>> p = np.array([0.3, 0.6, 0.1])
        >>> expectation(p, np.eye(3)).tolist()  # E[e_Y] = π
        [0.3, 0.6, 0.1]
    """
    v = _values(values, dnp.shape(probs)[-1], "expectation")
    return dnp.tensordot(probs, v, axes=([-1], [0]))


def variance(probs: Array, values: Array = None) -> Array:
    r"""``V[φ(Y)] = Σ_y p(y)(φ(y) − E[φ(Y)])²`` (coordinatewise for vector ``φ``; book §3.1.1).

    Example:
        >>> round(float(variance(np.array([0.2, 0.8]), np.array([0.0, 1.0]))), 12)  # Bernoulli
        0.16
    """
    v = _values(values, dnp.shape(probs)[-1], "variance")
    mean = expectation(probs, v)
    sq = expectation(probs, v * v)
    return sq - mean * mean


def mode(probs: Array) -> Array:
    """``argmax_y p(y)`` over the last axis (ties: the first index; book §3.1.1).

    Example:
        >>> int(mode(np.array([0.3, 0.6, 0.1])))
        1
    """
    return dnp.argmax(probs, axis=-1)


def entropy(p: Array | Distribution) -> Array:
    r"""Shannon entropy ``H(p) = −Σ_y p(y) log p(y)`` with ``0 log 0 = 0`` (book §3.4.3);
    for a :class:`Distribution`, its ``entropy()`` (``−∫ p log p`` in the continuous case).

    Example:
        >>> round(float(entropy(np.array([0.3, 0.6, 0.1]))), 12)
        0.897945724857
        >>> float(entropy(np.array([0.0, 1.0])))  # one-hot: 0, not nan
        0.0
    """
    if isinstance(p, Distribution):
        return p.entropy()
    return dnp.sum(entr(p), axis=-1)


def in_simplex(p: Array, atol: float = 1e-9) -> np.ndarray:
    r"""Whether ``p ∈ Δᴹ = {π ∈ R₊ᴹ : ⟨π, 1⟩ = 1}`` (last axis), within ``atol``. Book §3.3.4.

    Example:
        >>> in_simplex(np.array([[0.3, 0.6, 0.1], [0.5, 0.6, -0.1]])).tolist()
        [True, False]
    """
    p = np.asarray(p, dtype=float)
    if p.ndim == 0:
        raise ValueError("in_simplex: argument 'p' needs a last axis (the support)")
    return np.all(p >= -atol, axis=-1) & (np.abs(p.sum(axis=-1) - 1.0) <= atol * p.shape[-1])


def discrete_kl(p: Array, q: Array) -> Array:
    r"""``KL(p‖q) = Σ_y p(y) log(p(y)/q(y))`` over the last axis (book §3.1.1)."""
    return dnp.sum(xlogy(p, p) - xlogy(p, q), axis=-1)


def kl_log_probs(log_p: Array, log_q: Array) -> Array:
    r"""``KL(p‖q) = Σ_y e^{log p(y)} (log p(y) − log q(y))`` from log-probabilities (last axis),
    the stable form for logits: ``log p = θ − logsumexp θ``. Book §3.1.1.

    Example:
        >>> lp = np.log(np.array([0.3, 0.6, 0.1]))
        >>> round(float(kl_log_probs(lp, np.log(np.ones(3) / 3))), 12)
        0.200666563811
    """
    p = dnp.exp(log_p)
    diff = dnp.where(p > 0, log_p - log_q, 0.0)
    return dnp.sum(p * diff, axis=-1)
