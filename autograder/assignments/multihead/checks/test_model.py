"""The capstone: the student's multi_head_attention is block 0's attention module of the loaded GPT-2
(distilgpt2 by default, else the built-in model; not graded without any, see checks/model_section.py),
with that module's own weights (c_attn split into W_q, W_k, W_v; c_proj as W_o; biases folded into the
call, see capstone.py). One comparison per grading run goes into the report
under `metrics.model`, with production | student | difference heatmaps per head."""
from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from autograder.assignments.multihead.capstone import student_attention_module
from autograder.assignments.multihead.inputs import CHECK, MHA, Problem
from autograder.checks import swap_capstone
from autograder.feedback import CheckFailed

def _inside(model: Any) -> str:
    """What multi_head_attention gets inside `model` (None: distilgpt2's sizes), biases folded in."""
    d_model, heads = (model.config.hidden_size, model.config.num_attention_heads) if model is not None else (768, 12)
    width = d_model + heads
    return (f"inside the model your multi_head_attention gets x [batch, seq, {width}] (the block's input with the "
            f"biases folded in: {heads} heads of {width // heads} dims), W_q, W_k, W_v, W_o [{width}, {width}], "
            f"n_heads = {heads} and a bool causal mask [batch, 1, seq, seq]: take every size from the inputs, "
            f"never hard-code {d_model} or {d_model // heads}")


CAPSTONE = swap_capstone.Capstone(
    target="attn", replaced="attention module", forward=student_attention_module, who="multi_head_attention",
    inside=_inside)


@pytest.fixture
def model_run(grading, submission) -> Iterator[Dict[str, Any]]:
    with swap_capstone.model_run(CAPSTONE, grading, submission) as state:
        yield state


def _why(submission: Any) -> Any:
    """A deferred diagnosis on model-shaped inputs (12 heads of 64, a causal mask), to name the mistake."""
    return swap_capstone.why(CHECK, MHA, Problem(seed=31).args(MHA), submission)


@pytest.mark.check("model.runs")
def test_runs_inside_the_model(model_run):
    """The student's function really ran as the module (the grader never compares the model with itself)."""
    swap_capstone.check_runs(CAPSTONE, model_run)


@pytest.mark.check("model.attention_weights")
def test_attention_weights_match(model_run, submission, course):
    """Block 0's attention weights, every head, every row, against the production model."""
    comparison = model_run["comparison"]
    att = comparison.attention
    gap = att["max_abs_diff"]
    if not gap <= course.model["weights_atol"]:
        raise CheckFailed(
            f"inside {comparison.model_name}'s block {comparison.layer_idx} your attention weights differ from "
            f"production by up to {gap:.3g} (mean cosine {att['cosine']['mean']:.4f}, Jensen-Shannon "
            f"{att['js']['mean']:.4f} bits, EMD {att['emd']['mean']:.3f} positions); see the heatmaps",
            diagnose=_why(submission))


@pytest.mark.check("model.logits")
def test_logits_match(model_run, submission, course):
    """The model's next-token logits are unchanged with the student's attention module."""
    swap_capstone.check_logits(CAPSTONE, model_run, course, _why(submission))


@pytest.mark.check("model.gradients")
def test_gradients_inside_the_model(model_run, submission, course):
    """Gradients through the student's attention reach c_attn and c_proj and equal production's."""
    swap_capstone.check_gradients(CAPSTONE, model_run, submission, course, CHECK, _why(submission))
