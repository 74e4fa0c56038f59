"""The digits MLP example (issue: ≥ 95% test accuracy on scikit-learn's handwritten digits)."""

from __future__ import annotations

import numpy as np

from diffprog.gallery.digits_mlp import load_digits_split, train_digits_mlp


def test_split_is_stratified_and_disjoint():
    X_train, y_train, X_test, y_test = load_digits_split(0)
    assert len(y_train) + len(y_test) == 1797
    assert X_train.min() >= 0.0 and X_train.max() <= 1.0
    counts = np.bincount(y_test, minlength=10) / np.bincount(np.r_[y_train, y_test])
    np.testing.assert_allclose(counts, 0.25, atol=0.01)


def test_digits_mlp_reaches_95_percent_test_accuracy():
    res = train_digits_mlp()
    # accuracy recomputed from the weights with plain NumPy, independent of the module's __call__
    h = res.X_test
    layers = res.model.layers
    for lin in layers[:-1]:
        h = np.maximum(h @ lin.W + lin.b, 0.0)
    logits = h @ layers[-1].W + layers[-1].b
    accuracy = float(np.mean(np.argmax(logits, -1) == res.y_test))
    assert accuracy == res.test_accuracy
    assert accuracy >= 0.95
    assert res.loss[-1] < 0.1 * res.loss[0]
