"""Activation functions and their derivatives (Book §4.4, Fig. 4.5 style; GELU §4.8.4).

Each activation of :mod:`diffprog.nn.activations` is drawn on [−4, 4] together with its
derivative computed by ``diffprog.vmap(diffprog.grad(f))`` (no hand-written derivative). The
kinks follow the documented conventions: ``relu'(0) = 0`` and ``step' = 0`` everywhere. A third
panel shows the book's Fig. 4.5: ``max(u, 0)`` against its smooth version
``logsumexp((u, 0)) = softplus(u)``, with temperatures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

U = np.linspace(-4.0, 4.0, 801)


def activation_curves(u: np.ndarray = U) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (f(u), f'(u))}`` for the activations, derivatives by ``vmap(grad(f))``."""
    import diffprog
    from diffprog.nn import activations as A

    fns = {
        "relu": A.relu,
        "softplus": A.softplus,
        "gelu": A.gelu,
        "gelu (tanh approx.)": lambda x: A.gelu(x, approximate=True),
        "silu": A.silu,
        "sigmoid": A.sigmoid,
        "tanh": A.tanh,
        "log-sigmoid": A.log_sigmoid,
        "step": A.step,
    }
    return {name: (np.asarray(f(u)), np.asarray(diffprog.vmap(diffprog.grad(f))(u)))
            for name, f in fns.items()}


def soft_max_curves(u: np.ndarray = U,
                    gammas: tuple[float, ...] = (1.0, 0.5, 0.25)) -> dict[float, np.ndarray]:
    """``{γ: logsumexp_γ((u, 0))}``: smoothed ``max(u, 0)`` (= γ·softplus(u/γ))."""
    from diffprog.nn import activations as A

    pairs = np.stack([u, np.zeros_like(u)], axis=-1)
    return {g: np.asarray(A.logsumexp(pairs, temperature=g)) for g in gammas}


@example(
    "activations",
    title="Activation functions and their derivatives by automatic differentiation",
    section="4.4",
    caption=(
        "Left: the activations of diffprog.nn (relu, softplus, GELU exact and tanh-approximated, "
        "SiLU, sigmoid, tanh, log-sigmoid, binary step; Book §4.4.1, §4.4.3, §4.8.4). Middle: "
        "their derivatives computed with diffprog.vmap(diffprog.grad(f)); the non-smooth "
        "conventions show at 0: relu'(0) = 0 and the step function has derivative 0 "
        "everywhere, including at its jump. Right: Fig. 4.5, max(u, 0) and its smoothed "
        "version logsumexp_γ((u, 0)) = γ softplus(u/γ), which lies between max(u, 0) and "
        "max(u, 0) + γ log 2."
    ),
)
def activations_example(out_dir: Path) -> list[Path]:
    """Draw the activations, their AD derivatives and Fig. 4.5 into ``out_dir``."""
    curves = activation_curves()
    soft = soft_max_curves()
    plt = pyplot()
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15.5, 4.8))
    cmap = plt.get_cmap("tab10")
    for k, (name, (f, df)) in enumerate(curves.items()):
        ls = "--" if "approx" in name else "-"
        ax0.plot(U, f, ls, color=cmap(k), lw=1.6, label=name)
        ax1.plot(U, df, ls, color=cmap(k), lw=1.6, label=name)
    ax0.set_ylim(-2.0, 4.2)
    ax1.set_ylim(-0.3, 1.3)
    for ax, title in ((ax0, "activation f(u)"), (ax1, "derivative f'(u) = grad(f)(u)")):
        ax.axhline(0, color="0.6", lw=0.7)
        ax.axvline(0, color="0.6", lw=0.7)
        ax.set_xlabel("u")
        ax.set_title(title, fontsize=11)
        ax.grid(True, alpha=0.3)
    ax0.legend(fontsize=7.5, loc="upper left")
    ax2.plot(U, np.maximum(U, 0.0), color="k", lw=2.0, label="max(u, 0)")
    for k, (g, v) in enumerate(soft.items()):
        ax2.plot(U, v, color=cmap(k), lw=1.5, label=f"logsumexp_γ((u,0)), γ={g:g}")
    ax2.set_xlabel("u")
    ax2.set_title("Fig. 4.5: max and its soft version", fontsize=11)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle("Activations and their derivatives by AD (Book §4.4)", fontsize=12)
    fig.tight_layout()
    path = Path(out_dir) / "activations.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
