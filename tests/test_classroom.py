"""GitHub Classroom cannot be forged: whatever student text reaches the report, the `result=` payload the
reporter prints holds no line GitHub's runner would execute, its notice adds up to the report's score, and a
missing, empty or unreadable submission still gives a 0-point result out of the course's maximum."""
from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from autograder import cli
from autograder.config import load_config
from autograder.report import exports as views
from autograder.report import neutralise
from tests.grading_helpers import FAST_CONFIG, REPO, grade_quick

HOSTILE = REPO / "tests" / "hostile" / "forge_classroom.py"
# a file name is student text too: line breaks, a command, a legacy command
HOSTILE_NAME = "x\r::stop-commands::tok\n##[error]forged.py"


def runner_lines(text: str) -> List[str]:
    """The log lines the runner sees: its reader breaks at \\r, \\n and \\r\\n (the test also breaks at every
    other Unicode line break, which is stricter)."""
    return re.split(r"\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", text)


def is_command(line: str) -> bool:
    """actions/runner's rules: after leading whitespace is trimmed, '::' starts a command; '##[' anywhere is
    the legacy form. Trimmed here: whitespace in Python's sense (a superset of .NET's) and invisible format
    characters too (stricter than the runner)."""
    start = 0
    while start < len(line) and (line[start].isspace() or unicodedata.category(line[start]) in ("Cf", "Zs")):
        start += 1
    return line[start:].startswith("::") or "##[" in line


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def commands_in(payload: Dict[str, Any]) -> List[str]:
    """Every line of every string of the payload that the runner would execute, alone on a line or as the
    reporter prints a message (`Error: <message>`)."""
    return [line for text in strings(payload) for shown in (text, "Error: " + text)
            for line in runner_lines(shown) if is_command(line)]


def decode(line: str) -> Dict[str, Any]:
    assert line.startswith("result=") and "\n" not in line.strip()
    return json.loads(base64.b64decode(line.strip()[len("result="):]))


def js_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def reporter_notice(payloads: List[Dict[str, Any]]) -> str:
    """The reporter's "Autograding complete" notice, recomputed as it computes it: the sum of every test's
    score over the sum of the runners' max_score, runners with no max_score skipped."""
    counted = [p for p in payloads if p.get("max_score")]
    assert counted, "the reporter prints no notice at all"
    total = sum(t["score"] for p in counted for t in p["tests"])
    return f"Points {js_number(total)}/{js_number(sum(p['max_score'] for p in counted))}"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Dict[str, Any]:
    """forge_classroom.py, under a file name that is itself an attack, graded with the fast config."""
    out = tmp_path_factory.mktemp("classroom")
    path = out / HOSTILE_NAME
    shutil.copyfile(HOSTILE, path)
    return grade_quick(path, out)


def test_the_attack_reaches_the_report(hostile_report):
    """The test is meaningful: the report itself holds lines the runner would execute."""
    texts = [c["message"] for c in hostile_report["checks"]] + [hostile_report["submission"]["output"],
                                                                hostile_report["submission"]["name"]]
    found = [line for text in texts for line in runner_lines(text) if is_command(line)]
    assert any("::stop-commands::pwned" in line for line in found)        # exception class name
    assert any("##[error]the quoted source line" in line for line in found)  # quoted source line
    assert any("::notice title=Autograding complete" in line for line in found)
    assert any("::stop-commands::tok" in line for line in found)            # file name


def test_classroom_payload_speaks_no_workflow_command(hostile_report):
    payload = decode(views.classroom_output(hostile_report))
    assert commands_in(payload) == []
    assert reporter_notice([payload]) == f"Points {js_number(hostile_report['score'])}/" \
                                         f"{js_number(hostile_report['max_score'])}"
    assert hostile_report["score"] < hostile_report["max_score"] and payload["status"] == "fail"
    errored = [t for t in payload["tests"] if t["status"] == "error"]
    assert errored and all("| ::" in t["message"] or "::" not in t["message"] for t in errored)
    assert any("Points 100/100" in t["message"] for t in errored)  # neutralised, not deleted: still readable


