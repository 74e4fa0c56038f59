"""``diffprog.numpy``: a differentiable NumPy namespace (book ch. 2 and §8.4).

Import it in place of NumPy inside the functions you differentiate::

    import numpy as np
    import diffprog
    import diffprog.numpy as dnp

    f = lambda x: dnp.sum(dnp.tanh(x) ** 2)
    diffprog.grad(f)(np.array([0.1, 0.2]))

Arrays are plain ``numpy.ndarray``; inside a transformation they are traced values with the
NumPy operators, ``.T``, ``.shape``, ``.dtype``, indexing and a functional ``x.at[idx].set/add/
multiply``. NumPy functions called on traced values dispatch here; unsupported ones raise a
clear error. Constants (``zeros``, ``arange``...) are the NumPy functions themselves.
"""

from numpy import (  # noqa: F401  (dtypes and constants, as in NumPy)
    bool_,
    complex64,
    complex128,
    e,
    float16,
    float32,
    float64,
    inf,
    int8,
    int16,
    int32,
    int64,
    nan,
    ndarray,
    newaxis,
    pi,
    uint8,
)
from numpy import dtype as dtype  # noqa: F401

from . import methods as _methods  # noqa: F401,E402  (installs operators on tracers)
from ._base import tangent_zeros  # noqa: F401
from .creation import *  # noqa: F401,F403
from .products import *  # noqa: F401,F403
from .reduce_ops import *  # noqa: F401,F403
from .shape_ops import *  # noqa: F401,F403
from .ufuncs import *  # noqa: F401,F403
from .ufuncs import UFUNCS as _UFUNCS

globals().update(_UFUNCS)

import sys as _sys  # noqa: E402

from . import elementwise as _elementwise  # noqa: E402

_elementwise.dnp = _sys.modules[__name__]
round_ = _UFUNCS["rint"]


def __getattr__(name):
    if name in ("linalg", "fft"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(
        f"diffprog.numpy has no differentiable '{name}'. Use a supported function, or NumPy on "
        "constants (values that are not differentiated)."
    )
