"""Grading a new assignment's example files end to end (shared by test_multihead.py and test_block.py).

Every buggy_<id>.py must lose points in the section where mistake <id> lives, with a check there that
names <id>, and no check may name another mistake; every correct*.py must get full marks, the model
section included (on the distilgpt2-shaped test model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from autograder.assignments import registry
from autograder.grade import grade
from tests.grading_helpers import SUBMISSIONS, fast_config


def grade_file(path: Path, out_dir: Path, assignment: str, model_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Grade path in-process with the fast config (few examples; the model section only with model_dir)."""
    config = out_dir / ("with-model.toml" if model_dir else "fast.toml")
    text = fast_config(max_examples=3)
    config.write_text(text.replace("enabled = false", "enabled = true") if model_dir else text)
    return grade(path, out_dir / f"{path.stem}.json", config_file=config, echo=False, sandbox=False,
                 assignment=assignment, model=str(model_dir) if model_dir else None)


def home_section(assignment: str, mistake_id: str) -> str:
    catalogue = registry.get(assignment).catalogue()
    return catalogue.lookup(mistake_id).section


def assert_is_its_mistake(document: Dict[str, Any], assignment: str, path: Path) -> None:
    mistake_id = path.stem.removeprefix("buggy_")
    section = home_section(assignment, mistake_id)
    lost = [c for c in document["checks"] if c["status"] != "passed"]
    assert {c["section"] for c in lost} >= {section}, f"{path.name} loses no points in {section}"
    assert any(c["section"] == section and c["mistake"] == mistake_id for c in lost), (
        f"no check of {section} names {mistake_id}: {[(c['id'], c['mistake']) for c in lost]}")
    named = {c["mistake"] for c in lost} - {None}
    assert named == {mistake_id}, f"{path.name} is also named {named - {mistake_id}}"
    hint = registry.get(assignment).catalogue().lookup(mistake_id).hint
    assert any(c["hint"] == hint for c in lost)


def folder(assignment: str) -> Path:
    return SUBMISSIONS / assignment
