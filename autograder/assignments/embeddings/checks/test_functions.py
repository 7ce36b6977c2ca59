"""Each function on the worked example ("The cat sat on the mat" at distilgpt2's width), on fixed
problems in float64 and float32, on hypothesis-drawn sizes, and the sinusoids on a long table."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from autograder.assignments.embeddings.inputs import CHECK, DRIFT_PER_POSITION, EXAMPLE, Problem, problems
from autograder.checks.support import difference
from autograder.feedback import CheckFailed

FUNCTION_OF = {"token": "token_embedding", "positions": "sinusoidal_positions", "embed": "embed"}
FIXED = {
    "token": [EXAMPLE, Problem(dtype=torch.float32, seed=1), Problem(batch=(2, 3), seq=4, vocab=7, d_model=6, seed=2),
              Problem(batch=(), seq=5, vocab=3, d_model=4, seed=3)],
    "positions": [EXAMPLE, Problem(max_seq=128, d_model=64), Problem(max_seq=7, d_model=2), Problem(max_seq=1, d_model=8),
                  Problem(max_seq=50, d_model=10)],
    "embed": [EXAMPLE, Problem(dtype=torch.float32, seed=4), Problem(batch=(2, 3), seq=4, vocab=7, d_model=6, seed=5),
              Problem(batch=(), seq=9, vocab=3, d_model=4, max_seq=9, seed=6)],
}
SHAPES = [EXAMPLE, Problem(batch=(2, 3), seq=4, vocab=9, d_model=8, max_seq=10, seed=7)]


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.shapes")) for s in FUNCTION_OF])
def test_shapes(section, submission):
    """ids [1, 6], table [4096, 768] -> [1, 6, 768]; positions [1024, 768]; then two batch dims."""
    fn = FUNCTION_OF[section]
    for problem in SHAPES:
        args = problem.args(fn)
        CHECK.call_checked(submission, fn, args, CHECK.expected_of(fn, args))


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.check(f"{s}.values")) for s in FUNCTION_OF])
def test_values(section, submission, course):
    """Against the reference on fixed problems (the sinusoids up to 128 positions)."""
    fn = FUNCTION_OF[section]
    for problem in FIXED[section]:
        args = problem.args(fn)
        if fn == "sinusoidal_positions":
            args = (min(problem.max_seq, 128), problem.d_model)
        CHECK.against_reference(submission, fn, args, course, where=str(problem))


@pytest.mark.check("positions.long")
def test_long_table(submission, course):
    """GPT-2's 1024 positions at width 768: float32 rounding grows with the angle, so each row p may be off
    by atol + DRIFT_PER_POSITION * p (6.7e-5 at 1024 on correct public code)."""
    args = (1024, 768)
    expected = CHECK.expected_of("sinusoidal_positions", args)
    got = CHECK.call_checked(submission, "sinusoidal_positions", args, expected)
    atol = course.tolerance(expected.dtype)["atol"]
    allowed = atol + DRIFT_PER_POSITION * torch.arange(1024, dtype=torch.float64).unsqueeze(1)
    gap = (got.to(torch.float64) - expected.to(torch.float64)).abs()
    if not bool((gap <= allowed).all()):  # NaN fails too
        raise CheckFailed(difference(got, expected, "sinusoidal_positions(1024, 768)", "row p may differ by "
                                     f"{atol:g} + {DRIFT_PER_POSITION:g} * p", atol=allowed),
                          diagnose=CHECK.diagnoser("sinusoidal_positions", args, got))


@pytest.mark.check("token.any_shapes")
@given(problem=problems())
def test_token_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, "token_embedding", problem.args("token_embedding"), course, where=str(problem))


@pytest.mark.check("positions.any_shapes")
@given(seq_len=st.integers(1, 40), half=st.integers(1, 32))
def test_positions_any_shapes(submission, course, seq_len, half):
    """Any length 1..40 and even width 2..64."""
    CHECK.against_reference(submission, "sinusoidal_positions", (seq_len, 2 * half), course,
                            where=f"seq_len {seq_len}, d_model {2 * half}")


@pytest.mark.check("embed.any_shapes")
@given(problem=problems())
def test_embed_any_shapes(submission, course, problem):
    """Any batch dims (none too), 1..12 tokens, a positions table 0..5 rows longer than the sequence."""
    CHECK.against_reference(submission, "embed", problem.args("embed"), course, where=str(problem))
