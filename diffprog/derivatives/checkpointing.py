"""Checkpointing: trading recomputation for memory in reverse mode (Book §8.5).

A *chain* is a list of callables ``[f_1, ..., f_K]``, each mapping a state (an array or a pytree
of arrays) to a state of the same kind; it computes ``s_k = f_k(s_{k-1})``. Reverse mode needs
the inputs ``s_0, ..., s_{K-1}`` of the steps in reverse order. Book §8.5 counts

- ``C``: the calls to the ``f_k`` made *outside* the VJPs (the VJP of step k, taken at
  ``s_{k-1}``, evaluates ``f_k`` once more inside the engine; that cost is ignored by the book),
- ``M``: the number of states cached at the same time (the memory slots, ``s_0`` included; a
  state that is computed and immediately consumed by the VJP of the next step is transient and
  takes no slot, as in Alg 8.6).

The strategies here:

==================  =================================  ============  =======================
schedule            book                               ``C``         ``M``
==================  =================================  ============  =======================
``"store_all"``     Alg 8.2 (§8.5 cost model)          ``K−1``       ``K``
``"recompute"``     Alg 8.6 (constant memory)          ``K(K−1)/2``  ``1``
``"halving"``       Alg 8.7 (§8.5.1, split ⌊K/2⌋)      ``(K/2)log₂K``  ``⌈log₂K⌉``
``"dp"``            Eq. 8.3 (§8.5.2, treeverse)        ``C*(K,S)``   ``≤ S``
``"analytic"``      §8.5.2 closed form (revolve)       ``C*(K,S)``   ``≤ S``
==================  =================================  ============  =======================

Design: every strategy is compiled into a :class:`Schedule`, a list of actions
(``forward``/``save``/``load``/``free``/``reverse``) obtained by backtracking the optimal splits
(a binary tree, hence "treeverse"); one interpreter (:func:`run_schedule`) runs any schedule and
measures ``C`` and ``M`` while it runs, so the measured counts can be compared with the tables.

Errata: Eq. 8.3 prints the range of the min as ``1 ≤ l ≤ K−1``; the correct range is
``1 ≤ l ≤ k−1`` (the length of the sub-chain being reversed).

User-facing checkpoints (AD-44): :func:`checkpoint` (alias :func:`remat`) makes a function store
only its inputs and recompute its internals in the backward pass (a ``custom_vjp``), and
:func:`checkpoint_sequential` applies it to the segments of a chain. Online checkpointing for
loops of unknown length (§8.5.3) is :func:`vjp_online_checkpointed`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ChainVJP",
    "Schedule",
    "checkpoint",
    "checkpoint_cost",
    "checkpoint_schedule",
    "checkpoint_sequential",
    "remat",
    "run_schedule",
    "vjp_chain",
    "vjp_checkpointed",
    "vjp_full_recompute",
    "vjp_halving",
    "vjp_online_checkpointed",
]

_SCHEDULES = ("dp", "analytic", "halving", "store_all", "recompute")


class ChainVJP(NamedTuple):
    """Result of a chain VJP (Book §8.5).

    Attributes:
        value: ``s_K = f(s_0)``.
        cotangent: ``r_0 = ∂f(s_0)*[u]``.
        calls: ``C``, the calls to the steps outside the VJPs.
        slots: ``M``, the peak number of cached states.
        vjp_calls: the number of step VJPs (``K``).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> vjp_halving([dnp.sin] * 4, np.zeros(1), np.ones(1)).calls
        4
    """

    value: Any
    cotangent: Any
    calls: int
    slots: int
    vjp_calls: int


# ------------------------------------------------------------------------------------------
# argument checks


def _check_int(fname: str, arg: str, v: Any, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fname}: argument '{arg}' must be an integer, got {type(v).__name__}")
    v = int(v)
    if v < low:
        raise ValueError(f"{fname}: argument '{arg}' must be >= {low}, got {v}")
    return v


def _check_chain(fname: str, chain: Any) -> list:
    if callable(chain) or not isinstance(chain, Sequence) or isinstance(chain, (str, bytes)):
        raise TypeError(
            f"{fname}: argument 'chain' must be a list of callables [f_1, ..., f_K], got "
            f"{type(chain).__name__}"
        )
    chain = list(chain)
    if not chain:
        raise ValueError(f"{fname}: argument 'chain' must contain at least one function")
    for i, f in enumerate(chain):
        if not callable(f):
            raise TypeError(
                f"{fname}: argument 'chain' must contain callables; element {i} is "
                f"{type(f).__name__}"
            )
    return chain


def _check_costs(fname: str, costs: Any, K: int) -> np.ndarray:
    c = np.asarray(costs, dtype=float)
    if c.shape != (K,):
        raise ValueError(
            f"{fname}: argument 'costs' must have shape ({K},) (one cost per step), got "
            f"shape {c.shape}"
        )
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError(f"{fname}: argument 'costs' must be finite and nonnegative")
    return c


# ------------------------------------------------------------------------------------------
# cost tables


def _beta(s: int, r: int) -> int:
    """``β(s, r) = binom(s + r, s)``: the longest chain reversible with s slots, r repeats."""
    return comb(s + r, s) if s >= 0 and r >= 0 else 0


def _repetitions(k: int, s: int) -> int:
    r = 0
    while _beta(s, r) < k:
        r += 1
    return r


def checkpoint_cost(K: int, S: int) -> int:
    """Optimal number of step calls ``C*(K, S)`` in closed form (Griewank 1992; Book §8.5.2).

    Let ``r`` be the smallest integer with ``binom(S + r, S) ≥ K``; then
    ``C*(K, S) = r·K − binom(S + r, S + 1)``. It equals the dynamic program of Eq. 8.3.

    Example::

        >>> checkpoint_cost(8, 3), checkpoint_cost(16, 4), checkpoint_cost(64, 6)
        (11, 27, 156)
    """
    K = _check_int("checkpoint_cost", "K", K)
    S = _check_int("checkpoint_cost", "S", S)
    r = _repetitions(K, S)
    return r * K - comb(S + r, S + 1)


def _dp_table(K: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 8.3: ``C*(k,s) = min_{1≤l≤k−1} C*(k−l, s−1) + C*(l, s) + l``; returns (C*, l*)."""
    C = np.zeros((K + 1, S + 1), dtype=np.int64)
    L = np.zeros((K + 1, S + 1), dtype=np.int64)
    ks = np.arange(K + 1, dtype=np.int64)
    C[:, 1] = ks * (ks - 1) // 2
    C[0, :] = 0
    for s in range(2, S + 1):
        C[1 : s + 1, s] = ks[: s] if s <= K else ks[: K]  # C*(k, s ≥ k) = k − 1 with l* = 1
        L[2 : s + 1, s] = 1
        for k in range(s + 1, K + 1):
            ls = np.arange(1, k)
            tot = C[k - ls, s - 1] + C[ls, s] + ls
            j = int(np.argmin(tot))
            C[k, s] = tot[j]
            L[k, s] = ls[j]
    return C, L


