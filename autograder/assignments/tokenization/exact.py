"""Exact comparison of tokenizer outputs (str, int64 ids) and the mistake that explains a wrong one.

The diagnosis engine compares floating-point tensors within a tolerance; a tokenizer's answer is right or
wrong to the character, so these checks compare exactly and try the catalogue's rules themselves.
"""
from __future__ import annotations

import inspect
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from autograder.assignments.tokenization.contract import ASSIGNMENT
from autograder.checks.support import Checker, describe
from autograder.diagnosis import Mistake
from autograder.feedback import CheckFailed
from autograder.runtime.protocol import Foreign

CHECK = Checker(ASSIGNMENT)
SHOWN = 60  # characters or ids shown of a wrong answer


def same(got: Any, want: Any) -> bool:
    """Equal str, or int64 tensors of the same shape and values."""
    if isinstance(want, str):
        return type(got) is str and got == want
    return (isinstance(got, Tensor) and got.dtype == want.dtype and got.shape == want.shape
            and bool(torch.equal(got, want)))


def show(value: Any) -> str:
    """A short, quoted view of an answer (student text is data: repr, clipped)."""
    if isinstance(value, str):
        return repr(value[:SHOWN]) + (f"... ({len(value)} characters)" if len(value) > SHOWN else "")
    if isinstance(value, Tensor):
        items = value.flatten()[:SHOWN].tolist()
        return f"{value.dtype} {list(value.shape)} {items}" + ("..." if value.numel() > SHOWN else "")
    return value.desc if isinstance(value, Foreign) else describe(value)


def first_difference(got: Any, want: Any) -> str:
    if isinstance(got, str) and isinstance(want, str) or isinstance(got, Tensor) and isinstance(want, Tensor) \
            and got.dim() == want.dim() == 1:
        a = got if isinstance(got, str) else got.tolist()
        b = want if isinstance(want, str) else want.tolist()
        at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f" (first difference at position {at})"
    return ""


def mistake_of(function: str, args: Sequence[Any], got: Any, want: Any) -> Optional[Mistake]:
    """The first catalogued mistake of function whose answer on args is exactly the student's (and wrong)."""
    catalogue = ASSIGNMENT.catalogue()
    names = list(inspect.signature(CHECK.reference(function)).parameters)
    inputs = dict(zip(names, args))
    for mistake, rule in catalogue.candidates(function):
        try:
            if any(same(got, c) and not same(c, want) for c in rule(**inputs)):
                return mistake
        except Exception:  # noqa: BLE001 - a rule that does not apply to these inputs
            continue
    return None


def call(submission: Any, function: str, args: Sequence[Any]) -> Any:
    """The student's answer (an exception their code raises is explained as for every check)."""
    with CHECK.explaining(submission, function, args):
        return submission.call(function, *args)


def expect(function: str, args: Sequence[Any], got: Any, want: Any, where: str, hint: str = "") -> None:
    """Fail unless got is exactly want, naming the catalogued mistake that gives got."""
    if same(got, want):
        return
    mistake = mistake_of(function, args, got, want)
    raise CheckFailed(f"{function} on {where}: got {show(got)}, expected {show(want)}{first_difference(got, want)}",
                      mistake.hint if mistake else (hint or None), mistake.id if mistake else None)


def against_reference(submission: Any, function: str, args: Sequence[Any], where: str, hint: str = "") -> Any:
    """The student's answer on args, which must equal the reference's exactly."""
    got = call(submission, function, args)
    expect(function, args, got, CHECK.expected_of(function, args), where, hint)
    return got
