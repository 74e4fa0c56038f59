"""An MLP classifier on real handwritten digits (book §4.3 MLPs, §3.3.4 multiclass logistic loss).

The data are the 1,797 8×8 handwritten digits bundled with scikit-learn (UCI optical recognition
of handwritten digits), pixel values scaled to [0, 1], split 75/25 into training and test sets
with a fixed seed, stratified by class. The model is ``diffprog.nn.MLP`` 64 → 256 → 10 with ReLU,
trained on the mean softmax cross-entropy (the multiclass logistic loss of the logits) with Adam,
mini-batches of 64 and a compiled gradient (``diffprog.optim.fit(..., jit=True)``).

``examples/digits_mlp.py`` runs it from the command line with a progress bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import diffprog.numpy as dnp
from diffprog.gallery.registry import example, pyplot

__all__ = ["DigitsResult", "load_digits_split", "train_digits_mlp"]


def load_digits_split(seed: int = 0, test_fraction: float = 0.25):
    """``(X_train, y_train, X_test, y_test)``: scikit-learn's digits, pixels scaled to [0, 1],
    a stratified split with a fixed seed."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X, y = data.data / 16.0, data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    return X[~test], y[~test], X[test], y[test]


class DigitsResult(NamedTuple):
    """What :func:`train_digits_mlp` returns."""

    model: Any
    loss: np.ndarray            # training loss at every step
    test_accuracy: float
    test_predictions: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _batches(X, y, batch_size: int, epochs: int, rng: np.random.Generator):
    n = len(y) - len(y) % batch_size                 # constant batch shape: one jit trace
    for _ in range(epochs):
        perm = rng.permutation(len(y))[:n]
        for i in range(0, n, batch_size):
            j = perm[i:i + batch_size]
            yield X[j], y[j]


def train_digits_mlp(*, hidden: int = 256, epochs: int = 40, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0, progress: bool = False) -> DigitsResult:
    """Train the 64 → ``hidden`` → 10 ReLU MLP with Adam; evaluate on the held-out digits."""
    from diffprog.nn.mlp import MLP
    from diffprog.optim import adam, fit
    from diffprog.optim.losses import softmax_cross_entropy

    X_train, y_train, X_test, y_test = load_digits_split(seed)
    model = MLP.init(seed, (64, hidden, 10))

    def loss(model, batch):
        xb, yb = batch
        return dnp.mean(softmax_cross_entropy(model(xb), yb))

    rng = np.random.default_rng(seed + 1)
    steps = epochs * (len(y_train) // batch_size)
    model, history = fit(loss, model, adam(lr), data=_batches(X_train, y_train, batch_size,
                                                              epochs, rng),
                         num_steps=steps, progress=progress, jit=True)
    pred = np.argmax(np.asarray(model(X_test)), axis=-1)
    return DigitsResult(model, history.loss, float(np.mean(pred == y_test)), pred, X_test, y_test)


@example("digits_mlp", title="An MLP classifier on handwritten digits", section="§4.3",
         caption="A 64-256-10 ReLU MLP (diffprog.nn.MLP) trained with Adam on the mean softmax "
                 "cross-entropy of scikit-learn's 8×8 digits. Left: training loss per step. "
                 "Middle: confusion matrix on the 450 held-out digits. Right: held-out digits "
                 "with the predicted class (red: mistakes).")
def digits_mlp(out_dir: Path) -> list[Path]:
    plt = pyplot()
    res = train_digits_mlp()
    fig = plt.figure(figsize=(14, 4.6))
    grid = fig.add_gridspec(4, 17, wspace=0.6, hspace=0.5)
    ax = fig.add_subplot(grid[:, 0:5])
    ax.plot(res.loss, lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("training cross-entropy (nats)")
    ax.set_title(f"test accuracy {100 * res.test_accuracy:.1f}%")
    ax = fig.add_subplot(grid[:, 6:11])
    conf = np.zeros((10, 10), dtype=int)
    np.add.at(conf, (res.y_test, res.test_predictions), 1)
    ax.imshow(conf, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if conf[i, j]:
                ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if conf[i, j] > conf.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_title("confusion matrix (test)")
    wrong = np.flatnonzero(res.test_predictions != res.y_test)
    shown = np.concatenate([wrong[:6], np.flatnonzero(res.test_predictions == res.y_test)])[:24]
    for k, i in enumerate(shown):
        a = fig.add_subplot(grid[k // 6, 11 + k % 6])
        a.imshow(res.X_test[i].reshape(8, 8), cmap="gray_r")
        ok = res.test_predictions[i] == res.y_test[i]
        a.set_title(str(res.test_predictions[i]), fontsize=8, color="black" if ok else "red")
        a.axis("off")
    path = out_dir / "digits_mlp.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
