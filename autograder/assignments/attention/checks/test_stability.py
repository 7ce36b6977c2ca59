"""Numerical stability: huge logits and shifted scores must not give NaN or inf."""
from __future__ import annotations

import pytest

from autograder.assignments.attention.inputs import CHECK, Case, section_args

LARGE = [Case(seed=11, mask="none"), Case(batch=(2,), seq_q=5, seq_k=9, mask="random", seed=12)]


@pytest.mark.check("softmax.stability")
def test_softmax_stability(submission, course):
    """Scores of order 1e4, scores + 100 and scores - 1e5 give the same finite weights as the reference (the
    last also unmasks a finite fill above -1e5, such as -1e4)."""
    for case in LARGE:
        scores, mask = section_args("softmax", case)
        for label, big in (("scores of order 1e4", scores * 1e4 / 3), ("scores + 100", scores + 100),
                           ("scores - 1e5", scores - 1e5)):
            CHECK.against_reference(submission, "softmax", (big, mask), course, where=f"{label}, {case}")
