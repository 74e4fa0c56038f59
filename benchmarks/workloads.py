"""Benchmark workloads shared by every library's worker.

Every workload is generated here with NumPy from a fixed seed, so each library differentiates the
same function at the same point. The module also holds the plain-NumPy primal (the forward loss,
the denominator of every ratio the runner prints) and a hand-written NumPy gradient, which serves
as the reference the workers check their gradients against.

Workloads
---------
``chain``
    200 repetitions of ``x = sin(x) * 1.01 + 0.1`` on a 1-element float64 array, loss ``sum(x)``.
    Almost no arithmetic: this measures per-operation overhead (Book §8.1, computation chains).
``mlp_small``
    32-64-64-10 tanh MLP, batch 16, softmax cross-entropy with integer labels, float64.
``mlp_big``
    784-512-512-10 tanh MLP, batch 128, same loss. Dominated by matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CHAIN_LENGTH = 200
SEED = 0

#: layer widths and batch size of the MLP workloads
MLP_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "mlp_small": ((32, 64, 64, 10), 16),
    "mlp_big": ((784, 512, 512, 10), 128),
}

WORKLOADS: tuple[str, ...] = ("chain", "mlp_small", "mlp_big")


@dataclass
class Problem:
    """One workload's data, as NumPy arrays.

    ``params`` is what gets differentiated: the 1-element array ``x`` for ``chain``, and a list
    of ``(W, b)`` tuples for the MLPs. ``X`` and ``y`` (inputs and integer labels) are ``None``
    for ``chain``.
    """

    name: str
    params: Any
    X: np.ndarray | None = None
    y: np.ndarray | None = None


def make_problem(name: str) -> Problem:
    """Build the data and initial parameters of workload ``name`` (fixed seed, float64)."""
    rng = np.random.default_rng(SEED)
    if name == "chain":
        return Problem(name, rng.standard_normal(1))
    if name not in MLP_SHAPES:
        raise ValueError(f"make_problem: unknown workload {name!r}; expected one of {WORKLOADS}")
    sizes, batch = MLP_SHAPES[name]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        b = 0.1 * rng.standard_normal(fan_out)
        params.append((W, b))
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    return Problem(name, params, X, y)


# ----------------------------------------------------------------------------- plain NumPy


def chain_loss_np(x: np.ndarray) -> float:
    """Plain-NumPy ``chain`` loss."""
    for _ in range(CHAIN_LENGTH):
        x = np.sin(x) * 1.01 + 0.1
    return np.sum(x)


def _logsumexp_rows(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=1, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


def mlp_loss_np(params: list, X: np.ndarray, y: np.ndarray) -> float:
    """Plain-NumPy MLP loss: tanh hidden layers, mean softmax cross-entropy."""
    h = X
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    W, b = params[-1]
    logits = h @ W + b
    logp = logits - _logsumexp_rows(logits)
    return -np.mean(logp[np.arange(X.shape[0]), y])


def primal_np(problem: Problem) -> Any:
    """Evaluate the plain-NumPy loss of ``problem`` once."""
    if problem.name == "chain":
        return chain_loss_np(problem.params)
    return mlp_loss_np(problem.params, problem.X, problem.y)


def grad_np(problem: Problem) -> Any:
    """Hand-written reverse-mode gradient of the loss (the reference for correctness checks).

    Returns an object with the structure of ``problem.params``.
    """
    if problem.name == "chain":
        xs = [problem.params]
        x = problem.params
        for _ in range(CHAIN_LENGTH):
            x = np.sin(x) * 1.01 + 0.1
            xs.append(x)
        r = np.ones_like(x)
        for k in range(CHAIN_LENGTH - 1, -1, -1):
            r = r * 1.01 * np.cos(xs[k])
        return r
    params, X, y = problem.params, problem.X, problem.y
    n = X.shape[0]
    hs = [X]
    for W, b in params[:-1]:
        hs.append(np.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    logits = hs[-1] @ W + b
    p = np.exp(logits - _logsumexp_rows(logits))
    p[np.arange(n), y] -= 1.0
    r = p / n  # d loss / d logits
    grads = []
    for k in range(len(params) - 1, -1, -1):
        W, _ = params[k]
        grads.append((hs[k].T @ r, r.sum(axis=0)))
        if k > 0:
            r = (r @ W.T) * (1.0 - hs[k] ** 2)
    return grads[::-1]


def flatten(tree: Any) -> np.ndarray:
    """Concatenate every array leaf of a (nested list/tuple) tree into one float64 vector."""
    if isinstance(tree, (list, tuple)):
        parts = [flatten(t) for t in tree]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(tree, dtype=np.float64).ravel()
