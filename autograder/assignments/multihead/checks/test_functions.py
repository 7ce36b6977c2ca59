"""Each function on the worked example (distilgpt2's shapes), on fixed problems in float64 and float32,
and on hypothesis-drawn sizes: any batch dims, sequence lengths, d_model and n_heads."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given

from autograder.assignments.multihead.inputs import CHECK, EXAMPLE, Problem, problems

BATCHED = Problem(batch=(2,), seq=5, d_model=24, n_heads=4, mask="batched", seed=1)
FIXED = [
    EXAMPLE,
    Problem(dtype=torch.float32, seed=2),
    Problem(batch=(2, 3), seq=5, d_model=12, n_heads=3, mask="none", seed=3),
    Problem(batch=(), seq=4, d_model=8, n_heads=8, mask="causal", seed=4),
    Problem(batch=(2,), seq=7, d_model=16, n_heads=2, mask="batched", seed=5, dtype=torch.float32),
]
FUNCTION_OF = {"split": "split_heads", "merge": "merge_heads", "attention": "multi_head_attention"}


def _params(name):
    return [pytest.param(section, marks=pytest.mark.check(f"{section}.{name}")) for section in FUNCTION_OF]


@pytest.mark.parametrize("section", _params("shapes"))
def test_shapes(section, submission):
    """x [1, 6, 768], 12 heads: heads [1, 12, 6, 64], out [1, 6, 768], weights [1, 12, 6, 6]; then a batch of 2."""
    fn = FUNCTION_OF[section]
    for problem in (EXAMPLE, BATCHED):
        args = problem.args(fn)
        CHECK.call_checked(submission, fn, args, CHECK.expected_of(fn, args))


@pytest.mark.parametrize("section", _params("values"))
def test_values(section, submission, course):
    """Against the reference on fixed problems, float64 and float32."""
    fn = FUNCTION_OF[section]
    for problem in FIXED:
        CHECK.against_reference(submission, fn, problem.args(fn), course, where=str(problem))


@pytest.mark.check("mask.values")
def test_causal_mask_values(submission, course):
    """bool [n, n], True on and below the diagonal, for n = 6, 17, 2 and 1."""
    for n in (6, 17, 2, 1):
        CHECK.against_reference(submission, "causal_mask", (n,), course, where=f"seq_len {n}")


@pytest.mark.check("split.any_shapes")
@given(problem=problems())
def test_split_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, "split_heads", problem.args("split_heads"), course, where=str(problem))


@pytest.mark.check("merge.any_shapes")
@given(problem=problems())
def test_merge_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, "merge_heads", problem.args("merge_heads"), course, where=str(problem))


@pytest.mark.check("attention.any_shapes")
@given(problem=problems())
def test_attention_any_shapes(submission, course, problem):
    """Any batch dims (none too), 1..12 tokens, 1..6 heads of 1..8 dims, no mask, causal or per batch entry."""
    CHECK.against_reference(submission, "multi_head_attention", problem.args("multi_head_attention"), course,
                            where=str(problem))


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.not_divisible"))
                                     for s in ("split", "attention")])
def test_not_divisible(section, submission):
    """10 dims cannot be cut into 4 heads: ValueError, not a silent reshape."""
    fn = FUNCTION_OF[section]
    problem = Problem(batch=(1,), seq=3, d_model=10, n_heads=5, mask="none", seed=6)
    args = list(problem.args(fn))
    args[1 if fn == "split_heads" else 5] = 4
    CHECK.expect_value_error(submission, fn, args, "n_heads = 4 does not divide d_model = 10",
                       "check d_model % n_heads != 0 first and raise ValueError(...) with a message that says so")
