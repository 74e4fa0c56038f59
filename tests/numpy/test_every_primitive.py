"""Every registered primitive is exercised and checked (spec AD-13, AD-30).

A table maps each name in :data:`diffprog.core.primitive.registry` to one or more cases: a
differentiable public function that binds that primitive, and inputs inside its domain and away
from kinks (no ties for max/min/sort/maximum, no zeros for abs/sign, no integers for floor...).

- ``test_every_registered_primitive_has_a_case`` fails as soon as a primitive is registered
  without a case (new modules: add their cases to the section at the end of the table);
- ``test_case_exercises_its_primitive`` checks that each case really binds its primitive;
- ``test_check_grads_float64`` runs ``check_grads(order=2, modes=("fwd", "rev"))`` on each case;
- ``test_float32_jvp``/``test_float32_vjp`` run each case in float32: float32 tangents and
  cotangents, close to the float64 values at the same point;
- primitives with ``nondiff=True`` get an exactly-zero derivative test and a ``check_grads`` of
  a function whose derivative is the (locally constant) primitive's value;
- a deliberately wrong rule (sign-flipped VJP, JVP, or second-order rule) is caught.
"""

from __future__ import annotations

import importlib
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp
from diffprog.core.primitive import Primitive, Tracer, registry
from diffprog.derivatives import check_grads

# Modules that register primitives. Some are being written concurrently: a module that does
# not exist yet is skipped here (its primitives then have no case, and the coverage test below
# names them); an error *inside* an existing module is not hidden.
_PRIMITIVE_MODULES = (
    "diffprog.numpy",
    "diffprog.numpy.linalg",
    "diffprog.numpy.fft",
    "diffprog.scipy.special",
    "diffprog.nn",
    "diffprog.optim",
)
for _mod in _PRIMITIVE_MODULES:
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the tree's state
        if _exc.name != _mod:
            raise

sps = importlib.import_module("diffprog.scipy.special")

# ----------------------------------------------------------------------------- input helpers

S = (2, 3)  # the default shape


def uni(lo, hi, shape=S):
    """Uniform samples in ``[lo, hi]``."""
    return lambda rng: rng.uniform(lo, hi, shape)


def away(lo, hi, shape=S):
    """``|x|`` uniform in ``[lo, hi]``, random signs (away from 0)."""
    return lambda rng: rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(shape=S, gap=0.15):
    """Entries pairwise at least ``gap`` apart (no ties): a scaled random permutation."""

    def make(rng):
        n = int(np.prod(shape))
        v = (rng.permutation(n) - n / 2) * gap * 2 + rng.uniform(-gap / 3, gap / 3, n)
        return v.reshape(shape) / max(1.0, n * gap)

    return make


def off_integers(lo=-3, hi=3, shape=S):
    """Non-integers that are also away from the half-integers (for floor/ceil/rint/trunc)."""

    def make(rng):
        k = rng.integers(lo, hi, shape)
        frac = rng.uniform(0.1, 0.35, shape) + rng.choice([0.0, 0.5], shape)
        return k + frac

    return make


def args_of(*makers):
    """Argument builder: ``rng -> tuple`` from one maker per argument."""
    return lambda rng: tuple(m(rng) for m in makers)


def separated_pair(shape_x=S, shape_y=(3,), gap=0.1):
    """``(x, y)`` broadcasting together with ``|x - y| >= gap`` everywhere (no ties)."""

    def make(rng):
        y = rng.uniform(-1, 1, shape_y)
        d = rng.uniform(gap, 1.0, shape_x) * rng.choice([-1.0, 1.0], shape_x)
        return y + d, y

    return make


def remainder_pair(rng):
    """``(x, y)``, ``y ∈ [1.5, 2]``, ``x/y`` at least 0.2 away from every integer."""
    y = rng.uniform(1.5, 2.0, (3,))
    x = y * (rng.integers(-2, 3, S) + rng.uniform(0.2, 0.8, S))
    return x, y


def clip_triple(rng):
    """``(x, lo, hi)`` with ``lo < hi`` and x below, inside and above, away from the bounds."""
    lo = rng.uniform(-1.0, -0.5, (3,))
    hi = rng.uniform(0.5, 1.0, (3,))
    where = rng.integers(0, 3, S)
    x = np.where(where == 0, lo - rng.uniform(0.1, 1, S),
                 np.where(where == 1, rng.uniform(-0.4, 0.4, S), hi + rng.uniform(0.1, 1, S)))
    return x, lo, hi


def complex_arr(shape=S):
    return lambda rng: rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """A differentiable function ``fn`` exercising primitive ``prim`` on inputs ``args(rng)``."""

    prim: str
    name: str
    fn: Callable
    args: Callable
    float32: bool = True  # run the float32 tests (False where the function fixes its dtype)
    # False for composite functions whose primitives are an implementation detail of another
    # module (e.g. custom_jvp rules): they are checked, but do not count as covering ``prim``
    exercises: bool = True
    order: int = 2
    tol: dict = field(default_factory=dict)  # extra check_grads keywords (atol, rtol, eps)

    @property
    def id(self):
        return f"{self.prim}:{self.name}"

    def make_args(self, dtype=np.float64):
        return _make_args(self, dtype)


@dataclass(frozen=True)
class NondiffCase:
    """A primitive with ``nondiff=True``: ``expr(*args)`` binds it on traced arguments.

    ``locally_constant``: ``expr`` is piecewise constant and the inputs avoid its jumps, so
    finite differences of a function using it are meaningful (False for ``stop_gradient``).
    """

    prim: str
    name: str
    expr: Callable
    args: Callable
    locally_constant: bool = True

    @property
    def id(self):
        return f"{self.prim}:{self.name}"

    def make_args(self, dtype=np.float64):
        return _make_args(self, dtype)


def _make_args(c, dtype):
    """The case's arguments (deterministic per case id); float32 casts float64/complex128."""
    rng = np.random.default_rng(zlib.crc32(c.id.encode()))
    return tuple(_cast(np.asarray(a), dtype) for a in c.args(rng))


def _cast(a, dtype):
    if np.dtype(dtype) != np.float32:
        return a
    if a.dtype == np.complex128:
        return a.astype(np.complex64)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    return a


CASES: list[Case] = []
NONDIFF_CASES: list[NondiffCase] = []


def case(prim, name, fn, args, **kw):
    CASES.append(Case(prim, name, fn, args, **kw))


def nondiff(prim, name, expr, args, **kw):
    NONDIFF_CASES.append(NondiffCase(prim, name, expr, args, **kw))