def _weighted_dp(costs: np.ndarray, S: int) -> tuple[dict, dict]:
    """AD-41: the DP indexed by (start a, end b, slots s) with per-step costs ``c_k``.

    ``W(a,b,s) = min_{a<m<b} W(m,b,s−1) + W(a,m,s) + Σ_{t=a+1}^{m} c_t``; the cost of a
    segment reversed with one slot is ``Σ_{t=a+1}^{b−1} c_t (b − t)`` (Alg 8.6).
    """
    K = len(costs)
    P = np.concatenate([[0.0], np.cumsum(costs)])  # P[m] = c_1 + ... + c_m
    # W[s][a, b] for 0 <= a < b <= K
    W1 = np.full((K + 1, K + 1), np.inf)
    for a in range(K):
        for b in range(a + 1, K + 1):
            t = np.arange(a + 1, b)
            W1[a, b] = float(np.sum(costs[t - 1] * (b - t)))
    tables = {1: W1}
    splits: dict[tuple[int, int, int], int] = {}
    for s in range(2, S + 1):
        Ws = np.full((K + 1, K + 1), np.inf)
        prev = tables[s - 1]
        for a in range(K):
            Ws[a, a + 1] = 0.0
        for length in range(2, K + 1):
            for a in range(0, K - length + 1):
                b = a + length
                ms = np.arange(a + 1, b)
                tot = prev[ms, b] + Ws[a, ms] + (P[ms] - P[a])
                j = int(np.argmin(tot))
                Ws[a, b] = tot[j]
                splits[(a, b, s)] = int(ms[j])
        tables[s] = Ws
    return tables, splits


