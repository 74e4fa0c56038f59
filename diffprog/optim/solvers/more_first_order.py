"""More first-order methods: stochastic Armijo line search, steepest descent for a norm,
majorization–minimization, Anderson acceleration, Frank–Wolfe and mirror descent
(Book §16.1, §16.2.4, §16.3, §16.4.2, §18.3; notes 004 §A.1.1, §A.1.5; spec OPT-21, 26, 27, 51,
53, 54).

All ``fun``-based solvers take ``fun(w, *args) → scalar`` (``w`` any pytree; flattened
internally) and return an :class:`~diffprog.optim.solvers.base.OptResult` with a ``history``
dict of per-iteration lists.

Example::

    >>> import numpy as np, diffprog.numpy as dnp
    >>> c = np.array([0.3, -1.0, 0.5])
    >>> r = frank_wolfe(lambda w: dnp.sum((w - 0.2) ** 2), np.array([1.0, 0.0, 0.0]),
    ...                 lmo("simplex"), maxiter=200)
    >>> bool(abs(float(np.sum(r.solution)) - 1.0) < 1e-12)
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

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

__all__ = [
    "armijo_sgd",
    "steepest_descent_direction",
    "sign_gradient_descent",
    "majorize_minimize",
    "quadratic_majorizer",
    "prox_quadratic_majorizer",
    "anderson_acceleration",
    "prox_grad_fixed_point_fun",
    "lmo",
    "frank_wolfe",
    "mirror_descent",
]


def _schedule(stepsize: Any, name: str = "stepsize") -> Callable[[int], float]:
    if callable(stepsize):
        def sched(t: int) -> float:
            g = float(stepsize(t))
            if not (math.isfinite(g) and g > 0):
                raise ValueError(f"{name} schedule returned {g} at t={t}; must be positive")
            return g
        return sched
    g = check_positive(name, stepsize)
    return lambda t: g


# --------------------------------------------------------------------------------------------
# OPT-21: SGD with a stochastic Armijo line search (Vaswani et al. 2019)
# --------------------------------------------------------------------------------------------

def _as_data(data: Any) -> tuple[tuple[np.ndarray, ...], int]:
    if isinstance(data, np.ndarray):
        data = (data,)
    if not isinstance(data, (tuple, list)) or len(data) == 0:
        raise TypeError("data must be an array or a non-empty tuple of arrays sharing the "
                        "leading (sample) dimension")
    arrs = tuple(np.asarray(a) for a in data)
    if any(a.ndim == 0 for a in arrs):
        raise ValueError("data arrays need a leading sample dimension")
    n = arrs[0].shape[0]
    if any(a.shape[0] != n for a in arrs):
        raise ValueError(f"data arrays disagree on the number of samples: "
                         f"{[a.shape[0] for a in arrs]}")
    if n < 1:
        raise ValueError("data is empty")
    return arrs, int(n)


def armijo_sgd(fun: Callable, w0: Any, data: Any, batch_size: int = 32, maxiter: int = 1000,
               tol: float = 1e-8, stepsize0: float = 1.0, c: float = 0.5, rho: float = 0.5,
               increase: float | None = None, max_stepsize: float = 1e3, maxls: int = 30,
               rng: Any = None, args: tuple = ()) -> OptResult:
    """SGD with a stochastic Armijo line search (Vaswani et al. 2019; Book §16.2.4; OPT-21).

    At step t a mini-batch ``S_t`` (``batch_size`` samples drawn without replacement) defines
    ``L_t(w) = fun(w, *batch, *args)`` where ``batch = tuple(a[S_t] for a in data)``. The step
    ``γ_t`` is the largest ``γ̄_t ρ^k`` with the Armijo test **on the same mini-batch**::

        L_t(w − γ ∇L_t(w)) ≤ L_t(w) − c γ ‖∇L_t(w)‖²,      w⁺ = w − γ_t ∇L_t(w)

    and the next trial step is ``γ̄_{t+1} = min(γ_t · increase, max_stepsize)`` (default
    ``increase = 2^{b/n}``, Vaswani's reset). No step-size tuning is needed under
    interpolation (every ``L_i`` minimized at ``w*``). If no step passes within ``maxls``
    trials the iterate is left unchanged. Every ``⌈n/b⌉`` steps (once per epoch) the full
    gradient is evaluated; the solver stops when its norm is ``≤ tol``.
    ``history``: ``"value"`` / ``"grad_norm"`` (mini-batch, before the step), ``"params"``
    (before the step), ``"stepsize"``, ``"batch"`` (indices), ``"accepted"``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> A = np.random.default_rng(0).normal(size=(40, 3)); y = A @ np.ones(3)
        >>> f = lambda w, a, b: 0.5 * dnp.mean((a @ w - b) ** 2)
        >>> r = armijo_sgd(f, np.zeros(3), (A, y), batch_size=8, maxiter=500, rng=0)
        >>> bool(np.allclose(r.solution, 1.0, atol=1e-6))
        True
    """
    arrs, n = _as_data(data)
    if int(batch_size) != batch_size or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, n={n}], got {batch_size!r}")
    b = int(batch_size)
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    gamma_bar = check_positive("stepsize0", stepsize0)
    max_stepsize = check_positive("max_stepsize", max_stepsize)
    if not 0 < c < 1:
        raise ValueError(f"Armijo constant c must lie in (0, 1), got {c}")
    if not 0 < rho < 1:
        raise ValueError(f"backtracking factor rho must lie in (0, 1), got {rho}")
    inc = 2.0 ** (b / n) if increase is None else check_positive("increase", increase)
    if int(maxls) != maxls or maxls < 1:
        raise ValueError(f"maxls must be a positive integer, got {maxls!r}")
    rng = np.random.default_rng(rng)

    batch_args: list = [()]  # mutable slot read by the objective
    prob = Problem(lambda w, *a: fun(w, *batch_args[0], *a), w0, args)
    x = prob.x0
    hist = new_history()
    hist.update(stepsize=[], batch=[], accepted=[])
    epoch = max(1, -(-n // b))

    def full_grad_norm(x):
        batch_args[0] = arrs
        fv, g = prob.value_and_grad(x)
        return fv, float(np.linalg.norm(g))

    f_full, gn_full = full_grad_norm(x)
    converged, t, status = gn_full <= tol, 0, "converged"
    while not converged and t < maxiter:
        idx = rng.choice(n, size=b, replace=False)
        batch_args[0] = tuple(a[idx] for a in arrs)
        f, g = prob.value_and_grad(x)
        check_finite("armijo_sgd mini-batch loss", f)
        gsq = float(g @ g)
        record(hist, x, f, math.sqrt(gsq))
        hist["batch"].append(idx)
        gamma, ok = gamma_bar, gsq == 0.0
        if not ok:
            for _ in range(maxls):
                fnew = prob.value(x - gamma * g)
                if math.isfinite(fnew) and fnew <= f - c * gamma * gsq:
                    ok = True
                    break
                gamma *= rho
        if ok:
            x = x - gamma * g
            gamma_bar = min(gamma * inc, max_stepsize)
        else:
            gamma = 0.0
            gamma_bar = gamma_bar * rho ** maxls
        hist["stepsize"].append(gamma)
        hist["accepted"].append(ok)
        t += 1
        if t % epoch == 0 or t == maxiter:
            f_full, gn_full = full_grad_norm(x)
            converged = gn_full <= tol
    if not converged:
        status = "maxiter reached"
    return prob.result(x, f_full, gn_full, t, converged, status, hist)


# --------------------------------------------------------------------------------------------
# OPT-26: steepest descent for a norm; sign gradient descent
# --------------------------------------------------------------------------------------------

def _norm_kind(norm: Any) -> str:
    key = str(norm).lower().replace("ℓ", "l")
    table = {"2": "l2", "l2": "l2", "euclidean": "l2", "1": "l1", "l1": "l1",
             "inf": "linf", "linf": "linf", "l_inf": "linf", "max": "linf", "∞": "linf",
             "l∞": "linf"}
    if isinstance(norm, float) and math.isinf(norm) and norm > 0:
        return "linf"
    if key not in table:
        raise ValueError(f"unknown norm {norm!r}; use 1, 2 or np.inf ('l1', 'l2', 'linf')")
    return table[key]


def steepest_descent_direction(g: Any, norm: Any = 2) -> Any:
    """Normalized steepest-descent direction ``v ∈ argmin_{‖v‖ ≤ 1} ⟨g, v⟩`` (004 §A.1.1
    (A.1.4), §A.1.5 (A.1.49)–(A.1.53); Book §16.1; OPT-26).

    The minimum value is ``−‖g‖_*`` (dual norm). ``norm=2``: ``−g/‖g‖₂``. ``norm=np.inf``:
    ``−sign(g)`` (sign ∈ {−1, 0, 1}; attains ``−‖g‖₁``): sign descent. ``norm=1``:
    ``−sign(g_i) e_i`` with ``i = argmax |g_i|`` (first one on ties; attains ``−‖g‖_∞``):
    one coordinate moves (greedy coordinate descent). ``g = 0`` gives ``0``. ``g`` may be a
    pytree (the norm is taken over all its leaves); the result has its structure.

    Example::

        >>> import numpy as np
        >>> steepest_descent_direction(np.array([3.0, -4.0]), 1).tolist()
        [0.0, 1.0]
    """
    kind = _norm_kind(norm)
    x, unravel = flatten(g)
    check_finite("g", x)
    v = np.zeros_like(x)
    if x.size and np.any(x != 0):
        if kind == "l2":
            v = -x / np.linalg.norm(x)
        elif kind == "linf":
            v = -np.sign(x)
        else:
            i = int(np.argmax(np.abs(x)))
            v[i] = -np.sign(x[i])
    return unravel(v)


def sign_gradient_descent(fun: Callable, w0: Any, lr: Any, maxiter: int = 1000,
                          tol: float = 1e-6, args: tuple = ()) -> OptResult:
    """Sign gradient descent ``θ⁺ = θ − h_t sign(∇L(θ))`` = steepest descent for ℓ∞ with step
    ``h_t`` (004 §A.1.5 (A.1.49)–(A.1.53); Book §16.1; OPT-26).

    ``lr``: positive float ``h`` or schedule ``t ↦ h_t``. Every coordinate with a non-zero
    partial derivative moves by exactly ``h_t``, so with a constant step the iterates reach an
    ``O(h)`` neighbourhood of a minimizer and then oscillate (use a decaying schedule for
    convergence). Stops when ``‖∇L‖₂ ≤ tol``. ``history["stepsize"]``.
    See also the transform :func:`diffprog.optim.transforms.sign_descent`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = sign_gradient_descent(lambda w: 0.5 * dnp.sum((w - 1.0) ** 2), np.zeros(2),
        ...                           0.25, maxiter=4)
        >>> r.solution.tolist()
        [1.0, 1.0]
    """
    sched = _schedule(lr, "lr")
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    hist["stepsize"] = []
    f, g = prob.value_and_grad(x)
    gn = float(np.linalg.norm(g))
    record(hist, x, f, gn)
    t = 0
    while gn > tol and t < maxiter:
        h = sched(t)
        x = x - h * np.sign(g)
        f, g = prob.value_and_grad(x)
        check_finite("sign_gradient_descent objective", f)
        gn = float(np.linalg.norm(g))
        t += 1
        record(hist, x, f, gn)
        hist["stepsize"].append(h)
    conv = gn <= tol
    return prob.result(x, f, gn, t, conv, "converged" if conv else "maxiter reached", hist)


# --------------------------------------------------------------------------------------------
# OPT-27: majorization–minimization
# --------------------------------------------------------------------------------------------

def majorize_minimize(surrogate_argmin: Callable, x0: Any, fun: Callable | None = None,
                      maxiter: int = 1000, tol: float = 1e-10, args: tuple = (),
                      monotone_tol: float = 1e-12) -> OptResult:
    """Generic majorization–minimization loop ``θ⁺ ∈ argmin_θ' u(θ'; θ)`` (004 §A.1.1
    Lemma A.1, Fig. A.2; notes 003 §14.1.4; Book §16.1 (variational perspective of GD),
    §16.4; OPT-27).

    ``surrogate_argmin(θ, *args)`` returns a minimizer of a majorizer ``u(·; θ) ≥ L`` that is
    tight at θ (``u(θ; θ) = L(θ)``); then ``L(θ⁺) ≤ u(θ⁺; θ) ≤ u(θ; θ) = L(θ)``: the objective
    never increases. Instances: :func:`quadratic_majorizer` (gradient descent with ``h = 1/β``),
    :func:`prox_quadratic_majorizer` (proximal gradient / ISTA). If ``fun(θ, *args)`` is given,
    ``history["value"]`` records ``L`` and a ``RuntimeWarning`` is issued if it increases by
    more than ``monotone_tol·max(1, |L|)`` (the surrogate is then not a majorizer). Stops when
    ``‖θ⁺ − θ‖₂ ≤ tol`` (reported as ``grad_norm``).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: dnp.sum((w - 2.0) ** 2)          # β = 2
        >>> r = majorize_minimize(quadratic_majorizer(f, 2.0), np.zeros(2), fun=f)
        >>> r.solution.tolist()
        [2.0, 2.0]
    """
    if not callable(surrogate_argmin):
        raise TypeError("surrogate_argmin must be callable")
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    x, unravel = flatten(x0)
    check_finite("x0", x)
    nfev = 0

    def value(x):
        nonlocal nfev
        nfev += 1
        return float(fun(unravel(x), *args))

    hist = new_history()
    f = value(x) if fun is not None else math.nan
    res = math.inf
    hist["params"].append(x.copy())
    hist["value"].append(f)
    t, warned = 0, False
    while t < maxiter:
        xn, _ = flatten(surrogate_argmin(unravel(x), *args))
        if xn.shape != x.shape:
            raise ValueError(f"surrogate_argmin returned {xn.size} entries, expected {x.size}")
        check_finite("surrogate_argmin output", xn)
        res = float(np.linalg.norm(xn - x))
        x = xn
        t += 1
        if fun is not None:
            fn = value(x)
            if not warned and fn > f + monotone_tol * max(1.0, abs(f)):
                warnings.warn(f"majorize_minimize: objective increased at iteration {t} "
                              f"({f} → {fn}); the surrogate is not a majorizer",
                              RuntimeWarning, stacklevel=2)
                warned = True
            f = fn
        record(hist, x, f, res)
        if res <= tol:
            break
    hist["grad_norm"].insert(0, math.nan)
    conv = res <= tol
    return OptResult(solution=unravel(x), value=f, grad_norm=res, iterations=t,
                     num_fun_evals=nfev, converged=conv,
                     status="converged" if conv else "maxiter reached", history=hist)


def quadratic_majorizer(fun: Callable, smoothness: float, args: tuple = ()) -> Callable:
    """Minimizer map of the quadratic upper bound of a β-smooth ``L`` (Book §16.1.1; 004
    Lemma A.1; OPT-27): ``u(θ'; θ) = L(θ) + ⟨∇L(θ), θ'−θ⟩ + β/2‖θ'−θ‖²`` is minimized at
    ``θ − ∇L(θ)/β``, so :func:`majorize_minimize` with it is gradient descent with ``h = 1/β``.

    Example: ``majorize_minimize(quadratic_majorizer(f, beta), w0)``.
    """
    beta = check_positive("smoothness", smoothness)
    from ...core.api import grad as _grad

    def step(w):
        x, unravel = flatten(w)
        g = _grad(lambda z: fun(unravel(z), *args))(x)
        return unravel(x - np.asarray(g, dtype=float).reshape(-1) / beta)
    return step


def prox_quadratic_majorizer(smooth_fun: Callable, prox: Callable, smoothness: float,
                             hyperparams_prox: Any = None, args: tuple = ()) -> Callable:
    """Minimizer map of ``u(θ'; θ) = S(θ) + ⟨∇S(θ), θ'−θ⟩ + β/2‖θ'−θ‖² + R(θ')``, i.e.
    ``prox_{R/β}(θ − ∇S(θ)/β)``: one proximal-gradient / ISTA step (Book §16.4.1; 004
    (A.1.34)–(A.1.38); OPT-27). ``prox(x, hyperparams_prox, scaling)`` as in
    :func:`~diffprog.optim.solvers.first_order.proximal_gradient`; acts on the flat vector.

    Example: ``prox_quadratic_majorizer(ls, prox_lasso, L, lam)`` gives the ISTA map.
    """
    beta = check_positive("smoothness", smoothness)
    if not callable(prox):
        raise TypeError("prox must be callable: prox(x, hyperparams, scaling)")
    from ...core.api import grad as _grad

    def step(w):
        x, unravel = flatten(w)
        g = _grad(lambda z: smooth_fun(unravel(z), *args))(x)
        y = x - np.asarray(g, dtype=float).reshape(-1) / beta
        return unravel(np.asarray(prox(y, hyperparams_prox, 1.0 / beta), dtype=float))
    return step


# --------------------------------------------------------------------------------------------
# OPT-51: Anderson acceleration
# --------------------------------------------------------------------------------------------

def anderson_acceleration(fixed_point_fun: Callable, x0: Any, history: int = 5,
                          ridge: float = 1e-5, mixing: float = 1.0, maxiter: int = 1000,
                          tol: float = 1e-8, args: tuple = ()) -> OptResult:
    """Anderson acceleration of the fixed-point iteration ``x = T(x)`` (Book §16.4.2 names it;
    Pollock & Rebholz; OPT-51; as ``jaxopt.AndersonAcceleration``).

    With the last ``m = history`` iterates ``x_i`` and residuals ``r_i = T(x_i) − x_i``::

        α = argmin_{Σα_i = 1} ‖Σ α_i r_i‖² + λ‖α‖²,    x⁺ = Σ α_i (x_i + mixing · r_i)

    (KKT system ``[[0, 1ᵀ], [1, RᵀR + λI]] [η; α] = [1; 0]``). Here ``λ = ridge·max_i ‖r_i‖²``
    is *relative* to the residual scale (jaxopt's ridge is absolute, which stalls acceleration
    once residuals are below √ridge). ``history=1`` (or 0) is the plain (relaxed) iteration
    ``x⁺ = x + mixing·(T(x) − x)``. Stops when ``‖T(x) − x‖₂ ≤ tol`` (``grad_norm``); the
    returned solution is the last ``x`` whose residual was measured. ``iterations`` = number
    of ``T`` evaluations. Works on pytrees (``T`` maps the structure of ``x0`` to itself).
    Wrap a proximal-gradient solver through :func:`prox_grad_fixed_point_fun`.

    Example::

        >>> import numpy as np
        >>> M = np.array([[0.9, 0.05], [0.0, 0.95]]); b = np.array([1.0, 2.0])
        >>> r = anderson_acceleration(lambda x: M @ x + b, np.zeros(2), tol=1e-10)
        >>> bool(np.allclose(r.solution, np.linalg.solve(np.eye(2) - M, b)))
        True
    """
    if not callable(fixed_point_fun):
        raise TypeError("fixed_point_fun must be callable")
    if int(history) != history or history < 0:
        raise ValueError(f"history must be a non-negative integer, got {history!r}")
    m = max(1, int(history))
    ridge = check_positive("ridge", ridge, allow_zero=True)
    mixing = check_positive("mixing", mixing)
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    x, unravel = flatten(x0)
    check_finite("x0", x)

    def T(z):
        out, _ = flatten(fixed_point_fun(unravel(z), *args))
        if out.shape != z.shape:
            raise ValueError(f"fixed_point_fun returned {out.size} entries, expected {z.size}")
        return out

    X: list[np.ndarray] = []
    R: list[np.ndarray] = []
    hist = {"params": [], "grad_norm": [], "value": []}
    res, t, nev = math.inf, 0, 0
    while t < maxiter:
        tx = T(x)
        nev += 1
        r = tx - x
        if not np.all(np.isfinite(r)):
            raise FloatingPointError(f"anderson_acceleration diverged at iteration {t}; "
                                     "try a smaller history, larger ridge or mixing < 1")
        res = float(np.linalg.norm(r))
        hist["params"].append(x.copy())
        hist["grad_norm"].append(res)
        hist["value"].append(math.nan)
        if res <= tol:
            break
        X.append(x)
        R.append(r)
        if len(X) > m:
            X.pop(0)
            R.pop(0)
        k = len(X)
        if k == 1:
            x = x + mixing * r
        else:
            Rm = np.stack(R, axis=1)
            G = Rm.T @ Rm
            lam = ridge * float(np.max(np.diag(G)))
            K = np.zeros((k + 1, k + 1))
            K[0, 1:] = 1.0
            K[1:, 0] = 1.0
            K[1:, 1:] = G + lam * np.eye(k)
            rhs = np.zeros(k + 1)
            rhs[0] = 1.0
            try:
                alpha = np.linalg.solve(K, rhs)[1:]
            except np.linalg.LinAlgError:
                alpha = np.linalg.lstsq(K, rhs, rcond=None)[0][1:]
            Xm = np.stack(X, axis=1)
            x = Xm @ alpha + mixing * (Rm @ alpha)
        t += 1
    conv = res <= tol
    return OptResult(solution=unravel(x), value=math.nan, grad_norm=res, iterations=nev,
                     num_fun_evals=nev, converged=conv,
                     status="converged" if conv else "maxiter reached", history=hist)


def prox_grad_fixed_point_fun(fun: Callable, prox: Callable | None = None,
                              stepsize: float = 1.0, hyperparams_prox: Any = None,
                              args: tuple = ()) -> Callable:
    """Fixed-point map of proximal gradient ``T(w) = prox_{γΩ}(w − γ∇L(w))`` (Book §16.4.2,
    the fixed-point view of prox-grad; OPT-09/OPT-51). ``prox=None``: gradient descent map.
    Feed it to :func:`anderson_acceleration` to accelerate ISTA.

    Example: ``anderson_acceleration(prox_grad_fixed_point_fun(ls, prox_lasso, 1/L, lam), w0)``.
    """
    gamma = check_positive("stepsize", stepsize)
    from ...core.api import grad as _grad

    def T(w):
        x, unravel = flatten(w)
        g = _grad(lambda z: fun(unravel(z), *args))(x)
        y = x - gamma * np.asarray(g, dtype=float).reshape(-1)
        if prox is not None:
            y = np.asarray(prox(y, hyperparams_prox, gamma), dtype=float)
        return unravel(y)
    return T


# --------------------------------------------------------------------------------------------
# OPT-53: linear minimization oracles and Frank–Wolfe
# --------------------------------------------------------------------------------------------

def lmo(C: str, **params: Any) -> Callable:
    """Linear minimization oracle ``g ↦ argmin_{v∈C} ⟨g, v⟩`` (the book's "linear maximization
    oracle" of −g; Book §16.3 and §18 (conjugates: ``∇f*`` of an indicator); OPT-53).

    ``C``: ``"simplex"`` (``value=1``; returns ``value·e_{argmin g}``), ``"l1_ball"``
    (``radius=1``; ``−radius·sign(g_i) e_i``, ``i = argmax |g_i|``), ``"l2_ball"``
    (``−radius·g/‖g‖``), ``"linf_ball"`` (``−radius·sign(g)``) and ``"box"`` (``lower``,
    ``upper``: ``lower`` where ``g > 0``, else ``upper``). Acts on whole arrays (ties: first
    index; ``g = 0`` gives a valid point of C).

    Example::

        >>> import numpy as np
        >>> lmo("simplex")(np.array([0.3, -1.0, 0.5])).tolist()
        [0.0, 1.0, 0.0]
    """
    kind = str(C).lower()
    if kind == "simplex":
        val = check_positive("value", params.pop("value", 1.0))
    elif kind in ("l1_ball", "l2_ball", "linf_ball"):
        rad = check_positive("radius", params.pop("radius", 1.0))
    elif kind == "box":
        if "lower" not in params or "upper" not in params:
            raise ValueError("lmo('box') needs lower=... and upper=...")
        lo = np.asarray(params.pop("lower"), dtype=float)
        hi = np.asarray(params.pop("upper"), dtype=float)
        if np.any(lo > hi):
            raise ValueError("lmo('box'): lower must be ≤ upper")
    else:
        raise ValueError(f"unknown set {C!r}; use 'simplex', 'l1_ball', 'l2_ball', "
                         "'linf_ball' or 'box'")
    if params:
        raise TypeError(f"lmo({C!r}) got unexpected parameters {sorted(params)}")

    def oracle(g: Any) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        check_finite("lmo gradient", g)
        v = np.zeros_like(g)
        flat = v.reshape(-1)
        gf = g.reshape(-1)
        if kind == "simplex":
            flat[int(np.argmin(gf))] = val
        elif kind == "l1_ball":
            i = int(np.argmax(np.abs(gf)))
            flat[i] = -rad * (np.sign(gf[i]) if gf[i] != 0 else 1.0)
        elif kind == "l2_ball":
            nrm = float(np.linalg.norm(gf))
            if nrm > 0:
                v = -rad * g / nrm
        elif kind == "linf_ball":
            v = -rad * np.sign(g)
        else:
            v = np.where(g > 0, lo, hi) + np.zeros_like(g)
        return v
    return oracle


def frank_wolfe(fun: Callable, w0: Any, lmo: Callable, maxiter: int = 1000,
                tol: float = 1e-6, stepsize: Any = "default", smoothness: float | None = None,
                args: tuple = ()) -> OptResult:
    """Frank–Wolfe / conditional gradient (Book §16.3 (LMO oracles), §18.2 (Jaggi 2013);
    OPT-53). ``w0`` must lie in the convex compact set C of the oracle ``lmo``::

        s_t = lmo(∇L(w_t)) = argmin_{s∈C} ⟨∇L(w_t), s⟩,    gap_t = ⟨∇L(w_t), w_t − s_t⟩
        w_{t+1} = w_t + γ_t (s_t − w_t)

    Iterates are convex combinations of points of C, so they stay in C (no projection).
    ``stepsize``: ``"default"`` ``γ_t = 2/(t+2)``; ``"short"`` (needs ``smoothness=β``)
    ``γ_t = min(1, gap_t/(β‖s_t − w_t‖²))``; a float or schedule ``t ↦ γ_t ∈ (0, 1]``.
    ``gap_t ≥ L(w_t) − L*`` is the FW duality gap; with β-smooth convex L and diameter D,
    ``L(w_t) − L* ≤ 2βD²/(t+2)`` and ``min_{s≤t} gap_s = O(βD²/t)``. Stops when
    ``gap_t ≤ tol`` (reported as ``grad_norm``); ``history["gap"]``. ``lmo`` receives the
    gradient with the structure of ``w0``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> r = frank_wolfe(lambda w: dnp.sum(w ** 2), np.array([1.0, 0.0]), lmo("simplex"),
        ...                 stepsize="short", smoothness=2.0)
        >>> np.allclose(r.solution, 0.5)
        True
    """
    if not callable(lmo):
        raise TypeError("lmo must be callable: g ↦ argmin_{s∈C} ⟨g, s⟩ (see lmo('simplex'))")
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    if stepsize == "default":
        def sched(t, gap, d):
            return 2.0 / (t + 2.0)
    elif stepsize == "short":
        if smoothness is None:
            raise ValueError("stepsize='short' needs smoothness=β")
        beta = check_positive("smoothness", smoothness)

        def sched(t, gap, d):
            dd = float(d @ d)
            return 1.0 if dd == 0 else min(1.0, gap / (beta * dd))
    elif callable(stepsize) or isinstance(stepsize, (int, float, np.floating)):
        base = _schedule(stepsize)

        def sched(t, gap, d):
            g = base(t)
            if g > 1:
                raise ValueError(f"Frank-Wolfe stepsize must lie in (0, 1], got {g} at t={t}")
            return g
    else:
        raise ValueError(f"unknown stepsize {stepsize!r}; use 'default', 'short', a float "
                         "or a schedule")
    prob = Problem(fun, w0, args)
    x = prob.x0
    hist = new_history()
    hist.update(gap=[], stepsize=[])
    t = 0
    gap = math.inf
    while True:
        f, g = prob.value_and_grad(x)
        check_finite("frank_wolfe objective", f)
        s, _ = flatten(lmo(prob.unravel(g)))
        if s.shape != x.shape:
            raise ValueError(f"lmo returned {s.size} entries, expected {x.size}")
        d = s - x
        gap = float(-(g @ d))
        record(hist, x, f, gap)
        hist["gap"].append(gap)
        if gap <= tol or t >= maxiter:
            break
        gamma = sched(t, gap, d)
        hist["stepsize"].append(gamma)
        x = x + gamma * d
        t += 1
    conv = gap <= tol
    return prob.result(x, f, gap, t, conv, "converged" if conv else "maxiter reached", hist)


# --------------------------------------------------------------------------------------------
# OPT-54: mirror descent
# --------------------------------------------------------------------------------------------

def _softmax_log(z: np.ndarray, value: float) -> np.ndarray:
    z = z - np.max(z)
    e = np.exp(z)
    return value * e / np.sum(e)


def mirror_descent(fun: Callable, w0: Any, mirror_map: Any = "entropy",
                   bproj: Callable | None = None, stepsize: Any = 0.1, maxiter: int = 1000,
                   tol: float = 1e-10, args: tuple = ()) -> OptResult:
    """Mirror descent (Book §16.3 (Bregman projection oracles), §18.3 (Bregman divergences);
    OPT-54; as ``jaxopt.MirrorDescent``)::

        w⁺ = bproj_{f,C}( ∇f*( ∇f(w) − γ_t ∇L(w) ) )

    ``mirror_map``: ``"entropy"`` (``f(w) = ⟨w, log w⟩``, ``∇f = log``; with ``bproj=None``
    the Bregman (KL) projection onto the simplex ``{w ≥ 0, Σw = Σw0}`` is a normalization:
    exponentiated gradient ``w⁺ ∝ w ⊙ exp(−γ∇L(w))``, computed stably in the log domain;
    ``w0`` must be in that simplex — zero entries stay zero), ``"euclidean"`` (``∇f = ∇f* = id``:
    projected gradient with ``bproj``) or a pair ``(grad_f, grad_f_conj)`` of flat-vector maps.
    ``bproj(y)`` maps the unconstrained point back onto C (identity if ``None``).
    ``stepsize``: positive float or schedule ``t ↦ γ_t``. Stops when ``‖w⁺ − w‖₂ ≤ tol``
    (``grad_norm``). With ``γ_t ∝ 1/√t`` and G-Lipschitz L, the averaged iterate is
    ``O(G √(log P / t))``-optimal on the simplex.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> c = np.array([0.5, 0.1, 0.9])
        >>> r = mirror_descent(lambda w: dnp.sum(c * w), np.ones(3) / 3, stepsize=1.0)
        >>> bool(r.solution[1] > 1 - 1e-8)
        True
    """
    sched = _schedule(stepsize)
    maxiter = check_maxiter(maxiter)
    check_positive("tol", tol, allow_zero=True)
    if bproj is not None and not callable(bproj):
        raise TypeError("bproj must be callable or None")
    prob = Problem(fun, w0, args)
    x = prob.x0
    entropic = isinstance(mirror_map, str) and mirror_map == "entropy"
    if entropic:
        if np.any(x < 0) or not np.sum(x) > 0:
            raise ValueError("entropic mirror descent needs w0 ≥ 0 with a positive sum "
                             "(a point of the scaled simplex)")
        total = float(np.sum(x))
        grad_f = grad_f_conj = None
    elif isinstance(mirror_map, str) and mirror_map == "euclidean":
        def grad_f(z):
            return z
        grad_f_conj = grad_f
    elif (isinstance(mirror_map, (tuple, list)) and len(mirror_map) == 2
          and all(callable(m) for m in mirror_map)):
        grad_f, grad_f_conj = mirror_map
    else:
        raise ValueError("mirror_map must be 'entropy', 'euclidean' or a pair "
                         "(grad_f, grad_f_conj) of callables")
    hist = new_history()
    hist["stepsize"] = []
    f, g = prob.value_and_grad(x)
    record(hist, x, f, float(np.linalg.norm(g)))
    t, change = 0, math.inf
    while t < maxiter:
        gamma = sched(t)
        if entropic:
            with np.errstate(divide="ignore"):
                z = np.log(x) - gamma * g
            xn = _softmax_log(z, total) if bproj is None else np.asarray(
                bproj(np.exp(z)), dtype=float).reshape(-1)
        else:
            y = np.asarray(grad_f_conj(np.asarray(grad_f(x), dtype=float) - gamma * g),
                           dtype=float).reshape(-1)
            xn = y if bproj is None else np.asarray(bproj(y), dtype=float).reshape(-1)
        if xn.shape != x.shape:
            raise ValueError(f"mirror step returned {xn.size} entries, expected {x.size}")
        check_finite("mirror_descent iterate", xn)
        change = float(np.linalg.norm(xn - x))
        x = xn
        f, g = prob.value_and_grad(x)
        check_finite("mirror_descent objective", f)
        t += 1
        record(hist, x, f, change)
        hist["stepsize"].append(gamma)
        if change <= tol:
            break
    conv = change <= tol
    return prob.result(x, f, change, t, conv, "converged" if conv else "maxiter reached", hist)
