"""Cost of a Hessian-vector product relative to a gradient on ``mlp_big`` (book §9.1.2).

For each library, in its own single-threaded subprocess: the time of the gradient of the
mlp_big loss and of a forward-over-reverse HVP ``∂(∇L)(w)[v]`` in the direction ``v`` (one
random direction per parameter array), and their ratio. The book's claim: an HVP costs a small
constant times the function (Table 9.1); the issue's target: diffprog's HVP/gradient ratio is at
most the better peer's.

Usage: ``python benchmarks/hvp_cost.py [--libs diffprog diffprog_jit torch jax jax_jit]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LIBS = ("diffprog", "diffprog_jit", "torch", "jax", "jax_jit")
MARK = "@@HVP@@"


def _time(fn, min_time: float = 0.05, repeat: int = 9) -> float:
    for _ in range(2):
        fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_time:
            break
        number *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(np.median(samples)) * 1e6


def _direction(params):
    rng = np.random.default_rng(1)
    return [tuple(rng.normal(size=a.shape) for a in layer) for layer in params]


def _setup(lib: str):
    from workloads import make_problem

    pb = make_problem("mlp_big")
    params, X, y = pb.params, pb.X, pb.y
    v = _direction(params)
    if lib.startswith("diffprog"):
        import diffprog
        import diffprog.numpy as dnp
        from diffprog.scipy.special import logsumexp

        def loss(p):
            h = X
            for W, b in p[:-1]:
                h = dnp.tanh(h @ W + b)
            W, b = p[-1]
            logits = h @ W + b
            return -dnp.mean((logits - logsumexp(logits, axis=1, keepdims=True))[
                np.arange(X.shape[0]), y])

        g = diffprog.grad(loss)
        h = lambda p, v: diffprog.jvp(g, (p,), (v,))[1]
        if lib == "diffprog_jit":
            g, h = diffprog.jit(g), diffprog.jit(h)
        return (lambda: g(params)), (lambda: h(params, v))
    if lib == "torch":
        import torch
        from torch.func import grad, jvp

        torch.set_num_threads(1)
        tp = [tuple(torch.tensor(a) for a in layer) for layer in params]
        tv = [tuple(torch.tensor(a) for a in layer) for layer in v]
        tX, ty = torch.tensor(X), torch.tensor(y)

        def loss(p):
            h = tX
            for W, b in p[:-1]:
                h = torch.tanh(h @ W + b)
            W, b = p[-1]
            return torch.nn.functional.cross_entropy(h @ W + b, ty)

        g = grad(loss)
        return (lambda: g(tp)), (lambda: jvp(g, (tp,), (tv,))[1])
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    jp = [tuple(jnp.asarray(a) for a in layer) for layer in params]
    jv = [tuple(jnp.asarray(a) for a in layer) for layer in v]
    jX, jy = jnp.asarray(X), jnp.asarray(y)

    def loss(p):
        h = jX
        for W, b in p[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = p[-1]
        logits = h @ W + b
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(jX.shape[0]), jy])

    g = jax.grad(loss)
    h = lambda p, v: jax.jvp(g, (p,), (v,))[1]
    if lib == "jax_jit":
        g, h = jax.jit(g), jax.jit(h)
    block = lambda x: jax.tree_util.tree_map(lambda a: a.block_until_ready(), x)
    return (lambda: block(g(jp))), (lambda: block(h(jp, jv)))


def worker(lib: str) -> None:
    try:
        grad_fn, hvp_fn = _setup(lib)
    except ImportError as exc:
        print(MARK, json.dumps({"lib": lib, "status": f"missing ({exc})"}))
        return
    g, h = _time(grad_fn), _time(hvp_fn)
    print(MARK, json.dumps({"lib": lib, "status": "ok", "grad_us": g, "hvp_us": h}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS)
    ap.add_argument("--worker", choices=LIBS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    from run import child_env

    env, _ = child_env()
    rows = []
    for lib in args.libs:
        out = subprocess.run([sys.executable, __file__, "--worker", lib], env=env,
                             capture_output=True, text=True, timeout=900)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith(MARK)), None)
        if line is None:
            rows.append((lib, "error", out.stderr.strip().splitlines()[-1:] or [""]))
            continue
        rows.append((lib, json.loads(line[len(MARK):]), None))
    print("| library | grad [µs] | HVP fwd-over-rev [µs] | HVP / grad |")
    print("|---|---:|---:|---:|")
    for lib, r, err in rows:
        if isinstance(r, dict) and r.get("status") == "ok":
            print(f"| {lib} | {r['grad_us']:,.0f} | {r['hvp_us']:,.0f} | "
                  f"{r['hvp_us'] / r['grad_us']:.2f} |")
        else:
            print(f"| {lib} | {r if isinstance(r, str) else r.get('status')} {err or ''} | | |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    raise SystemExit(main())
