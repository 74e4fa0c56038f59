"""Curvature matrices beyond the Hessian: second derivatives, Gauss-Newton, Fisher (Book §9.1–9.3).

- ``second_derivative(f, w, v1, v2) = ∂²f(w)[v1, v2]`` (JVP of a JVP), ``output_hessian`` and
  ``ohvp`` (the Hessian of ``⟨h, u⟩``, §9.5.1);
- Gauss-Newton (§9.2): ``gauss_newton`` (materialized), ``gnvp`` / ``make_gnvp`` (matrix-free,
  Eq. 9.1), ``gn_factor`` (``GN = V Vᵀ``), and the batched (stochastic) forms;
- Fisher information (§9.3): ``fisher`` (exact over a finite support or Monte Carlo from the
  **model**, score-covariance or expected-Hessian form), ``fisher_supervised`` and ``fvp``
  (labels drawn from the model ``p_θ``, ``θ = f(w; x)``), and ``empirical_fisher``, which draws
  from the **data** and is a different matrix (Book Remark 9.1; Kunstner et al. 2019).

Parameters ``w`` may be any pytree; matrices are returned over ``ravel_pytree(w)[0]`` (P×P).
Randomness always comes from an explicit ``rng`` (a ``np.random.Generator`` or an int seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.api import grad, hessian, hvp, jacfwd, jvp, vjp
from ..core.batching import vmap
from ..core.pytree import ravel_pytree, tree_flatten, tree_map

__all__ = [
    "second_derivative",
    "output_hessian",
    "ohvp",
    "gauss_newton",
    "gnvp",
    "make_gnvp",
    "gn_factor",
    "fisher",
    "fisher_supervised",
    "fvp",
    "empirical_fisher",
]


# ----------------------------------------------------------------------------- helpers


def _flat_fun(f: Callable, w: Any):
    w_flat, unravel = ravel_pytree(w)
    return (lambda x: f(unravel(x))), np.asarray(w_flat), unravel


def _flat_out(y) -> Any:
    return ravel_pytree(y)[0]


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def _num_examples(fname: str, X: Any) -> int:
    leaves = tree_flatten(X)[0]
    if not leaves:
        raise ValueError(f"{fname}: the batch is empty")
    n = np.shape(leaves[0])[0]
    for leaf in leaves:
        if np.shape(leaf)[0] != n:
            raise ValueError(f"{fname}: batch leaves have different leading sizes")
    return int(n)


def _example(X: Any, i: int) -> Any:
    return tree_map(lambda a: a[i], X)


def _tree_mean(trees: list) -> Any:
    n = len(trees)
    out = trees[0]
    for t in trees[1:]:
        out = tree_map(lambda a, b: a + b, out, t)
    return tree_map(lambda a: a / n, out)


def _outer_mean(G: np.ndarray) -> np.ndarray:
    G = np.asarray(G).reshape(G.shape[0], -1)
    return G.T @ G / G.shape[0]


# ----------------------------------------------------------------------------- second derivatives


def second_derivative(f: Callable, w: Any, v1: Any, v2: Any) -> Any:
    """Second directional derivative ``∂²f(w)[v1, v2]`` as the JVP of a JVP (Book §9.5.1,
    Prop 9.7).

    ``∂²f(w)[v1, v2] = ∂(w ↦ ∂f(w)[v1])(w)[v2]``; symmetric in ``(v1, v2)`` for smooth f. f may be
    vector-valued (the result has f's output structure).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: w[0] ** 2 * w[1]     # ∂²f[e0, e1] = 2 w0
        >>> float(second_derivative(f, np.array([1.0, 2.0]), np.array([1.0, 0.0]),
        ...                         np.array([0.0, 1.0])))
        2.0
    """
    return jvp(lambda x: jvp(f, (x,), (v1,))[1], (w,), (v2,))[1]


def _project(h: Callable, u: Any) -> Callable:
    u_flat = ravel_pytree(u)[0]
    return lambda x: dnp.vdot(_flat_out(h(x)), u_flat)


def output_hessian(h: Callable, w: Any, u: Any) -> np.ndarray:
    """Generalized Hessian of ``h: R^P → R^Q`` along the output direction u, a P×P matrix
    (Book §9.5.1): ``∂²h(w)*[u] := ∇²⟨h, u⟩(w)``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> h = lambda w: dnp.stack([w[0] * w[1], w[0] ** 2])
        >>> output_hessian(h, np.array([1.0, 2.0]), np.array([1.0, 1.0]))
        array([[2., 1.],
               [1., 0.]])
    """
    g, w_flat, _ = _flat_fun(_project(h, u), w)
    return hessian(g)(w_flat)


def ohvp(h: Callable, w: Any, u: Any, v: Any) -> Any:
    """Output-Hessian-vector product ``∂²h(w)*[u] v = ∇²⟨h, u⟩(w) v`` (Book §9.5.1, Eq. 9.2),
    an HVP of the projected function (no P×P matrix).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> h = lambda w: dnp.stack([w[0] * w[1], w[0] ** 2])
        >>> ohvp(h, np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([1.0, 0.0]))
        array([2., 1.])
    """
    return hvp(_project(h, u), w, v)


# ----------------------------------------------------------------------------- Gauss-Newton


def _gn_single(f: Callable, loss: Callable, w: Any) -> np.ndarray:
    fw, w_flat, _ = _flat_fun(f, w)
    theta = f(w)
    theta_flat, unravel_t = ravel_pytree(theta)
    M, P = int(np.size(theta_flat)), int(np.size(w_flat))
    J = np.reshape(np.asarray(jacfwd(lambda x: _flat_out(fw(x)))(w_flat)), (M, P))
    Hl = np.reshape(np.asarray(hessian(lambda t: loss(unravel_t(t)))(np.asarray(theta_flat))),
                    (M, M))
    return J.T @ Hl @ J


def gauss_newton(f: Callable, loss: Callable, w: Any, batch: Any = None) -> np.ndarray:
    """Gauss-Newton matrix of ``ℓ∘f`` at w, materialized (P×P) through the Jacobian of f
    (Book §9.2.1, Def 9.1; stochastic form §9.2.5).

    ``∇²_GN(ℓ∘f)(w) = ∂f(w)* ∇²ℓ(f(w)) ∂f(w)``. PSD when ℓ is convex (even if f is not), equal
    to the Hessian when f is linear, and ``∇²(ℓ∘f) = GN + Σ_j ∇_jℓ(f(w)) ∇²f_j(w)``.

    With ``batch=(X, Y)`` (pytrees whose leaves share a leading axis N), ``f(w, x)`` and
    ``loss(θ, y)`` take one example, and the result is the mean of the per-example GN matrices
    ``(1/N) Σ_i ∂f(w;x_i)* ∇²ℓ(θ_i; y_i) ∂f(w;x_i)``. For P large use :func:`gnvp`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: dnp.stack([w[0] * w[1], w[1]])
        >>> loss = lambda t: 0.5 * dnp.sum(t ** 2)       # ∇²ℓ = I, so GN = JᵀJ
        >>> gauss_newton(f, loss, np.array([1.0, 2.0]))
        array([[4., 2.],
               [2., 2.]])
    """
    if batch is None:
        return _gn_single(f, loss, w)
    X, Y = _check_batch("gauss_newton", batch)
    N = _num_examples("gauss_newton", X)
    out = 0.0
    for i in range(N):
        x, y = _example(X, i), _example(Y, i)
        out = out + _gn_single(lambda w_, x=x: f(w_, x), lambda t, y=y: loss(t, y), w)
    return out / N


def _check_batch(fname: str, batch: Any):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError(f"{fname}: batch must be a pair (X, Y), got {type(batch).__name__}")
    return batch


def gnvp(f: Callable, loss: Callable, w: Any, v: Any, batch: Any = None) -> Any:
    """Gauss-Newton-vector product without forming GN (Book §9.2.3, Eq. 9.1).

    ``v ↦ ∂f(w)*[∇²ℓ(f(w))[∂f(w)[v]]]``: the JVP of f, the HVP of ℓ at ``θ = f(w)``, then the VJP
    of f. Cost: 2 forward passes and 1 backward pass through f. ``w`` and ``v`` are pytrees of the
    same structure; so is the result. ``batch=(X, Y)`` averages over examples as in
    :func:`gauss_newton`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: dnp.stack([w[0] * w[1], w[1]])
        >>> gnvp(f, lambda t: 0.5 * dnp.sum(t ** 2), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
        array([4., 2.])
    """
    if batch is not None:
        X, Y = _check_batch("gnvp", batch)
        N = _num_examples("gnvp", X)
        outs = []
        for i in range(N):
            x, y = _example(X, i), _example(Y, i)
            outs.append(gnvp(lambda w_, x=x: f(w_, x), lambda t, y=y: loss(t, y), w, v))
        return _tree_mean(outs)
    theta, Jv = jvp(f, (w,), (v,))                 # forward pass 1 (with its tangent)
    HJv = hvp(loss, theta, Jv)                     # curvature of the loss only
    _, f_vjp = vjp(f, w)                           # forward pass 2
    return f_vjp(HJv)[0]                           # backward pass


def make_gnvp(f: Callable, loss: Callable, w: Any, batch: Any = None) -> Callable:
    """Reusable Gauss-Newton linear operator ``v ↦ GN(w) v`` (Book §9.2.3, Eq. 9.1).

    Builds the VJP of f (one forward pass) once; each application then costs one JVP of f
    (a forward pass), one HVP of ℓ and one backward pass: the first application totals
    2 forward + 1 backward passes, later ones 1 forward + 1 backward. Pass the returned function
    to :func:`diffprog.scipy.sparse.linalg.cg` for Gauss-Newton / natural-gradient solves.
    ``batch=(X, Y)``: the batch-mean operator of :func:`gnvp` (one VJP per example is kept).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: dnp.stack([w[0] * w[1], w[1]])
        >>> G = make_gnvp(f, lambda t: 0.5 * dnp.sum(t ** 2), np.array([1.0, 2.0]))
        >>> G(np.array([0.0, 1.0]))
        array([2., 2.])
    """
    if batch is not None:
        X, Y = _check_batch("make_gnvp", batch)
        N = _num_examples("make_gnvp", X)
        ops = []
        for i in range(N):
            x, y = _example(X, i), _example(Y, i)
            ops.append(make_gnvp(lambda w_, x=x: f(w_, x), lambda t, y=y: loss(t, y), w))
        return lambda v: _tree_mean([op(v) for op in ops])
    theta, f_vjp = vjp(f, w)

    def gn_matvec(v: Any) -> Any:
        Jv = jvp(f, (w,), (v,))[1]
        return f_vjp(hvp(loss, theta, Jv))[0]

    return gn_matvec


def gn_factor(f: Callable, loss: Callable, w: Any, rtol: float = 1e-12) -> np.ndarray:
    """Factor ``GN = V Vᵀ`` with V of shape P×R, R ≤ min(P, M) (Book §9.2.4).

    Eigendecompose ``∇²ℓ(f(w)) = Σ_j λ_j u_j u_jᵀ`` (O(M³)); then ``v_j = sqrt(λ_j) ∂f(w)*[u_j]``
    (one VJP per kept eigenpair, at most M). Tiny negative eigenvalues (round-off) are clipped
    to 0, and eigenvalues ``≤ rtol·max λ`` are dropped, so a singular ∇²ℓ (softmax
    cross-entropy: rank ≤ M−1) gives fewer columns and never NaN. Requires convex ℓ at f(w)
    (a clearly negative eigenvalue raises ``ValueError``). Then ``GN v = V (Vᵀ v)``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w: dnp.stack([w[0] * w[1], w[1]])
        >>> V = gn_factor(f, lambda t: 0.5 * dnp.sum(t ** 2), np.array([1.0, 2.0]))
        >>> np.allclose(V @ V.T, [[4.0, 2.0], [2.0, 2.0]])
        True
    """
    fw, w_flat, _ = _flat_fun(f, w)
    theta, f_vjp = vjp(lambda x: _flat_out(fw(x)), w_flat)
    theta = np.asarray(theta)
    unravel_t = ravel_pytree(f(w))[1]
    M = theta.size
    Hl = np.reshape(np.asarray(hessian(lambda t: loss(unravel_t(t)))(theta)), (M, M))
    lam, U = np.linalg.eigh(0.5 * (Hl + Hl.T))
    scale = max(float(np.abs(lam).max(initial=0.0)), np.finfo(float).tiny)
    if lam.min(initial=0.0) < -1e-8 * scale:
        raise ValueError(
            f"gn_factor: the loss Hessian at f(w) has a negative eigenvalue {lam.min():.3e}; "
            "the Gauss-Newton factorization needs a convex loss"
        )
    lam = np.clip(lam, 0.0, None)
    keep = lam > rtol * scale
    cols = [np.sqrt(lam[j]) * np.asarray(f_vjp(U[:, j])[0]) for j in np.flatnonzero(keep)]
    if not cols:
        return np.zeros((w_flat.size, 0))
    return np.stack(cols, axis=1)


# ----------------------------------------------------------------------------- Fisher


_FORMS = ("score", "hessian")


def _check_form(fname: str, form: str) -> None:
    if form not in _FORMS:
        raise ValueError(f"{fname}: form must be one of {_FORMS}, got {form!r}")


def _support_list(fname: str, support: Any) -> list:
    items = list(support)
    if not items:
        raise ValueError(f"{fname}: support is empty")
    return items


def fisher(log_prob: Callable, w: Any, support: Sequence | None = None,
           sample_fn: Callable | None = None, num_samples: int = 1000, rng: Any = None,
           form: str = "score") -> np.ndarray:
    """Fisher information matrix of the model ``q_w`` (P×P over ``ravel_pytree(w)``)
    (Book §9.3.1, Def 9.2; Prop 9.4 for ``form="hessian"``).

    ``F(w) = E_{S∼q_w}[∇_w log q_w(S) ∇_w log q_w(S)ᵀ]`` (``form="score"``), or the expected
    Hessian of the NLL ``E_{S∼q_w}[−∇²_w log q_w(S)]`` (``form="hessian"``; equal for
    twice-differentiable models). S is drawn from the **model**, never from data: the latter is
    :func:`empirical_fisher`, a different matrix.

    ``log_prob(w, s)`` returns ``log q_w(s)``. With a finite ``support`` the expectation is exact
    (weights ``exp(log_prob(w, s))``); otherwise ``sample_fn(w, rng, num_samples)`` must return
    ``num_samples`` samples from ``q_w`` stacked along axis 0, and the expectation is a Monte
    Carlo average (error ``O(1/sqrt(num_samples))``). ``rng``: ``np.random.Generator`` or int
    seed (no global state).

    Example (Bernoulli(σ(w)), F = σ(1−σ))::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.scipy.special import expit
        >>> log_prob = lambda w, s: s * dnp.log(expit(w[0])) + (1 - s) * dnp.log(expit(-w[0]))
        >>> np.round(fisher(log_prob, np.array([0.0]), support=[0.0, 1.0]), 12)
        array([[0.25]])
    """
    _check_form("fisher", form)
    w_flat, unravel = ravel_pytree(w)
    w_flat = np.asarray(w_flat)
    g_lp = lambda x, s: log_prob(unravel(x), s)  # noqa: E731
    if support is not None:
        P = w_flat.size
        F = np.zeros((P, P))
        for s in _support_list("fisher", support):
            q = float(np.exp(np.asarray(g_lp(w_flat, s))))
            if form == "score":
                gs = np.asarray(grad(g_lp)(w_flat, s)).reshape(-1)
                F += q * np.outer(gs, gs)
            else:
                F -= q * np.asarray(hessian(g_lp)(w_flat, s)).reshape(P, P)
        return F
    if sample_fn is None:
        raise ValueError("fisher: give either a finite support or a sample_fn(w, rng, n) that "
                         "samples from the model")
    if int(num_samples) < 1:
        raise ValueError(f"fisher: num_samples must be >= 1, got {num_samples}")
    S = sample_fn(w, _as_rng(rng), int(num_samples))
    if form == "score":
        G = vmap(grad(g_lp), in_axes=(None, 0))(w_flat, S)
        return _outer_mean(np.asarray(G))
    Hs = vmap(hessian(g_lp), in_axes=(None, 0))(w_flat, S)
    P = w_flat.size
    return -np.asarray(Hs).reshape(-1, P, P).mean(axis=0)


def _output_fisher(nll: Callable, theta: np.ndarray, unravel_t: Callable, support, sample_fn,
                   num_samples: int, rng, form: str) -> np.ndarray:
    """Fisher of p_θ in θ (M×M): F_ℓ(θ) = E_{y∼p_θ}[∇_θℓ ∇_θℓᵀ] or E[∇²_θ ℓ]."""
    M = theta.size
    ell = lambda t, y: nll(unravel_t(t), y)  # noqa: E731
    if support is not None:
        F = np.zeros((M, M))
        for y in support:
            p = float(np.exp(-np.asarray(ell(theta, y))))
            if form == "score":
                g = np.asarray(grad(ell)(theta, y)).reshape(-1)
                F += p * np.outer(g, g)
            else:
                F += p * np.asarray(hessian(ell)(theta, y)).reshape(M, M)
        return F
    Ys = sample_fn(unravel_t(theta), rng, num_samples)
    if form == "score":
        return _outer_mean(np.asarray(vmap(grad(ell), in_axes=(None, 0))(theta, Ys)))
    Hs = vmap(hessian(ell), in_axes=(None, 0))(theta, Ys)
    return np.asarray(Hs).reshape(-1, M, M).mean(axis=0)


def _supervised_args(fname, support, sample_fn, num_samples, form):
    _check_form(fname, form)
    if support is None and sample_fn is None:
        raise ValueError(f"{fname}: give either a finite label support or a "
                         "sample_fn(theta, rng, n) that samples labels from p_theta")
    if support is not None:
        support = _support_list(fname, support)
    if int(num_samples) < 1:
        raise ValueError(f"{fname}: num_samples must be >= 1, got {num_samples}")
    return support


def fisher_supervised(f: Callable, nll: Callable, w: Any, X: Any, support: Sequence | None = None,
                      sample_fn: Callable | None = None, num_samples: int = 1000,
                      rng: Any = None, form: str = "score") -> np.ndarray:
    """Supervised Fisher ``F(w) = (1/N) Σ_i ∂f(w;x_i)* F_ℓ(θ_i) ∂f(w;x_i)`` (P×P)
    (Book §9.3.3, Prop 9.5), with labels drawn from the **model** ``p_θ``, ``θ_i = f(w, x_i)``.

    ``nll(θ, y) = −log p_θ(y)``. ``F_ℓ(θ) = E_{y∼p_θ}[∇_θℓ ∇_θℓᵀ]`` is exact over a finite label
    ``support`` (weights ``exp(−nll)``), or a Monte Carlo average over
    ``sample_fn(θ, rng, num_samples)`` (``rng``: Generator or int seed). ``X``: a pytree whose
    leaves share the leading axis N. When ℓ is the NLL of an exponential family in its natural
    parameters θ (softmax cross-entropy on logits, logistic, Gaussian mean) this equals
    :func:`gauss_newton` on the batch (Prop 9.6); otherwise the two differ.

    Example (logistic regression, F = mean σ(1−σ) x xᵀ)::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w, x: dnp.vdot(w, x)
        >>> nll = lambda t, y: dnp.logaddexp(0.0, t) - y * t
        >>> F = fisher_supervised(f, nll, np.zeros(2), np.eye(2), support=[0.0, 1.0])
        >>> np.round(F, 12)
        array([[0.125, 0.   ],
               [0.   , 0.125]])
    """
    support = _supervised_args("fisher_supervised", support, sample_fn, num_samples, form)
    rng = _as_rng(rng)
    w_flat, unravel = ravel_pytree(w)
    w_flat = np.asarray(w_flat)
    N = _num_examples("fisher_supervised", X)
    P = w_flat.size
    F = np.zeros((P, P))
    for i in range(N):
        x = _example(X, i)
        fx = lambda z, x=x: _flat_out(f(unravel(z), x))  # noqa: E731
        theta_tree = f(w, x)
        theta, unravel_t = ravel_pytree(theta_tree)
        theta = np.asarray(theta)
        J = np.asarray(jacfwd(fx)(w_flat)).reshape(theta.size, P)
        Fl = _output_fisher(nll, theta, unravel_t, support, sample_fn, int(num_samples), rng,
                            form)
        F += J.T @ Fl @ J
    return F / N


def fvp(f: Callable, nll: Callable, w: Any, v: Any, X: Any, support: Sequence | None = None,
        sample_fn: Callable | None = None, num_samples: int = 1000, rng: Any = None,
        form: str = "score") -> Any:
    """Supervised Fisher-vector product ``F(w) v`` without the P×P matrix (Book §9.3.3):
    per example a JVP of f, the small M×M output Fisher ``F_ℓ(θ_i)``, and a VJP of f.

    Same arguments as :func:`fisher_supervised`; ``v`` has the pytree structure of ``w``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> f = lambda w, x: dnp.vdot(w, x)
        >>> nll = lambda t, y: dnp.logaddexp(0.0, t) - y * t
        >>> fvp(f, nll, np.zeros(2), np.array([1.0, 0.0]), np.eye(2), support=[0.0, 1.0])
        array([0.125, 0.   ])
    """
    support = _supervised_args("fvp", support, sample_fn, num_samples, form)
    rng = _as_rng(rng)
    N = _num_examples("fvp", X)
    outs = []
    for i in range(N):
        x = _example(X, i)
        fx = lambda w_, x=x: f(w_, x)  # noqa: E731
        theta_tree, Jv = jvp(fx, (w,), (v,))
        theta, unravel_t = ravel_pytree(theta_tree)
        theta = np.asarray(theta)
        Fl = _output_fisher(nll, theta, unravel_t, support, sample_fn, int(num_samples), rng,
                            form)
        FJv = unravel_t(Fl @ np.asarray(ravel_pytree(Jv)[0]))
        outs.append(vjp(fx, w)[1](FJv)[0])
    return _tree_mean(outs)


def empirical_fisher(loss: Callable, w: Any, data: Any) -> np.ndarray:
    """Empirical Fisher ``(1/N) Σ_i ∇_w ℓ(w; s_i) ∇_w ℓ(w; s_i)ᵀ`` over **data** samples s_i
    (Book §9.3.2, Remark 9.1).

    This is **not** the Fisher information: the labels come from the data distribution ρ, not
    from the model q_w, so it neither equals :func:`fisher` nor the Gauss-Newton matrix in
    general (Kunstner, Balles & Hennig 2019, "Limitations of the empirical Fisher
    approximation"). E.g. for logistic regression with every label 1 and σ(xᵀw) = 0.9, each
    example contributes (1−σ)² x xᵀ instead of σ(1−σ) x xᵀ, 9× less. It coincides only in special
    cases (e.g. σ = ½). Use it only deliberately.

    ``loss(w, s)`` is the per-example NLL; ``data`` is a pytree whose leaves share the leading
    axis N (one example per row), e.g. ``(X, Y)`` with ``loss(w, (x, y))``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> loss = lambda w, s: 0.5 * (dnp.vdot(w, s[0]) - s[1]) ** 2
        >>> empirical_fisher(loss, np.zeros(1), (np.array([[1.0], [2.0]]), np.array([1.0, 1.0])))
        array([[2.5]])
    """
    w_flat, unravel = ravel_pytree(w)
    w_flat = np.asarray(w_flat)
    _num_examples("empirical_fisher", data)
    G = vmap(grad(lambda x, s: loss(unravel(x), s)), in_axes=(None, 0))(w_flat, data)
    return _outer_mean(np.asarray(G))
