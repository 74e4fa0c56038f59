"""Gradient descent–ascent on two-player zero-sum games: cycling, divergence and the
Stackelberg (unrolled follower) fix (optimization notes, min-max games, §A.3).

Convention of :func:`~diffprog.optim.gda`: the leader θ maximizes and the follower η minimizes
``L(θ, η)``; ``θ⁺ = θ + h∇_θL``, ``η⁺ = η − h∇_ηL``.

* Bilinear game ``L = θη`` (saddle point at 0): simultaneous GDA spirals outward (each step
  multiplies the distance to 0 by ``√(1 + h²)``); alternating GDA stays on a bounded cycle.
* Quadratic game ``L = ½θ² + θη + ¼η²``: L is convex in θ, so (0, 0) is no saddle point, but it
  is the Stackelberg equilibrium: the follower's best response ``η*(θ) = −2θ`` gives the leader
  ``max_θ −½θ²``. Simultaneous GDA spirals outward (the Jacobian has eigenvalues
  ``0.25 ± 0.66i`` with positive real part), while :func:`~diffprog.optim.gda_unrolled`, which
  lets the follower take 10 inner descent steps before each leader step, converges to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

H = 0.1
START = (1.0, 0.5)


def bilinear(theta, eta):
    """``L(θ, η) = θη``."""
    return theta * eta


def quadratic(theta, eta):
    """``L(θ, η) = ½θ² + θη + ¼η²``: Stackelberg equilibrium (0, 0), not a saddle point."""
    return 0.5 * theta ** 2 + theta * eta + 0.25 * eta ** 2


def runs() -> dict[str, dict[str, np.ndarray]]:
    """``{game: {label: iterates (T, 2)}}`` from the library GDA solvers."""
    from diffprog.optim.solvers import gda, gda_unrolled

    def path(res):
        return np.array(res.history["params"], dtype=float)

    th0, et0 = START
    return {
        "bilinear": {
            "simultaneous GDA": path(gda(bilinear, th0, et0, H, maxiter=120)),
            "alternating GDA": path(gda(bilinear, th0, et0, H, mode="alternating",
                                        maxiter=120)),
        },
        "quadratic": {
            "simultaneous GDA": path(gda(quadratic, th0, et0, H, maxiter=60)),
            "Stackelberg GDA (10 follower steps, h' = 1)":
                path(gda_unrolled(quadratic, th0, et0, H, inner_steps=10, inner_stepsize=1.0,
                                  maxiter=60)),
        },
    }


@example(
    "minimax_game",
    title="Min-max games: simultaneous GDA cycles or diverges, Stackelberg GDA converges",
    section="A.3",
    caption=(
        "Iterates (θ, η) of gradient descent–ascent with step h = 0.1 from (1, 0.5), the leader "
        "θ maximizing and the follower η minimizing L (optimization notes A.3, min-max games). "
        "Left: bilinear game L = θη; simultaneous GDA spirals away from the saddle point (0, 0), "
        "alternating GDA stays on a bounded cycle. Right: L = ½θ² + θη + ¼η², convex in θ, whose "
        "Stackelberg equilibrium (0, 0) is not a saddle point; simultaneous GDA spirals "
        "outward, while Stackelberg GDA (the follower takes 10 gradient steps towards its best "
        "response η*(θ) = −2θ, dotted, before each leader step) converges to it along that line."
    ),
)
def minimax_game(out_dir: Path) -> list[Path]:
    """Draw the GDA trajectories into ``out_dir`` and return the PNG path."""
    data = runs()
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6))
    games = [("bilinear", "bilinear game L = θη", bilinear),
             ("quadratic", "L = ½θ² + θη + ¼η²", quadratic)]
    colors = ["C3", "C0"]
    for ax, (key, title, fn) in zip(axes, games, strict=True):
        paths = data[key]
        pts = np.concatenate(list(paths.values()))
        lim = 1.15 * float(np.max(np.abs(pts)))
        g = np.linspace(-lim, lim, 200)
        T, E = np.meshgrid(g, g)
        ax.contour(T, E, fn(T, E), levels=15, colors="0.8", linewidths=0.7)
        for (label, p), color in zip(paths.items(), colors, strict=True):
            ax.plot(p[:, 0], p[:, 1], "-", color=color, lw=1.2, label=label)
            ax.plot(p[:, 0], p[:, 1], ".", color=color, ms=3)
            ax.plot(p[-1, 0], p[-1, 1], "o", color=color, ms=6)
        if key == "quadratic":
            ax.plot(g, -2 * g, ":", color="0.35", lw=1.2, label="follower best response η = −2θ")
        ax.plot(*START, "ks", ms=7, label="start (1, 0.5)")
        ax.plot(0, 0, "k*", ms=12, label="equilibrium (0, 0)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel("θ (leader, maximizes)")
        ax.set_ylabel("η (follower, minimizes)")
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    fig.suptitle("Gradient descent–ascent on min-max games (step h = 0.1)", fontsize=12)
    fig.tight_layout()
    path = Path(out_dir) / "minimax_game.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
