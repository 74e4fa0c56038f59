"""Preconditioned, stochastic and second-order-flavoured solvers (Book §16.3.1, ch. 17).

Every method here is an instance of the ch. 17 template ``w⁺ = w − γ^t B^t ∇L(w^t)``
(Book §17.6; 004 (A.1.31)–(A.1.33)); they differ only in how the operator ``B^t`` is built:

* :func:`preconditioned_step` — the common core (OPT-36);
* :func:`stochastic_projected_gradient`, :func:`stochastic_proximal_gradient` — mini-batch
  gradients with a projection / prox (Book §16.3.1; OPT-35);
* :func:`psgd` — Li's preconditioned SGD, ``P = QᵀQ`` fitted so that ``δθ ≈ Pδg`` (OPT-37);
* :func:`stochastic_newton` (+ :func:`subsampled_oracles`) — sub-sampled Newton (Book §17.1.7;
  OPT-60);
* :func:`prox_linear` — modified Gauss–Newton with an exact convex outer loss (Book §17.2.1,
  (17.3); OPT-61);
* :func:`stochastic_gauss_newton` — mini-batch GGN (Book §17.2.4; OPT-65);
* :func:`diag_hessian_preconditioner`, :func:`preconditioned_gradient_descent` — inverse
  Hessian-diagonal preconditioning (Book §17.5, §9.7–9.8; OPT-71).

Parameters may be pytrees; they are ravelled to one flat float vector internally.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...core.api import grad as _grad
from ...core.api import hessian as _hessian
from ...core.api import jacfwd as _jacfwd
from ...core.api import value_and_grad as _value_and_grad
from ...derivatives import gauss_newton as _ggn
from ...derivatives import hessian_diag_estimate as _hdiag
from .base import (
    OptResult,
    Problem,
    check_finite,
    check_maxiter,
    check_positive,
    flatten,
    new_history,
    record,
)
from .newton import newton as _newton

__all__ = [
    "diag_hessian_preconditioner",
    "preconditioned_gradient_descent",
    "preconditioned_step",
    "prox_linear",
    "psgd",
    "stochastic_gauss_newton",
    "stochastic_newton",
    "stochastic_projected_gradient",
    "stochastic_proximal_gradient",
    "subsampled_oracles",
]


# ----------------------------------------------------------------------------- helpers

def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _schedule(stepsize: Any) -> Callable[[int], float]:
    """Constant γ or a schedule ``t ↦ γ_t`` (t = 0, 1, …)."""
    if callable(stepsize):
        def sched(t: int) -> float:
            return check_positive("stepsize(t)", stepsize(t))
        return sched
    g = check_positive("stepsize", stepsize)
    return lambda t: g


def _apply_operator(B: Any, g: np.ndarray) -> np.ndarray:
    """``B g`` for B = None (identity), a scalar, a diagonal vector, a matrix or a callable."""
    if B is None:
        return g
    if callable(B):
        out = np.asarray(B(g), dtype=float).reshape(-1)
    else:
        Barr = np.asarray(B, dtype=float)
        if Barr.ndim == 0:
            out = float(Barr) * g
        elif Barr.ndim == 1 or Barr.shape == g.shape:
            if Barr.size != g.size:
                raise ValueError(f"diagonal preconditioner has {Barr.size} entries, "
                                 f"the parameters have {g.size}")
            out = Barr.reshape(-1) * g
        elif Barr.ndim == 2:
            if Barr.shape != (g.size, g.size):
                raise ValueError(f"preconditioner matrix must be {(g.size, g.size)}, "
                                 f"got {Barr.shape}")
            out = Barr @ g
        else:
            raise ValueError(f"preconditioner must be a scalar, a vector, a matrix or a "
                             f"callable, got an array of shape {Barr.shape}")
    if out.size != g.size:
        raise ValueError(f"preconditioner returned {out.size} entries, expected {g.size}")
    return out


def _oracle_fn(oracle: Any, unravel: Callable) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Normalize a stochastic oracle to ``x ↦ (value or nan, flat g(x;S))``."""
    if hasattr(oracle, "value_and_grad"):
        def vg(x):
            v, g = oracle.value_and_grad(unravel(x))
            return float(v), flatten(g)[0]
        return vg
    if callable(oracle):
        def g_only(x):
            return math.nan, flatten(oracle(unravel(x)))[0]
        return g_only
    raise TypeError("oracle must be a StochasticOracle-like object (with value_and_grad) or a "
                    f"callable w ↦ g(w;S), got {type(oracle).__name__}")