def _analytic_split(k: int, s: int) -> int:
    """Revolve's closed-form optimal split (Griewank & Walther 2000) for k steps, s ≥ 2 slots."""
    r = _repetitions(k, s)
    b1, b2, b3 = _beta(s, r - 1), _beta(s - 1, r - 1), _beta(s - 2, r - 1)
    b4, b5 = _beta(s, r - 2), _beta(s - 3, r)
    if k <= b1 + b3:
        lo = b4
    elif k >= _beta(s, r) - b5:
        lo = b1
    else:
        lo = k - b2 - b3
    return min(max(1, lo), k - 1)


# ------------------------------------------------------------------------------------------
# schedules


@dataclass
class Schedule:
    """A checkpointing schedule for a chain of ``K`` steps with ``S`` slots (Book §8.5.2).

    Attributes:
        K, S: chain length and number of memory slots (``s_0``'s slot included).
        method: ``"dp"``, ``"analytic"``, ``"halving"``, ``"store_all"`` or ``"recompute"``.
        table: the DP table ``C*[k, s]`` (``k ≤ K``, ``s ≤ min(S, K)``; more slots than steps
            change nothing) for ``method="dp"`` with uniform costs, else ``None``.
        splits: the optimal splits ``l*[k, s]`` (same shape) for ``"dp"``, else ``None``.
        actions: tuples ``("forward", i, j)`` (compute ``s_j`` from the current ``s_i``:
            ``j − i`` calls), ``("save", i)`` (cache the current state in a slot),
            ``("load", i)`` (the current state becomes the cached ``s_i``), ``("free", i)`` and
            ``("reverse", k)`` (apply the VJP of ``f_k`` at the current state ``s_{k−1}``).
        calls: ``C``, the number of step calls of the schedule.
        slots: ``M``, its peak number of cached states.
        cost: ``Σ c_k`` over the calls (equals ``calls`` for unit costs).
        costs: the per-step costs (``None`` for unit costs).

    Example::

        >>> sch = checkpoint_schedule(8, 3)
        >>> sch.calls, sch.slots, int(sch.table[8, 3])
        (11, 3, 11)
    """

    K: int
    S: int
    method: str
    actions: list
    table: np.ndarray | None = None
    splits: np.ndarray | None = None
    costs: np.ndarray | None = None
    calls: int = 0
    slots: int = 0
    cost: float = 0.0
    _summary: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        calls, slots, cost = 0, 0, 0.0
        held: set[int] = set()
        c = self.costs
        for act in self.actions:
            if act[0] == "forward":
                calls += act[2] - act[1]
                cost += float(np.sum(c[act[1]:act[2]])) if c is not None else act[2] - act[1]
            elif act[0] == "save":
                held.add(act[1])
                slots = max(slots, len(held))
            elif act[0] == "free":
                held.discard(act[1])
        self.calls, self.slots, self.cost = calls, slots, cost


def _actions_from_splits(K: int, split: Callable[[int, int, int], int | None], S: int) -> list:
    """Backtrack a split rule into actions. ``split(a, b, s)`` returns the split point m
    (a < m < b) for reversing steps a+1..b with s slots, or None for Alg 8.6 (one slot)."""
    acts: list = [("save", 0)]
    # explicit stack instead of recursion (the tree is K deep for many slots); items are
    # ("rev", a, b, s): reverse steps a+1..b with s slots, s_a cached and current; or an action
    stack: list = [("rev", 0, K, S)]
    while stack:
        item = stack.pop()
        if item[0] != "rev":
            acts.append(item)
            continue
        _, a, b, s = item
        if b - a == 1:
            acts.append(("reverse", b))
            continue
        m = split(a, b, s) if s > 1 else None
        if m is None:  # Alg 8.6 on the segment: recompute from s_a for every step
            for j in range(b, a, -1):
                acts.append(("load", a))
                if j - 1 > a:
                    acts.append(("forward", a, j - 1))
                acts.append(("reverse", j))
            continue
        acts.append(("forward", a, m))
        todo: list
        if b - m == 1:  # transient: consumed at once by the VJP of f_b
            todo = [("reverse", b)]
        else:
            todo = [("save", m), ("rev", m, b, s - 1), ("free", m)]
        todo += [("load", a), ("rev", a, m, s)]
        stack.extend(reversed(todo))
    acts.append(("free", 0))
    return acts


def _store_all_actions(K: int) -> list:
    acts: list = [("save", 0)]
    for k in range(1, K):
        acts += [("forward", k - 1, k), ("save", k)]
    for k in range(K, 0, -1):
        acts += [("load", k - 1), ("reverse", k), ("free", k - 1)]
    return acts


