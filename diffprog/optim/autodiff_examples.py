"""Autodiff examples of Peyré's chapter on automatic differentiation (spec OPT-86…OPT-100).

Peyré notes §14.3 (003) and optimization notes App. A.2–A.3 (004): forward mode by dual
numbers (OPT-86), the feed-forward cost model (OPT-88), the residual MLP block (OPT-91),
a neural-ODE adjoint (OPT-92), the reversible leapfrog integrator (OPT-94), fixed-point and
argmin layers with implicit gradients (OPT-95/96), the envelope theorem ``value_of_min``
(OPT-97) and Sinkhorn's algorithm (OPT-98). Reverse mode, Jacobian modes, scan/BPTT,
checkpointing, matrix JVP rules and softmax live in the engine (``diffprog.grad``,
``diffprog.jacobian``, ``diffprog.scan``, ``diffprog.checkpoint``, ...).

Example::

    >>> d = Dual(2.0, 1.0) * Dual(3.0, 0.0)
    >>> (d.val, d.dot)
    (6.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..core.api import grad, jacrev, vjp
from ..core.custom import custom_vjp, stop_gradient

__all__ = [
    "Dual",
    "SinkhornResult",
    "ad_cost",
    "argmin_layer",
    "dual_grad",
    "fixed_point",
    "leapfrog",
    "leapfrog_inverse",
    "odeint_adjoint",
    "residual_mlp_block",
    "sinkhorn",
    "value_of_min",
]


# ------------------------------------------------------------------------------------------
# OPT-86: dual numbers


def _lift(o: Any) -> Dual:
    return o if isinstance(o, Dual) else Dual(o, 0.0)


class Dual:
    """Dual number ``x + εx′`` with ``ε² = 0`` for forward mode (Peyré notes §14.3.3).

    ``(x+εx′)(y+εy′) = xy + ε(xy′+yx′)``, ``1/(x+εx′) = 1/x − εx′/x²`` and
    ``f(x+εx′) = f(x) + εf′(x)x′`` for ``exp``, ``log``, ``sqrt``, ``sin``, ``cos``, ``tanh``.
    Values may be floats or NumPy arrays (element-wise).

    Example::

        >>> y = Dual(4.0, 1.0).sqrt()
        >>> (float(y.val), float(y.dot))
        (2.0, 0.25)
    """

    __slots__ = ("val", "dot")
    __array_priority__ = 1000

    def __init__(self, val: Any, dot: Any = 0.0) -> None:
        self.val = val
        self.dot = dot

    def __repr__(self) -> str:
        return f"Dual({self.val!r}, {self.dot!r})"

    def __add__(self, o: Any) -> Dual:
        o = _lift(o)
        return Dual(self.val + o.val, self.dot + o.dot)

    __radd__ = __add__

    def __neg__(self) -> Dual:
        return Dual(-self.val, -self.dot)

    def __sub__(self, o: Any) -> Dual:
        return self + (-_lift(o))

    def __rsub__(self, o: Any) -> Dual:
        return _lift(o) - self

    def __mul__(self, o: Any) -> Dual:
        o = _lift(o)
        return Dual(self.val * o.val, self.val * o.dot + o.val * self.dot)

    __rmul__ = __mul__

    def reciprocal(self) -> Dual:
        """``1/(x+εx′) = 1/x − εx′/x²``."""
        return Dual(1.0 / self.val, -self.dot / self.val ** 2)

    def __truediv__(self, o: Any) -> Dual:
        return self * _lift(o).reciprocal()

    def __rtruediv__(self, o: Any) -> Dual:
        return _lift(o) * self.reciprocal()

    def __pow__(self, p: Any) -> Dual:
        if isinstance(p, Dual):
            return (self.log() * p).exp()
        return Dual(self.val ** p, p * self.val ** (p - 1) * self.dot)

    def _chain(self, f: Any, df: Any) -> Dual:
        return Dual(f, df * self.dot)

    def exp(self) -> Dual:
        e = np.exp(self.val)
        return self._chain(e, e)

    def log(self) -> Dual:
        return self._chain(np.log(self.val), 1.0 / self.val)

    def sqrt(self) -> Dual:
        s = np.sqrt(self.val)
        return self._chain(s, 0.5 / s)

    def sin(self) -> Dual:
        return self._chain(np.sin(self.val), np.cos(self.val))

    def cos(self) -> Dual:
        return self._chain(np.cos(self.val), -np.sin(self.val))

    def tanh(self) -> Dual:
        t = np.tanh(self.val)
        return self._chain(t, 1.0 - t ** 2)


def dual_grad(f: Callable, *xs: float) -> tuple[float, list[float]]:
    """Full gradient by ``p`` forward passes of dual numbers, one per input (Peyré notes §14.3.3).

    Returns ``(f(x), [∂f/∂x_1, …, ∂f/∂x_p])``; cost ``p ×`` one evaluation.

    Example::

        >>> dual_grad(lambda x, y: x * y, 2.0, 3.0)
        (6.0, [3.0, 2.0])
    """
    val = None
    g = []
    for i in range(len(xs)):
        out = f(*[Dual(x, 1.0 if j == i else 0.0) for j, x in enumerate(xs)])
        out = _lift(out)
        val = out.val
        g.append(out.dot)
    return val, g


# ------------------------------------------------------------------------------------------
# OPT-88: cost model of the Jacobian of a chain


def ad_cost(dims: Sequence[int], mode: str) -> int:
    """Multiply-count of ``∂f = A_t⋯A_1`` with ``A_k ∈ ℝ^{n_k×n_{k−1}}`` (Peyré notes §14.3.5).

    Forward: ``n_0 Σ_{k=1}^{t−1} n_k n_{k+1}``; reverse: ``n_t Σ_{k=0}^{t−2} n_k n_{k+1}``.
    ``dims = (n_0, …, n_t)``; ``mode`` is ``'fwd'``, ``'rev'`` or ``'auto'`` (the cheaper).

    Example::

        >>> ad_cost((1000, 100, 10, 1), "fwd"), ad_cost((1000, 100, 10, 1), "rev")
        (1010000, 101000)
    """
    n = [int(d) for d in dims]
    t = len(n) - 1
    if t < 1:
        raise ValueError("ad_cost: dims needs at least two entries")
    fwd = n[0] * sum(n[k] * n[k + 1] for k in range(1, t))
    rev = n[t] * sum(n[k] * n[k + 1] for k in range(0, t - 1))
    if mode == "fwd":
        return fwd
    if mode == "rev":
        return rev
    if mode == "auto":
        return min(fwd, rev)
    raise ValueError(f"ad_cost: mode must be 'fwd', 'rev' or 'auto', got {mode!r}")


# ------------------------------------------------------------------------------------------
# OPT-91: residual block


def residual_mlp_block(W1: Any, W2: Any, rho: Callable) -> Callable:
    """Residual block ``h(x) = x + W2ᵀρ(W1 x)`` with ``W1, W2 ∈ ℝ^{n×q}`` (Peyré notes §14.3.7).

    With ``W2 = −τW1`` and ``ρ = ψ′``, ``h(x) = x − τ∇E(x)`` for ``E(x) = Σ_i ψ((W1x)_i)``:
    one gradient step. Differentiable in ``x`` (and in ``W1, W2`` when they are traced).

    Example::

        >>> import numpy as np
        >>> h = residual_mlp_block(np.eye(2), np.zeros((2, 2)), np.tanh)
        >>> h(np.array([1.0, 2.0]))
        array([1., 2.])
    """
    def h(x: Any) -> Any:
        return x + W2.T @ rho(W1 @ x)
    return h


# ------------------------------------------------------------------------------------------
# OPT-92: neural ODE with the continuous adjoint


def _rk4(fun: Callable, y: np.ndarray, t: float, dt: float) -> np.ndarray:
    k1 = fun(y, t)
    k2 = fun(y + 0.5 * dt * k1, t + 0.5 * dt)
    k3 = fun(y + 0.5 * dt * k2, t + 0.5 * dt)
    k4 = fun(y + dt * k3, t + dt)
    return y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def odeint_adjoint(u: Callable, x0: Any, theta: Any, T: float, n_steps: int = 200,
                   grad_L: Callable | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neural ODE ``ẋ = u(x, θ, t)`` on ``[0, T]`` and its continuous-adjoint gradient.

    Peyré notes §14.3.6 (14.25)–(14.26). Adjoint ``ż = −[∂_xu]ᵀz`` backward from
    ``z(T) = ∇_xL(x(T))`` and ``∇_θf = ∫₀ᵀ [∂_θu]ᵀz dt`` (``∇_θL = 0`` here), integrated by RK4
    on the augmented state ``(x, z, g)`` backward in time (no stored trajectory). ``grad_L``
    maps ``x(T)`` to ``∇_xL``; default ``L = Σ x(T)``. Returns ``(x(T), ∇_{x0}f, ∇_θf)``.

    Example::

        >>> import numpy as np
        >>> xT, gx0, gth = odeint_adjoint(lambda x, th, t: th * x, np.array([1.0]),
        ...                               np.array([0.5]), 1.0)
        >>> round(float(gth[0]), 6)  # T x0 e^{θT}
        1.648721
    """
    x0 = np.asarray(x0, dtype=float)
    theta = np.asarray(theta, dtype=float)
    if n_steps < 1:
        raise ValueError("odeint_adjoint: n_steps must be >= 1")
    dt = float(T) / n_steps
    n, p = x0.size, theta.size

    def fwd(x: np.ndarray, t: float) -> np.ndarray:
        return np.asarray(u(x, theta, t), dtype=float)

    x = x0
    for k in range(n_steps):
        x = _rk4(fwd, x, k * dt, dt)
    xT = x
    z = np.ones_like(xT) if grad_L is None else np.asarray(grad_L(xT), dtype=float)

    def aug(y: np.ndarray, t: float) -> np.ndarray:
        xx = y[:n].reshape(x0.shape)
        zz = y[n:2 * n].reshape(x0.shape)
        f, f_vjp = vjp(lambda a, b: u(a, b, t), xx, theta)
        gx, gth = f_vjp(zz)
        # backward time s = T - t: dx/ds = -u, dz/ds = [∂_xu]ᵀz, dg/ds = [∂_θu]ᵀz
        return np.concatenate([-np.ravel(f), np.ravel(gx), np.ravel(gth)])

    y = np.concatenate([np.ravel(xT), np.ravel(z), np.zeros(p)])
    for k in range(n_steps):
        t = T - k * dt
        y = _rk4(lambda yy, s: aug(yy, T - s), y, T - t, dt)
    return xT, y[n:2 * n].reshape(x0.shape), y[2 * n:].reshape(theta.shape)


