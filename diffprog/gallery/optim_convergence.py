"""Convergence of first- and second-order solvers on an ill-conditioned quadratic
(Book §16.1, §17.1, §17.4).

``f(w) = ½ wᵀAw − bᵀw`` in dimension P = 50 with the eigenvalues of A spread log-uniformly over
[μ, L] = [1, 100] (condition number κ = 100). The suboptimality ``f(w_t) − f*`` (f* in closed
form) is recorded from the ``history["value"]`` of the library solvers
:func:`~diffprog.optim.gradient_descent` (γ = 1/L), :func:`~diffprog.optim.nesterov_agd`
(convex momentum (t−2)/(t+1) and strongly convex momentum (√κ−1)/(√κ+1)),
:func:`~diffprog.optim.newton` and :func:`~diffprog.optim.lbfgs`, and drawn against the
theoretical bounds: ``L‖w0−w*‖²/(2t)`` (GD, convex), ``2L‖w0−w*‖²/(t+1)²`` (Nesterov, convex),
``(1 − 1/κ)^t (f(w0) − f*)`` (GD, strongly convex) and
``(1 − 1/√κ)^t (f(w0) − f* + μ‖w0−w*‖²/2)`` (accelerated, strongly convex).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffprog.gallery.registry import example, pyplot

P = 50
MU, L = 1.0, 100.0
KAPPA = L / MU
MAXITER = 400
#: relative round-off level of f: a curve is cut after its first value below ROUNDOFF·|f*|
ROUNDOFF = 1e-13
#: a suboptimality of exactly 0 is drawn at this floor on the log axis
FLOOR = 1e-16


def make_problem(seed: int = 0):
    """``(A, b, w0, w*, f*)`` for the quadratic with spectrum log-uniform on [μ, L]."""
    r = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(r.normal(size=(P, P)))
    eig = np.logspace(np.log10(MU), np.log10(L), P)
    A = (Q * eig) @ Q.T
    A = 0.5 * (A + A.T)
    b = r.normal(size=P)
    w_star = np.linalg.solve(A, b)
    f_star = float(-0.5 * b @ w_star)
    w0 = w_star + 3.0 * r.normal(size=P) / np.sqrt(P) + 2.0 * Q[:, 0]
    return A, b, w0, w_star, f_star


def run_solvers(A, b, w0):
    """Per-iteration objective values ``{label: array}`` from the library solvers."""
    from diffprog.optim.solvers import gradient_descent, lbfgs, nesterov_agd, newton

    def f(w):
        return 0.5 * w @ (A @ w) - b @ w

    runs = {}
    r = gradient_descent(f, w0, stepsize=1.0 / L, maxiter=MAXITER, tol=0.0)
    runs["gradient descent (γ = 1/L)"] = r.history["value"]
    r = nesterov_agd(f, w0, 1.0 / L, maxiter=MAXITER, tol=0.0)
    runs["Nesterov, momentum (t−2)/(t+1)"] = r.history["value"]
    r = nesterov_agd(f, w0, 1.0 / L, maxiter=MAXITER, tol=0.0, strongly_convex=True, mu=MU)
    runs["Nesterov, momentum (√κ−1)/(√κ+1)"] = r.history["value"]
    r = newton(f, w0, maxiter=5, tol=1e-12)
    runs["Newton"] = r.history["value"]
    r = lbfgs(f, w0, memory=10, maxiter=MAXITER, tol=1e-12)
    runs["L-BFGS (memory 10)"] = r.history["value"]
    return runs


@example(
    "optim_convergence",
    title="Convergence rates: GD, Nesterov, Newton and L-BFGS on an ill-conditioned quadratic",
    section="16.1",
    caption=(
        "Suboptimality f(w_t) − f* against the iteration t for a 50-dimensional quadratic with "
        "condition number κ = L/μ = 100 (Book §16.1 gradient descent and Nesterov acceleration, "
        "§17.1 Newton, §17.4 L-BFGS). Left, log–log: the convex bounds L‖w0−w*‖²/(2t) for "
        "gradient descent and 2L‖w0−w*‖²/(t+1)² for Nesterov (dashed) hold and are loose. "
        "Right, log-linear: the strongly convex rates (1−1/κ)^t and (1−1/√κ)^t (dashed). Newton "
        "solves a quadratic in one step; L-BFGS (strong-Wolfe line search) needs under a "
        "hundred iterations, far fewer than gradient descent. Curves stop at the round-off "
        "level (dotted)."
    ),
)
def optim_convergence(out_dir: Path) -> list[Path]:
    """Draw the convergence plot into ``out_dir`` and return the PNG path."""
    A, b, w0, w_star, f_star = make_problem(0)
    runs = run_solvers(A, b, w0)
    d0 = float(np.sum((w0 - w_star) ** 2))
    gap0 = float(0.5 * w0 @ (A @ w0) - b @ w0) - f_star
    t = np.arange(1, MAXITER + 1)
    bounds_sub = {
        "GD bound L‖w0−w*‖²/(2t)": (L * d0 / (2 * t), "C0"),
        "Nesterov bound 2L‖w0−w*‖²/(t+1)²": (2 * L * d0 / (t + 1) ** 2, "C1"),
    }
    tt = np.arange(0, MAXITER + 1)
    bounds_lin = {
        "(1 − 1/κ)^t (f(w0) − f*)": ((1 - 1 / KAPPA) ** tt * gap0, "C0"),
        "(1 − 1/√κ)^t (f(w0) − f* + μ‖w0−w*‖²/2)":
            ((1 - 1 / np.sqrt(KAPPA)) ** tt * (gap0 + 0.5 * MU * d0), "C2"),
    }
    styles = ["C0", "C1", "C2", "C3", "C4"]
    markers = ["", "", "", "o", "s"]

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.0))
    level = ROUNDOFF * max(1.0, abs(f_star))
    for k, ax in enumerate(axes):
        for (label, vals), color, mk in zip(runs.items(), styles, markers, strict=True):
            gap = np.asarray(vals) - f_star
            below = np.nonzero(gap <= level)[0]
            if below.size:  # beyond this the differences are round-off noise
                gap = gap[: below[0] + 1]
            gap = np.maximum(gap, FLOOR)
            it = np.arange(len(gap))
            if k == 0:  # log-log cannot show t = 0: start at t = 1
                it, gap = it[1:], gap[1:]
            ax.plot(it, gap, color=color, marker=mk or None, ms=4, lw=1.6, label=label,
                    markevery=max(1, len(it) // 12))
        refs = bounds_sub if k == 0 else bounds_lin
        xs = t if k == 0 else tt
        for label, (vals, color) in refs.items():
            ax.plot(xs, vals, "--", color=color, lw=1.1, alpha=0.8, label=label)
        ax.axhline(level, color="0.5", ls=":", lw=1.0)
        ax.text(0.99, level * 2.5, "round-off level", color="0.4", fontsize=8, ha="right",
                transform=ax.get_yaxis_transform())
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 3, 10 * max(gap0, L * d0))
        ax.set_xlabel("iteration t")
        ax.set_ylabel("f(w_t) − f*")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_xscale("log")
    axes[0].set_title("log–log: sublinear (convex) bounds", fontsize=11)
    axes[1].set_xlim(0, MAXITER)
    axes[1].set_title("log-linear: linear (strongly convex) rates", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    n = len(runs)
    fig.legend(handles[:n], labels[:n], loc="lower center", ncol=n, fontsize=8.5, frameon=False)
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        ax.legend(h[n:], lab[n:], fontsize=8, loc="upper right")
    fig.suptitle(f"Quadratic, P = {P}, κ = {KAPPA:g} (Book §16.1, §17.1, §17.4)", fontsize=12)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(out_dir) / "optim_convergence.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
