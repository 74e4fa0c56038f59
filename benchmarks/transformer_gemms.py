"""The matrix products of one training step of the character Transformer, replayed alone:
NumPy's BLAS against PyTorch's, on the very operands the step multiplies.

``benchmarks/transformer_step.py`` times a whole step (forward + backward + Adam). This script
traces the same step with ``diffprog.jit``, collects every ``matmul`` of the compiled program
with its operands as they were at trace time (shapes, dtypes and strides, so transposed views
stay transposed), and times the sequence of products as the compiled program runs them
(diffprog's ``matmul``: NumPy's ``matmul``, a stack of matrices times a matrix folded into one
BLAS call, small stacked products with a transposed right operand given a row-major copy of
it) and with ``torch.matmul`` on the same memory (``torch.from_numpy``), each in its own
process with one thread. The difference is what the two BLAS libraries contribute to the
difference of the steps; the rest of a step is elementwise work, each library with its own
kernels.

    python benchmarks/transformer_gemms.py [--repeat 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _operands() -> tuple[list[tuple[np.ndarray, np.ndarray]], object]:
    """The operand pairs of every ``matmul`` in the jitted training step, in program order."""
    import transformer_step as ts

    import diffprog
    from diffprog.nn import token_cross_entropy
    from diffprog.optim import adam, apply_updates

    model = ts._model(64)
    opt = adam(1e-3)
    state = opt.init(model)

    def step(m, s, b):
        value, g = diffprog.value_and_grad(lambda m, b: token_cross_entropy(m(b[0]), b[1]))(m, b)
        updates, s = opt.update(g, s, m)
        return apply_updates(m, updates), s, value

    jitted = diffprog.jit(step)
    batch = next(ts._batches(1, 32, 64))
    program = jitted.graph(model, state, batch).program
    pairs, impl = [], None
    for eq in program.eqns:
        if eq.prim.name == "matmul":
            a, b = (getattr(x, "value", x) for x in eq.inputs)
            pairs.append((np.asarray(a), np.asarray(b)))
            impl = eq.prim.impl
    return pairs, impl


def _time(lib: str, repeat: int) -> dict:
    pairs, matmul = _operands()
    if lib == "torch":
        import torch

        torch.set_num_threads(1)
        tpairs = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs]
        mm, operands = torch.matmul, tpairs
    else:
        mm, operands = matmul, pairs

    def run():
        for a, b in operands:       # each result is dropped at once, as in the program
            mm(a, b)

    run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    flops = sum(2 * np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) or 1)
                * a.shape[-2] * a.shape[-1] * (b.shape[-1] if b.ndim > 1 else 1)
                for a, b in pairs if a.ndim >= 2)
    return {"median_s": float(np.median(times)), "count": len(pairs), "gflop": flops / 1e9}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(_time(a.worker, a.repeat)))
        return
    from run import child_env  # one thread, the slow-BLAS overrides removed

    env, _ = child_env()
    runs: dict = {"numpy": [], "torch": []}
    info = {}
    for _ in range(a.rounds):
        for lib in runs:
            out = subprocess.run([sys.executable, __file__, "--worker", lib, "--repeat",
                                  str(a.repeat)], capture_output=True, text=True, env=env)
            if out.returncode:
                raise SystemExit(f"{lib} failed:\n{out.stderr[-2000:]}")
            info = json.loads(out.stdout.strip().splitlines()[-1])
            runs[lib].append(info["median_s"])
    print(f"{info['count']} products, {info['gflop']:.2f} GFLOP per step; one thread; median "
          f"of {a.repeat} replays, {a.rounds} rounds\n")
    print("| products run by | ms per step | GFLOP/s | ratio to PyTorch |\n|---|---|---|---|")
    for lib, times in runs.items():
        ms = 1000 * np.median(times)
        ratio = np.median(np.divide(times, runs["torch"]))
        print(f"| {'diffprog (NumPy, OpenBLAS)' if lib == 'numpy' else 'PyTorch'} | {ms:.1f} | "
              f"{info['gflop'] / ms * 1000:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
