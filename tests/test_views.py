"""Classroom and Gradescope formats are faithful views of the report."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from autograder.report import exports as views
from tests.grading_helpers import FAST_CONFIG, SUBMISSIONS, grade_quick


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """The report of a submission that loses some points, graded once for the module."""
    out = tmp_path_factory.mktemp("views")
    grade_quick(SUBMISSIONS / "buggy_mask_ignored.py", out)
    return out / "buggy_mask_ignored.json"


def test_views_carry_partial_credit_and_feedback(graded):
    document = json.loads(graded.read_text())
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


def test_export_command_writes_each_view_and_refuses_non_reports(graded, tmp_path, capsys):
    from autograder.cli import main

    report = graded
    document = json.loads(report.read_text())

    assert main(["export", str(report), "--format", "classroom"]) == 0
    assert capsys.readouterr().out == views.classroom_output(document) + "\n"
    out = tmp_path / "results" / "results.json"
    assert main(["export", str(report), "--format", "gradescope", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == views.gradescope(document)

    (tmp_path / "not_a_report.json").write_text('{"score": 1}')
    for bad in (tmp_path / "missing.json", tmp_path / "not_a_report.json"):
        assert main(["export", str(bad), "--format", "classroom"]) == 2
        assert "not a readable grading report" in capsys.readouterr().err


def test_pytest_prints_the_teaching_message_not_the_grader_traceback(tmp_path):
    """`pytest --submission` shows each lost check as its message and hint; a hidden one stays hidden."""
    import subprocess
    import sys

    config = tmp_path / "course.toml"
    config.write_text('hidden = ["scores.values"]\n' + FAST_CONFIG)
    run = subprocess.run([sys.executable, "-m", "pytest", "--submission", str(SUBMISSIONS / "buggy_no_scaling.py"),
                          "--grading-config", str(config), "--grade-json", str(tmp_path / "r.json"),
                          "-k", "scores", "-p", "no:cacheprovider"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 1, run.stdout[-2000:]
    failures = run.stdout.split("= FAILURES =")[1].split("short test summary")[0]
    assert "[scores.any_shapes] failed: attention_scores: scores differ" in failures
    assert "hint: your scores equal Q K^T without the 1/sqrt(d_k) factor" in failures
    assert "[scores.values] failed: hidden check" in failures
    assert "def compare" not in failures and "Failing test case" not in failures and "Traceback" not in failures
