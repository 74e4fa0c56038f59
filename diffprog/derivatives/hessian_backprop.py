"""Hessian backpropagation on chains and graphs, block-diagonal Hessians and Gauss-Newton blocks.

Book §9.5 (second-order chain rule, Hessian backpropagation, Alg. 9.2, fan-in / fan-out
Props. 9.8–9.9) and §9.6 (block-diagonal Hessian and Gauss-Newton, Example 9.3, the graph
approximation Eqs. 9.3–9.4).

Every scheme here needs, besides the Jacobian ``∂f(s)`` of a layer (or primitive) ``f``, its
*output Hessian* along a cotangent ``r``::

    ∂²f(s)*[r] := ∇²⟨r, f⟩(s)

Both are computed *generically* with the engine (``diffprog.jacfwd`` and ``diffprog.hessian`` of
the scalar ``⟨r, f(s)⟩``), so any differentiable layer or traced primitive works without a
per-primitive table. This is meant for small layers: the matrices are dense.

Conventions: every array is flattened in C (row-major) order, so a Hessian with respect to an
array ``x`` of size ``n`` is an ``n × n`` matrix over ``x.ravel()`` (for a weight matrix
``W``, over ``vec(W)`` in row-major order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.api import grad, hessian, jacfwd
from ..core.ir import Graph, Var, make_graph

__all__ = [
    "hessian_backprop",
    "graph_hessian_backprop",
    "block_diag_hessian",
    "block_diag_gn",
    "mlp_block_diag_gn",
    "block_diag_hessian_approx",
]


# ----------------------------------------------------------------------------------------------
# generic per-layer rules (Jacobian, output Hessian) on flattened arguments
# ----------------------------------------------------------------------------------------------


def _as_float_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == object:
        raise TypeError(f"{what} must be an array of floats, got {type(x).__name__}")
    if not np.issubdtype(a.dtype, np.inexact):
        a = a.astype(float)
    return a


def _flat_fn(f: Callable, shapes: Sequence[tuple]) -> Callable:
    """``z ↦ f(*split(z)).ravel()`` for arguments of the given shapes (z is their concat)."""
    sizes = [int(np.prod(s, dtype=int)) for s in shapes]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def g(z):
        parts = [z[offs[i]:offs[i + 1]].reshape(shapes[i]) for i in range(len(shapes))]
        return f(*parts).ravel()

    return g


def _concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)


def _layer_rules(f: Callable, args: Sequence[np.ndarray], r: np.ndarray | None,
                 need_hessian: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Value, Jacobian ``∂f`` (m × n) and output Hessian ``∂²f*[r]`` (n × n) over the flattened,
    concatenated ``args``; generic AD (``jacfwd`` and ``hessian`` of ``⟨r, f⟩``)."""
    shapes = [np.shape(a) for a in args]
    g = _flat_fn(f, shapes)
    z0 = _concat(args)
    val = np.asarray(f(*args))
    m = val.size
    J = np.asarray(jacfwd(g)(z0)).reshape(m, z0.size)
    H = None
    if need_hessian:
        rr = np.asarray(r).ravel()
        H = np.asarray(hessian(lambda z: (g(z) * rr).sum())(z0)).reshape(z0.size, z0.size)
    return val, J, H


