"""The capstone: the student's attention replaces block 0's attention in a real transformer.

distilgpt2 by default (`--model` or `[model] name` for another hub id, a local folder or `builtin`; BERT-style
encoders work too); where it cannot be loaded (offline without a cache), the built-in model (the course's
TinyGPT on Tiny Shakespeare, 2 heads of 64), and the report says which ran and why. Their single-head
function runs once per forward on all heads' own Q, K, V (`[B, H, S, 64]`) with the model's mask. The
comparison (metrics, heatmaps) is computed once per run and goes into the report under `metrics.model`.
When no model at all can be loaded the section is not graded (NotGraded), never points lost.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Iterator, List

import pytest
import torch

from autograder.assignments.attention.inputs import CHECK, Case
from autograder.checks import model_section
from autograder.feedback import CheckFailed
from autograder.model import bridge, compare, loading, surgery


def _compare(grading: Any, submission: Any, state: Dict[str, Any]) -> compare.ModelComparison:
    """The run's one comparison on the loaded model (`model_section` stores it, draws its heatmaps)."""
    settings = grading.config.model
    model, tokenizer = state["model"], state["tokenizer"]
    causal = loading.is_causal_lm(model.config)
    prompt = settings["prompt"] if causal else [settings["prompt"], "The cat sat"]  # padding for encoders
    state["prompt"] = prompt
    return compare.compare_attention_implementations(
        model, tokenizer, bridge.student_attention(submission, CHECK), prompt, int(settings["layer"]),
        continuation_tokens=int(settings["continuation_tokens"]) if causal else 0)


@pytest.fixture
def model_run(grading, submission) -> Iterator[Dict[str, Any]]:
    with model_section.model_run(grading, functools.partial(_compare, grading, submission),
                                 lambda error, state: _error_hint(error, state.get("model"))) as state:
        yield state


def _error_hint(error: Exception, model: Any, projections: bool = False) -> str:
    """The hint for a failure inside the model, with that model's sizes (d_model, heads, head size)."""
    worker = model_section.worker_hint(error)
    if worker:
        return worker
    d_model, heads = (model.config.hidden_size, model.config.num_attention_heads) if model is not None else (768, 12)
    d_head = d_model // heads
    if projections:
        return (f"inside the model linear_projections gets the block's input x [batch, seq, {d_model}] and one "
                f"head's W_q, W_k, W_v [{d_model}, {d_head}] at a time: Q = x @ W_q, with no hard-coded sizes")
    return (f"inside the model your function gets all heads at once, Q/K/V [batch, {heads}, seq, {d_head}] and a "
            "boolean causal mask [batch, 1, seq, seq]: use -1/-2 axes and broadcasting, never hard-coded sizes")


def _why(submission: Any, state: Dict[str, Any]) -> Any:
    """A deferred diagnosis on model-shaped inputs (all heads, causal mask), to name the mistake."""
    heads = state["comparison"].heads
    case = Case(batch=(1, heads), seq_q=6, seq_k=6, mask="causal", seed=31)
    Q, K, V = case.qkv()
    args = (Q, K, V, case.attn_mask())
    try:
        actual = submission.call("attention", *args)
    except Exception:  # the failure already says enough
        return None
    return CHECK.diagnoser("attention", args, actual)()


@pytest.mark.check("model.runs")
def test_runs_inside_the_model(model_run):
    """The student's function really ran inside the block (the grader never compares the model with itself)."""
    comparison = model_run["comparison"]
    if not comparison.student_ran:
        raise CheckFailed("your attention did not run inside the model as expected "
                          f"({comparison.student_calls} calls in one forward)")


@pytest.mark.check("model.attention_weights")
def test_attention_weights_match(model_run, submission, course):
    """Block 0's attention weights, every head, every graded row, against the production model."""
    comparison = model_run["comparison"]
    att = comparison.attention
    gap = att["max_abs_diff"]
    if not gap <= course.model["weights_atol"]:  # NaN-safe
        raise CheckFailed(
            f"inside {comparison.model_name}'s block {comparison.layer_idx} your attention weights differ from "
            f"production by up to {gap:.3g} (mean cosine {att['cosine']['mean']:.4f}, Jensen-Shannon "
            f"{att['js']['mean']:.4f} bits, EMD {att['emd']['mean']:.3f} positions); see the heatmaps",
            diagnose=lambda: _why(submission, model_run))


@pytest.mark.check("model.logits")
def test_outputs_match(model_run, submission, course):
    """The model's outputs (logits, or an encoder's last hidden state) are unchanged by the student's attention."""
    comparison = model_run["comparison"]
    causal = comparison.logits_max_abs_diff is not None
    gap = comparison.logits_max_abs_diff if causal else comparison.last_hidden_max_abs_diff
    if not gap <= course.model["logits_atol"]:  # NaN-safe
        what = "next-token logits" if causal else "final hidden states"
        extra = ""
        if causal:
            nxt = comparison.next_token
            extra = (f"; next-token KL {nxt['kl'][0]:.3g}, top-1 agreement {nxt['top1_agreement'][0]:.0%}, "
                     f"top-5 {nxt['top5_agreement'][0]:.0%}")
        raise CheckFailed(f"with your attention in block {comparison.layer_idx} the model's {what} move by up to "
                          f"{gap:.3g}{extra}", diagnose=lambda: _why(submission, model_run))


