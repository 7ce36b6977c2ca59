"""The `tinygpt` assignment graded end to end: each catalogued mistake loses points in the forward
section and is named; the correct styles get full marks on it; the milestone (needs ../shared/data's
Tiny Shakespeare; skipped without): the reference TinyGPT passes within the default budget, a TinyGPT
without the causal mask fails it."""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from autograder.assignments import registry
from autograder.assignments.tinygpt.mistakes import CATALOGUE
from autograder.grade import grade
from tests.assignment_grading import assert_is_its_mistake, folder
from tests.grading_helpers import fast_config

ASSIGNMENT = "tinygpt"
CORRECT = sorted(folder(ASSIGNMENT).glob("correct*.py"))
BUGGY = sorted(folder(ASSIGNMENT).glob("buggy_*.py"))
BY_ID = {m.id for rules in CATALOGUE.rules.values() for m, _ in rules}
REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("AUTOGRADER_TINYSHAKESPEARE", REPO.parent / "shared" / "data" / "tinyshakespeare.txt"))
needs_corpus = pytest.mark.skipif(not CORPUS.is_file(), reason=f"Tiny Shakespeare not at {CORPUS}")


def grade_file(path: Path, out_dir: Path, corpus: Optional[Path] = None) -> Dict[str, Any]:
    """Grade with the fast config; the milestone only with a corpus (default budget), else not collected
    (a config whose corpus file is missing: the check is skipped, so the tests deselect it instead)."""
    config = out_dir / "tinygpt.toml"
    text = fast_config(max_examples=3)
    if corpus is not None:
        text += f"[milestone]\ncorpus = {json.dumps(str(corpus))}\n"
    config.write_text(text)
    extra = () if corpus is not None else ("-k", "not milestone")
    return grade(path, out_dir / f"{path.stem}.json", config_file=config, echo=False, sandbox=False,
                 assignment=ASSIGNMENT, extra=extra)


def test_points_sum_to_100_and_every_mistake_has_an_example():
    points = tomllib.loads(registry.get(ASSIGNMENT).defaults_file.read_text())["points"]
    assert sum(points.values()) == 100
    assert {p.stem for p in BUGGY} == {f"buggy_{i}" for i in BY_ID}


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_mistake_loses_points_where_it_lives_and_is_named(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path)
    assert_is_its_mistake(document, ASSIGNMENT, path)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_styles_pass_every_forward_check(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path)
    failed = [(c["id"], c["message"]) for c in document["checks"] if c["status"] != "passed"]
    assert not failed and document["score"] == 60


def test_the_template_scores_nothing(tmp_path: Path):
    assert grade_file(folder(ASSIGNMENT) / "template.py", tmp_path)["score"] == 0


@needs_corpus
def test_the_reference_tinygpt_passes_the_milestone_within_the_default_budget(tmp_path: Path):
    document = grade_file(folder(ASSIGNMENT) / "correct.py", tmp_path, corpus=CORPUS)
    milestone = document["metrics"]["milestone"]
    assert document["score"] == 100, [(c["id"], c["message"]) for c in document["checks"] if c["status"] != "passed"]
    assert milestone["validation_loss"] <= milestone["gate"] < milestone["bigram_baseline"] - 0.2
    assert milestone["sample"].startswith("ROMEO:") and len(milestone["sample"]) > 100


@needs_corpus
def test_a_tinygpt_without_the_causal_mask_fails_the_milestone(tmp_path: Path):
    document = grade_file(folder(ASSIGNMENT) / "buggy_no_causal_mask.py", tmp_path, corpus=CORPUS)
    check = next(c for c in document["checks"] if c["id"] == "milestone.validation_loss")
    assert check["status"] == "failed" and document["metrics"]["milestone"]["validation_loss"] > 2.48


@needs_corpus
def test_a_tinygpt_whose_training_diverges_fails_the_milestone_with_the_step(tmp_path: Path):
    """NaN logits make NaN weights from the first step: the milestone fails naming the step (before, the
    sample drawn from NaN probabilities raised, and the check was an internal error)."""
    source = (folder(ASSIGNMENT) / "correct.py").read_text()
    old = '    return x @ params["wte"].transpose(0, 1)'
    assert old in source
    path = tmp_path / "diverges.py"
    path.write_text(source.replace(old, old + ' * float("nan")'))
    document = grade_file(path, tmp_path, corpus=CORPUS)
    check = next(c for c in document["checks"] if c["id"] == "milestone.validation_loss")
    assert check["status"] == "failed" and "diverged at step 1 " in check["message"], check
