"""Derivatives by other means than the AD engine, and checks of the engine (Book ch. 7, §8.4).

Finite differences and complex-step derivatives (Book §7.1–7.7) and ``check_grads``, which
tests AD rules against central finite differences (Book §7.8 use case ii).
"""

from .check import check_grads
from .finite_differences import (
    complex_step_jvp,
    fd_coefficients,
    fd_directional_derivative,
    fd_error_study,
    fd_grad,
    fd_jacobian,
    fd_jvp,
    fd_second_directional,
)

__all__ = [
    "check_grads",
    "complex_step_jvp",
    "fd_coefficients",
    "fd_directional_derivative",
    "fd_error_study",
    "fd_grad",
    "fd_jacobian",
    "fd_jvp",
    "fd_second_directional",
]
