"""Shapes on PROMPT_EXAMPLE ("The cat sat on the mat": 6 tokens, 64 dims) and on cross-attention."""
from __future__ import annotations

import pytest

from autograder.assignments.attention.inputs import CHECK, EXAMPLE, Case, section_args

SHAPE_SECTIONS = ("projections", "scores", "softmax", "values", "attention")
CROSS = Case(batch=(2,), seq_q=4, seq_k=7, d_k=16, d_v=8, mask="random", seed=3)


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.shapes")) for s in SHAPE_SECTIONS])
def test_shapes(section, submission):
    """Q, K, V [1,6,64]; scores and weights [1,6,6]; attended [1,6,64]; then seq_q != seq_k with a batch dim."""
    for case in (EXAMPLE, CROSS):
        args = section_args(section, case)
        CHECK.call_checked(submission, section, args, CHECK.expected_of(section, args))