# --- elementwise unary (elementwise.UNARY), inputs inside each domain
_UNARY_DOMAINS = {
    "exp": uni(-1, 1), "exp2": uni(-1, 1), "expm1": uni(-1, 1),
    "log": uni(0.5, 2), "log2": uni(0.5, 2), "log10": uni(0.5, 2), "log1p": uni(-0.5, 1),
    "sqrt": uni(0.5, 2), "cbrt": away(0.5, 2), "square": uni(-1, 1),
    "reciprocal": away(0.5, 2),
    "sin": uni(-2, 2), "cos": uni(-2, 2), "tan": uni(-1, 1),
    "arcsin": uni(-0.8, 0.8), "arccos": uni(-0.8, 0.8), "arctan": uni(-2, 2),
    "sinh": uni(-1, 1), "cosh": uni(-1, 1), "tanh": uni(-1, 1),
    "arcsinh": uni(-2, 2), "arccosh": uni(1.5, 3), "arctanh": uni(-0.8, 0.8),
    "abs": away(0.3, 1.0), "deg2rad": uni(-2, 2), "rad2deg": uni(-2, 2),
    "negative": uni(-1, 1),
}
for _name, _mk in _UNARY_DOMAINS.items():
    case(_name, "dnp", getattr(dnp, _name), args_of(_mk))
case("abs", "operator", lambda x: abs(x), args_of(away(0.3, 1.0)))
case("abs", "absolute", lambda x: dnp.absolute(x), args_of(away(0.3, 1.0)))
case("negative", "operator", lambda x: -x, args_of(uni(-1, 1)))
case("deg2rad", "radians", lambda x: dnp.radians(x), args_of(uni(-2, 2)))
case("rad2deg", "degrees", lambda x: dnp.degrees(x), args_of(uni(-2, 2)))
case("exp", "scalar", dnp.exp, args_of(uni(-1, 1, ())))
case("tanh", "rank3", dnp.tanh, args_of(uni(-1, 1, (2, 1, 3))))
case("sin", "via_np_ufunc", lambda x: np.sin(x), args_of(uni(-2, 2)))

# --- arithmetic (both arguments differentiated, broadcasting (2, 3) with (3,))
_pair = args_of(uni(-1, 1), uni(-1, 1, (3,)))
case("add", "dnp", dnp.add, _pair)
case("add", "operator", lambda x, y: x + y, _pair)
case("add", "radd_const", lambda x: 2.0 + x, args_of(uni(-1, 1)))
case("add", "scalar_arg", lambda x, y: x + y, args_of(uni(-1, 1), uni(-1, 1, ())))
case("subtract", "dnp", dnp.subtract, _pair)
case("subtract", "operator", lambda x, y: y - x, _pair)
case("subtract", "rsub_const", lambda x: 1.0 - x, args_of(uni(-1, 1)))
case("multiply", "dnp", dnp.multiply, _pair)
case("multiply", "operator", lambda x, y: x * y * x, _pair)
case("multiply", "rmul_const", lambda x: 3.0 * x, args_of(uni(-1, 1)))
case("multiply", "prod", lambda x: dnp.prod(x, axis=1), args_of(away(0.5, 1.5)), exercises=False)
case("multiply", "prod_all", lambda x: dnp.prod(x), args_of(away(0.5, 1.5)), exercises=False)
case("multiply", "cumprod", lambda x: dnp.cumprod(x, axis=1), args_of(away(0.5, 1.5)),
     exercises=False)
case("multiply", "outer", dnp.outer, args_of(uni(-1, 1, (3,)), uni(-1, 1, (2,))))
case("multiply", "kron", dnp.kron, args_of(uni(-1, 1, (2, 2)), uni(-1, 1, (1, 2))))
case("divide", "dnp", dnp.divide, args_of(uni(-1, 1), away(0.5, 2, (3,))))
case("divide", "operator", lambda x, y: x / y, args_of(uni(-1, 1), away(0.5, 2, (3,))))
case("divide", "rdiv_const", lambda y: 1.0 / y, args_of(away(0.5, 2)))
case("multiply", "mean", lambda x: dnp.mean(x, axis=0), args_of(uni(-1, 1)))
case("divide", "var_std", lambda x: dnp.var(x, axis=1) + dnp.std(x), args_of(uni(-1, 1)))

# --- binary table (elementwise.BINARY)
_pos_pair = args_of(uni(0.5, 2), uni(-1.5, 1.5, (3,)))
case("power", "dnp", dnp.power, _pos_pair)
case("power", "operator", lambda x, y: x ** y, _pos_pair)
case("power", "int_exponent", lambda x: x ** 3, args_of(away(0.3, 1.5)))
case("power", "square_exponent", lambda x: x ** 2, args_of(uni(-1, 1)))
case("power", "float_exponent", lambda x: x ** 2.5, args_of(uni(0.5, 2)))
case("power", "array_int_exponent", lambda x: dnp.power(x, np.array(3.0, dtype=x.dtype)),
     args_of(away(0.3, 1.5)))
case("power", "rpow", lambda y: 2.0 ** y, args_of(uni(-1, 1)))
case("power", "float_power", dnp.float_power, _pos_pair)
for _name in ("maximum", "minimum", "fmax", "fmin"):
    case(_name, "dnp", getattr(dnp, _name), separated_pair())
case("maximum", "const", lambda x: dnp.maximum(x, 0.0), args_of(away(0.2, 1)))
case("arctan2", "dnp", dnp.arctan2, args_of(uni(-1, 1), uni(0.5, 2, (3,))))
case("arctan2", "left_half_plane", dnp.arctan2, args_of(uni(0.3, 1), uni(-2, -0.5, (3,))))
case("hypot", "dnp", dnp.hypot, args_of(away(0.3, 1), away(0.3, 1, (3,))))
case("logaddexp", "dnp", dnp.logaddexp, _pair)
case("logaddexp", "log_expit", sps.log_expit, args_of(uni(-3, 3)))
case("logaddexp2", "dnp", dnp.logaddexp2, _pair)
case("remainder", "dnp", dnp.remainder, remainder_pair)
case("remainder", "operator", lambda x, y: x % y, remainder_pair)
case("fmod", "dnp", dnp.fmod, remainder_pair)

# --- clip
case("clip", "scalar_bounds", lambda x: dnp.clip(x, -0.25, 0.25),
     args_of(lambda rng: clip_triple(rng)[0] / 2))
case("clip", "array_bounds", dnp.clip, clip_triple)
case("clip", "method_upper_only", lambda x: x.clip(None, 0.25),
     args_of(lambda rng: clip_triple(rng)[0] / 2))

# --- complex parts
case("real", "of_complex_product", lambda x, y: dnp.real((x + 1j * y) * (x - 2j * y)), _pair,
     float32=False)
case("real", "complex_input", lambda z: dnp.real(z * z), args_of(complex_arr()))
case("real", "property", lambda z: (z * z).real, args_of(complex_arr()))
case("imag", "of_complex_product", lambda x, y: dnp.imag((x + 1j * y) ** 2), _pair,
     float32=False)
case("imag", "complex_input", lambda z: dnp.imag(z * z * z), args_of(complex_arr()))
case("imag", "of_real", lambda x: dnp.imag(x) + x, args_of(uni(-1, 1)))
case("conjugate", "complex_input", lambda z: dnp.real(dnp.conjugate(z) * z * z),
     args_of(complex_arr()))