def test_views_neutralise_whatever_the_worker_sends(hostile_report):
    """A report forged past the schema (hostile ids, names, hints, mistakes): the views still neutralise."""
    attack = "\n\u3000::error::id\r##[set-output name=result;]x\u2029::add-mask::y \x1b[2A"
    forged = copy.deepcopy(hostile_report)
    for check in forged["checks"]:
        check.update(id=attack, hint=attack, mistake=attack, message=attack)
    forged["submission"].update(name=attack, path=attack, load_error=attack, output=attack)
    assert commands_in(views.classroom(forged)) == []
    assert commands_in(decode(views.classroom_output(forged))) == []
    assert "\x1b" not in json.dumps(views.classroom(forged))


@pytest.mark.parametrize("text", ["::error::x", "  ::x", "\t\u00a0\u2003::x", "\ufeff::x", "\u180e::x",
                                  "a ##[x", "###[x", "a\r::x", "a\u2028::x", "a\x85::x", "::", "\u200b::x"])
def test_the_workflow_neutraliser_neutralises_every_form(text):
    neutral = neutralise.workflow(text)
    assert not any(is_command(line) for line in runner_lines(neutral)), repr(neutral)
    assert neutralise.workflow(neutral) == neutral  # idempotent


def test_scores_are_finite_and_rounded():
    document = {"submission": {"name": "a.py"}, "checks": [
        {"id": "scores.values", "status": "failed", "score": 1 / 3, "max_score": 2 / 3, "message": "m",
         "hint": None, "duration_s": 0.123456},
        {"id": "scores.shapes", "status": "error", "score": float("nan"), "max_score": 1.005, "message": "m",
         "hint": None, "duration_s": float("inf")}]}
    payload = views.classroom(document)
    assert [t["score"] for t in payload["tests"]] == [0.33, 0.0]
    assert [t["max_score"] for t in payload["tests"]] == [0.67, 1.0]
    assert payload["max_score"] == 1.67
    json.dumps(payload, allow_nan=False)  # strict JSON


def _export(report: Path, capsys, *extra: str) -> Dict[str, Any]:
    code = cli.main(["export", str(report), "--format", "classroom", *extra])
    out = capsys.readouterr().out
    return {"code": code, "payload": decode(out)}


def test_a_missing_submission_is_a_zero_result(tmp_path, monkeypatch, capsys):
    """`autograder grade missing.py` writes no report; the export step still gives Classroom a 0."""
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    assert cli.main(["grade", str(tmp_path / "attention.py"), "--json", str(report)]) == 2
    assert not report.exists()
    exported = _export(report, capsys)  # the packaged defaults: 100 points
    assert exported["code"] == 2
    payload = exported["payload"]
    assert sum(t["score"] for t in payload["tests"]) == 0 and payload["status"] == "fail"
    assert reporter_notice([payload]) == "Points 0/100"
    assert all("no grading result" in t["message"] for t in payload["tests"])

    course = tmp_path / "course.toml"
    course.write_text(FAST_CONFIG)  # no model section: 80 points
    payload = _export(report, capsys, "--config", str(course))["payload"]
    expected = sum(v for k, v in load_config(course).data["points"].items() if not k.startswith("model."))
    assert reporter_notice([payload]) == f"Points 0/{js_number(expected)}" == "Points 0/80"


@pytest.mark.parametrize("content", [b"", b"\xff\xfe not utf-8 \x80", b"def attention_scores(:\n"])
def test_empty_or_unreadable_submissions_are_zero_results(tmp_path, capsys, content):
    path = tmp_path / "attention.py"
    path.write_bytes(content)
    document = grade_quick(path, tmp_path)
    assert document["status"] == "not_gradable"
    report = tmp_path / "attention.json"
    exported = _export(report, capsys)
    assert exported["code"] == 0
    assert reporter_notice([exported["payload"]]) == "Points 0/80"


def test_workflow_triggers_and_reports_as_classroom_does():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "classroom.yml").read_text())
    assert flow["name"] == "Autograding Tests"
    assert set(flow["on"]) == {"push", "repository_dispatch"}
    job = flow["jobs"]["run-autograding-tests"]
    assert job["if"] == "github.actor != 'github-classroom[bot]'"
    assert 0 < job["timeout-minutes"] <= 60
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    reporter = steps["Autograding Reporter"]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    assert reporter["if"] == "always()" and reporter["with"]["runners"] == "attention"
    assert reporter["env"]["ATTENTION_RESULTS"] == "${{ steps.attention.outputs.result }}"
    grade = steps["Grade"]
    assert grade["id"] == "attention"
    script = grade["run"]
    # grading happens outside the student's checkout, and the export runs whatever the grade did
    assert 'cd "$work"' in script and '"$GITHUB_WORKSPACE/attention.py"' in script
    assert "|| true" in script.split("autograder grade")[1].split("\n")[0]
    assert "autograder export report.json --format classroom" in script and '>> "$GITHUB_OUTPUT"' in script
    assert "vars.AUTOGRADER_INSTALL" in steps["Install the grader"]["env"]["AUTOGRADER_INSTALL"]
    assert "runner.temp" in grade["env"]["AUTOGRADER_CACHE"]


