"""The capstone of an assignment whose function is a whole module of GPT-2 (`multihead`: block L's
attention module; `block`: block L): load the model once, swap the module in a copy, compare with
production once per grading run (`metrics.model`, heatmaps when the module returns attention weights),
and the checks every such capstone shares: the code really ran, the logits, the gradients.

An assignment's `checks/test_model.py` binds these to its swap with a `Capstone`.
"""
from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Tuple

import torch

from autograder.feedback import CheckFailed, hint_for
from autograder.model import heatmaps, loading, swap
from autograder.model.surgery import ModelIntegrationError


@dataclass(frozen=True)
class Capstone:
    """How a submission becomes a module: `target` "attn" or "block", `replaced` as the report says it
    ("attention module", "block"), `forward(submission)` the `swap.StudentForward`, `who` its name in
    messages, `inside` what the student's function receives inside the model (for the error hint)."""

    target: str
    replaced: str
    forward: Callable[[Any], swap.StudentForward]
    who: str
    inside: str


@functools.lru_cache(maxsize=2)
def _load(name: str) -> Tuple[Any, Any]:
    """One load per process and model (batch grading and repeated grades reuse it)."""
    return loading.load_mini_transformer(name)


def _state(capstone: Capstone, grading: Any, submission: Any) -> Dict[str, Any]:
    """Load the model and run the comparison once per grading run; errors are kept and re-raised per check."""
    if "model_state" in grading.extra:
        return grading.extra["model_state"]
    settings = grading.config.model
    state: Dict[str, Any] = {"load_s": 0.0}
    try:
        start = time.perf_counter()
        model, tokenizer = _load(grading.model)
        state.update(model=model, tokenizer=tokenizer, load_s=time.perf_counter() - start)
        layer = int(settings["layer"])
        student_model, record = swap.swap_module(model, layer, capstone.target, capstone.forward(submission),
                                                 capstone.who)
        comparison = swap.compare_swap(model, tokenizer, student_model, record, settings["prompt"], layer,
                                       capstone.replaced, int(settings["continuation_tokens"]))
        del student_model
        state["comparison"] = comparison
        metrics = grading.extra.setdefault("metrics", {})["model"] = comparison.to_dict()
        metrics["timing_s"].update(load=state["load_s"], section=0.0)
        if settings["heatmaps"] and comparison.student_weights is not None:
            folder = grading.report_path.parent / f"{grading.report_path.stem}-heatmaps"
            try:
                paths = heatmaps.visualize_model_comparison(comparison, folder)
            except (OSError, ValueError, RuntimeError) as exc:  # pictures are extras: never cost points
                metrics["heatmaps_error"] = f"{type(exc).__name__}: {exc}"
                paths = []
            grading.extra.setdefault("artifacts", []).extend(
                {"kind": "heatmap", "path": str(p), "description": "production | student | difference"}
                for p in paths)
    except (loading.ModelUnavailableError, ModelIntegrationError, CheckFailed) as exc:
        state["error"] = exc
    grading.extra["model_state"] = state
    return state


def error_hint(capstone: Capstone, error: Exception) -> str:
    if isinstance(error, loading.ModelUnavailableError):
        return "the model could not be loaded on this machine; this is not about your code"
    cause = error.__cause__  # what the worker said: a missing function, a hang, a crash has its own hint
    if getattr(cause, "kind", "raised") != "raised" and hint_for(cause):
        return hint_for(cause)
    return capstone.inside


@contextmanager
def model_run(capstone: Capstone, grading: Any, submission: Any) -> Iterator[Dict[str, Any]]:
    """The run's model state for one check (one thread, exact float32), its time added to the section's."""
    start = time.perf_counter()
    with loading.one_cpu_thread(), loading.exact_float32():
        state = _state(capstone, grading, submission)
        error = state.get("error")
        if isinstance(error, CheckFailed):
            raise error
        if error is not None:
            raise CheckFailed(str(error), error_hint(capstone, error))
        try:
            yield state
        finally:
            spent = time.perf_counter() - start - state.pop("load_s", 0.0)
            timing = grading.extra["metrics"]["model"]["timing_s"]
            timing["section"] = round(timing["section"] + spent, 4)


