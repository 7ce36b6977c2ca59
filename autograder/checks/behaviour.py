"""Behaviour every function owes its caller, for any assignment: dtype kept, inputs untouched, the same
answer twice (`check_contract`), and gradients that agree with finite differences (`check_gradients`).

An assignment's checks call these with its `Checker`, the op and inputs it builds; argument names in
messages come from the reference function's signature.
"""
from __future__ import annotations

import inspect
from typing import Any, Sequence, Tuple

import torch

from autograder.checks.support import Checker, outputs_of
from autograder.feedback import CheckFailed


def arg_names(checker: Checker, op: str) -> Tuple[str, ...]:
    """The parameter names of an op, as its reference function spells them."""
    return tuple(inspect.signature(checker.reference(checker.op(op))).parameters)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN equal to NaN (a NaN is wrong elsewhere, not nondeterministic)."""
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def check_contract(checker: Checker, submission: Any, op: str, args: Sequence[Any]) -> None:
    """The op on `args` returns the reference's structure, shapes and dtypes (so float32 in, float32 out),
    leaves every input tensor as it was, and gives bitwise the same answer on a second call."""
    op = checker.op(op)
    fn = checker.label(op)
    expected = checker.expected_of(op, args)
    with checker.explaining(submission, op, args):
        first, after = submission.call_echo(op, *args)
    first = checker.validate(first, op, expected)
    for name, before, now in zip(arg_names(checker, op), args, after):
        if isinstance(before, torch.Tensor) and not (isinstance(now, torch.Tensor) and torch.equal(before, now)):
            raise CheckFailed(f"{fn} modified its input {name} in place",
                              "use out-of-place operations (x = x.masked_fill(...), not x.masked_fill_(...) "
                              "or x[...] = ...): the caller still needs its tensors")
    with checker.explaining(submission, op, args):
        second = checker.validate(submission.call(op, *args), op, expected)
    if not all(_same(a, b) for a, b in zip(outputs_of(first), outputs_of(second))):
        raise CheckFailed(f"{fn} gave different results on two calls with the same inputs",
                          "no randomness (dropout, torch.rand) and no state kept between calls")


def check_gradients(checker: Checker, submission: Any, op: str, args: Sequence[Any], wrt: Sequence[int],
                    seed: int, eps: float = 1e-6, directions: int = 3) -> None:
    """Gradients reach every input in `wrt` and match finite differences of the student's own function.

    A gradcheck done from outside, in float64: for random directions u and cotangents v, the student's
    vector-Jacobian product v^T J u must equal the central difference of v . f(x + eps u).
    """
    op = checker.op(op)
    fn, names = checker.label(op), arg_names(checker, op)
    args = list(args)
    expected = checker.expected_of(op, args)
    gen = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in outputs_of(expected)]
    with checker.explaining(submission, op, args):
        outputs, grads = submission.vjp(op, args, list(wrt), cotangents)
    checker.validate(outputs, op, expected)
    for i, grad in zip(wrt, grads):
        if not isinstance(grad, torch.Tensor):
            raise checker.no_gradient(submission, f"no gradient reaches {names[i]} through {fn}")
    for _ in range(directions):
        steps = [torch.randn(args[i].shape, generator=gen, dtype=torch.float64) for i in wrt]
        analytic = sum(float((g * u).sum()) for g, u in zip(grads, steps))
        plus, minus = list(args), list(args)
        for i, u in zip(wrt, steps):
            plus[i], minus[i] = args[i] + eps * u, args[i] - eps * u
        with checker.explaining(submission, op, args):
            f_plus = outputs_of(checker.validate(submission.call(op, *plus), op, expected))
            f_minus = outputs_of(checker.validate(submission.call(op, *minus), op, expected))
        numeric = sum(float(((p - m) * v).sum()) / (2 * eps) for p, m, v in zip(f_plus, f_minus, cotangents))
        if abs(analytic - numeric) > 1e-5 * max(1.0, abs(numeric)):
            raise CheckFailed(f"the gradients of {fn} disagree with finite differences of it "
                              f"(directional derivative {analytic:.6g} by autograd, {numeric:.6g} numerically)",
                              "keep every step a differentiable torch operation; no in-place edits of "
                              "tensors autograd still needs, no .data",
                              diagnose=checker.diagnoser(op, args, outputs))  # a float32 detour shows here
