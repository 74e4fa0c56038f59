"""Checking automatic-differentiation rules against finite differences (Book §7.8, §8.4).

``check_grads`` is the test oracle for every primitive and custom rule of the engine
(spec AD-13, AD-30). It is written against the public engine API only
(``diffprog.jvp`` and ``diffprog.vjp``, imported lazily so that this module can be imported
while ``diffprog`` itself is still initialising).

Design notes
------------
* Directions are drawn with ``np.random.default_rng(seed)`` and normalised to unit Euclidean
  norm over all differentiable arguments (cotangents likewise over all outputs), so ``eps``
  is an absolute step length along the direction.
* The reference derivative is the 4-point central difference (``accuracy=2``, truncation
  ``O(δ⁴)``) of ``t ↦ f(args + t v)`` evaluated with every argument upcast to float64
  (complex128), with ``δ = max(1, max|args|) · ε₆₄^(1/5) ≈ 7e-4·max(1, max|args|)`` by
  default: truncation ``~δ⁴`` and round-off ``~ε/δ`` are then both ``≲ 1e-12`` relative for
  smooth ``f``, far inside the default tolerances.
* Order ``n > 1`` recurses on the *first-order derivative functions* with fixed random
  directions, ``args ↦ jvp(f, args, v)[1]`` and ``args ↦ vjp(f, *args)[1](u)``, each checked
  in every requested mode, so that forward-over-forward, reverse-over-forward,
  forward-over-reverse and reverse-over-reverse rules are all exercised.
* Integer and boolean arguments (and non-array arguments) have no tangent space: they are
  held fixed (closed over) and never given a tangent.
* Complex values follow the engine's (and JAX's) convention: ``vjp_fn`` is the transpose of the
  R-linear JVP for the real bilinear pairing ``(a, b) ↦ Re Σ a·b`` (no conjugation; e.g. the
  VJP of ``z ↦ c·z`` is ``u ↦ c·u``). The reverse check is ``Re Σ vjp_fn(u)·v = Re Σ u·∂f[v]``,
  which is equivalent to ``Re⟨conj vjp_fn(conj u), v⟩ = Re⟨u, ∂f[v]⟩`` with the usual
  (conjugate-linear) inner product, and holds for holomorphic and non-holomorphic f alike.
  For real arrays it is the plain adjoint identity ``⟨vjp_fn(u), v⟩ = ⟨u, ∂f[v]⟩``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .finite_differences import fd_jvp

__all__ = ["check_grads"]

_MODES = ("fwd", "rev")


# ----------------------------------------------------------------------------------------------
# minimal pytree handling for f's outputs (tuples, lists, dicts, None; everything else a leaf)
# ----------------------------------------------------------------------------------------------


def _flatten(tree: Any) -> tuple[list[Any], Any]:
    if tree is None:
        return [], ("none",)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # namedtuple
        leaves, defs = _flatten_seq(tree)
        return leaves, ("namedtuple", type(tree), defs)
    if isinstance(tree, (tuple, list)):
        leaves, defs = _flatten_seq(tree)
        return leaves, (type(tree).__name__, defs)
    if isinstance(tree, dict):
        keys = sorted(tree)
        leaves, defs = _flatten_seq([tree[k] for k in keys])
        return leaves, ("dict", keys, defs)
    return [tree], ("leaf",)


def _flatten_seq(items: Sequence[Any]) -> tuple[list[Any], list[tuple[int, Any]]]:
    leaves: list[Any] = []
    defs = []
    for item in items:
        sub, d = _flatten(item)
        defs.append((len(sub), d))
        leaves.extend(sub)
    return leaves, defs


def _unflatten(treedef: Any, leaves: Sequence[Any]) -> Any:
    kind = treedef[0]
    if kind == "none":
        return None
    if kind == "leaf":
        return leaves[0]
    defs = treedef[-1]
    items, pos = [], 0
    for n, d in defs:
        items.append(_unflatten(d, leaves[pos : pos + n]))
        pos += n
    if kind == "namedtuple":
        return treedef[1](*items)
    if kind == "tuple":
        return tuple(items)
    if kind == "list":
        return items
    return dict(zip(treedef[1], items, strict=True))


def _tree_tools() -> tuple[Callable[[Any], tuple[list[Any], Any]], Callable[[Any, Any], Any]]:
    """The engine's pytree functions (registered dataclasses etc.) when available, else ours."""
    try:
        from diffprog.core.pytree import tree_flatten, tree_unflatten
    except Exception:  # engine not importable: fall back to tuples/lists/dicts
        return _flatten, _unflatten
    return tree_flatten, tree_unflatten


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _is_inexact(dtype: np.dtype) -> bool:
    return dtype.kind in "fc"


