"""Time one library on one workload, in a process of its own.

Usage::

    python benchmarks/_worker.py LIB WORKLOAD [--repeat N] [--min-time SECONDS]

``LIB`` is one of ``numpy`` (the plain primal and a hand-written gradient), ``diffprog``
(eager), ``diffprog_jit``, ``autograd``, ``torch``, ``jax`` (eager, no jit) or ``jax_jit``. The
worker prints one line ``@@RESULT@@ {json}`` on stdout. A library that cannot be imported, or
lacks a function the workload needs, gives ``"status": "missing"`` with the text of the table
cell in ``"cell"`` (exit code 0); any other failure gives ``"status": "error"`` with the
traceback. A result may carry a ``"note"`` on how the library expresses the workload (e.g. a
Python loop where it has no ``scan``/``vmap``); the runner prints it under the table.

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
from workloads import (
    CHAIN_LENGTH,
    LSTM_HIDDEN,
    WORKLOADS,
    flatten,
    grad_np,
    make_problem,
    primal_np,
)

LIBS: tuple[str, ...] = ("numpy", "diffprog", "diffprog_jit", "autograd", "torch", "jax",
                         "jax_jit")
RESULT_MARKER = "@@RESULT@@"
#: relative tolerance of the gradient check against the hand-written NumPy gradient
GRAD_RTOL = 1e-8


class Missing(Exception):
    """Raised when the library under test cannot be imported or lacks what a workload needs.

    ``cell`` is what the runner's table shows in place of a time.
    """

    def __init__(self, reason: str, cell: str = "not installed") -> None:
        super().__init__(reason)
        self.cell = cell


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

    With ``jit`` (diffprog only) the gradient is ``diffprog.jit(diffprog.grad(loss))`` (and
    ``diffprog.jit(diffprog.vmap(diffprog.grad(loss1), ...))`` for ``per_example_grads``).
    ``lstm`` uses the library's ``scan`` where it has one (diffprog) and a Python loop over time
    otherwise (autograd); ``per_example_grads`` uses ``vmap`` where there is one (diffprog) and a
    Python loop over the examples otherwise (autograd). Either way the returned dict may hold a
    ``"note"`` string saying so.
    """
    try:
        top = importlib.import_module(lib)
    except ImportError as exc:
        raise Missing(f"{lib} not installed: {exc}") from exc
    # an installed package whose submodules fail to import is an error, not a skip
    grad = (lambda f: top.jit(top.grad(f))) if jit else top.grad
    xnp = importlib.import_module(f"{lib}.numpy")
    special = importlib.import_module(f"{lib}.scipy.special")
    logsumexp, expit = special.logsumexp, special.expit

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
        return {"grad": lambda: g(x), "own_primal": lambda: chain_loss(x)}
    if problem.name in ("mlp_small", "mlp_big"):
        g = grad(mlp_loss)
        p, X, y = problem.params, problem.X, problem.y
        return {"grad": lambda: g(p, X, y), "own_primal": lambda: mlp_loss(p, X, y)}

    if problem.name == "lstm":
        scan = getattr(top, "scan", None)
        if lib == "diffprog" and scan is None:
            raise Missing("diffprog.scan does not exist yet", cell="missing (no scan)")
        H = LSTM_HIDDEN

        def cell(Wx: Any, Wh: Any, b: Any, carry: Any, x: Any) -> Any:
            h, c = carry
            z = x @ Wx + h @ Wh + b
            s = expit(z[:, : 3 * H])
            c = s[:, H : 2 * H] * c + s[:, :H] * xnp.tanh(z[:, 3 * H :])
            h = s[:, 2 * H :] * xnp.tanh(c)
            return h, c

        def layer(p: Any, xs: Any, keep: bool) -> Any:
            Wx, Wh, b = p
            zeros = np.zeros((xs.shape[1], H))
            if scan is None:  # autograd: a Python loop over time
                carry, hs = (zeros, zeros), []
                for x in xs:
                    carry = cell(Wx, Wh, b, carry, x)
                    hs.append(carry[0])
                return carry[0], (xnp.stack(hs) if keep else None)

            def step(carry: Any, x: Any) -> Any:
                carry = cell(Wx, Wh, b, carry, x)
                return carry, (carry[0] if keep else None)

            (h, _), hs = scan(step, (zeros, zeros), xs)
            return h, hs

        def lstm_loss(params: Any, xs: np.ndarray, target: np.ndarray) -> Any:
            for p in params[:-1]:
                _, xs = layer(p, xs, keep=True)
            h, _ = layer(params[-1], xs, keep=False)
            return xnp.mean((h - target) ** 2)

        g = grad(lstm_loss)
        p, xs, target = problem.params, problem.X, problem.y
        fns: dict[str, Any] = {
            "grad": lambda: g(p, xs, target),
            "own_primal": lambda: lstm_loss(p, xs, target),
        }
        if scan is None:
            fns["note"] = "Python loop over time steps (no scan)"
        else:
            fns["note"] = f"{lib}.scan over time steps"
        return fns

    # per_example_grads
    def loss1(params: Any, x: np.ndarray, y: Any) -> Any:
        h = x
        for W, b in params[:-1]:
            h = xnp.tanh(h @ W + b)
        W, b = params[-1]
        logits = h @ W + b
        return logsumexp(logits) - logits[y]

    p, X, y = problem.params, problem.X, problem.y
    vmap = getattr(top, "vmap", None)
    if vmap is None:
        if lib == "diffprog":
            raise Missing("diffprog.vmap does not exist yet", cell="missing (no vmap)")
        g1 = top.grad(loss1)

        def per_example() -> Any:  # autograd: a Python loop over the examples
            rows = [g1(p, X[n], y[n]) for n in range(X.shape[0])]
            return [tuple(np.stack([r[k][j] for r in rows]) for j in range(len(p[k])))
                    for k in range(len(p))]

        fns = {"grad": per_example, "note": "Python loop over the 128 examples (no vmap)"}
    else:
        gv = vmap(top.grad(loss1), in_axes=(None, 0, 0))
        if jit:
            gv = top.jit(gv)
        fns = {"grad": lambda: gv(p, X, y), "note": f"{lib}.vmap of {lib}.grad"}
    fns["own_primal"] = lambda: mlp_loss(p, X, y)
    return fns


