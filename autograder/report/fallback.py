"""The report of a submission that produced none: every check of the course's assignment at 0 points.

The services a course grades in record nothing without a result (GitHub Classroom's reporter prints no
notice, Gradescope says "the autograder failed to execute correctly"), so when the file is missing or
grading crashed before a report was written, the exports still speak: a 0 out of the course's maximum.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

from autograder.assignments import registry
from autograder.assignments.spec import Assignment
from autograder.config import Config
from autograder.report import document as report_mod


def graded_check_ids(config: Config, assignment: Assignment) -> List[str]:
    """The ids of the checks a grade of `assignment` runs under `config`, by section (the plugin leaves the
    capstone out when the model is disabled; within a section, a real report lists them in the order
    pytest collects)."""
    sections = [s for s in assignment.sections if s != assignment.capstone or config.model["enabled"]]
    ids = list(config.data["points"])
    return [cid for section in sections for cid in ids if cid.split(".")[0] == section]


def zero_report(reason: str, config: Config, name: str = "", *, assignment: Optional[Assignment] = None,
                ids: Optional[Sequence[str]] = None, sandboxed: bool = False, sha256: Optional[str] = None,
                model_name: Optional[str] = None, seconds: float = 0.0) -> Dict[str, Any]:
    """A valid report (status not_gradable) in which every check scores 0 with `reason` as its message: the
    checks `ids` (e.g. a warm-up report's, same ids in the same order), else those `assignment` (default: the
    config's) grades under the config (`graded_check_ids`). `name` is the file's path or name, `sha256` its
    hash when it is a file, `model_name` the model asked for (default: the config's), `seconds` how long the
    attempt took."""
    assignment = assignment or registry.get(str(config.data["assignment"]))
    ids = graded_check_ids(config, assignment) if ids is None else list(ids)
    checks = [report_mod.public_check({
        "id": cid, "section": cid.split(".")[0], "status": "error", "score": 0.0,
        "max_score": config.points(cid), "message": reason, "hint": None, "mistake": None,
        "duration_s": 0.0, "hidden": config.is_hidden(cid)}) for cid in ids]
    submission = {"path": name, "sha256": sha256, "functions": [], "load_error": reason, "output": ""}
    model = report_mod.model_entry(model_name or str(config.model["name"]), enabled=bool(config.model["enabled"]))
    env = report_mod.environment(config, sandboxed, [], model)
    return report_mod.assemble(checks, submission, env, time.time() - seconds, seconds, assignment=assignment)
