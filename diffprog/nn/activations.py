"""Activation functions (book §4.2.3)."""

from __future__ import annotations

from typing import Any

from .. import numpy as dnp


def relu(x: Any) -> Any:
    """Rectified linear unit ``max(x, 0)`` (book §4.2.3).

    Non-smooth point: ``relu'(0) = 0`` (an element of the Clarke subdifferential [0, 1]).

    Example::

        >>> import numpy as np
        >>> relu(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 2.])
    """
    return dnp.where(x > 0, x, 0.0)
