"""Behaviour every function owes its caller: dtype kept, inputs untouched, deterministic; gradients."""
from __future__ import annotations

import pytest
import torch

from autograder.assignments.block.inputs import CHECK, Problem
from autograder.checks.behaviour import check_contract, check_gradients

FUNCTION_OF = {"layer_norm": "layer_norm", "gelu": "gelu", "feed_forward": "feed_forward",
               "block": "transformer_block"}
WRT = {
    "layer_norm": [0, 1, 2],
    "gelu": [0],
    "feed_forward": [0, 1, 2, 3, 4],
    "transformer_block": [0, (1, "ln_1.gamma"), (1, "attn.W_q"), (1, "attn.b_k"), (1, "attn.b_v"),
                          (1, "attn.W_o"), (1, "ln_2.beta"), (1, "mlp.W_1"), (1, "mlp.b_2")],
}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.contract"))
                                     for s in FUNCTION_OF])
def test_contract(section, submission, course):
    """float32 in -> float32 out (float64 likewise) with the reference's values; inputs (params included)
    not modified; the same answer twice."""
    fn = FUNCTION_OF[section]
    for dtype in (torch.float32, torch.float64):
        problem = Problem(batch=(2,), seq=5, d_model=12, n_heads=3, mask="batched", seed=21, dtype=dtype)
        check_contract(CHECK, submission, fn, problem.args(fn), course)


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.gradients"))
                                     for s in FUNCTION_OF])
def test_gradients(section, submission, course):
    """Gradients reach the inputs (and the block's parameters), are finite and equal the reference's
    (float64), on the reference's values."""
    fn = FUNCTION_OF[section]
    problem = Problem(batch=(2,), seq=4, d_model=6, n_heads=2, mask="causal", seed=22, ln_scale=0.1)
    check_gradients(CHECK, submission, fn, problem.args(fn), WRT[fn], course.seed, course)
