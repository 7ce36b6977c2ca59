"""The report of a submission that produced none: every check of the course's assignment at 0 points.

The services a course grades in record nothing without a result (GitHub Classroom's reporter prints no
notice, Gradescope says "the autograder failed to execute correctly"), so when the file is missing or
grading crashed before a report was written, the exports still speak: a 0 out of the course's maximum.
"""
from __future__ import annotations

import time
from typing import Any, Dict

from autograder.assignments import registry
from autograder.config import Config
from autograder.report import document as report_mod


def zero_report(reason: str, config: Config, name: str = "") -> Dict[str, Any]:
    """A valid report (status not_gradable) in which every check the config's assignment grades (its
    [points]; the capstone only when the model is enabled) scores 0 with `reason` as its message; `name` is
    the file's name."""
    assignment = registry.get(str(config.data["assignment"]))
    sections = [s for s in assignment.sections if s != assignment.capstone or config.model["enabled"]]
    ids = sorted((cid for cid in config.data["points"] if cid.split(".")[0] in sections),
                 key=lambda cid: sections.index(cid.split(".")[0]))
    checks = [report_mod.public_check({
        "id": cid, "section": cid.split(".")[0], "status": "error", "score": 0.0,
        "max_score": config.points(cid), "message": reason, "hint": None, "mistake": None,
        "duration_s": 0.0, "hidden": config.is_hidden(cid)}) for cid in ids]
    submission = {"path": name, "sha256": None, "functions": [], "load_error": reason, "output": ""}
    model = report_mod.model_entry(str(config.model["name"]), enabled=bool(config.model["enabled"]))
    env = report_mod.environment(config, False, [], model)
    return report_mod.assemble(checks, submission, env, time.time(), 0.0, assignment=assignment)
