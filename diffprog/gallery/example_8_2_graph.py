"""Example 8.2 / Fig. 8.9 (Book §8.3): a program drawn as its computation graph.

The program ``x1 = sin(x0)``, ``x2 = exp(x0)``, ``x3 = x1**2``, ``x4 = x2*x3``, ``x5 = x1 + x4``,
``x6 = tanh(x5)``, ``x7 = x4*x6`` is traced by :func:`diffprog.make_graph` into a DAG whose nodes
are in topological order. The drawing uses matplotlib only: nodes are placed in layers by their
longest-path depth from the inputs, edges go parent → child. The Graphviz DOT text from
``Graph.to_dot()`` is written next to the PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffprog.gallery.registry import example, pyplot


def program(x0: Any) -> Any:
    """The function of Example 8.2 (Fig. 8.9), with the concrete f_k of the spec."""
    import diffprog.numpy as dnp

    x1 = dnp.sin(x0)
    x2 = dnp.exp(x0)
    x3 = dnp.square(x1)
    x4 = x2 * x3
    x5 = x1 + x4
    x6 = dnp.tanh(x5)
    x7 = x4 * x6
    return x7


def layered_layout(
    parents: Sequence[Sequence[int]],
) -> tuple[list[int], dict[int, tuple[float, float]]]:
    """Depth of each node (longest path from a source) and a position for it.

    ``parents[k]`` lists the parents of node ``k``; nodes must be in topological order. Nodes of
    equal depth share a column, ordered by index from top to bottom and centred vertically.
    """
    depth: list[int] = []
    for k, pa in enumerate(parents):
        if any(p >= k for p in pa):
            raise ValueError(f"layered_layout: node {k} has parents {list(pa)}, not topological")
        depth.append(1 + max((depth[p] for p in pa), default=-1))
    layers: dict[int, list[int]] = {}
    for k, d in enumerate(depth):
        layers.setdefault(d, []).append(k)
    pos: dict[int, tuple[float, float]] = {}
    for d, nodes in layers.items():
        for i, k in enumerate(nodes):
            pos[k] = (float(d), (len(nodes) - 1) / 2.0 - i)
    return depth, pos


def _arc_points(a: np.ndarray, b: np.ndarray, rad: float, n: int = 41) -> np.ndarray:
    """Points of matplotlib's ``arc3,rad=rad`` connection from ``a`` to ``b`` (equal aspect)."""
    d = b - a
    ctrl = (a + b) / 2.0 + rad * np.array([d[1], -d[0]])
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b


def choose_curvature(
    a: np.ndarray,
    b: np.ndarray,
    obstacles: Sequence[np.ndarray],
    half_axes: tuple[float, float],
    margin: float = 1.35,
) -> float:
    """Smallest ``arc3`` curvature whose edge from ``a`` to ``b`` avoids every obstacle node.

    Nodes are ellipses with the given half-axes, enlarged by ``margin``. Falls back to the most
    curved candidate if none is clear.
    """
    candidates = (0.0, -0.2, 0.2, -0.3, 0.3, -0.45, 0.45, -0.6, 0.6)
    rx, ry = half_axes[0] * margin, half_axes[1] * margin
    for rad in candidates:
        pts = _arc_points(a, b, rad)
        if not any(
            np.any(((pts[:, 0] - c[0]) / rx) ** 2 + ((pts[:, 1] - c[1]) / ry) ** 2 < 1.0)
            for c in obstacles
        ):
            return rad
    return candidates[-1]


@example(
    "example_8_2_graph",
    title="Example 8.2 / Fig. 8.9: computation graph of a program",
    section="8.3",
    caption=(
        "The program x1 = sin(x0), x2 = exp(x0), x3 = x1², x4 = x2·x3, x5 = x1 + x4, "
        "x6 = tanh(x5), x7 = x4·x6, traced by diffprog.make_graph into a DAG in topological order "
        "(node k: primitive name), arrows from parents to children, columns by longest-path "
        "depth. Forward mode visits it left to right; reverse mode right to left, summing the "
        "cotangents at fan-out nodes (r4 = r4→5 + r4→7, r1 = r1→3 + r1→5, r0 = r0→1 + r0→2). "
        "The Graphviz DOT source is written next to the PNG."
    ),
)
def example_8_2(out_dir: Path) -> list[Path]:
    """Trace the Example 8.2 program, draw its DAG, write PNG and DOT; return the PNG path."""
    import diffprog

    graph = diffprog.make_graph(program, np.asarray(0.5))
    nodes = list(graph.nodes)
    index = {node.index: i for i, node in enumerate(nodes)}
    parents = [[index[p] for p in node.parents] for node in nodes]
    depth, pos = layered_layout(parents)

    out = Path(out_dir)
    dot_path = out / "example_8_2_graph.dot"
    dot_path.write_text(graph.to_dot(), encoding="utf-8")

    plt = pyplot()
    from matplotlib.patches import Ellipse, FancyArrowPatch

    labels = [f"{node.index}: {node.name}" for node in nodes]
    width, height = max(0.78, 0.075 * max(len(t) for t in labels) + 0.15), 0.42
    gap = width + 0.3  # horizontal distance between columns
    pos = {k: (x * gap, y) for k, (x, y) in pos.items()}
    n_cols = max(depth) + 1
    n_rows = max(sum(1 for d in depth if d == c) for c in range(n_cols))
    fig, ax = plt.subplots(figsize=(1.5 * gap * n_cols + 1.0, 1.0 * n_rows + 1.4))
    patches: dict[int, Ellipse] = {}
    for i, node in enumerate(nodes):
        x, y = pos[i]
        is_input = node.name == "input"
        ell = Ellipse(
            (x, y),
            width,
            height,
            facecolor="#dbe9f6" if is_input else "#fdf1d6",
            edgecolor="#2b5d8a" if is_input else "#8a6a2b",
            lw=1.4,
            zorder=3,
        )
        ax.add_patch(ell)
        patches[i] = ell
        ax.text(x, y, labels[i], ha="center", va="center", fontsize=9, zorder=4)

    centres = {i: np.array(p) for i, p in pos.items()}
    for child, pa in enumerate(parents):
        for parent in pa:
            a, b = centres[parent], centres[child]
            others = [c for k, c in centres.items() if k not in (parent, child)]
            rad = choose_curvature(a, b, others, (width / 2, height / 2))
            ax.add_patch(
                FancyArrowPatch(
                    tuple(a),
                    tuple(b),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    lw=1.2,
                    color="0.25",
                    connectionstyle=f"arc3,rad={rad}",
                    patchA=patches[parent],
                    patchB=patches[child],
                    zorder=2,
                )
            )

    ys = [p[1] for p in pos.values()]
    ax.set_xlim(-0.6 * gap, (n_cols - 0.4) * gap)
    ax.set_ylim(min(ys) - 0.75, max(ys) + 0.75)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        "Example 8.2 / Fig. 8.9: computation graph traced by make_graph (Book §8.3)", fontsize=11
    )
    fig.tight_layout()
    png_path = out / "example_8_2_graph.png"
    fig.savefig(png_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [png_path]