case("conjugate", "method", lambda z: z.conj() * z, args_of(complex_arr()))
case("conjugate", "of_real", lambda x: dnp.conjugate(x) * x, args_of(uni(-1, 1)))
case("conjugate", "vdot_complex", dnp.vdot, args_of(complex_arr(), complex_arr()))

# --- structural (linear) primitives
case("reshape", "dnp", lambda x: dnp.reshape(x, (3, 2)), args_of(uni(-1, 1)))
case("reshape", "method_minus_one", lambda x: x.reshape(-1, 2) * x.reshape(3, 2),
     args_of(uni(-1, 1)))
case("reshape", "ravel_squeeze_expand",
     lambda x: dnp.expand_dims(dnp.squeeze(x), (0, 2)) + dnp.ravel(x)[:3],
     args_of(uni(-1, 1, (1, 3))))
case("reshape", "atleast_2d", lambda x: dnp.atleast_2d(x) * dnp.atleast_1d(x[0]),
     args_of(uni(-1, 1, (3,))))
case("transpose", "dnp", lambda x: dnp.transpose(x, (1, 0, 2)) * 2.0,
     args_of(uni(-1, 1, (2, 3, 4))))
case("transpose", "T_property", lambda x: x.T @ x, args_of(uni(-1, 1)))
case("transpose", "moveaxis_swapaxes",
     lambda x: dnp.moveaxis(x, 0, -1) + dnp.swapaxes(x, 0, 2).transpose(1, 2, 0),
     args_of(uni(-1, 1, (2, 3, 2))))
case("broadcast_to", "dnp", lambda x: dnp.broadcast_to(x, (2, 2, 3)), args_of(uni(-1, 1, (3,))))
case("broadcast_to", "size_one_axis", lambda x: dnp.broadcast_to(x, (4, 3)) * 1.5,
     args_of(uni(-1, 1, (1, 3))))
case("sum", "axis", lambda x: dnp.sum(x * x, axis=1), args_of(uni(-1, 1)))
case("sum", "keepdims_tuple", lambda x: dnp.sum(x, axis=(0, 2), keepdims=True) * x,
     args_of(uni(-1, 1, (2, 3, 2))))
case("sum", "all_method", lambda x: (x * x).sum(), args_of(uni(-1, 1)))
case("sum", "negative_axis", lambda x: dnp.sum(dnp.sin(x), axis=-1), args_of(uni(-1, 1)))
case("getitem", "basic_slices", lambda x: x[1:, ::-1] * x[:1, 1:2], args_of(uni(-1, 1)))
case("getitem", "int_and_newaxis", lambda x: x[None, ..., 1] * x[:, 0], args_of(uni(-1, 1)))
case("getitem", "repeated_int_array", lambda x: x[:, [0, 2, 0, 0]] ** 2, args_of(uni(-1, 1)))
case("getitem", "bool_mask",
     lambda x: x[np.array([[True, False, True], [False, True, True]])], args_of(uni(-1, 1)))
case("getitem", "take", lambda x: dnp.take(x, [2, 0, 2], axis=1) + dnp.take(x, [5, 0, 5]),
     args_of(uni(-1, 1)))
case("getitem", "take_along_axis",
     lambda x: dnp.take_along_axis(x, np.array([[2, 2, 0], [1, 0, 1]]), 1), args_of(uni(-1, 1)))
case("getitem", "flip_roll", lambda x: dnp.flip(x, 1) * dnp.roll(x, 1, axis=1) + dnp.roll(x, 2),
     args_of(uni(-1, 1)))
case("getitem", "tile_repeat", lambda x: dnp.tile(x, (2, 1)) + dnp.repeat(x, 2, axis=0),
     args_of(uni(-1, 1)))
case("getitem", "diagonal_trace",
     lambda x: dnp.diagonal(x) * dnp.trace(x) + dnp.diagonal(x, 1).sum(),
     args_of(uni(-1, 1, (3, 3))))
case("split", "sections_and_indices",
     lambda x: dnp.split(x, 3, axis=1)[1] * dnp.split(x, [1], axis=1)[0], args_of(uni(-1, 1)))
case("split", "unused_piece", lambda x: dnp.sin(dnp.split(x, [1, 3], axis=-1)[0]) ** 2,
     args_of(uni(-1, 1, (2, 4))))
case("getitem", "split_overlapping", lambda x: dnp.split(x, [3, 1], axis=1)[2] * x[:, :3],
     args_of(uni(-1, 1, (2, 4))))
case("getitem", "pad_modes",
     lambda x: dnp.pad(x, 1, mode="edge") + dnp.pad(x, 1, mode="reflect")
     + dnp.pad(x, 1, mode="wrap") + dnp.pad(x, 1, mode="symmetric"),
     args_of(uni(-1, 1)))
case("getitem", "at_get", lambda x: dnp.at(x)[1, :2].get() * 2.0, args_of(uni(-1, 1)))
case("index_add", "repeated_indices", lambda x, v: dnp.at(x)[[0, 0, 1]].add(v) * x,
     args_of(uni(-1, 1), uni(-1, 1, (3, 3))))
case("index_add", "broadcast_value", lambda x, v: dnp.at(x)[:, 1].add(v), args_of(uni(-1, 1),
                                                                             uni(-1, 1, ())))
case("index_add", "diag_build", lambda v: dnp.diag(v) @ dnp.diag(v, 1)[:3, 1:],
     args_of(uni(-1, 1, (3,))))
case("index_set", "set", lambda x, v: dnp.at(x)[:, 1].set(v) * x, args_of(uni(-1, 1),
                                                                     uni(-1, 1, (2,))))
case("index_set", "set_fancy", lambda x, v: dnp.at(x)[[1, 0], 2].set(v * v),
     args_of(uni(-1, 1), uni(-1, 1, (2,))))
case("index_set", "multiply", lambda x, v: dnp.at(x)[0, [0, 2]].multiply(v),
     args_of(uni(-1, 1), uni(-1, 1, (2,))))
case("concatenate", "dnp", lambda x, y: dnp.concatenate([x, y, x], axis=1),
     args_of(uni(-1, 1), uni(-1, 1, (2, 2))))
case("concatenate", "axis_none", lambda x, y: dnp.concatenate([x, y], axis=None),
     args_of(uni(-1, 1), uni(-1, 1, (3,))))
case("concatenate", "stack", lambda x, y: dnp.stack([x, y * x], axis=-1),
     args_of(uni(-1, 1), uni(-1, 1)))
case("concatenate", "hstack_vstack", lambda x, y: dnp.hstack([x, y]) * dnp.vstack([x, y]).T.ravel(),
     args_of(uni(-1, 1, (3,)), uni(-1, 1, (3,))))
case("concatenate", "array_of_tracers", lambda x, y: dnp.array([[x[0], y], [y * y, x[1]]]),
     args_of(uni(-1, 1, (2,)), uni(-1, 1, ())))
