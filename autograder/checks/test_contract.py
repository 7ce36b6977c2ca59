"""Behaviour every function owes its caller: dtype kept, inputs untouched, same answer twice, gradients."""
from __future__ import annotations

from typing import Any, List

import pytest
import torch

from autograder.checks.support import (
    Case,
    difference,
    expected_of,
    function_name,
    label,
    no_gradient,
    reference_vjp,
    require_values,
    section_args,
    validate,
)
from autograder.feedback import CheckFailed

SECTIONS = ("projections", "scores", "softmax", "values", "attention")
SMALL = Case(batch=(2,), seq_q=3, seq_k=4, d_k=3, d_v=2, mask="random", seed=21)
# which arguments are differentiable, per section
WRT = {"projections": [0, 1, 2, 3], "scores": [0, 1], "softmax": [0], "values": [0, 1], "attention": [0, 1, 2]}


def _outputs(value: Any) -> List[torch.Tensor]:
    return list(value) if isinstance(value, tuple) else [value]


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.contract")) for s in SECTIONS])
def test_contract(section, submission, course):
    """float32 in -> float32 out (float64 likewise) with the reference's values; inputs not modified in
    place; deterministic."""
    fn = function_name(section)
    for dtype in (torch.float32, torch.float64):
        case = Case(batch=(2,), seq_q=5, seq_k=6, d_k=8, d_v=4, mask="random", seed=22, dtype=dtype)
        args = section_args(section, case)
        expected = expected_of(fn, args)
        first, after = submission.call_echo(fn, *args, expect=expected)
        first = validate(first, fn, expected)
        for name, before, now in zip(ARG_NAMES[section], args, after):
            if isinstance(before, torch.Tensor) and not (isinstance(now, torch.Tensor) and torch.equal(before, now)):
                raise CheckFailed(f"{label(fn)} modified its input {name} in place",
                                  "use out-of-place operations (x = x.masked_fill(...), not x.masked_fill_(...) "
                                  "or x[...] = ...): the caller still needs its tensors")
        require_values(first, expected, fn, args, course, where=str(case))
        second = validate(submission.call(fn, *args, expect=expected), fn, expected)
        if not all(_same(a, b) for a, b in zip(_outputs(first), _outputs(second))):
            raise CheckFailed(f"{label(fn)} gave different results on two calls with the same inputs",
                              "no randomness (dropout, torch.rand) and no state kept between calls")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN equal to NaN (a NaN is wrong elsewhere, not nondeterministic)."""
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


ARG_NAMES = {"projections": ("x", "W_q", "W_k", "W_v"), "scores": ("Q", "K"), "softmax": ("scores", "mask"),
             "values": ("weights", "V"), "attention": ("Q", "K", "V", "mask")}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.gradients")) for s in SECTIONS])
def test_gradients(section, submission, course):
    """Your outputs equal the reference's, and so do your vector-Jacobian products (float64).

    A gradcheck from outside against the reference: for random cotangents v, the gradient autograd gives
    through your code, v^T J, must equal the reference's for every input, with no NaN or inf anywhere.
    """
    fn = function_name(section)
    args = list(section_args(section, SMALL))
    expected = expected_of(fn, args)
    wrt = WRT[section]
    gen = torch.Generator().manual_seed(course.seed)
    cotangents = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in _outputs(expected)]
    outputs, grads = submission.vjp(fn, args, wrt, cotangents)  # each grad: None, or its input's shape and dtype
    require_values(validate(outputs, fn, expected), expected, fn, args, course, where=str(SMALL))
    for i, grad in zip(wrt, grads):
        if not isinstance(grad, torch.Tensor):
            raise no_gradient(submission, f"no gradient reaches {ARG_NAMES[section][i]} through {label(fn)}")
    tol = course.tolerance(torch.float64)
    for i, grad, want in zip(wrt, grads, reference_vjp(fn, args, wrt, cotangents)):
        if torch.allclose(grad, want, rtol=tol["rtol"], atol=tol["atol"], equal_nan=False):  # False for NaN
            continue
        raise CheckFailed(difference(grad, want, f"the gradients of {label(fn)} with respect to "
                                                 f"{ARG_NAMES[section][i]}", str(SMALL)),
                          "keep every step a differentiable torch operation: no in-place edits of tensors "
                          "autograd still needs, no .data, no detach, and no operation whose gradient is NaN "
                          "where its value is fine (sqrt or log of 0)")