# ----------------------------------------------------------------------------- OPT-36

def preconditioned_step(w: Any, g: Any, B: Any = None, stepsize: float = 1.0) -> Any:
    """One step of the ch. 17 template ``w⁺ = w − γ B ∇L(w)`` (Book §17.6; 004 (A.1.31); OPT-36).

    ``B`` is a linear operator: None (identity: gradient descent), a scalar, a diagonal given
    as a vector (or an array shaped like ``w``), a dense ``P×P`` matrix or a callable
    ``v ↦ Bv`` on flat vectors. ``w`` and ``g`` are pytrees of the same structure; so is the
    result. Newton is ``B = ∇²L⁻¹`` (one step on a strongly convex quadratic with γ = 1).

    Example::

        >>> import numpy as np
        >>> preconditioned_step(np.array([1.0, 1.0]), np.array([2.0, 4.0]), np.array([0.5, 0.25]))
        array([0., 0.])
    """
    x, unravel = flatten(w)
    gx, _ = flatten(g)
    if gx.size != x.size:
        raise ValueError(f"g has {gx.size} entries, w has {x.size}")
    gamma = check_positive("stepsize", stepsize)
    return unravel(x - gamma * _apply_operator(B, gx))


# ----------------------------------------------------------------------------- OPT-35

def _stochastic_prox_grad(oracle, w0, prox, hp, stepsize, maxiter, name) -> OptResult:
    maxiter = check_maxiter(maxiter)
    sched = _schedule(stepsize)
    x, unravel = flatten(w0)
    check_finite("w0", x)
    vg = _oracle_fn(oracle, unravel)
    x = np.asarray(prox(x, hp, sched(0)), dtype=float).reshape(-1)
    hist = new_history()
    hist["stepsize"] = []
    nfev = 0
    record(hist, x, math.nan, math.nan)
    res = math.nan
    v = math.nan
    for t in range(maxiter):
        gamma = sched(t)
        v, g = vg(x)
        nfev += 1
        x_new = np.asarray(prox(x - gamma * g, hp, gamma), dtype=float).reshape(-1)
        check_finite(f"{name} iterate", x_new)
        res = float(np.linalg.norm(x_new - x)) / gamma
        x = x_new
        hist["stepsize"].append(gamma)
        record(hist, x, v, res)
    return OptResult(solution=unravel(x), value=v, grad_norm=res, iterations=maxiter,
                     num_fun_evals=nfev, num_grad_evals=nfev, converged=False,
                     status="maxiter reached (fixed budget)", history=hist)


def stochastic_projected_gradient(oracle: Any, w0: Any, projection: Callable,
                                  hyperparams_proj: Any = None, stepsize: Any = 0.1,
                                  maxiter: int = 100) -> OptResult:
    """Stochastic projected gradient ``w⁺ = proj_C(w − γ_t g(w;S_t))`` (Book §16.3.1; OPT-35).

    ``oracle`` is a :class:`~diffprog.optim.StochasticOracle` (anything with
    ``value_and_grad(w) → (value on S, g(w;S))``) or a callable ``w ↦ g(w;S)`` drawing its own
    batch. ``projection(x, hyperparams_proj)`` acts on the flat vector (JAXopt convention).
    ``stepsize``: constant or a schedule ``t ↦ γ_t``. Runs a fixed budget of ``maxiter`` steps
    (stochastic stopping rule); every recorded iterate (``history["params"]``, ``w0`` projected
    first) is feasible. ``history["value"]`` holds the mini-batch losses, ``grad_norm`` the
    residual ``‖w⁺ − w‖/γ``.

    Example::

        >>> import numpy as np
        >>> from diffprog.optim import projection_simplex
        >>> rng = np.random.default_rng(0)
        >>> r = stochastic_projected_gradient(lambda w: w - rng.normal([0.7, 0.3], 0.1),
        ...     np.zeros(2), lambda x, hp: projection_simplex(x), stepsize=0.1, maxiter=50)
        >>> bool(abs(r.solution.sum() - 1) < 1e-12)
        True
    """
    if not callable(projection):
        raise TypeError("projection must be callable (x, hyperparams) ↦ proj_C(x)")
    return _stochastic_prox_grad(oracle, w0, lambda x, hp, s: projection(x, hp),
                                 hyperparams_proj, stepsize, maxiter,
                                 "stochastic_projected_gradient")


