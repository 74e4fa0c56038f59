"""Example 8.2 / Fig. 8.9 (Book §8.3): a program drawn as its computation graph.

The program ``x1 = sin(x0)``, ``x2 = exp(x0)``, ``x3 = x1**2``, ``x4 = x2*x3``, ``x5 = x1 + x4``,
``x6 = tanh(x5)``, ``x7 = x4*x6`` is traced by :func:`diffprog.make_graph` into a DAG whose nodes
are in topological order. The drawing uses matplotlib only: nodes are placed in layers by their
longest-path depth from the inputs, edges go parent → child. The Graphviz DOT text from
``Graph.to_dot()`` is written next to the PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffprog.gallery.dag_drawing import draw_dag, layered_layout  # noqa: F401 (re-exported)
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
    out = Path(out_dir)
    dot_path = out / "example_8_2_graph.dot"
    dot_path.write_text(graph.to_dot(), encoding="utf-8")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 4.2))
    draw_dag(ax, graph, "Example 8.2 / Fig. 8.9: computation graph traced by make_graph "
             "(Book §8.3)")
    fig.tight_layout()
    png_path = out / "example_8_2_graph.png"
    fig.savefig(png_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [png_path]
