"""Grading example files from the project's tests: one in-process grade per file, cached per session."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from autograder.grade import grade
from autograder.report import document as report_mod

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = REPO / "student_submissions"
CORRECT = SUBMISSIONS / "correct.py"


def fast_config(max_examples: int = 8, shrink: bool = False, assignment: Optional[str] = "attention") -> str:
    """A course config (autograder.toml) for the project's tests: fewer hypothesis examples than a real
    grade (the buggy files fail on the first examples anyway), short call limits, no model section, and by
    default no shrinking (it picks the example a message shows, never the score: test_grading checks that).
    `assignment`: the course's assignment, for files whose functions do not tell (empty, unparsable)."""
    course = f'assignment = "{assignment}"\n' if assignment else ""
    return (f"{course}[hypothesis]\nmax_examples = {max_examples}\nshrink = {str(shrink).lower()}\n"
            "[timeouts]\ncall_s = 3\nimport_s = 20\n[model]\nenabled = false\n")


FAST_CONFIG = fast_config()


def grade_quick(path: Path, out_dir: Path, **kwargs: Any) -> Dict[str, Any]:
    """Grade `path` with the fast config; validate the report against the schema; return it."""
    config = out_dir / "autograder.toml"
    if not config.exists():
        config.write_text(FAST_CONFIG)
    report_path = out_dir / f"{Path(path).stem}.json"
    document = grade(Path(path), report_path, config_file=config, echo=False, **kwargs)
    on_disk = json.loads(report_path.read_text())
    report_mod.validate(on_disk)
    return document


def by_id(document: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {c["id"]: c for c in document["checks"]}


def passed(document: Dict[str, Any]) -> Set[str]:
    return {c["id"] for c in document["checks"] if c["status"] == "passed"}


def lost(document: Dict[str, Any]) -> List[str]:
    return sorted(c["id"] for c in document["checks"] if c["status"] != "passed")


def variant(tmp: Path, name: str, source: str) -> Path:
    """Write a submission file named `name` into tmp and return its path."""
    path = tmp / name
    path.write_text(source) if isinstance(source, str) else path.write_bytes(source)
    return path