def stochastic_proximal_gradient(oracle: Any, w0: Any, prox: Callable | None = None,
                                 hyperparams_prox: Any = None, stepsize: Any = 0.1,
                                 maxiter: int = 100) -> OptResult:
    """Stochastic proximal gradient ``w⁺ = prox_{γ_tΩ}(w − γ_t g(w;S_t))`` (Book §16.3.1,
    §16.4.1; OPT-35).

    ``prox(x, hyperparams_prox, scaling)`` returns ``prox_{scaling·Ω}(x)`` (None: Ω = 0, i.e.
    SGD). Other arguments as in :func:`stochastic_projected_gradient`.

    Example::

        >>> import numpy as np
        >>> st = lambda x, lam, s: np.sign(x) * np.maximum(np.abs(x) - lam * s, 0.0)
        >>> r = stochastic_proximal_gradient(lambda w: w - 3.0, np.zeros(1), st, 1.0,
        ...                                  stepsize=0.5, maxiter=60)
        >>> np.allclose(r.solution, 2.0)
        True
    """
    if prox is None:
        def prox(x, hp, s):
            return x
    elif not callable(prox):
        raise TypeError("prox must be callable (x, hyperparams, scaling) ↦ prox(x)")
    return _stochastic_prox_grad(oracle, w0, prox, hyperparams_prox, stepsize, maxiter,
                                 "stochastic_proximal_gradient")


# ----------------------------------------------------------------------------- OPT-37

def _psgd_update_diag(q: np.ndarray, dx: np.ndarray, dg: np.ndarray, lr: float) -> np.ndarray:
    a = q * dg
    b = dx / q
    gq = a * a - b * b
    return q - lr * gq * q / (np.max(np.abs(gq)) + 1e-30)


def _psgd_update_dense(Q: np.ndarray, dx: np.ndarray, dg: np.ndarray, lr: float) -> np.ndarray:
    a = Q @ dg
    b = np.linalg.solve(Q.T, dx)
    gQ = np.triu(np.outer(a, a) - np.outer(b, b))
    return Q - lr * (gQ @ Q) / (np.max(np.abs(gQ)) + 1e-30)


def psgd(fun: Callable | None, w0: Any, stepsize: Any = 0.1, representation: str = "diagonal",
         precond_lr: float = 0.05, perturb_scale: float = 1e-3, oracle: Any = None,
         maxiter: int = 200, rng: Any = None, args: tuple = ()) -> OptResult:
    """Preconditioned SGD of Li (2017) (004 §A.1.2 "PGD"; Book ch. 17 template; OPT-37).

    Each step draws a perturbation ``δθ ~ perturb_scale·N(0, I)`` and measures
    ``δg = g(θ+δθ; S) − g(θ; S)`` on the *same* batch. ``P = QᵀQ`` is fitted to the secant
    pairs by minimizing Li's criterion ``E[δgᵀPδg + δθᵀP⁻¹δθ]`` (optimum ``Pδgδgᵀ P = δθδθᵀ``,
    i.e. ``P = ∇²L⁻¹`` when ``δg = ∇²L δθ``) with a normalized relative-gradient step
    (Li 2017, Eqs. for diagonal / triangular Q)::

        a = Qδg,  b = Q⁻ᵀδθ,  ∇_Q = triu(aaᵀ − bbᵀ)Q,  Q ← Q − μ ∇_Q / max|aaᵀ − bbᵀ|
        θ⁺ = θ − h_t P ∇L(θ)

    ``representation="diagonal"`` (``Q = diag(q)``, O(P) memory; a, b, ∇ elementwise) or
    ``"dense"`` (upper-triangular Q; small problems). ``"low_rank"``/``"kronecker"`` are not
    implemented. ``fun`` is the (deterministic) objective, or give ``oracle`` (a
    :class:`~diffprog.optim.StochasticOracle`: ``sample_indices()`` and
    ``value_and_grad(w, indices)``). ``history["precond"]`` holds P (diagonal vector or matrix).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = psgd(lambda w: 10 * w[0] ** 2 + 0.5 * w[1] ** 2, np.ones(2), rng=0)
        >>> bool(abs(r.history["precond"][-1][0] * 20 - 1) < 0.1)
        True
    """
    if representation not in ("diagonal", "dense"):
        raise ValueError(f"psgd: representation must be 'diagonal' or 'dense' (low-rank and "
                         f"Kronecker factors are not implemented), got {representation!r}")
    maxiter = check_maxiter(maxiter)
    mu = check_positive("precond_lr", precond_lr)
    eps = check_positive("perturb_scale", perturb_scale)
    sched = _schedule(stepsize)
    gen = _rng(rng)
    if oracle is not None:
        x, unravel = flatten(w0)

        def vg_batch(xx, idx):
            v, g = oracle.value_and_grad(unravel(xx), idx)
            return float(v), flatten(g)[0]

        def draw():
            return oracle.sample_indices()
    elif fun is not None:
        prob = Problem(fun, w0, args)
        x, unravel = prob.x0.copy(), prob.unravel

        def vg_batch(xx, idx):
            return prob.value_and_grad(xx)

        def draw():
            return None
    else:
        raise ValueError("psgd: give fun or oracle")
    check_finite("w0", x)
    P_ = x.size
    Q = np.ones(P_) if representation == "diagonal" else np.eye(P_)
    hist = new_history()
    hist["precond"] = []
    ngev = 0
    v = math.nan
    gnorm = math.nan
    for t in range(maxiter):
        idx = draw()
        v, g = vg_batch(x, idx)
        dx = eps * gen.standard_normal(P_)
        _, g2 = vg_batch(x + dx, idx)
        ngev += 2
        dg = g2 - g
        if representation == "diagonal":
            Q = _psgd_update_diag(Q, dx, dg, mu)
            Pg = Q * Q * g
            Pcur = Q * Q
        else:
            Q = _psgd_update_dense(Q, dx, dg, mu)
            Pg = Q.T @ (Q @ g)
            Pcur = Q.T @ Q
        gnorm = float(np.linalg.norm(g))
        record(hist, x, v, gnorm)
        hist["precond"].append(np.array(Pcur))
        x = x - sched(t) * Pg
        check_finite("psgd iterate", x)
    return OptResult(solution=unravel(x), value=v, grad_norm=gnorm, iterations=maxiter,
                     num_fun_evals=ngev, num_grad_evals=ngev, converged=False,
                     status="maxiter reached (fixed budget)", history=hist)


