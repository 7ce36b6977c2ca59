"""Properties of the composed block: no future leakage under the causal mask; broadcast masks."""
from __future__ import annotations

import torch
import pytest
from hypothesis import given

from autograder.assignments.block.inputs import BLOCK, CHECK, Problem, problems
from autograder.checks.support import copied
from autograder.feedback import CheckFailed



@pytest.mark.check("block.no_future_leakage")
@given(problem=problems(masks=("causal",)))
def test_no_future_leakage(submission, course, problem):
    """With the causal mask, changing token j never changes the block's output at positions before j; on
    the reference's values (unless values_first is off)."""
    args = problem.args(BLOCK)
    expected = CHECK.expected_of(BLOCK, args)
    base = CHECK.call_checked(submission, BLOCK, args, expected)
    CHECK.require_values(base, expected, BLOCK, args, course, where=str(problem))
    for j in range(1, problem.seq):
        changed = [copied(a) for a in args]
        changed[0][..., j, :] = problem.randn(*problem.batch, problem.d_model, salt=50 + j)
        out = CHECK.call_checked(submission, BLOCK, changed, base)
        leaked = (out[..., :j, :] - base[..., :j, :]).abs().max()
        if not torch.isfinite(leaked) or leaked > 1e-9:
            raise CheckFailed(f"with a causal mask, changing token {j} changed your block's output at earlier "
                              f"positions (by up to {float(leaked):.3g}; {problem}): the future leaks into the past",
                              "only attention mixes tokens, and it must block the future; layer norm and the MLP "
                              "work on each token alone (normalise over the last axis only)",
                              diagnose=CHECK.diagnoser(BLOCK, args, base))


@pytest.mark.check("block.broadcast_masks")
def test_broadcast_masks(submission, course):
    """A random [seq, seq] mask (the same for every batch entry and head) and a [batch, 1, seq, seq] one."""
    problem = Problem(batch=(2,), seq=6, d_model=16, n_heads=4, mask="batched", seed=12)
    x, params, n, per_batch = problem.args(BLOCK)
    for mask, what in ((per_batch[1, 0], "a [seq, seq] mask"), (per_batch, "a [batch, 1, seq, seq] mask")):
        CHECK.against_reference(submission, BLOCK, (x, params, n, mask), course, where=f"{what}; {problem}")
