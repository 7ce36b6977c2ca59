"""What makes a cold grade start faster: the plugin loads without torch, so that `pytest_configure` launches
the worker before this process imports torch; a worker launched for a file that then fails its precheck is
ended with its workdir; a grade computes with one torch thread and gives the caller's count back."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from autograder.assignments.attention import ASSIGNMENT
from autograder.runtime.launcher import start_worker
from autograder.runtime.submission import Submission
from tests.grading_helpers import CORRECT, grade_quick, variant

REPO = Path(__file__).resolve().parent.parent


def test_the_plugin_loads_without_torch_or_hypothesis():
    code = "import sys, autograder.plugin; print(sorted(m for m in ('torch', 'hypothesis') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_worker_launched_for_a_file_that_fails_its_precheck_is_ended(tmp_path):
    empty = variant(tmp_path, "attention.py", "")
    launched = start_worker(empty, banned=(), limits={}, hidden=(), contract=ASSIGNMENT.wire())
    assert Path(launched.workdir).is_dir()
    sub = Submission(empty, contract=ASSIGNMENT.wire(), launched=launched)
    assert sub.load_error is not None and "is empty" in sub.load_error.message
    assert not Path(launched.workdir).exists()
    assert launched.process.stop() is not None  # already ended and reaped: its exit status is known


def test_a_launched_worker_serves_the_submission(tmp_path):
    launched = start_worker(CORRECT.resolve(), banned=(), limits={}, hidden=(), contract=ASSIGNMENT.wire())
    with Submission(CORRECT, contract=ASSIGNMENT.wire(), launched=launched, import_timeout=120) as sub:
        assert sub.load_error is None and "attention_scores" in sub.functions
        Q = torch.randn(1, 3, 4)
        torch.testing.assert_close(sub.call("attention_scores", Q, Q), Q @ Q.transpose(-2, -1) / 2)


def test_a_grade_gives_the_callers_thread_count_back(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grade_quick(CORRECT, tmp_path, extra=["-k", "test_shapes and scores"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _pytest_grade(path: Path, tmp_path: Path, *launcher: str) -> subprocess.CompletedProcess:
    (tmp_path / "course.toml").write_text("[model]\nenabled = false\n[hypothesis]\nmax_examples = 3\n")
    command = [*launcher, "--submission", str(path), "--grading-config", str(tmp_path / "course.toml"),
               "--grade-json", str(tmp_path / "report.json"), "-q"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_pytest_leaves_without_teardown_and_keeps_its_exit_code_and_output(tmp_path):
    """`pytest --submission` ends with os._exit once the report is written (no interpreter teardown, ~1 s):
    the exit code is still pytest's (0 all passed, 1 a check failed), the table and the report are whole,
    and the last line printed is not lost in an unflushed buffer."""
    source = CORRECT.read_text()
    buggy = variant(tmp_path, "buggy.py", source.replace("K.transpose(-2, -1) / math.sqrt(d_k)", "K.transpose(-2, -1)"))
    assert buggy.read_text() != source
    for path, code, score in ((CORRECT, 0, "80 / 80"), (buggy, 1, None)):
        for launcher in ([sys.executable, "-m", "pytest"], [str(Path(sys.executable).parent / "pytest")]):
            run = _pytest_grade(path, tmp_path, *launcher)
            assert run.returncode == code, run.stdout[-2000:] + run.stderr[-2000:]
            assert "report: " in run.stdout and " in " in run.stdout.rstrip().splitlines()[-1]  # "N passed in 3.1s"
            assert (tmp_path / "report.json").stat().st_size > 1000
            assert "attention-autograder" in run.stdout and (score is None or score in run.stdout)


def test_the_autograder_command_keeps_its_exit_code(tmp_path):
    missing = subprocess.run([str(Path(sys.executable).parent / "autograder"), "grade", str(tmp_path / "no.py")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_a_grade_inside_a_test_run_leaves_the_runs_exit_code_alone(tmp_path):
    """A test run (pytest is the program) whose test grades a failing submission in-process: the nested
    grade must not make the process leave early with its own exit code (1), nor freeze the heap."""
    source = CORRECT.read_text().replace("K.transpose(-2, -1) / math.sqrt(d_k)", "K.transpose(-2, -1)")
    (tmp_path / "buggy.py").write_text(source)
    (tmp_path / "course.toml").write_text("[model]\nenabled = false\n[hypothesis]\nmax_examples = 3\n")
    (tmp_path / "test_nested.py").write_text(
        "import gc\nfrom pathlib import Path\nfrom autograder.grade import grade\n\n"
        "def test_grade_a_buggy_file(tmp_path):\n"
        "    here = Path(__file__).parent\n"
        "    document = grade(here / 'buggy.py', tmp_path / 'r.json', config_file=here / 'course.toml', echo=False)\n"
        "    assert document['score'] < 80 and document['_exit'] == 1\n"
        "    assert gc.get_freeze_count() == 0\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_nested.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