# ------------------------------------------------------------------------------------------
# OPT-94: leapfrog


def _theta_at(theta: Any, t: float) -> Any:
    return theta(t) if callable(theta) else theta


def leapfrog(F: Callable, G: Callable, r0: Any, s0: Any, theta: Any, tau: float,
             n: int) -> tuple[Any, Any]:
    """Leapfrog (symplectic) integrator on ``x = (r, s)`` (Peyré notes §14.3.7).

    ``r_{k+1} = r_k + τF(s_k, θ(τk), τk)``,
    ``s_{k+1} = s_k + τG(r_{k+1}, θ(τ(k+½)), τ(k+½))``. ``theta`` is a constant or a
    callable ``t ↦ θ(t)``. It is exactly invertible (:func:`leapfrog_inverse`), so backprop
    can recompute states instead of storing them.

    Example::

        >>> r, s = leapfrog(lambda s, th, t: -s, lambda r, th, t: r, 1.0, 0.0, None, 0.1, 3)
        >>> leapfrog_inverse(lambda s, th, t: -s, lambda r, th, t: r, r, s, None, 0.1, 3)
        (1.0, 0.0)
    """
    r, s = r0, s0
    for k in range(int(n)):
        t0, th = tau * k, tau * (k + 0.5)
        r = r + tau * F(s, _theta_at(theta, t0), t0)
        s = s + tau * G(r, _theta_at(theta, th), th)
    return r, s


