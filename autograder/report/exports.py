"""Other tools' formats, each a view of the one JSON report (never a second source of truth)."""
from __future__ import annotations

import base64
import json
from typing import Any, Dict

_CLASSROOM_STATUS = {"passed": "pass", "failed": "fail", "error": "error"}


def classroom(document: Dict[str, Any]) -> Dict[str, Any]:
    """GitHub Classroom's autograding-grading-reporter payload: one test per check, partial credit."""
    tests = [{
        "name": check["id"],
        "status": _CLASSROOM_STATUS[check["status"]],
        "score": check["score"],
        "max_score": check["max_score"],
        "message": check["message"] + (f" Hint: {check['hint']}" if check.get("hint") else ""),
        "test_code": "",
        "filename": document["submission"]["name"],
        "line_no": 0,
        "execution_time": f"{check['duration_s']:.2f}s",
    } for check in document["checks"]]
    status = "pass" if document["score"] >= document["max_score"] else "fail"
    return {"version": 1, "status": status, "max_score": document["max_score"], "tests": tests}


def classroom_output(document: Dict[str, Any]) -> str:
    """The `result=<base64>` line a workflow step appends to $GITHUB_OUTPUT."""
    payload = json.dumps(classroom(document)).encode()
    return "result=" + base64.b64encode(payload).decode()


def gradescope(document: Dict[str, Any]) -> Dict[str, Any]:
    """Gradescope's results.json: per-check tests with points, the teaching feedback as output."""
    return {
        "score": document["score"],
        "output": "\n".join(document["feedback"]) or "All checks passed.",
        "tests": [{
            "name": check["id"],
            "score": check["score"],
            "max_score": check["max_score"],
            "status": "passed" if check["status"] == "passed" else "failed",
            "output": check["message"] + (f"\nHint: {check['hint']}" if check.get("hint") else ""),
            "visibility": "after_published" if check.get("hidden") else "visible",
        } for check in document["checks"]],
    }
