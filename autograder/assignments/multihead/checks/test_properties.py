"""Properties of multi-head attention: split/merge round trip, head h uses exactly its own column block,
each head is single-head attention on its slice, no future leakage under the causal mask, broadcast masks."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given

from autograder.assignments.multihead.inputs import CHECK, MHA, Problem, problems
from autograder.checks.support import copied, difference, matches
from autograder.feedback import CheckFailed
from reference import attention as single_head

PROBE = Problem(batch=(2,), seq=5, d_model=12, n_heads=3, mask="causal", seed=11)


def _mha(submission, args):
    return CHECK.call_checked(submission, MHA, args, CHECK.expected_of(MHA, args))


@pytest.mark.check("merge.round_trip")
@given(problem=problems(masks=("none",)))
def test_round_trip(submission, course, problem):
    """merge_heads(split_heads(x, n)) == x and split_heads(merge_heads(h), n) == h, on the reference's values
    (unless values_first is off)."""
    x, heads = problem.x(), problem.heads()
    split = CHECK.call_checked(submission, "split_heads", (x, problem.n_heads), heads)
    back = CHECK.call_checked(submission, "merge_heads", (split,), x)
    merged = CHECK.call_checked(submission, "merge_heads", (heads,), x)
    CHECK.require_values(split, CHECK.expected_of("split_heads", (x, problem.n_heads)), "split_heads",
                         (x, problem.n_heads), course, where=str(problem))
    CHECK.require_values(merged, CHECK.expected_of("merge_heads", (heads,)), "merge_heads", (heads,), course,
                         where=str(problem))
    again = CHECK.call_checked(submission, "split_heads", (merged, problem.n_heads), heads)

    def why():  # the function that is wrong on its own names the mistake
        return (CHECK.diagnoser("split_heads", (x, problem.n_heads), split)()
                or CHECK.diagnoser("merge_heads", (heads,), merged)())

    for got, want, what in ((back, x, "merge_heads(split_heads(x))"), (again, heads, "split_heads(merge_heads(h))")):
        if not torch.equal(got, want):
            raise CheckFailed(f"{difference(got, want, what)} instead of giving it back unchanged ({problem})",
                              "split_heads and merge_heads must undo each other exactly: reshape to [..., seq, "
                              "n_heads, d_head] and transpose(-3, -2) one way, the same in reverse the other",
                              diagnose=why)


@pytest.mark.check("attention.head_blocks")
def test_head_uses_its_own_columns(submission, course):
    """Weights that are zero outside head h's columns h*d_head:(h+1)*d_head (W_o the identity): only head h
    sees anything, so the output is zero outside those columns and the other heads' weights are uniform."""
    x = PROBE.x()
    d, n, dh = PROBE.d_model, PROBE.n_heads, PROBE.d_head
    W_q, W_k, W_v, _ = PROBE.weights()
    for h in range(n):
        keep = torch.zeros(d, d, dtype=x.dtype)
        keep[:, h * dh:(h + 1) * dh] = 1
        args = (x, W_q * keep, W_k * keep, W_v * keep, torch.eye(d, dtype=x.dtype), n, PROBE.attn_mask())
        out, weights = _mha(submission, args)
        outside = torch.cat([out[..., :h * dh], out[..., (h + 1) * dh:]], dim=-1)
        if outside.abs().max() > 1e-9:
            raise CheckFailed(f"with W_q, W_k, W_v zero outside head {h}'s columns {h * dh}:{(h + 1) * dh} (and W_o "
                              f"the identity), your output is non-zero in other columns (up to "
                              f"{float(outside.abs().max()):.3g}; {PROBE})",
                              "head h must take exactly the columns h*d_head:(h+1)*d_head, and its output go back "
                              "to the same columns: reshape the last axis to (n_heads, d_head)",
                              diagnose=CHECK.diagnoser(MHA, args, (out, weights)))
        CHECK.against_reference(submission, MHA, args, course, where=f"only head {h} non-zero; {PROBE}")


@pytest.mark.check("attention.per_head")
@given(problem=problems(masks=("causal", "batched")))
def test_each_head_is_single_head_attention(submission, course, problem):
    """Head h's weights are softmax(Q_h K_h^T / sqrt(d_head)) on its own slice of the projections, with the
    reference's output (unless values_first is off: right weights over a garbage output are not the module)."""
    args = problem.args(MHA)
    x, W_q, W_k, W_v, _, n, mask = args
    expected_both = CHECK.expected_of(MHA, args)
    out, weights = CHECK.call_checked(submission, MHA, args, expected_both)
    CHECK.require_values((out, weights), expected_both, MHA, args, course, where=str(problem))
    dh = problem.d_head
    for h in range(n):
        cols = slice(h * dh, (h + 1) * dh)
        head_mask = mask if mask.dim() < 3 else mask.select(-3, 0)  # [seq, seq] or [*batch, seq, seq]
        _, expected = single_head.scaled_dot_product_attention(x @ W_q[:, cols], x @ W_k[:, cols],
                                                               x @ W_v[:, cols], head_mask)
        if not matches(weights[..., h, :, :], expected, course):
            raise CheckFailed(
                difference(weights[..., h, :, :], expected, f"head {h}'s weights",
                           f"single-head attention on columns {h * dh}:{(h + 1) * dh}; {problem}"),
                f"each head is single-head attention on its own d_head = {dh} columns, scaled by "
                f"1/sqrt({dh}) = {1 / math.sqrt(dh):.4g}", diagnose=CHECK.diagnoser(MHA, args, (out, weights)))


@pytest.mark.check("attention.no_future_leakage")
@given(problem=problems(masks=("causal",)))
def test_no_future_leakage(submission, course, problem):
    """With the causal mask, changing token j never changes the outputs (or weights) at positions before j;
    on the reference's values (unless values_first is off)."""
    args = problem.args(MHA)
    expected = CHECK.expected_of(MHA, args)
    base_out, base_w = CHECK.call_checked(submission, MHA, args, expected)
    CHECK.require_values((base_out, base_w), expected, MHA, args, course, where=str(problem))
    for j in range(1, problem.seq):
        changed = [copied(a) for a in args]
        changed[0][..., j, :] = problem.randn(*problem.batch, problem.d_model, salt=50 + j)
        out, weights = _mha(submission, changed)
        leaked = (out[..., :j, :] - base_out[..., :j, :]).abs().max()
        if not torch.isfinite(leaked) or leaked > 1e-9:
            raise CheckFailed(f"with a causal mask, changing token {j} changed your output at earlier positions "
                              f"(by up to {float(leaked):.3g}; {problem}): the future leaks into the past",
                              "query i may only see keys 0..i: blocked scores must be -inf before the softmax, "
                              "on every head", diagnose=CHECK.diagnoser(MHA, args, (base_out, base_w)))


@pytest.mark.check("attention.broadcast_masks")
def test_broadcast_masks(submission, course):
    """A random [seq, seq] mask (the same for every batch entry and head) and a [batch, 1, seq, seq] one."""
    problem = Problem(batch=(2,), seq=6, d_model=16, n_heads=4, mask="batched", seed=12)
    x, W_q, W_k, W_v, W_o, n, per_batch = problem.args(MHA)
    shared = per_batch[1, 0]  # [seq, seq]
    for mask, what in ((shared, "a [seq, seq] mask"), (per_batch, "a [batch, 1, seq, seq] mask")):
        CHECK.against_reference(submission, MHA, (x, W_q, W_k, W_v, W_o, n, mask), course,
                                where=f"{what}; {problem}")
