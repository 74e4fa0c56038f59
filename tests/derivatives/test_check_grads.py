"""Tests of check_grads (spec AD-13): AD against central finite differences."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import diffprog
from diffprog.derivatives import check as checkmod
from diffprog.derivatives import check_grads, fd_jvp

# ----------------------------------------------------------------------------------------------
# A finite-difference "engine": lets the checker's plumbing (recursion, pytrees, integer
# arguments, adjointness, error messages) be tested independently of diffprog.core.
# ----------------------------------------------------------------------------------------------


class FDEngine:
    """jvp/vjp by high-accuracy central differences; ``jvp_sign``/``vjp_sign`` sabotage them."""

    def __init__(self, jvp_sign=1.0, vjp_sign=1.0):
        self.jvp_sign = jvp_sign
        self.vjp_sign = vjp_sign

    def _directional(self, f, primals, tangents):
        leaves0, treedef = checkmod._flatten(f(*primals))
        shapes = [np.shape(x) for x in leaves0]

        def phi(t):
            xs = [p + t * v for p, v in zip(primals, tangents, strict=True)]
            leaves, _ = checkmod._flatten(f(*xs))
            return np.concatenate([np.ravel(x) for x in leaves])

        flat = fd_jvp(phi, 0.0, 1.0, accuracy=3)
        out, pos = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(np.reshape(flat[pos : pos + n], s))
            pos += n
        return leaves0, treedef, out

    def jvp(self, f, primals, tangents):
        primals = tuple(np.asarray(p) for p in primals)
        tangents = tuple(np.asarray(t) for t in tangents)
        leaves0, treedef, t_out = self._directional(f, primals, tangents)
        t_out = [self.jvp_sign * t for t in t_out]
        return checkmod._unflatten(treedef, leaves0), checkmod._unflatten(treedef, t_out)

    def vjp(self, f, *primals):
        primals = tuple(np.asarray(p) for p in primals)
        out = f(*primals)

        def vjp_fn(u):
            u_leaves, _ = checkmod._flatten(u)
            cts = []
            for i, p in enumerate(primals):
                ct = np.zeros(p.shape)
                for j in range(p.size):
                    e = [np.zeros(q.shape) for q in primals]
                    e[i].flat[j] = 1.0
                    _, _, col = self._directional(f, primals, e)
                    ct.flat[j] = sum(np.sum(a * b).real for a, b in zip(u_leaves, col, strict=True))
                cts.append(self.vjp_sign * ct)
            return tuple(cts)

        return out, vjp_fn


@pytest.fixture
def fd_engine(monkeypatch):
    def install(**kw):
        eng = FDEngine(**kw)
        monkeypatch.setattr(diffprog, "jvp", eng.jvp, raising=False)
        monkeypatch.setattr(diffprog, "vjp", eng.vjp, raising=False)
        return eng

    return install


def test_plumbing_passes_with_correct_fd_engine(fd_engine):
    fd_engine()
    W = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]])

    def f(x, W, n):  # n: an integer argument, held fixed
        return {"a": np.tanh(W @ x) ** n, "b": (np.sum(np.sin(x)), np.exp(x[0]))}

    check_grads(f, (np.array([0.2, -0.4, 0.7]), W, 2), order=2)
    check_grads(lambda x: np.sin(x) * x, (0.7,), order=1)


def test_plumbing_detects_wrong_jvp_only_in_fwd_mode(fd_engine):
    fd_engine(jvp_sign=-1.0)
    f = lambda x: np.sin(x) * np.exp(x)
    with pytest.raises(AssertionError, match=r"fwd check failed at order 1 \(JVP of f\)"):
        check_grads(f, (np.array([0.3, 0.9]),), order=1)
    check_grads(f, (np.array([0.3, 0.9]),), order=2, modes=("rev",))


def test_plumbing_detects_wrong_vjp_only_in_rev_mode(fd_engine):
    fd_engine(vjp_sign=-1.0)
    f = lambda x: np.sin(x) * np.exp(x)
    with pytest.raises(AssertionError, match=r"rev check failed at order 1.*adjointness"):
        check_grads(f, (np.array([0.3, 0.9]),), order=1)
    check_grads(f, (np.array([0.3, 0.9]),), order=2, modes="fwd")


def test_bad_inputs():
    f = lambda x: x
    x = np.ones(2)
    with pytest.raises(TypeError, match="check_grads: argument 'args' must be a tuple"):
        check_grads(f, x)
    with pytest.raises(TypeError, match="check_grads: argument 'f'"):
        check_grads(3, (x,))
    with pytest.raises(ValueError, match="check_grads: argument 'order'"):
        check_grads(f, (x,), order=0)
    with pytest.raises(ValueError, match="check_grads: argument 'modes'"):
        check_grads(f, (x,), modes=("fwd", "sideways"))
    with pytest.raises(ValueError, match="check_grads: argument 'modes'"):
        check_grads(f, (x,), modes=())
    with pytest.raises(ValueError, match="check_grads: argument 'eps'"):
        check_grads(f, (x,), eps=0.0)
    with pytest.raises(ValueError, match="check_grads: argument 'atol'"):
        check_grads(f, (x,), atol=-1.0)
    with pytest.raises(TypeError, match="check_grads: argument 'rtol'"):
        check_grads(f, (x,), rtol="1e-5")
    with pytest.raises(TypeError, match="check_grads: argument 'seed'"):
        check_grads(f, (x,), seed=1.5)
    with pytest.raises(ValueError, match="check_grads: no floating-point argument"):
        check_grads(f, (np.arange(3), True))
    with pytest.raises(
        ValueError, match=r"check_grads: array leaf 0 of .args. must contain only finite"
    ):
        check_grads(f, (np.array([np.nan]),))


def test_default_tolerances_by_dtype():
    assert checkmod._default_tol([np.dtype(np.float64)]) == 1e-5
    assert checkmod._default_tol([np.dtype(np.float64), np.dtype(np.float32)]) == 1e-3
    assert checkmod._default_tol([np.dtype(np.complex64)]) == 1e-3
    assert checkmod._default_tol([np.dtype(np.float16)]) == 5e-2


def test_pytree_roundtrip():
    tree = {"b": (1, [2, None, 3]), "a": 4}
    leaves, treedef = checkmod._flatten(tree)
    assert leaves == [4, 1, 2, 3]
    assert checkmod._unflatten(treedef, leaves) == tree


# ----------------------------------------------------------------------------------------------
# Against the real engine (diffprog.jvp / diffprog.vjp / diffprog.numpy / custom rules).
# ----------------------------------------------------------------------------------------------


def _dnp():
    import diffprog.numpy as dnp

    return dnp


RNG = np.random.default_rng(0)
X3 = RNG.uniform(-1.0, 1.0, size=3)
W23 = RNG.uniform(-1.0, 1.0, size=(2, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda dnp: (lambda x: dnp.sin(x), (X3,)),
        lambda dnp: (lambda x: dnp.exp(x) * x, (X3,)),
        lambda dnp: (lambda x: dnp.tanh(x), (X3.reshape(3, 1),)),
        lambda dnp: (lambda x: dnp.sum(dnp.sin(x) ** 2), (X3,)),
        lambda dnp: (lambda W, x: dnp.tanh(W @ x), (W23, X3)),
        lambda dnp: (lambda W, x: dnp.sum(dnp.exp(W @ x)), (W23, X3)),
        lambda dnp: (lambda x: x * x * x + dnp.sin(x), (0.4,)),
    ],
)
def test_engine_primitives_pass(make):
    f, args = make(_dnp())
    check_grads(f, args, order=2)


def test_engine_integer_argument_is_held_fixed():
    dnp = _dnp()
    check_grads(lambda x, n: dnp.sin(x) ** n, (X3, 3), order=2)


def test_engine_pytree_argument():
    dnp = _dnp()
    params = {"W": W23, "b": np.array([0.1, -0.2])}
    check_grads(lambda p, x: dnp.tanh(p["W"] @ x + p["b"]), (params, X3), order=2)


@pytest.mark.parametrize(
    "fun",
    [
        lambda z: z * z,  # holomorphic
        lambda z: (2.0 + 3.0j) * z,
        lambda z: z.conj() * z,  # not holomorphic, real-valued in a complex dtype
    ],
)
def test_engine_complex_inputs(fun):
    z = X3 + 1j * X3[::-1]
    check_grads(fun, (z,), order=2)


def test_engine_complex_output_of_real_input():
    dnp = _dnp()
    check_grads(lambda x: dnp.exp(1j * x), (X3,), order=2)


def test_engine_float32():
    dnp = _dnp()
    check_grads(lambda x: dnp.tanh(x) * 2.0, (X3.astype(np.float32),), order=1)


def test_engine_tuple_output():
    dnp = _dnp()
    check_grads(lambda x: (dnp.sin(x), dnp.sum(dnp.exp(x))), (X3,), order=2)


def _wrong_custom_jvp():
    dnp = _dnp()

    @diffprog.custom_jvp
    def f(x):
        return dnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return dnp.sin(x), -dnp.cos(x) * t  # sign flipped

    return f


def _wrong_custom_vjp():
    dnp = _dnp()

    @diffprog.custom_vjp
    def f(x):
        return dnp.sin(x)

    def fwd(x):
        return dnp.sin(x), (x,)

    def bwd(res, g):
        (x,) = res
        return (-dnp.cos(x) * g,)  # sign flipped

    f.defvjp(fwd, bwd)
    return f


def _right_custom_jvp():
    dnp = _dnp()

    @diffprog.custom_jvp
    def f(x):
        return dnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return dnp.sin(x), dnp.cos(x) * t

    return f


def _right_custom_vjp():
    dnp = _dnp()

    @diffprog.custom_vjp
    def f(x):
        return dnp.sin(x)

    def fwd(x):
        return dnp.sin(x), (x,)

    def bwd(res, g):
        (x,) = res
        return (dnp.cos(x) * g,)

    f.defvjp(fwd, bwd)
    return f


def test_engine_correct_custom_jvp_passes():
    check_grads(_right_custom_jvp(), (X3,), order=2)


def test_engine_correct_custom_vjp_passes_first_order():
    check_grads(_right_custom_vjp(), (X3,), order=1)


def test_engine_correct_custom_vjp_passes_second_order():
    """bwd is written with differentiable dnp ops, so (JAX semantics) the VJP of the VJP must
    differentiate through it and its residuals: d/dx [cos(x) u] = -sin(x) u."""
    check_grads(_right_custom_vjp(), (X3,), order=2)


@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev")])
def test_engine_detects_sign_flipped_custom_jvp(modes):
    f = _wrong_custom_jvp()
    with pytest.raises(AssertionError, match=rf"{modes[0]} check failed at order 1"):
        check_grads(f, (X3,), order=1, modes=modes, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("modes", [("rev",), ("fwd", "rev")])
def test_engine_detects_sign_flipped_custom_vjp(modes):
    f = _wrong_custom_vjp()
    with pytest.raises(AssertionError, match="check failed at order 1"):
        check_grads(f, (X3,), order=1, modes=modes, atol=1e-6, rtol=1e-6)
    with pytest.raises(AssertionError, match="rev check failed at order 1"):
        check_grads(f, (X3,), order=2, modes=("rev",))


def test_engine_detects_wrong_second_order_rule():
    """A JVP rule that is right to first order but not differentiable itself (the derivative
    factor is frozen with stop_gradient) passes order=1 and fails order=2."""
    dnp = _dnp()

    @diffprog.custom_jvp
    def f(x):
        return dnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return dnp.sin(x), diffprog.stop_gradient(dnp.cos(x)) * t

    check_grads(f, (X3,), order=1)
    with pytest.raises(AssertionError, match="check failed at order 2"):
        check_grads(f, (X3,), order=2)


def test_engine_docstring_example():
    result = doctest.testmod(checkmod)
    assert result.failed == 0 and result.attempted > 0


def test_engine_complex_tangent_for_real_output_is_reported():
    """A JVP that returns a complex tangent for a real output is reported as such."""
    dnp = _dnp()

    @diffprog.custom_jvp
    def f(x):
        return dnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return dnp.sin(x), dnp.cos(x) * t * (1.0 + 0.5j)

    with pytest.raises(AssertionError, match="fwd check failed at order 1.*complex"):
        check_grads(f, (X3,), order=1, modes=("fwd",))
