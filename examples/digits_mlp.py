"""Train an MLP on scikit-learn's handwritten digits and report the test accuracy (book §4.3).

    python examples/digits_mlp.py [--epochs 30] [--hidden 128]

The training code lives in ``diffprog/gallery/digits_mlp.py`` (the gallery draws its figure from
the same function).
"""

from __future__ import annotations

import argparse
import time

from diffprog.gallery.digits_mlp import train_digits_mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    res = train_digits_mlp(hidden=args.hidden, epochs=args.epochs, seed=args.seed, progress=True)
    print(f"final training loss {res.loss[-1]:.4f}; test accuracy "
          f"{100 * res.test_accuracy:.2f}% on {len(res.y_test)} held-out digits; "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
