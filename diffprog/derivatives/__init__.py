"""Derivatives beyond the gradient, and derivatives by other means (book ch. 7–9).

- Finite differences and complex-step derivatives (book §7.1–7.7) and ``check_grads``, which
  tests AD rules against central finite differences (§7.8 use case ii).
- Curvature: second derivatives, Gauss-Newton and Fisher matrices and their products,
  inverse-Hessian-vector products with matrix-free solvers (§9.1–9.4).
- Hessian backpropagation, block-diagonal Hessian and Gauss-Newton, diagonal approximations
  (§9.5–9.7).
- Checkpointing (§8.5): store-all, full recomputation, recursive halving, the optimal
  dynamic-programming schedule and its closed form, online checkpointing of loops of unknown
  length, and the ``checkpoint`` / ``remat`` decorator.
- Randomized estimators of traces and diagonals, Bartlett estimators, the forward gradient
  (§8.7, §9.8), and reversible layers (§8.6).
"""

from ..scipy.sparse.linalg import CGBreakdownError
from .check import check_grads
from .checkpointing import (
    ChainVJP,
    Schedule,
    checkpoint,
    checkpoint_cost,
    checkpoint_schedule,
    checkpoint_sequential,
    remat,
    run_schedule,
    vjp_chain,
    vjp_checkpointed,
    vjp_full_recompute,
    vjp_halving,
    vjp_online_checkpointed,
)
from .curvature import (
    empirical_fisher,
    fisher,
    fisher_supervised,
    fvp,
    gauss_newton,
    gn_factor,
    gnvp,
    make_gnvp,
    ohvp,
    output_hessian,
    second_derivative,
)
from .diagonal import diag_hessian_approx, diag_hessian_approx_graph, diag_oracle, mlp_diag_hessian
from .estimators import (
    forward_gradient,
    gn_diag_estimate,
    gn_diag_mc,
    gn_mc_factor,
    gn_trace,
    hessian_diag_estimate,
    hessian_trace,
    hutchinson_diag,
    hutchinson_trace,
)
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
from .hessian_backprop import (
    block_diag_gn,
    block_diag_hessian,
    block_diag_hessian_approx,
    graph_hessian_backprop,
    hessian_backprop,
    mlp_block_diag_gn,
)
from .ihvp import ihvp, make_ihvp
from .reversible import AdditiveCoupling, ReversibleChain, reversible_vjp, vjp_via_inverse_jvp
from .taylor import jet

__all__ = [
    "AdditiveCoupling",
    "CGBreakdownError",
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
    "empirical_fisher",
    "fisher",
    "fisher_supervised",
    "fvp",
    "gauss_newton",
    "gn_factor",
    "gnvp",
    "ihvp",
    "jet",
    "make_gnvp",
    "make_ihvp",
    "ohvp",
    "output_hessian",
    "second_derivative",
    "ReversibleChain",
    "block_diag_gn",
    "block_diag_hessian",
    "block_diag_hessian_approx",
    "check_grads",
    "complex_step_jvp",
    "diag_hessian_approx",
    "diag_hessian_approx_graph",
    "diag_oracle",
    "fd_coefficients",
    "fd_directional_derivative",
    "fd_error_study",
    "fd_grad",
    "fd_jacobian",
    "fd_jvp",
    "fd_second_directional",
    "forward_gradient",
    "gn_diag_estimate",
    "gn_diag_mc",
    "gn_mc_factor",
    "gn_trace",
    "graph_hessian_backprop",
    "hessian_backprop",
    "hessian_diag_estimate",
    "hessian_trace",
    "hutchinson_diag",
    "hutchinson_trace",
    "mlp_block_diag_gn",
    "mlp_diag_hessian",
    "reversible_vjp",
    "vjp_via_inverse_jvp",
]
