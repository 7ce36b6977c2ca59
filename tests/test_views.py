"""Classroom and Gradescope formats are faithful views of the report."""
from __future__ import annotations

import base64
import json

from autograder import views
from tests.grading_helpers import SUBMISSIONS, grade_quick


def test_views_carry_partial_credit_and_feedback(tmp_path):
    document = grade_quick(SUBMISSIONS / "buggy_mask_ignored.py", tmp_path)
    assert 0 < document["score"] < document["max_score"]

    line = views.classroom_output(document)
    assert line.startswith("result=")
    payload = json.loads(base64.b64decode(line[len("result="):]))
    assert payload["version"] == 1 and payload["status"] == "fail"
    assert payload["max_score"] == document["max_score"]
    assert sum(t["score"] for t in payload["tests"]) == document["score"]
    failing = [t for t in payload["tests"] if t["status"] == "fail"]
    assert any("mask" in t["message"] for t in failing)

    gradescope = views.gradescope(document)
    assert gradescope["score"] == document["score"]
    assert sum(t["max_score"] for t in gradescope["tests"]) == document["max_score"]
    assert "softmax" in gradescope["output"]