case("pad", "dnp", lambda x: dnp.pad(x, ((1, 0), (2, 1))) * 2.0, args_of(uni(-1, 1)))
case("pad", "constant_value", lambda x: dnp.pad(x, 1, constant_values=1.5) ** 2,
     args_of(uni(-1, 1)))
case("where", "dnp", lambda x, y: dnp.where(x > 0, x * y, dnp.sin(y)),
     args_of(away(0.1, 1), uni(-1, 1, (3,))))
case("where", "scalar_branch", lambda x: dnp.where(x > 0.2, x, 0.0) + dnp.where(x < 0, 1.0, x),
     args_of(away(0.3, 1)))
case("where", "triu_tril", lambda x: dnp.triu(x) * 2.0 + dnp.tril(x, -1),
     args_of(uni(-1, 1, (3, 3))))
case("convert_element_type", "to_float32", lambda x: dnp.astype(x, np.float32) * 2.0,
     args_of(uni(-1, 1)), float32=False)
case("convert_element_type", "to_complex", lambda x: dnp.real(dnp.astype(x, np.complex128) ** 2),
     args_of(uni(-1, 1)), float32=False)
# float32 rounding inside the function: finite differences see ~1e-4 noise, hence the tolerance
case("convert_element_type", "method", lambda x: (x.astype(np.float32) * x).astype(np.float64),
     args_of(uni(-1, 1)), float32=False, tol={"atol": 2e-3, "rtol": 2e-3})
case("convert_element_type", "float32_input", lambda x: dnp.astype(x, np.float64) ** 2,
     args_of(lambda rng: uni(-1, 1)(rng).astype(np.float32)), float32=False)

# --- contractions
case("matmul", "mat_mat", dnp.matmul, args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3, 4))))
case("matmul", "vec_vec", lambda a, b: a @ b, args_of(uni(-1, 1, (3,)), uni(-1, 1, (3,))))
case("matmul", "mat_vec", lambda a, b: a @ b, args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3,))))
case("matmul", "vec_mat", lambda a, b: a @ b, args_of(uni(-1, 1, (3,)), uni(-1, 1, (3, 4))))
case("matmul", "batched_broadcast", lambda a, b: a @ b,
     args_of(uni(-1, 1, (2, 1, 2, 3)), uni(-1, 1, (3, 3, 2))))
case("matmul", "vec_batched", lambda a, b: a @ b,
     args_of(uni(-1, 1, (3,)), uni(-1, 1, (2, 3, 2))))
case("matmul", "batched_vec", lambda a, b: a @ b,
     args_of(uni(-1, 1, (2, 2, 3)), uni(-1, 1, (3,))))
case("matmul", "rmatmul_const", lambda b: np.ones((2, 3), dtype=b.dtype) @ b,
     args_of(uni(-1, 1, (3, 2))))
case("matmul", "dot", dnp.dot, args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3, 2))))
case("matmul", "dot_method", lambda a, b: a.dot(b), args_of(uni(-1, 1, (3,)),
                                                            uni(-1, 1, (3, 2))))
case("einsum", "ij,jk->ik", lambda a, b: dnp.einsum("ij,jk->ik", a, b),
     args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3, 4))))
case("einsum", "ij,kj->ki", lambda a, b: dnp.einsum("ij,kj->ki", a, b),
     args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (4, 3))))
case("einsum", "ij,k->i", lambda a, b: dnp.einsum("ij,k->i", a, b),
     args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (4,))))
case("einsum", "three_operands", lambda a, b, c: dnp.einsum("ij,jk,kl->il", a, b, c),
     args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3, 2)), uni(-1, 1, (2, 2))))
case("einsum", "diagonal_ii", lambda a: dnp.einsum("ii->i", a) * dnp.einsum("ii", a),
     args_of(uni(-1, 1, (3, 3))))
case("einsum", "implicit_ellipsis", lambda a, b: dnp.einsum("...ij,jk", a, b),
     args_of(uni(-1, 1, (2, 2, 3)), uni(-1, 1, (3, 2))))
case("einsum", "size_one_broadcast", lambda a, b: dnp.einsum("ij,ij->j", a, b),
     args_of(uni(-1, 1, (1, 3)), uni(-1, 1, (2, 3))))
case("einsum", "self_product", lambda a: dnp.einsum("ijk,ikl->jl", a, a),
     args_of(uni(-1, 1, (2, 2, 2))))
case("einsum", "tensordot_inner", lambda a, b: dnp.tensordot(a, b, 1) + dnp.inner(a, a)[0],
     args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (3, 2))))
case("einsum", "tensordot_axes", lambda a, b: dnp.tensordot(a, b, axes=([0, 2], [1, 0])),
     args_of(uni(-1, 1, (2, 3, 2)), uni(-1, 1, (2, 2, 3))))
case("einsum", "dot_3d", dnp.dot, args_of(uni(-1, 1, (2, 3)), uni(-1, 1, (2, 3, 2))))

# --- reductions and scans
case("max", "axis", lambda x: dnp.max(x, axis=1), args_of(distinct()))
case("max", "all_keepdims", lambda x: dnp.max(x, keepdims=True) * x, args_of(distinct()))
case("max", "method_amax", lambda x: x.max(axis=0) + dnp.amax(x, axis=(0, 2)).sum(),
     args_of(distinct((2, 3, 2))))
case("min", "axis", lambda x: dnp.min(x, axis=0), args_of(distinct()))
case("min", "method_amin", lambda x: x.min() + dnp.amin(x, axis=1, keepdims=True),
     args_of(distinct()))
case("logsumexp", "prim", lambda x: dnp.logsumexp_prim(x, axis=1), args_of(uni(-2, 2)))
case("logsumexp", "keepdims", lambda x: dnp.logsumexp_prim(x, keepdims=True) * x,
     args_of(uni(-2, 2)))
case("logsumexp", "scipy", lambda x: sps.logsumexp(x, axis=0), args_of(uni(-2, 2)))
case("softmax", "scipy", lambda x: sps.softmax(x, axis=1), args_of(uni(-2, 2)))
case("softmax", "all_axes", lambda x: sps.softmax(x) * x, args_of(uni(-2, 2)))
case("softmax", "logsumexp_gradient",        # the reverse rule of logsumexp binds it
     lambda x: diffprog.grad(lambda v: dnp.sum(dnp.logsumexp_prim(v, axis=1) ** 2))(x),
     args_of(uni(-2, 2)))
case("logsumexp", "log_softmax", lambda x: sps.log_softmax(x, axis=-1), args_of(uni(-2, 2)),
     exercises=False)
