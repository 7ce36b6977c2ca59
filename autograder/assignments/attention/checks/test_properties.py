"""Hypothesis-driven properties: any batch dims and sizes, masks, stability, convexity, equivariance.

Strategies draw problem sizes and a seed (not raw tensors), so a failure reads as a small problem:
"batch [2], seq_q 1, seq_k 3, d_k 1, d_v 1, mask random, float64".
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.assignments.attention.inputs import (
    call_checked,
    cases,
    check_against_reference,
    diagnoser,
    expected_of,
    projection_args,
    require_values,
    section_args,
)
from autograder.checks.support import worst
from autograder.feedback import CheckFailed

MASKS = ("none", "causal", "random")


@pytest.mark.check("projections.any_shapes")
@given(case=cases(), d_model=st.integers(1, 96))
def test_projections_any_shapes(submission, course, case, d_model):
    """x [*batch, seq, d_model] with d_model != d_k: no hard-coded sizes."""
    check_against_reference(submission, "projections", projection_args(case, d_model), course, where=str(case))


@pytest.mark.check("scores.any_shapes")
@given(case=cases())
def test_scores_any_shapes(submission, course, case):
    """Any leading batch dims, seq_q != seq_k (cross-attention), widths 1..128."""
    check_against_reference(submission, "scores", section_args("scores", case), course, where=str(case))


@pytest.mark.check("softmax.rows_sum_to_one")
@given(case=cases(masks=MASKS))
def test_rows_sum_to_one(submission, course, case):
    """Every row of weights is a probability distribution over the keys."""
    args = section_args("softmax", case)
    weights = call_checked(submission, "softmax", args, expected_of("attention_weights", args))
    sums = weights.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        raise CheckFailed(f"the row sums of your weights differ from 1 {worst(sums - 1)} ({case})",
                          "softmax normalises over the keys, the last axis: dim=-1",
                          diagnose=diagnoser("attention_weights", args, weights))
    if (weights < 0).any():
        raise CheckFailed(f"your weights contain negative values ({case})", "exp() of anything is positive",
                          diagnose=diagnoser("attention_weights", args, weights))
    check_against_reference(submission, "softmax", args, course, where=str(case))


@pytest.mark.check("softmax.masked_exact_zero")
@given(case=cases(masks=("causal", "random")))
def test_masked_exact_zero(submission, course, case):
    """Entries where the mask is False get weight exactly 0, and the others still match the reference."""
    args = section_args("softmax", case)
    weights = call_checked(submission, "softmax", args, expected_of("attention_weights", args))
    leaked = weights.masked_select(~args[1])
    if (leaked != 0).any():
        raise CheckFailed(f"{int((leaked != 0).sum())} masked entries of your weights are not exactly 0 "
                          f"(they differ from 0 {worst(leaked)}; {case})",
                          "fill masked scores with float('-inf') before the softmax (True = may attend)",
                          diagnose=diagnoser("attention_weights", args, weights))
    check_against_reference(submission, "softmax", args, course, where=str(case))


@pytest.mark.check("softmax.shift_invariance")
@given(case=cases(masks=("none", "random")), shift=st.floats(-50, 50))
def test_shift_invariance(submission, course, case, shift):
    """softmax(s + c) == softmax(s) for a constant c per row."""
    scores, mask = section_args("softmax", case)
    expected = expected_of("attention_weights", (scores, mask))
    plain = call_checked(submission, "softmax", (scores, mask), expected)
    require_values(plain, expected, "attention_weights", (scores, mask), course, where=str(case))
    shifted = call_checked(submission, "softmax", (scores + shift, mask), plain)
    tol = course.tolerance(scores.dtype)
    if not torch.allclose(plain, shifted, rtol=tol["rtol"], atol=tol["atol"]):
        raise CheckFailed(f"adding {shift:.3g} to every score changed your weights {worst(plain - shifted)} ({case})",
                          "softmax only depends on differences between scores; subtract the row max before exp",
                          diagnose=diagnoser("attention_weights", (scores, mask), plain))


@pytest.mark.check("values.convex_combination")
@given(case=cases())
def test_convex_combination(submission, course, case):
    """Each attended row is a convex combination of V rows: inside V's per-column range."""
    weights, V = section_args("values", case)
    out = check_against_reference(submission, "values", (weights, V), course, where=str(case))
    low, high = V.amin(-2, keepdim=True), V.amax(-2, keepdim=True)
    if ((out < low - 1e-9) | (out > high + 1e-9)).any():
        raise CheckFailed(f"your attended values leave the range of V's rows ({case})",
                          "weights @ V: each output row is a weighted average of V's rows",
                          diagnose=diagnoser("aggregate_values", (weights, V), out))


@pytest.mark.check("attention.any_shapes")
@given(case=cases(masks=MASKS))
def test_attention_any_shapes(submission, course, case):
    """The composed attention on any sizes, with no mask, a causal mask or a random mask."""
    check_against_reference(submission, "attention", section_args("attention", case), course, where=str(case))


@pytest.mark.check("attention.permutation_equivariance")
@given(case=cases(masks=("none", "random")), data=st.data())
def test_permutation_equivariance(submission, course, case, data):
    """Reordering keys and values together leaves the output unchanged and permutes the weights' columns."""
    Q, K, V, mask = section_args("attention", case)
    perm = torch.tensor(data.draw(st.permutations(range(case.seq_k)), label="key order"))
    expected = expected_of("attention", (Q, K, V, mask))
    base = call_checked(submission, "attention", (Q, K, V, mask), expected)
    require_values(base, expected, "attention", (Q, K, V, mask), course, where=str(case))
    moved_mask = None if mask is None else mask[..., perm]
    moved = call_checked(submission, "attention", (Q, K[..., perm, :], V[..., perm, :], moved_mask), base)
    tol = course.tolerance(Q.dtype)
    if not torch.allclose(base[0], moved[0], rtol=tol["rtol"], atol=tol["atol"]):
        raise CheckFailed(f"reordering the keys and values changed your attended values ({case})",
                          "attention treats keys as a set: nothing may depend on their positions",
                          diagnose=diagnoser("attention", (Q, K, V, mask), base))
    if not torch.allclose(base[1][..., perm], moved[1], rtol=tol["rtol"], atol=tol["atol"]):
        raise CheckFailed(f"reordering the keys did not reorder your weights' columns the same way ({case})",
                          "weights are [..., seq_q, seq_k]: one column per key",
                          diagnose=diagnoser("attention", (Q, K, V, mask), base))
