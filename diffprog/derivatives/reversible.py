"""Reversible layers: reverse mode without stored activations (Book §8.6).

When every layer ``f_k`` of a chain ``f = f_K ∘ … ∘ f_1`` has an accessible inverse, the backward
pass can recompute ``s_{k−1} = f_k⁻¹(s_k)`` instead of storing it (Algorithm 8.8), so only one
activation is held at any time, independently of K (Book §8.6.1). When every Jacobian is
orthonormal, reverse mode of f is forward mode of f⁻¹ (Book §8.6.2, :func:`vjp_via_inverse_jvp`).

Building block: :class:`AdditiveCoupling` (RevNet, Gomez et al. 2017),
``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` with inverse ``x2 = y2 − G(y1)``, ``x1 = y1 − F(x2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.api import jvp, vjp

__all__ = [
    "AdditiveCoupling",
    "ReversibleChain",
    "reversible_vjp",
    "vjp_via_inverse_jvp",
]


def _is_invertible(layer: Any) -> bool:
    return callable(getattr(layer, "forward", None)) and callable(getattr(layer, "inverse", None))


class AdditiveCoupling:
    """Additive coupling layer (RevNet; Book §8.6.1): invertible by construction.

    The state ``x`` (last axis of length ``n``) is split into ``x1 = x[..., :split]`` and
    ``x2 = x[..., split:]`` (``split`` defaults to ``n // 2``), and

    ``forward``: ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``;
    ``inverse``: ``x2 = y2 − G(y1)``, ``x1 = y1 − F(x2)``.

    ``F`` maps the second part to the shape of the first, ``G`` the first to the second; neither
    needs to be invertible. Both must be written with ``diffprog.numpy`` to be differentiable.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.reversible import AdditiveCoupling
        >>> layer = AdditiveCoupling(dnp.tanh, dnp.sin)
        >>> x = np.array([0.1, 0.2, 0.3, 0.4])
        >>> bool(np.allclose(layer.inverse(layer.forward(x)), x, atol=1e-15))
        True
    """

    def __init__(self, F: Callable, G: Callable, split: int | None = None):
        if not callable(F) or not callable(G):
            raise TypeError("AdditiveCoupling: F and G must be callables")
        self.F = F
        self.G = G
        self.split = split

    def _cut(self, s: Any) -> int:
        n = np.shape(s)[-1] if np.ndim(s) else 0
        d = n // 2 if self.split is None else int(self.split)
        if not 0 < d < n:
            raise ValueError(
                f"AdditiveCoupling: cannot split a state with last axis {n} at {d}; need "
                "0 < split < n (a state of at least 2 entries)"
            )
        return d

    def forward(self, x: Any) -> Any:
        from .. import numpy as dnp

        d = self._cut(x)
        x1, x2 = x[..., :d], x[..., d:]
        y1 = x1 + self.F(x2)
        y2 = x2 + self.G(y1)
        return dnp.concatenate([y1, y2], axis=-1)

    def inverse(self, y: Any) -> Any:
        from .. import numpy as dnp

        d = self._cut(y)
        y1, y2 = y[..., :d], y[..., d:]
        x2 = y2 - self.G(y1)
        x1 = y1 - self.F(x2)
        return dnp.concatenate([x1, x2], axis=-1)

    __call__ = forward


class ReversibleChain:
    """A chain ``f = f_K ∘ … ∘ f_1`` of invertible layers (Book §8.6.1, Algorithm 8.8).

    Every layer needs ``.forward(s)`` and ``.inverse(s)``; a layer without them (a plain
    function, which need not be invertible) is rejected with a ``TypeError``. ``chain(s0)`` runs
    the forward pass, ``chain.inverse(sK)`` the inverse; :func:`reversible_vjp` differentiates it
    storing one activation.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.derivatives.reversible import AdditiveCoupling, ReversibleChain
        >>> chain = ReversibleChain([AdditiveCoupling(dnp.tanh, dnp.sin)] * 3)
        >>> x = np.array([0.5, -1.0])
        >>> bool(np.allclose(chain.inverse(chain(x)), x, atol=1e-14))
        True
    """

    def __init__(self, layers: Sequence[Any]):
        layers = list(layers)
        if not layers:
            raise ValueError("ReversibleChain: needs at least one layer")
        for k, layer in enumerate(layers):
            if not _is_invertible(layer):
                raise TypeError(
                    f"ReversibleChain: layer {k} ({type(layer).__name__}) is not invertible: a "
                    "reversible layer needs both .forward(s) and .inverse(s) methods (wrap it, "
                    "e.g. in AdditiveCoupling, or use checkpointing for non-invertible layers)"
                )
        self.layers = layers

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, s: Any) -> Any:
        for layer in self.layers:
            s = layer.forward(s)
        return s

    def inverse(self, s: Any) -> Any:
        for layer in reversed(self.layers):
            s = layer.inverse(s)
        return s

    __call__ = forward


def reversible_vjp(
    chain: ReversibleChain | Sequence[Any],
    s0: np.ndarray,
    u: np.ndarray,
    check_inverse: bool = False,
    atol: float = 1e-8,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reverse-mode VJP of a reversible chain that recomputes inputs from outputs
    (Book §8.6.1, Algorithm 8.8).

    Forward: ``s_k = f_k(s_{k−1})``, keeping only the current state. Backward, for k = K…1:
    ``s_{k−1} = f_k⁻¹(s_k)``, then ``r_{k−1} = ∂f_k(s_{k−1})*[r_k]`` with ``r_K = u``. Each
    ``s_k``, ``r_k`` is released as soon as it is used, so one activation is stored, whatever K.

    Args:
        chain: a :class:`ReversibleChain` (or a list of layers with ``.forward``/``.inverse``).
        s0: the input state. u: the output direction (shaped like ``s_K``).
        check_inverse: compare the reconstructed ``s_0`` with ``s0`` and raise ``ValueError`` if
            they differ by more than ``atol`` (max-abs): the inverses are not exact enough.
        stats: optional dict, filled with ``max_stored_states`` (activations held at once),
            ``num_layers`` and ``inverse_error`` (max-abs error of the reconstructed ``s_0``).

    Returns:
        ``(s_K, r_0)``: ``f(s0)`` and ``∂f(s0)*[u]``.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> from diffprog.derivatives.reversible import AdditiveCoupling, ReversibleChain
        >>> from diffprog.derivatives.reversible import reversible_vjp
        >>> chain = ReversibleChain([AdditiveCoupling(dnp.tanh, dnp.sin)] * 4)
        >>> s0, u = np.array([0.3, -0.2]), np.array([1.0, 0.5])
        >>> sK, r0 = reversible_vjp(chain, s0, u)
        >>> bool(np.allclose(r0, diffprog.vjp(chain, s0)[1](u)[0], atol=1e-12))
        True
    """
    if not isinstance(chain, ReversibleChain):
        chain = ReversibleChain(chain)
    s = np.asarray(s0)
    stored = 1  # the current state s_k; the caller keeps s0
    for layer in chain.layers:
        s = np.asarray(layer.forward(s))  # s_{k-1} is released here
    s_K = s
    r = np.asarray(u)
    if r.shape != s_K.shape:
        raise ValueError(
            f"reversible_vjp: u has shape {r.shape} but the chain output has shape {s_K.shape}"
        )
    for layer in reversed(chain.layers):
        s = np.asarray(layer.inverse(s))  # s_{k-1} = f_k^{-1}(s_k); s_k released
        _, pullback = vjp(layer.forward, s)
        r = pullback(r)[0]  # r_{k-1} = ∂f_k(s_{k-1})^*[r_k]; r_k released
        del pullback
    err = float(np.max(np.abs(s - np.asarray(s0)))) if np.size(s) else 0.0
    if stats is not None:
        stats.update(max_stored_states=stored, num_layers=len(chain), inverse_error=err)
    if check_inverse and not err <= atol:
        raise ValueError(
            f"reversible_vjp: the layers' inverses are inexact: the reconstructed input differs "
            f"from s0 by {err:.3g} (> atol={atol:.3g}); the gradient may be wrong"
        )
    return s_K, np.asarray(r)


def vjp_via_inverse_jvp(f_inv: Callable | ReversibleChain, s_K: np.ndarray,
                        u: np.ndarray) -> np.ndarray:
    """Reverse mode of f as forward mode of f⁻¹, for orthonormal Jacobians (Book §8.6.2).

    If every ``∂f_k`` is orthonormal (``∂f_k⁻¹ = ∂f_k*``), then
    ``∂f(s_0)*[u] = ∂f⁻¹(s_K)[u]`` with ``s_K = f(s_0)``: one JVP of ``f⁻¹`` at the output, no
    stored activations. ``f_inv`` is the inverse function (or a :class:`ReversibleChain`, whose
    ``.inverse`` is used). The identity does not hold for non-orthonormal Jacobians (not checked).

    Example::

        >>> import numpy as np, diffprog
        >>> from diffprog.derivatives.reversible import vjp_via_inverse_jvp
        >>> Q = np.array([[0.0, -1.0], [1.0, 0.0]])   # a rotation
        >>> f, f_inv = (lambda s: Q @ s + 1.0), (lambda s: Q.T @ (s - 1.0))
        >>> s0, u = np.array([1.0, 2.0]), np.array([3.0, 4.0])
        >>> vjp_via_inverse_jvp(f_inv, f(s0), u), diffprog.vjp(f, s0)[1](u)[0]
        (array([ 4., -3.]), array([ 4., -3.]))
    """
    if isinstance(f_inv, ReversibleChain):
        f_inv = f_inv.inverse
    if not callable(f_inv):
        raise TypeError(
            f"vjp_via_inverse_jvp: f_inv must be callable, got {type(f_inv).__name__}"
        )
    return jvp(f_inv, (s_K,), (u,))[1]