case("cumsum", "axis", lambda x: dnp.cumsum(x, axis=1) * x, args_of(uni(-1, 1)))
case("cumsum", "flat", lambda x: dnp.cumsum(x), args_of(uni(-1, 1)))
case("cumsum", "method_axis0", lambda x: x.cumsum(0), args_of(uni(-1, 1, (3, 2, 2))))
case("sort", "last_axis", lambda x: dnp.sort(x) * np.arange(3).astype(x.dtype), args_of(distinct()))
case("sort", "axis0", lambda x: dnp.sort(x, axis=0) ** 2, args_of(distinct()))
case("sort", "axis_none", lambda x: dnp.sort(x, axis=None) * np.arange(6).astype(x.dtype),
     args_of(distinct()))

# --- scipy.special
case("polygamma", "digamma", sps.digamma, args_of(uni(0.5, 3)))
case("polygamma", "psi", sps.psi, args_of(uni(0.5, 3)))
case("polygamma", "trigamma", lambda x: sps.polygamma(1, x), args_of(uni(0.5, 3)))
case("gammaln", "dnp", sps.gammaln, args_of(uni(0.5, 3)))
case("gammaln", "negative_noninteger", sps.gammaln, args_of(uni(-0.8, -0.2)))
case("expit", "dnp", sps.expit, args_of(uni(-3, 3)))
case("expit", "logistic", sps.logistic, args_of(uni(-3, 3)))
case("logit", "dnp", sps.logit, args_of(uni(0.1, 0.9)))
case("erf", "dnp", sps.erf, args_of(uni(-2, 2)))
case("erfc", "dnp", sps.erfc, args_of(uni(-2, 2)))
case("erfinv", "dnp", sps.erfinv, args_of(uni(-0.8, 0.8)))
case("entr", "dnp", sps.entr, args_of(uni(0.2, 2)))
case("xlogy", "dnp", sps.xlogy, args_of(uni(-1, 1), uni(0.5, 2, (3,))))
case("xlog1py", "dnp", sps.xlog1py, args_of(uni(-1, 1), uni(-0.5, 1, (3,))))

# --- primitives of diffprog.numpy.linalg / diffprog.numpy.fft / later modules
# (written concurrently: each block runs only when its module exists; cases of new primitives
# go here, and the coverage test lists the registered primitives that still have none)


def spd(n=3, batch=()):
    """A well-conditioned symmetric positive-definite matrix (eigenvalues well separated)."""

    def make(rng):
        q, _ = np.linalg.qr(rng.standard_normal(batch + (n, n)))
        w = np.linspace(1.0, 2.0 * n, n) + rng.uniform(0, 0.3, batch + (n,))
        return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)

    return make


def well_conditioned(shape=(3, 3)):
    """A matrix with singular values in ``[1, 3]``, well separated."""

    def make(rng):
        m, n = shape[-2:]
        k = min(m, n)
        u, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, k)))
        v, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, k)))
        s = np.linspace(1.0, 3.0, k)[::-1] + rng.uniform(0, 0.2, k)
        return (u * s) @ np.swapaxes(v, -1, -2)

    return make


_la = sys.modules.get("diffprog.numpy.linalg")
if _la is not None:
    case("linalg_solve", "vec", _la.solve, args_of(well_conditioned(), uni(-1, 1, (3,))))
    case("linalg_solve", "mat_batched", _la.solve,
         args_of(well_conditioned((2, 3, 3)), uni(-1, 1, (2, 3, 2))))
    case("linalg_solve", "broadcast_rhs", _la.solve,
         args_of(well_conditioned((2, 3, 3)), uni(-1, 1, (3, 2))))
    case("linalg_inv", "dnp", _la.inv, args_of(well_conditioned()))
    case("linalg_inv", "batched_matrix_power", lambda a: _la.matrix_power(a, -2),
         args_of(well_conditioned((2, 3, 3))))
    case("linalg_det", "dnp", _la.det, args_of(well_conditioned()))
    case("linalg_det", "batched", _la.det, args_of(well_conditioned((2, 2, 2))))
    case("linalg_slogdet", "logabsdet", lambda a: _la.slogdet(a).logabsdet,
         args_of(well_conditioned()))
    case("linalg_slogdet", "both", lambda a: _la.slogdet(a)[0] * _la.slogdet(a)[1],
         args_of(well_conditioned((2, 3, 3))))
    case("linalg_cholesky", "dnp", _la.cholesky, args_of(spd()))
    case("linalg_cholesky", "upper_batched", lambda a: _la.cholesky(a, upper=True),
         args_of(spd(3, (2,))))
    # eigen/singular vectors are defined up to sign: test sign-invariant functions of them
    case("linalg_eigh", "values_vectors",
         lambda a: (lambda w, v: (w, v * v[..., :1, :]))(*_la.eigh(a)), args_of(spd()))
    case("linalg_eigh", "eigvalsh_batched", _la.eigvalsh, args_of(spd(3, (2,))))
    case("linalg_svd", "tall_reduced",
         lambda a: (lambda u, s, vh: (u * u[..., :1, :], s, vh * vh[..., :, :1]))(
             *_la.svd(a, full_matrices=False)), args_of(well_conditioned((4, 3))))
    case("linalg_svd", "wide_square_full",
         lambda a: (lambda u, s, vh: (u * u[..., :1, :], s, vh * vh[..., :, :1]))(
             *_la.svd(a)), args_of(well_conditioned((3, 3))))
    case("linalg_svd", "values_and_norms",
         lambda a: _la.svd(a, compute_uv=False) + _la.norm(a, "nuc") + _la.norm(a, 2),
         args_of(well_conditioned((2, 3))))
    case("linalg_qr", "square", lambda a: tuple(_la.qr(a)), args_of(well_conditioned()))
    case("linalg_qr", "tall", lambda a: tuple(_la.qr(a)), args_of(well_conditioned((4, 3))))
    case("linalg_qr", "wide_r", lambda a: _la.qr(a, mode="r"),
         args_of(well_conditioned((2, 3))))
    case("linalg_pinv", "tall", _la.pinv, args_of(well_conditioned((4, 3))))
    case("linalg_pinv", "wide", _la.pinv, args_of(well_conditioned((2, 3))))
    case("linalg_pinv", "lstsq", lambda a, b: _la.lstsq(a, b)[:2],
         args_of(well_conditioned((4, 2)), uni(-1, 1, (4,))))

