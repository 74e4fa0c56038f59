"""Control-flow primitives: cond, switch, fori_loop, scan and while_loop (book ch. 5).

Book §5.6–5.10: if-else and else-if statements, for loops, scan functions and while loops. Each
is a :class:`~diffprog.core.primitive.Primitive` whose parameters hold the branch or loop body as
a traced :class:`~diffprog.core.ir.Program` (a sub-graph), so ``make_graph`` and ``jit`` see one
node, and every transformation is a rule of that node:

=============  ================================  ===========================================
primitive      forward mode (JVP)                reverse mode (VJP)
=============  ================================  ===========================================
``cond``       ``cond`` of the JVP'd branches    ``cond`` of the branches' VJPs (the taken
                                                 branch only is evaluated)
``scan``       ``scan`` of the JVP'd body        the forward pass stores each step's
                                                 residuals; a reversed ``scan`` runs the
                                                 backward half of the body's VJP over them
``while``      ``while`` of the JVP'd body       with ``max_steps``: the visited states are
                                                 stored; a reversed ``scan`` runs the body's
                                                 VJP over them
=============  ================================  ===========================================

The derivative with respect to a predicate or branch index is zero (book §5.6.2: the Heaviside
step has a null derivative almost everywhere). ``fori_loop`` with static bounds is a ``scan``
over the loop counter; with traced bounds it is a ``while`` loop (forward mode only).

Design notes
------------
* **Eager fast path.** With no transformation active and no traced operand, the functions just
  run Python: ``cond`` calls only the selected branch (lazy evaluation, which the recursive
  while loop of §5.10.1 needs), loops run as Python loops. Structure checks still run.
* **Tracing.** Otherwise the Python function is traced once, with :class:`_BodyTrace`, on the
  concrete values of the operands (or of the first slice of ``xs``). Its tracers are
  *abstract* (``concrete = False``): a Python ``if`` on one raises, as under ``jit``, because
  the function will be replayed on other values. Values closed over from outer transformations
  (for example the weights ``w`` in ``grad(lambda w: scan(lambda c, x: (c * w + x, None), ...))``)
  become explicit inputs ("consts") of the primitive, so derivatives flow to them. Pytrees are
  flattened to leaves at the primitive boundary; the sub-programs work on flat leaf lists.
* **Residuals of reverse mode (scan).** When a scan is bound with a reverse-mode tracer among
  its inputs (``grad``, ``vjp``, also inside ``jit`` or ``jvp``), its body is traced once more
  jointly with its VJP and split by partial evaluation (:class:`ScanResiduals`): the equations
  that do not depend on cotangents form the forward step, which also outputs the values the
  backward half needs (the residuals, stacked like ``ys``); the others form the backward step.
  Loop-invariant equations (functions of the closed-over values only, such as a transposed
  weight matrix) are recomputed in the backward step instead of being stored ``K`` times. So
  ``grad`` of a scan costs one forward and one backward pass, like the unrolled program (book
  §8.3.3), with memory ``O(K · residuals)``. A scan recorded without residuals
  (``grad(jit(f))``, or one whose residual outputs themselves receive cotangents at second
  order) gets them from one extra forward pass. The residual outputs are ordinary outputs,
  so second-order derivatives (grad of grad, Hessian-vector products) flow through them.
* **while_loop** with ``save=True`` (reverse mode, ``max_steps`` given) also outputs its step
  count and up to ``max_steps`` visited states (rows past the last step repeat the final
  state). Under eager transformations the backward pass is a ``scan`` of the body's VJP over
  exactly the ``n`` visited states (recomputing each step's intermediates: checkpointing at
  step granularity, book §8.5); when ``n`` is traced (``jit``), it is a masked ``scan`` over
  ``max_steps``.
* **Transposition** (``linear_transpose``, reverse mode of a ``custom_jvp`` whose rule uses
  control flow): a primitive linear in its undefined inputs is transposed by its VJP at zero.
* **Batching** rules (``prim.batch``, JAX signature ``rule(args, dims, **params)``): ``cond``
  with a batched predicate evaluates every branch and selects (``where``); ``scan`` and
  ``fori_loop`` scan the vmapped body; ``while`` with a batched state runs while any member is
  active, with ``where``-masked updates.
* The primitives are created with ``register=False`` (they are not elementwise NumPy
  primitives and are tested here, not by the every-primitive table).
"""

from .branching import cond, cond_p, switch
from .loops import fori_loop, while_loop, while_p
from .scanning import scan, scan_p
from .subprograms import MaxStepsExceeded, SubProgram

__all__ = ["cond", "switch", "fori_loop", "scan", "while_loop", "MaxStepsExceeded", "SubProgram",
           "cond_p", "scan_p", "while_p"]