def _loss_rules(loss: Callable, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``ℓ(s)``, ``∇ℓ(s)`` (flat) and ``∇²ℓ(s)`` (n × n) over ``s.ravel()``."""
    val = np.asarray(loss(s))
    if val.size != 1:
        raise ValueError(f"the loss must return a scalar, got shape {val.shape}")
    n = np.size(s)
    r = np.asarray(grad(loss)(s)).reshape(n)
    R = np.asarray(hessian(loss)(s)).reshape(n, n)
    return float(val.reshape(())), r, R


def _check_chain(chain: Any, name: str) -> list:
    if callable(chain):
        chain = [chain]
    try:
        chain = list(chain)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of callables, got {type(chain).__name__}") from None
    for k, f in enumerate(chain):
        if not callable(f):
            raise TypeError(f"{name}[{k}] is not callable (got {type(f).__name__})")
    if not chain:
        raise ValueError(f"{name} must contain at least one layer")
    return chain


def _forward_chain(chain: list, x: np.ndarray) -> list[np.ndarray]:
    s = [x]
    for f in chain:
        s.append(np.asarray(f(s[-1])))
    return s


# ----------------------------------------------------------------------------------------------
# chains: Algorithm 9.2
# ----------------------------------------------------------------------------------------------


def hessian_backprop(chain: Sequence[Callable] | Callable, loss: Callable,
                     x: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """Hessian backpropagation through a chain ``ℓ ∘ f_K ∘ … ∘ f_1`` (Book §9.5.2, Alg. 9.2).

    Starting from ``r_K = ∇ℓ(s_K)`` and ``R_K = ∇²ℓ(s_K)``, for ``k = K, …, 1``::

        r_{k-1} = ∂f_k(s_{k-1})* r_k
        R_{k-1} = ∂²f_k(s_{k-1})*[r_k] + ∂f_k(s_{k-1})* R_k ∂f_k(s_{k-1})

    (and ``s_{k-1}`` is released). Each layer's Jacobian and output Hessian
    ``∂²f_k*[r] = ∇²⟨r, f_k⟩`` come from generic AD on the layer.

    Args:
        chain: the layers ``f_1, …, f_K`` (callables ``s_{k-1} ↦ s_k`` on arrays).
        loss: scalar loss ``ℓ(s_K)``.
        x: the input ``s_0``.

    Returns:
        ``(ℓ(f(x)), r_0, R_0)``: the value, the gradient ``∇(ℓ∘f)(x)`` (shape of ``x``) and the
        Hessian ``∇²(ℓ∘f)(x)`` as an ``n × n`` matrix over ``x.ravel()``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> v, g, H = hessian_backprop([dnp.sin], lambda s: dnp.sum(s ** 2), np.array([0.5]))
        >>> bool(np.isclose(H[0, 0], 2 * np.cos(1.0)))   # d²/dx² sin(x)² = 2cos(2x)
        True
    """
    chain = _check_chain(chain, "chain")
    x = _as_float_array(x, "x")
    s = _forward_chain(chain, x)
    val, r, R = _loss_rules(loss, s[-1])
    for k in range(len(chain), 0, -1):
        _, J, Hr = _layer_rules(chain[k - 1], [s[k - 1]], r)
        r, R = J.T @ r, Hr + J.T @ R @ J
        s[k - 1] = None  # release s_{k-1}
    return val, r.reshape(x.shape), R


# ----------------------------------------------------------------------------------------------
# feedforward nets with parameters: block-diagonal Hessian and Gauss-Newton (§9.6.1)
# ----------------------------------------------------------------------------------------------


def _check_layers(layers: Any, params: Any) -> tuple[list, list]:
    layers = _check_chain(layers, "layers")
    params = [_as_float_array(w, f"params[{k}]") for k, w in enumerate(params)]
    if len(params) != len(layers):
        raise ValueError(f"got {len(layers)} layers but {len(params)} parameter arrays")
    return layers, params


def block_diag_hessian(layers: Sequence[Callable], loss: Callable, x: Any,
                       params: Sequence[Any]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Exact diagonal blocks of the Hessian of a feedforward net in one backward pass (§9.6.1).

    For layers ``s_k = f_k(s_{k-1}, w_k)`` and loss ``ℓ(s_K)``, one backward sweep computes, with
    the joint Jacobian and output Hessian of ``f_k`` in ``(s_{k-1}, w_k)``::

        [[R_{k-1}, ∼], [∼, H_k]] = ∂²f_k(s_{k-1}, w_k)*[r_k] + ∂f_k* R_k ∂f_k,
        r_{k-1} = ∂_s f_k* r_k,

    from ``r_K = ∇ℓ(s_K)``, ``R_K = ∇²ℓ(s_K)``. Then ``R_0 = ∇²_xx`` and ``H_k = ∇²_{w_k w_k}``
    are the *exact* diagonal blocks of the Hessian of ``(x, w_1..w_K) ↦ ℓ(s_K)``.

    Returns:
        ``(R_0, (H_1, …, H_K))``, each over the row-major flattening of its argument.

    Example::

        >>> import numpy as np
        >>> R0, (H1,) = block_diag_hessian([lambda s, w: w * s], lambda s: (s ** 2).sum(),
        ...                                np.array([2.0]), [np.array([3.0])])
        >>> float(R0[0, 0]), float(H1[0, 0])   # ℓ = w²x²: 2w², 2x²
        (18.0, 8.0)
    """
    layers, params = _check_layers(layers, params)
    x = _as_float_array(x, "x")
    s = [x]
    for f, w in zip(layers, params, strict=True):
        s.append(np.asarray(f(s[-1], w)))
    _, r, R = _loss_rules(loss, s[-1])
    blocks: list[np.ndarray] = [None] * len(layers)  # type: ignore[list-item]
    for k in range(len(layers), 0, -1):
        n = s[k - 1].size
        _, J, Hr = _layer_rules(layers[k - 1], [s[k - 1], params[k - 1]], r)
        full = Hr + J.T @ R @ J
        blocks[k - 1] = full[n:, n:]
        r, R = J[:, :n].T @ r, full[:n, :n]
    return R, tuple(blocks)


def block_diag_gn(layers: Sequence[Callable], loss: Callable, x: Any,
                  params: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Diagonal blocks ``G_1..G_K`` of the Gauss-Newton matrix of a feedforward net (§9.6.1).

    With ``R_K = ∇²ℓ(s_K)`` and the joint Jacobian of ``f_k`` in ``(s_{k-1}, w_k)``::

        [[R_{k-1}, ∼], [∼, G_k]] = ∂f_k(s_{k-1}, w_k)* R_k ∂f_k(s_{k-1}, w_k).

    ``G_k`` equals the ``(w_k, w_k)`` block of ``Jᵀ ∇²ℓ J`` (J the Jacobian of the net output
    in all parameters); no second derivatives of the layers are needed. For an MLP
    ``f_k = a(W_k s_{k-1})`` see :func:`mlp_block_diag_gn` (Kronecker form, Example 9.3).

    Returns:
        ``(G_1, …, G_K)`` (the text's "G_0" is a typo), over row-major ``vec(w_k)``.

    Example::

        >>> import numpy as np
        >>> (G1,) = block_diag_gn([lambda s, w: w * s], lambda s: (s ** 2).sum(),
        ...                       np.array([2.0]), [np.array([3.0])])
        >>> float(G1[0, 0])   # Jᵀ 2 J with J = x = 2
        8.0
    """
    layers, params = _check_layers(layers, params)
    x = _as_float_array(x, "x")
    s = [x]
    for f, w in zip(layers, params, strict=True):
        s.append(np.asarray(f(s[-1], w)))
    _, _, R = _loss_rules(loss, s[-1])
    blocks: list[np.ndarray] = [None] * len(layers)  # type: ignore[list-item]
    for k in range(len(layers), 0, -1):
        n = s[k - 1].size
        _, J, _ = _layer_rules(layers[k - 1], [s[k - 1], params[k - 1]], None,
                               need_hessian=False)
        full = J.T @ R @ J
        blocks[k - 1] = full[n:, n:]
        R = full[:n, :n]
    return tuple(blocks)


def _elementwise_derivs(act: Callable, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a(t)``, ``a′(t)``, ``a″(t)`` of an elementwise activation by nested JVPs with ones."""
    from ..core.api import jvp

    ones = np.ones_like(t)

    def d1(u):
        return jvp(act, (u,), (np.ones_like(u),))[1]

    a, a1 = jvp(act, (t,), (ones,))
    _, a2 = jvp(d1, (t,), (ones,))
    return np.asarray(a), np.asarray(a1), np.asarray(a2)


def _check_mlp(Ws: Any, x: Any) -> tuple[list, np.ndarray]:
    Ws = [_as_float_array(W, f"Ws[{k}]") for k, W in enumerate(Ws)]
    if not Ws:
        raise ValueError("Ws must contain at least one weight matrix")
    x = _as_float_array(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be a vector, got shape {x.shape}")
    d = x.shape[0]
    for k, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[1] != d:
            raise ValueError(f"Ws[{k}] has shape {W.shape}; expected (D_{k + 1}, {d})")
        d = W.shape[0]
    return Ws, x


def mlp_block_diag_gn(Ws: Sequence[Any], act: Callable, loss: Callable, x: Any,
                      kron: bool = True) -> tuple[Any, ...]:
    """Gauss-Newton blocks of an MLP ``s_k = a(W_k s_{k-1})``, Kronecker form (Book §9.6.1).

    With ``R_K = ∇²ℓ(s_K)`` and ``t_k = W_k s_{k-1}``::

        J_k = R_k ⊙ (a′(t_k) a′(t_k)ᵀ),   R_{k-1} = W_kᵀ J_k W_k,   G_k = J_k ⊗ s_{k-1}s_{k-1}ᵀ.

    The Kronecker order is for row-major ``vec(W_k)`` (NumPy C order). ``a′`` comes from a JVP
    of the (elementwise) activation ``act``.

    Args:
        kron: if False, return the factors ``(J_k, s_{k-1}s_{k-1}ᵀ)`` instead of ``G_k``.

    Returns:
        ``(G_1, …, G_K)``, or the pairs of factors.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> (G1,) = mlp_block_diag_gn([np.eye(2)], lambda t: t, lambda s: (s ** 2).sum(),
        ...                           np.array([1.0, 2.0]))
        >>> G1.shape
        (4, 4)
    """
    Ws, x = _check_mlp(Ws, x)
    s, a1s = [x], []
    for W in Ws:
        a, a1, _ = _elementwise_derivs(act, W @ s[-1])
        s.append(a)
        a1s.append(a1)
    _, _, R = _loss_rules(loss, s[-1])
    out: list[Any] = [None] * len(Ws)
    for k in range(len(Ws), 0, -1):
        Jk = R * np.outer(a1s[k - 1], a1s[k - 1])
        ss = np.outer(s[k - 1], s[k - 1])
        out[k - 1] = np.kron(Jk, ss) if kron else (Jk, ss)
        R = Ws[k - 1].T @ Jk @ Ws[k - 1]
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# graphs (traced programs): exact Hessian backprop with cross terms, block-diagonal approximation
# ----------------------------------------------------------------------------------------------


class _Values(dict):
    """Maps a Var to its traced value (to resolve dynamic parameters)."""

    def __missing__(self, v):
        return v.value


def _is_float(v: Any) -> bool:
    return np.issubdtype(np.asarray(v).dtype, np.inexact)


class _GraphIndex:
    """Where each IR variable lives: its node, and for a node with several outputs its slice in
    the node's flat value (the concatenation of its floating-point outputs, raveled)."""

    def __init__(self, graph: Graph):
        prog = graph.program
        self.graph = graph
        self.n_in = len(prog.invars)
        self.node: dict = {v: i for i, v in enumerate(prog.invars)}
        self.slot: dict = {}  # Var of a several-output node -> (offset, size, shape)
        self.multi: set[int] = set()
        for e, eq in enumerate(prog.eqns):
            k = self.n_in + e
            if type(eq.outvars) is tuple:
                self.multi.add(k)
                off = 0
                for v in eq.outvars:
                    self.node[v] = k
                    if _is_float(v.value):
                        n = np.size(v.value)
                        self.slot[v] = (off, n, np.shape(v.value))
                        off += n
            else:
                self.node[eq.outvars] = k

    def is_diff(self, k: int) -> bool:
        """Whether node k carries derivatives (has a floating-point output)."""
        v = self.graph.nodes[k].value
        if k in self.multi:
            return any(_is_float(a) for a in v)
        return _is_float(v)

    def flat_value(self, k: int) -> np.ndarray:
        v = self.graph.nodes[k].value
        if k in self.multi:
            return _concat([a for a in v if _is_float(a)])
        return np.asarray(v)


class _NodeRule:
    """Node k of a graph as a local function of its differentiable parents' values."""

    def __init__(self, index: _GraphIndex, k: int):
        self.index = index
        self.eq = index.graph.program.eqns[k - index.n_in]
        self.multi = k in index.multi
        self.params = self.eq.resolve_params(_Values())
        self.parents = [p for p in index.graph.nodes[k].parents if index.is_diff(p)]
        self.values = [index.flat_value(p) for p in self.parents]

    def __call__(self, *pvals):
        from .. import numpy as dnp

        idx = self.index
        pos = {p: i for i, p in enumerate(self.parents)}
        vals = []
        for a in self.eq.inputs:
            if type(a) is not Var:
                vals.append(a)
                continue
            j = idx.node[a]
            if j not in pos:
                vals.append(a.value)
            elif j in idx.multi:
                if a in idx.slot:
                    off, n, shape = idx.slot[a]
                    vals.append(pvals[pos[j]][off:off + n].reshape(shape))
                else:  # a non-float output of a several-output node: a constant
                    vals.append(a.value)
            else:
                vals.append(pvals[pos[j]])
        ans = self.eq.prim.bind(*vals, **self.params)
        if self.multi:
            outs = [o for o, v in zip(ans, self.eq.outvars, strict=True) if v in idx.slot]
            return dnp.concatenate([dnp.ravel(o) for o in outs])
        return ans


def _prepare_graph(graph_or_fn: Graph | Callable, loss: Callable | None, args: tuple):
    """Trace if needed; returns (index, output node or None, value, r_K, R_K) where r_K and R_K
    are over the output node's flat value."""
    if isinstance(graph_or_fn, Graph):
        if args:
            raise TypeError("pass either a Graph, or a function and its arguments, not both")
        graph = graph_or_fn
    elif callable(graph_or_fn):
        if not args:
            raise TypeError("a function needs example arguments to be traced")
        graph = make_graph(graph_or_fn, *args)
    else:
        raise TypeError(f"expected a Graph or a callable, got {type(graph_or_fn).__name__}")
    if len(graph.outputs) != 1:
        raise ValueError(f"the graph must have exactly one output, got {len(graph.outputs)}")
    index = _GraphIndex(graph)
    o = graph.program.outputs[0]
    out = graph.outputs[0]
    s_out = np.asarray(o.value if type(o) is Var else o)
    if loss is None:
        if s_out.size != 1:
            raise ValueError("without a loss the graph's output must be a scalar, "
                             f"got shape {s_out.shape}")
        val = float(s_out.reshape(()))
        r, R = np.ones(1), np.zeros((1, 1))
    else:
        val, r, R = _loss_rules(loss, s_out)
    if out is not None and not index.is_diff(out):
        out = None
    if out is not None and out in index.multi:
        if o not in index.slot:
            out = None
        else:
            off, n, _ = index.slot[o]
            N = index.flat_value(out).size
            r_full, R_full = np.zeros(N), np.zeros((N, N))
            r_full[off:off + n] = r
            R_full[off:off + n, off:off + n] = R
            r, R = r_full, R_full
    return index, out, val, r, R


def _split(M: np.ndarray, sizes: list[int], axis: int) -> list[np.ndarray]:
    offs = np.cumsum(sizes)[:-1]
    return np.split(M, offs, axis=axis)


def graph_hessian_backprop(graph_or_fn: Graph | Callable, loss: Callable | None = None,
                           *args: Any) -> tuple[float, tuple[np.ndarray, ...], np.ndarray]:
    """Exact Hessian backpropagation on a traced DAG, cross terms included (§9.5.3, Props 9.8–9.9).

    Nodes are eliminated in reverse topological order. When node ``k = f_k(s_{pa(k)})`` is
    eliminated, its cotangent and its curvature blocks are pushed to its parents, including the
    fan-in **cross terms** between distinct parents ``i ≠ j``::

        r_i     += ∂_i f_k* r_k
        R_{ij}  += ∂²_{ij} f_k*[r_k] + ∂_i f_k* R_{kk} ∂_j f_k         (i, j ∈ pa(k))
        R_{im}  += ∂_i f_k* R_{km},  R_{mi} += R_{mk} ∂_i f_k          (m live, m ∉ {k})

    The blocks ``R_{km}`` between live nodes carry the fan-out terms, so the result is the exact
    Hessian (a Hessian backprop over the live "frontier"). Per-node Jacobians and output
    Hessians ``∂²f_k*[r] = ∇²⟨r, f_k⟩`` come from generic AD on the primitive.

    Args:
        graph_or_fn: a :class:`diffprog.Graph`, or a function (traced on ``*args``).
        loss: a scalar loss applied to the graph's output; None if the output is the scalar
            objective.

    Returns:
        ``(value, grads, H)``: the objective, one gradient per graph input (array leaf of the
        arguments), and the full Hessian over the concatenation of the flattened inputs.

    Example::

        >>> import numpy as np
        >>> _, g, H = graph_hessian_backprop(lambda w: (1.0 * w) * (1.0 * w), None, 3.0)
        >>> float(H[0, 0])   # ℓ(a, b) = ab with a = b = w: the cross terms give 2
        2.0
    """
    index, out, val, r_out, R_out = _prepare_graph(graph_or_fn, loss, args)
    nodes, n_in = index.graph.nodes, index.n_in
    sizes_in = [np.size(nodes[i].value) for i in range(n_in)]
    r: dict[int, np.ndarray] = {}
    R: dict[tuple[int, int], np.ndarray] = {}
    live: list[int] = []
    if out is not None:
        r[out], R[(out, out)], live = r_out, R_out, [out]

    def add(key, M):
        R[key] = M if key not in R else R[key] + M

    for k in range(len(nodes) - 1, n_in - 1, -1):
        if k not in live:
            continue
        live.remove(k)
        rk = r.pop(k)
        Rkk = R.pop((k, k))
        Rk_m = {m: R.pop((k, m)) for m in live if (k, m) in R}
        for m in live:
            R.pop((m, k), None)
        rule = _NodeRule(index, k)
        P = rule.parents
        if not P:
            continue
        _, J, Hr = _layer_rules(rule, rule.values, rk)
        psz = [v.size for v in rule.values]
        Js = _split(J, psz, axis=1)
        Hs = [_split(row, psz, axis=1) for row in _split(Hr, psz, axis=0)]
        for a, p in enumerate(P):
            r[p] = Js[a].T @ rk if p not in r else r[p] + Js[a].T @ rk
        deltas: list[tuple[tuple[int, int], np.ndarray]] = []
        for a, p in enumerate(P):
            for b, q in enumerate(P):
                deltas.append(((p, q), Hs[a][b] + Js[a].T @ Rkk @ Js[b]))
            for m, Rkm in Rk_m.items():
                C = Js[a].T @ Rkm
                deltas.append(((p, m), C))
                deltas.append(((m, p), C.T))
        for key, M in deltas:
            add(key, M)
        for p in P:
            if p not in live:
                live.append(p)
    grads = tuple(r.get(i, np.zeros(sizes_in[i])).reshape(np.shape(nodes[i].value))
                  for i in range(n_in))
    H = np.block([[R.get((i, j), np.zeros((sizes_in[i], sizes_in[j]))) for j in range(n_in)]
                  for i in range(n_in)]) if n_in else np.zeros((0, 0))
    return val, grads, H


def block_diag_hessian_approx(graph_or_fn: Graph | Callable, loss: Callable | None = None,
                              *args: Any) -> tuple[float, tuple[np.ndarray, ...],
                                                   tuple[np.ndarray, ...]]:
    """**Approximate** block-diagonal Hessian on a graph, no cross terms (§9.6.2, Eqs. 9.3–9.4).

    In reverse topological order, for each node ``k`` and each parent ``i_j`` (its j-th input)::

        r_{i_j} += ∂_j f_k* [r_k]
        R_{i_j} += ∂²_{jj} f_k*[r_k] + ∂_j f_k* R_k ∂_j f_k

    from ``r_K = ∇ℓ(s_K)``, ``R_K = ∇²ℓ(s_K)``. Only one block per node is kept, so the fan-in
    cross terms ``∂²_{ij}`` (i ≠ j) and the coupling between fan-out branches are lost. This is
    **not the Hessian**: it is exact on chains (it then equals :func:`hessian_backprop`), but for
    ``s1 = w, s2 = w, s3 = s1·s2, ℓ = s3`` it returns 0 while the true Hessian is 2 (the exact
    scheme is :func:`graph_hessian_backprop`). The gradients ``r`` are exact.

    Returns:
        ``(value, grads, blocks)``: the objective, one gradient per input, and one approximate
        Hessian block per input (over its flattening).

    Example::

        >>> _, g, (B,) = block_diag_hessian_approx(lambda w: (1.0 * w) * (1.0 * w), None, 3.0)
        >>> float(B[0, 0])   # the true value is 2
        0.0
    """
    index, out, val, r_out, R_out = _prepare_graph(graph_or_fn, loss, args)
    nodes, n_in = index.graph.nodes, index.n_in
    r: dict[int, np.ndarray] = {}
    R: dict[int, np.ndarray] = {}
    if out is not None:
        r[out], R[out] = r_out, R_out
    for k in range(len(nodes) - 1, n_in - 1, -1):
        if k not in r:
            continue
        rk, Rk = r.pop(k), R.pop(k)
        rule = _NodeRule(index, k)
        if not rule.parents:
            continue
        _, J, Hr = _layer_rules(rule, rule.values, rk)
        psz = [v.size for v in rule.values]
        Js = _split(J, psz, axis=1)
        Hs = [_split(row, psz, axis=1) for row in _split(Hr, psz, axis=0)]
        for a, p in enumerate(rule.parents):
            dr = Js[a].T @ rk
            dR = Hs[a][a] + Js[a].T @ Rk @ Js[a]
            r[p] = dr if p not in r else r[p] + dr
            R[p] = dR if p not in R else R[p] + dR
    grads, blocks = [], []
    for i in range(n_in):
        n, shp = np.size(nodes[i].value), np.shape(nodes[i].value)
        grads.append(r.get(i, np.zeros(n)).reshape(shp))
        blocks.append(R.get(i, np.zeros((n, n))))
    return val, tuple(grads), tuple(blocks)
