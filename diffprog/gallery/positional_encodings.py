"""Positional encodings (Book §4.8.7, Fig. 4.8).

Left: the sinusoidal encoding ``P ∈ ℝ^{L×D}`` with the figure's L = 100 positions, D = 50
dimensions and base N = 30 (0-based ``j``: ``p_{i,j} = sin(ω_j i)`` for even ``j``,
``cos(ω_{j−1} i)`` for odd ``j``, ``ω_j = N^{−j/D}``). Middle: the similarity
``⟨p_i, p_k⟩`` between positions, which depends only on ``i − k`` (the shift ``p_{i+δ} = R(δ) p_i``
is a rotation). Right: rotary encoding (RoPE) keeps the attention score of a query and a key a
function of their relative position: ``⟨rope(q, m), rope(k, n)⟩`` for all ``m, n`` is constant
along the diagonals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

L, D, BASE = 100, 50, 30.0


@example(
    "positional_encodings",
    title="Positional encodings: Fig. 4.8 (sinusoidal, N = 30) and RoPE",
    section="4.8.7",
    caption=(
        "Left: Fig. 4.8, the sinusoidal positional encoding P ∈ ℝ^{100×50} with base N = 30 "
        "(diffprog.nn.sinusoidal_positional_encoding): low dimensions oscillate fast, high ones "
        "slowly, like the bits of a binary counter. Middle: ⟨p_i, p_k⟩ depends only on i − k "
        "(constant along diagonals). Right: with rotary encoding (diffprog.nn.rope), the score "
        "⟨rope(q, m), rope(k, n)⟩ of one query and one key depends only on m − n."
    ),
)
def positional_encodings(out_dir: Path) -> list[Path]:
    """Draw Fig. 4.8 and the two relative-position pictures into ``out_dir``."""
    from diffprog.nn import rope, sinusoidal_positional_encoding

    P = sinusoidal_positional_encoding(L, D, base=BASE)
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=16), rng.normal(size=16)
    positions = np.arange(40)
    rq = np.asarray(rope(np.tile(q, (40, 1)), positions))
    rk = np.asarray(rope(np.tile(k, (40, 1)), positions))
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    im = axes[0].imshow(P, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    axes[0].set_xlabel("dimension j")
    axes[0].set_ylabel("position i")
    axes[0].set_title("Fig. 4.8: sinusoidal encoding (L=100, D=50, N=30)")
    fig.colorbar(im, ax=axes[0])
    im = axes[1].imshow(P @ P.T, cmap="viridis")
    axes[1].set_xlabel("position k")
    axes[1].set_ylabel("position i")
    axes[1].set_title("⟨p_i, p_k⟩")
    fig.colorbar(im, ax=axes[1])
    im = axes[2].imshow(rq @ rk.T, cmap="magma")
    axes[2].set_xlabel("key position n")
    axes[2].set_ylabel("query position m")
    axes[2].set_title("RoPE: ⟨rope(q, m), rope(k, n)⟩")
    fig.colorbar(im, ax=axes[2])
    fig.tight_layout()
    path = out_dir / "positional_encodings.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
