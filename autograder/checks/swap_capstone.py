"""The capstone of an assignment whose function is a whole module of GPT-2 (`multihead`: block L's
attention module; `block`: block L): on the model `model_section` chooses (distilgpt2, else the built-in
model; not graded without any), swap the module in a copy, compare with production once per grading run
(`metrics.model`, heatmaps when the module returns attention weights), and the checks every such
capstone shares: the code really ran, the logits, the gradients.

An assignment's `checks/test_model.py` binds these to its swap with a `Capstone`.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List

import torch

from autograder.checks import model_section
from autograder.feedback import CheckFailed
from autograder.model import compare, swap
from autograder.model.surgery import ModelIntegrationError


@dataclass(frozen=True)
class Capstone:
    """How a submission becomes a module: `target` "attn" or "block", `replaced` as the report says it
    ("attention module", "block"), `forward(submission)` the `swap.StudentForward`, `who` its name in
    messages, `inside(model)` what the student's function receives inside that model (the error hint;
    model None: distilgpt2's sizes)."""

    target: str
    replaced: str
    forward: Callable[[Any], swap.StudentForward]
    who: str
    inside: Callable[[Any], str]


def _compare(capstone: Capstone, grading: Any, submission: Any, state: Dict[str, Any]) -> swap.SwapComparison:
    """The run's one comparison: production against a copy with the student's module swapped in."""
    settings = grading.config.model
    model, tokenizer = state["model"], state["tokenizer"]
    layer = int(settings["layer"])
    student_model, record = swap.swap_module(model, layer, capstone.target, capstone.forward(submission),
                                             capstone.who)
    try:
        return swap.compare_swap(model, tokenizer, student_model, record, settings["prompt"], layer,
                                 capstone.replaced, int(settings["continuation_tokens"]))
    finally:
        del student_model


def error_hint(capstone: Capstone, error: Exception, model: Any) -> str:
    """The hint for a failure inside the model: the worker's own (a missing function, a hang, a crash), else
    what the student's function receives inside `model` (None: distilgpt2's sizes)."""
    return model_section.worker_hint(error) or capstone.inside(model)


@contextmanager
def model_run(capstone: Capstone, grading: Any, submission: Any) -> Iterator[Dict[str, Any]]:
    """The run's model state for one check (`model_section.model_run`: the shared model choice, not graded
    without a model)."""
    with model_section.model_run(grading, functools.partial(_compare, capstone, grading, submission),
                                 lambda error, state: error_hint(capstone, error, state.get("model"))) as state:
        yield state


def why(checker: Any, op: str, args: Any, submission: Any) -> Callable[[], Any]:
    """A deferred diagnosis of `op` on model-shaped inputs `args` (a causal mask), to name the mistake behind
    a capstone failure; None where the call itself fails (its failure already says enough)."""
    def run() -> Any:
        try:
            actual = submission.call(op, *args)
        except Exception:  # noqa: BLE001 - the failure already says enough
            return None
        return checker.diagnoser(op, args, actual)()

    return run


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
    expected = compare.production(model, ("gradients", capstone.target, layer, str(ids.tolist())),
                                  lambda: swap.gradients(model, ids, params))
    student_model, _ = swap.swap_module(model, layer, capstone.target, capstone.forward(submission), capstone.who)
    try:
        got = swap.gradients(student_model, ids, params)
    except ModelIntegrationError as error:
        raise CheckFailed(str(error), error_hint(capstone, error, model)) from None
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
