"""The program ``jit`` compiles for the gradient of a recurrence written with ``scan`` (book §5.9
scan, §8.3 computation graphs, §8.1.2 reverse mode).

``loss(w, xs) = h_T²`` with ``h_t = tanh(w·h_{t-1} + x_t)``, ``h_0 = 0``. ``jit(grad(loss))``
traces the whole gradient computation once into a program of a handful of nodes: a forward
``scan`` that also emits the residuals the backward pass needs, the cotangent of ``h_T²``, and a
backward ``scan`` that runs the transposed body from the last step to the first. The two loop
bodies are sub-programs of their ``scan`` nodes, drawn below the main graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffprog.gallery.dag_drawing import draw_dag
from diffprog.gallery.registry import example, pyplot


def loss(w: Any, xs: Any) -> Any:
    """``h_T²`` for the recurrence ``h_t = tanh(w h_{t-1} + x_t)``, ``h_0 = 0``."""
    import diffprog
    import diffprog.numpy as dnp

    h, _ = diffprog.scan(lambda h, x: (dnp.tanh(w * h + x), None), 0.0, xs)
    return h**2


@example(
    "jit_scan_graph",
    title="The program jit compiles for the gradient of a scan",
    section="8.3",
    caption=(
        "jit(grad(loss)) for loss(w, xs) = h_T², h_t = tanh(w h_{t-1} + x_t) written with "
        "diffprog.scan (Book §5.9 scan, §8.3 graphs, §8.1.2 reverse mode). Top: the simplified "
        "program that jit runs as straight-line code: the forward scan (which also returns the "
        "residuals of each step), the cotangent of h_T², and the backward scan. Bottom: the two "
        "loop bodies, sub-programs of the scan nodes (green). The DOT file next to the PNG draws "
        "them as clusters."
    ),
)
def jit_scan_graph(out_dir: Path) -> list[Path]:
    """Trace jit(grad(loss)), draw the program and its two scan bodies; write PNG and DOT."""
    import diffprog

    xs = np.linspace(-1.0, 1.0, 8)
    jitted = diffprog.jit(diffprog.grad(loss))
    g_expected = diffprog.grad(loss)(0.5, xs)
    assert np.allclose(jitted(0.5, xs), g_expected)
    graph = jitted.graph(0.5, xs)
    bodies = [(n, key, sub) for n in graph.nodes for key, sub in n.subgraphs.items()]

    out = Path(out_dir)
    (out / "jit_scan_graph.dot").write_text(graph.to_dot("jit_grad_scan"), encoding="utf-8")
    plt = pyplot()
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(2, max(1, len(bodies)), height_ratios=[1.0, 1.3])
    ax = fig.add_subplot(grid[0, :])
    draw_dag(ax, graph, "jit(grad(loss)): the compiled program", highlight=("scan",))
    for j, (node, _key, sub) in enumerate(bodies):
        draw_dag(fig.add_subplot(grid[1, j]), sub,
                 f"body of node {node.index} ({node.name}): {'forward' if j == 0 else 'backward'}")
    fig.suptitle("A jitted gradient through scan (Book §5.9, §8.3)", fontsize=12)
    fig.tight_layout()
    png_path = out / "jit_scan_graph.png"
    fig.savefig(png_path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [png_path]
