"""Fig. 7.1 (Book §7.2): truncation versus round-off error of numerical differentiation.

The derivative of ``softplus(x) = log(1 + exp(x))`` at ``x = 1`` is ``logistic(1)``. Forward and
central differences err by truncation for large steps δ and by round-off (about ε/δ) for small
ones; the complex step has no subtraction, hence almost no round-off. The errors come from
:func:`diffprog.derivatives.fd_error_study`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

#: logistic(1) = 1 / (1 + exp(-1)), the derivative of softplus at 1
TRUE_DERIVATIVE = 0.7310585786300049
#: errors of exactly 0 are drawn at this floor, since a log axis cannot show 0
ZERO_FLOOR = 1e-17
DELTAS = 10.0 ** -np.arange(1, 17)


def softplus(x: np.ndarray | complex | float) -> np.ndarray:
    """``log(1 + exp(x))``, written so that it also accepts complex input (complex step)."""
    return np.log(1.0 + np.exp(x))


@example(
    "fig_7_1_finite_differences",
    title="Fig. 7.1: numerical differentiation of softplus at x = 1",
    section="7.2",
    caption=(
        "Absolute error of the derivative of softplus(x) = log(1 + exp(x)) at x = 1 "
        "(true value logistic(1) = 0.7310585786300049) against the step size δ, for forward "
        "differences, central differences and the complex step. Forward and central differences "
        "suffer truncation error for large δ and round-off error for small δ; the complex step "
        "has almost no round-off error. Errors of exactly 0 cannot be drawn on a log axis and "
        "are shown at 1e-17 (dotted line)."
    ),
)
def fig_7_1(out_dir: Path) -> list[Path]:
    """Draw Fig. 7.1 into ``out_dir`` and return the PNG path."""
    from diffprog.derivatives import fd_error_study

    errors = fd_error_study(
        softplus, TRUE_DERIVATIVE, 1.0, DELTAS, schemes=("forward", "central", "complex")
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 4.8))
    styles = {
        "forward": ("forward difference", "o-", "C0"),
        "central": ("central difference", "s-", "C1"),
        "complex": ("complex step", "^-", "C2"),
    }
    for scheme, (label, fmt, color) in styles.items():
        err = np.abs(np.asarray(errors[scheme], dtype=float))
        ax.loglog(DELTAS, np.maximum(err, ZERO_FLOOR), fmt, color=color, label=label, ms=5)
        zero = err == 0
        if zero.any():  # mark the clipped points with hollow markers
            ax.loglog(
                DELTAS[zero],
                np.full(zero.sum(), ZERO_FLOOR),
                fmt[0],
                color=color,
                mfc="white",
                ms=7,
            )
    eps = np.finfo(float).eps
    ax.loglog(
        DELTAS,
        0.5 * 0.19661193324148185 * DELTAS,
        ":",
        color="0.55",
        lw=1,
        label="truncation δ|f''(1)|/2",
    )
    ax.loglog(
        DELTAS, eps * softplus(1.0) / DELTAS, "--", color="0.55", lw=1, label="round-off ε|f(1)|/δ"
    )
    ax.axhline(ZERO_FLOOR, color="0.75", ls=":", lw=0.8)
    ax.text(
        DELTAS[0], ZERO_FLOOR * 1.8, "error = 0", ha="right", va="bottom", fontsize=8, color="0.4"
    )
    ax.set_ylim(ZERO_FLOOR / 3, 3.0)
    ax.set_xlabel("step size δ")
    ax.set_ylabel("absolute error of f'(1)")
    ax.set_title("Fig. 7.1: softplus'(1) by finite differences (Book §7.2)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(out_dir) / "fig_7_1_finite_differences.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
