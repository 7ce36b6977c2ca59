"""Behaviour every function owes its caller: dtype kept, inputs untouched, same answer twice, gradients."""
from __future__ import annotations

from typing import Any, List

import pytest
import torch

from autograder.checks.support import (
    Case,
    expected_of,
    function_name,
    label,
    no_gradient,
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
def test_contract(section, submission):
    """float32 in -> float32 out (float64 likewise); inputs not modified in place; deterministic."""
    fn = function_name(section)
    for dtype in (torch.float32, torch.float64):
        case = Case(batch=(2,), seq_q=5, seq_k=6, d_k=8, d_v=4, mask="random", seed=22, dtype=dtype)
        args = section_args(section, case)
        expected = expected_of(fn, args)
        first, after = submission.call_echo(fn, *args)
        first = validate(first, fn, expected)
        for name, before, now in zip(ARG_NAMES[section], args, after):
            if isinstance(before, torch.Tensor) and not (isinstance(now, torch.Tensor) and torch.equal(before, now)):
                raise CheckFailed(f"{label(fn)} modified its input {name} in place",
                                  "use out-of-place operations (x = x.masked_fill(...), not x.masked_fill_(...) "
                                  "or x[...] = ...): the caller still needs its tensors")
        second = validate(submission.call(fn, *args), fn, expected)
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
    """Gradients flow to every input, and match finite differences of your own function (float64).

    A gradcheck done from outside: for random directions u and cotangents v, the student's
    vector-Jacobian product v^T J u must equal the central difference of v . f(x + eps u).
    """
    fn = function_name(section)
    args = list(section_args(section, SMALL))
    expected = expected_of(fn, args)
    wrt = WRT[section]
    gen = torch.Generator().manual_seed(course.seed)
    cotangents = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in _outputs(expected)]
    outputs, grads = submission.vjp(fn, args, wrt, cotangents)
    validate(outputs, fn, expected)
    for i, grad in zip(wrt, grads):
        if not isinstance(grad, torch.Tensor):
            raise no_gradient(submission, f"no gradient reaches {ARG_NAMES[section][i]} through {label(fn)}")
    eps = 1e-6
    for _ in range(3):
        directions = [torch.randn(args[i].shape, generator=gen, dtype=torch.float64) for i in wrt]
        analytic = sum(float((g * u).sum()) for g, u in zip(grads, directions))
        plus, minus = list(args), list(args)
        for i, u in zip(wrt, directions):
            plus[i], minus[i] = args[i] + eps * u, args[i] - eps * u
        f_plus = _outputs(validate(submission.call(fn, *plus), fn, expected))
        f_minus = _outputs(validate(submission.call(fn, *minus), fn, expected))
        numeric = sum(float(((p - m) * v).sum()) / (2 * eps) for p, m, v in zip(f_plus, f_minus, cotangents))
        if abs(analytic - numeric) > 1e-5 * max(1.0, abs(numeric)):
            raise CheckFailed(f"the gradients of {label(fn)} disagree with finite differences of it "
                              f"(directional derivative {analytic:.6g} by autograd, {numeric:.6g} numerically)",
                              "keep every step a differentiable torch operation; no in-place edits of "
                              "tensors autograd still needs, no .data")
