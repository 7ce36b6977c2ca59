"""Values against the reference in float64 on fixed inputs, with the classic mistake named on failure."""
from __future__ import annotations

import pytest

from autograder.assignments.attention.inputs import CHECK, EXAMPLE, Case, section_args

FIXED = {
    "projections": [EXAMPLE, Case(batch=(2, 3), seq_q=5, d_k=8, d_v=12, seed=1)],
    "scores": [EXAMPLE, Case(batch=(2,), seq_q=4, seq_k=9, d_k=16, seed=2)],
    "softmax": [EXAMPLE, Case(mask="causal", seed=3), Case(batch=(3,), seq_q=5, seq_k=8, mask="random", seed=4)],
    "values": [EXAMPLE, Case(batch=(2,), seq_q=3, seq_k=7, d_v=5, seed=5)],
    "attention": [EXAMPLE, Case(mask="causal", seed=6), Case(batch=(2, 2), seq_q=5, seq_k=7, d_k=8, d_v=3,
                                                             mask="random", seed=7)],
}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.values")) for s in FIXED])
def test_values(section, submission, course):
    for case in FIXED[section]:
        CHECK.against_reference(submission, section, section_args(section, case), course, where=str(case))
