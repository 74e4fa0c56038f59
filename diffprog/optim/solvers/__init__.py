"""Optimization solvers on the diffprog AD engine (book ch. 15–17; notes 003 §14, 004 §A.1, A.3).

First order (GD, heavy ball, Nesterov, projected / proximal gradient, FISTA, proximal point),
line searches (Armijo, strong Wolfe, exact), Newton (dense / matrix-free CG, damped,
regularized), Gauss–Newton and Levenberg–Marquardt, BFGS (corrected update) and L-BFGS, and
gradient descent–ascent for min-max games, natural gradient, SAG and averaged SGD. Every
solver returns an :class:`OptResult`.
"""

from .base import OptResult
from .first_order import (
    accelerated_gradient,
    fista,
    gradient_descent,
    heavy_ball,
    nesterov_agd,
    projected_gradient,
    proximal_gradient,
    proximal_point,
)
from .least_squares import gauss_newton, levenberg_marquardt
from .line_search import LineSearchResult, backtracking_armijo, exact_linesearch, wolfe_linesearch
from .minimax import gda, gda_unrolled
from .more_first_order import (
    anderson_acceleration,
    armijo_sgd,
    frank_wolfe,
    lmo,
    majorize_minimize,
    mirror_descent,
    prox_grad_fixed_point_fun,
    prox_quadratic_majorizer,
    quadratic_majorizer,
    sign_gradient_descent,
    steepest_descent_direction,
)
from .natural_gradient import natural_gradient
from .newton import newton, newton_direction
from .quasi_newton import bfgs, bfgs_update, lbfgs, two_loop_recursion
from .stochastic import sag, sgd_with_averaging
from .stochastic_second_order import (
    diag_hessian_preconditioner,
    preconditioned_gradient_descent,
    preconditioned_step,
    prox_linear,
    psgd,
    stochastic_gauss_newton,
    stochastic_newton,
    stochastic_projected_gradient,
    stochastic_proximal_gradient,
    subsampled_oracles,
)

__all__ = [
    "LineSearchResult",
    "OptResult",
    "accelerated_gradient",
    "backtracking_armijo",
    "bfgs",
    "bfgs_update",
    "exact_linesearch",
    "fista",
    "gauss_newton",
    "gda",
    "gda_unrolled",
    "gradient_descent",
    "heavy_ball",
    "lbfgs",
    "levenberg_marquardt",
    "natural_gradient",
    "nesterov_agd",
    "newton",
    "newton_direction",
    "projected_gradient",
    "proximal_gradient",
    "proximal_point",
    "sag",
    "sgd_with_averaging",
    "two_loop_recursion",
    "wolfe_linesearch",
    "anderson_acceleration",
    "armijo_sgd",
    "frank_wolfe",
    "lmo",
    "majorize_minimize",
    "mirror_descent",
    "prox_grad_fixed_point_fun",
    "prox_quadratic_majorizer",
    "quadratic_majorizer",
    "sign_gradient_descent",
    "steepest_descent_direction",
    "diag_hessian_preconditioner",
    "preconditioned_gradient_descent",
    "preconditioned_step",
    "prox_linear",
    "psgd",
    "stochastic_gauss_newton",
    "stochastic_newton",
    "stochastic_projected_gradient",
    "stochastic_proximal_gradient",
    "subsampled_oracles",
]
