"""Time one library on one workload, in a process of its own.

Usage::

    python benchmarks/_worker.py LIB WORKLOAD [--repeat N] [--min-time SECONDS]

``LIB`` is one of ``numpy`` (the plain primal and a hand-written gradient), ``diffprog``,
``autograd``, ``torch``, ``jax`` (eager, no jit) or ``jax_jit``. The worker prints one line
``@@RESULT@@ {json}`` on stdout. A library that cannot be imported gives ``"status": "missing"``
(exit code 0); any other failure gives ``"status": "error"`` with the traceback.

The runner (``benchmarks/run.py``) starts this script with one thread for every math library and
with ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` removed from the environment; running it by hand
does neither.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from workloads import CHAIN_LENGTH, WORKLOADS, flatten, grad_np, make_problem, primal_np

LIBS: tuple[str, ...] = ("numpy", "diffprog", "diffprog_jit", "autograd", "torch", "jax",
                         "jax_jit")
RESULT_MARKER = "@@RESULT@@"
#: relative tolerance of the gradient check against the hand-written NumPy gradient
GRAD_RTOL = 1e-8


class Missing(Exception):
    """Raised when the library under test cannot be imported."""


# ----------------------------------------------------------------------------- timing


def measure(fn: Callable[[], Any], repeat: int, min_time: float) -> dict[str, float]:
    """Time ``fn`` with ``time.perf_counter``: warm up, then the median of ``repeat`` samples.

    Each sample runs ``fn`` ``number`` times in a row, with ``number`` grown until one sample
    takes at least ``min_time`` seconds; the reported times are per call, in microseconds.
    """
    for _ in range(3):  # warm-up: caches, lazy compilation (JAX), allocator
        fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        grow = min_time * 1.2 / max(elapsed, 1e-9)
        number = max(number * 2, int(number * grow))
    samples = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    samples_us = [s * 1e6 for s in samples]
    q = statistics.quantiles(samples_us, n=4) if len(samples_us) > 1 else samples_us * 3
    return {
        "median_us": statistics.median(samples_us),
        "min_us": min(samples_us),
        "q1_us": q[0],
        "q3_us": q[-1],
        "number": number,
        "repeat": repeat,
    }


def rel_error(got: Any, ref: Any) -> float:
    """Max absolute difference of two gradient trees, relative to the largest reference entry."""
    g, r = flatten(got), flatten(ref)
    if g.shape != r.shape:
        return float("inf")
    return float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-300))


# ----------------------------------------------------------------------------- environment


def blas_info() -> dict[str, Any]:
    """Which BLAS NumPy uses: threadpoolctl if installed, else a ``np.show_config`` summary."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        mine = [p for p in pools if "numpy" in p.get("filepath", "")] or pools
        if mine:
            p = mine[0]
            return {
                "source": "threadpoolctl",
                "internal_api": p.get("internal_api"),
                "version": p.get("version"),
                "architecture": p.get("architecture"),
                "num_threads": p.get("num_threads"),
                "filepath": os.path.relpath(p.get("filepath", ""), numpy_dir),
            }
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {
            "source": "np.show_config",
            "internal_api": cfg.get("name"),
            "version": cfg.get("version"),
            "architecture": None,
            "config": cfg.get("openblas configuration"),
        }
    except Exception as exc:  # noqa: BLE001 - old NumPy without mode="dicts"
        return {"source": "unknown", "error": repr(exc)}


# ----------------------------------------------------------------------------- libraries


def _setup_numpy(problem: Any) -> dict[str, Callable[[], Any]]:
    return {
        "primal": lambda: primal_np(problem),
        "hand_grad": lambda: grad_np(problem),
    }


def _setup_numpy_like(problem: Any, lib: str, jit: bool = False) -> dict[str, Callable[[], Any]]:
    """diffprog and HIPS autograd share one program: NumPy-style code on a NumPy-like module.

    With ``jit`` (diffprog only) the gradient is ``diffprog.jit(diffprog.grad(loss))``.
    """
    try:
        top = importlib.import_module(lib)
    except ImportError as exc:
        raise Missing(f"{lib} not installed: {exc}") from exc
    # an installed package whose submodules fail to import is an error, not a skip
    grad = (lambda f: top.jit(top.grad(f))) if jit else top.grad
    xnp = importlib.import_module(f"{lib}.numpy")
    logsumexp = importlib.import_module(f"{lib}.scipy.special").logsumexp

    def chain_loss(x: Any) -> Any:
        for _ in range(CHAIN_LENGTH):
            x = xnp.sin(x) * 1.01 + 0.1
        return xnp.sum(x)

    def mlp_loss(params: Any, X: np.ndarray, y: np.ndarray) -> Any:
        h = X
        for W, b in params[:-1]:
            h = xnp.tanh(h @ W + b)
        W, b = params[-1]
        logits = h @ W + b
        logp = logits - logsumexp(logits, axis=1, keepdims=True)
        return -xnp.mean(logp[np.arange(X.shape[0]), y])

    if problem.name == "chain":
        g = grad(chain_loss)
        x = problem.params
        fns = {"grad": lambda: g(x), "own_primal": lambda: chain_loss(x)}
    else:
        g = grad(mlp_loss)
        p, X, y = problem.params, problem.X, problem.y
        fns = {"grad": lambda: g(p, X, y), "own_primal": lambda: mlp_loss(p, X, y)}
    return fns


