"""Softargmax and logsumexp as the temperature varies (Book §4.4.2, §4.4.4, Fig. 4.6).

For the fixed scores ``u = (1, 2, 3, 1.5)``: ``softargmax(u/γ)`` goes from uniform (large γ) to
the one-hot argmax (γ → 0), and ``logsumexp_γ(u) = γ logsumexp(u/γ)`` lies between
``max(u)`` and ``max(u) + γ log M``. A third panel draws Fig. 4.6 on the 2-simplex: the images
of random scores under argmax (vertices), softargmax (the relative interior) and sparseargmax
(the whole simplex, faces included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

SCORES = np.array([1.0, 2.0, 3.0, 1.5])
GAMMAS = np.logspace(-2, 1.5, 200)


def temperature_sweep(u: np.ndarray = SCORES, gammas: np.ndarray = GAMMAS):
    """``(probabilities (len(γ), M), logsumexp_γ (len(γ),))`` for the scores ``u``."""
    from diffprog.nn import activations as A

    probs = np.stack([np.asarray(A.softargmax(u, temperature=float(g))) for g in gammas])
    lse = np.array([float(A.logsumexp(u, temperature=float(g))) for g in gammas])
    return probs, lse


def simplex_images(n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Images of ``n`` random score vectors in ℝ³ under the three probability maps."""
    from diffprog.nn import activations as A

    U = 1.5 * np.random.default_rng(seed).normal(size=(n, 3))
    return {"argmax": np.asarray(A.argmax_onehot(U)),
            "softargmax": np.asarray(A.softargmax(U)),
            "sparseargmax": np.asarray(A.sparseargmax(U))}


def _to_plane(P: np.ndarray) -> np.ndarray:
    """Barycentric coordinates on the triangle with vertices e1, e2, e3 → 2-D points."""
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    return P @ corners


@example(
    "softmax_temperature",
    title="Softargmax and logsumexp with a temperature; the probability maps of Fig. 4.6",
    section="4.4.4",
    caption=(
        "Left: softargmax(u/γ) for the scores u = (1, 2, 3, 1.5) as the temperature γ varies "
        "(log scale): uniform for large γ, the one-hot argmax e_3 as γ → 0 (Book §4.4.4). "
        "Middle: logsumexp_γ(u) = γ logsumexp(u/γ) stays between max(u) = 3 and "
        "max(u) + γ log M (Book §4.4.2) and tends to max(u) as γ → 0. Right: Fig. 4.6 on the "
        "2-simplex, images of 400 random scores: argmax hits only the vertices, softargmax "
        "the relative interior, sparseargmax (the Euclidean projection, §13.7) the whole "
        "simplex including its edges and vertices."
    ),
)
def softmax_temperature_example(out_dir: Path) -> list[Path]:
    """Draw the temperature sweep and the simplex picture into ``out_dir``."""
    probs, lse = temperature_sweep()
    images = simplex_images()
    M = SCORES.size
    plt = pyplot()
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15.5, 4.8))
    for j in range(M):
        ax0.plot(GAMMAS, probs[:, j], lw=1.8, label=f"π_{j + 1} (u_{j + 1} = {SCORES[j]:g})")
    ax0.axhline(1 / M, color="0.5", ls=":", lw=1)
    ax0.set_xscale("log")
    ax0.set_xlabel("temperature γ")
    ax0.set_ylabel("softargmax(u/γ)")
    ax0.set_title("softargmax: argmax as γ → 0, uniform as γ → ∞", fontsize=10.5)
    ax0.grid(True, alpha=0.3)
    ax0.legend(fontsize=8)

    top = SCORES.max()
    ax1.plot(GAMMAS, lse, color="C3", lw=2, label="logsumexp_γ(u)")
    ax1.plot(GAMMAS, np.full_like(GAMMAS, top), "k--", lw=1, label="max(u)")
    ax1.plot(GAMMAS, top + GAMMAS * np.log(M), "k:", lw=1, label="max(u) + γ log M")
    ax1.fill_between(GAMMAS, top, top + GAMMAS * np.log(M), color="0.85")
    ax1.set_xscale("log")
    ax1.set_ylim(top - 0.5, top + 3.0)
    ax1.set_xlabel("temperature γ")
    ax1.set_title("logsumexp_γ between its bounds", fontsize=10.5)
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8, loc="upper left")

    tri = _to_plane(np.vstack([np.eye(3), np.eye(3)[:1]]))
    ax2.plot(tri[:, 0], tri[:, 1], color="0.3", lw=1)
    styles = {"softargmax": ("C0", 6, 0.5), "sparseargmax": ("C1", 8, 0.5),
              "argmax": ("C3", 90, 1.0)}
    for name, (color, size, alpha) in styles.items():
        pts = _to_plane(images[name])
        ax2.scatter(pts[:, 0], pts[:, 1], s=size, color=color, alpha=alpha, label=name)
    ax2.set_aspect("equal")
    ax2.axis("off")
    ax2.set_title("Fig. 4.6: images in the simplex Δ³", fontsize=10.5)
    ax2.legend(fontsize=8, loc="upper right")
    fig.suptitle("Temperature and probability maps (Book §4.4.2, §4.4.4)", fontsize=12)
    fig.tight_layout()
    path = Path(out_dir) / "softmax_temperature.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
