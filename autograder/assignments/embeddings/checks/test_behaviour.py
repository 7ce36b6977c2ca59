"""Behaviour every function owes its caller: dtype kept, inputs untouched, deterministic; gradients reach
the table (and the positions), the ids are only read."""
from __future__ import annotations

import pytest
import torch

from autograder.assignments.embeddings.inputs import CHECK, Problem
from autograder.checks.behaviour import check_contract, check_gradients

FUNCTION_OF = {"token": "token_embedding", "positions": "sinusoidal_positions", "embed": "embed"}
WRT = {"token_embedding": [1], "embed": [1, 2]}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.contract"))
                                     for s in FUNCTION_OF])
def test_contract(section, submission, course):
    """float32 in -> float32 out (float64 likewise; the sinusoids in torch's default dtype); inputs (ids
    included) not modified; the same answer twice."""
    fn = FUNCTION_OF[section]
    for dtype in (torch.float32, torch.float64):
        problem = Problem(batch=(2,), seq=5, vocab=11, d_model=8, max_seq=7, seed=21, dtype=dtype)
        check_contract(CHECK, submission, fn, problem.args(fn), course)


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.gradients"))
                                     for s in ("token", "embed")])
def test_gradients(section, submission, course):
    """Gradients reach the table (embed: and the positions), repeated ids accumulate, finite and equal to
    the reference's (float64), on the reference's values."""
    fn = FUNCTION_OF[section]
    problem = Problem(batch=(2,), seq=6, vocab=4, d_model=6, max_seq=8, seed=22)  # 12 ids of 4: repeats
    check_gradients(CHECK, submission, fn, problem.args(fn), WRT[fn], course.seed, config=course)
