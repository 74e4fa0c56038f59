"""Recurrent neural networks (book §4.7): a state updated step by step by a function with
parameters shared across steps, run with :func:`diffprog.scan` (so that ``jit`` traces one step,
and reverse mode is backpropagation through time, ch. 8).

Shapes (rows are examples): a sequence is ``(..., L, D)`` with the time axis second to last, a
state is ``(..., H)``; leading batch axes are carried along. The pieces:

- :class:`RNNCell` ``γ(x_l, s_{l−1}) = a(MLP(x_l ⊕ s_{l−1}))``: the multi-input cell takes the
  concatenation of its inputs (§4.3 Remark 4.1); with no hidden layer it is the Elman cell
  ``tanh(x_l W_x + s_{l−1} W_s + b)``.
- :func:`rnn_scan` ``(s_L, s_{1:L})``; :func:`sequence_pool` (last / mean / max).
- :class:`RNNDecoder` (vector to sequence, §4.7.1), :class:`RNNEncoder` (sequence to vector,
  §4.7.2), :class:`RNNSeq2Seq` (aligned, §4.7.3), :class:`RNNEncoderDecoder` (unaligned,
  §4.7.4). Initial states ``z_0``/``s_0`` are learned parameters, as in the book.

Decoder feedback (§4.7.4): ``z_l = g(c ⊕ p_{l−1}, z_{l−1})`` feeds back the previous output
``p_{l−1}`` itself (differentiable); the convention for ``p_0`` is the zero vector unless a
``p0`` (e.g. a one-hot BOS token) is given. With ``eos_id`` the outputs are read as scores over
tokens and generation stops after the first step whose ``argmax`` is ``eos_id``, or at
``max_len``; this needs concrete values (not under ``jit``/``vmap``) and one unbatched input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core.control_flow import scan
from ..core.primitive import Tracer
from ..core.rng import as_generator
from .activations import relu
from .linear import check_last_dim
from .mlp import MLP
from .module import Module, static

__all__ = ["RNNCell", "rnn_scan", "sequence_pool", "RNNDecoder", "RNNEncoder", "RNNSeq2Seq",
           "RNNEncoderDecoder"]

_POOLINGS = ("last", "mean", "max")


def _broadcast_state(s0: Any, lead: tuple[int, ...]) -> Any:
    return dnp.broadcast_to(s0, lead + tuple(np.shape(s0)[-1:]))


class RNNCell(Module):
    """Recurrent cell ``s_l = γ(x_l, s_{l−1}) = a(MLP(x_l ⊕ s_{l−1}))`` (book §4.7), with ``a =
    tanh`` by default: an MLP of widths ``(D + H, *hidden_sizes, H)`` on the concatenation of
    input and previous state. ``cell(s, x)`` returns the new state ``(..., H)``.

    Example::

        >>> cell = RNNCell.init(0, 3, 5)
        >>> cell(np.zeros(5), np.ones(3)).shape
        (5,)
    """

    mlp: MLP

    @classmethod
    def init(cls, rng: Any, input_size: int, hidden_size: int, *,
             hidden_sizes: Sequence[int] = (), activation: Callable[[Any], Any] = dnp.tanh,
             inner_activation: Callable[[Any], Any] = relu, dtype: Any = np.float64) -> RNNCell:
        """A cell with Glorot weights (book §4.7); ``hidden_sizes`` adds hidden layers with
        ``inner_activation``; ``activation`` is applied to the new state.

        Example::

            >>> RNNCell.init(0, 2, 4).hidden_size
            4
        """
        if input_size < 0 or hidden_size < 1:
            raise ValueError(f"RNNCell.init: need input_size >= 0 and hidden_size >= 1, got "
                             f"{input_size} and {hidden_size}")
        sizes = [input_size + hidden_size, *hidden_sizes, hidden_size]
        return cls(MLP.init(rng, sizes, inner_activation, activation, dtype=dtype))

    @property
    def hidden_size(self) -> int:
        return self.mlp.out_features

    @property
    def input_size(self) -> int:
        return self.mlp.in_features - self.hidden_size

    def __call__(self, s: Any, x: Any) -> Any:
        check_last_dim(s, self.hidden_size, "RNNCell", "s")
        check_last_dim(x, self.input_size, "RNNCell", "x")
        lead = np.broadcast_shapes(np.shape(s)[:-1], np.shape(x)[:-1])
        x = dnp.broadcast_to(x, lead + (self.input_size,))
        s = dnp.broadcast_to(s, lead + (self.hidden_size,))
        return self.mlp(dnp.concatenate([x, s], axis=-1))


def _check_sequence(xs: Any, fname: str, argname: str = "xs") -> None:
    if np.ndim(xs) < 2 or np.shape(xs)[-2] == 0:
        raise ValueError(f"{fname}: argument '{argname}' must be a non-empty sequence of shape "
                         f"(..., L, D) with L >= 1, got shape {tuple(np.shape(xs))}")


def rnn_scan(cell: Callable[[Any, Any], Any], s0: Any, xs: Any) -> tuple[Any, Any]:
    """Run ``s_l = cell(s_{l−1}, x_l)`` over ``xs`` ``(..., L, D)`` with :func:`diffprog.scan`
    (book §4.7, the unrolled recursion with shared parameters); returns ``(s_L, s_{1:L})`` with
    the states stacked as ``(..., L, H)``.

    Example::

        >>> sL, states = rnn_scan(lambda s, x: s + x, np.zeros(1), np.ones((3, 1)))
        >>> sL.tolist(), states[:, 0].tolist()
        ([3.0], [1.0, 2.0, 3.0])
    """
    _check_sequence(xs, "rnn_scan")
    lead = tuple(np.shape(xs)[:-2])

    def step(s: Any, x: Any) -> tuple[Any, Any]:
        s = cell(s, x)
        return s, s

    sL, states = scan(step, _broadcast_state(s0, lead), dnp.moveaxis(xs, -2, 0))
    return sL, dnp.moveaxis(states, 0, -2)


def sequence_pool(S: Any, kind: str = "last", axis: int = -2) -> Any:
    """Parameter-free reduction of a sequence of states ``(..., L, D) → (..., D)`` along ``axis``
    (book §4.7.2): ``last`` = ``s_L``, ``mean`` = ``(1/L) Σ_l s_l``, ``max`` = ``max_l s_{l,d}``
    per coordinate (its gradient goes to the arg-max step). An empty sequence raises.

    Example::

        >>> S = np.array([[1.0, 6.0], [5.0, 2.0], [3.0, 4.0]])
        >>> [sequence_pool(S, k).tolist() for k in ("last", "mean", "max")]
        [[3.0, 4.0], [3.0, 4.0], [5.0, 6.0]]
    """
    if kind not in _POOLINGS:
        raise ValueError(f"sequence_pool: argument 'kind' must be one of {_POOLINGS}, got "
                         f"{kind!r}")
    nd = np.ndim(S)
    if not -nd <= axis < nd or np.shape(S)[axis] == 0:
        raise ValueError(f"sequence_pool: argument 'S' must have a non-empty axis {axis}, got "
                         f"shape {tuple(np.shape(S))}")
    if kind == "mean":
        return dnp.mean(S, axis=axis)
    if kind == "max":
        return dnp.max(S, axis=axis)
    return dnp.take(S, -1, axis=axis)


class RNNEncoder(Module):
    """Sequence-to-vector RNN (book §4.7.2): ``s_l = γ(x_l, s_{l−1})``, ``p = pooling(s_{1:L})``
    with learned ``s_0`` and ``pooling`` ∈ {last, mean, max}; ``(..., L, D) → (..., H)``, any L.

    Example::

        >>> enc = RNNEncoder.init(0, 3, 4, pooling="mean")
        >>> enc(np.ones((2, 7, 3))).shape
        (2, 4)
    """

    cell: RNNCell
    s0: Any
    pooling: str = static(default="last")

    @classmethod
    def init(cls, rng: Any, input_size: int, hidden_size: int, *, pooling: str = "last",
             cell_hidden_sizes: Sequence[int] = (), dtype: Any = np.float64) -> RNNEncoder:
        """Glorot cell, ``s_0 = 0`` (book §4.7.2).

        Example::

            >>> RNNEncoder.init(0, 3, 4).s0.tolist()
            [0.0, 0.0, 0.0, 0.0]
        """
        if pooling not in _POOLINGS:
            raise ValueError(f"RNNEncoder.init: argument 'pooling' must be one of {_POOLINGS}, "
                             f"got {pooling!r}")
        cell = RNNCell.init(rng, input_size, hidden_size, hidden_sizes=cell_hidden_sizes,
                            dtype=dtype)
        return cls(cell, np.zeros(hidden_size, dtype), pooling)

    def states(self, xs: Any) -> Any:
        """The encoder states ``s_{1:L}`` ``(..., L, H)`` (book §4.7.2).

        Example::

            >>> RNNEncoder.init(0, 3, 4).states(np.ones((6, 3))).shape
            (6, 4)
        """
        _check_sequence(xs, "RNNEncoder")
        check_last_dim(xs, self.cell.input_size, "RNNEncoder", "xs")
        return rnn_scan(self.cell, self.s0, xs)[1]

    def __call__(self, xs: Any) -> Any:
        return sequence_pool(self.states(xs), self.pooling)


class RNNSeq2Seq(Module):
    """Aligned sequence-to-sequence RNN (book §4.7.3): ``s_l = γ(x_l, s_{l−1})``,
    ``p_l = h(s_l)``; ``(..., L, D) → (..., L, M)``, and ``p_l`` depends on ``x_{1:l}`` only.

    Example::

        >>> net = RNNSeq2Seq.init(0, 3, 8, 2)
        >>> net(np.ones((5, 3))).shape
        (5, 2)
    """

    cell: RNNCell
    readout: MLP
    s0: Any

    @classmethod
    def init(cls, rng: Any, input_size: int, hidden_size: int, output_size: int, *,
             readout_sizes: Sequence[int] = (), cell_hidden_sizes: Sequence[int] = (),
             dtype: Any = np.float64) -> RNNSeq2Seq:
        """Glorot cell and readout MLP ``(H, *readout_sizes, M)``, ``s_0 = 0`` (book §4.7.3).

        Example::

            >>> RNNSeq2Seq.init(0, 3, 8, 2).readout.out_features
            2
        """
        g = as_generator(rng, "RNNSeq2Seq.init")
        cell = RNNCell.init(g, input_size, hidden_size, hidden_sizes=cell_hidden_sizes,
                            dtype=dtype)
        readout = MLP.init(g, [hidden_size, *readout_sizes, output_size], dtype=dtype)
        return cls(cell, readout, np.zeros(hidden_size, dtype))

    def __call__(self, xs: Any) -> Any:
        _check_sequence(xs, "RNNSeq2Seq")
        check_last_dim(xs, self.cell.input_size, "RNNSeq2Seq", "xs")
        return self.readout(rnn_scan(self.cell, self.s0, xs)[1])


def _is_concrete(x: Any) -> bool:
    while isinstance(x, Tracer):
        if not getattr(x, "concrete", True) or not hasattr(x, "value"):
            return False
        x = x.value
    return True


class RNNDecoder(Module):
    """Vector-to-sequence RNN (book §4.7.1): ``z_l = g(x, z_{l−1})``, ``p_l = h(z_l)`` for
    ``l = 1..L`` with learned ``z_0``; ``(..., D) → (..., L, M)``. With ``feedback=True`` the cell
    also reads the previous output, ``z_l = g(x ⊕ p_{l−1}, z_{l−1})`` (§4.7.4), with ``p_0 = 0``
    unless ``p0`` is given; ``eos_id`` stops generation after the first step whose
    ``argmax p_l = eos_id`` (see the module docstring).

    Example::

        >>> dec = RNNDecoder.init(0, 3, 8, 2)
        >>> dec(np.ones(3), 6).shape
        (6, 2)
    """

    cell: RNNCell
    readout: MLP
    z0: Any
    feedback: bool = static(default=False)

    @classmethod
    def init(cls, rng: Any, input_size: int, hidden_size: int, output_size: int, *,
             feedback: bool = False, readout_sizes: Sequence[int] = (),
             cell_hidden_sizes: Sequence[int] = (), dtype: Any = np.float64) -> RNNDecoder:
        """Glorot cell (input ``D``, or ``D + M`` with feedback) and readout ``(H, …, M)``,
        ``z_0 = 0`` (book §4.7.1).

        Example::

            >>> RNNDecoder.init(0, 3, 8, 2, feedback=True).cell.input_size
            5
        """
        g = as_generator(rng, "RNNDecoder.init")
        cell_in = input_size + (output_size if feedback else 0)
        cell = RNNCell.init(g, cell_in, hidden_size, hidden_sizes=cell_hidden_sizes, dtype=dtype)
        readout = MLP.init(g, [hidden_size, *readout_sizes, output_size], dtype=dtype)
        return cls(cell, readout, np.zeros(hidden_size, dtype), feedback)

    @property
    def output_size(self) -> int:
        return self.readout.out_features

    def __call__(self, x: Any, length: int, *, p0: Any = None, eos_id: int | None = None) -> Any:
        M = self.output_size
        D = self.cell.input_size - (M if self.feedback else 0)
        check_last_dim(x, D, "RNNDecoder")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"RNNDecoder: argument 'length' must be an int >= 1, got {length!r}")
        if p0 is not None and not self.feedback:
            raise ValueError("RNNDecoder: argument 'p0' needs a decoder built with feedback=True")
        lead = tuple(np.shape(x)[:-1])
        if p0 is None:
            p0 = np.zeros(M, np.result_type(self.z0.dtype))
        check_last_dim(p0, M, "RNNDecoder", "p0")
        carry = (_broadcast_state(self.z0, lead), _broadcast_state(p0, lead))

        def step(carry: tuple[Any, Any], _: Any) -> tuple[tuple[Any, Any], Any]:
            z, p = carry
            inp = dnp.concatenate([x, p], axis=-1) if self.feedback else x
            z = self.cell(z, inp)
            p = self.readout(z)
            return (z, p), p

        if eos_id is None:
            _, ps = scan(step, carry, None, length=int(length))
            return dnp.moveaxis(ps, 0, -2)
        if not 0 <= eos_id < M:
            raise ValueError(f"RNNDecoder: argument 'eos_id' must lie in [0, {M}), got {eos_id}")
        if lead or not _is_concrete(x):
            raise ValueError("RNNDecoder: stopping at 'eos_id' needs one unbatched input with "
                             "concrete values (not under jit or vmap)")
        outputs = []
        for _ in range(int(length)):
            carry, p = step(carry, None)
            outputs.append(p)
            if int(np.argmax(p.primal_value if isinstance(p, Tracer) else p)) == eos_id:
                break
        return dnp.stack(outputs, axis=0)


class RNNEncoderDecoder(Module):
    """Unaligned sequence-to-sequence RNN (book §4.7.4): ``c = f^e(x_{1:L})`` (an
    :class:`RNNEncoder`, the context vector) then ``p_{1:L'} = f^d(c)`` (an :class:`RNNDecoder`
    with feedback, ``z_l = g(c ⊕ p_{l−1}, z_{l−1})``); generation stops at ``eos_id`` or
    ``max_len``.

    Example::

        >>> net = RNNEncoderDecoder.init(0, 3, 8, 5)
        >>> net(np.ones((7, 3)), max_len=4).shape
        (4, 5)
    """

    encoder: RNNEncoder
    decoder: RNNDecoder

    @classmethod
    def init(cls, rng: Any, input_size: int, hidden_size: int, output_size: int, *,
             pooling: str = "last", feedback: bool = True,
             dtype: Any = np.float64) -> RNNEncoderDecoder:
        """Encoder ``D → H`` and decoder ``H → M`` (book §4.7.4).

        Example::

            >>> RNNEncoderDecoder.init(0, 3, 8, 5).decoder.output_size
            5
        """
        g = as_generator(rng, "RNNEncoderDecoder.init")
        enc = RNNEncoder.init(g, input_size, hidden_size, pooling=pooling, dtype=dtype)
        dec = RNNDecoder.init(g, hidden_size, hidden_size, output_size, feedback=feedback,
                              dtype=dtype)
        return cls(enc, dec)

    def __call__(self, xs: Any, max_len: int, *, eos_id: int | None = None,
                 p0: Any = None) -> Any:
        return self.decoder(self.encoder(xs), max_len, p0=p0, eos_id=eos_id)
