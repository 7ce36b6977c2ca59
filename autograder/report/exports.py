"""Other tools' formats, each a view of the one JSON report (never a second source of truth)."""
from __future__ import annotations

import base64
import json
from typing import Any, Dict

_CLASSROOM_STATUS = {"passed": "pass", "failed": "fail", "error": "error", "not_graded": "error"}


def _shown(document: Dict[str, Any]) -> list:
    """The checks another tool lists: all but those not graded and left out of the maximum (their section's
    one not_graded line says why); not graded checks kept in the maximum show as errors saying so."""
    return [c for c in document["checks"] if c["status"] != "not_graded" or c["max_score"] > 0]


def _message(check: Dict[str, Any], hint_sep: str) -> str:
    if check["status"] == "not_graded":
        return f"not graded on this machine (not your code): {check['message']}"
    return check["message"] + (f"{hint_sep}Hint: {check['hint']}" if check.get("hint") else "")


def _not_graded_lines(document: Dict[str, Any]) -> list:
    return [f"Not graded: {m['section']} ({m['checks']} checks, "
            f"{'kept in the maximum: grade incomplete' if m['counted'] else 'not counted'}): {m['reason']}"
            for m in document.get("not_graded", [])]


def classroom(document: Dict[str, Any]) -> Dict[str, Any]:
    """GitHub Classroom's autograding-grading-reporter payload: one test per check, partial credit."""
    tests = [{
        "name": check["id"],
        "status": _CLASSROOM_STATUS[check["status"]],
        "score": check["score"],
        "max_score": check["max_score"],
        "message": _message(check, " "),
        "test_code": "",
        "filename": document["submission"]["name"],
        "line_no": 0,
        "execution_time": f"{check['duration_s']:.2f}s",
    } for check in _shown(document)]
    status = "pass" if document["score"] >= document["max_score"] and document["status"] == "graded" else "fail"
    return {"version": 1, "status": status, "max_score": document["max_score"], "tests": tests}


def classroom_output(document: Dict[str, Any]) -> str:
    """The `result=<base64>` line a workflow step appends to $GITHUB_OUTPUT."""
    payload = json.dumps(classroom(document)).encode()
    return "result=" + base64.b64encode(payload).decode()


def gradescope(document: Dict[str, Any]) -> Dict[str, Any]:
    """Gradescope's results.json: per-check tests with points, the teaching feedback as output."""
    return {
        "score": document["score"],
        "output": "\n".join(document["feedback"] + _not_graded_lines(document)) or "All checks passed.",
        "tests": [{
            "name": check["id"],
            "score": check["score"],
            "max_score": check["max_score"],
            "status": "passed" if check["status"] == "passed" else "failed",
            "output": _message(check, "\n"),
            "visibility": "after_published" if check.get("hidden") else "visible",
        } for check in _shown(document)],
    }
