"""Neural networks as parameterized programs (book ch. 4): modules are dataclass pytrees.

See :mod:`diffprog.nn.module` for the conventions (rows are examples, explicit ``init(rng, ...)``,
state returned, never hidden).
"""

from .activations import relu
from .linear import Linear
from .module import Module, count_params, glorot_uniform, normal_init, static
from .normalization import LayerNorm, layer_norm

__all__ = [
    "LayerNorm",
    "Linear",
    "Module",
    "count_params",
    "glorot_uniform",
    "layer_norm",
    "normal_init",
    "relu",
    "static",
]