# ----------------------------------------------------------------------------- OPT-60

def subsampled_oracles(loss_i: Callable, data: Any, grad_batch_size: int | None = None,
                       hess_batch_size: int | None = None, replace: bool = False
                       ) -> tuple[Callable, Callable]:
    """Independent mini-batch gradient and Hessian oracles for :func:`stochastic_newton`
    (Book §17.1.7; OPT-60).

    ``loss_i(w, batch)`` returns the per-sample losses of a batch (an array whose rows are
    samples, or a tuple of such arrays); ``L(w) = mean_i loss_i``. Returns
    ``grad_oracle(w, rng) = g(w;S)`` and ``hess_oracle(w, rng) = H(w;S′)`` (dense, P×P), each
    drawing its own batch (size None: the full data, deterministic), so ``E[H(w;S′)] = ∇²L(w)``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> go, ho = subsampled_oracles(lambda w, x: 0.5 * (w - x) ** 2, np.arange(4.0))
        >>> float(go(np.array(0.0), None)), float(ho(np.array(0.0), None))
        (-1.5, 1.0)
    """
    leaves = data if isinstance(data, tuple) else (data,)
    n = int(np.shape(leaves[0])[0])

    def take(idx):
        if idx is None:
            return data
        if isinstance(data, tuple):
            return tuple(np.asarray(d)[idx] for d in data)
        return np.asarray(data)[idx]

    def sizes(m, name):
        if m is None:
            return None
        if int(m) != m or m < 1 or (not replace and m > n):
            raise ValueError(f"{name} must be an integer in [1, {n}], got {m!r}")
        return int(m)

    mg = sizes(grad_batch_size, "grad_batch_size")
    mh = sizes(hess_batch_size, "hess_batch_size")

    def draw(m, rng):
        if m is None:
            return None
        return _rng(rng).choice(n, size=m, replace=replace)

    def batch_loss(w, batch):
        return loss_i(w, batch).mean()

    gfun = _grad(batch_loss)
    hfun = _hessian(batch_loss)

    def grad_oracle(w, rng):
        return gfun(w, take(draw(mg, rng)))

    def hess_oracle(w, rng):
        return hfun(w, take(draw(mh, rng)))

    return grad_oracle, hess_oracle


