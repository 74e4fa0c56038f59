"""Figs. 3.1–3.4: mean functions and losses of four exponential families (Book §3.3, §3.4).

For each family the top panel is the mean function ``μ(θ) = ∇A(θ)``, computed by
differentiating the log-partition ``A`` with :func:`diffprog.proba.mean_function` (never written
by hand), and the bottom panel the negative log-likelihood ``A(θ) − ⟨θ, φ(y)⟩ − log h(y)``
(:func:`diffprog.proba.exp_family_nll`) for a few outcomes ``y``:

- Fig. 3.1, Bernoulli: ``μ = logistic(θ)``; loss ``softplus(θ) − θ y``, ``y ∈ {0, 1}``.
- Fig. 3.2, categorical with ``θ = (s, 1, 0)``: ``μ = softargmax(θ)`` as ``s`` varies; loss
  ``logsumexp(θ) − θ_y``, ``y ∈ {1, 2, 3}``.
- Fig. 3.3, Gaussian with unit variance: ``μ = θ``; loss ``½(y − θ)² + ½ log 2π``,
  ``y ∈ {−2, 0, 2}`` (the book's "(y − θ)²" up to scale and constant).
- Fig. 3.4, Poisson: ``μ = exp θ``; loss ``−yθ + exp θ + log y!``, ``y ∈ {1, 4, 10}``, minimal at
  ``θ = log y``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot


def _curves():
    import diffprog
    from diffprog.proba import (
        bernoulli_family,
        categorical_family,
        exp_family_nll,
        mean_function,
        normal_location_family,
        poisson_family,
    )

    grid = np.linspace(-4.0, 4.0, 161)
    panels = []
    for fig, family, outcomes in (("3.1 Bernoulli", bernoulli_family, (0, 1)),
                                  ("3.3 Gaussian (σ = 1)", normal_location_family(1.0),
                                   (-2.0, 0.0, 2.0)),
                                  ("3.4 Poisson", poisson_family, (1, 4, 10))):
        mu = diffprog.vmap(lambda t, f=family: mean_function(f)(t[None])[0])(grid)
        losses = {y: np.array([float(exp_family_nll(family, np.array([t]), y)[0])
                               for t in grid]) for y in outcomes}
        panels.append((fig, grid, {"μ": mu}, losses))
    cat = categorical_family(3)
    thetas = np.stack([grid, np.ones_like(grid), np.zeros_like(grid)], axis=1)
    mus = diffprog.vmap(mean_function(cat))(thetas)
    losses = {y + 1: np.array([float(exp_family_nll(cat, th, y)) for th in thetas])
              for y in range(3)}
    panels.insert(1, ("3.2 categorical, θ = (s, 1, 0)", grid,
                      {f"π_{j + 1}": mus[:, j] for j in range(3)}, losses))
    return panels


@example(
    "probabilistic_learning",
    title="Figs. 3.1–3.4: mean functions ∇A and losses of exponential families",
    section="3.3",
    caption=(
        "Top: mean functions μ(θ) = ∇A(θ) obtained by differentiating each log-partition A with "
        "diffprog (Bernoulli: logistic; categorical with θ = (s, 1, 0): softargmax; Gaussian: "
        "identity; Poisson: exp). Bottom: the negative log-likelihoods A(θ) − ⟨θ, φ(y)⟩ − log h(y) "
        "for a few outcomes y (Book §3.3.3–3.3.8, §3.4.4); each is convex in θ, and the Poisson "
        "loss is minimal at θ = log y."
    ),
)
def probabilistic_learning(out_dir: Path) -> list[Path]:
    """Draw the four families' mean functions and losses into ``out_dir``."""
    plt = pyplot()
    panels = _curves()
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex="col")
    for j, (name, grid, means, losses) in enumerate(panels):
        for label, values in means.items():
            axes[0, j].plot(grid, values, lw=2, label=label)
        axes[0, j].set_title(f"Fig. {name}")
        axes[0, j].legend(fontsize=8)
        for y, values in losses.items():
            axes[1, j].plot(grid, values, lw=2, label=f"y = {y}")
        axes[1, j].set_xlabel("θ" if j != 1 else "s")
        axes[1, j].legend(fontsize=8)
        axes[1, j].set_ylim(0, min(12.0, max(float(np.max(v)) for v in losses.values())))
    axes[0, 0].set_ylabel("mean function μ(θ) = ∇A(θ)")
    axes[1, 0].set_ylabel("loss −log p_θ(y)")
    fig.tight_layout()
    path = out_dir / "probabilistic_learning.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