def test_json_exports_printed_into_a_log_speak_no_command(hostile_report, tmp_path, capsys):
    """Gradescope's results.json and the evaluation payload keep the student's text as data (the parsed
    JSON is exact), yet printed into a CI log (`autograder export` on stdout) no line is a command."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({k: v for k, v in hostile_report.items() if k != "_exit"}))
    for fmt in ("gradescope", "evaluation"):
        assert cli.main(["export", str(report), "--format", fmt]) == 0
        text = capsys.readouterr().out
        assert [line for line in runner_lines(text) if is_command(line)] == []
        assert "##[error]the quoted source line" in json.dumps(json.loads(text))  # the data is intact
    assert json.loads(views.gradescope_json(hostile_report)) == views.gradescope(hostile_report)


def _grade_step(tmp_path: Path, workspace: Path) -> Dict[str, Any]:
    """Run the workflow's Grade step as the runner does (`bash --noprofile --norc -eo pipefail`), with the
    course config in AUTOGRADER_CONFIG; its exit code and the `result` it appended to $GITHUB_OUTPUT."""
    import os
    import subprocess
    import sys

    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "classroom.yml").read_text())
    script = next(s for s in flow["jobs"]["run-autograding-tests"]["steps"] if s.get("id") == "attention")["run"]
    output = tmp_path / "github_output"
    output.write_text("")
    (tmp_path / "runner").mkdir()
    env = dict(os.environ, RUNNER_TEMP=str(tmp_path / "runner"), GITHUB_WORKSPACE=str(workspace),
               GITHUB_OUTPUT=str(output), AUTOGRADER_CONFIG=FAST_CONFIG, PYTHONPATH=str(REPO),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=workspace,
                          env=env, capture_output=True, text=True, timeout=600)
    results = [line for line in output.read_text().splitlines() if line.startswith("result=")]
    assert len(results) == 1, (done.stdout[-2000:], done.stderr[-2000:])
    return {"code": done.returncode, "payload": decode(results[0]), "log": done.stdout + done.stderr}


def test_the_grade_step_of_a_missing_file_reports_zero(tmp_path):
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    step = _grade_step(tmp_path, workspace)
    assert step["code"] == 2  # the step fails (the reporter still runs: if: always())
    assert reporter_notice([step["payload"]]) == "Points 0/80"


def test_the_grade_step_reads_nothing_from_the_students_checkout(tmp_path):
    """A student's autograder.toml (every check 1000 points, nothing hidden) and a committed report of full
    marks change nothing: the course config and a fresh report decide."""
    workspace = tmp_path / "checkout"
    (workspace / "grading").mkdir(parents=True)
    shutil.copyfile(HOSTILE, workspace / "attention.py")
    (workspace / "autograder.toml").write_text("[points]\n" + "".join(
        f'"{cid}" = 1000\n' for cid in load_config().data["points"]))
    forged = {"version": 1, "status": "pass", "max_score": 80, "tests": [
        {"name": "all", "status": "pass", "score": 80, "max_score": 80}]}
    (workspace / "report.json").write_text(json.dumps(forged))
    (workspace / "grading" / "report.json").write_text(json.dumps(forged))
    step = _grade_step(tmp_path, workspace)
    assert step["code"] == 0
    payload = step["payload"]
    assert payload["max_score"] == 80 and payload["status"] == "fail"
    assert reporter_notice([payload]).startswith("Points ") and reporter_notice([payload]) != "Points 80/80"
    assert commands_in(payload) == []
    # the step's log (the terminal view, another module's neutraliser), by the runner's own rule
    assert [line for line in re.split(r"\r\n|\r|\n", step["log"])
            if line.lstrip().startswith("::") or "##[" in line] == []
