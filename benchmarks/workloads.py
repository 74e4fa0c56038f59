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
``lstm``
    2-layer LSTM (input 16, hidden 64, sequence 32, batch 8, float64), zero initial states, loss
    ``mean((h2_T - target)**2)`` on the final hidden state of layer 2; the gradient is taken with
    respect to the six parameter arrays. Many small operations per time step, 64 cell steps.
``per_example_grads``
    The ``mlp_small`` model (32-64-64-10 tanh, softmax cross-entropy) on 128 examples; the
    "gradient" is the stack of the 128 per-example gradients of the single-example loss (each
    parameter gets a leading axis of length 128). The primal is the batched mean loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

CHAIN_LENGTH = 200
SEED = 0

#: layer widths and batch size of the MLP workloads
MLP_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "mlp_small": ((32, 64, 64, 10), 16),
    "mlp_big": ((784, 512, 512, 10), 128),
}

#: per_example_grads: the mlp_small model on this many examples
PER_EXAMPLE_BATCH = 128

#: lstm: input size, hidden size, sequence length, batch size, number of layers
LSTM_INPUT, LSTM_HIDDEN, LSTM_STEPS, LSTM_BATCH, LSTM_LAYERS = 16, 64, 32, 8, 2

WORKLOADS: tuple[str, ...] = ("chain", "mlp_small", "mlp_big", "lstm", "per_example_grads")


@dataclass
class Problem:
    """One workload's data, as NumPy arrays.

    ``params`` is what gets differentiated: the 1-element array ``x`` for ``chain``, a list of
    ``(W, b)`` tuples for the MLPs (``per_example_grads`` included) and a list of ``(Wx, Wh, b)``
    tuples, one per layer, for ``lstm``. ``X`` and ``y`` are the inputs and integer labels of the
    MLPs; for ``lstm`` they are the input sequence ``(steps, batch, input)`` and the float
    target ``(batch, hidden)``; both are ``None`` for ``chain``.
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
    if name == "lstm":
        params = []
        fan_in = LSTM_INPUT
        for _ in range(LSTM_LAYERS):
            Wx = rng.standard_normal((fan_in, 4 * LSTM_HIDDEN)) / np.sqrt(fan_in)
            Wh = rng.standard_normal((LSTM_HIDDEN, 4 * LSTM_HIDDEN)) / np.sqrt(LSTM_HIDDEN)
            b = 0.1 * rng.standard_normal(4 * LSTM_HIDDEN)
            params.append((Wx, Wh, b))
            fan_in = LSTM_HIDDEN
        xs = rng.standard_normal((LSTM_STEPS, LSTM_BATCH, LSTM_INPUT))
        target = rng.uniform(-0.5, 0.5, size=(LSTM_BATCH, LSTM_HIDDEN))
        return Problem(name, params, xs, target)
    if name == "per_example_grads":
        sizes, batch = MLP_SHAPES["mlp_small"][0], PER_EXAMPLE_BATCH
    elif name in MLP_SHAPES:
        sizes, batch = MLP_SHAPES[name]
    else:
        raise ValueError(f"make_problem: unknown workload {name!r}; expected one of {WORKLOADS}")
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


def lstm_layer_np(p: tuple, xs: np.ndarray, keep: bool = False) -> tuple:
    """Run one LSTM layer over the sequence ``xs`` from zero states, a Python loop over time.

    Gates in the order input, forget, output (sigmoid; one ``expit`` on the first ``3H``
    columns) and cell candidate (tanh). Returns ``(h_T, hs)``, with ``hs`` the stacked hidden
    states when ``keep`` (the input of the next layer), else ``None``.
    """
    Wx, Wh, b = p
    H = Wh.shape[0]
    h = np.zeros((xs.shape[1], H))
    c = np.zeros_like(h)
    hs = []
    for x in xs:
        z = x @ Wx + h @ Wh + b
        s = expit(z[:, : 3 * H])
        g = np.tanh(z[:, 3 * H :])
        c = s[:, H : 2 * H] * c + s[:, :H] * g
        h = s[:, 2 * H :] * np.tanh(c)
        if keep:
            hs.append(h)
    return h, (np.stack(hs) if keep else None)


def lstm_loss_np(params: list, xs: np.ndarray, target: np.ndarray) -> float:
    """Plain-NumPy ``lstm`` loss: ``mean((h_T - target)**2)`` of the last layer's final state."""
    for p in params[:-1]:
        _, xs = lstm_layer_np(p, xs, keep=True)
    h, _ = lstm_layer_np(params[-1], xs)
    return np.mean((h - target) ** 2)


def primal_np(problem: Problem) -> Any:
    """Evaluate the plain-NumPy loss of ``problem`` once.

    For ``per_example_grads`` this is the batched mean loss over the 128 examples (one
    vectorized forward pass).
    """
    if problem.name == "chain":
        return chain_loss_np(problem.params)
    if problem.name == "lstm":
        return lstm_loss_np(problem.params, problem.X, problem.y)
    return mlp_loss_np(problem.params, problem.X, problem.y)


