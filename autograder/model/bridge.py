"""The student's attention as a differentiable torch function, for use inside a real model.

The forward pass calls the student's composed attention through the `Submission` seam; the backward
pass asks the same seam for the student's vector-Jacobian product. So gradients flow through their
code while their code still runs only in its worker.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import torch
from torch import Tensor

from autograder.checks.support import validate
from autograder.runtime.submission import Submission


def _expected(Q: Tensor, K: Tensor, V: Tensor) -> Tuple[Tensor, Tensor]:
    """Empty tensors of the right shapes: attended `[..., S_q, d_v]`, weights `[..., S_q, S_k]`."""
    return (torch.empty(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype),
            torch.empty(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype))


class _StudentAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, submission: Submission, Q: Tensor, K: Tensor, V: Tensor,
                mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        device = Q.device
        args = [t.detach().cpu() if isinstance(t, Tensor) else t for t in (Q, K, V, mask)]
        attended, weights = validate(submission.attention(*args), "attention", _expected(*args[:3]))
        ctx.submission, ctx.args = submission, args
        return attended.to(device), weights.to(device)

    @staticmethod
    def backward(ctx: Any, grad_attended: Tensor, grad_weights: Tensor) -> Tuple[Optional[Tensor], ...]:
        device = grad_attended.device
        _, grads = ctx.submission.vjp("attention", ctx.args, [0, 1, 2], [grad_attended.cpu(), grad_weights.cpu()])
        moved = [g.to(device) if isinstance(g, Tensor) else None for g in grads]
        return (None, *moved, None)


def student_attention(submission: Submission) -> Callable[..., Tuple[Tensor, Tensor]]:
    """`fn(Q, K, V, mask) -> (attended, weights)` backed by the submission, differentiable."""

    def attend(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        return _StudentAttention.apply(submission, Q, K, V, mask)

    return attend


def student_projections(submission: Submission) -> Callable[..., Tuple[Tensor, Tensor, Tensor]]:
    """`fn(x, W_q, W_k, W_v) -> (Q, K, V)` backed by the submission's linear_projections (forward only)."""

    def project(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        device = x.device
        args = [t.detach().cpu() for t in (x, W_q, W_k, W_v)]
        expected = tuple(torch.empty(*x.shape[:-1], w.shape[-1], dtype=x.dtype) for w in (W_q, W_k, W_v))
        Q, K, V = validate(submission.call("linear_projections", *args, expect=expected), "linear_projections",
                           expected)
        return Q.to(device), K.to(device), V.to(device)

    return project
