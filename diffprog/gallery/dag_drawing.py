"""Drawing a :class:`diffprog.Graph` as a DAG with matplotlib only (book §4.1.2, §8.3).

Nodes are placed in columns by their longest-path depth from the inputs; edges go parent →
child, bent just enough to miss the other nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["layered_layout", "choose_curvature", "draw_dag"]


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


def draw_dag(ax: Any, graph: Any, title: str, highlight: Sequence[str] = ()) -> tuple[int, int]:
    """Draw ``graph`` (a :class:`diffprog.Graph`) on ``ax``; nodes named in ``highlight`` are
    drawn in another colour. Returns the number of columns and rows used."""
    from matplotlib.patches import Ellipse, FancyArrowPatch

    nodes = list(graph.nodes)
    index = {node.index: i for i, node in enumerate(nodes)}
    parents = [[index[p] for p in node.parents] for node in nodes]
    depth, pos = layered_layout(parents)
    labels = [f"{node.index}: {node.name}" for node in nodes]
    width, height = max(0.78, 0.075 * max(len(t) for t in labels) + 0.15), 0.42
    gap = width + 0.3  # horizontal distance between columns
    pos = {k: (x * gap, y) for k, (x, y) in pos.items()}
    n_cols = max(depth) + 1
    n_rows = max(sum(1 for d in depth if d == c) for c in range(n_cols))
    patches: dict[int, Ellipse] = {}
    for i, node in enumerate(nodes):
        x, y = pos[i]
        if node.name == "input":
            face, edge = "#dbe9f6", "#2b5d8a"
        elif node.name in highlight:
            face, edge = "#e3f2dc", "#3d7a2b"
        else:
            face, edge = "#fdf1d6", "#8a6a2b"
        ell = Ellipse((x, y), width, height, facecolor=face, edgecolor=edge, lw=1.4, zorder=3)
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
                    tuple(a), tuple(b), arrowstyle="-|>", mutation_scale=14, lw=1.2,
                    color="0.25", connectionstyle=f"arc3,rad={rad}", patchA=patches[parent],
                    patchB=patches[child], zorder=2,
                )
            )
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(-0.6 * gap, (n_cols - 0.4) * gap)
    ax.set_ylim(min(ys) - 0.75, max(ys) + 0.75)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return n_cols, n_rows