def _halving_split(a: int, b: int, s: int) -> int:
    return a + (b - a) // 2


def checkpoint_schedule(K: int, S: int | None = None, costs: Any = None,
                        method: str = "dp") -> Schedule:
    """Checkpointing schedule for reversing a chain of K steps with S memory slots (Book §8.5.2).

    ``method="dp"`` solves Eq. 8.3 (errata: the min runs over ``1 ≤ l ≤ k−1``)::

        C*(k, s) = min_{1≤l≤k−1} C*(k−l, s−1) + C*(l, s) + l,   C*(1, s) = 0,
        C*(k, 1) = k(k−1)/2,

    records ``l*(k, s)`` and backtracks both branches into an action list (treeverse).
    With per-step ``costs`` (AD-41) the ``+ l`` term becomes ``Σ_{m} c_m`` over the recomputed
    segment and the DP is indexed by (start, end, s). ``method="analytic"`` takes the splits from
    revolve's closed formula (Griewank 1992), no table, and ignores costs; its count is
    ``C*(K,S) = r·K − binom(S+r, S+1)`` with ``r`` the smallest integer such that
    ``binom(S+r, S) ≥ K``. ``"halving"`` (Alg 8.7, split at ⌊k/2⌋, ``S`` unused),
    ``"store_all"`` (``S`` unused) and ``"recompute"`` (Alg 8.6, one slot) are also available.
    The DP costs ``O(K² min(S, K))`` time (``O(K³ S)`` with costs); for very long chains use
    ``method="analytic"``, which is ``O(K)``.

    Example::

        >>> sch = checkpoint_schedule(16, 4)
        >>> sch.calls, checkpoint_schedule(16, method="halving").calls
        (27, 32)
    """
    fname = "checkpoint_schedule"
    K = _check_int(fname, "K", K)
    if method not in _SCHEDULES:
        raise ValueError(f"{fname}: unknown method {method!r}; expected one of {_SCHEDULES}")
    if method in ("dp", "analytic"):
        if S is None:
            raise TypeError(f"{fname}: method={method!r} needs the number of slots 'S'")
        S = _check_int(fname, "S", S)
    elif S is not None:
        S = _check_int(fname, "S", S)
    c = None
    if costs is not None:
        c = _check_costs(fname, costs, K)
        if method != "dp":
            raise ValueError(
                f"{fname}: argument 'costs' is only supported by method='dp' (the analytic "
                f"formula ignores varying costs), got method={method!r}"
            )
    if method == "store_all":
        return Schedule(K, K if S is None else S, method, _store_all_actions(K), costs=c)
    if method == "recompute":
        return Schedule(K, 1, method, _actions_from_splits(K, lambda a, b, s: None, 1), costs=c)
    if method == "halving":
        need = max(1, int(np.ceil(np.log2(K)))) if K > 1 else 1
        return Schedule(K, need if S is None else S, method,
                        _actions_from_splits(K, _halving_split, K + 1), costs=c)
    S_eff = min(S, K)
    if method == "analytic":
        acts = _actions_from_splits(K, lambda a, b, s: a + _analytic_split(b - a, s), S_eff)
        return Schedule(K, S, method, acts)
    if c is not None and not np.all(c == c[0]):
        _, splits = _weighted_dp(c, S_eff)
        acts = _actions_from_splits(K, lambda a, b, s: splits[(a, b, s)], S_eff)
        return Schedule(K, S, method, acts, costs=c)
    C, L = _dp_table(K, S_eff)
    acts = _actions_from_splits(K, lambda a, b, s: a + int(L[b - a, s]), S_eff)
    return Schedule(K, S, method, acts, table=C, splits=L, costs=c)


# ------------------------------------------------------------------------------------------
# running a schedule


def _step_vjp(f: Callable, x: Any, r: Any) -> tuple[Any, Any]:
    from ..core.api import vjp

    out, f_vjp = vjp(f, x)
    return out, f_vjp(r)[0]


