"""Checks this machine could not run (no model at all) in every view: said once, never as lost points."""
from __future__ import annotations

import base64
import json
import time

import pytest

from autograder.config import ConfigError, load_config
from autograder.report import document as report_mod
from autograder.report import exports, gradebook, terminal

REASON = "no model could be loaded: distilgpt2 is not cached and cannot be downloaded: offline"


def check(cid: str, status: str, points: float, counted: bool = False) -> dict:
    not_graded = status == "not_graded"
    return report_mod.public_check({
        "id": cid, "section": cid.split(".")[0], "status": status, "score": points if status == "passed" else 0.0,
        "max_score": 0.0 if not_graded and not counted else points, "message": REASON if not_graded else "",
        "hint": None, "mistake": None, "duration_s": 0.1, "hidden": False})


def document(counted: bool, failing: bool = False) -> dict:
    checks = [check("scores.values", "failed" if failing else "passed", 4),
              check("model.runs", "not_graded", 2, counted), check("model.logits", "not_graded", 6, counted)]
    if failing:
        checks[0]["message"] = "scores differ"
    submission = {"path": "/x/attention.py", "sha256": None, "functions": [], "load_error": None, "output": ""}
    env = report_mod.environment(load_config(), True, [], report_mod.model_entry("distilgpt2"))
    return report_mod.assemble(checks, submission, env, time.time(), 1.0)


def test_excluded_checks_leave_the_maximum_and_the_feedback():
    doc = document(counted=False)
    assert doc["status"] == "graded" and doc["score"] == doc["max_score"] == 4 and doc["feedback"] == []
    assert doc["not_graded"] == [{"section": "model", "reason": REASON, "checks": 2, "counted": False}]
    assert doc["sections"]["model"] == {"score": 0, "max_score": 0, "passed": 0, "total": 2, "not_graded": 2}
    assert doc["environment"]["model"] == {"name": "distilgpt2", "source": None,
                                           "why": "the model section ran no model"}


def test_counted_checks_keep_the_maximum_and_mark_the_grade_incomplete():
    doc = document(counted=True)
    assert doc["status"] == "incomplete" and doc["score"] == 4 and doc["max_score"] == 12
    assert doc["not_graded"][0]["counted"] and doc["feedback"] == []


@pytest.mark.parametrize("counted", [False, True])
def test_terminal_says_it_once_and_never_under_what_to_fix(counted):
    doc = document(counted, failing=True)
    shown = terminal.render(doc, "report.json")
    assert shown.count(REASON) == 1 and "Not graded: model (2 checks" in shown
    fix = shown[shown.index("What to fix"):]
    assert "scores.values" in fix and "model." not in fix
    assert [line for line in shown.splitlines() if line.startswith("model")][0].split()[1:3] == ["not", "graded"]
    assert ("(incomplete)" in shown) == counted


def test_exports_list_only_counted_not_graded_checks_and_say_why():
    excluded, counted = document(counted=False), document(counted=True)
    names = [t["name"] for t in exports.classroom(excluded)["tests"]]
    assert names == ["scores.values"] and exports.classroom(excluded)["status"] == "pass"
    payload = json.loads(base64.b64decode(exports.classroom_output(counted)[len("result="):]))
    runs = [t for t in payload["tests"] if t["name"] == "model.runs"][0]
    assert payload["status"] == "fail" and runs["status"] == "error" and "not graded" in runs["message"]
    scope = exports.gradescope(excluded)
    assert [t["name"] for t in scope["tests"]] == ["scores.values"] and REASON in scope["output"]
    assert scope["output"].count(REASON) == 1


def test_gradebook_shows_not_graded_and_pass_rates_ignore_it():
    rows = [gradebook.Row("a", document(counted=False), "graded")]
    csv_text = gradebook.gradebook_csv(rows)
    header, line = csv_text.splitlines()
    assert dict(zip(header.split(","), line.split(",")))["model"] == "not graded"
    assert set(gradebook.summary(rows)["pass_rates"]) == {"scores.values"}


def test_not_graded_mode_is_validated(tmp_path):
    course = tmp_path / "autograder.toml"
    course.write_text('[model]\nnot_graded = "drop"\n')
    with pytest.raises(ConfigError, match="not_graded"):
        load_config(course)
    course.write_text('[model]\nnot_graded = "incomplete"\n')
    assert load_config(course).not_graded_counts


def test_html_page_and_evaluation_payload_say_not_graded_and_lose_nothing():
    from autograder.report import evaluation, html

    doc = document(counted=False, failing=True)
    page = html.render(doc)
    assert page.count(REASON) == 1 and "not graded" in page
    fix = page[page.index('id="fix"'):page.index('id="checks"')]
    assert "scores.values" in fix and "model.runs" not in fix
    payload = evaluation.payload(doc)
    assert [c["id"] for c in payload["failed_checks"]] == ["scores.values"]
    assert evaluation.payload(document(counted=True))["submission"]["status"] == "incomplete"


def test_the_batch_index_says_not_graded_where_the_gradebook_does():
    """The HTML index's section cell agrees with gradebook.csv: "not graded", never a 0 (it showed 0)."""
    from autograder.report import html_batch

    rows = [gradebook.Row("a", document(counted=False), "graded")]
    index = html_batch.render_index(rows, gradebook.summary(rows))
    cells = index.split('<section class="card" id="gradebook">')[1].split("</table>")[0]
    assert '<td class="num" data-sort="-1">not graded</td>' in cells
