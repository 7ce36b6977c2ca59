"""Behaviour every function owes its caller: dtype kept, inputs untouched, same answer twice, gradients."""
from __future__ import annotations

import pytest
import torch

from autograder.assignments.attention.inputs import CHECK, Case, section_args
from autograder.checks.behaviour import check_contract, check_gradients

SECTIONS = ("projections", "scores", "softmax", "values", "attention")
SMALL = Case(batch=(2,), seq_q=3, seq_k=4, d_k=3, d_v=2, mask="random", seed=21)
# which arguments are differentiable, per section
WRT = {"projections": [0, 1, 2, 3], "scores": [0, 1], "softmax": [0], "values": [0, 1], "attention": [0, 1, 2]}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.contract")) for s in SECTIONS])
def test_contract(section, submission, course):
    """float32 in -> float32 out (float64 likewise) with the reference's values; inputs not modified in
    place; deterministic."""
    for dtype in (torch.float32, torch.float64):
        case = Case(batch=(2,), seq_q=5, seq_k=6, d_k=8, d_v=4, mask="random", seed=22, dtype=dtype)
        check_contract(CHECK, submission, section, section_args(section, case), course, str(case))


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.gradients")) for s in SECTIONS])
def test_gradients(section, submission, course):
    """Your outputs equal the reference's; gradients reach every input, are finite and equal the
    reference's (float64)."""
    check_gradients(CHECK, submission, section, section_args(section, SMALL), WRT[section], course.seed, course,
                    where=str(SMALL))