def check_runs(capstone: Capstone, state: Dict[str, Any]) -> None:
    """The student's function really ran inside the model, once, and what it returned is what the model used."""
    comparison = state["comparison"]
    if not comparison.student_ran:
        raise CheckFailed(f"your {capstone.who} did not run inside the model as expected "
                          f"({comparison.student_calls} calls in one forward)")


def check_logits(capstone: Capstone, state: Dict[str, Any], course: Any, why: Callable[[], Any]) -> None:
    """The model's next-token logits are unchanged by the swap (within `[model] logits_atol`)."""
    comparison = state["comparison"]
    gap = comparison.logits_max_abs_diff
    if not gap <= course.model["logits_atol"]:  # NaN fails too
        nxt = comparison.next_token
        raise CheckFailed(f"with your {capstone.who} as block {comparison.layer_idx}'s {capstone.replaced} the "
                          f"model's logits move by up to {gap:.3g}; next-token KL {nxt['kl'][0]:.3g}, top-1 "
                          f"agreement {nxt['top1_agreement'][0]:.0%}, top-5 {nxt['top5_agreement'][0]:.0%}",
                          diagnose=why)


def check_gradients(capstone: Capstone, state: Dict[str, Any], submission: Any, course: Any, checker: Any,
                    why: Callable[[], Any]) -> None:
    """Gradients through the student's module reach its weights, are finite and equal production's
    (relative gap of the whole module's gradient, within `[model] grads_rtol`), graded once the model's
    logits are right (unless the course turned `values_first` off)."""
    outputs_right = state["comparison"].logits_max_abs_diff <= course.model["logits_atol"]  # False for NaN
    if course.values_first and not outputs_right:
        raise CheckFailed(f"gradients are graded once the model's outputs are right; with your {capstone.who} "
                          f"they move by up to {state['comparison'].logits_max_abs_diff:.3g}",
                          "fix the values first (see the model.logits check)", diagnose=why)
    model, tokenizer = state["model"], state["tokenizer"]
    layer = int(course.model["layer"])
    block = swap.gpt2_blocks(model)[layer]
    params: List[Any] = list((block.attn if capstone.target == "attn" else block).parameters())
    ids = tokenizer(course.model["prompt"], return_tensors="pt")["input_ids"].to(model.device)
    expected = swap.gradients(model, ids, params)
    student_model, _ = swap.swap_module(model, layer, capstone.target, capstone.forward(submission), capstone.who)
    try:
        got = swap.gradients(student_model, ids, params)
    except ModelIntegrationError as error:
        raise CheckFailed(str(error), error_hint(capstone, error)) from None
    finally:
        del student_model
    if any(g is None for g in got):
        raise checker.no_gradient(submission, f"no gradient reaches the block's weights through your {capstone.who}")
    flat_got, flat_expected = torch.cat([g.flatten() for g in got]), torch.cat([e.flatten() for e in expected])
    if not bool(torch.isfinite(flat_got).all()):
        raise CheckFailed(f"gradients through your {capstone.who} contain {int((~torch.isfinite(flat_got)).sum())} "
                          "NaN/inf value(s)", "no operation whose gradient is NaN where its value is fine "
                          "(sqrt or log of 0, 0 * inf); keep every step a differentiable torch operation")
    gap = float((flat_got - flat_expected).norm() / flat_expected.norm().clamp_min(1e-12))
    if not gap <= course.model["grads_rtol"]:  # NaN fails too
        message = f"gradients through your {capstone.who} differ from production's by {gap:.3g} (relative)"
        if outputs_right:
            raise checker.no_gradient(submission, message + ", while the model's outputs are right")
        raise CheckFailed(message, "keep every step a differentiable torch operation", diagnose=why)
