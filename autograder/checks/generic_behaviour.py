"""What every function owes its caller, for any assignment `Spec`: dtype kept, inputs untouched, the same
answer twice, and gradients (autograd through the seam, checked against finite differences of the
student's own function in float64 and against the reference's gradients).
"""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

import torch
from torch import Tensor

from autograder.checks.generic import (Spec, close, diagnoser, error_diagnoser, expected_of, trusted, validate,
                                       validated)
from autograder.checks.support import no_gradient
from autograder.config import Config
from autograder.feedback import CheckFailed
from autograder.runtime.submission import SubmissionError

Target = Union[int, Tuple[int, str]]  # an argument's index, or (index, key) of a tensor in a dict argument
FD_EPS = 1e-6


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, Tensor):
        return isinstance(after, Tensor) and torch.equal(before, after)
    if isinstance(before, dict):
        return isinstance(after, dict) and before.keys() == after.keys() and all(
            _unchanged(before[k], after[k]) for k in before)
    return True


def _same(a: Tensor, b: Tensor) -> bool:
    """Bitwise equal, NaN equal to NaN (a NaN is wrong elsewhere, not nondeterministic)."""
    if a.dtype == torch.bool:
        return bool(torch.equal(a, b))
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _parts(value: Any) -> List[Tensor]:
    return list(value) if isinstance(value, tuple) else [value]


def check_contract(submission: Any, spec: Spec, fn: str, args: Sequence[Any], arg_names: Sequence[str]) -> None:
    """One call's worth of contract: structure and dtype as the reference's, inputs untouched, deterministic."""
    expected = expected_of(spec, fn, args)
    first, after = submission.call_echo(fn, *trusted(args))
    first = validated(spec, first, fn, args, expected)
    for name, before, now in zip(arg_names, args, after):
        if not _unchanged(before, now):
            raise CheckFailed(f"{fn} modified its input {name} in place",
                              "use out-of-place operations (x = x - mean, not x -= mean or x[...] = ...): "
                              "the caller still needs its tensors")
    second = validate(spec, submission.call(fn, *trusted(args)), fn, expected)
    if not all(_same(a, b) for a, b in zip(_parts(first), _parts(second))):
        raise CheckFailed(f"{fn} gave different results on two calls with the same inputs",
                          "no randomness (dropout, torch.rand) and no state kept between calls")


def _get(args: Sequence[Any], target: Target) -> Tensor:
    return args[target[0]][target[1]] if isinstance(target, tuple) else args[target]


def _with(args: Sequence[Any], target: Target, value: Tensor) -> List[Any]:
    out = list(args)
    if isinstance(target, tuple):
        out[target[0]] = {**out[target[0]], target[1]: value}
    else:
        out[target] = value
    return out


def _target_name(arg_names: Sequence[str], target: Target) -> str:
    return f"{arg_names[target[0]]}[{target[1]!r}]" if isinstance(target, tuple) else arg_names[target]


def _reference_grads(spec: Spec, fn: str, args: Sequence[Any], wrt: Sequence[Target],
                     cotangents: Sequence[Tensor]) -> List[Tensor]:
    leaves = [_get(args, t).detach().clone().requires_grad_(True) for t in wrt]
    call_args = trusted(args)
    for target, leaf in zip(wrt, leaves):
        call_args = _with(call_args, target, leaf)
    outputs = _parts(spec.reference[fn](*call_args))
    return list(torch.autograd.grad(outputs, leaves, cotangents, allow_unused=True))


def check_gradients(submission: Any, spec: Spec, fn: str, args: Sequence[Any], arg_names: Sequence[str],
                    wrt: Sequence[Target], config: Config) -> None:
    """float64 args. The student's vector-Jacobian product reaches every target, is finite, agrees with
    central differences of the student's own function along random directions, and equals the reference's."""
    expected = expected_of(spec, fn, args)
    gen = torch.Generator().manual_seed(config.seed)
    cotangents = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in _parts(expected)]
    try:
        outputs, grads = submission.vjp(fn, trusted(args), list(wrt), cotangents)
    except SubmissionError as error:
        if error.raised is not None:
            error.diagnose = error.diagnose or error_diagnoser(spec, fn, args, error.raised)
        raise
    outputs = validated(spec, outputs, fn, args, expected)
    why = diagnoser(spec, fn, args, outputs)  # a wrong gradient usually follows from a wrong value
    right = all(close(o, e, config) for o, e in zip(_parts(outputs), _parts(expected)))
    for target, grad in zip(wrt, grads):
        name = _target_name(arg_names, target)
        if not isinstance(grad, Tensor) and not right:
            raise CheckFailed(f"your {fn} does not depend on {name} (no gradient reaches it), and its values "
                              "are wrong", f"the contract's formula uses {name}: see the values check", diagnose=why)
        if not isinstance(grad, Tensor):
            raise no_gradient(submission, f"no gradient reaches {name} through {fn}")
        if not torch.isfinite(grad).all():
            raise CheckFailed(f"the gradient of {fn} with respect to {name} contains NaN or inf",
                              "an operation whose derivative blows up (sqrt at 0, exp overflow, -inf times 0): "
                              "use torch.softmax and keep eps inside the sqrt", diagnose=why)
    for _ in range(2):
        directions = [torch.randn(_get(args, t).shape, generator=gen, dtype=torch.float64) for t in wrt]
        analytic = sum(float((g * u).sum()) for g, u in zip(grads, directions))
        plus, minus = list(args), list(args)
        for target, u in zip(wrt, directions):
            plus = _with(plus, target, _get(args, target) + FD_EPS * u)
            minus = _with(minus, target, _get(args, target) - FD_EPS * u)
        f_plus = _parts(validate(spec, submission.call(fn, *plus), fn, expected))
        f_minus = _parts(validate(spec, submission.call(fn, *minus), fn, expected))
        numeric = sum(float(((p - m) * v).sum()) / (2 * FD_EPS) for p, m, v in zip(f_plus, f_minus, cotangents))
        if abs(analytic - numeric) > 1e-5 * max(1.0, abs(numeric)):
            raise CheckFailed(f"the gradients of {fn} disagree with finite differences of it (directional "
                              f"derivative {analytic:.6g} by autograd, {numeric:.6g} numerically)",
                              "keep every step a differentiable torch operation; no in-place edits of tensors "
                              "autograd still needs, no .data")
    for target, grad, want in zip(wrt, grads, _reference_grads(spec, fn, args, wrt, cotangents)):
        want = torch.zeros_like(grad) if want is None else want
        if not torch.allclose(grad, want, rtol=1e-6, atol=1e-8):
            raise CheckFailed(f"the gradient of {fn} with respect to {_target_name(arg_names, target)} differs "
                              f"from the reference's by up to {float((grad - want).abs().max()):.3g}",
                              "the gradient follows the values: fix the values check of this function first",
                              diagnose=why)