@pytest.mark.check("model.projections")
def test_projections_inside_the_model(model_run, submission, course):
    """Second mode: the block's own projection weights also go through the student's linear_projections."""
    try:
        comparison = compare.compare_attention_implementations(
            model_run["model"], model_run["tokenizer"], bridge.student_attention(submission, CHECK),
            model_run["prompt"],
            int(course.model["layer"]), route_projections=bridge.student_projections(submission, CHECK),
            continuation_tokens=0, reference=model_run["comparison"])
    except surgery.ModelIntegrationError as error:
        raise CheckFailed(str(error), _error_hint(error, model_run["model"], projections=True)) from None
    gap = comparison.block_output_max_abs_diff
    if not gap <= course.model["logits_atol"]:  # NaN-safe
        raise CheckFailed(f"with your linear_projections computing the block's Q, K, V from its weights, the "
                          f"block's output moves by up to {gap:.3g}",
                          "Q = x @ W_q with W laid out [d_model, d_k]; the model adds the biases itself",
                          diagnose=lambda: _why(submission, model_run))


def block_gradients(model: Any, inputs: Dict[str, Any], params: List[Any]) -> List[Any]:
    """Gradients for `params` of the base model's last hidden state along one fixed random direction.

    Not mean(h^2): after a final LayerNorm whose scale is still 1 (a freshly built model) every row has
    mean square ~1 whatever the input, so that gradient is float32 rounding noise (two correct float32
    runs, e.g. GPU and CPU, 4e-4 apart; along a direction 1e-6). The LM head would only add cost.
    """
    value = model.base_model(**inputs).last_hidden_state.float()
    direction = torch.randn(value.shape, generator=torch.Generator().manual_seed(0)).to(value.device)
    real = inputs["attention_mask"][..., None].to(value.dtype)  # padding rows are never graded
    return list(torch.autograd.grad((value * direction * real).sum(), params, allow_unused=True))


@pytest.mark.check("model.gradients")
def test_gradients_inside_the_model(model_run, submission, course):
    """Gradients through the student's attention reach the block's weights and equal production's."""
    model, tokenizer = model_run["model"], model_run["tokenizer"]
    layer = int(course.model["layer"])
    params = list(surgery.extract_attention_layer(model, layer).parameters())
    prompt = model_run["prompt"]
    inputs = tokenizer(prompt, return_tensors="pt", padding=not isinstance(prompt, str)).to(model.device)

    expected = compare.production(model, ("gradients", "attention", layer, str(inputs["input_ids"].tolist()),
                                          str(inputs["attention_mask"].tolist())),
                                  lambda: block_gradients(model, inputs, params))
    student_model = surgery.replace_attention_mechanism(model, bridge.student_attention(submission, CHECK), layer)
    try:
        got = block_gradients(student_model, inputs, params)
    except surgery.ModelIntegrationError as error:
        raise CheckFailed(str(error), _error_hint(error, model)) from None
    finally:
        del student_model
    comparison = model_run["comparison"]
    output_gap = (comparison.logits_max_abs_diff if comparison.logits_max_abs_diff is not None
                  else comparison.last_hidden_max_abs_diff)
    outputs_right = output_gap <= course.model["logits_atol"]  # False for NaN
    if course.values_first and not outputs_right:
        raise CheckFailed(f"gradients are graded once the model's outputs are right; with your attention they "
                          f"move by up to {output_gap:.3g}", "fix the values first (see the model.logits check)",
                          diagnose=lambda: _why(submission, model_run))
    if any(g is None for g in got):
        raise CHECK.no_gradient(submission, "no gradient reaches the block's projection weights through your attention")
    # one vector for the whole block: the key bias's gradient is analytically 0 (softmax ignores a shift
    # shared by all keys), so a per-parameter relative error would compare rounding noise with noise
    flat_got, flat_expected = torch.cat([g.flatten() for g in got]), torch.cat([e.flatten() for e in expected])
    if not bool(torch.isfinite(flat_got).all()):
        raise CheckFailed(f"gradients through your attention contain {int((~torch.isfinite(flat_got)).sum())} "
                          "NaN/inf value(s)", "no operation whose gradient is NaN where its value is fine "
                          "(sqrt or log of 0, 0 * inf); keep every step a differentiable torch operation")
    gap = float((flat_got - flat_expected).norm() / flat_expected.norm().clamp_min(1e-12))
    if not gap <= course.model["grads_rtol"]:  # NaN-safe: a NaN gap fails
        message = f"gradients through your attention differ from production's by {gap:.3g} (relative)"
        if outputs_right:  # right values, wrong gradient: a cut in the graph
            raise CHECK.no_gradient(submission, message + ", while the model's outputs are right")
        raise CheckFailed(message, "keep every step a differentiable torch operation",
                          diagnose=lambda: _why(submission, model_run))
