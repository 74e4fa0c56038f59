"""Token embeddings (book §4.8.6): a lookup table whose rows are the token vectors.

Row convention (see :mod:`diffprog.nn.module`): ``table`` has shape ``(num_embeddings, dim)``,
row ``j`` is the vector of token ``j``, the transpose of the book's ``W^E ∈ ℝ^{D×M}`` whose
columns are the token vectors. The lookup ``embed(ids, table) = table[ids]`` equals
``one_hot(ids) @ table``; its gradient scatter-adds each output cotangent into the row of its
token, so a repeated id accumulates the sum of its cotangents.

Ids are 0-based integers in ``[0, num_embeddings)`` (the book writes 1-based ``[M]``). The range
is checked whenever the ids have concrete values (eagerly, also under ``grad``); inside ``jit``
or ``vmap`` the ids are abstract and only their dtype can be checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.primitive import Tracer
from .linear import check_last_dim
from .module import Module, normal_init

__all__ = ["embed", "Embedding"]


def _concrete_ids(ids: Any) -> np.ndarray | None:
    """The value of ``ids`` if it has one for this evaluation, else ``None`` (jit, vmap)."""
    while isinstance(ids, Tracer):
        if not getattr(ids, "concrete", True) or not hasattr(ids, "value"):
            return None
        ids = ids.value
    return np.asarray(ids)


def _check_ids(ids: Any, num: int, fname: str) -> Any:
    """Validated ids (lists become arrays): integer dtype, and in range when concrete."""
    if not isinstance(ids, Tracer):
        ids = np.asarray(ids)
    dtype = np.result_type(ids.dtype if isinstance(ids, Tracer) else np.asarray(ids))
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"{fname}: argument 'ids' must hold integer token ids, got dtype {dtype}")
    value = _concrete_ids(ids)
    if value is not None and value.size and (value.min() < 0 or value.max() >= num):
        raise ValueError(f"{fname}: argument 'ids' must lie in [0, {num}), got values in "
                         f"[{value.min()}, {value.max()}]")
    return ids


def embed(ids: Any, table: Any) -> Any:
    """Embedding lookup ``x_i = table[ids_i]`` = ``e_{ids_i}ᵀ table`` (book §4.8.6, the row form
    of ``W^E e_{x_i}``): integer ids of any shape ``S`` give ``(*S, dim)``. The VJP scatter-adds
    the cotangent rows into the table.

    Example::

        >>> embed(np.array([2, 0]), np.arange(6.0).reshape(3, 2)).tolist()
        [[4.0, 5.0], [0.0, 1.0]]
    """
    return _lookup(ids, table, "embed")


def _lookup(ids: Any, table: Any, fname: str) -> Any:
    if np.ndim(table) != 2:
        raise ValueError(f"{fname}: 'table' must be a matrix (num_embeddings, dim), got shape "
                         f"{tuple(np.shape(table))}")
    ids = _check_ids(ids, int(np.shape(table)[0]), fname)
    return dnp.take(table, ids, axis=0)


class Embedding(Module):
    """Learned token embedding (book §4.8.6): ``table ∈ ℝ^{num_embeddings×dim}``;
    ``emb(ids) = table[ids]`` and, for weight tying, ``emb.attend(x) = x tableᵀ`` (scores of
    ``x`` against every token vector).

    Example::

        >>> emb = Embedding.init(0, 10, 4)
        >>> emb(np.array([[1, 2, 3]])).shape, emb.attend(np.ones(4)).shape
        ((1, 3, 4), (10,))
    """

    table: Any

    @classmethod
    def init(cls, rng: Any, num_embeddings: int, dim: int, *, std: float = 0.02,
             dtype: Any = np.float64) -> Embedding:
        """Table entries drawn from ``N(0, std²)`` (book §4.8.6).

        Example::

            >>> Embedding.init(0, 5, 3).table.shape
            (5, 3)
        """
        if num_embeddings < 1 or dim < 1:
            raise ValueError(f"Embedding.init: 'num_embeddings' and 'dim' must be >= 1, got "
                             f"{num_embeddings} and {dim}")
        return cls(normal_init(rng, (num_embeddings, dim), std, dtype))

    @property
    def num_embeddings(self) -> int:
        return int(np.shape(self.table)[0])

    @property
    def dim(self) -> int:
        return int(np.shape(self.table)[1])

    def __call__(self, ids: Any) -> Any:
        return _lookup(ids, self.table, "Embedding")

    def attend(self, x: Any) -> Any:
        """Scores ``x tableᵀ`` of ``x`` ``(..., dim)`` against every token, ``(..., num)``: the
        disembedding of a language model with tied weights (book §4.8.8).

        Example::

            >>> Embedding(np.eye(3)).attend(np.array([0.0, 2.0, 0.0])).tolist()
            [0.0, 2.0, 0.0]
        """
        check_last_dim(x, self.dim, "Embedding.attend")
        return dnp.matmul(x, dnp.swapaxes(self.table, -1, -2))
