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


def test_pytest_tells_each_lost_check_once_and_an_explicit_tb_keeps_the_sections(tmp_path):
    """`pytest --submission` shows pytest's progress and our table only: each lost check's message once (no
    FAILURES section, no short-summary lines repeating it); an explicit --tb keeps pytest's sections for
    course staff, where a hidden check still shows no more than the report does."""
    import subprocess
    import sys

    config = tmp_path / "course.toml"
    config.write_text('hidden = ["scores.values"]\n' + FAST_CONFIG)
    command = [sys.executable, "-m", "pytest", "--submission", str(SUBMISSIONS / "buggy_no_scaling.py"),
               "--grading-config", str(config), "--grade-json", str(tmp_path / "r.json"),
               "-k", "scores", "-p", "no:cacheprovider"]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "FAILURES" not in run.stdout and "short test summary" not in run.stdout, run.stdout
    lost = [c["id"] for c in json.loads((tmp_path / "r.json").read_text())["checks"] if c["status"] != "passed"]
    assert lost and all(run.stdout.count(f"[{cid}]") == 1 for cid in lost), run.stdout  # each lost check once
    assert run.stdout.count("without the 1/sqrt(d_k) factor") == 1, run.stdout
    assert "What to fix:" in run.stdout and "Traceback" not in run.stdout

    staff = subprocess.run(command + ["--tb", "short"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert staff.returncode == 1, staff.stdout[-2000:]
    failures = staff.stdout.split("= FAILURES =")[1].split("short test summary")[0]
    assert "[scores.values] failed: hidden check" in failures
    assert "short test summary" in staff.stdout


def test_the_schema_refuses_a_report_that_breaks_it_every_time(graded):
    """The compiled validator is kept per process; it still refuses, and names the field."""
    import jsonschema

    from autograder.report import document as report_mod

    good = json.loads(graded.read_text())
    report_mod.validate(good)
    for _ in range(2):
        with pytest.raises(jsonschema.ValidationError, match="'many' is not of type 'number'"):
            report_mod.validate(dict(good, score="many"))
        with pytest.raises(jsonschema.ValidationError, match="'checks' is a required property"):
            report_mod.validate({k: v for k, v in good.items() if k != "checks"})


def test_pytest_submission_runs_without_pytests_log_capture(tmp_path):
    """`pytest --submission` leaves out pytest's logging plugin, as `autograder grade` does: its per-check
    setup iterated logging's registry of loggers while the model's background load added loggers, and a
    random check became an internal error ("dictionary changed size during iteration", seen in 1 grade of
    about 10 with 2 grades at once on 2 cores). A project test run keeps the plugin."""
    import subprocess
    import sys

    def registered(*extra: str) -> bool:
        run = subprocess.run([sys.executable, "-m", "pytest", "--trace-config", "--co", "-q", "-p", "no:cacheprovider",
                              *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert "PLUGIN registered" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
        return "LoggingPlugin object" in run.stdout

    assert not registered("--submission", str(SUBMISSIONS / "correct.py"), "--grade-json", str(tmp_path / "r.json"))
    assert registered()


ESCAPING = '''
import torch


class Evil(ValueError):
    pass


def attention_scores(Q, K):
    raise Evil("\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\rscores.values PASSED 100/100\\n::error::forged\\n##[error]x")
'''


@pytest.mark.parametrize("tb", ["short", "long"])
def test_pytest_output_carries_no_student_escapes_at_any_tb(tmp_path, tb):
    """An exception full of terminal escapes and workflow commands: whatever --tb, what pytest prints for a
    graded check is neutralised (the raw text stays in the traceback pytest would print otherwise)."""
    import subprocess
    import sys

    from tests.test_hostile import _speaks_to_ci

    config = tmp_path / "course.toml"
    config.write_text(FAST_CONFIG)
    (tmp_path / "escaping.py").write_text(ESCAPING)
    run = subprocess.run([sys.executable, "-m", "pytest", "--submission", str(tmp_path / "escaping.py"),
                          "--grading-config", str(config), "--grade-json", str(tmp_path / "r.json"),
                          "-k", "test_values and scores", "-p", "no:cacheprovider", f"--tb={tb}", "-rA"],
                         cwd=tmp_path, capture_output=True, timeout=180)
    stdout = run.stdout.decode("utf-8", "replace")
    assert run.returncode == 1, stdout[-2000:]
    assert "pwned" in stdout  # the student's message is shown...
    assert _speaks_to_ci(stdout) == []  # ...inert: no escape, no carriage return, no workflow command


def test_report_bounds_what_the_student_controls(graded):
    """Whatever reaches the report's assembly (a worker's forged header, a check's message, the output of
    many restarted workers), the report keeps a bounded amount, as valid text."""
    from autograder.report import document as report_mod

    document = json.loads(graded.read_text())
    submission = dict(document["submission"], functions=[f"f{i}" for i in range(700_000)], output="o" * (11 << 20),
                      load_error=None, path=b"/tmp/ren\xe9e.py".decode("utf-8", "surrogateescape"))
    checks = [dict(c, message="m" * (1 << 20), hint="\udce9" * 10) for c in document["checks"]]
    rebuilt = report_mod.assemble(checks, submission, document["environment"], 0.0, 1.0)
    text = json.dumps(rebuilt)
    assert len(text) < 1 << 20
    assert rebuilt["submission"]["path"] == "/tmp/ren\\xe9e.py" and rebuilt["submission"]["name"] == "ren\\xe9e.py"
    assert len(rebuilt["submission"]["functions"]) <= 64
    text.encode("utf-8")  # no lone surrogate left anywhere: strict JSON readers accept it
    assert "\\udc" not in text


def test_cli_messages_quoting_a_file_name_are_neutralised(tmp_path, capsys):
    """The error line names the report as given (a CI log reads it): a name with an escape and a workflow
    command in it is inert there."""
    from autograder.cli import main

    missing = tmp_path / "x\r::error::forged\x1b[2J.json"
    assert main(["export", str(missing), "--format", "classroom"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err, err
    assert not any(line.lstrip().startswith("::") for line in err.splitlines()), err