_fft = sys.modules.get("diffprog.numpy.fft")
if _fft is not None:
    def _power_spectrum(z):
        return dnp.real(z) ** 2 + dnp.imag(z) ** 2

    case("fft_fftn", "fft_real_output", lambda x: _power_spectrum(_fft.fft(x)),
         args_of(uni(-1, 1, (2, 5))))
    case("fft_fftn", "fft_complex_output", lambda x: _fft.fft(x, n=6), args_of(uni(-1, 1, (5,))))
    case("fft_fftn", "ifft2_complex_input", lambda z: _fft.ifft2(z, norm="ortho"),
         args_of(complex_arr((2, 4))))
    case("fft_fftn", "fftn_roundtrip", lambda x: dnp.real(_fft.ifftn(_fft.fftn(x) * x)),
         args_of(uni(-1, 1, (2, 3))))
    case("fft_rfftn", "rfft_power", lambda x: _power_spectrum(_fft.rfft(x)),
         args_of(uni(-1, 1, (2, 6))))
    case("fft_rfftn", "rfft2_complex_output", lambda x: _fft.rfft2(x, norm="forward"),
         args_of(uni(-1, 1, (2, 5))))
    case("fft_irfftn", "irfft_of_rfft", lambda x: _fft.irfft(_fft.rfft(x) * 2.0, n=6) ** 2,
         args_of(uni(-1, 1, (6,))))
    case("fft_irfftn", "irfft_complex_input", lambda z: _fft.irfft(z, n=7),
         args_of(complex_arr((4,))))
    case("fft_irfftn", "irfftn_even", lambda z: _fft.irfftn(z, s=(2, 6)),
         args_of(complex_arr((2, 4))))


# --- fused primitives of diffprog.nn (GELU in both forms, layer norm, masked softargmax)
_nn = importlib.import_module("diffprog.nn")
_MASK = np.array([[True, True, False], [False, True, True]])
case("gelu", "nn", _nn.gelu, args_of(away(0.1, 2)))
case("gelu_grad", "nn_derivative", lambda u: diffprog.grad(lambda v: dnp.sum(_nn.gelu(v)))(u),
     args_of(away(0.1, 2)))
case("gelu_tanh", "nn", _nn.gelu_tanh, args_of(away(0.1, 2)))
case("gelu_tanh_grad", "nn_derivative",
     lambda u: diffprog.grad(lambda v: dnp.sum(_nn.gelu_tanh(v)))(u), args_of(away(0.1, 2)))
case("standardize", "layer_norm", lambda x: _nn.layer_norm(x, eps=1e-3), args_of(uni(-1, 1)))
case("standardize_grad", "layer_norm_derivative",    # t, x and y = standardize(x) all vary
     lambda x: diffprog.grad(lambda v: dnp.sum(dnp.sin(_nn.layer_norm(v, eps=1e-3))))(x),
     args_of(uni(-1, 1)))
case("layer_norm", "affine", lambda x, g, b: _nn.layer_norm(x, g, b, eps=1e-3),
     args_of(uni(-1, 1), uni(0.5, 1.5, S[-1:]), uni(-1, 1, S[-1:])))
case("layer_norm_grad", "affine_derivative",       # g, x and γ all vary
     lambda x, g: diffprog.grad(lambda v, w: dnp.sum(dnp.sin(_nn.layer_norm(v, w, w * w, 1e-3))),
                                argnums=(0, 1))(x, g),
     args_of(uni(-1, 1), uni(0.5, 1.5, S[-1:])))
case("softargmax_grad", "attention_derivative",    # t and p = masked softargmax both vary
     lambda q, k: diffprog.grad(lambda a: dnp.sum(dnp.sin(
         _nn.attention_weights(a, k, mask=_MASK, scale=1.0))))(q),
     args_of(uni(-1, 1), uni(-1, 1, (3, 3))))
case("masked_softargmax", "attention_weights",
     lambda q, k: _nn.attention_weights(q, k, mask=_MASK, scale=1.0),
     args_of(uni(-1, 1), uni(-1, 1, (3, 3))))


# ----------------------------------------------------------------------------- nondiff table


def _pair_xy(rng):
    return rng.uniform(-1, 1, S), rng.uniform(-1, 1, (3,)) + 0.05


for _name in ("sign", "signbit"):
    nondiff(_name, "dnp", getattr(dnp, _name), args_of(away(0.2, 1)))
for _name in ("floor", "ceil", "rint", "trunc"):
    nondiff(_name, "dnp", getattr(dnp, _name), args_of(off_integers()))
nondiff("rint", "round", lambda x: dnp.round(x), args_of(off_integers()))
nondiff("trunc", "fix", lambda x: dnp.fix(x), args_of(off_integers()))
for _name in ("isfinite", "isnan", "isinf", "logical_not"):
    nondiff(_name, "dnp", getattr(dnp, _name), args_of(away(0.2, 1)))
for _name in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
    nondiff(_name, "dnp", getattr(dnp, _name), separated_pair())
nondiff("greater", "operator", lambda x, y: x > y, separated_pair())
nondiff("greater_equal", "operator", lambda x, y: x >= y, separated_pair())
nondiff("less", "operator", lambda x, y: x < y, separated_pair())
nondiff("less_equal", "operator", lambda x, y: x <= y, separated_pair())
nondiff("equal", "operator", lambda x, y: x == y, separated_pair())
nondiff("not_equal", "operator", lambda x, y: x != y, separated_pair())
for _name in ("logical_and", "logical_or", "logical_xor"):
    nondiff(_name, "dnp", getattr(dnp, _name), args_of(away(0.2, 1), away(0.2, 1, (3,))))