def run_schedule(chain: Sequence[Callable], s0: Any, u: Any, schedule: Schedule) -> ChainVJP:
    """Run a :class:`Schedule` on a chain and measure ``C`` and ``M`` (Book §8.5).

    Returns ``ChainVJP(value=s_K, cotangent=∂f(s_0)*[u], calls, slots, vjp_calls)``; ``calls``
    and ``slots`` are counted while running (they equal ``schedule.calls``/``schedule.slots``).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> chain = [dnp.sin] * 8
        >>> res = run_schedule(chain, np.ones(2), np.ones(2), checkpoint_schedule(8, 3))
        >>> res.calls, res.slots
        (11, 3)
    """
    fname = "run_schedule"
    chain = _check_chain(fname, chain)
    if not isinstance(schedule, Schedule):
        raise TypeError(f"{fname}: argument 'schedule' must be a Schedule, got "
                        f"{type(schedule).__name__}")
    if schedule.K != len(chain):
        raise ValueError(f"{fname}: the schedule is for K={schedule.K} steps but the chain has "
                         f"{len(chain)}")
    slots: dict[int, Any] = {}
    cur, cur_i = s0, 0
    r = u
    value = None
    calls = peak = nvjp = 0
    for act in schedule.actions:
        kind = act[0]
        if kind == "forward":
            i, j = act[1], act[2]
            if cur_i != i:
                raise RuntimeError(f"{fname}: schedule moves from s_{i} but holds s_{cur_i}")
            for k in range(i, j):
                cur = chain[k](cur)
                calls += 1
            cur_i = j
        elif kind == "save":
            slots[act[1]] = cur
            peak = max(peak, len(slots))
        elif kind == "load":
            cur, cur_i = slots[act[1]], act[1]
        elif kind == "free":
            del slots[act[1]]
        elif kind == "reverse":
            k = act[1]
            if cur_i != k - 1:
                raise RuntimeError(f"{fname}: VJP of f_{k} needs s_{k - 1}, holds s_{cur_i}")
            out, r = _step_vjp(chain[k - 1], cur, r)
            nvjp += 1
            if value is None:
                value = out
            del out
        else:  # pragma: no cover - schedules are built here
            raise ValueError(f"{fname}: unknown action {act!r}")
    return ChainVJP(value, r, calls, peak, nvjp)


def vjp_checkpointed(chain: Sequence[Callable], s0: Any, u: Any, num_slots: int | None = None,
                     schedule: str | Schedule = "dp", costs: Any = None) -> ChainVJP:
    """VJP of a chain ``f_K ∘ … ∘ f_1`` at ``s0`` under a checkpointing schedule (Book §8.5.2).

    ``r_0 = ∂(f_K ∘ … ∘ f_1)(s_0)*[u]``, computed with at most ``num_slots`` cached states.
    ``schedule`` is ``"dp"`` (optimal, Eq. 8.3, with optional per-step ``costs``),
    ``"analytic"`` (revolve's closed form), ``"halving"`` (Alg 8.7), ``"store_all"``,
    ``"recompute"`` (Alg 8.6) or a :class:`Schedule`. Returns a :class:`ChainVJP` with the
    measured ``calls`` (C) and ``slots`` (M).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = vjp_checkpointed([dnp.tanh] * 16, np.ones(3), np.ones(3), num_slots=4)
        >>> res.calls, res.slots <= 4
        (27, True)
    """
    fname = "vjp_checkpointed"
    chain = _check_chain(fname, chain)
    K = len(chain)
    if isinstance(schedule, Schedule):
        return run_schedule(chain, s0, u, schedule)
    if not isinstance(schedule, str) or schedule not in _SCHEDULES:
        raise ValueError(f"{fname}: unknown schedule {schedule!r}; expected one of {_SCHEDULES} "
                         "or a Schedule")
    if num_slots is not None:
        num_slots = _check_int(fname, "num_slots", num_slots)
    if schedule in ("dp", "analytic") and num_slots is None:
        raise TypeError(f"{fname}: schedule={schedule!r} needs 'num_slots'")
    if schedule == "halving" and num_slots is not None:
        need = checkpoint_schedule(K, method="halving").slots
        if num_slots < need:
            raise ValueError(f"{fname}: recursive halving of K={K} steps needs {need} slots, "
                             f"got num_slots={num_slots}")
    if schedule == "store_all" and num_slots is not None and num_slots < K:
        raise ValueError(f"{fname}: store_all needs num_slots >= K={K}, got {num_slots}")
    sch = checkpoint_schedule(K, num_slots if schedule in ("dp", "analytic") else None,
                              costs=costs, method=schedule)
    return run_schedule(chain, s0, u, sch)


