"""The multihead and block capstones choose their model as the attention capstone does (checks/model_section.py):
offline without a cache the built-in model runs (correct: full marks; a capstone mistake still loses its
model points), and with no model at all their model checks are not graded, never points lost."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from autograder.checks import model_section
from autograder.grade import grade
from autograder.lm import BUILTIN_DIR
from tests.assignment_grading import folder
from tests.grading_helpers import fast_config

MODEL_CHECKS = {"multihead": {"model.runs", "model.attention_weights", "model.logits", "model.gradients"},
                "block": {"model.runs", "model.block_output", "model.logits", "model.gradients"}}
BUGGY = {"multihead": "scale_by_sqrt_d_model", "block": "post_ln"}


@pytest.fixture(autouse=True)
def offline_without_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new user's machine: no hub, an empty model cache; each test loads its own model."""
    monkeypatch.setenv("AUTOGRADER_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_section.forget()
    yield
    model_section.forget()


def grade_offline(assignment: str, name: str, out: Path, model_config: str = "") -> dict:
    """Grade the example `name` of `assignment` with the model section on, distilgpt2 asked for."""
    config = out / "autograder.toml"
    config.write_text(fast_config(max_examples=3).replace("enabled = false", "enabled = true")
                      + model_config)
    path = folder(assignment) / f"{name}.py"
    return grade(path, out / f"{path.stem}.json", config_file=config, echo=False, sandbox=False,
                 assignment=assignment, model="distilgpt2")


def model_checks(document: dict) -> dict:
    return {c["id"]: c for c in document["checks"] if c["section"] == "model"}


@pytest.mark.parametrize("assignment", sorted(MODEL_CHECKS))
def test_correct_gets_full_marks_on_the_builtin_model(assignment: str, tmp_path: Path):
    document = grade_offline(assignment, "correct", tmp_path)
    checks = model_checks(document)
    assert set(checks) == MODEL_CHECKS[assignment] and {c["status"] for c in checks.values()} == {"passed"}
    assert document["score"] == document["max_score"] == 100, document["feedback"]
    model = document["environment"]["model"]
    assert model["name"] == "builtin" and Path(model["source"]) == BUILTIN_DIR
    assert "distilgpt2 is not cached" in model["why"] and "built-in model ran instead" in model["why"]
    metrics = document["metrics"]["model"]
    assert metrics["student_ran"] and metrics["heads"] == 2 and metrics["logits_max_abs_diff"] < 1e-4
    heatmaps = [a for a in document.get("artifacts", []) if a["kind"] == "heatmap"]
    assert len(heatmaps) == (2 if assignment == "multihead" else 0)  # the block returns no attention weights


@pytest.mark.parametrize("assignment", sorted(BUGGY))
def test_a_capstone_mistake_loses_model_points_on_the_builtin_model(assignment: str, tmp_path: Path):
    mistake = BUGGY[assignment]
    document = grade_offline(assignment, f"buggy_{mistake}", tmp_path)
    assert document["environment"]["model"]["name"] == "builtin"
    checks = model_checks(document)
    assert checks["model.runs"]["status"] == "passed"
    for check in MODEL_CHECKS[assignment] - {"model.runs"}:
        assert checks[check]["status"] == "failed" and checks[check]["mistake"] == mistake, check
        assert checks[check]["score"] < checks[check]["max_score"]


@pytest.mark.parametrize("assignment", sorted(MODEL_CHECKS))
def test_no_model_at_all_is_not_graded(assignment: str, tmp_path: Path):
    document = grade_offline(assignment, "correct", tmp_path, "fallback = false\n")
    checks = model_checks(document)
    assert set(checks) == MODEL_CHECKS[assignment] and {c["status"] for c in checks.values()} == {"not_graded"}
    assert document["score"] == document["max_score"] < 100 and document["status"] == "graded"
    assert document["feedback"] == []  # never under "What to fix"
    [missing] = document["not_graded"]
    assert missing["section"] == "model" and missing["checks"] == len(checks) and not missing["counted"]
    assert "distilgpt2 is not cached" in missing["reason"] and "built-in" not in missing["reason"]
    assert document["environment"]["model"] == {"name": "distilgpt2", "source": None, "why": missing["reason"]}


def test_the_hint_for_a_failure_inside_the_model_gives_that_models_sizes():
    from autograder.assignments.block.checks import test_model as block
    from autograder.assignments.multihead.checks import test_model as multihead

    model, _, _ = model_section.load("builtin", True)
    inside_attention, inside_block = multihead.CAPSTONE.inside(model), block.CAPSTONE.inside(model)
    assert "x [batch, seq, 130]" in inside_attention and "2 heads of 65" in inside_attention
    assert "x [batch, seq, 128]" in inside_block and "d_ff 512" in inside_block
    assert "12 heads of 65" in multihead.CAPSTONE.inside(None) and "d_ff 3072" in block.CAPSTONE.inside(None)