def stochastic_newton(grad_oracle: Callable, hess_oracle: Callable, w0: Any,
                      stepsize: Any = 1.0, reg: Any = 0.0, maxiter: int = 20, tol: float = 0.0,
                      rng: Any = None, fun: Callable | None = None) -> OptResult:
    """Stochastic (sub-sampled) Newton ``w⁺ = w − γ_t (H(w;S′_t) + η_t I)⁻¹ g(w;S_t)``
    (Book §17.1.7; OPT-60).

    ``grad_oracle(w, rng)`` and ``hess_oracle(w, rng)`` draw *independent* samples S, S′ (batch
    sizes may differ; see :func:`subsampled_oracles`); the Hessian estimate is unbiased,
    ``E[∇²L(w;S′)] = ∇²L(w)``. ``hess_oracle`` returns a dense P×P matrix (or a pytree-Hessian
    that reshapes to one). ``stepsize`` γ_t and ``reg`` η_t ≥ 0 (keeps the system PD) are
    constants or schedules ``t ↦ value``. With full batches and η = 0 the iterates are exactly
    Newton's. Stops after ``maxiter`` steps or when ``‖g(w;S)‖ ≤ tol``; ``fun`` (optional) records
    the full objective in ``history["value"]``.

    Example::

        >>> import numpy as np
        >>> go = lambda w, rng: 2 * (w - 1.0)
        >>> ho = lambda w, rng: 2 * np.eye(2)
        >>> np.allclose(stochastic_newton(go, ho, np.zeros(2), maxiter=1).solution, 1.0)
        True
    """
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    sched = _schedule(stepsize)
    if callable(reg):
        regs = reg
    else:
        reg_c = check_positive("reg", reg, allow_zero=True)

        def regs(t):
            return reg_c
    gen = _rng(rng)
    x, unravel = flatten(w0)
    check_finite("w0", x)
    P_ = x.size
    hist = new_history()
    ng = nh = 0
    gnorm = math.inf
    converged = False
    it = 0
    for t in range(maxiter):
        g = flatten(grad_oracle(unravel(x), gen))[0]
        ng += 1
        gnorm = float(np.linalg.norm(g))
        record(hist, x, float(fun(unravel(x))) if fun is not None else math.nan, gnorm)
        if gnorm <= tol:
            converged = True
            break
        H = np.asarray(hess_oracle(unravel(x), gen), dtype=float).reshape(P_, P_)
        nh += 1
        eta = check_positive("reg(t)", regs(t), allow_zero=True)
        try:
            d = np.linalg.solve(H + eta * np.eye(P_), g)
        except np.linalg.LinAlgError as e:
            raise np.linalg.LinAlgError("stochastic_newton: H(w;S') + ηI is singular; "
                                        "increase reg or the Hessian batch size") from e
        x = x - sched(t) * d
        check_finite("stochastic_newton iterate", x)
        it += 1
    v = float(fun(unravel(x))) if fun is not None else math.nan
    if not converged:
        record(hist, x, v, math.nan)
    return OptResult(solution=unravel(x), value=v, grad_norm=gnorm, iterations=it,
                     num_fun_evals=ng + nh, num_grad_evals=ng, num_hvp_evals=nh,
                     converged=converged, status="converged" if converged else "maxiter reached",
                     history=hist)


# ----------------------------------------------------------------------------- OPT-61

def _dual_fista(J, c, eta, prox_loss, maxiter, tol):
    """Solve ``min_d ℓ(c + Jd) + η/2‖d‖²`` through its dual
    ``min_α ‖Jᵀα‖²/(2η) − ⟨α, c⟩ + ℓ*(α)`` with FISTA; ``prox_{sℓ*}`` by Moreau's identity."""
    L = max(float(np.linalg.norm(J, 2)) ** 2 / eta, 1e-300)
    s = 1.0 / L

    def prox_conj(z):
        return z - s * np.asarray(prox_loss(z / s, 1.0 / s), dtype=float)

    a = np.zeros(J.shape[0])
    y = a
    tk = 1.0
    for _ in range(maxiter):
        gy = J @ (J.T @ y) / eta - c
        a_new = prox_conj(y - s * gy)
        t_new = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
        y = a_new + ((tk - 1) / t_new) * (a_new - a)
        done = float(np.linalg.norm(a_new - a)) <= tol * (1 + float(np.linalg.norm(a)))
        a, tk = a_new, t_new
        if done:
            break
    return -(J.T @ a) / eta


def _subproblem(loss, c, J, shape, eta_t):
    import diffprog.numpy as dnp

    def sub(d):
        z = dnp.reshape(c + dnp.dot(J, d), shape)
        return loss(z) + 0.5 * eta_t * dnp.sum(d * d)
    return sub


