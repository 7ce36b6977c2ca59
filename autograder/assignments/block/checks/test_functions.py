"""Each function on the worked example (distilgpt2's shapes), on fixed problems in float64 and float32,
and on hypothesis-drawn sizes. Layer-norm inputs include rows near zero mean with small variance, where
the placement of eps shows; every bias is non-zero, so an ignored bias shows."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given

from autograder.assignments.block.inputs import CHECK, EXAMPLE, Problem, problems

FUNCTION_OF = {"layer_norm": "layer_norm", "gelu": "gelu", "feed_forward": "feed_forward",
               "block": "transformer_block"}
FIXED = {
    "layer_norm": [EXAMPLE, Problem(ln_scale=3e-3, seed=1), Problem(ln_scale=3e-3, seed=2, dtype=torch.float32),
                   Problem(batch=(2, 3), seq=4, d_model=5, n_heads=1, seed=3)],
    "gelu": [EXAMPLE, Problem(dtype=torch.float32, seed=4), Problem(batch=(), seq=3, d_model=7, n_heads=1, seed=5)],
    "feed_forward": [EXAMPLE, Problem(dtype=torch.float32, seed=6), Problem(batch=(2, 3), seq=4, d_model=8,
                                                                             n_heads=2, seed=7)],
    "block": [EXAMPLE, Problem(dtype=torch.float32, seed=8), Problem(batch=(2, 3), seq=5, d_model=12, n_heads=3,
                                                                      mask="none", seed=9),
              Problem(batch=(2,), seq=7, d_model=16, n_heads=2, mask="batched", seed=10)],
}
SHAPED = ("layer_norm", "feed_forward", "block")


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.shapes")) for s in SHAPED])
def test_shapes(section, submission):
    """x [1, 6, 768] (d_ff 3072, 12 heads) -> [1, 6, 768]; then two batch dims."""
    fn = FUNCTION_OF[section]
    for problem in (EXAMPLE, Problem(batch=(2, 3), seq=4, d_model=8, n_heads=2, mask="batched", seed=11)):
        args = problem.args(fn)
        CHECK.call_checked(submission, fn, args, CHECK.expected_of(fn, args))


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.values")) for s in FIXED])
def test_values(section, submission, course):
    """Against the reference on fixed problems, float64 and float32."""
    fn = FUNCTION_OF[section]
    for problem in FIXED[section]:
        CHECK.against_reference(submission, fn, problem.args(fn), course, where=str(problem))
    if fn == "gelu":  # x from -6 to 6 in steps of 0.01, where the tanh and erf forms and ReLU part ways
        grid = torch.linspace(-6, 6, 1201, dtype=torch.float64)
        CHECK.against_reference(submission, fn, (grid,), course, where="x = -6.00, -5.99, ..., 6.00")


@pytest.mark.check("layer_norm.any_shapes")
@given(problem=problems())
def test_layer_norm_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, "layer_norm", problem.args("layer_norm"), course, where=str(problem))


@pytest.mark.check("feed_forward.any_shapes")
@given(problem=problems())
def test_feed_forward_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, "feed_forward", problem.args("feed_forward"), course,
                            where=str(problem))


@pytest.mark.check("block.any_shapes")
@given(problem=problems())
def test_block_any_shapes(submission, course, problem):
    """Any batch dims (none too), 1..10 tokens, 1..4 heads of 1..6 dims, no mask, causal or per batch entry."""
    CHECK.against_reference(submission, "transformer_block", problem.args("transformer_block"), course,
                            where=str(problem))
