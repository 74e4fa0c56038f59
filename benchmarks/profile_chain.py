"""Profile diffprog's eager gradient of the ``chain`` workload with cProfile.

Usage::

    python benchmarks/profile_chain.py [--calls N] [--sort tottime|cumulative] [--top 25]

The ``chain`` workload (200 repetitions of ``x = sin(x) * 1.01 + 0.1`` on a 1-element array) does
almost no arithmetic, so its profile shows the engine's per-operation Python overhead: tracer
construction, rule lookup, tape bookkeeping (DESIGN.md, "Performance rules"). For engine
developers; not part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from workloads import CHAIN_LENGTH, make_problem  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run ``diffprog.grad`` on the chain workload under cProfile and print the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="gradient calls to profile")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative", "ncalls"])
    parser.add_argument("--top", type=int, default=25, help="number of functions to print")
    args = parser.parse_args(argv)

    import diffprog
    import diffprog.numpy as dnp

    def chain_loss(x: Any) -> Any:
        for _ in range(CHAIN_LENGTH):
            x = dnp.sin(x) * 1.01 + 0.1
        return dnp.sum(x)

    g = diffprog.grad(chain_loss)
    x = make_problem("chain").params
    for _ in range(5):  # warm-up, so one-time setup does not pollute the profile
        g(x)

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.calls):
        g(x)
    profiler.disable()

    ops = args.calls * CHAIN_LENGTH * 3
    total = pstats.Stats(profiler).total_tt
    print(
        f"{args.calls} grad calls of the chain workload ({CHAIN_LENGTH} x sin, mul, add): "
        f"{total:.3f} s under cProfile, {total / ops * 1e6:.2f} us per forward primitive "
        "(profiler overhead included)"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
