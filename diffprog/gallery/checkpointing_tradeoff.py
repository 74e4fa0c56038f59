"""Checkpointing trade-off (Book §8.5): recomputations versus memory slots, and measured memory.

Left: the number of step calls ``C`` needed to reverse a chain of K = 64 steps with S memory
slots, for recursive halving (Alg 8.7, bisecting while slots remain and recomputing from the
segment start, Alg 8.6, once a single slot is left) and for the optimal dynamic program
``C*(64, S)`` of Eq. 8.3 (:func:`diffprog.derivatives.checkpointing.checkpoint_schedule`).
Store-all needs ``K − 1 = 63`` calls but 64 slots. Right: the peak memory, measured with
:func:`diffprog.profile` (tracemalloc), of the gradient of a 64-step elementwise ``tanh`` chain
on a state of 20 000 floats under each schedule, next to the engine's own tape.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

K = 64
SLOTS = np.arange(1, 9)
STATE_SIZE = 20_000


@cache
def halving_calls(k: int, s: int) -> int:
    """Calls of recursive halving with s slots: split at ⌊k/2⌋ while s > 1, else Alg 8.6."""
    if k == 1:
        return 0
    if s == 1:
        return k * (k - 1) // 2
    l = k // 2
    return halving_calls(k - l, s - 1) + halving_calls(l, s) + l


def _measure(n: int = STATE_SIZE) -> list[tuple[str, float, int | None]]:
    """Peak bytes (in units of one state) and calls of the chain gradient per schedule."""
    import diffprog
    import diffprog.numpy as dnp
    from diffprog.derivatives.checkpointing import vjp_checkpointed

    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.2, size=(K, n))
    chain = [lambda s, ak=ak: dnp.tanh(ak * s) for ak in a]
    s0, u = rng.normal(size=n), rng.normal(size=n)
    state_bytes = s0.nbytes
    rows = []
    runs = [("store-all", "store_all", None), ("halving", "halving", None)]
    runs += [(f"DP S={s}", "dp", s) for s in (8, 4, 2)]
    runs += [("recompute", "recompute", None)]
    for label, sch, s in runs:
        with diffprog.profile() as p:
            res = vjp_checkpointed(chain, s0, u, num_slots=s, schedule=sch)
        rows.append((label, p.peak_bytes / state_bytes, res.calls))

    def f(s):
        for g in chain:
            s = g(s)
        return s

    with diffprog.profile() as p:
        _, f_vjp = diffprog.vjp(f, s0)
        f_vjp(u)
    rows.insert(0, ("engine tape", p.peak_bytes / state_bytes, None))
    return rows


@example(
    "checkpointing_tradeoff",
    title="§8.5: the checkpointing trade-off (recomputations vs memory)",
    section="8.5",
    caption=(
        "Left: number of step calls C needed to reverse a chain of K = 64 steps with S memory "
        "slots, for recursive halving (bisection while slots remain, then recomputation from "
        "the segment start) and for the optimal dynamic program C*(64, S) of Eq. 8.3; "
        "store-all needs 63 calls but 64 slots. At S = log2 K = 6 halving needs 192 calls, "
        "the optimum 156. Right: peak memory (tracemalloc, in units of one 20 000-float state) "
        "of the gradient of a 64-step tanh chain under each schedule, with its call count C, "
        "next to the engine's tape of the whole chain (diffprog.vjp)."
    ),
)
def checkpointing_tradeoff(out_dir: Path) -> list[Path]:
    """Draw the trade-off figure into ``out_dir`` and return the PNG path."""
    from diffprog.derivatives.checkpointing import checkpoint_schedule

    table = checkpoint_schedule(K, int(SLOTS[-1])).table
    dp = [int(table[K, s]) for s in SLOTS]
    halv = [halving_calls(K, int(s)) for s in SLOTS]
    rows = _measure()

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.6))
    ax.semilogy(SLOTS, halv, "s-", color="C1", label="recursive halving (Alg 8.7)")
    ax.semilogy(SLOTS, dp, "o-", color="C0", label="optimal DP C*(64, S) (Eq. 8.3)")
    ax.axhline(K - 1, color="0.5", ls="--", lw=1, label="store-all: K−1 = 63 calls, 64 slots")
    for s, h, d in zip(SLOTS, halv, dp, strict=True):
        ax.annotate(str(d), (s, d), textcoords="offset points", xytext=(0, -13), ha="center",
                    fontsize=7, color="C0")
        if h != d:
            ax.annotate(str(h), (s, h), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7, color="C1")
    ax.set_xlabel("memory slots S")
    ax.set_ylabel("calls to the steps f_k (C)")
    ax.set_title(f"Recomputations for K = {K} steps", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)

    labels = [r[0] for r in rows]
    peaks = [r[1] for r in rows]
    colors = ["0.55", "C3", "C1", "C0", "C0", "C0", "C2"]
    bars = bx.bar(range(len(rows)), peaks, color=colors[: len(rows)])
    for bar, (_, peak, calls) in zip(bars, rows, strict=True):
        note = "taped" if calls is None else f"C={calls}"
        bx.annotate(f"{peak:.0f}\n{note}", (bar.get_x() + bar.get_width() / 2, peak),
                    textcoords="offset points", xytext=(0, 2), ha="center", fontsize=7)
    bx.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    bx.set_ylabel("peak memory (states of 20 000 floats)")
    bx.set_title("Measured peak memory of the chain gradient", fontsize=11)
    bx.set_ylim(0, max(peaks) * 1.18)
    bx.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Checkpointing trades recomputation for memory (Book §8.5)", fontsize=12)
    fig.tight_layout()
    path = Path(out_dir) / "checkpointing_tradeoff.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
