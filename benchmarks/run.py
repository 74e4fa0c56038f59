"""Time diffprog's gradients against plain NumPy and its peers.

Usage::

    python benchmarks/run.py [--repeat N] [--min-time S] [--libs LIB ...] [--workloads W ...]
                             [--markdown] [--json PATH]

For every workload (``chain``, ``mlp_small``, ``mlp_big``, ``lstm``, ``per_example_grads``; see
``benchmarks/workloads.py``) this times the plain-NumPy primal (the forward loss) and, for each
library, the gradient of the loss with respect to all parameters (for ``per_example_grads``: the
stacked per-example gradients): diffprog (eager ``diffprog.grad``), diffprog jit
(``diffprog.jit(diffprog.grad(f))``), HIPS autograd, PyTorch eager, JAX eager (no jit) and JAX
jit. Each (library, workload) pair runs in a fresh subprocess
(``benchmarks/_worker.py``) with one thread for every math library, and with
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` removed from its environment: on these machines they pin
OpenBLAS to a slow kernel (about 10x slower matrix products). They are removed here only, for the
child processes, never in tests or CI.

Times are medians over ``--repeat`` samples of at least ``--min-time`` seconds each, in
microseconds. Ratios are to the plain-NumPy primal of the same workload (Book §8.3.3: a gradient
should cost a small constant times the function). The last column divides diffprog's gradient time
by diffprog's own forward evaluation on plain arrays. Libraries that are not installed (or lack a
function a workload needs) are shown as such, never silently dropped; a gradient that disagrees
with the hand-written NumPy gradient is flagged with ``!``; how a library expresses ``lstm`` and
``per_example_grads`` (``scan``/``vmap`` or a Python loop) is listed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _worker import GRAD_RTOL, LIBS, RESULT_MARKER  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

#: environment variables that slow OpenBLAS down on these machines; removed for the children only
SLOW_BLAS_VARS: tuple[str, ...] = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ONE_THREAD: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
PEERS: tuple[str, ...] = tuple(lib for lib in LIBS if lib != "numpy")
TITLES: dict[str, str] = {
    "diffprog": "diffprog",
    "diffprog_jit": "diffprog jit",
    "autograd": "autograd",
    "torch": "torch eager",
    "jax": "jax eager",
    "jax_jit": "jax jit",
}


def child_env() -> tuple[dict[str, str], list[str]]:
    """Environment for the workers: one thread, slow-BLAS overrides removed, repo importable.

    Returns the environment and the names of the variables that were removed.
    """
    env = dict(os.environ)
    removed = [k for k in SLOW_BLAS_VARS if env.pop(k, None) is not None]
    env.update(ONE_THREAD)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env, removed


def run_worker(
    lib: str, workload: str, repeat: int, min_time: float, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run ``_worker.py LIB WORKLOAD`` in a subprocess and parse its result line."""
    cmd = [
        sys.executable,
        str(HERE / "_worker.py"),
        lib,
        workload,
        "--repeat",
        str(repeat),
        "--min-time",
        str(min_time),
    ]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"lib": lib, "workload": workload, "status": "error", "reason": "timed out"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {
        "lib": lib,
        "workload": workload,
        "status": "error",
        "reason": f"worker exited with {proc.returncode}: " + " | ".join(tail),
    }


# ----------------------------------------------------------------------------- formatting


