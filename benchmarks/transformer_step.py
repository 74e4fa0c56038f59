"""One training step of the character Transformer: diffprog (eager and jit) against PyTorch eager.

The model is the one of ``examples/char_transformer.py`` (``diffprog.nn.DecoderLM``: token
embedding + learned positions, pre-norm blocks with causal multi-head attention and a tanh-GELU
MLP without biases, final LayerNorm, untied disembedding; float32). A step is forward + backward +
Adam on a batch of random windows (``diffprog_jit`` compiles the whole step, Adam included).
PyTorch runs the same function from the same initial weights (copied from the diffprog model)
and the script checks that both libraries agree on the first loss and on the parameters after
the first step before timing anything.

Each library runs in its own process with one thread (``OMP_NUM_THREADS=1`` and friends;
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` are unset, see DESIGN.md). With ``--rounds R`` the
libraries run in turn R times (fresh processes each round, so slow drifts of a shared machine hit
all of them alike); a library's time is the median over its rounds of the median over
``--repeat`` steps, and its ratio to PyTorch the median of the per-round ratios.

    python benchmarks/transformer_step.py [--repeat 30] [--rounds 1] [--batch 32] [--context 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

CFG = {"vocab": 69, "d_model": 128, "num_heads": 4, "d_ff": 512, "num_layers": 3}


def _model(context: int):
    from diffprog.nn import DecoderLM, gelu_tanh

    return DecoderLM.init(0, CFG["vocab"], CFG["d_model"], CFG["num_heads"], CFG["d_ff"],
                          CFG["num_layers"], context, norm="pre", activation=gelu_tanh,
                          dtype=np.float32)


def _batches(n: int, batch: int, context: int):
    rng = np.random.default_rng(1)
    data = rng.integers(0, CFG["vocab"], 50_000)
    for _ in range(n):
        s = rng.integers(0, len(data) - context, size=batch)
        idx = s[:, None] + np.arange(context)
        yield data[idx], data[idx + 1]


def _weights(m) -> dict[str, np.ndarray]:
    w = {"embed": m.embed.table, "pos": m.pos.table, "ln_f.g": m.ln_f.gamma,
         "ln_f.b": m.ln_f.beta, "head": m.head.W}
    for i, layer in enumerate(m.block.layers):
        for name, arr in (("q", layer.attn.q_proj.W), ("k", layer.attn.k_proj.W),
                          ("v", layer.attn.v_proj.W), ("o", layer.attn.o_proj.W),
                          ("ln1.g", layer.ln1.gamma), ("ln1.b", layer.ln1.beta),
                          ("ln2.g", layer.ln2.gamma), ("ln2.b", layer.ln2.beta),
                          ("fc1", layer.mlp.fc1.W), ("fc2", layer.mlp.fc2.W)):
            w[f"{i}.{name}"] = np.asarray(arr)
    return w


def run_diffprog(jit: bool, repeat: int, batch: int, context: int) -> dict:
    import diffprog
    from diffprog.nn import token_cross_entropy
    from diffprog.optim import adam, apply_updates

    model = _model(context)
    opt = adam(1e-3)
    state = opt.init(model)

    def loss(m, b):
        return token_cross_entropy(m(b[0]), b[1])

    def step(m, s, b):
        value, g = diffprog.value_and_grad(loss)(m, b)
        updates, s = opt.update(g, s, m)
        return apply_updates(m, updates), s, value

    if jit:                      # the whole step, Adam included, is one compiled program
        step = diffprog.jit(step)
    times, first = [], None
    for i, b in enumerate(_batches(repeat + 3, batch, context)):
        t0 = time.perf_counter()
        model, state, value = step(model, state, b)
        t1 = time.perf_counter()
        if i == 0:
            first = {"loss": float(value), "after": {k: v.tolist() for k, v in
                                                      list(_weights(model).items())[:3]}}
        if i >= 3:
            times.append(t1 - t0)
    return {"median_s": float(np.median(times)), "first": first}


def run_torch(repeat: int, batch: int, context: int) -> dict:
    import torch

    torch.set_num_threads(1)
    w = {k: torch.tensor(np.array(v), requires_grad=True)
         for k, v in _weights(_model(context)).items()}
    H, D = CFG["num_heads"], CFG["d_model"]
    dk = D // H
    causal = torch.tril(torch.ones(context, context, dtype=torch.bool))

    def forward(x):
        h = w["embed"][x] + w["pos"][: x.shape[-1]]
        B, L = x.shape
        for i in range(CFG["num_layers"]):
            z = torch.nn.functional.layer_norm(h, (D,), w[f"{i}.ln1.g"], w[f"{i}.ln1.b"], 1e-5)
            q = (z @ w[f"{i}.q"]).view(B, L, H, dk).transpose(1, 2)
            k = (z @ w[f"{i}.k"]).view(B, L, H, dk).transpose(1, 2)
            v = (z @ w[f"{i}.v"]).view(B, L, H, dk).transpose(1, 2)
            s = (q @ k.transpose(-1, -2)) / dk ** 0.5
            a = torch.softmax(s.masked_fill(~causal[:L, :L], float("-inf")), dim=-1)
            h = h + (a @ v).transpose(1, 2).reshape(B, L, D) @ w[f"{i}.o"]
            z = torch.nn.functional.layer_norm(h, (D,), w[f"{i}.ln2.g"], w[f"{i}.ln2.b"], 1e-5)
            h = h + torch.nn.functional.gelu(z @ w[f"{i}.fc1"], approximate="tanh") @ w[f"{i}.fc2"]
        h = torch.nn.functional.layer_norm(h, (D,), w["ln_f.g"], w["ln_f.b"], 1e-5)
        return h @ w["head"]

    params = list(w.values())
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-8)
    times, first = [], None
    for i, (x, y) in enumerate(_batches(repeat + 3, batch, context)):
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = forward(xt)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, CFG["vocab"]), yt.reshape(-1))
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if i == 0:
            first = {"loss": float(loss), "after": {k: v.detach().numpy().tolist() for k, v in
                                                    list(w.items())[:3]}}
        if i >= 3:
            times.append(t1 - t0)
    return {"median_s": float(np.median(times)), "first": first}


def _worker(lib: str, repeat: int, batch: int, context: int) -> None:
    if lib == "torch":
        out = run_torch(repeat, batch, context)
    else:
        out = run_diffprog(lib == "diffprog_jit", repeat, batch, context)
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--d-model", type=int, default=CFG["d_model"])
    p.add_argument("--heads", type=int, default=CFG["num_heads"])
    p.add_argument("--d-ff", type=int, default=CFG["d_ff"])
    p.add_argument("--layers", type=int, default=CFG["num_layers"])
    p.add_argument("--libs", nargs="+", default=["torch", "diffprog_jit", "diffprog"])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    CFG.update(d_model=a.d_model, num_heads=a.heads, d_ff=a.d_ff, num_layers=a.layers)
    sizes = ["--d-model", str(a.d_model), "--heads", str(a.heads), "--d-ff", str(a.d_ff),
             "--layers", str(a.layers)]
    if a.worker:
        _worker(a.worker, a.repeat, a.batch, a.context)
        return
    from run import child_env  # one thread, the slow-BLAS overrides removed

    env, _ = child_env()
    results, rounds = {}, {lib: [] for lib in a.libs}
    for _ in range(a.rounds):
        for lib in a.libs:
            proc = subprocess.run([sys.executable, __file__, "--worker", lib, "--repeat",
                                   str(a.repeat), "--batch", str(a.batch), "--context",
                                   str(a.context), *sizes], capture_output=True, text=True,
                                  env=env)
            if proc.returncode:
                print(f"{lib}: failed\n{proc.stderr[-2000:]}")
                continue
            results[lib] = json.loads(proc.stdout.strip().splitlines()[-1])
            rounds[lib].append(results[lib]["median_s"])
    if "torch" in results:
        ref = results["torch"]["first"]
        for lib, r in results.items():
            diff = max(float(np.max(np.abs(np.asarray(r["first"]["after"][k]) -
                                           np.asarray(ref["after"][k]))))
                       for k in ref["after"])
            print(f"{lib:13s} first loss {r['first']['loss']:.6f}; max |param − torch's| after "
                  f"one step {diff:.1e}")
    n = min(len(v) for v in rounds.values()) if rounds else 0
    base = rounds.get("torch", [])[:n]
    print(f"\nbatch {a.batch}, context {a.context}, {CFG}; one thread; median of {a.repeat} "
          f"steps (forward + backward + Adam), {n} round(s)\n")
    print("| library | ms / step | ratio to PyTorch eager |\n|---|---|---|")
    for lib in results:
        times = rounds[lib][:n]
        ratio = (f"{np.median(np.divide(times, base)):.2f}" if len(base) == len(times) and n
                 else "—")
        print(f"| {lib} | {1000 * np.median(times):.1f} | {ratio} |")


if __name__ == "__main__":
    main()
