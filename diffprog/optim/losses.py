r"""Loss functions on predictions (logits / natural parameters), differentiable with diffprog.

Book ch. 3 (§3.3.8, Fig. 3.1–3.4) and ch. 18 (Table 18.1). Convention: **prediction first,
target second** (``loss(theta, y)``), like the book's ``ℓ(θ, y)``. Scalar losses are elementwise
(batch by broadcasting); multiclass losses reduce over the last axis (classes).

Example::

    >>> import numpy as np
    >>> from diffprog.optim.losses import softmax_cross_entropy
    >>> round(float(softmax_cross_entropy(np.array([1.0, 2.0, 3.0]), 0)), 12)
    2.407605964444
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.core.primitive import Tracer
from diffprog.scipy.special import gammaln, logsumexp

__all__ = [
    "absolute_loss",
    "binary_logistic_loss",
    "hinge_loss",
    "logistic_loss",
    "multiclass_hinge",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "one_hot",
    "poisson_loss",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softplus",
    "squared_loss",
]

Array = Any


def softplus(x: Array) -> Array:
    r"""``softplus(x) = log(1 + eˣ)``, computed stably as ``logaddexp(x, 0)``.
    Book §3.3.8 (loss functions).

    Example: ``softplus(0.0)`` → ``log 2``.
    """
    return dnp.logaddexp(x, 0.0)


def _concrete(x: Any) -> np.ndarray | None:
    return None if isinstance(x, Tracer) else np.asarray(x)


def logistic_loss(logit: Array, label: Array, labels: str = "01") -> Array:
    r"""Binary logistic loss (sigmoid cross-entropy) on logits, elementwise.

    ``labels="01"`` (default), ``y ∈ {0, 1}``: ``ℓ(θ, y) = softplus(θ) − yθ =
    −[y log σ(θ) + (1−y) log(1−σ(θ))]``, gradient ``σ(θ) − y``.
    ``labels="pm1"``, ``y ∈ {−1, +1}``: ``ℓ(s, y) = log(1 + e^{−sy}) = softplus(−sy)``, gradient
    ``−y σ(−sy)`` (003 (14.11)). Both are stable at ``|θ| = 1000``. Book §3.3.8, Fig. 3.1.

    Example: ``logistic_loss(np.log(4.0), 1)`` → ``0.22314355131`` (= −log 0.8).
    """
    y = _concrete(label)
    if labels == "01":
        if y is not None and np.any((y < 0) | (y > 1)):
            raise ValueError("logistic_loss: labels='01' needs y in [0, 1]")
        return softplus(logit) - label * logit
    if labels == "pm1":
        if y is not None and not np.all(np.isin(y, (-1, 1))):
            raise ValueError("logistic_loss: labels='pm1' needs y in {-1, +1}")
        return softplus(-label * logit)
    raise ValueError(f"logistic_loss: labels must be '01' or 'pm1', got {labels!r}")


def binary_logistic_loss(logit: Array, label: Array) -> Array:
    r"""``logistic_loss(logit, label, labels="01")``: ``softplus(θ) − θy``, ``y ∈ {0,1}`` (FUND-63).
    Book §3.3.8 (loss functions).

    Example: ``binary_logistic_loss(0.0, 1)`` → ``log 2``.
    """
    return logistic_loss(logit, label, "01")


sigmoid_binary_cross_entropy = binary_logistic_loss


def one_hot(labels: Array, num_classes: int) -> np.ndarray:
    """One-hot encoding ``e_y`` of integer labels (shape ``labels.shape + (num_classes,)``).
    Book §3.3.8 (loss functions).

    Raises ``ValueError`` for labels outside ``[0, num_classes)``.

    Example: ``one_hot(1, 3)`` → ``array([0., 1., 0.])``.
    """
    y = np.asarray(labels)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if np.any(y < 0) or np.any(y >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes})")
    return np.eye(num_classes)[y]


def _targets(theta: Array, y: Array, fname: str) -> Array:
    """Integer labels → one-hot; otherwise a target array of the same shape as ``theta``."""
    if dnp.ndim(theta) == 0:
        raise ValueError(f"{fname}: theta must have a class axis (last axis)")
    m = dnp.shape(theta)[-1]
    yc = _concrete(y)
    if yc is not None and np.issubdtype(yc.dtype, np.integer):
        if yc.shape != tuple(dnp.shape(theta)[:-1]):
            raise ValueError(
                f"{fname}: integer labels of shape {yc.shape} do not match theta "
                f"{dnp.shape(theta)} (expected {tuple(dnp.shape(theta)[:-1])})"
            )
        return one_hot(yc, m)
    if dnp.shape(y) != dnp.shape(theta):
        raise ValueError(
            f"{fname}: target shape {dnp.shape(y)} does not match theta shape {dnp.shape(theta)}"
        )
    return y


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""Multiclass logistic loss ``ℓ(θ, y) = logsumexp(θ) − ⟨θ, y⟩`` over the last axis.

    ``labels``: integer class indices (shape ``logits.shape[:-1]``) or one-hot / probability
    vectors (same shape as ``logits``). Gradient ``softmax(θ) − y``. Book §2.2.2 Ex. 2.3, §3.3.8.

    Example: ``softmax_cross_entropy(np.array([1., 2., 3.]), 0)`` → ``2.407605964444``.
    """
    if isinstance(labels, Tracer) and np.issubdtype(labels.dtype, np.integer):
        # traced integer labels (under jit/vmap): gather θ_y, no one-hot of unknown values
        if dnp.ndim(logits) == 0 or tuple(dnp.shape(labels)) != tuple(dnp.shape(logits)[:-1]):
            raise ValueError(f"softmax_cross_entropy: integer labels of shape "
                             f"{tuple(dnp.shape(labels))} do not match logits "
                             f"{tuple(dnp.shape(logits))}")
        picked = dnp.take_along_axis(logits, dnp.expand_dims(labels, -1), axis=-1)
        return logsumexp(logits, axis=-1) - picked[..., 0]
    y = _targets(logits, labels, "softmax_cross_entropy")
    return logsumexp(logits, axis=-1) - dnp.sum(logits * y, axis=-1)


