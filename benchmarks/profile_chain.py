"""Profile diffprog's gradient of a benchmark workload with cProfile (default: eager ``chain``).

Usage::

    python benchmarks/profile_chain.py [--workload chain] [--jit] [--calls N]
                                       [--sort tottime|cumulative|ncalls] [--top 25]

The ``chain`` workload (200 repetitions of ``x = sin(x) * 1.01 + 0.1`` on a 1-element array) does
almost no arithmetic, so its profile shows the engine's per-operation Python overhead: tracer
construction, rule lookup, tape bookkeeping (DESIGN.md, "Performance rules"). ``--workload``
profiles any other workload of ``benchmarks/workloads.py`` with the very program the benchmark
times (``_worker.py``), ``--jit`` the ``diffprog.jit`` version. For engine developers; not part of
the test suite. Like the runner, run it with ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` unset.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _worker import _setup_numpy_like  # noqa: E402
from workloads import CHAIN_LENGTH, WORKLOADS, make_problem  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run diffprog's gradient of one workload under cProfile and print the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="chain", choices=WORKLOADS)
    parser.add_argument("--jit", action="store_true", help="profile the diffprog.jit gradient")
    parser.add_argument("--calls", type=int, default=None,
                        help="gradient calls to profile (default: about one second's worth)")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative", "ncalls"])
    parser.add_argument("--top", type=int, default=25, help="number of functions to print")
    args = parser.parse_args(argv)

    g = _setup_numpy_like(make_problem(args.workload), "diffprog", jit=args.jit)["grad"]
    for _ in range(5):  # warm-up (jit tracing, compiled loop bodies), kept out of the profile
        g()
    calls = args.calls
    if calls is None:
        t0 = time.perf_counter()
        g()
        calls = max(5, int(1.0 / max(time.perf_counter() - t0, 1e-6)))
    batches = []
    for _ in range(3):  # best of three batches: the machine may be shared
        t0 = time.perf_counter()
        for _ in range(calls):
            g()
        batches.append((time.perf_counter() - t0) / calls * 1e6)
    plain_us = min(batches)

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(calls):
        g()
    profiler.disable()
    total = time.perf_counter() - t0  # wall time: pstats' total_tt can miss time spent in C
    mode = "jit(grad)" if args.jit else "grad"
    print(f"{calls} {mode} calls of the {args.workload} workload: {plain_us:.0f} us per call "
          f"without the profiler (best of 3 batches), {total / calls * 1e6:.0f} us under cProfile")
    if args.workload == "chain" and not args.jit:
        ops = calls * CHAIN_LENGTH * 3
        print(f"({CHAIN_LENGTH} x sin, mul, add: {total / ops * 1e6:.2f} us per forward primitive, "
              "profiler overhead included)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
