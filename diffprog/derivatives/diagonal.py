"""Diagonal Hessian approximations (Becker & LeCun 1988): chains, graphs and MLPs (Book §9.7).

These schemes propagate only a *vector* ``d_k`` (an approximation of ``diag(R_k)``) backward
instead of the matrix ``R_k`` of Hessian backpropagation (§9.5). They are **approximations**:
exact when every ``R_k`` is diagonal (e.g. a separable loss with elementwise and diagonal
layers), and for the last layer's weights of an MLP, but in general different from the exact
diagonal of the Hessian. The per-layer rules come from generic AD (see
:mod:`diffprog.derivatives.hessian_backprop`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.ir import Graph
from .hessian_backprop import (
    _as_float_array,
    _check_chain,
    _check_mlp,
    _elementwise_derivs,
    _forward_chain,
    _layer_rules,
    _loss_rules,
    _NodeRule,
    _prepare_graph,
    _split,
)

__all__ = ["diag_hessian_approx", "diag_hessian_approx_graph", "diag_oracle", "mlp_diag_hessian"]


def diag_oracle(f: Callable, args: Sequence[Any], r: Any, d: Any) -> tuple[np.ndarray, ...]:
    """The "diag-Hessian oracle" of a primitive or layer ``f`` (§9.7.2), per argument ``j``::

        diag(∂²_{jj} f*[r]) + diag(∂_j f* Diag(d) ∂_j f)

    i.e. ``Σ_o r_o ∂²_{ii} f_o + Σ_o d_o (∂_i f_o)²`` for each input entry ``i``. Generic AD.

    Returns:
        One vector per argument (its shape), the contribution to that argument's ``d``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> (c,) = diag_oracle(dnp.exp, [np.array([0.0])], np.array([2.0]), np.array([3.0]))
        >>> float(c[0])    # 2·e⁰ + 3·(e⁰)²
        5.0
    """
    args = [_as_float_array(a, f"args[{j}]") for j, a in enumerate(args)]
    d = np.asarray(d, dtype=float).ravel()
    _, J, H = _layer_rules(f, args, r)
    diag = np.diag(H) + (J ** 2).T @ d
    sizes = [a.size for a in args]
    return tuple(p.reshape(a.shape) for p, a in zip(_split(diag, sizes, 0), args, strict=True))


def diag_hessian_approx(chain: Sequence[Callable] | Callable, loss: Callable, x: Any,
                        init: str = "diag") -> tuple[np.ndarray, np.ndarray]:
    """Becker–LeCun diagonal Hessian approximation for a chain (§9.7.1) — **an approximation**.

    For ``k = K, …, 1`` (``d_k`` approximates ``diag(∇²_{s_k})``)::

        r_{k-1}   = ∂f_k* r_k
        d_{k-1,i} = Σ_j r_{k,j} ∂²_{ii} f_{k,j}(s_{k-1}) + Σ_j d_{k,j} (∂_i f_{k,j}(s_{k-1}))²

    from ``r_K = ∇ℓ(s_K)`` and

    * ``init="diag"``: ``d_K = diag(∇²ℓ(s_K))``;
    * ``init="full_first"``: the full ``∇²ℓ(s_K)`` is used at the first step,
      ``d_{K-1} = diag(∂²f_K*[r_K] + ∂f_K* ∇²ℓ ∂f_K)`` (Elsayed & Mahmood 2022; e.g. for
      cross-entropy).

    Exact when every ``R_k`` is diagonal; in general differs from ``diag(∇²(ℓ∘f)(x))``.

    Returns:
        ``(d_0, r_0)``: the approximate diagonal and the exact gradient (shapes of ``x``).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> d, g = diag_hessian_approx([dnp.sin], lambda s: dnp.sum(s ** 2), np.array([0.5]))
        >>> bool(np.isclose(d[0], 2 * np.cos(1.0)))
        True
    """
    if init not in ("diag", "full_first"):
        raise ValueError(f"init must be 'diag' or 'full_first', got {init!r}")
    chain = _check_chain(chain, "chain")
    x = _as_float_array(x, "x")
    s = _forward_chain(chain, x)
    _, r, R = _loss_rules(loss, s[-1])
    d = np.diag(R).copy()
    for k in range(len(chain), 0, -1):
        _, J, H = _layer_rules(chain[k - 1], [s[k - 1]], r)
        if init == "full_first" and k == len(chain):
            d_new = np.diag(H) + np.einsum("ji,jk,ki->i", J, R, J)
        else:
            d_new = np.diag(H) + (J ** 2).T @ d
        r, d = J.T @ r, d_new
    return d.reshape(x.shape), r.reshape(x.shape)


def diag_hessian_approx_graph(graph_or_fn: Graph | Callable, loss: Callable | None = None,
                              *args: Any) -> tuple[tuple[np.ndarray, ...],
                                                   tuple[np.ndarray, ...]]:
    """Diagonal Hessian approximation on a graph (§9.7.2, Eq. 9.5) — **an approximation**.

    In reverse topological order, for each node ``k`` and each parent ``i_j`` (its j-th input)::

        r_{i_j} += ∂_j f_k*[r_k]
        d_{i_j} += diag(∂²_{jj} f_k*[r_k]) + diag(∂_j f_k* Diag(d_k) ∂_j f_k)

    with the per-primitive oracle :func:`diag_oracle`, from ``d_K = diag(∇²ℓ(s_K))``. On chain
    graphs it equals :func:`diag_hessian_approx`.

    Args:
        graph_or_fn: a :class:`diffprog.Graph`, or a function traced on ``*args``.
        loss: scalar loss of the output, or None if the output is the scalar objective.

    Returns:
        ``(ds, grads)``: one approximate diagonal and one exact gradient per graph input.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> ds, gs = diag_hessian_approx_graph(lambda x: dnp.sum(dnp.sin(x) ** 2), None,
        ...                                    np.array([0.5]))
        >>> bool(np.isclose(ds[0][0], 2 * np.cos(1.0)))
        True
    """
    index, out, _, r_out, R_out = _prepare_graph(graph_or_fn, loss, args)
    nodes, n_in = index.graph.nodes, index.n_in
    r: dict[int, np.ndarray] = {}
    d: dict[int, np.ndarray] = {}
    if out is not None:
        r[out], d[out] = r_out, np.diag(R_out).copy()
    for k in range(len(nodes) - 1, n_in - 1, -1):
        if k not in r:
            continue
        rk, dk = r.pop(k), d.pop(k)
        rule = _NodeRule(index, k)
        if not rule.parents:
            continue
        _, J, H = _layer_rules(rule, rule.values, rk)
        dr = J.T @ rk
        dd = np.diag(H) + (J ** 2).T @ dk
        sizes = [v.size for v in rule.values]
        for p, gr, gd in zip(rule.parents, _split(dr, sizes, 0), _split(dd, sizes, 0),
                             strict=True):
            r[p] = gr if p not in r else r[p] + gr
            d[p] = gd if p not in d else d[p] + gd
    ds, grads = [], []
    for i in range(n_in):
        n, shp = np.size(nodes[i].value), np.shape(nodes[i].value)
        ds.append(d.get(i, np.zeros(n)).reshape(shp))
        grads.append(r.get(i, np.zeros(n)).reshape(shp))
    return tuple(ds), tuple(grads)


def mlp_diag_hessian(Ws: Sequence[Any], act: Callable, loss: Callable, x: Any,
                     y: Any) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Gradients and Becker–LeCun diagonal Hessian of an MLP's weights (Example 9.4, §9.7.2).

    For ``s_k = a(t_k)``, ``t_k = W_k s_{k-1}`` (k = 1..K) and loss ``ℓ(s_K, y)``, from
    ``r_K = ∇ℓ(s_K)`` and ``d_K = diag(∇²ℓ(s_K))``::

        g_k       = vec((a′(t_k) ⊙ r_k) s_{k-1}ᵀ)
        δ_k       = r_k ⊙ a″(t_k) + d_k ⊙ a′(t_k)²
        h_k       = vec(δ_k (s_{k-1}²)ᵀ)
        r_{k-1}   = W_kᵀ (a′(t_k) ⊙ r_k)
        d_{k-1,i} = Σ_j W_{k,ji}² δ_{k,j}        (the text's W_{k,ij} is an index typo)

    ``g_k`` are the exact gradients; ``h_K`` is the exact diagonal of the ``W_K`` Hessian block
    (``d_K`` is exact); the other ``h_k`` are **approximations** (exact for K = 1).
    ``vec`` is row-major; ``a′``, ``a″`` come from JVPs of the elementwise ``act``.

    Returns:
        ``((g_1..g_K), (h_1..h_K))``, each of the shape of ``W_k``.

    Example::

        >>> import numpy as np
        >>> g, h = mlp_diag_hessian([np.array([[2.0]])], lambda t: t,
        ...                         lambda s, y: ((s - y) ** 2).sum(), np.array([3.0]), 1.0)
        >>> float(g[0][0, 0]), float(h[0][0, 0])   # ℓ = (3w - 1)²: 6(3w - 1), 18
        (30.0, 18.0)
    """
    Ws, x = _check_mlp(Ws, x)
    s, a1s, a2s = [x], [], []
    for W in Ws:
        a, a1, a2 = _elementwise_derivs(act, W @ s[-1])
        s.append(a)
        a1s.append(a1)
        a2s.append(a2)
    _, r, R = _loss_rules(lambda z: loss(z, y), s[-1])
    d = np.diag(R).copy()
    K = len(Ws)
    gs: list[np.ndarray] = [None] * K  # type: ignore[list-item]
    hs: list[np.ndarray] = [None] * K  # type: ignore[list-item]
    for k in range(K, 0, -1):
        a1, a2, sp, W = a1s[k - 1], a2s[k - 1], s[k - 1], Ws[k - 1]
        delta_r = a1 * r
        delta = r * a2 + d * a1 ** 2
        gs[k - 1] = np.outer(delta_r, sp)
        hs[k - 1] = np.outer(delta, sp ** 2)
        r = W.T @ delta_r
        d = (W ** 2).T @ delta
    return tuple(gs), tuple(hs)