def _upcast(x: np.ndarray) -> np.ndarray:
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def _dtype_of(x: Any) -> np.dtype | None:
    dt = getattr(x, "dtype", None)
    if dt is None:
        if isinstance(x, (float, complex, numbers.Real, numbers.Complex)):
            return np.asarray(x).dtype
        return None
    try:
        return np.dtype(dt)
    except TypeError:
        return None


def _like(direction: np.ndarray, x: Any) -> np.ndarray:
    """Cast a fixed direction to the dtype of the (possibly traced) value ``x``."""
    dt = _dtype_of(x)
    if dt is None or not _is_inexact(dt):
        return direction
    if dt.kind == "f" and direction.dtype.kind == "c":
        return direction.real.astype(dt)
    return direction.astype(dt)


def _pair(a: np.ndarray, b: np.ndarray) -> float:
    """``Re Σ a·b``: the real bilinear pairing for which ``vjp_fn`` is the JVP's transpose."""
    return float(np.real(np.sum(a * b)))


def _default_tol(dtypes: Sequence[np.dtype]) -> float:
    bits = min((np.finfo(dt).bits for dt in dtypes if _is_inexact(dt)), default=64)
    return {16: 5e-2, 32: 1e-3}.get(bits, 1e-5)


def _random_like(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    r = rng.standard_normal(x.shape)
    if x.dtype.kind == "c":
        r = r + 1j * rng.standard_normal(x.shape)
    return r


def _normalise(vs: list[np.ndarray]) -> list[np.ndarray]:
    norm = np.sqrt(sum(float(np.sum(np.abs(v) ** 2)) for v in vs))
    return [v / norm for v in vs] if norm > 0 else vs


def _as_array(fname: str, what: str, x: Any, shape: tuple[int, ...]) -> np.ndarray:
    if x is None:  # a symbolic zero
        return np.zeros(shape)
    arr = np.asarray(x)
    if arr.shape != shape:
        raise AssertionError(f"{fname}: {what} has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind not in "biufc":
        raise AssertionError(f"{fname}: {what} has non-numeric dtype {arr.dtype}")
    return _upcast(arr) if _is_inexact(arr.dtype) else arr.astype(np.float64)


def _worst(ad: np.ndarray, fd: np.ndarray, atol: float, rtol: float) -> str | None:
    err = np.abs(ad - fd)
    bound = atol + rtol * np.abs(fd)
    bad = err > bound
    if not np.any(bad) and np.all(np.isfinite(ad)) and np.all(np.isfinite(fd)):
        return None
    if not np.all(np.isfinite(err)):
        idx = np.unravel_index(int(np.argmax(~np.isfinite(err))), err.shape) if err.ndim else ()
    else:
        idx = np.unravel_index(int(np.argmax(err - bound)), err.shape) if err.ndim else ()
    return (
        f"max abs error {np.max(err):.3e}; at index {tuple(int(i) for i in idx)}: "
        f"AD = {ad[idx]!r}, FD = {fd[idx]!r} (atol={atol:g}, rtol={rtol:g}, "
        f"{int(np.sum(bad))} of {err.size} entries outside the tolerance)"
    )


# ----------------------------------------------------------------------------------------------
# the recursive checker
# ----------------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, modes: tuple[str, ...], eps: float | None, atol: Any, rtol: Any, rng: Any):
        import diffprog

        self.ad = diffprog
        self.modes = modes
        self.eps = eps
        self.atol = atol
        self.rtol = rtol
        self.rng = rng
        self.flatten, self.unflatten = _tree_tools()

    def fail(self, mode: str, depth: int, label: str, detail: str) -> None:
        raise AssertionError(
            f"check_grads: {mode} check failed at order {depth} ({label} of f): {detail}"
        )

    def check(
        self,
        f: Callable[..., Any],
        primals: list[np.ndarray],
        depth: int,
        order: int,
        label_suffix: str,
    ) -> None:
        out0 = f(*primals)
        leaves0, treedef = self.flatten(out0)
        leaves0 = [np.asarray(leaf) for leaf in leaves0]
        inexact = [i for i, leaf in enumerate(leaves0) if _is_inexact(leaf.dtype)]
        if not inexact:
            raise ValueError(
                f"check_grads: f{label_suffix} has no floating-point output to differentiate "
                f"(output dtypes {[str(leaf.dtype) for leaf in leaves0]})"
            )
        tol = _default_tol([p.dtype for p in primals] + [leaves0[i].dtype for i in inexact])
        atol = tol if self.atol is None else self.atol
        rtol = tol if self.rtol is None else self.rtol

        v = _normalise([_random_like(self.rng, p) for p in primals])
        v_in = tuple(_like(vi, p) for vi, p in zip(v, primals, strict=True))
        fd = self.fd_tangent(f, primals, v, leaves0, inexact)

        if "fwd" in self.modes:
            label = "JVP" + label_suffix
            out, t_out = self.ad.jvp(f, tuple(primals), v_in)
            self.check_primal("fwd", depth, label, out, leaves0, inexact, atol, rtol)
            t_leaves, _ = self.flatten(t_out)
            if len(t_leaves) != len(leaves0):
                self.fail(
                    "fwd",
                    depth,
                    label,
                    f"tangent output has {len(t_leaves)} leaves, the primal output {len(leaves0)}",
                )
            for i in inexact:
                ad_t = _as_array(
                    "check_grads", f"tangent output leaf {i}", t_leaves[i], leaves0[i].shape
                )
                if ad_t.dtype.kind == "c" and leaves0[i].dtype.kind == "f":
                    self.fail(
                        "fwd",
                        depth,
                        label,
                        f"tangent output leaf {i} is complex but the primal output is real "
                        f"({leaves0[i].dtype}); JVP = {ad_t!r}, central FD = {fd[i]!r}",
                    )
                msg = _worst(ad_t, fd[i], atol, rtol)
                if msg is not None:
                    self.fail("fwd", depth, label, f"JVP != central FD for output leaf {i}: {msg}")

        if "rev" in self.modes:
            label = "VJP" + label_suffix
            u_leaves = [np.zeros(leaf.shape, leaf.dtype) for leaf in leaves0]
            u_rand = _normalise([_random_like(self.rng, leaves0[i]) for i in inexact])
            for i, ui in zip(inexact, u_rand, strict=True):
                u_leaves[i] = ui
            out, vjp_fn = self.ad.vjp(f, *primals)
            self.check_primal("rev", depth, label, out, leaves0, inexact, atol, rtol)
            out_leaves, _ = self.flatten(out)
            u_in = self.unflatten(
                treedef,
                [
                    _like(u, o) if i in inexact else u
                    for i, (u, o) in enumerate(zip(u_leaves, out_leaves, strict=True))
                ],
            )
            cts = vjp_fn(u_in)
            if not isinstance(cts, (tuple, list)):
                cts = (cts,) if len(primals) == 1 else cts
            if not isinstance(cts, (tuple, list)) or len(cts) != len(primals):
                self.fail(
                    "rev",
                    depth,
                    label,
                    f"vjp_fn returned {type(cts).__name__} instead of a tuple of "
                    f"{len(primals)} cotangents",
                )
            ct_arrs = [
                _as_array("check_grads", f"cotangent {j}", ct, p.shape)
                for j, (ct, p) in enumerate(zip(cts, primals, strict=True))
            ]
            for j, (ct, p) in enumerate(zip(ct_arrs, primals, strict=True)):
                if ct.dtype.kind == "c" and p.dtype.kind == "f":
                    self.fail(
                        "rev",
                        depth,
                        label,
                        f"cotangent {j} is complex but the argument is real ({p.dtype})",
                    )
            # Re of the bilinear pairing Σ a·b (JAX's and the engine's complex convention)
            ip_ad = sum(_pair(ct, vi) for ct, vi in zip(ct_arrs, v, strict=True))
            ip_fd = sum(_pair(u_leaves[i], fd[i]) for i in inexact)
            mag = max(
                sum(float(np.sum(np.abs(u_leaves[i]) * np.abs(fd[i]))) for i in inexact),
                sum(
                    float(np.sum(np.abs(ct) * np.abs(vi)))
                    for ct, vi in zip(ct_arrs, v, strict=True)
                ),
            )
            bound = atol * sum(float(np.sum(np.abs(u_leaves[i]))) for i in inexact) + rtol * mag
            if not (abs(ip_ad - ip_fd) <= bound):
                self.fail(
                    "rev",
                    depth,
                    label,
                    f"adjointness Re(vjp_fn(u)·v) = {ip_ad!r} but Re(u·FD_jvp(v)) = "
                    f"{ip_fd!r} (mismatch {abs(ip_ad - ip_fd):.3e} > allowed {bound:.3e}; "
                    f"atol={atol:g}, rtol={rtol:g})",
                )

        # All first-order checks of this level run before any higher-order one, so a failure is
        # reported at the lowest order where it occurs.
        if depth < order and "fwd" in self.modes:

            def f_jvp(*xs: Any) -> Any:
                vs = tuple(_like(vi, x) for vi, x in zip(v, xs, strict=True))
                return self.ad.jvp(f, xs, vs)[1]

            self.check(f_jvp, primals, depth + 1, order, " of JVP" + label_suffix)
        if depth < order and "rev" in self.modes:

            def f_vjp(*xs: Any) -> Any:
                out_x, fn = self.ad.vjp(f, *xs)
                o_leaves, _ = self.flatten(out_x)
                u_x = [
                    _like(u, o) if i in inexact else u
                    for i, (u, o) in enumerate(zip(u_leaves, o_leaves, strict=True))
                ]
                return fn(self.unflatten(treedef, u_x))

            self.check(f_vjp, primals, depth + 1, order, " of VJP" + label_suffix)

    def check_primal(
        self,
        mode: str,
        depth: int,
        label: str,
        out: Any,
        leaves0: list[np.ndarray],
        inexact: list[int],
        atol: float,
        rtol: float,
    ) -> None:
        leaves, _ = self.flatten(out)
        if len(leaves) != len(leaves0):
            self.fail(
                mode,
                depth,
                label,
                f"primal output has {len(leaves)} leaves, f returns {len(leaves0)}",
            )
        for i in inexact:
            got = _as_array("check_grads", f"primal output leaf {i}", leaves[i], leaves0[i].shape)
            msg = _worst(got, _upcast(leaves0[i]), atol, rtol)
            if msg is not None:
                self.fail(
                    mode, depth, label, f"primal output differs from f(*args) for leaf {i}: {msg}"
                )

    def fd_tangent(
        self,
        f: Callable[..., Any],
        primals: list[np.ndarray],
        v: list[np.ndarray],
        leaves0: list[np.ndarray],
        inexact: list[int],
    ) -> dict[int, np.ndarray]:
        """Central FD (accuracy 2, float64) of ``t ↦ f(primals + t v)`` at ``t = 0``, per leaf."""
        p64 = [_upcast(p) for p in primals]
        v64 = [vi.real if p.dtype.kind == "f" else vi for vi, p in zip(v, p64, strict=True)]
        sizes = [leaves0[i].size for i in inexact]
        any_complex = any(leaves0[i].dtype.kind == "c" for i in inexact)

        def phi(t: Any) -> np.ndarray:
            xs = [p + t * vi for p, vi in zip(p64, v64, strict=True)]
            leaves, _ = self.flatten(f(*xs))
            parts = [np.asarray(leaves[i]).ravel() for i in inexact]
            flat = np.concatenate(parts) if parts else np.zeros(0)
            return flat.astype(np.complex128 if any_complex else np.float64)

        if self.eps is None:
            scale = max([1.0] + [float(np.max(np.abs(p))) for p in p64 if p.size])
            delta = scale * np.finfo(np.float64).eps ** 0.2
        else:
            delta = self.eps
        flat = np.asarray(fd_jvp(phi, 0.0, 1.0, delta=delta, scheme="central", accuracy=2))
        out, pos = {}, 0
        for i, n in zip(inexact, sizes, strict=True):
            out[i] = flat.ravel()[pos : pos + n].reshape(leaves0[i].shape)
            pos += n
        return out


def check_grads(
    f: Callable[..., Any],
    args: tuple[Any, ...] | list[Any],
    order: int = 2,
    modes: Sequence[str] | str = ("fwd", "rev"),
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int | np.random.Generator = 0,
) -> None:
    r"""Check ``diffprog.jvp``/``diffprog.vjp`` of ``f`` against finite differences (Book §8.4).

    Book §7.8 (use case ii: testing). Along random unit directions ``v`` (over all
    floating-point arguments) and cotangents ``u``:

    * ``"fwd"``: ``jvp(f, args, v)[1] ≈ D_δ f(args)[v]`` elementwise, where ``D_δ`` is the
      4-point central difference ``Σ_{i=±1,±2} a_i f(args + iδv)/δ`` (Book §7.3–7.4) computed
      in float64, with ``|ad - fd| <= atol + rtol·|fd|``;
    * ``"rev"``: adjointness ``⟨vjp_fn(u), v⟩ ≈ ⟨u, D_δ f(args)[v]⟩`` (Book §8.1.2), with
      tolerance ``atol·Σ|u| + rtol·Σ|u|·|D_δ f[v]|``. For complex values the pairing is
      ``Re Σ a·b`` (JAX's convention, see the module docstring).

    For ``order >= 2`` the same checks are applied recursively to the derivative functions
    ``args ↦ jvp(f, args, v)[1]`` and ``args ↦ vjp(f, *args)[1](u)`` (fixed ``v``, ``u``), so
    second-order rules are exercised in both modes (for scalar ``f`` this covers
    ``vᵀ∇²f v``, cf. :func:`fd_second_directional`). Integer, boolean and non-array arguments
    are held fixed (no tangent).

    Args:
        f: function of the positional arguments ``*args``; returns an array (or a
            tuple/list/dict of arrays).
        args: tuple of arguments (a single array must be passed as ``(x,)``); arguments may
            be pytrees (tuples, lists, dicts, registered dataclasses), whose floating-point
            leaves are differentiated.
        order: derivative order ``>= 1`` to check.
        modes: ``"fwd"``, ``"rev"`` or both.
        eps: FD step along the unit direction. Default ``max(1, max|args|)·ε₆₄^(1/5)``.
        atol, rtol: tolerances. Default ``1e-5`` for float64 (``1e-3`` float32, ``5e-2``
            float16), chosen from the least precise argument or output dtype.
        seed: seed (or ``numpy.random.Generator``) for the random directions.

    Raises:
        AssertionError: a derivative disagrees with finite differences; the message names the
            mode, the order and the mismatch.
        TypeError, ValueError: bad arguments (e.g. ``args`` not a tuple, no float argument).

    Example:
        >>> import diffprog.numpy as dnp
        >>> check_grads(lambda x, W: dnp.tanh(W @ x), (np.ones(3), np.eye(3)))  # passes: None
    """
    fname = "check_grads"
    if not callable(f):
        raise TypeError(f"{fname}: argument 'f' must be callable, got {type(f).__name__}")
    if not isinstance(args, (tuple, list)):
        raise TypeError(
            f"{fname}: argument 'args' must be a tuple of positional arguments, got "
            f"{type(args).__name__} (wrap a single array as (x,))"
        )
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, numbers.Integral) or order < 1:
        raise ValueError(f"{fname}: argument 'order' must be an integer >= 1, got {order!r}")
    if isinstance(modes, str):
        modes = (modes,)
    modes = tuple(modes)
    if not modes or any(m not in _MODES for m in modes):
        raise ValueError(
            f"{fname}: argument 'modes' must be a non-empty subset of {_MODES}, got {modes!r}"
        )
    for name, val in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if val is None:
            continue
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, numbers.Real):
            raise TypeError(f"{fname}: argument '{name}' must be a real number, got {val!r}")
        if not (np.isfinite(val) and (val > 0 if name == "eps" else val >= 0)):
            raise ValueError(
                f"{fname}: argument '{name}' must be {'> 0' if name == 'eps' else '>= 0'} "
                f"and finite, got {val!r}"
            )
    if not (
        isinstance(seed, (numbers.Integral, np.random.Generator)) and not isinstance(seed, bool)
    ):
        raise TypeError(
            f"{fname}: argument 'seed' must be an int or a numpy Generator, got {seed!r}"
        )

    flatten, unflatten = _tree_tools()
    leaves, treedef = flatten(tuple(args))
    leaves = list(leaves)
    diff_idx = []
    for i, a in enumerate(leaves):
        if isinstance(a, (np.ndarray, float, complex, np.floating, np.complexfloating)):
            arr = np.asarray(a)
            if _is_inexact(arr.dtype):
                if not np.all(np.isfinite(arr)):
                    raise ValueError(
                        f"{fname}: array leaf {i} of 'args' must contain only finite values"
                    )
                leaves[i] = arr
                diff_idx.append(i)
    if not diff_idx:
        raise ValueError(
            f"{fname}: no floating-point argument to differentiate in 'args' (integer, boolean "
            "and non-array arguments are held fixed)"
        )

    def g(*xs: Any) -> Any:
        full = list(leaves)
        for i, x in zip(diff_idx, xs, strict=True):
            full[i] = x
        return f(*unflatten(treedef, full))

    checker = _Checker(
        modes, None if eps is None else float(eps), atol, rtol, np.random.default_rng(seed)
    )
    checker.check(g, [leaves[i] for i in diff_idx], 1, int(order), "")
