"""Convergence of the Girard–Hutchinson trace estimator (Book §9.8.1).

The Hessian of ``f(w) = ½ wᵀQw + Σ_i cos(w_i)`` (P = 100, Q = BBᵀ/P + I with B Gaussian) at a random
point, obtained with :func:`diffprog.hessian`; its trace is estimated with
:func:`diffprog.derivatives.estimators.hutchinson_trace` from S Rademacher or Gaussian probes.
The root-mean-square relative error over independent repetitions decreases as ``1/√S``, with the
derived constants ``sqrt(2 Σ_{i≠j} H_ij²)`` (Rademacher) and ``sqrt(2 ‖H‖_F²)`` (Gaussian).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

P = 100
REPEATS = 60
SAMPLES = 2 ** np.arange(0, 13)  # 1 … 4096


def random_hessian(seed: int = 0) -> np.ndarray:
    """The Hessian of ``½ wᵀQw + Σ cos(w_i)`` at a random point (``Q = BBᵀ/P + I``, P=100)."""
    import diffprog
    import diffprog.numpy as dnp

    r = np.random.default_rng(seed)
    B = r.normal(size=(P, P))
    Q = B @ B.T / P + np.eye(P)
    w = r.normal(size=P)
    return np.asarray(diffprog.hessian(lambda v: 0.5 * v @ (Q @ v) + dnp.sum(dnp.cos(v)))(w))


def relative_errors(H: np.ndarray, dist: str, seed: int) -> np.ndarray:
    """RMS relative error of ``hutchinson_trace`` for every S in :data:`SAMPLES`."""
    from diffprog.derivatives.estimators import hutchinson_trace

    gen = np.random.default_rng(seed)
    tr = np.trace(H)
    out = []
    for S in SAMPLES:
        errs = [hutchinson_trace(H, P, gen, int(S), dist=dist) - tr for _ in range(REPEATS)]
        out.append(np.sqrt(np.mean(np.square(errs))) / abs(tr))
    return np.array(out)


@example(
    "hutchinson_convergence",
    title="Girard–Hutchinson trace estimator: error vs number of probes",
    section="9.8.1",
    caption=(
        "Root-mean-square relative error (over 60 repetitions) of the Hutchinson estimate "
        "(1/S) Σ ⟨ω_i, H ω_i⟩ of the trace of a random 100×100 Hessian, against the number S of "
        "probes (matvecs), for Rademacher and Gaussian probes. Both decay as 1/√S (dotted "
        "reference); dashed lines are the derived standard deviations sqrt(2Σ_{i≠j}H_ij²/S) "
        "(Rademacher) and sqrt(2‖H‖_F²/S) (Gaussian), divided by |tr H|. Rademacher probes "
        "ignore the diagonal of H and have the smaller variance."
    ),
)
def hutchinson_convergence(out_dir: Path) -> list[Path]:
    """Draw the Hutchinson convergence plot into ``out_dir`` and return the PNG path."""
    H = random_hessian(0)
    tr = abs(np.trace(H))
    off = np.sum(H**2) - np.sum(np.diag(H) ** 2)
    theory = {
        "rademacher": np.sqrt(2 * off / SAMPLES) / tr,
        "normal": np.sqrt(2 * np.sum(H**2) / SAMPLES) / tr,
    }
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.8))
    styles = {"rademacher": ("Rademacher", "o-", "C0"), "normal": ("Gaussian", "s-", "C1")}
    for k, (dist, (label, fmt, color)) in enumerate(styles.items()):
        err = relative_errors(H, dist, seed=1 + k)
        ax.loglog(SAMPLES, err, fmt, color=color, label=f"{label} probes (measured)", ms=5)
        ax.loglog(SAMPLES, theory[dist], "--", color=color, lw=1, alpha=0.8,
                  label=f"{label}: derived std / |tr H|")
    ref = theory["normal"][0] * 2.0 / np.sqrt(SAMPLES)
    ax.loglog(SAMPLES, ref, ":", color="0.4", lw=1.2, label="∝ 1/√S reference")
    ax.set_xlabel("number of probes S (matvecs)")
    ax.set_ylabel("relative error |estimate − tr H| / |tr H| (RMS)")
    ax.set_title("Hutchinson trace estimator on a 100×100 Hessian (Book §9.8.1)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(out_dir) / "hutchinson_convergence.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