nondiff("floor_divide", "dnp", dnp.floor_divide, remainder_pair)
nondiff("floor_divide", "operator", lambda x, y: x // y, remainder_pair)
nondiff("heaviside", "dnp", lambda x: dnp.heaviside(x, 0.5), args_of(away(0.2, 1)))


def _linear_schedule(t):
    return 0.1 * t + 0.5


def _bitwise(name):
    # integer/boolean only: the operands are comparisons of traced values
    f = getattr(dnp, name)
    return lambda x, y: f(x > 0, y > 0)


for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    nondiff(_name, "of_comparisons", _bitwise(_name), _pair_xy)
nondiff("argsort", "dnp", lambda x: dnp.argsort(x, axis=1), args_of(distinct()))
nondiff("invert", "dnp", lambda x: dnp.invert(x > 0), args_of(away(0.2, 1)))
nondiff("convert_nondiff", "astype_int", lambda x: dnp.astype(x * 3.0, np.int64),
        args_of(away(0.2, 1)))
nondiff("convert_nondiff", "sum_of_bool", lambda x: dnp.sum(x > 0), args_of(away(0.2, 1)))
nondiff("all", "dnp", lambda x: dnp.all(x > -10, axis=1), args_of(away(0.2, 1)))
nondiff("any", "dnp", lambda x: dnp.any(x > 0), args_of(away(0.2, 1)))
nondiff("count_nonzero", "dnp", lambda x: dnp.count_nonzero(x > 0, axis=0),
        args_of(away(0.2, 1)))
nondiff("argsort", "method", lambda x: x.argsort(axis=0), args_of(distinct()))
nondiff("argmax", "dnp", lambda x: dnp.argmax(x, axis=1), args_of(distinct()))
nondiff("argmax", "method", lambda x: x.argmax(), args_of(distinct()))
nondiff("argmin", "dnp", lambda x: dnp.argmin(x, axis=0), args_of(distinct()))
nondiff("argmin", "method", lambda x: x.argmin(), args_of(distinct()))
nondiff("schedule_value", "optim",
        lambda x: importlib.import_module("diffprog.optim.schedules").schedule_value(
            _linear_schedule, dnp.astype(x * 3.0 + 5.0, np.int64)),
        args_of(away(0.2, 1)))
nondiff("stop_gradient", "api", diffprog.stop_gradient, args_of(uni(-1, 1)),
        locally_constant=False)


# ----------------------------------------------------------------------------- coverage


def _defined_outside_library(prim: Primitive) -> bool:
    """True for primitives registered by test code (their rules live outside diffprog)."""
    rules = [prim.impl, prim.jvp, prim.transpose, prim.vjp_joint, *(prim.vjps or ())]
    mods = {getattr(r, "__module__", None) for r in rules if r is not None}
    mods.discard(None)
    lib = {m for m in mods if m.split(".")[0] in ("diffprog", "numpy", "scipy")}
    return bool(mods - lib)


def test_every_registered_primitive_has_a_case():
    covered = {c.prim for c in CASES if c.exercises} | {c.prim for c in NONDIFF_CASES}
    library = {n: p for n, p in registry.items() if not _defined_outside_library(p)}
    missing = sorted(n for n in library if n not in covered)
    assert not missing, (
        f"registered primitives without a test case in {__name__}: {missing} "
        "(add a differentiable public function and domain inputs to the table)"
    )
    nondiff_without_case = sorted(
        n for n, p in library.items() if p.nondiff and n not in {c.prim for c in NONDIFF_CASES}
    )
    assert not nondiff_without_case, (
        f"nondiff primitives need a NondiffCase: {nondiff_without_case}"
    )
    diff_in_nondiff_table = sorted(
        c.prim for c in NONDIFF_CASES if c.prim in library and not library[c.prim].nondiff
    )
    assert not diff_in_nondiff_table, (
        f"differentiable primitives listed as nondiff: {diff_in_nondiff_table}"
    )


def test_primitives_registered_by_tests_are_not_counted():
    mine = Primitive("test_only_sin", np.sin, jvp=_sin_jvp, register=False)
    assert _defined_outside_library(mine)
    assert not _defined_outside_library(registry["sin"])
    assert not _defined_outside_library(registry["sign"])  # a bare NumPy ufunc, no rules


def test_case_table_names_are_registered_and_unique():
    ids = [c.id for c in CASES] + [c.id for c in NONDIFF_CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    unknown = sorted(({c.prim for c in CASES} | {c.prim for c in NONDIFF_CASES}) - set(registry))
    assert not unknown, f"cases for primitives that are not registered: {unknown}"


def _ids(cases):
    return [c.id for c in cases]


_EXERCISING = [c for c in CASES if c.exercises] + NONDIFF_CASES


@pytest.mark.parametrize("c", _EXERCISING, ids=_ids(_EXERCISING))
def test_case_exercises_its_primitive(c):
    """The case binds its primitive, both under jvp and under vjp."""
    args = c.make_args()
    fn = c.fn if isinstance(c, Case) else _nondiff_probe(c)
    floats = [a for a in args if np.asarray(a).dtype.kind in "fc"]
    for mode in ("jvp", "vjp"):
        with diffprog.profile() as p:
            if mode == "jvp":
                diffprog.jvp(fn, tuple(args), tuple(np.ones_like(a) for a in args))
            else:
                diffprog.vjp(fn, *args)
        assert p.primitive_calls[c.prim] > 0, (
            f"{c.id}: primitive {c.prim!r} was not bound under {mode}; called: "
            f"{dict(p.primitive_calls)}"
        )
    assert floats


# ----------------------------------------------------------------------------- derivative checks


@pytest.mark.parametrize("c", CASES, ids=_ids(CASES))
def test_check_grads_float64(c):
    check_grads(c.fn, c.make_args(), order=c.order, modes=("fwd", "rev"), **c.tol)


def _leaves(tree):
    return diffprog.tree_leaves(tree)


def _tangents_like(args, rng):
    out = []
    for a in args:
        t = rng.standard_normal(np.shape(a))
        if np.asarray(a).dtype.kind == "c":
            t = t + 1j * rng.standard_normal(np.shape(a))
        out.append(np.asarray(t).astype(np.asarray(a).dtype))
    return tuple(out)


def _upcast(a):
    a = np.asarray(a)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def _assert_close_32_64(got32, want64, what):
    got32 = np.asarray(got32)
    want64 = np.asarray(want64)
    scale = max(1.0, float(np.max(np.abs(want64), initial=0.0)))
    np.testing.assert_allclose(got32.astype(want64.dtype), want64, rtol=2e-3, atol=2e-3 * scale,
                               err_msg=what)


_F32_CASES = [c for c in CASES if c.float32]


@pytest.mark.parametrize("c", _F32_CASES, ids=_ids(_F32_CASES))
def test_float32_jvp(c):
    """float32 in, float32 out: primal and tangent dtypes, values close to float64 ones."""
    args32 = c.make_args(np.float32)
    tans32 = _tangents_like(args32, np.random.default_rng(1))
    out32, t32 = diffprog.jvp(c.fn, args32, tans32)
    out64, t64 = diffprog.jvp(c.fn, tuple(_upcast(a) for a in args32),
                              tuple(_upcast(t) for t in tans32))
    for o32, tt32, o64, tt64 in zip(_leaves(out32), _leaves(t32), _leaves(out64), _leaves(t64),
                                    strict=True):
        kind = np.asarray(o64).dtype.kind
        want = np.float32 if kind == "f" else np.complex64
        assert np.result_type(o32) == want, f"primal output dtype {np.result_type(o32)}"
        assert np.result_type(tt32) == want, f"tangent output dtype {np.result_type(tt32)}"
        _assert_close_32_64(o32, o64, "primal output")
        _assert_close_32_64(tt32, tt64, "tangent output")


@pytest.mark.parametrize("c", _F32_CASES, ids=_ids(_F32_CASES))
def test_float32_vjp(c):
    """float32 cotangents: each input's cotangent has the input's dtype, close to float64."""
    args32 = c.make_args(np.float32)
    out32, f_vjp32 = diffprog.vjp(c.fn, *args32)
    leaves, treedef = diffprog.tree_flatten(out32)
    cts32 = _tangents_like(leaves, np.random.default_rng(2))
    got = f_vjp32(diffprog.tree_unflatten(treedef, list(cts32)))
    _, f_vjp64 = diffprog.vjp(c.fn, *[_upcast(a) for a in args32])
    want = f_vjp64(diffprog.tree_unflatten(treedef, [_upcast(u) for u in cts32]))
    for a, g, w in zip(args32, got, want, strict=True):
        assert np.result_type(g) == a.dtype, f"cotangent dtype {np.result_type(g)} for {a.dtype}"
        _assert_close_32_64(g, w, "cotangent")


# ----------------------------------------------------------------------------- nondiff primitives


def _as_float(v):
    return dnp.astype(v, np.float64)


def _nondiff_probe(c):
    """A scalar function of the arguments whose only dependence goes through ``c.expr``."""

    def probe(*a):
        return 0.0 * dnp.sum(a[0]) + dnp.sum(_as_float(c.expr(*a)))

    return probe


@pytest.mark.parametrize("c", NONDIFF_CASES, ids=_ids(NONDIFF_CASES))
def test_nondiff_derivative_is_exactly_zero(c):
    args = c.make_args()
    seen = []

    def f(*a):
        v = c.expr(*a)
        seen.append(v)
        return 0.0 * dnp.sum(a[0]) + dnp.sum(_as_float(v))

    tans = _tangents_like(args, np.random.default_rng(0))
    _, t = diffprog.jvp(f, args, tans)
    assert np.all(np.asarray(t) == 0.0)
    g = diffprog.grad(f, argnums=tuple(range(len(args))))(*args)
    for gi, a in zip(g, args, strict=True):
        assert np.shape(gi) == np.shape(a)
        assert np.all(np.asarray(gi) == 0.0)
    # the primitive's output on traced inputs is a plain (constant) value
    assert seen and not any(isinstance(v, Tracer) for v in seen)


_LOCALLY_CONSTANT = [c for c in NONDIFF_CASES if c.locally_constant]


@pytest.mark.parametrize("c", _LOCALLY_CONSTANT, ids=_ids(_LOCALLY_CONSTANT))
def test_nondiff_check_grads(c):
    """``x ↦ sum(x) * (1 + Σ prim(x))`` has derivative ``1 + Σ prim(x)`` (locally constant)."""

    def f(*a):
        return dnp.sum(a[0]) * (1.0 + dnp.sum(_as_float(c.expr(*a)))) + dnp.sum(a[-1] * a[-1])

    check_grads(f, c.make_args(), order=2, modes=("fwd", "rev"))


def test_sign_as_derivative():
    """``x * sign(x) = |x|`` has derivative ``sign(x)`` (the step function contributes 0)."""
    x = away(0.2, 1.0)(np.random.default_rng(3))
    g = diffprog.grad(lambda x: dnp.sum(x * dnp.sign(x)))(x)
    np.testing.assert_array_equal(g, np.sign(x))
    _, t = diffprog.jvp(lambda x: x * dnp.sign(x), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, np.sign(x))


def test_stop_gradient_blocks_exactly():
    x = uni(-1, 1)(np.random.default_rng(4))
    g = diffprog.grad(lambda x: dnp.sum(x * diffprog.stop_gradient(x)))(x)
    np.testing.assert_array_equal(g, x)
    h = diffprog.hessian(lambda x: dnp.sum(x * diffprog.stop_gradient(x) ** 2))(x.ravel())
    np.testing.assert_array_equal(h, np.zeros((6, 6)))


# ----------------------------------------------------------------------------- wrong rules caught


def _sin_jvp(primals, tangents, ans):
    return tangents[0] * dnp.cos(primals[0])


def _bad_prims():
    good = Primitive("good_sin", np.sin, jvp=_sin_jvp,
                     vjps=(lambda g, ans, x: g * dnp.cos(x),), register=False)
    bad_vjp = Primitive("bad_sin_vjp", np.sin, jvp=_sin_jvp,
                        vjps=(lambda g, ans, x: -g * dnp.cos(x),), register=False)
    bad_jvp = Primitive("bad_sin_jvp", np.sin,
                        jvp=lambda primals, tangents, ans: -tangents[0] * dnp.cos(primals[0]),
                        vjps=(lambda g, ans, x: g * dnp.cos(x),), register=False)
    # a cos whose own derivative has the wrong sign: sin built on it is right to first order only
    bad_cos = Primitive("bad_cos", np.cos, register=False)
    bad_cos.jvp = lambda primals, tangents, ans: tangents[0] * dnp.sin(primals[0])
    bad_cos.vjps = (lambda g, ans, x: g * dnp.sin(x),)
    bad_2nd = Primitive("bad_sin_2nd", np.sin, register=False)
    bad_2nd.jvp = lambda primals, tangents, ans: tangents[0] * bad_cos.bind(primals[0])
    bad_2nd.vjps = (lambda g, ans, x: g * bad_cos.bind(x),)
    jvp_only = Primitive("jvp_only_sin", np.sin, jvp=_sin_jvp, register=False)
    return good, bad_vjp, bad_jvp, bad_2nd, jvp_only


def test_wrong_rules_are_caught():
    good, bad_vjp, bad_jvp, bad_2nd, jvp_only = _bad_prims()
    x = uni(-1, 1)(np.random.default_rng(5))
    assert "bad_sin_vjp" not in registry
    check_grads(good.bind, (x,), order=2, modes=("fwd", "rev"))
    check_grads(jvp_only.bind, (x,), order=2, modes=("fwd", "rev"))  # AD-36: vjp via transpose
    check_grads(bad_vjp.bind, (x,), order=1, modes=("fwd",))
    with pytest.raises(AssertionError, match="rev check failed at order 1"):
        check_grads(bad_vjp.bind, (x,), order=1, modes=("fwd", "rev"))
    with pytest.raises(AssertionError, match="fwd check failed at order 1"):
        check_grads(bad_jvp.bind, (x,), order=1, modes=("fwd", "rev"))
    check_grads(bad_jvp.bind, (x,), order=1, modes=("rev",))  # its VJP rule is right
    check_grads(bad_2nd.bind, (x,), order=1, modes=("fwd", "rev"))
    with pytest.raises(AssertionError, match="at order 2"):
        check_grads(bad_2nd.bind, (x,), order=2, modes=("fwd", "rev"))


def test_wrong_rule_caught_inside_a_composition():
    _, bad_vjp, _, _, _ = _bad_prims()
    x = uni(-1, 1)(np.random.default_rng(6))
    with pytest.raises(AssertionError):
        check_grads(lambda x: dnp.sum(dnp.tanh(bad_vjp.bind(x * 2.0)) ** 2), (x,), order=1,
                    modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [(0,), (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_over_leading_axes_of_large_arrays_as_a_matrix_vector_product(dtype, axis, keepdims):
    """The fast path of ``sum`` (leading axes, ≥ 16 Ki elements) agrees with NumPy's pairwise
    summation to the accumulation precision, with the same shape and dtype, in ``grad`` too."""
    x = np.random.default_rng(0).normal(size=(32, 64, 24)).astype(dtype)
    got = dnp.sum(x, axis=axis, keepdims=keepdims)
    want = np.sum(x.astype(np.float64), axis=axis, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-3 if dtype == np.float32 else 1e-10)
    b = np.random.default_rng(1).normal(size=24).astype(dtype)
    g = diffprog.grad(lambda b: dnp.sum((x + b) ** 2))(b)        # unbroadcast over (0, 1)
    np.testing.assert_allclose(g, 2 * (x.astype(np.float64) + b).sum((0, 1)),
                               rtol=1e-4 if dtype == np.float32 else 1e-12)