def _lstm_grad_np(params: list, xs: np.ndarray, target: np.ndarray) -> list:
    """Hand-written backpropagation through time for :func:`lstm_loss_np`."""
    # forward, keeping what the backward pass needs
    tapes = []
    inp = xs
    for Wx, Wh, b in params:
        H = Wh.shape[0]
        h = np.zeros((inp.shape[1], H))
        c = np.zeros_like(h)
        steps, hs = [], []
        for x in inp:
            z = x @ Wx + h @ Wh + b
            s = expit(z[:, : 3 * H])
            g = np.tanh(z[:, 3 * H :])
            c_new = s[:, H : 2 * H] * c + s[:, :H] * g
            tc = np.tanh(c_new)
            steps.append((x, h, c, s, g, tc))
            h, c = s[:, 2 * H :] * tc, c_new
            hs.append(h)
        tapes.append(steps)
        inp = np.stack(hs)
    # backward: d loss / d h_T of the last layer, then layer by layer, time step by time step
    dh_ext = np.zeros((len(xs), *h.shape))  # cotangents of the layer's outputs h_t
    dh_ext[-1] = 2.0 * (h - target) / h.size
    grads = []
    for layer in range(len(params) - 1, -1, -1):
        Wx, Wh, _ = params[layer]
        H = Wh.shape[0]
        dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
        db = np.zeros(4 * H)
        dh = np.zeros_like(dh_ext[0])
        dc = np.zeros_like(dh)
        dx = np.zeros((len(xs), dh.shape[0], Wx.shape[0]))
        dz = np.empty((dh.shape[0], 4 * H))
        for t in range(len(xs) - 1, -1, -1):
            x, h_prev, c_prev, s, g, tc = tapes[layer][t]
            i, f, o = s[:, :H], s[:, H : 2 * H], s[:, 2 * H :]
            dh = dh + dh_ext[t]
            dc = dc + dh * o * (1.0 - tc**2)
            dz[:, :H] = dc * g
            dz[:, H : 2 * H] = dc * c_prev
            dz[:, 2 * H : 3 * H] = dh * tc
            dz[:, : 3 * H] *= s * (1.0 - s)
            dz[:, 3 * H :] = dc * i * (1.0 - g**2)
            dc = dc * f
            dWx += x.T @ dz
            dWh += h_prev.T @ dz
            db += dz.sum(axis=0)
            dx[t] = dz @ Wx.T
            dh = dz @ Wh.T
        grads.append((dWx, dWh, db))
        dh_ext = dx
    return grads[::-1]


def _per_example_grads_np(params: list, X: np.ndarray, y: np.ndarray) -> list:
    """Per-example gradients of the single-example MLP loss, vectorized by hand.

    One batched forward and backward pass; each example's weight gradient is the outer product
    of its layer input and its backpropagated error (``einsum("ni,nj->nij")``).
    """
    n = X.shape[0]
    hs = [X]
    for W, b in params[:-1]:
        hs.append(np.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    logits = hs[-1] @ W + b
    r = np.exp(logits - _logsumexp_rows(logits))
    r[np.arange(n), y] -= 1.0  # d loss_n / d logits_n, one row per example
    grads = []
    for k in range(len(params) - 1, -1, -1):
        W, _ = params[k]
        grads.append((np.einsum("ni,nj->nij", hs[k], r), r))
        if k > 0:
            r = (r @ W.T) * (1.0 - hs[k] ** 2)
    return grads[::-1]


def grad_np(problem: Problem) -> Any:
    """Hand-written reverse-mode gradient of the loss (the reference for correctness checks).

    Returns an object with the structure of ``problem.params`` (for ``per_example_grads`` every
    leaf gets a leading axis of length 128, one gradient per example).
    """
    if problem.name == "lstm":
        return _lstm_grad_np(problem.params, problem.X, problem.y)
    if problem.name == "per_example_grads":
        return _per_example_grads_np(problem.params, problem.X, problem.y)
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


# ----------------------------------------------------------------------------- self-check


def _check_lstm_against_finite_differences(eps: float = 1e-6, samples: int = 40) -> float:
    """Central differences of :func:`lstm_loss_np` on random entries vs the hand BPTT gradient.

    Returns the largest relative error over the sampled entries.
    """
    problem = make_problem("lstm")
    grads = flatten(_lstm_grad_np(problem.params, problem.X, problem.y))
    leaves = [a for p in problem.params for a in p]
    sizes = np.cumsum([0] + [a.size for a in leaves])
    rng = np.random.default_rng(1)
    worst = 0.0
    for k in rng.choice(int(sizes[-1]), size=samples, replace=False):
        j = int(np.searchsorted(sizes, k, side="right") - 1)
        flat = leaves[j].reshape(-1)  # a view: perturbs the parameter in place
        old = flat[k - sizes[j]]
        flat[k - sizes[j]] = old + eps
        up = lstm_loss_np(problem.params, problem.X, problem.y)
        flat[k - sizes[j]] = old - eps
        down = lstm_loss_np(problem.params, problem.X, problem.y)
        flat[k - sizes[j]] = old
        fd = (up - down) / (2 * eps)
        worst = max(worst, abs(fd - grads[k]) / max(np.max(np.abs(grads)), 1e-300))
    return worst


def _check_per_example_against_loop() -> float:
    """The vectorized per-example gradients vs a loop of :func:`grad_np` on single examples."""
    problem = make_problem("per_example_grads")
    got = _per_example_grads_np(problem.params, problem.X, problem.y)
    rows = []
    for n in range(problem.X.shape[0]):
        one = Problem("mlp_small", problem.params, problem.X[n : n + 1], problem.y[n : n + 1])
        rows.append(flatten(grad_np(one)))
    flat = np.stack([flatten([(W[n], b[n]) for W, b in got]) for n in range(len(rows))])
    ref = np.stack(rows)
    return float(np.max(np.abs(flat - ref)) / np.max(np.abs(ref)))


if __name__ == "__main__":
    fd_err = _check_lstm_against_finite_differences()
    print(f"lstm hand gradient vs central differences: relative error {fd_err:.2e}")
    loop_err = _check_per_example_against_loop()
    print(f"per-example gradients vs loop over examples: relative error {loop_err:.2e}")