def vjp_chain(chain: Sequence[Callable], s0: Any, u: Any,
              checkpoint: str = "store_all", num_slots: int | None = None) -> ChainVJP:
    """VJP of a chain with the book's counters C and M (Book §8.5, cost model; Alg 8.2).

    ``checkpoint="store_all"`` caches ``s_0, …, s_{K−1}`` in the forward pass, so
    ``C(K) = K−1`` and ``M(K) = K``; any other schedule name of :func:`vjp_checkpointed` works.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = vjp_chain([dnp.sin] * 8, np.ones(2), np.ones(2))
        >>> res.calls, res.slots
        (7, 8)
    """
    _check_chain("vjp_chain", chain)
    if not isinstance(checkpoint, str) or checkpoint not in _SCHEDULES:
        raise ValueError(f"vjp_chain: unknown checkpoint {checkpoint!r}; expected one of "
                         f"{_SCHEDULES}")
    return vjp_checkpointed(chain, s0, u, num_slots=num_slots, schedule=checkpoint)


def vjp_full_recompute(chain: Sequence[Callable], s0: Any, u: Any) -> ChainVJP:
    """Reverse mode with constant memory (Book §8.5, Alg 8.6).

    For k = K..1: recompute ``s_{k−1} = (f_{k−1} ∘ … ∘ f_1)(s_0)`` and apply
    ``r_{k−1} = ∂f_k(s_{k−1})*[r_k]``: ``C(K) = K(K−1)/2``, ``M(K) = 1``.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = vjp_full_recompute([dnp.sin] * 8, np.ones(2), np.ones(2))
        >>> res.calls, res.slots
        (28, 1)
    """
    return vjp_checkpointed(chain, s0, u, schedule="recompute")


def vjp_halving(chain: Sequence[Callable], s0: Any, u: Any) -> ChainVJP:
    """Recursive halving, the recursive binary schedule (Book §8.5.1, Alg 8.7).

    Split at ``l = ⌊K/2⌋``: compute ``s_l``, reverse ``f_K ∘ … ∘ f_{l+1}`` from ``s_l``, then
    ``f_l ∘ … ∘ f_1`` from ``s_0``. ``C(K) = 2C(K/2) + K/2``, so ``C(K) = (K/2)·log₂K`` and
    ``M(K) = log₂K`` for K a power of 2 (``⌈log₂K⌉`` otherwise).

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = vjp_halving([dnp.sin] * 8, np.ones(2), np.ones(2))
        >>> res.calls, res.slots
        (12, 3)
    """
    return vjp_checkpointed(chain, s0, u, schedule="halving")


# ------------------------------------------------------------------------------------------
# online checkpointing (§8.5.3)


def vjp_online_checkpointed(step_fn: Callable, s0: Any, cond: Callable, u: Any,
                            num_slots: int, max_steps: int | None = None) -> ChainVJP:
    """VJP of ``while cond(s): s = step_fn(s)`` of unknown length with S slots (Book §8.5.3).

    Online scheme: the first states fill the slots at spacing ``d = 1``; whenever a new
    checkpoint would exceed ``S`` slots, every other checkpoint is dropped (``s_0`` stays) and
    ``d`` doubles, so at most S states are ever cached. When the loop stops at step T, the
    segments between checkpoints are reversed last to first with the offline optimal schedule
    (Eq. 8.3), each using the slots freed by the checkpoints already consumed. The total number
    of step calls (forward pass included) stays within ``2·C*(T, S)`` in practice (for T=100,
    S=5: 340 ≤ 632). ``u`` is the cotangent of the final state; returns a :class:`ChainVJP`.

    Example::

        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = vjp_online_checkpointed(lambda s: s + 1.0, np.zeros(1),
        ...                               lambda s: s[0] < 10, np.ones(1), num_slots=3)
        >>> float(res.value[0]), float(res.cotangent[0]), res.slots <= 3
        (10.0, 1.0, True)
    """
    fname = "vjp_online_checkpointed"
    if not callable(step_fn):
        raise TypeError(f"{fname}: argument 'step_fn' must be callable")
    if not callable(cond):
        raise TypeError(f"{fname}: argument 'cond' must be callable")
    S = _check_int(fname, "num_slots", num_slots)
    if max_steps is not None:
        max_steps = _check_int(fname, "max_steps", max_steps, low=0)
    ckpts: dict[int, Any] = {0: s0}
    d, t, cur = 1, 0, s0
    calls = 0
    peak = 1
    while bool(cond(cur)):
        if max_steps is not None and t >= max_steps:
            raise RuntimeError(f"{fname}: the loop did not stop within max_steps={max_steps}")
        cur = step_fn(cur)
        calls += 1
        t += 1
        if t % d == 0:
            if len(ckpts) >= S:
                d *= 2
                ckpts = {i: v for i, v in ckpts.items() if i % d == 0}
            if t % d == 0 and len(ckpts) < S:
                ckpts[t] = cur
            peak = max(peak, len(ckpts))
    T = t
    if T == 0:
        return ChainVJP(s0, u, 0, 1, 0)
    # the last checkpoint may be s_T itself: nothing to reverse there
    ckpts.pop(T, None)
    del cur
    starts = sorted(ckpts)
    r = u
    value = None
    nvjp = 0
    bounds = starts + [T]
    for idx in range(len(starts) - 1, -1, -1):
        a, b = bounds[idx], bounds[idx + 1]
        free = S - idx  # slots left: those of the checkpoints before this segment are taken
        sch = checkpoint_schedule(b - a, max(1, free))
        res = run_schedule([step_fn] * (b - a), ckpts[a], r, sch)
        if value is None:
            value = res.value
        r = res.cotangent
        calls += res.calls
        nvjp += res.vjp_calls
        peak = max(peak, idx + res.slots)
        del ckpts[a]
    return ChainVJP(value, r, calls, peak, nvjp)


