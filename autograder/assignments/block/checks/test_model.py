"""The capstone: the student's transformer_block is block 0 of the loaded GPT-2 (distilgpt2 by default, else
the built-in model; not graded without any, see checks/model_section.py), with that block's own weights
(see capstone.py). One comparison per grading run goes into the report
under `metrics.model`. The block returns no attention weights, so there are no heatmaps."""
from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from autograder.assignments.block.capstone import student_block
from autograder.assignments.block.inputs import BLOCK, CHECK, Problem
from autograder.checks import swap_capstone
from autograder.feedback import CheckFailed

def _inside(model: Any) -> str:
    """What transformer_block gets inside `model` (None: distilgpt2's sizes)."""
    config = model.config if model is not None else None
    d_model, heads = (config.hidden_size, config.num_attention_heads) if config is not None else (768, 12)
    d_ff = (getattr(config, "n_inner", None) if config is not None else None) or 4 * d_model
    return (f"inside the model your transformer_block gets x [batch, seq, {d_model}], the block's 16 params "
            f"(d_ff {d_ff}), n_heads = {heads} and a bool causal mask [batch, 1, seq, seq]: take every size from "
            "the inputs")


CAPSTONE = swap_capstone.Capstone(
    target="block", replaced="block", forward=student_block, who="transformer_block", inside=_inside)


@pytest.fixture
def model_run(grading, submission) -> Iterator[Dict[str, Any]]:
    with swap_capstone.model_run(CAPSTONE, grading, submission) as state:
        yield state


def _why(submission: Any) -> Any:
    """A deferred diagnosis on model-shaped inputs (distilgpt2's sizes, a causal mask), to name the mistake."""
    return swap_capstone.why(CHECK, BLOCK, Problem(seed=31).args(BLOCK), submission)


@pytest.mark.check("model.runs")
def test_runs_inside_the_model(model_run):
    """The student's function really ran as the block (the grader never compares the model with itself)."""
    swap_capstone.check_runs(CAPSTONE, model_run)


@pytest.mark.check("model.block_output")
def test_block_output_matches(model_run, submission, course):
    """Block 0's output (the residual stream after it), every token, against the production model."""
    comparison = model_run["comparison"]
    gap = comparison.block_output_max_abs_diff
    if not gap <= course.model["logits_atol"]:
        raise CheckFailed(f"your block's output inside {comparison.model_name} (block {comparison.layer_idx}) "
                          f"differs from production's by up to {gap:.3g}",
                          diagnose=_why(submission))


@pytest.mark.check("model.logits")
def test_logits_match(model_run, submission, course):
    """The model's next-token logits are unchanged with the student's block."""
    swap_capstone.check_logits(CAPSTONE, model_run, course, _why(submission))


@pytest.mark.check("model.gradients")
def test_gradients_inside_the_model(model_run, submission, course):
    """Gradients through the student's block reach all its parameters and equal production's."""
    swap_capstone.check_gradients(CAPSTONE, model_run, submission, course, CHECK, _why(submission))
