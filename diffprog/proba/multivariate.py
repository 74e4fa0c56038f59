r"""Multivariate distributions: MultivariateNormal and Dirichlet (book §3.3.6, Table 3.1).

The multivariate normal is parameterized through a Cholesky factor ``Σ = LLᵀ``: densities use
triangular solves and ``log det Σ = 2 Σ_i log L_ii``, never an explicit inverse or determinant
(the book writes ``Σ⁻¹`` and ``|Σ|``). :func:`psd_from_factor` is the output layer
``S ↦ SSᵀ + εI`` that maps any network output to a valid covariance (book §3.3.6).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import diffprog.numpy as dnp
from diffprog.optim.losses import _concrete
from diffprog.scipy.special import digamma, gammaln, xlogy

from .distribution import (
    Distribution,
    as_param,
    check_param,
    concrete_value,
    outside_to_neginf,
    support_mask,
)

__all__ = ["MultivariateNormal", "Dirichlet", "psd_from_factor"]

Array = Any

_LOG_2PI = math.log(2.0 * math.pi)


def psd_from_factor(S: Array, eps: float = 0.0) -> Array:
    r"""``Σ = SSᵀ + εI``: symmetric positive semidefinite for any square ``S`` (definite for
    ``ε > 0``), the covariance output layer of book §3.3.6 ("parameterization using SSᵀ").

    Example:
        >>> psd_from_factor(np.array([[1.0, 0.0], [2.0, 1.0]]), eps=0.5).tolist()
        [[1.5, 2.0], [2.0, 5.5]]
    """
    if dnp.ndim(S) < 2 or dnp.shape(S)[-1] != dnp.shape(S)[-2]:
        raise ValueError(f"psd_from_factor: argument 'S' must be a (..., M, M) matrix, got shape "
                         f"{tuple(dnp.shape(S))}")
    if eps < 0:
        raise ValueError(f"psd_from_factor: argument 'eps' must be >= 0, got {eps}")
    out = S @ dnp.swapaxes(S, -1, -2)
    return out + eps * np.eye(dnp.shape(S)[-1]) if eps else out


def _tril_solve(L: Array, b: Array) -> Array:
    """``L⁻¹ b`` for a batch of vectors ``b`` (``(..., M)``) against ``L`` (``(..., M, M)``)."""
    bshape = tuple(np.broadcast_shapes(tuple(dnp.shape(L)[:-2]), tuple(dnp.shape(b)[:-1])))
    m = dnp.shape(L)[-1]
    Lb = dnp.broadcast_to(L, bshape + (m, m))
    bb = dnp.broadcast_to(b, bshape + (m,))
    return dnp.linalg.solve(Lb, bb[..., None])[..., 0]


class MultivariateNormal(Distribution):
    r"""Multivariate normal ``N(μ, Σ)`` on ``R^M`` (book §3.3.6, Table 3.1).

    ``p(y) = (2π)^{−M/2} det(Σ)^{−1/2} exp(−½⟨y−μ, Σ⁻¹(y−μ)⟩)`` (the book's
    ``1/√(2π^M|Σ|)`` is a misprint for ``1/√((2π)^M det Σ)``). Pass ``cov`` (symmetric positive
    definite) or ``scale_tril`` (lower triangular ``L`` with positive diagonal, ``Σ = LLᵀ``).
    Natural parameters ``θ = (Σ⁻¹μ, −½Σ⁻¹)``, ``A = ½μᵀΣ⁻¹μ + ½ log det Σ``.

    Example:
        >>> d = MultivariateNormal(np.zeros(2), cov=np.diag([1.0, 4.0]))
        >>> round(float(d.log_prob(np.zeros(2))), 12)  # −log(2π) − log 2
        -2.531024246969
        >>> d.sample(0, 5).shape
        (5, 2)
    """

    loc: Any = None
    cov: Any = None
    scale_tril: Any = None

    def __post_init__(self) -> None:
        if self.loc is None:
            raise ValueError("MultivariateNormal: argument 'loc' is required")
        if (self.cov is None) == (self.scale_tril is None):
            raise ValueError("MultivariateNormal: pass exactly one of 'cov' and 'scale_tril'")
        for f in ("loc", "cov", "scale_tril"):
            object.__setattr__(self, f, as_param(getattr(self, f)))
        if dnp.ndim(self.loc) < 1:
            raise ValueError("MultivariateNormal: argument 'loc' must have an event axis "
                             f"(shape (..., M)), got shape {tuple(dnp.shape(self.loc))}")
        m = dnp.shape(self.loc)[-1]
        arg = "cov" if self.cov is not None else "scale_tril"
        mat = getattr(self, arg)
        if dnp.ndim(mat) < 2 or tuple(dnp.shape(mat)[-2:]) != (m, m):
            raise ValueError(f"MultivariateNormal: argument '{arg}' must have shape (..., {m}, "
                             f"{m}) to match 'loc', got {tuple(dnp.shape(mat))}")
        check_param("MultivariateNormal", "loc", self.loc, np.isfinite, "finite")
        c = _concrete(mat)
        if c is None:
            return
        if arg == "cov":
            sym = np.allclose(c, np.swapaxes(c, -1, -2), rtol=1e-10, atol=1e-12)
            try:
                ok = sym and bool(np.all(np.isfinite(np.linalg.cholesky(c))))
            except np.linalg.LinAlgError:
                ok = False
            if not ok:
                raise ValueError("MultivariateNormal: argument 'cov' must be symmetric positive "
                                 "definite (add eps*I to a PSD matrix)")
        elif not (np.allclose(c, np.tril(c)) and np.all(np.diagonal(c, 0, -2, -1) > 0)):
            raise ValueError("MultivariateNormal: argument 'scale_tril' must be lower triangular "
                             "with a positive diagonal")

    @property
    def dim(self) -> int:
        """``M``, the event size (book §3.3.6).

        Example:
            >>> MultivariateNormal(np.zeros(3), cov=np.eye(3)).dim
            3
        """
        return dnp.shape(self.loc)[-1]

    def scale_tril_parameter(self) -> Array:
        """The Cholesky factor ``L`` of ``Σ = LLᵀ`` (book §3.3.6).

        Example:
            >>> MultivariateNormal(np.zeros(2), cov=4 * np.eye(2)).scale_tril_parameter().tolist()
            [[2.0, 0.0], [0.0, 2.0]]
        """
        if self.scale_tril is not None:
            return self.scale_tril
        return dnp.linalg.cholesky(self.cov)

    def _half_logdet(self) -> Array:
        L = self.scale_tril_parameter()
        return dnp.sum(dnp.log(dnp.diagonal(L, 0, -2, -1)), axis=-1)

    def log_prob(self, y: Array) -> Array:
        r"""``−½‖L⁻¹(y−μ)‖² − Σ_i log L_ii − (M/2) log 2π`` (book §3.3.6).

        Example:
            >>> d = MultivariateNormal(np.zeros(2), cov=np.eye(2))
            >>> round(float(d.log_prob(np.zeros(2))), 12)
            -1.837877066409
        """
        z = _tril_solve(self.scale_tril_parameter(), as_param(y) - self.loc)
        return -0.5 * dnp.sum(z * z, axis=-1) - self._half_logdet() - 0.5 * self.dim * _LOG_2PI

    def mean(self) -> Array:
        """``E[Y] = μ`` (book §3.3.6).

        Example:
            >>> MultivariateNormal(np.ones(2), cov=np.eye(2)).mean().tolist()
            [1.0, 1.0]
        """
        return self.loc

    def covariance(self) -> Array:
        """``Σ`` (``LLᵀ`` when built from ``scale_tril``). Book §3.3.6.

        Example:
            >>> L = np.array([[1.0, 0.0], [1.0, 1.0]])
            >>> MultivariateNormal(np.zeros(2), scale_tril=L).covariance().tolist()
            [[1.0, 1.0], [1.0, 2.0]]
        """
        if self.cov is not None:
            return self.cov
        return psd_from_factor(self.scale_tril)

    def variance(self) -> Array:
        """The marginal variances ``diag Σ`` (book §3.3.6).

        Example:
            >>> MultivariateNormal(np.zeros(2), cov=np.diag([1.0, 4.0])).variance().tolist()
            [1.0, 4.0]
        """
        return dnp.diagonal(self.covariance(), 0, -2, -1)

    def mode(self) -> Array:
        """``μ`` (book §3.3.6).

        Example:
            >>> MultivariateNormal(np.ones(2), cov=np.eye(2)).mode().tolist()
            [1.0, 1.0]
        """
        return self.loc

    def entropy(self) -> Array:
        r"""``H = (M/2)(1 + log 2π) + ½ log det Σ`` (book §3.4.3).

        Example:
            >>> round(float(MultivariateNormal(np.zeros(1), cov=np.eye(1)).entropy()), 6)
            1.418939
        """
        return 0.5 * self.dim * (1.0 + _LOG_2PI) + self._half_logdet()

    def precision(self) -> Array:
        """``Σ⁻¹ = L⁻ᵀL⁻¹``, obtained by triangular solves (book Table 3.1).

        Example:
            >>> MultivariateNormal(np.zeros(2), cov=4 * np.eye(2)).precision().tolist()
            [[0.25, 0.0], [0.0, 0.25]]
        """
        L = self.scale_tril_parameter()
        Linv = dnp.linalg.solve(L, dnp.broadcast_to(np.eye(self.dim), dnp.shape(L)))
        return dnp.swapaxes(Linv, -1, -2) @ Linv

    def natural_parameters(self) -> tuple[Array, Array]:
        r"""``θ = (Σ⁻¹μ, −½Σ⁻¹)`` (book Table 3.1).

        Example:
            >>> t1, t2 = MultivariateNormal(np.ones(2), cov=2 * np.eye(2)).natural_parameters()
            >>> t1.round(12).tolist(), t2.round(12).tolist()
            ([0.5, 0.5], [[-0.25, -0.0], [-0.0, -0.25]])
        """
        P = self.precision()
        return (P @ self.loc[..., None])[..., 0], -0.5 * P

    def log_partition(self) -> Array:
        r"""``A = ½μᵀΣ⁻¹μ + ½ log det Σ = −¼θ₁ᵀθ₂⁻¹θ₁ − ½ log det(−2θ₂)`` (book Table 3.1,
        corrected: the book prints ``log|−θ₂|``, off by ``(M/2) log 2``).

        Example:
            >>> round(float(MultivariateNormal(np.zeros(2), cov=np.eye(2)).log_partition()), 12)
            0.0
        """
        z = _tril_solve(self.scale_tril_parameter(), self.loc)
        return 0.5 * dnp.sum(z * z, axis=-1) + self._half_logdet()

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        mu = concrete_value(self.loc, "MultivariateNormal.sample")
        L = concrete_value(self.scale_tril_parameter(), "MultivariateNormal.sample")
        bshape = np.broadcast_shapes(mu.shape[:-1], L.shape[:-2])
        eps = g.standard_normal(shape + bshape + (self.dim,))
        return mu + np.einsum("...ij,...j->...i", L, eps)


class Dirichlet(Distribution):
    r"""Dirichlet distribution on the simplex ``Δᴹ`` with concentration ``α > 0`` (§3.3.4).

    ``p(π) = Γ(α₀)/Π Γ(α_i) · Π π_i^{α_i − 1}``, ``α₀ = Σ α_i``; ``E = α/α₀``,
    ``Cov = (diag(ᾱ) − ᾱᾱᵀ)/(α₀ + 1)`` with ``ᾱ = α/α₀``.

    Example:
        >>> d = Dirichlet(np.array([1.0, 1.0, 1.0]))
        >>> round(float(d.prob(np.array([0.2, 0.3, 0.5]))), 12)  # uniform: Γ(3) = 2
        2.0
    """

    concentration: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "concentration", as_param(self.concentration))
        if self.concentration is None or dnp.ndim(self.concentration) < 1:
            raise ValueError("Dirichlet: argument 'concentration' must have shape (..., M)")
        check_param("Dirichlet", "concentration", self.concentration, lambda a: a > 0, "> 0")

    def _a0(self) -> Array:
        return dnp.sum(self.concentration, axis=-1)

    def log_prob(self, y: Array) -> Array:
        r"""``Σ(α_i − 1) log π_i + log Γ(α₀) − Σ log Γ(α_i)``; ``−inf`` off the simplex (§3.3.4).

        Example:
            >>> round(float(Dirichlet(np.array([2.0, 2.0])).log_prob(np.array([0.5, 0.5]))), 12)
            0.405465108108
        """
        from .pmf import in_simplex

        a = self.concentration
        y = as_param(y)
        mask = support_mask(y, lambda c: in_simplex(c, 1e-9))
        if mask is not None:
            y = np.where(mask[..., None], y, 1.0 / dnp.shape(a)[-1])
        out = dnp.sum(xlogy(a - 1.0, y), axis=-1) + gammaln(self._a0()) - dnp.sum(gammaln(a), -1)
        return outside_to_neginf(out, mask)

    def mean(self) -> Array:
        """``E[π] = α/α₀`` (book §3.3.4).

        Example:
            >>> Dirichlet(np.array([1.0, 3.0])).mean().tolist()
            [0.25, 0.75]
        """
        return self.concentration / self._a0()[..., None]

    def covariance(self) -> Array:
        """``(diag(ᾱ) − ᾱᾱᵀ)/(α₀ + 1)`` (book §3.3.4).

        Example:
            >>> Dirichlet(np.array([1.0, 1.0])).covariance().round(6).tolist()
            [[0.083333, -0.083333], [-0.083333, 0.083333]]
        """
        m = self.mean()
        cov = m[..., :, None] * np.eye(dnp.shape(m)[-1]) - m[..., :, None] * m[..., None, :]
        return cov / (self._a0()[..., None, None] + 1.0)

    def variance(self) -> Array:
        """``ᾱ_i(1 − ᾱ_i)/(α₀ + 1)`` (book §3.3.4).

        Example:
            >>> Dirichlet(np.array([1.0, 1.0])).variance().round(6).tolist()
            [0.083333, 0.083333]
        """
        m = self.mean()
        return m * (1.0 - m) / (self._a0()[..., None] + 1.0)

    def mode(self) -> Array:
        """``(α − 1)/(α₀ − M)``, defined when every ``α_i > 1`` (book §3.1.2).

        Example:
            >>> Dirichlet(np.array([2.0, 4.0])).mode().tolist()
            [0.25, 0.75]
        """
        c = _concrete(self.concentration)
        if c is not None and not np.all(c > 1):
            raise ValueError("Dirichlet.mode: defined only when every concentration is > 1")
        m = dnp.shape(self.concentration)[-1]
        return (self.concentration - 1.0) / (self._a0()[..., None] - m)

    def entropy(self) -> Array:
        r"""``H = log B(α) + (α₀ − M)ψ(α₀) − Σ(α_i − 1)ψ(α_i)`` (book §3.4.3).

        Example:
            >>> round(float(Dirichlet(np.ones(3)).entropy()), 12)  # −log 2
            -0.69314718056
        """
        a, a0 = self.concentration, self._a0()
        m = dnp.shape(a)[-1]
        log_b = dnp.sum(gammaln(a), axis=-1) - gammaln(a0)
        return log_b + (a0 - m) * digamma(a0) - dnp.sum((a - 1.0) * digamma(a), axis=-1)

    def _sample(self, g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        a = concrete_value(self.concentration, "Dirichlet.sample")
        x = g.standard_gamma(np.broadcast_to(a, shape + a.shape))
        return x / x.sum(axis=-1, keepdims=True)