def fmt_us(us: float) -> str:
    """Format a time in microseconds with about three significant digits."""
    if us >= 1000:
        return f"{us:,.0f}"
    if us >= 100:
        return f"{us:.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_ratio(r: float) -> str:
    """Format a ratio as ``12.3x``."""
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def build_table(
    results: dict[tuple[str, str], dict[str, Any]], workloads: list[str], libs: list[str]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Table header, rows and footnotes from the worker results."""
    header = ["workload", "numpy primal [µs]", "numpy hand grad"]
    header += [f"{TITLES[lib]} grad" for lib in libs]
    if "diffprog" in libs:
        header.append("diffprog grad/own primal")
    rows: list[list[str]] = []
    notes: list[str] = []
    for w in workloads:
        base = results.get(("numpy", w), {})
        primal = base.get("primal", {}).get("median_us") if base.get("status") == "ok" else None
        row = [w, fmt_us(primal) if primal else "error"]
        cells = [("numpy", base, "hand_grad")] + [(lib, results[(lib, w)], "grad") for lib in libs]
        for lib, res, key in cells:
            status = res.get("status")
            if status == "missing":
                row.append(res.get("cell", "not installed"))
                notes.append(f"{lib}/{w} skipped: {res.get('reason', '')}")
                continue
            if status != "ok":
                row.append("error")
                notes.append(f"{lib}/{w} failed: {res.get('reason', '')}")
                continue
            t = res[key]["median_us"]
            cell = fmt_us(t) + (f" ({fmt_ratio(t / primal)})" if primal else "")
            if not res.get("grad_ok", True):
                cell += " !"
                notes.append(
                    f"! {lib}/{w}: gradient differs from the hand-written NumPy gradient "
                    f"(relative error {res.get('grad_rel_err'):.2e} > {GRAD_RTOL:g})"
                )
            row.append(cell)
            if res.get("note"):
                notes.append(f"{lib}/{w}: {res['note']}")
        if "diffprog" in libs:
            res = results[("diffprog", w)]
            if res.get("status") == "ok":
                own = res["own_primal"]["median_us"]
                row.append(f"{fmt_ratio(res['grad']['median_us'] / own)} (primal {fmt_us(own)})")
            else:
                row.append("-")
        rows.append(row)
    return header, rows, list(dict.fromkeys(notes))


def render_text(header: list[str], rows: list[list[str]]) -> str:
    """Render an aligned plain-text table."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    """Render a GitHub-flavoured Markdown table."""
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def describe_blas(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """One line naming the BLAS kernel NumPy used in the workers."""
    for res in results.values():
        blas = res.get("blas")
        if res.get("lib") == "numpy" and blas:
            parts = [str(blas.get("internal_api")), str(blas.get("version"))]
            if blas.get("architecture"):
                parts.append(f"kernel {blas['architecture']}")
            if blas.get("num_threads") is not None:
                parts.append(f"{blas['num_threads']} thread(s)")
            if blas.get("config"):
                parts.append(str(blas["config"]))
            return ", ".join(parts) + f" (from {blas.get('source')})"
    return "unknown"


def describe_versions(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Versions of Python and every library that ran."""
    versions: dict[str, str] = {}
    for res in results.values():
        versions.update(res.get("versions", {}))
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status (1 if a worker failed)."""
    parser = argparse.ArgumentParser(
        description="Time diffprog's gradients against plain NumPy and its peers."
    )
    parser.add_argument("--repeat", type=int, default=11, help="samples per timing (median)")
    parser.add_argument(
        "--min-time", type=float, default=0.05, help="minimum seconds per sample (default 0.05)"
    )
    parser.add_argument(
        "--libs",
        nargs="+",
        choices=PEERS,
        default=list(PEERS),
        metavar="LIB",
        help=f"libraries to time (default: all of {', '.join(PEERS)})",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=WORKLOADS,
        default=list(WORKLOADS),
        metavar="W",
        help=f"workloads (default: {', '.join(WORKLOADS)})",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    args = parser.parse_args(argv)

    env, removed = child_env()
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for w in args.workloads:
        for lib in ["numpy", *args.libs]:
            print(f"  timing {lib:9s} {w} ...", file=sys.stderr, flush=True)
            results[(lib, w)] = run_worker(lib, w, args.repeat, args.min_time, env, args.timeout)

    header, rows, notes = build_table(results, args.workloads, args.libs)
    render = render_markdown if args.markdown else render_text
    print(render(header, rows))
    print()
    print(
        f"Median of {args.repeat} samples of >= {args.min_time * 1e3:.0f} ms each, in microseconds;"
        " (Nx) = grad time / plain-NumPy primal time. One thread per process."
    )
    print(f"NumPy BLAS: {describe_blas(results)}")
    print(
        "Removed from the workers' environment: "
        + (", ".join(removed) if removed else f"nothing ({', '.join(SLOW_BLAS_VARS)} were unset)")
    )
    print(f"Versions: {describe_versions(results)}; {platform.machine()} {platform.system()}")
    for note in notes:
        print(note)
    if args.json:
        payload = {
            "repeat": args.repeat,
            "min_time": args.min_time,
            "removed_env": removed,
            "results": [results[k] for k in results],
        }
        args.json.write_text(json.dumps(payload, indent=1))
    failed = any(r.get("status") == "error" for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
