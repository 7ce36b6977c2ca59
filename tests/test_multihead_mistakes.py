"""The multihead mistake catalogue against student_submissions/multihead/ (in-process, float64).

Every correct*.py equals the reference on every function; every buggy_<id>.py is wrong in the function
where <id> lives, reproduced there by <id>'s rule (through the composed multi_head_attention as well),
and right or explained by that same rule everywhere else.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import torch

from autograder.assignments.multihead.contract import ASSIGNMENT
from autograder.assignments.multihead.mistakes import CATALOGUE
from reference import multihead as ref
from tests.catalogue_helpers import SUBMISSIONS, load, mistake_of, outputs, raised, same

FOLDER = SUBMISSIONS / "multihead"
CORRECT = sorted(FOLDER.glob("correct*.py"))
BUGGY = sorted(FOLDER.glob("buggy_*.py"))
FUNCTIONS = ASSIGNMENT.function_names
BY_ID = {m.id: (m, f) for f, rules in CATALOGUE.rules.items() for m, _ in rules}


def _inputs(batch: Tuple[int, ...], seq: int, d_model: int, n_heads: int, mask: str, seed: int) -> Dict[str, Dict[str, Any]]:
    """Named inputs of every function for one problem."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, seq, d_model, generator=g, dtype=torch.float64)
    W = [torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / math.sqrt(d_model) for _ in range(4)]
    masks = {"none": None, "causal": ref.causal_mask(seq),
             "batched": (torch.rand(*batch[:1], 1, seq, seq, generator=g) < 0.5) | torch.eye(seq, dtype=torch.bool)}
    d_head = d_model // n_heads
    return {
        "split_heads": {"x": x, "n_heads": n_heads},
        "merge_heads": {"x": torch.randn(*batch, n_heads, seq, d_head, generator=g, dtype=torch.float64)},
        "causal_mask": {"seq_len": seq},
        "multi_head_attention": dict(x=x, W_q=W[0], W_k=W[1], W_v=W[2], W_o=W[3], n_heads=n_heads, mask=masks[mask]),
    }


CASES = {
    "distilgpt2": _inputs((1,), 6, 768, 12, "causal", 1),
    "batched_mask": _inputs((2,), 5, 24, 4, "batched", 2),
    "two_batch_dims": _inputs((2, 3), 4, 12, 3, "causal", 3),
    "unbatched": _inputs((), 7, 16, 2, "none", 4),
}


def _reference(function: str, inputs: Dict[str, Any]) -> Any:
    return getattr(ref, function)(**inputs)


def _student(module: Any, function: str, inputs: Dict[str, Any]) -> Tuple[bool, Any]:
    """(raised?, output or (type, message))."""
    error = raised(lambda: getattr(module, function)(**inputs))
    return (True, error) if error else (False, getattr(module, function)(**inputs))


def _explained(function: str, inputs: Dict[str, Any], mistake_id: str, raised_: bool, got: Any) -> bool:
    """Whether the named mistake's rule (own or lifted) reproduces got (an output, or the error raised)."""
    rules = [r for m, r in CATALOGUE.candidates(function) if m.id == mistake_id]
    if raised_:
        return any(raised(lambda: list(r(**inputs))) == got for r in rules)
    return any(same(got, candidate) for r in rules for candidate in outputs(r, inputs))


def test_catalogue_has_the_issue_mistakes():
    required = {"split_without_transpose", "merge_without_transpose", "scale_by_sqrt_d_model",
                "causal_mask_excludes_diagonal", "causal_mask_one_future_token", "mask_not_broadcast_over_heads",
                "output_projection_forgotten", "interleaved_heads", "softmax_wrong_axis"}
    assert required <= set(BY_ID)
    ids = [m.id for m in CATALOGUE.mistakes]
    assert len(ids) == len(set(ids)) and set(BY_ID) <= set(ids)  # unique ids, every rule's mistake listed
    assert {path.stem for path in BUGGY} == {f"buggy_{i}" for i in BY_ID}  # one example file per mistake


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
@pytest.mark.parametrize("case", CASES)
def test_correct_submissions_match_the_reference(path: Path, case: str):
    module = load(path)
    for function in FUNCTIONS:
        inputs = CASES[case][function]
        failed, got = _student(module, function, inputs)
        assert not failed, (function, got)
        assert same(got, _reference(function, inputs)), function
        for m, rule in CATALOGUE.candidates(function):  # a right answer matches no mistake
            assert not any(same(got, c) for c in outputs(rule, inputs)), (function, m.id)


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_buggy_submission_is_its_mistake(path: Path):
    mistake, home = BY_ID[mistake_of(path)]
    module = load(path)
    wrong_at_home = False
    for case, calls in CASES.items():
        for function in FUNCTIONS:
            inputs = calls[function]
            failed, got = _student(module, function, inputs)
            if not failed and same(got, _reference(function, inputs)):
                continue
            assert _explained(function, inputs, mistake.id, failed, got), (case, function)
            wrong_at_home |= function == home
    assert wrong_at_home, f"{path.name} is never wrong in {home}"


def test_rules_differ_from_the_reference_on_the_example():
    """Every rule changes the answer on distilgpt2's shapes with a causal mask (no rule is a no-op)."""
    for function in FUNCTIONS:
        rules = CATALOGUE.candidates(function)
        inputs = CASES["distilgpt2"][function]
        for m, rule in rules:
            got = outputs(rule, inputs)
            assert not any(same(c, _reference(function, inputs)) for c in got), (function, m.id)