def _flat_prox(prox_loss, shape):
    def pl(z, s):
        return np.asarray(prox_loss(z.reshape(shape), s), dtype=float).reshape(-1)
    return pl


def prox_linear(loss: Callable, f: Callable, w0: Any, eta: float = 1.0,
                inner_solver: Callable | None = None, prox_loss: Callable | None = None,
                adaptive: bool = True, maxiter: int = 50, tol: float = 1e-8,
                inner_maxiter: int = 2000, inner_tol: float = 1e-12) -> OptResult:
    """Prox-linear / modified Gauss–Newton for ``L = ℓ∘f`` with convex ℓ (Book §17.2.1, (17.3);
    OPT-61)::

        w⁺ = argmin_w ℓ(J^t w + δ^t) + η^t/2 ‖w − w^t‖²,   J^t = ∂f(w^t),  δ^t = f(w^t) − J^t w^t

    Only f is linearized, so the subproblem (in ``d = w − w^t``: ``ℓ(f(w^t) + J^t d) +
    η/2‖d‖²``) is strongly convex even for nonsmooth ℓ. Inner solvers, in order of priority:
    ``inner_solver(sub, d0) → d`` (``sub`` a diffprog-traceable function of flat d);
    ``prox_loss(z, s) = prox_{sℓ}(z)`` for nonsmooth ℓ (FISTA on the dual, Moreau identity;
    e.g. ``ℓ = ‖·−y‖₁``); otherwise Newton on the smooth subproblem. With ``adaptive=True``
    η is doubled until ``L(w⁺) ≤ L(w)`` (monotone decrease; at most 30 doublings per step).
    J is materialized with forward mode (P small). Stops when ``‖w⁺ − w‖·η ≤ tol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]); y = np.array([1.0, 2.0, 3.0])
        >>> r = prox_linear(lambda z: 0.5 * dnp.sum((z - y) ** 2), lambda w: dnp.dot(A, w),
        ...                 np.zeros(2), eta=1e-10, maxiter=1)
        >>> np.allclose(r.solution, np.linalg.lstsq(A, y, rcond=None)[0])
        True
    """
    if not (callable(loss) and callable(f)):
        raise TypeError("prox_linear: loss and f must be callable")
    eta = check_positive("eta", eta)
    maxiter = check_maxiter(maxiter)
    x, unravel = flatten(w0)
    check_finite("w0", x)

    def F(xx):
        return f(unravel(xx))

    jac = _jacfwd(F)

    def L(xx):
        return float(loss(F(xx)))

    hist = new_history()
    hist["eta"] = []
    nfev = 1
    val = L(x)
    res = math.inf
    it = 0
    record(hist, x, val, math.nan)
    while it < maxiter:
        fx = np.asarray(F(x), dtype=float)
        shape = fx.shape
        c = fx.reshape(-1)
        J = np.asarray(jac(x), dtype=float).reshape(c.size, x.size)
        nfev += 1
        eta_t = eta
        for _ in range(31):
            if inner_solver is not None:
                sub = _subproblem(loss, c, J, shape, eta_t)
                d = np.asarray(inner_solver(sub, np.zeros(x.size)), dtype=float).reshape(-1)
            elif prox_loss is not None:
                d = _dual_fista(J, c, eta_t, _flat_prox(prox_loss, shape), inner_maxiter,
                                inner_tol)
            else:
                sub = _subproblem(loss, c, J, shape, eta_t)
                d = np.asarray(_newton(sub, np.zeros(x.size), maxiter=50, tol=1e-12).solution,
                               dtype=float).reshape(-1)
            check_finite("prox_linear step", d)
            v_new = L(x + d)
            nfev += 1
            if not adaptive or v_new <= val + 1e-12 * max(1.0, abs(val)):
                break
            eta_t *= 2.0
        else:
            raise FloatingPointError("prox_linear: no decrease after 30 doublings of eta")
        x = x + d
        val = v_new
        res = float(np.linalg.norm(d)) * eta_t
        it += 1
        hist["eta"].append(eta_t)
        record(hist, x, val, res)
        if res <= tol:
            break
    return OptResult(solution=unravel(x), value=val, grad_norm=res, iterations=it,
                     num_fun_evals=nfev, converged=res <= tol,
                     status="converged" if res <= tol else "maxiter reached", history=hist)


# ----------------------------------------------------------------------------- OPT-65

