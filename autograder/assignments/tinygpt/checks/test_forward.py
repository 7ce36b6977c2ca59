"""gpt_forward against the reference on small random params: shapes, values (float64 and float32),
hypothesis sizes, 12 blocks in numeric order, no future leakage, too long a sequence, the contract and
gradients (the tied head: wte gets gradients from both the embedding and the head)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given

from autograder.assignments.tinygpt.inputs import CHECK, EXAMPLE, FORWARD, Problem, problems
from autograder.checks.behaviour import check_contract, check_gradients
from autograder.checks.support import copied
from autograder.runtime.protocol import describe as show
from autograder.feedback import CheckFailed
from autograder.runtime.submission import SubmissionError

FIXED = [EXAMPLE, Problem(dtype=torch.float32, seed=1), Problem(batch=(2, 3), seq=5, vocab=9, d_model=12, n_heads=3,
                                                                  n_layers=3, max_seq=7, seed=2),
         Problem(batch=(), seq=8, vocab=5, d_model=8, n_heads=2, n_layers=1, max_seq=8, seed=3)]


@pytest.mark.check("forward.shapes")
def test_shapes(submission):
    """ids [1, 6] -> logits [1, 6, 66]; then two batch dims and no batch dim."""
    for problem in (EXAMPLE, FIXED[2], FIXED[3]):
        args = problem.args()
        CHECK.call_checked(submission, FORWARD, args, CHECK.expected_of(FORWARD, args))


@pytest.mark.check("forward.values")
def test_values(submission, course):
    for problem in FIXED:
        CHECK.against_reference(submission, FORWARD, problem.args(), course, where=str(problem))


@pytest.mark.check("forward.any_shapes")
@given(problem=problems())
def test_any_shapes(submission, course, problem):
    CHECK.against_reference(submission, FORWARD, problem.args(), course, where=str(problem))


@pytest.mark.check("forward.block_order")
def test_block_order(submission, course):
    """12 blocks, keys in a shuffled order: h.0 ... h.11 run in numeric order (a string sort puts h.10 and
    h.11 before h.2; it shows only from 11 blocks)."""
    problem = Problem(seq=5, vocab=11, d_model=8, n_heads=2, n_layers=12, max_seq=6, seed=4)
    CHECK.against_reference(submission, FORWARD, problem.args(), course, where=str(problem))


@pytest.mark.check("forward.causal")
@given(problem=problems())
def test_no_future_leakage(submission, course, problem):
    """Changing token j never changes the logits at positions before j, on the reference's logits (unless
    values_first is off: a forward that ignores its input leaks nothing)."""
    args = problem.args()
    expected = CHECK.expected_of(FORWARD, args)
    base = CHECK.call_checked(submission, FORWARD, args, expected)
    CHECK.require_values(base, expected, FORWARD, args, course, where=str(problem))
    for j in range(1, problem.seq):
        changed = [copied(a) for a in args]
        changed[0][..., j] = (changed[0][..., j] + 1) % problem.vocab
        out = CHECK.call_checked(submission, FORWARD, changed, base)
        leaked = (out[..., :j, :] - base[..., :j, :]).abs().max()
        if not torch.isfinite(leaked) or leaked > 1e-9 * (1 + base.abs().max()):
            raise CheckFailed(f"changing token {j} changed your logits at earlier positions (by up to "
                              f"{float(leaked):.3g}; {problem}): the model sees the future",
                              "every block needs the causal mask: position t attends to positions 0..t only",
                              diagnose=CHECK.diagnoser(FORWARD, args, base))


@pytest.mark.check("forward.too_long")
def test_too_long(submission):
    """A sequence longer than wpe's rows has no position embedding: ValueError."""
    problem = Problem(seq=9, vocab=7, d_model=8, n_heads=2, n_layers=1, max_seq=8, seed=5)
    args = problem.args()
    hint = "check ids.shape[-1] against params['wpe'].shape[0] and raise ValueError"
    try:
        value = submission.call(FORWARD, *args)
    except SubmissionError as error:
        if error.kind != "raised" or error.raised is None:
            raise
        if error.raised[0] == "ValueError":
            return
        raise CheckFailed(f"gpt_forward raised {error.raised[0]} for 9 tokens and 8 rows of wpe; the contract asks "
                          "for a ValueError", hint, diagnose=CHECK.error_diagnoser(FORWARD, args, error.raised)) from None
    raise CheckFailed(f"gpt_forward returned {show(value)} for 9 tokens and 8 rows of wpe, instead of raising "
                      "ValueError", hint)


@pytest.mark.check("forward.contract")
def test_contract(submission, course):
    """float32 in -> float32 out (float64 likewise); ids and params not modified; the same answer twice."""
    for dtype in (torch.float32, torch.float64):
        problem = Problem(batch=(2,), seq=5, vocab=9, d_model=8, n_heads=2, n_layers=2, max_seq=6, seed=6, dtype=dtype)
        check_contract(CHECK, submission, FORWARD, problem.args(), course)


@pytest.mark.check("forward.gradients")
def test_gradients(submission, course):
    """Gradients reach wte (embedding and tied head), wpe, block and final-norm params: finite and equal to
    the reference's (float64), on the reference's values."""
    problem = Problem(batch=(2,), seq=4, vocab=7, d_model=6, n_heads=2, n_layers=2, max_seq=5, seed=7)
    wrt = [(1, "wte"), (1, "wpe"), (1, "h.0.attn.W_q"), (1, "h.1.mlp.W_2"), (1, "h.1.ln_2.beta"),
           (1, "ln_f.gamma"), (1, "ln_f.beta")]
    check_gradients(CHECK, submission, FORWARD, problem.args(), wrt, course.seed, config=course)