def squared_loss(pred: Array, target: Array) -> Array:
    r"""Squared loss ``½(θ − y)²``, elementwise (sum it for ``½‖θ − y‖²``). Gradient ``θ − y``.

    Book §3.3.8, Table 18.1. Raises on mismatched shapes (no silent broadcasting of targets).

    Example: ``squared_loss(np.array([1., 2.]), np.array([0., 0.]))`` → ``array([0.5, 2.])``.
    """
    if dnp.shape(pred) != dnp.shape(target) and dnp.ndim(target) != 0:
        raise ValueError(
            f"squared_loss: target shape {dnp.shape(target)} != prediction shape {dnp.shape(pred)}"
        )
    d = pred - target
    return 0.5 * d * d


def absolute_loss(pred: Array, target: Array) -> Array:
    r"""Absolute loss ``|θ − y|``, elementwise (Table 18.1). Not differentiable at ``θ = y``.
    Book §3.3.8 (loss functions).

    Example: ``absolute_loss(np.array([1., -2.]), 0.0)`` → ``array([1., 2.])``.
    """
    return dnp.abs(pred - target)


def poisson_loss(log_rate: Array, target: Array, full: bool = True) -> Array:
    r"""Poisson negative log-likelihood on the log-rate: ``ℓ(θ, y) = eᶿ − yθ + log(y!)``.

    ``log(y!)`` is ``gammaln(y + 1)`` (dropped when ``full=False``). Gradient ``eᶿ − y``; the
    minimum is at ``θ = log y``. ``y ≥ 0`` required. Book §3.3.7–3.3.8, Fig. 3.4.

    Example: ``poisson_loss(0.0, 1.0)`` → ``1.0``.
    """
    y = _concrete(target)
    if y is not None and np.any(y < 0):
        raise ValueError("poisson_loss: target must be >= 0")
    out = dnp.exp(log_rate) - target * log_rate
    if full:
        out = out + gammaln(dnp.asarray(target, dtype=float) + 1.0)
    return out


def hinge_loss(score: Array, label: Array) -> Array:
    r"""Binary hinge loss ``max(0, 1 − y s)`` with ``y ∈ {−1, +1}``, elementwise.
    Book §3.3.8 (loss functions).

    Subgradient ``−y·1[ys < 1]``. Book ch. 18 (Table 18.1, binary case).

    Example: ``hinge_loss(np.array([2., 0.5, -1.]), 1)`` → ``array([0., 0.5, 2.])``.
    """
    y = _concrete(label)
    if y is not None and not np.all(np.isin(y, (-1, 1))):
        raise ValueError("hinge_loss: labels must be in {-1, +1}")
    return dnp.maximum(1.0 - label * score, 0.0)


def multiclass_hinge_loss(scores: Array, label: Array) -> Array:
    r"""Multiclass hinge (Crammer–Singer) ``max_i([i ≠ y] + θ_i) − θ_y`` over the last axis.
    Book §3.3.8 (loss functions).

    ``label``: integer class or one-hot ``t``: ``max(1 − t + θ) − ⟨θ, t⟩``. Book Table 18.1.

    Example: ``multiclass_hinge_loss(np.array([1., 3., 2.]), 1)`` → ``0.0``.
    """
    t = _targets(scores, label, "multiclass_hinge_loss")
    return dnp.max(1.0 - t + scores, axis=-1) - dnp.sum(scores * t, axis=-1)


multiclass_hinge = multiclass_hinge_loss


def multiclass_perceptron_loss(scores: Array, label: Array) -> Array:
    r"""Multiclass perceptron ``max_i θ_i − θ_y`` over the last axis. Book Table 18.1.
    Book §3.3.8 (loss functions).

    Example: ``multiclass_perceptron_loss(np.array([1., 3., 2.]), 0)`` → ``2.0``.
    """
    t = _targets(scores, label, "multiclass_perceptron_loss")
    return dnp.max(scores, axis=-1) - dnp.sum(scores * t, axis=-1)