def stochastic_gauss_newton(f: Callable, loss: Callable, w0: Any, data: tuple,
                            grad_batch_size: int | None = None,
                            ggn_batch_size: int | None = None, stepsize: Any = 1.0,
                            reg: float = 0.0, maxiter: int = 20, tol: float = 0.0,
                            rng: Any = None) -> OptResult:
    """Stochastic Gauss–Newton ``w⁺ = w − γ_t (G(w;S′) + ηI)⁻¹ g(w;S)`` (Book §17.2.4; OPT-65).

    ``L(w) = (1/n) Σ_i ℓ(f(w; x_i); y_i)`` with ``f(w, x)`` and ``loss(θ, y)`` taking one example
    and ``data = (X, Y)``. ``G(w;S′) = (1/|S′|) Σ_{i∈S′} ∂f(w;x_i)ᵀ ∇²ℓ(f(w;x_i)) ∂f(w;x_i)``
    (:func:`diffprog.derivatives.gauss_newton` with ``batch``); S and S′ are independent
    uniform draws without replacement (size None: the full data, i.e. deterministic
    Gauss–Newton). ``reg`` η ≥ 0 keeps the system PD.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> X = np.array([[1.0], [2.0]]); Y = np.array([2.0, 4.0])
        >>> r = stochastic_gauss_newton(lambda w, x: dnp.dot(x, w), lambda t, y: 0.5 * (t - y) ** 2,
        ...                             np.zeros(1), (X, Y), maxiter=1)
        >>> np.allclose(r.solution, 2.0)
        True
    """
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError("stochastic_gauss_newton: data must be a pair (X, Y)")
    X, Y = np.asarray(data[0]), np.asarray(data[1])
    n = X.shape[0]
    if Y.shape[0] != n:
        raise ValueError("stochastic_gauss_newton: X and Y must have the same number of rows")
    for m, name in ((grad_batch_size, "grad_batch_size"), (ggn_batch_size, "ggn_batch_size")):
        if m is not None and (int(m) != m or not 1 <= m <= n):
            raise ValueError(f"{name} must be an integer in [1, {n}], got {m!r}")
    maxiter = check_maxiter(maxiter)
    eta = check_positive("reg", reg, allow_zero=True)
    sched = _schedule(stepsize)
    gen = _rng(rng)
    x, unravel = flatten(w0)
    check_finite("w0", x)
    P_ = x.size

    def batch_loss(xx, Xb, Yb):
        w = unravel(xx)
        tot = 0.0
        for i in range(Xb.shape[0]):
            tot = tot + loss(f(w, Xb[i]), Yb[i])
        return tot / Xb.shape[0]

    vg = _value_and_grad(batch_loss)

    def draw(m):
        return np.arange(n) if m is None else gen.choice(n, size=int(m), replace=False)

    def f_flat(xx, xi):
        return f(unravel(xx), xi)

    hist = new_history()
    ng = nh = 0
    gnorm = math.inf
    converged = False
    it = 0
    v = math.nan
    for t in range(maxiter):
        S = draw(grad_batch_size)
        v, g = vg(x, X[S], Y[S])
        g = np.asarray(g, dtype=float).reshape(-1)
        ng += 1
        gnorm = float(np.linalg.norm(g))
        record(hist, x, float(v), gnorm)
        if gnorm <= tol:
            converged = True
            break
        S2 = draw(ggn_batch_size)
        G = np.asarray(_ggn(f_flat, loss, x, batch=(X[S2], Y[S2])), dtype=float).reshape(P_, P_)
        nh += 1
        try:
            d = np.linalg.solve(G + eta * np.eye(P_), g)
        except np.linalg.LinAlgError as e:
            raise np.linalg.LinAlgError("stochastic_gauss_newton: G(w;S') + ηI is singular; "
                                        "use reg > 0 or a larger ggn_batch_size") from e
        x = x - sched(t) * d
        check_finite("stochastic_gauss_newton iterate", x)
        it += 1
    return OptResult(solution=unravel(x), value=float(v), grad_norm=gnorm, iterations=it,
                     num_fun_evals=ng + nh, num_grad_evals=ng, num_hvp_evals=nh,
                     converged=converged, status="converged" if converged else "maxiter reached",
                     history=hist)


# ----------------------------------------------------------------------------- OPT-71

