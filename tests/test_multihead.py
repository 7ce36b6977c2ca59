"""The `multihead` assignment graded end to end: every catalogued mistake loses points where it lives and
is named by its hint; the three correct styles get full marks, the model section included."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.assignment_grading import assert_is_its_mistake, folder, grade_file
from tests.model_fixtures import gpt2_dir  # noqa: F401 - fixture

ASSIGNMENT = "multihead"
CORRECT = sorted(folder(ASSIGNMENT).glob("correct*.py"))
BUGGY = sorted(folder(ASSIGNMENT).glob("buggy_*.py"))


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_mistake_loses_points_where_it_lives_and_is_named(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path, ASSIGNMENT)
    assert document["assignment"] == ASSIGNMENT
    assert_is_its_mistake(document, ASSIGNMENT, path)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_styles_get_full_marks_with_the_model(path: Path, tmp_path: Path, gpt2_dir):  # noqa: F811
    document = grade_file(path, tmp_path, ASSIGNMENT, model_dir=gpt2_dir)
    assert document["max_score"] == 100
    assert document["score"] == 100, [(c["id"], c["message"]) for c in document["checks"] if c["status"] != "passed"]
    model = document["metrics"]["model"]
    assert model["student_ran"] and model["replaced"] == "attention module"
    assert model["logits_max_abs_diff"] < 1e-4
    assert any(a["kind"] == "heatmap" for a in document["artifacts"])


def test_the_template_scores_nothing(tmp_path: Path):
    document = grade_file(folder(ASSIGNMENT) / "template.py", tmp_path, ASSIGNMENT)
    assert document["score"] == 0


def test_the_model_section_catches_a_wrong_attention(tmp_path: Path, gpt2_dir):  # noqa: F811
    """Scaling by sqrt(d_model) inside GPT-2: weights, logits and gradients all move, and the mistake is named."""
    document = grade_file(folder(ASSIGNMENT) / "buggy_scale_by_sqrt_d_model.py", tmp_path, ASSIGNMENT, model_dir=gpt2_dir)
    model = {c["id"]: c for c in document["checks"] if c["section"] == "model"}
    assert model["model.runs"]["status"] == "passed"
    for check in ("model.attention_weights", "model.logits", "model.gradients"):
        assert model[check]["status"] == "failed" and model[check]["mistake"] == "scale_by_sqrt_d_model", check
