"""Bad input raises clear errors naming the function, the argument and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog
import diffprog.numpy as dnp


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=r"grad: .*scalar.*shape \(3,\)"):
        diffprog.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="value_and_grad: .*scalar"):
        diffprog.value_and_grad(lambda x: x * 2.0)(np.ones(3))


def test_grad_of_integer_output_or_complex_output():
    with pytest.raises(TypeError, match="real floating-point scalar"):
        diffprog.grad(lambda x: dnp.sum(x) * 1j)(np.ones(2))


@pytest.mark.parametrize("bad", [np.array([1, 2]), np.array([True, False]), 3])
def test_integer_and_bool_inputs_to_a_derivative(bad):
    with pytest.raises(TypeError, match=r"grad: differentiation requires floating-point"):
        diffprog.grad(lambda x: dnp.sum(x * 1.0))(bad)
    with pytest.raises(TypeError, match=r"jvp: .*floating-point"):
        diffprog.jvp(lambda x: x, (bad,), (bad,))


def test_tangent_shape_and_dtype_mismatch():
    with pytest.raises(ValueError, match=r"jvp: tangent.* shape \(2,\), expected \(3,\)"):
        diffprog.jvp(dnp.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(TypeError, match=r"jvp: tangent.* dtype float32, expected float64"):
        diffprog.jvp(dnp.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(ValueError, match="jvp: got 1 primals but 2 tangents"):
        diffprog.jvp(dnp.sin, (np.ones(3),), (np.ones(3), np.ones(3)))
    with pytest.raises(TypeError, match="jvp: primals and tangents must be tuples"):
        diffprog.jvp(dnp.sin, np.ones(3), np.ones(3))
    _, f_vjp = diffprog.vjp(dnp.sin, np.ones(3))
    with pytest.raises(ValueError, match=r"vjp \(vjp_fn\): .*shape \(4,\), expected \(3,\)"):
        f_vjp(np.ones(4))
    with pytest.raises(ValueError, match=r"vjp \(vjp_fn\): tangent structure"):
        f_vjp((np.ones(3), np.ones(3)))


def test_unsupported_numpy_function_on_traced_values():
    with pytest.raises(TypeError, match=r"numpy.unwrap is not supported on traced values"):
        diffprog.grad(lambda x: np.sum(np.unwrap(x)))(np.ones(3))
    with pytest.raises(TypeError, match=r"numpy.sin with keyword arguments \['out'\]"):
        diffprog.grad(lambda x: np.sum(np.sin(x, out=np.empty(3))))(np.ones(3))
    with pytest.raises(TypeError, match="cannot be converted to a NumPy array"):
        diffprog.grad(lambda x: np.asarray(x).sum())(np.ones(3))
    with pytest.raises(AttributeError, match="diffprog.numpy has no differentiable 'unwrap'"):
        _ = dnp.unwrap


@pytest.mark.parametrize("argnums, exc, msg", [
    (2, ValueError, r"grad: argnums=2 is out of range .* 2 positional"),
    ((0, 0), ValueError, "duplicates"),
    ("0", TypeError, "argnums must be an int"),
    ((), TypeError, "argnums must be an int"),
])
def test_wrong_argnums(argnums, exc, msg):
    with pytest.raises(exc, match=msg):
        diffprog.grad(lambda x, y: dnp.sum(x * y), argnums=argnums)(np.ones(2), np.ones(2))


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match="has_aux=True .* pair"):
        diffprog.grad(lambda x: dnp.sum(x), has_aux=True)(np.ones(2))


def test_bad_shapes_in_the_namespace():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) are not aligned"):
        dnp.matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="reshape: cannot reshape array of shape"):
        dnp.reshape(np.ones(6), (4, 2))
    with pytest.raises(ValueError, match="sum: axis 3 is out of bounds"):
        dnp.sum(np.ones((2, 2)), axis=3)
    with pytest.raises(IndexError, match="index arrays must be integer or boolean"):
        diffprog.grad(lambda x: dnp.sum(x[np.array([0.5])]))(np.ones(3))


def test_linear_transpose_of_a_non_linear_function():
    with pytest.raises(TypeError, match="not linear"):
        diffprog.linear_transpose(dnp.sin, np.ones(2))(np.ones(2))
    with pytest.raises(TypeError, match="not linear"):
        diffprog.linear_transpose(lambda x: x * x, np.ones(2))(np.ones(2))


def test_custom_rules_must_be_defined():
    f = diffprog.custom_jvp(lambda x: x)
    with pytest.raises(TypeError, match="has no JVP rule"):
        diffprog.grad(f)(np.array(1.0))
    h = diffprog.custom_vjp(lambda x: x)
    with pytest.raises(TypeError, match="has no VJP rule"):
        diffprog.grad(h)(np.array(1.0))


def test_hvp_and_jacobian_modes_are_checked():
    with pytest.raises(ValueError, match="hvp: method must be one of"):
        diffprog.hvp(lambda x: dnp.sum(x), np.ones(2), np.ones(2), method="sideways")
    with pytest.raises(ValueError, match="jacobian: mode must be"):
        diffprog.jacobian(dnp.sin, mode="both")