def diag_hessian_preconditioner(fun: Callable, method: Any = "exact", num_samples: int = 100,
                                rng: Any = None, eps: float = 1e-12,
                                args: tuple = ()) -> Callable[[Any], np.ndarray]:
    """Inverse Hessian-diagonal preconditioner ``B(w) = diag(|H_11|⁻¹, …, |H_PP|⁻¹)``
    (Book §17.5, → §9.7, §9.8; OPT-71), the ``B`` of :func:`preconditioned_step`.

    Returns ``w ↦ B(w)`` as a flat vector (the diagonal). ``method``: ``"exact"`` (diagonal of
    the dense Hessian), ``"hutchinson"`` (``E[ω ⊙ ∇²L ω]`` with ``num_samples`` Rademacher probes,
    :func:`diffprog.derivatives.hessian_diag_estimate`), or a callable ``w ↦ diag estimate``
    (e.g. a Becker–LeCun approximation from :mod:`diffprog.derivatives.diagonal`, which needs
    the chain structure of the program). ``|H_ii|`` is floored at ``eps``. Adam can be read as
    approximating this with ``√E[g²]``. Exact in one step on axis-aligned quadratics only.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> B = diag_hessian_preconditioner(lambda w: 50 * w[0] ** 2 + 0.5 * w[1] ** 2)
        >>> B(np.ones(2))
        array([0.01, 1.  ])
    """
    if not callable(fun):
        raise TypeError("fun must be callable")
    eps = check_positive("eps", eps)
    gen = _rng(rng)

    def flat_f(w0):
        x, unravel = flatten(w0)
        return x, (lambda xx: fun(unravel(xx), *args))

    if callable(method):
        def diag(w):
            return flatten(method(w))[0]
    elif method == "exact":
        def diag(w):
            x, f = flat_f(w)
            return np.diag(np.asarray(_hessian(f)(x), dtype=float).reshape(x.size, x.size))
    elif method == "hutchinson":
        if int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")

        def diag(w):
            x, f = flat_f(w)
            return np.asarray(_hdiag(f, x, gen, num_samples=int(num_samples)),
                              dtype=float).reshape(-1)
    elif method == "becker_lecun":
        raise ValueError("diag_hessian_preconditioner: 'becker_lecun' needs the chain "
                         "structure; pass method=lambda w: <diag estimate>, e.g. from "
                         "diffprog.derivatives.diagonal.diag_hessian_approx")
    else:
        raise ValueError(f"unknown method {method!r}; use 'exact', 'hutchinson' or a callable")

    def B(w):
        return 1.0 / np.maximum(np.abs(diag(w)), eps)

    return B


def preconditioned_gradient_descent(fun: Callable, w0: Any, preconditioner: Any = None,
                                    stepsize: Any = 1.0, maxiter: int = 100, tol: float = 1e-8,
                                    args: tuple = ()) -> OptResult:
    """Preconditioned gradient descent ``w⁺ = w − γ_t B^t ∇L(w^t)`` (Book §17.5, §17.6; OPT-36,
    OPT-71).

    ``preconditioner``: a fixed operator as in :func:`preconditioned_step` (None, scalar,
    vector, matrix, or a callable on flat vectors), or ``("at", B_fn)`` with ``B_fn(w)``
    returning the operator at the current iterate — e.g.
    ``("at", diag_hessian_preconditioner(fun))``. Stops when ``‖∇L‖ ≤ tol``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: 50 * w[0] ** 2 + 0.5 * w[1] ** 2
        >>> B = diag_hessian_preconditioner(f)
        >>> r = preconditioned_gradient_descent(f, np.ones(2), ("at", B))
        >>> r.iterations, np.allclose(r.solution, 0.0)
        (1, True)
    """
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    sched = _schedule(stepsize)
    if isinstance(preconditioner, tuple) and len(preconditioner) == 2 \
            and preconditioner[0] == "at":
        B_fn = preconditioner[1]
        if not callable(B_fn):
            raise TypeError("('at', B_fn): B_fn must be callable w ↦ operator")
    else:
        def B_fn(w):
            return preconditioner
    prob = Problem(fun, w0, args)
    x = prob.x0.copy()
    hist = new_history()
    v, g = prob.value_and_grad(x)
    gnorm = float(np.linalg.norm(g))
    record(hist, x, v, gnorm)
    it = 0
    while it < maxiter and gnorm > tol:
        x = x - sched(it) * _apply_operator(B_fn(prob.unravel(x)), g)
        check_finite("preconditioned_gradient_descent iterate", x)
        v, g = prob.value_and_grad(x)
        gnorm = float(np.linalg.norm(g))
        it += 1
        record(hist, x, v, gnorm)
    return prob.result(x, v, gnorm, it, gnorm <= tol,
                       "converged" if gnorm <= tol else "maxiter reached", hist)
