"""Behaviour every function owes its caller, for any assignment: dtype kept, inputs untouched, the same
answer twice (`check_contract`), and gradients that are finite and equal the reference's
(`check_gradients`). Both need the reference's values first (the config's `values_first`,
default true): a function that ignores its inputs (right-shaped zeros) earns no points here.

An assignment's checks call these with its `Checker`, the op and inputs it builds; argument names in
messages come from the reference function's signature.
"""
from __future__ import annotations

import inspect
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from autograder.checks.support import Checker, copied, difference, matches, outputs_of
from autograder.config import Config
from autograder.feedback import CheckFailed

Target = Union[int, Tuple[int, str]]  # an argument's index, or (index, key) of a tensor in a dict argument


def arg_names(checker: Checker, op: str) -> Tuple[str, ...]:
    """The parameter names of an op, as its reference function spells them."""
    return tuple(inspect.signature(checker.reference(checker.op(op))).parameters)


def _unchanged(before: Any, now: Any) -> bool:
    """An input tensor (or dict of them) as it was; other values are not compared."""
    if isinstance(before, torch.Tensor):
        return isinstance(now, torch.Tensor) and torch.equal(before, now)
    if isinstance(before, dict):
        return isinstance(now, dict) and before.keys() == now.keys() and all(
            _unchanged(before[k], now[k]) for k in before)
    return True


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN equal to NaN (a NaN is wrong elsewhere, not nondeterministic)."""
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def check_contract(checker: Checker, submission: Any, op: str, args: Sequence[Any], config: Config,
                   where: str = "") -> None:
    """The op on `args` returns the reference's structure, shapes and dtypes (so float32 in, float32 out),
    leaves every input tensor as it was, has the reference's values (unless `config.values_first` is off)
    and gives bitwise the same answer on a second call. `where` names the input in messages."""
    op = checker.op(op)
    fn = checker.label(op)
    expected = checker.expected_of(op, args)
    with checker.explaining(submission, op, args):
        first, after = submission.call_echo(op, *args, expect=expected)
    first = checker.validate(first, op, expected)
    for name, before, now in zip(arg_names(checker, op), args, after):
        if not _unchanged(before, now):
            raise CheckFailed(f"{fn} modified its input {name} in place",
                              "use out-of-place operations (x = x.masked_fill(...), not x.masked_fill_(...) "
                              "or x[...] = ...): the caller still needs its tensors")
    checker.require_values(first, expected, op, args, config, where)
    with checker.explaining(submission, op, args):
        second = checker.validate(submission.call(op, *args, expect=expected), op, expected)
    if not all(_same(a, b) for a, b in zip(outputs_of(first), outputs_of(second))):
        raise CheckFailed(f"{fn} gave different results on two calls with the same inputs",
                          "no randomness (dropout, torch.rand) and no state kept between calls")


def _get(args: Sequence[Any], target: Target) -> torch.Tensor:
    return args[target[0]][target[1]] if isinstance(target, tuple) else args[target]


def _with(args: Sequence[Any], target: Target, value: torch.Tensor) -> List[Any]:
    """args with the target replaced by value (a dict argument is copied, never changed)."""
    out = list(args)
    if isinstance(target, tuple):
        out[target[0]] = {**out[target[0]], target[1]: value}
    else:
        out[target] = value
    return out


def _reference_grads(checker: Checker, op: str, args: Sequence[Any], wrt: Sequence[Target],
                     cotangents: Sequence[torch.Tensor]) -> List[Optional[torch.Tensor]]:
    leaves = [_get(args, t).detach().clone().requires_grad_(True) for t in wrt]
    call_args = [copied(a) for a in args]
    for target, leaf in zip(wrt, leaves):
        call_args = _with(call_args, target, leaf)
    outputs = outputs_of(checker.reference(op)(*call_args))
    return list(torch.autograd.grad(outputs, leaves, cotangents, allow_unused=True))


def check_gradients(checker: Checker, submission: Any, op: str, args: Sequence[Any], wrt: Sequence[Target],
                    seed: int, config: Config, where: str = "") -> None:
    """Gradients reach every input in `wrt`, are finite and equal the reference's gradients (float64
    tolerance of `config`); the op's values must equal the reference's first (unless `config.values_first`
    is off), and a failure caused by wrong values names the value mistake.

    A gradcheck done from outside against the reference, in float64: for random cotangents v (one per
    output, from `seed`), the vector-Jacobian product v^T J that autograd gives through the student's code
    must equal the reference's for every input (a function that ignores its inputs agrees with its own
    finite differences, never with the reference). Every comparison fails on NaN. A target is an
    argument's index, or (index, key) for one tensor of a dict argument; the seam has already refused
    gradients not shaped like their inputs.
    """
    op = checker.op(op)
    fn, names = checker.label(op), arg_names(checker, op)
    args = list(args)
    expected = checker.expected_of(op, args)
    gen = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in outputs_of(expected)]
    with checker.explaining(submission, op, args):
        outputs, grads = submission.vjp(op, args, list(wrt), cotangents)
    outputs = checker.validate(outputs, op, expected)
    why = checker.diagnoser(op, args, outputs)
    right = all(matches(o, e, config) for o, e in zip(outputs_of(outputs), outputs_of(expected)))

    def name(target: Target) -> str:
        return f"{names[target[0]]}[{target[1]!r}]" if isinstance(target, tuple) else names[target]

    for target, grad in zip(wrt, grads):
        if not isinstance(grad, torch.Tensor) and not right:  # an input the student's formula leaves out
            raise CheckFailed(f"your {fn} does not depend on {name(target)} (no gradient reaches it), and its "
                              "values are wrong", f"the contract's formula uses {name(target)}", diagnose=why)
    checker.require_values(outputs, expected, op, args, config, where)
    for target, grad in zip(wrt, grads):
        if not isinstance(grad, torch.Tensor):
            raise checker.no_gradient(submission, f"no gradient reaches {name(target)} through {fn}")
        if not torch.isfinite(grad).all():
            raise CheckFailed(f"the gradient of {fn} with respect to {name(target)} contains NaN or inf",
                              "an operation whose derivative blows up (sqrt at 0, exp overflow, -inf times 0): "
                              "use torch.softmax and keep eps inside the sqrt", diagnose=why)
    for target, grad, want in zip(wrt, grads, _reference_grads(checker, op, args, wrt, cotangents)):
        want = torch.zeros_like(grad) if want is None else want
        if not matches(grad, want, config):
            tol = config.tolerance(want.dtype)
            raise CheckFailed(difference(grad, want, f"the gradients of {fn} with respect to {name(target)}", where,
                                         tol["rtol"], tol["atol"]),
                              "keep every step a differentiable torch operation: no in-place edits of tensors "
                              "autograd still needs, no .data, no detach, no float32 detour" if right else
                              "the gradient follows the values: fix the values checks of this function first",
                              diagnose=why)