def leapfrog_inverse(F: Callable, G: Callable, rn: Any, sn: Any, theta: Any, tau: float,
                     n: int) -> tuple[Any, Any]:
    """Exact inverse of :func:`leapfrog` (Peyré notes §14.3.7).

    ``s_k = s_{k+1} − τG(r_{k+1}, θ(τ(k+½)), τ(k+½))``, ``r_k = r_{k+1} − τF(s_k, θ(τk), τk)``
    for ``k = n−1, …, 0``; recovers ``(r_0, s_0)`` up to rounding.

    Example::

        >>> leapfrog_inverse(lambda s, th, t: s, lambda r, th, t: r, 1.0, 1.0, None, 1.0, 0)
        (1.0, 1.0)
    """
    r, s = rn, sn
    for k in reversed(range(int(n))):
        t0, th = tau * k, tau * (k + 0.5)
        s = s - tau * G(r, _theta_at(theta, th), th)
        r = r - tau * F(s, _theta_at(theta, t0), t0)
    return r, s


# ------------------------------------------------------------------------------------------
# OPT-95/96: implicit layers


def _as_vec(x: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def fixed_point(h: Callable, x0: Any, theta: Any, n_iter: int = 1000,
                tol: float = 1e-14) -> Any:
    """Fixed-point layer ``x*(θ) = h(x*, θ)`` with an implicit gradient (Peyré notes §14.3.7).

    Forward: iterate ``x ← h(x, θ)`` (``n_iter`` steps or until ``‖Δx‖ ≤ tol``). Backward
    (custom VJP, no stored iterates): ``∂x* = (I − ∂_xh)⁻¹∂_θh``, so the cotangent ``g`` maps
    to ``[∂_θh]ᵀw`` with ``(I − ∂_xh)ᵀw = g`` (one dense linear solve). ``x0`` is not
    differentiated.

    Example::

        >>> import numpy as np, diffprog
        >>> float(diffprog.grad(lambda th: fixed_point(lambda x, t: 0.5 * x + t, 0.0, th))(1.0))
        2.0
    """
    x_init = np.asarray(x0, dtype=float)

    def solve(th: Any) -> np.ndarray:
        x = x_init
        for _ in range(int(n_iter)):
            x_new = np.asarray(h(x, th), dtype=float)
            done = np.max(np.abs(x_new - x), initial=0.0) <= tol
            x = x_new
            if done:
                break
        return x

    @custom_vjp
    def layer(th: Any) -> Any:
        return solve(th)

    def fwd(th: Any) -> tuple[Any, Any]:
        x = solve(th)
        return x, (x, th)

    def bwd(res: Any, g: Any) -> tuple[Any]:
        x, th = res
        n = x.size
        A = np.asarray(jacrev(lambda y: h(y, th))(x), dtype=float).reshape(n, n)
        w = np.linalg.solve(np.eye(n) - A.T, _as_vec(g).ravel())
        _, h_vjp = vjp(lambda t: h(x, t), th)
        return (h_vjp(w.reshape(x.shape))[0],)

    layer.defvjp(fwd, bwd)
    return layer(theta)


def _gd_solver(E: Callable, x0: Any, tau: float, n_iter: int) -> Callable:
    def solver(th: Any) -> np.ndarray:
        gE = grad(E, argnums=0)
        x = np.asarray(x0, dtype=float)
        for _ in range(n_iter):
            x = x - tau * np.asarray(gE(x, th), dtype=float)
        return x
    return solver


def argmin_layer(E: Callable, theta: Any, inner_solver: Callable | None = None,
                 x0: Any = 0.0, tau: float = 0.1, n_iter: int = 500) -> Any:
    """Argmin layer ``x(θ) = argmin_x E(x, θ)`` with an implicit gradient (Peyré notes §14.3.7).

    ``inner_solver(θ) → x*`` (default: gradient descent ``x ← x − τ∇_xE`` from ``x0``).
    Backward: ``g ↦ −(∂²E/∂x∂θ)ᵀ(∂²E/∂x²)⁻¹g`` (one dense Hessian solve), so with
    ``f(θ) = L(x(θ), θ)`` reverse mode returns ``−(∂²E/∂x∂θ)ᵀ(∂²_xE)⁻¹∇_xL + ∇_θL``.

    Example::

        >>> import diffprog
        >>> E = lambda x, t: 0.5 * (x - t) ** 2 + 0.5 * x ** 2
        >>> round(float(diffprog.grad(lambda t: argmin_layer(E, t))(1.0)), 8)
        0.5
    """
    solver = inner_solver if inner_solver is not None else _gd_solver(E, x0, tau, n_iter)

    @custom_vjp
    def layer(th: Any) -> Any:
        return np.asarray(solver(th), dtype=float)

    def fwd(th: Any) -> tuple[Any, Any]:
        x = np.asarray(solver(th), dtype=float)
        return x, (x, th)

    def bwd(res: Any, g: Any) -> tuple[Any]:
        x, th = res
        n = x.size
        gx = grad(E, argnums=0)
        H = np.asarray(jacrev(lambda y: gx(y, th))(x), dtype=float).reshape(n, n)
        w = np.linalg.solve(H, _as_vec(g).ravel())
        _, m_vjp = vjp(lambda t: gx(x, t), th)
        return (-m_vjp(w.reshape(x.shape))[0],)

    layer.defvjp(fwd, bwd)
    return layer(theta)


# ------------------------------------------------------------------------------------------
# OPT-97: envelope theorem


def value_of_min(E: Callable, theta: Any, inner_solver: Callable | None = None,
                 x0: Any = 0.0, tau: float = 0.1, n_iter: int = 500) -> Any:
    """``f*(θ) = min_x E(x, θ)`` whose gradient is ``∇_θE(x*(θ), θ)`` (Danskin / envelope).

    Peyré notes (14.32); optimization notes App. A.3.1 (A.3.23):
    ``∇_θ[min_x E(x,θ)] = ∇_θE(stop_gradient(x*(θ)), θ)`` for a unique minimizer. The inner
    solver runs on ``stop_gradient(θ)`` (default: gradient descent from ``x0``); no derivative
    flows through it.

    Example::

        >>> import diffprog
        >>> E = lambda x, t: 0.5 * x ** 2 - t * x
        >>> float(diffprog.grad(lambda t: value_of_min(E, t, lambda t: t))(3.0))
        -3.0
    """
    solver = inner_solver if inner_solver is not None else _gd_solver(E, x0, tau, n_iter)
    x_star = stop_gradient(solver(stop_gradient(theta)))
    return E(x_star, theta)


# ------------------------------------------------------------------------------------------
# OPT-98: Sinkhorn


class SinkhornResult(NamedTuple):
    """Result of :func:`sinkhorn`.

    Attributes:
        u, v: scalings, ``P = diag(u) K diag(v)``.
        value: ``E = ε(⟨a,log u⟩ + ⟨b,log v⟩ − ⟨Ku, v⟩)``.
        grad_a, grad_b: envelope gradients ``ε log u``, ``ε log v``.
        n_iter: iterations run.

    Example::

        >>> import numpy as np
        >>> sinkhorn(np.ones(2) / 2, np.ones(2) / 2, np.eye(2) + 0.1, 50).n_iter
        50
    """

    u: np.ndarray
    v: np.ndarray
    value: float
    grad_a: np.ndarray
    grad_b: np.ndarray
    n_iter: int


def _lse_rows(M: np.ndarray) -> np.ndarray:
    m = np.max(M, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return (m + np.log(np.sum(np.exp(M - m), axis=1, keepdims=True)))[:, 0]


def sinkhorn(a: Any, b: Any, K: Any, n_iter: int = 1000, eps: float = 1.0,
             tol: float = 0.0) -> SinkhornResult:
    """Sinkhorn scalings ``u = a/(Kv)``, ``v = b/(Kᵀu)`` from ``(1_n, 1_m)`` (Peyré notes §14.3.7).

    Iterated in the log domain (``log u = log a − LSE_j(log K_ij + log v_j)``) for stability
    with tiny entries of ``K = e^{−C/ε}``. The value is
    ``E = ε(⟨a,log u⟩ + ⟨b,log v⟩ − ⟨Ku,v⟩)``, the dual OT value with potentials
    ``f = ε log u``, ``g = ε log v``; by the envelope theorem ``∇_aE = ε log u`` and
    ``∇_bE = ε log v`` (unique along ``Σda = Σdb``; the ε scaling fixes the notes' errata).
    Stops early when the marginal error ``‖v⊙Kᵀu − b‖₁ ≤ tol``.

    Example::

        >>> import numpy as np
        >>> r = sinkhorn(np.array([.5, .5]), np.array([.5, .5]), np.ones((2, 2)), 10)
        >>> np.allclose(r.u * (np.ones((2, 2)) @ r.v), 0.5)
        True
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    K = np.asarray(K, dtype=float)
    if K.shape != (a.size, b.size):
        raise ValueError(f"sinkhorn: K must have shape {(a.size, b.size)}, got {K.shape}")
    with np.errstate(divide="ignore"):
        logK = np.log(K)
    la, lb = np.log(a), np.log(b)
    lv = np.zeros(b.size)
    lu = np.zeros(a.size)
    it = 0
    for k in range(1, int(n_iter) + 1):
        it = k
        lu = la - _lse_rows(logK + lv[None, :])
        lv = lb - _lse_rows(logK.T + lu[None, :])
        if tol > 0.0:
            err = np.sum(np.abs(np.exp(lu + _lse_rows(logK + lv[None, :])) - a))
            if err <= tol:
                break
    u, v = np.exp(lu), np.exp(lv)
    value = eps * (float(a @ lu) + float(b @ lv) - float(u @ K @ v))
    return SinkhornResult(u, v, value, eps * lu, eps * lv, it)

