"""Randomized estimators of curvature and gradients (Book §8.7 and §9.8).

- **Girard–Hutchinson** (Book §9.8.1): for an isotropic probe ω (``E[ωωᵀ] = I``, Rademacher or
  standard normal), ``E⟨ω, Aω⟩ = tr(A)`` and ``E[ω ⊙ Aω] = diag(A)`` (Bekas et al. 2007; the
  book's "Diag(A)" is a typo for the vector ``diag(A)``). :func:`hutchinson_trace` and
  :func:`hutchinson_diag` take any matvec; :func:`hessian_trace`, :func:`hessian_diag_estimate`,
  :func:`gn_trace` and :func:`gn_diag_estimate` build the matvec from HVPs / GNVPs and evaluate all
  ``S`` probes in one ``vmap``-ed call.
- **Bartlett** (Book §9.8.2–9.8.3): for the NLL of an exponential family,
  ``∇²_GN L = E_{Y∼p_θ}[∇L(w;x,Y) ∇L(w;x,Y)ᵀ]``. :func:`gn_mc_factor` returns ``V`` with
  ``GN ≈ VVᵀ``; :func:`gn_diag_mc` estimates ``diag(GN)`` from individual gradients, or from the
  gradient of the averaged loss (``S·∇L̄ ⊙ ∇L̄``, unbiased by Bartlett's first identity).
- **Forward gradient** (Book §8.7, Prop. 8.2): ``∇f(μ) = E_Z[⟨∇f(μ), Z⟩ Z]`` for
  ``Z ∼ N(0, I)``; :func:`forward_gradient` uses JVPs only.

Randomness always comes from the ``rng`` argument (a ``numpy.random.Generator`` or an int seed),
never from global state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.api import grad, hvp, jvp, vjp
from ..core.batching import vmap

__all__ = [
    "Categorical",
    "UnitNormal",
    "forward_gradient",
    "gn_diag_estimate",
    "gn_diag_mc",
    "gn_mc_factor",
    "gn_trace",
    "hessian_diag_estimate",
    "hessian_trace",
    "hutchinson_diag",
    "hutchinson_trace",
]

_DISTS = ("rademacher", "normal")


# --------------------------------------------------------------------------- helpers
def _rng(fname: str, rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{fname}: rng must be a numpy.random.Generator or an int seed, got "
        f"{type(rng).__name__} (global random state is never used)"
    )


def _check_samples(fname: str, num_samples: Any, what: str = "num_samples") -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(f"{fname}: {what} must be an int >= 1, got {num_samples!r}")
    if num_samples < 1:
        raise ValueError(f"{fname}: {what} must be >= 1, got {num_samples}")
    return int(num_samples)


def _probes(fname: str, rng: np.random.Generator, shape: tuple, dist: str) -> np.ndarray:
    if dist == "rademacher":
        return rng.integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0
    if dist in ("normal", "gaussian"):
        return rng.standard_normal(size=shape)
    raise ValueError(f"{fname}: dist must be one of {_DISTS}, got {dist!r}")


def _check_dist(fname: str, dist: str) -> None:
    if dist not in ("rademacher", "normal", "gaussian"):
        raise ValueError(f"{fname}: dist must be one of {_DISTS}, got {dist!r}")


def _apply(fname: str, matvec: Any, omegas: np.ndarray, batched: bool) -> np.ndarray:
    """Return ``A ω_i`` for every row ``ω_i`` of ``omegas`` (shape ``(S, dim)``)."""
    if isinstance(matvec, np.ndarray):
        if matvec.ndim != 2 or matvec.shape[0] != matvec.shape[1]:
            raise ValueError(f"{fname}: the matrix must be square, got shape {matvec.shape}")
        if matvec.shape[1] != omegas.shape[1]:
            raise ValueError(
                f"{fname}: dim={omegas.shape[1]} does not match the matrix shape {matvec.shape}"
            )
        return omegas @ matvec.T
    if not callable(matvec):
        raise TypeError(
            f"{fname}: matvec must be a callable v -> A v or a square ndarray, "
            f"got {type(matvec).__name__}"
        )
    if batched:
        out = np.asarray(matvec(omegas.T)).T
    else:
        out = np.stack([np.asarray(matvec(o)) for o in omegas])
    if out.shape != omegas.shape:
        raise ValueError(
            f"{fname}: matvec returned shape {out.shape[1:]} for probes of shape "
            f"{omegas.shape[1:]}; A must be square (dim x dim)"
        )
    return out


def _chunks(total: int, chunk_size: int | None):
    step = total if chunk_size is None else max(1, int(chunk_size))
    for start in range(0, total, step):
        yield start, min(total, start + step)


# --------------------------------------------------------------------------- Hutchinson
def hutchinson_trace(
    matvec: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    dim: int,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    batched: bool = False,
) -> float:
    """Girard–Hutchinson estimate of ``tr(A)`` from matvecs (Book §9.8.1).

    ``tr(A) ≈ (1/S) Σ_{i=1}^S ⟨ω_i, A ω_i⟩`` with i.i.d. isotropic probes ω_i
    (``dist="rademacher"``: entries ±1; ``dist="normal"``: N(0, I)). Unbiased, with variance
    ``2 Σ_{i≠j} A_ij² / S`` (Rademacher, symmetric A) or ``2‖A‖_F² / S`` (normal).

    Args:
        matvec: ``v -> A v`` for ``v`` of shape ``(dim,)``, or a square ndarray ``A``.
        dim: size of A.
        rng: a ``numpy.random.Generator`` or an int seed.
        num_samples: ``S >= 1``, the number of probes (matvecs).
        dist: ``"rademacher"`` or ``"normal"``.
        batched: if True, ``matvec`` takes a ``(dim, S)`` matrix of probes and returns ``A Ω``
            (one matrix product instead of S calls).

    Example (Rademacher probes are exact for a diagonal A, even with S=1)::

        >>> import numpy as np
        >>> from diffprog.derivatives.estimators import hutchinson_trace
        >>> A = np.diag([1.0, 2.0, 3.0])
        >>> hutchinson_trace(lambda v: A @ v, 3, rng=0, num_samples=1)
        6.0
    """
    fname = "hutchinson_trace"
    S = _check_samples(fname, num_samples)
    _check_dist(fname, dist)
    dim = _check_samples(fname, dim, "dim")
    omegas = _probes(fname, _rng(fname, rng), (S, dim), dist)
    av = _apply(fname, matvec, omegas, batched)
    return float(np.einsum("si,si->", omegas, av) / S)


def hutchinson_diag(
    matvec: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    dim: int,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    batched: bool = False,
) -> np.ndarray:
    """Bekas et al. (2007) estimate of ``diag(A)`` from matvecs (Book §9.8.1).

    ``diag(A) ≈ (1/S) Σ_{i=1}^S ω_i ⊙ A ω_i`` (the book's "Diag(A)" is the vector ``diag(A)``).
    With Rademacher probes entry ``i`` has variance ``Σ_{j≠i} A_ij² / S``. Arguments as in
    :func:`hutchinson_trace`.

    Example::

        >>> import numpy as np
        >>> from diffprog.derivatives.estimators import hutchinson_diag
        >>> hutchinson_diag(np.diag([1.0, -2.0]), 2, rng=0)
        array([ 1., -2.])
    """
    fname = "hutchinson_diag"
    S = _check_samples(fname, num_samples)
    _check_dist(fname, dist)
    dim = _check_samples(fname, dim, "dim")
    omegas = _probes(fname, _rng(fname, rng), (S, dim), dist)
    av = _apply(fname, matvec, omegas, batched)
    return np.einsum("si,si->i", omegas, av) / S


def _hvp_batch(f: Callable, w: np.ndarray, method: str) -> Callable[[np.ndarray], np.ndarray]:
    def many(omegas: np.ndarray) -> np.ndarray:
        return np.asarray(vmap(lambda v: hvp(f, w, v, method=method))(omegas))

    return many


def _gnvp_batch(f: Callable, loss: Callable, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Batched Gauss-Newton-vector products ``Jᵀ ∇²loss(f(w)) J v`` (JVP, HVP, VJP; Book §9.2)."""
    theta, f_vjp = vjp(f, w)
    theta = np.asarray(theta)

    def one(v):
        jv = jvp(f, (w,), (v,))[1]
        return f_vjp(hvp(loss, theta, jv))[0]

    def many(omegas: np.ndarray) -> np.ndarray:
        return np.asarray(vmap(one)(omegas))

    return many


def _curvature_estimate(fname, many, w, rng, num_samples, dist, chunk_size, kind):
    S = _check_samples(fname, num_samples)
    _check_dist(fname, dist)
    w = np.asarray(w, dtype=np.float64) if not isinstance(w, np.ndarray) else w
    gen = _rng(fname, rng)
    acc = np.zeros(w.shape) if kind == "diag" else 0.0
    for a, b in _chunks(S, chunk_size):
        om = _probes(fname, gen, (b - a, *w.shape), dist)
        prod = om * many(om)
        acc = acc + (prod.sum(axis=0) if kind == "diag" else float(prod.sum()))
    return acc / S


def hessian_trace(
    f: Callable,
    w: np.ndarray,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    method: str = "fwd-rev",
    chunk_size: int | None = None,
) -> float:
    """Hutchinson estimate of ``tr ∇²f(w)`` from Hessian-vector products (Book §9.8.1, §9.1).

    ``tr ∇²f(w) ≈ (1/S) Σ_i ⟨ω_i, ∇²f(w) ω_i⟩``; the S HVPs (``method`` as in
    :func:`diffprog.hvp`) run as one ``vmap``-ed call, or in blocks of ``chunk_size`` probes.
    ``w`` is an array of any shape; ``f(w)`` a real scalar.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import hessian_trace
        >>> hessian_trace(lambda w: dnp.sum(w ** 2), np.ones(4), rng=0)   # ∇² = 2 I
        8.0
    """
    return _curvature_estimate(
        "hessian_trace", _hvp_batch(f, w, method), w, rng, num_samples, dist, chunk_size, "trace"
    )


def hessian_diag_estimate(
    f: Callable,
    w: np.ndarray,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    method: str = "fwd-rev",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Hutchinson/Bekas estimate of ``diag ∇²f(w)`` from HVPs (Book §9.8.1).

    ``diag ∇²f(w) ≈ (1/S) Σ_i ω_i ⊙ ∇²f(w) ω_i``, all S HVPs in one ``vmap``-ed call. Returns an
    array shaped like ``w``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import hessian_diag_estimate
        >>> hessian_diag_estimate(lambda w: dnp.sum(w ** 3), np.array([1.0, 2.0]), rng=0)
        array([ 6., 12.])
    """
    return _curvature_estimate(
        "hessian_diag_estimate", _hvp_batch(f, w, method), w, rng, num_samples, dist,
        chunk_size, "diag",
    )


def gn_trace(
    f: Callable,
    loss: Callable,
    w: np.ndarray,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    chunk_size: int | None = None,
) -> float:
    """Hutchinson estimate of the trace of the Gauss-Newton matrix (Book §9.8.1, §9.2).

    For ``L(w) = loss(f(w))`` the Gauss-Newton matrix is ``G = J_fᵀ ∇²loss(f(w)) J_f``; each
    GNVP is a JVP of f, an HVP of the loss and a VJP of f, ``tr G ≈ (1/S) Σ_i ⟨ω_i, G ω_i⟩``.

    Example (for a linear ``f`` the GN matrix is ``Aᵀ A`` here)::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import gn_trace
        >>> A = np.diag([1.0, 2.0])
        >>> gn_trace(lambda w: A @ w, lambda t: 0.5 * dnp.sum(t ** 2), np.ones(2), rng=0)
        5.0
    """
    return _curvature_estimate(
        "gn_trace", _gnvp_batch(f, loss, w), w, rng, num_samples, dist, chunk_size, "trace"
    )


def gn_diag_estimate(
    f: Callable,
    loss: Callable,
    w: np.ndarray,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    dist: str = "rademacher",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Hutchinson/Bekas estimate of ``diag(J_fᵀ ∇²loss(f(w)) J_f)`` from GNVPs (Book §9.8.1).

    ``diag G ≈ (1/S) Σ_i ω_i ⊙ G ω_i``; see :func:`gn_trace`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import gn_diag_estimate
        >>> A = np.diag([1.0, 2.0])
        >>> gn_diag_estimate(lambda w: A @ w, lambda t: 0.5 * dnp.sum(t ** 2), np.ones(2), rng=0)
        array([1., 4.])
    """
    return _curvature_estimate(
        "gn_diag_estimate", _gnvp_batch(f, loss, w), w, rng, num_samples, dist, chunk_size,
        "diag",
    )


# --------------------------------------------------------------------------- Bartlett
class Categorical:
    """Categorical distribution with logits θ (softmax); an exponential family (Book §9.8.2).

    Labels are one-hot vectors (so that they can be batched by ``vmap``);
    ``nll(θ, y) = -⟨y, log_softmax(θ)⟩`` summed over any leading (batch) axes of θ.

    Example::

        >>> import numpy as np
        >>> from diffprog.derivatives.estimators import Categorical
        >>> labels, probs = Categorical().enumerate(np.zeros(2))
        >>> probs
        array([0.5, 0.5])
    """

    def nll(self, theta: Any, y: Any) -> Any:
        from .. import numpy as dnp
        from ..scipy.special import log_softmax

        return -dnp.sum(y * log_softmax(theta, axis=-1))

    @staticmethod
    def probs(theta: np.ndarray) -> np.ndarray:
        z = np.asarray(theta, dtype=np.float64)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def sample(self, theta: np.ndarray, rng: np.random.Generator, num: int) -> np.ndarray:
        """``num`` one-hot labels ``y ∼ p_θ``, shape ``(num, *θ.shape)``."""
        p = self.probs(theta)
        k = p.shape[-1]
        cdf = np.cumsum(p, axis=-1)
        u = rng.random(size=(num, *p.shape[:-1], 1))
        idx = np.minimum((u > cdf).sum(axis=-1), k - 1)
        return np.eye(k)[idx]

    def enumerate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All labels (one-hot, ``(K, K)``) and their probabilities ``p_θ`` (shape ``(K,)``)."""
        theta = np.asarray(theta)
        if theta.ndim != 1:
            raise ValueError(
                "Categorical.enumerate: exact enumeration needs the logits of one example "
                f"(a 1-D θ), got shape {theta.shape}"
            )
        return np.eye(theta.shape[0]), self.probs(theta)


class UnitNormal:
    """Normal distribution ``N(θ, I)``: ``nll(θ, y) = ½‖θ − y‖²`` (+ const) (Book §9.8.2).

    Infinite support, so only Monte-Carlo sampling is available (no exact enumeration).

    Example::

        >>> import numpy as np
        >>> from diffprog.derivatives.estimators import UnitNormal
        >>> float(UnitNormal().nll(np.array([1.0, 1.0]), np.zeros(2)))
        1.0
    """

    def nll(self, theta: Any, y: Any) -> Any:
        from .. import numpy as dnp

        return 0.5 * dnp.sum((theta - y) ** 2)

    def sample(self, theta: np.ndarray, rng: np.random.Generator, num: int) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        return theta + rng.standard_normal(size=(num, *theta.shape))

    def enumerate(self, theta: np.ndarray):
        raise ValueError(
            "UnitNormal has infinite support: exact label enumeration is not possible; "
            "use exact=False (Monte Carlo)"
        )


_FAMILIES = {
    "categorical": Categorical,
    "softmax": Categorical,
    "softmax_cross_entropy": Categorical,
    "normal": UnitNormal,
    "gaussian": UnitNormal,
    "squared": UnitNormal,
}


def _family(fname: str, nll: Any):
    if isinstance(nll, str):
        if nll not in _FAMILIES:
            raise ValueError(
                f"{fname}: unknown exponential family {nll!r}; use one of {sorted(_FAMILIES)} "
                "or an object with .nll(theta, y), .sample(theta, rng, num) and .enumerate(theta)"
            )
        return _FAMILIES[nll]()
    if all(callable(getattr(nll, m, None)) for m in ("nll", "sample")):
        return nll
    raise TypeError(
        f"{fname}: nll must name an exponential family ({sorted(_FAMILIES)}) or be an object "
        f"with .nll(theta, y) and .sample(theta, rng, num), got {type(nll).__name__}. Bartlett "
        "estimators need to sample labels from p_θ, so a bare loss function is not enough"
    )


def _labels(fname, fam, theta, gen, num_samples, exact):
    """Labels and their weights: sampled (weights 1/S) or enumerated (weights p_θ)."""
    if exact:
        if not callable(getattr(fam, "enumerate", None)):
            raise ValueError(f"{fname}: exact=True needs a family with .enumerate(theta)")
        ys, p = fam.enumerate(theta)
        return np.asarray(ys), np.asarray(p, dtype=np.float64)
    S = _check_samples(fname, num_samples)
    return fam.sample(theta, gen, S), np.full(S, 1.0 / S)


def _per_label_grads(f, fam, w, x, ys):
    """Individual gradients ``∇_w L(w; x, y_j)`` for every label ``y_j`` (rows), via vmap."""
    loss = lambda w_, y_: fam.nll(f(w_, x), y_)
    return np.asarray(vmap(grad(loss), in_axes=(None, 0))(w, ys))


def gn_mc_factor(
    f: Callable,
    nll: Any,
    w: np.ndarray,
    x: Any,
    rng: np.random.Generator | int | None = None,
    num_samples: int = 1,
    exact: bool = False,
) -> np.ndarray:
    """Bartlett (Monte-Carlo Fisher) factor ``V`` of the Gauss-Newton matrix: ``GN ≈ V Vᵀ``
    (Book §9.8.2, BackPACK's ``SqrtGGNMC``).

    For ``L(w; x, y) = ℓ(f(w, x); y)`` with ℓ the NLL of an exponential family,
    ``∇²_GN L = E_{Y∼p_θ}[∇L(w;x,Y) ∇L(w;x,Y)ᵀ]`` (θ = f(w, x)), so the columns of V are
    ``∇L(w; x, y_j)/√S`` with ``y_j ∼ p_θ``. With ``exact=True`` (finite support) every label
    is used once with weight ``p_θ(y)`` and ``V Vᵀ`` is the exact GN matrix. ``V (Vᵀ v)`` is
    an approximate GNVP.

    Args:
        f: the model ``(w, x) -> θ`` (e.g. logits); ``w`` a 1-D parameter array.
        nll: ``"categorical"`` (softmax logits), ``"normal"`` (unit variance), or an object with
            ``.nll(theta, y)``, ``.sample(theta, rng, num)`` and ``.enumerate(theta)``.
        rng: Generator or int seed (unused when ``exact=True``).
        num_samples: S >= 1, the number of sampled labels.
        exact: enumerate the labels instead of sampling.

    Returns:
        ``V`` of shape ``(P, S)`` (``(P, K)`` when exact).

    Example (logistic regression, exact enumeration)::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import gn_mc_factor
        >>> model = lambda w, x: dnp.stack([0.0 * w[0], dnp.dot(w, x)])
        >>> V = gn_mc_factor(model, "categorical", np.zeros(2), np.array([1.0, 2.0]), exact=True)
        >>> V @ V.T   # p(1-p) x xᵀ with p = 1/2
        array([[0.25, 0.5 ],
               [0.5 , 1.  ]])
    """
    fname = "gn_mc_factor"
    fam = _family(fname, nll)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"{fname}: w must be a 1-D parameter vector, got shape {w.shape}")
    gen = None if exact else _rng(fname, rng)
    theta = np.asarray(f(w, x))
    ys, weights = _labels(fname, fam, theta, gen, num_samples, exact)
    g = _per_label_grads(f, fam, w, x, ys)  # (S, P)
    return (g * np.sqrt(weights)[:, None]).T


def gn_diag_mc(
    f: Callable,
    nll: Any,
    w: np.ndarray,
    x: Any,
    rng: np.random.Generator | int | None = None,
    num_samples: int = 1,
    averaged: bool = False,
    exact: bool = False,
    num_repeats: int | None = None,
) -> np.ndarray:
    """Bartlett estimate of ``diag(∇²_GN L)`` (Book §9.8.3).

    - ``averaged=False`` (individual gradients, Wei et al. 2020, BackPACK's ``DiagGGNMC``):
      ``diag GN ≈ (1/S) Σ_j ∇L(w;x,y_j) ⊙ ∇L(w;x,y_j)``, ``y_j ∼ p_θ``; the S per-label gradients
      come from one ``vmap`` of ``grad``. ``exact=True`` enumerates the labels with weights
      ``p_θ`` and is exact.
    - ``averaged=True`` (Sophia-style, Liu et al. 2023 use S=1): only the gradient of the
      averaged loss ``L̄ = (1/S) Σ_j L(w;x,y_j)`` is needed; ``S · ∇L̄ ⊙ ∇L̄`` is unbiased for
      ``diag GN`` because the cross terms vanish (Bartlett's first identity ``E[∇ℓ] = 0``). It
      has a higher variance than the individual form.

    ``num_repeats=R`` returns R independent estimates as an ``(R, P)`` array (vectorized), e.g.
    to measure the variance. Other arguments as in :func:`gn_mc_factor`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import gn_diag_mc
        >>> model = lambda w, x: dnp.stack([0.0 * w[0], dnp.dot(w, x)])
        >>> gn_diag_mc(model, "categorical", np.zeros(2), np.array([1.0, 2.0]), exact=True)
        array([0.25, 1.  ])
    """
    fname = "gn_diag_mc"
    fam = _family(fname, nll)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"{fname}: w must be a 1-D parameter vector, got shape {w.shape}")
    if exact and averaged:
        raise ValueError(
            f"{fname}: exact=True applies to the individual-gradient form (averaged=False); "
            "the p_θ-weighted average of the losses has zero gradient (Bartlett's first identity)"
        )
    R = None if num_repeats is None else _check_samples(fname, num_repeats, "num_repeats")
    if exact:
        if R is not None:
            raise ValueError(f"{fname}: num_repeats is meaningless with exact=True")
        V = gn_mc_factor(f, fam, w, x, exact=True)
        return np.sum(V * V, axis=1)
    S = _check_samples(fname, num_samples)
    gen = _rng(fname, rng)
    theta = np.asarray(f(w, x))
    ys = fam.sample(theta, gen, S * (R or 1))  # (R*S, *θ.shape)
    if not averaged:
        g = _per_label_grads(f, fam, w, x, ys)  # (R*S, P)
        est = (g * g).reshape(R or 1, S, -1).mean(axis=1)
    else:
        from .. import numpy as dnp

        def avg_loss(w_, y_block):  # y_block: (S, *θ.shape)
            th = f(w_, x)
            return dnp.mean(vmap(lambda y_: fam.nll(th, y_))(y_block))

        blocks = ys.reshape(R or 1, S, *ys.shape[1:])
        g = np.asarray(vmap(grad(avg_loss), in_axes=(None, 0))(w, blocks))  # (R, P)
        est = S * g * g
    return est if R is not None else est[0]


# --------------------------------------------------------------------------- forward gradient
def forward_gradient(
    f: Callable,
    mu: np.ndarray,
    rng: np.random.Generator | int,
    num_samples: int = 1,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Unbiased randomized forward-mode gradient, JVPs only (Book §8.7, Prop. 8.2).

    ``∇f(μ) = E_{Z∼N(0,I)}[∂f(μ)[Z] Z]``, estimated by ``(1/M) Σ_i ⟨∇f(μ), z_i⟩ z_i`` where
    ``⟨∇f(μ), z_i⟩ = ∂f(μ)[z_i]`` is one JVP (the book's "average ⟨∇f(μ), z_i⟩" drops the factor
    ``z_i``, a typo). No activations are stored. A single sample has mean-squared error
    ``(P+1)‖∇f(μ)‖²`` (P = size of μ); the error of the mean decreases as ``1/M``. The M JVPs run as
    one ``vmap``-ed call (or in blocks of ``chunk_size``).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.estimators import forward_gradient
        >>> g = forward_gradient(lambda w: dnp.sum(3.0 * w), np.zeros(2), rng=0, num_samples=20000)
        >>> bool(np.allclose(g, [3.0, 3.0], atol=0.15))
        True
    """
    fname = "forward_gradient"
    M = _check_samples(fname, num_samples)
    mu = np.asarray(mu, dtype=np.float64) if not isinstance(mu, np.ndarray) else mu
    gen = _rng(fname, rng)
    dd = vmap(lambda z: jvp(f, (mu,), (z,))[1])
    acc = np.zeros(mu.shape)
    for a, b in _chunks(M, chunk_size):
        z = gen.standard_normal(size=(b - a, *mu.shape))
        d = np.asarray(dd(z))
        if d.shape != (b - a,):
            raise ValueError(
                f"{fname}: f must return a real scalar, got output shape {d.shape[1:]}"
            )
        acc += np.tensordot(d, z, axes=(0, 0))
    return acc / M
