"""Neural-network building blocks (book ch. 4). This module grows with the layers issue."""

from .activations import relu

__all__ = ["relu"]