# ------------------------------------------------------------------------------------------
# user-specified checkpoints (AD-44)


def checkpoint(fun: Callable) -> Callable:
    """Rematerialization: ``fun``'s internals are recomputed in the backward pass (Book §8.5).

    Reverse mode through ``checkpoint(fun)`` stores only ``fun``'s inputs; the backward pass
    re-runs ``vjp(fun, *inputs)`` and applies it, trading one extra evaluation of ``fun`` for
    its residuals (``jax.checkpoint`` / ``torch.utils.checkpoint``). Values and derivatives are
    unchanged; it nests with higher-order differentiation. Positional arguments are
    differentiated; use ``functools.partial`` for non-array options.

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> f = checkpoint(lambda x: dnp.sin(dnp.sin(x)))
        >>> round(float(diffprog.grad(f)(np.array(0.5))), 6)
        0.778644
    """
    if not callable(fun):
        raise TypeError(f"checkpoint: argument 'fun' must be callable, got {type(fun).__name__}")
    from ..core.api import vjp
    from ..core.custom import custom_vjp

    @custom_vjp
    @functools.wraps(fun)
    def wrapped(*args):
        return fun(*args)

    def fwd(*args):
        return fun(*args), args

    def bwd(args, g):
        _, f_vjp = vjp(fun, *args)
        return tuple(f_vjp(g))

    wrapped.defvjp(fwd, bwd)
    return wrapped


#: Alias of :func:`checkpoint` (``jax.remat``).
remat = checkpoint


def checkpoint_sequential(chain: Sequence[Callable], segments: int) -> Callable:
    """Compose a chain in ``segments`` checkpointed segments (Book §8.5, AD-44).

    Returns ``g(s_0) = (f_K ∘ … ∘ f_1)(s_0)`` where each run of about ``K / segments``
    consecutive steps is wrapped in :func:`checkpoint`: reverse mode stores only the segment
    inputs (and outputs) and recomputes each segment in the backward pass
    (``torch.utils.checkpoint.checkpoint_sequential``).

    Example::

        >>> import numpy as np, diffprog, diffprog.numpy as dnp
        >>> g = checkpoint_sequential([dnp.sin] * 6, 3)
        >>> y, g_vjp = diffprog.vjp(g, np.array([0.3]))
        >>> bool(np.allclose(y, np.sin(np.sin(np.sin(np.sin(np.sin(np.sin(0.3))))))))
        True
    """
    fname = "checkpoint_sequential"
    chain = _check_chain(fname, chain)
    segments = _check_int(fname, "segments", segments)
    if segments > len(chain):
        raise ValueError(f"{fname}: argument 'segments' must be <= len(chain)={len(chain)}, "
                         f"got {segments}")
    edges = np.linspace(0, len(chain), segments + 1).round().astype(int)
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        steps = chain[a:b]

        def seg(x, steps=steps):
            for f in steps:
                x = f(x)
            return x

        parts.append(checkpoint(seg))

    def composed(s0):
        x = s0
        for p in parts:
            x = p(x)
        return x

    return composed
