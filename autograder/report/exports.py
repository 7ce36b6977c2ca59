"""Other tools' formats, each a view of the one JSON report (never a second source of truth).

Every string of every view passes through the neutraliser of the reader it reaches, whatever the worker
or a hand-made report put there: GitHub Classroom's reporter prints its payload into a workflow log,
where a line can be a runner command (`neutralise.workflow`); Gradescope renders `output` as HTML unless
told it is text (`output_format: "text"` everywhere). Scores are finite and rounded to two decimals.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any, Dict, List

from autograder.report import neutralise
from autograder.report.document import failing_groups

_CLASSROOM_STATUS = {"passed": "pass", "failed": "fail", "error": "error", "not_graded": "error"}
GRADESCOPE_VISIBILITIES = ("after_due_date", "after_published", "hidden")
_RELEASED = {"after_due_date": "after the due date", "after_published": "when grades are published",
             "hidden": "never (hidden by the course)"}

def log_safe_json(value: Any) -> str:
    """Indented strict JSON that stays data when printed into a CI log: its lines start with whitespace, a
    quote or a bracket (never '::'), and '##[', which can only occur inside a string, is written '#\\u0023['
    (the same string once parsed)."""
    return json.dumps(value, indent=2, allow_nan=False).replace("##[", "#\\u0023[") + "\n"


def _neutralised(value: Any) -> Any:
    """Every string in a JSON-like value (keys included) through workflow_commands."""
    if isinstance(value, str):
        return neutralise.workflow(value)
    if isinstance(value, dict):
        return {neutralise.workflow(k): _neutralised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutralised(v) for v in value]
    return value


def points(value: Any) -> float:
    """A score as the services store it: finite, at least 0, rounded to two decimals (NaN counts 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return round(number, 2) if math.isfinite(number) and number > 0 else 0.0


def _shown(document: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The checks another tool lists: all but those not graded and left out of the maximum (their section's
    one not_graded line says why); not graded checks kept in the maximum show as errors saying so."""
    return [c for c in document["checks"] if c["status"] != "not_graded" or points(c["max_score"]) > 0]


def _message(check: Dict[str, Any], hint_sep: str) -> str:
    if check.get("status") == "not_graded":
        return f"not graded on this machine (not your code): {check.get('message') or ''}"
    return str(check.get("message") or "") + (f"{hint_sep}Hint: {check['hint']}" if check.get("hint") else "")


def _not_graded_lines(document: Dict[str, Any]) -> List[str]:
    """One line per section this machine could not grade (the report's `not_graded`)."""
    return [f"Not graded: {m['section']} ({m['checks']} checks, "
            f"{'kept in the maximum: grade incomplete' if m['counted'] else 'not counted'}): {m['reason']}"
            for m in document.get("not_graded", [])]


def classroom(document: Dict[str, Any]) -> Dict[str, Any]:
    """GitHub Classroom's autograding-grading-reporter payload: one test per check, partial credit.

    The reporter's notice `Points <sum of tests[].score>/<max_score>` is the number Classroom records;
    max_score is the sum of the tests' (rounded) maxima, so the two always add up."""
    tests = [{
        "name": check["id"],
        "status": _CLASSROOM_STATUS.get(check["status"], "error"),
        "score": points(check["score"]),
        "max_score": points(check["max_score"]),
        "message": _message(check, " "),
        "test_code": "",
        "filename": document["submission"]["name"],
        "line_no": 0,
        "execution_time": f"{points(check.get('duration_s')):.2f}s",
    } for check in _shown(document)]
    max_score = points(sum(t["max_score"] for t in tests))
    score = points(sum(t["score"] for t in tests))
    status = "pass" if tests and score >= max_score and document.get("status") != "incomplete" else "fail"
    return _neutralised({"version": 1, "status": status, "max_score": max_score, "tests": tests})


def classroom_output(document: Dict[str, Any]) -> str:
    """The `result=<base64>` line a workflow step appends to $GITHUB_OUTPUT."""
    payload = json.dumps(classroom(document), allow_nan=False).encode()
    return "result=" + base64.b64encode(payload).decode()


def gradescope(document: Dict[str, Any], hidden_visibility: str = "after_published") -> Dict[str, Any]:
    """Gradescope's results.json: per-check tests with points, the teaching feedback as plain text.

    A hidden check's test gets `hidden_visibility` (after_due_date, after_published, or hidden, which
    also hides the total from students); the top-level output, which students see at once, never names
    a hidden check nor says whether one failed."""
    if hidden_visibility not in GRADESCOPE_VISIBILITIES:
        raise ValueError(f"gradescope visibility must be one of {GRADESCOPE_VISIBILITIES}, not {hidden_visibility!r}")
    checks = _shown(document)
    visible = [c for c in checks if not c.get("hidden")]
    load_error = document["submission"].get("load_error")
    lines: List[str] = [f"Could not load your submission: {load_error}"] if load_error else []
    lines += [f"[{', '.join(c['id'] for c in group)}] {_message(group[0], ' ')}"
              for group in failing_groups(visible)]
    lines += _not_graded_lines(document)
    if not lines:
        lines.append("All visible checks passed.")
    hidden = len(checks) - len(visible)
    if hidden:
        lines.append(f"{hidden} more check(s) are hidden: their results are shown {_RELEASED[hidden_visibility]}.")
    tests = [{
        "name": check["id"],
        "number": str(index),
        "score": points(check["score"]),
        "max_score": points(check["max_score"]),
        "status": "passed" if check["status"] == "passed" else "failed",
        "output": _message(check, "\n"),
        "output_format": "text",
        "tags": [str(check.get("section", ""))],
        "visibility": hidden_visibility if check.get("hidden") else "visible",
    } for index, check in enumerate(checks, start=1)]
    return {
        "score": points(sum(t["score"] for t in tests)),
        "execution_time": round(points(document.get("timing", {}).get("duration_s"))),
        "output": "\n".join(lines),
        "output_format": "text",
        "test_output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"autograder": document.get("environment", {}).get("autograder"),
                       "file": document["submission"].get("name"), "sha256": document["submission"].get("sha256"),
                       "status": document.get("status")},
        "tests": tests,
    }


def gradescope_json(document: Dict[str, Any], hidden_visibility: str = "after_published") -> str:
    """results.json as strict JSON (no NaN or Infinity, which Gradescope cannot read), safe in a log."""
    return log_safe_json(gradescope(document, hidden_visibility))
