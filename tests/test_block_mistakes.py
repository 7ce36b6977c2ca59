"""The block mistake catalogue against student_submissions/block/ (in-process, float64).

Every correct*.py equals the reference on every function; every buggy_<id>.py is wrong in the function
where <id> lives, reproduced there by <id>'s rule, and right or explained by that rule (lifted into the
functions built on it) everywhere else.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import torch

from autograder.assignments.block.contract import ASSIGNMENT
from autograder.assignments.block.mistakes import CATALOGUE
from reference import block as ref
from reference.multihead import causal_mask
from tests.catalogue_helpers import SUBMISSIONS, load, mistake_of, outputs, raised, random_params, same

FOLDER = SUBMISSIONS / "block"
CORRECT = sorted(FOLDER.glob("correct*.py"))
BUGGY = sorted(FOLDER.glob("buggy_*.py"))
FUNCTIONS = ASSIGNMENT.function_names
BY_ID = {m.id: (m, f) for f, rules in CATALOGUE.rules.items() for m, _ in rules}


def _inputs(batch: Tuple[int, ...], seq: int, d_model: int, n_heads: int, mask: str, seed: int) -> Dict[str, Dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    params = random_params(d_model, 4 * d_model, g)
    x = torch.randn(*batch, seq, d_model, generator=g, dtype=torch.float64)
    # layer norm: near-zero mean rows of small variance, where eps placement shows
    ln_x = torch.randn(*batch, seq, d_model, generator=g, dtype=torch.float64) * 3e-3
    masks = {"none": None, "causal": causal_mask(seq),
             "batched": (torch.rand(*batch[:1], 1, seq, seq, generator=g) < 0.5) | torch.eye(seq, dtype=torch.bool)}
    return {
        "layer_norm": {"x": ln_x, "gamma": params["ln_1.gamma"], "beta": params["ln_1.beta"], "eps": 1e-5},
        "gelu": {"x": 3 * x},
        "feed_forward": {"x": x, "W_1": params["mlp.W_1"], "b_1": params["mlp.b_1"], "W_2": params["mlp.W_2"],
                         "b_2": params["mlp.b_2"]},
        "transformer_block": {"x": x, "params": params, "n_heads": n_heads, "mask": masks[mask]},
    }


CASES = {
    "distilgpt2": _inputs((1,), 6, 768, 12, "causal", 1),
    "batched_mask": _inputs((2,), 5, 24, 4, "batched", 2),
    "two_batch_dims": _inputs((2, 3), 4, 12, 3, "causal", 3),
    "unbatched": _inputs((), 7, 16, 2, "none", 4),
}


def _student(module: Any, function: str, inputs: Dict[str, Any]) -> Tuple[bool, Any]:
    error = raised(lambda: getattr(module, function)(**inputs))
    return (True, error) if error else (False, getattr(module, function)(**inputs))


def _explained(function: str, inputs: Dict[str, Any], mistake_id: str, raised_: bool, got: Any) -> bool:
    rules = [r for m, r in CATALOGUE.candidates(function) if m.id == mistake_id]
    if raised_:
        return any(raised(lambda: list(r(**inputs))) == got for r in rules)
    return any(same(got, candidate) for r in rules for candidate in outputs(r, inputs))


def test_catalogue_has_the_issue_mistakes():
    required = {"post_ln", "missing_residual", "unbiased_variance", "eps_outside_sqrt", "layer_norm_wrong_axis",
                "exact_gelu", "relu", "attention_biases_ignored", "mlp_residual_from_x"}
    assert required <= set(BY_ID)
    ids = [m.id for m in CATALOGUE.mistakes]
    assert len(ids) == len(set(ids)) and set(BY_ID) <= set(ids)  # unique ids, every rule's mistake listed
    assert {path.stem for path in BUGGY} == {f"buggy_{i}" for i in BY_ID}


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
@pytest.mark.parametrize("case", CASES)
def test_correct_submissions_match_the_reference(path: Path, case: str):
    module = load(path)
    for function in FUNCTIONS:
        inputs = CASES[case][function]
        failed, got = _student(module, function, inputs)
        assert not failed, (function, got)
        assert same(got, getattr(ref, function)(**inputs)), function
        for m, rule in CATALOGUE.candidates(function):
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
            if not failed and same(got, getattr(ref, function)(**inputs)):
                continue
            assert _explained(function, inputs, mistake.id, failed, got), (case, function)
            wrong_at_home |= function == home
    assert wrong_at_home, f"{path.name} is never wrong in {home}"


def test_rules_differ_from_the_reference_on_the_example():
    for function in FUNCTIONS:
        rules = CATALOGUE.candidates(function)
        inputs = CASES["distilgpt2"][function]
        for m, rule in rules:
            got = outputs(rule, inputs)
            assert got, (function, m.id)
            assert not any(same(c, getattr(ref, function)(**inputs)) for c in got), (function, m.id)
