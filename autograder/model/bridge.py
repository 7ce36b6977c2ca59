"""A student's op as a differentiable torch function, for use inside a real model.

The forward pass calls the student's op through the `Submission` seam; the backward pass asks the same
seam for the student's vector-Jacobian product. So gradients flow through their code while their code
still runs only in its worker. Which op, and how its answer is validated, is the assignment's: the
capstone passes its `Checker` (`autograder.checks.support`).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from autograder.checks.support import outputs_of
from autograder.runtime.submission import Submission

Shapes = Callable[..., Any]  # the op's args -> empty tensors of its outputs' shapes and dtypes (a tuple, or one)


Pack = Callable[[List[Any]], List[Any]]  # the op's arguments from the (detached) inputs


class _StudentOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, submission: Submission, checker: Any, op: str, shapes: Shapes, wrt: Sequence[int],
                pack: Optional[Pack], targets: Sequence[Any], *inputs: Optional[Tensor]) -> Tuple[Tensor, ...]:
        device = next(t.device for t in inputs if isinstance(t, Tensor))
        args = [t.detach().cpu() if isinstance(t, Tensor) else t for t in inputs]
        args = pack(args) if pack is not None else args
        outputs = checker.validate(submission.call(op, *args), op, shapes(*args))
        ctx.submission, ctx.op, ctx.args, ctx.wrt, ctx.targets = submission, op, args, list(wrt), list(targets)
        ctx.inputs = len(inputs)
        return tuple(o.to(device) for o in outputs_of(outputs))

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Tensor) -> Tuple[Optional[Tensor], ...]:
        device = grad_outputs[0].device
        _, grads = ctx.submission.vjp(ctx.op, ctx.args, ctx.targets, [g.cpu() for g in grad_outputs])
        by_input = dict(zip(ctx.wrt, grads))
        moved = [by_input[i].to(device) if isinstance(by_input.get(i), Tensor) else None for i in range(ctx.inputs)]
        return (None,) * 7 + tuple(moved)


def student_op(submission: Submission, checker: Any, op: str, shapes: Shapes, wrt: Sequence[int],
               pack: Optional[Pack] = None, targets: Optional[Sequence[Any]] = None) -> Callable[..., Tuple[Tensor, ...]]:
    """`fn(*inputs) -> outputs` backed by the submission's `op` (a tuple of several tensors), differentiable
    with respect to the inputs at positions `wrt`; `shapes(*args)` gives the outputs' expected shapes.

    pack: builds the op's arguments from the inputs (e.g. a dict of parameters from loose tensors); then
    `targets` says, for each position in wrt, which argument the seam differentiates (an index, or
    (index, key) of a dict argument). Without pack the inputs are the arguments and targets are wrt."""

    def run(*inputs: Optional[Tensor]) -> Tuple[Tensor, ...]:
        return _StudentOp.apply(submission, checker, op, shapes, tuple(wrt), pack,
                                tuple(wrt if targets is None else targets), *inputs)

    return run


def _attention_shapes(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Empty tensors of the right shapes: attended `[..., S_q, d_v]`, weights `[..., S_q, S_k]`."""
    return (torch.empty(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype),
            torch.empty(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype))


def student_attention(submission: Submission, checker: Any,
                      op: str = "attention") -> Callable[..., Tuple[Tensor, Tensor]]:
    """`fn(Q, K, V, mask) -> (attended, weights)` backed by the submission's `op`, differentiable in Q, K, V."""
    run = student_op(submission, checker, op, _attention_shapes, (0, 1, 2))

    def attend(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        attended, weights = run(Q, K, V, mask)
        return attended, weights

    return attend


def student_projections(submission: Submission, checker: Any,
                        op: str = "linear_projections") -> Callable[..., Tuple[Tensor, Tensor, Tensor]]:
    """`fn(x, W_q, W_k, W_v) -> (Q, K, V)` backed by the submission's `op` (forward only)."""

    def project(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        device = x.device
        args = [t.detach().cpu() for t in (x, W_q, W_k, W_v)]
        expected = tuple(torch.empty(*x.shape[:-1], w.shape[-1], dtype=x.dtype) for w in (W_q, W_k, W_v))
        Q, K, V = checker.validate(submission.call(op, *args, expect=expected), op, expected)
        return Q.to(device), K.to(device), V.to(device)

    return project
