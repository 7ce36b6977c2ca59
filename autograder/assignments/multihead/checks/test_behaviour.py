"""Behaviour every function owes its caller: dtype kept, inputs untouched, deterministic; gradients."""
from __future__ import annotations

import pytest
import torch

from autograder.assignments.multihead.inputs import CHECK, Problem
from autograder.checks.behaviour import check_contract, check_gradients

FUNCTION_OF = {"split": "split_heads", "merge": "merge_heads", "attention": "multi_head_attention"}
WRT = {"split_heads": [0], "merge_heads": [0], "multi_head_attention": [0, 1, 2, 3, 4]}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.contract"))
                                     for s in (*FUNCTION_OF, "mask")])
def test_contract(section, submission, course):
    """float32 in -> float32 out (float64 likewise) with the reference's values; inputs not modified in
    place; the same answer twice."""
    fn = FUNCTION_OF.get(section, "causal_mask")
    for dtype in (torch.float32, torch.float64):
        problem = Problem(batch=(2,), seq=5, d_model=12, n_heads=3, mask="batched", seed=21, dtype=dtype)
        check_contract(CHECK, submission, fn, problem.args(fn), course)


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.gradients"))
                                     for s in FUNCTION_OF])
def test_gradients(section, submission, course):
    """Gradients reach every input, are finite and equal the reference's (float64), on the reference's
    values."""
    fn = FUNCTION_OF[section]
    problem = Problem(batch=(2,), seq=4, d_model=6, n_heads=2, mask="causal", seed=22)
    check_gradients(CHECK, submission, fn, problem.args(fn), WRT[fn], course.seed, course)