def _setup_torch(problem: Any) -> dict[str, Callable[[], Any]]:
    """PyTorch eager: ``torch.autograd.grad``; ``lstm`` is a Python loop over time of the cell in
    plain tensor ops (not ``nn.LSTM``); ``per_example_grads`` is ``torch.func.vmap`` of
    ``torch.func.grad``."""
    try:
        import torch
    except ImportError as exc:
        raise Missing(f"torch not installed: {exc}") from exc
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    def as_t(a: np.ndarray, requires_grad: bool = False) -> Any:
        return torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)

    if problem.name == "chain":
        x = as_t(problem.params, requires_grad=True)

        def grad_chain() -> Any:
            z = x
            for _ in range(CHAIN_LENGTH):
                z = torch.sin(z) * 1.01 + 0.1
            return torch.autograd.grad(torch.sum(z), [x])[0]

        return {"grad": grad_chain}

    if problem.name == "lstm":
        params = [tuple(as_t(a, requires_grad=True) for a in p) for p in problem.params]
        leaves = [t for p in params for t in p]
        xs, target = as_t(problem.X), as_t(problem.y)
        H = LSTM_HIDDEN

        def grad_lstm() -> Any:
            inp = xs
            for k, (Wx, Wh, b) in enumerate(params):
                h = torch.zeros(inp.shape[1], H, dtype=torch.float64)
                c = torch.zeros_like(h)
                hs = []
                for x in inp:
                    z = x @ Wx + h @ Wh + b
                    s = torch.sigmoid(z[:, : 3 * H])
                    c = s[:, H : 2 * H] * c + s[:, :H] * torch.tanh(z[:, 3 * H :])
                    h = s[:, 2 * H :] * torch.tanh(c)
                    if k < len(params) - 1:
                        hs.append(h)
                if hs:
                    inp = torch.stack(hs)
            loss = torch.mean((h - target) ** 2)
            g = torch.autograd.grad(loss, leaves)
            return [g[3 * i : 3 * i + 3] for i in range(len(params))]

        return {"grad": grad_lstm, "note": "Python loop over time of the cell in tensor ops "
                "(not nn.LSTM)"}

    if problem.name == "per_example_grads":
        from torch.func import grad as fgrad
        from torch.func import vmap

        params = tuple((as_t(W), as_t(b)) for W, b in problem.params)
        X = as_t(problem.X)
        y = torch.tensor(problem.y, dtype=torch.int64)

        def loss1(params: Any, x: Any, y: Any) -> Any:
            h = x
            for W, b in params[:-1]:
                h = torch.tanh(h @ W + b)
            W, b = params[-1]
            logits = h @ W + b
            # logits[y] fails under grad(vmap) (.item() on a batched index): gather instead
            return torch.logsumexp(logits, dim=0) - logits.gather(0, y[None])[0]

        gv = vmap(fgrad(loss1), in_dims=(None, 0, 0))
        return {"grad": lambda: gv(params, X, y), "note": "torch.func.vmap of torch.func.grad"}

    params = [(as_t(W, requires_grad=True), as_t(b, requires_grad=True))
              for W, b in problem.params]
    leaves = [t for pair in params for t in pair]
    X = as_t(problem.X)
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

    H = LSTM_HIDDEN

    def layer(p: Any, xs: Any, keep: bool) -> Any:
        Wx, Wh, b = p

        def step(carry: Any, x: Any) -> Any:
            h, c = carry
            z = x @ Wx + h @ Wh + b
            s = jax.nn.sigmoid(z[:, : 3 * H])
            c = s[:, H : 2 * H] * c + s[:, :H] * jnp.tanh(z[:, 3 * H :])
            h = s[:, 2 * H :] * jnp.tanh(c)
            return (h, c), (h if keep else None)

        zeros = jnp.zeros((xs.shape[1], H))
        (h, _), hs = jax.lax.scan(step, (zeros, zeros), xs)
        return h, hs

    def lstm_loss(params: Any, xs: Any, target: Any) -> Any:
        for p in params[:-1]:
            _, xs = layer(p, xs, keep=True)
        h, _ = layer(params[-1], xs, keep=False)
        return jnp.mean((h - target) ** 2)

    def loss1(params: Any, x: Any, y: Any) -> Any:
        h = x
        for W, b in params[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = params[-1]
        logits = h @ W + b
        return logsumexp(logits) - logits[y]

    def finish(g: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(g) if use_jit else g

    if problem.name == "chain":
        g = finish(jax.grad(chain_loss))
        x = jnp.asarray(problem.params)
        return {"grad": lambda: jax.block_until_ready(g(x))}
    p = [tuple(jnp.asarray(a) for a in layer_params) for layer_params in problem.params]
    X, y = jnp.asarray(problem.X), jnp.asarray(problem.y)
    if problem.name == "lstm":
        g = finish(jax.grad(lstm_loss))
        note = "jax.lax.scan over time steps"
    elif problem.name == "per_example_grads":
        g = finish(jax.vmap(jax.grad(loss1), in_axes=(None, 0, 0)))
        note = "jax.vmap of jax.grad"
    else:
        g = finish(jax.grad(mlp_loss))
        note = None
    fns: dict[str, Any] = {"grad": lambda: jax.block_until_ready(g(p, X, y))}
    if note:
        fns["note"] = note
    return fns


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
    note = fns.pop("note", None)
    if note:
        result["note"] = note

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
            "cell": exc.cell,
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