def _setup_torch(problem: Any) -> dict[str, Callable[[], Any]]:
    try:
        import torch
    except ImportError as exc:
        raise Missing(f"torch not installed: {exc}") from exc
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    if problem.name == "chain":
        x = torch.tensor(problem.params, dtype=torch.float64, requires_grad=True)

        def grad_chain() -> Any:
            z = x
            for _ in range(CHAIN_LENGTH):
                z = torch.sin(z) * 1.01 + 0.1
            return torch.autograd.grad(torch.sum(z), [x])[0]

        return {"grad": grad_chain}

    params = [
        (
            torch.tensor(W, dtype=torch.float64, requires_grad=True),
            torch.tensor(b, dtype=torch.float64, requires_grad=True),
        )
        for W, b in problem.params
    ]
    leaves = [t for pair in params for t in pair]
    X = torch.tensor(problem.X, dtype=torch.float64)
    y = torch.tensor(problem.y, dtype=torch.int64)
    rows = torch.arange(X.shape[0])

    def grad_mlp() -> Any:
        h = X
        for W, b in params[:-1]:
            h = torch.tanh(h @ W + b)
        W, b = params[-1]
        logits = h @ W + b
        logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        loss = -torch.mean(logp[rows, y])
        g = torch.autograd.grad(loss, leaves)
        return [(g[2 * i], g[2 * i + 1]) for i in range(len(params))]

    return {"grad": grad_mlp}


def _setup_jax(problem: Any, use_jit: bool) -> dict[str, Callable[[], Any]]:
    try:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp
    except ImportError as exc:
        raise Missing(f"jax not installed: {exc}") from exc
    jax.config.update("jax_enable_x64", True)

    def chain_loss(x: Any) -> Any:
        for _ in range(CHAIN_LENGTH):
            x = jnp.sin(x) * 1.01 + 0.1
        return jnp.sum(x)

    def mlp_loss(params: Any, X: Any, y: Any) -> Any:
        h = X
        for W, b in params[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = params[-1]
        logits = h @ W + b
        logp = logits - logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(logp[jnp.arange(X.shape[0]), y])

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        g = jax.grad(f)
        return jax.jit(g) if use_jit else g

    if problem.name == "chain":
        g = wrap(chain_loss)
        x = jnp.asarray(problem.params)
        return {"grad": lambda: jax.block_until_ready(g(x))}
    g = wrap(mlp_loss)
    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in problem.params]
    X, y = jnp.asarray(problem.X), jnp.asarray(problem.y)
    return {"grad": lambda: jax.block_until_ready(g(p, X, y))}


def _versions(lib: str) -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    dists = {"jax": ("jax", "jaxlib"), "jax_jit": ("jax", "jaxlib"),
             "diffprog_jit": ("diffprog",)}.get(lib, (lib,))
    for dist in dists:
        if dist == "numpy":
            continue
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            module = sys.modules.get(dist)
            out[dist] = getattr(module, "__version__", "unknown")
    return out


def run(lib: str, workload: str, repeat: int, min_time: float) -> dict[str, Any]:
    """Set up ``lib`` on ``workload``, check its gradient, time it and return a result record."""
    problem = make_problem(workload)
    result: dict[str, Any] = {"lib": lib, "workload": workload, "status": "ok"}
    result["env"] = {
        k: os.environ.get(k)
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "XLA_FLAGS")
    }
    if lib == "numpy":
        fns = _setup_numpy(problem)
    elif lib in ("diffprog", "autograd"):
        fns = _setup_numpy_like(problem, lib)
    elif lib == "diffprog_jit":
        fns = _setup_numpy_like(problem, "diffprog", jit=True)
    elif lib == "torch":
        fns = _setup_torch(problem)
    elif lib in ("jax", "jax_jit"):
        fns = _setup_jax(problem, use_jit=lib == "jax_jit")
    else:
        raise ValueError(f"_worker: unknown library {lib!r}; expected one of {LIBS}")
    result["versions"] = _versions(lib)
    result["blas"] = blas_info()

    grad_fn = fns.get("grad", fns.get("hand_grad"))
    got = grad_fn()  # torch and JAX arrays convert through np.asarray in flatten()
    result["grad_rel_err"] = rel_error(got, grad_np(problem))
    result["grad_ok"] = bool(result["grad_rel_err"] <= GRAD_RTOL)

    for key, fn in fns.items():
        result[key] = measure(fn, repeat, min_time)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print one ``@@RESULT@@`` JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", choices=LIBS)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--min-time", type=float, default=0.05)
    args = parser.parse_args(argv)
    try:
        result = run(args.lib, args.workload, args.repeat, args.min_time)
    except Missing as exc:
        result = {
            "lib": args.lib,
            "workload": args.workload,
            "status": "missing",
            "reason": str(exc),
        }
    except Exception as exc:  # noqa: BLE001 - reported to the runner, which shows it
        result = {
            "lib": args.lib,
            "workload": args.workload,
            "status": "error",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    print(RESULT_MARKER, json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
