"""diffprog: differentiable programming native to NumPy.

An automatic-differentiation engine over NumPy arrays (forward and reverse mode to any order,
linearize and linear transposition, custom rules, program graphs) and the elements of
*The Elements of Differentiable Programming* built on it.

Example::

    >>> import numpy as np, diffprog, diffprog.numpy as dnp
    >>> float(diffprog.grad(lambda x: dnp.sum(x ** 2))(np.array([1.0, 2.0]))[1])
    4.0
"""

from .core import allocator as _allocator  # noqa: F401,I001  (malloc reuse, see its docstring)
from . import numpy as numpy  # noqa: F401,I001  (installs tracer methods)
from . import scipy as scipy  # noqa: F401  (submodules load on first use)
from . import nn as nn  # noqa: F401,E402
from . import proba as proba  # noqa: F401,E402
from .core.api import (
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
)
from .core.batching import vmap
from .core.control_flow import cond, fori_loop, scan, switch, while_loop
from .core.custom import custom_jvp, custom_vjp, stop_gradient
from .core.instrument import count_calls, profile
from .core.ir import Graph, make_graph
from .core.jit import jit
from .core.linearize import linear_transpose, linearize
from .derivatives.checkpointing import checkpoint, remat
from .core.pytree import (
    register_dataclass,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)

__version__ = "0.1.0"

__all__ = [
    "Graph",
    "checkpoint",
    "remat",
    "cond",
    "count_calls",
    "custom_jvp",
    "custom_vjp",
    "fori_loop",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jit",
    "jvp",
    "linear_transpose",
    "linearize",
    "make_graph",
    "profile",
    "register_dataclass",
    "register_pytree_node",
    "scan",
    "stop_gradient",
    "switch",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_structure",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
    "vmap",
    "while_loop",
]
