"""`autograder batch`: one report per submission, a gradebook and a summary; resumable; no submission can
stop the batch or leave a process behind; the same unit of work on a local Dask cluster.

Batches run in this process through `cli.main` (the test process is the warm parent, so the warm-up is
paid once for the module) except where the batch itself must be killed.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from autograder import cli
from autograder.batch import cleanup
from autograder.batch import inputs
from autograder.batch import runner as batch
from autograder.grade import grade
from autograder.report import document as report_mod
from tests.grading_helpers import REPO, SUBMISSIONS, fast_config, passed
from tests.process_helpers import leftovers, living_descendants
from tests.test_hostile import HOSTILE, NAMES, ZEROS, fill

CONFIG = fast_config(max_examples=5)
MAX_SCORE = 80.0  # the model section (20 points) is disabled
OUTPUTS = {"gradebook.csv", "summary.json", "scores.png", batch.STATE_DIR}
EXAMPLES = ["correct.py", "correct_einsum.py", "buggy_no_scaling.py", "buggy_softmax_wrong_axis.py", "template.py"]

pytestmark = pytest.mark.timeout(600, method="thread")  # a backstop: a batch must never hang


# -- helpers --------------------------------------------------------------------------------------

def run_cli(*args: str) -> int:
    return cli.main(["batch", *args])


def reports(out: Path) -> Dict[str, Dict[str, Any]]:
    """name -> report, for every report in out (each validated against the schema)."""
    found = {}
    for path in sorted(out.glob("*.json")):
        if path.name != "summary.json":
            document = json.loads(path.read_text())
            report_mod.validate(document)
            found[path.stem] = document
    return found


def gradebook(out: Path) -> List[Dict[str, str]]:
    with open(out / "gradebook.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def no_half_written_files(out: Path, temporaries: bool = False) -> None:
    """Every file in out is complete: every JSON parses (glob skips hidden names). The hidden temporaries of
    atomic writes (`.NAME.XXXXXXXX`) that a kill during a write leaves are allowed only if `temporaries`
    (the next batch removes them)."""
    for folder in (out, out / batch.STATE_DIR):
        if folder.is_dir() and not temporaries:
            names = [p.name for p in folder.iterdir()]
            assert not [n for n in names if n.startswith(".") and n != batch.STATE_DIR], names
    for path in out.glob("*.json"):
        json.loads(path.read_text())
    for path in (out / batch.STATE_DIR).glob("*.json"):
        assert json.loads(path.read_text())["outcome"] in batch.OUTCOMES


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch-config") / "autograder.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Iterator[Tuple[Path, Path, int]]:
    """A batch over a folder of example submissions: (submissions, out, exit code)."""
    root = tmp_path_factory.mktemp("batch")
    folder = root / "submissions"
    folder.mkdir()
    for name in EXAMPLES:
        shutil.copy(SUBMISSIONS / name, folder / name)
    before = living_descendants(os.getpid())
    code = run_cli(str(folder), "--out", str(root / "out"), "--jobs", "2", "--config", str(config))
    assert leftovers(living_descendants(os.getpid()) - before) == []
    yield folder, root / "out", code


# -- the outputs ----------------------------------------------------------------------------------

def test_one_valid_report_per_submission(graded: Tuple[Path, Path, int]) -> None:
    folder, out, code = graded
    assert code == cli.EXIT_OK
    found = reports(out)
    assert sorted(found) == sorted(Path(n).stem for n in EXAMPLES)
    for name, document in found.items():
        assert document["submission"]["path"] == str(folder / f"{name}.py")
        assert document["max_score"] == MAX_SCORE
    assert found["correct"]["score"] == found["correct_einsum"]["score"] == MAX_SCORE
    assert 0 < found["buggy_no_scaling"]["score"] < MAX_SCORE
    assert found["template"]["score"] == 0
    assert {p.name for p in out.iterdir()} == {f"{n}.json" for n in found} | OUTPUTS
    no_half_written_files(out)


def test_a_report_is_the_single_grade_report(graded: Tuple[Path, Path, int], config: Path, tmp_path: Path) -> None:
    folder, out, _ = graded
    single = grade(folder / "buggy_no_scaling.py", tmp_path / "single.json", config_file=config, echo=False)
    single.pop("_exit")
    batched = json.loads((out / "buggy_no_scaling.json").read_text())
    for document in (single, batched):
        document.pop("timing")
        for check in document["checks"]:
            check.pop("duration_s")
        # a spawned worker (single grade) starts in its own session, so its setsid() is not listed as a layer
        document["environment"]["sandbox"]["layers"].remove("new-session") \
            if "new-session" in document["environment"]["sandbox"]["layers"] else None
    assert batched == single


def test_gradebook_has_a_row_per_submission(graded: Tuple[Path, Path, int]) -> None:
    _, out, _ = graded
    rows = gradebook(out)
    assert {"submission", "score", "max_score", "status", "outcome"} <= set(rows[0])
    assert sorted(r["submission"] for r in rows) == sorted(Path(n).stem for n in EXAMPLES)
    found = reports(out)
    for row in rows:
        document = found[row["submission"]]
        assert float(row["score"]) == document["score"] and float(row["max_score"]) == MAX_SCORE
        assert row["status"] == document["status"] and row["outcome"] == "graded"
    assert {r["submission"]: r["status"] for r in rows}["template"] == "graded"  # loads; defines nothing


def test_summary_has_pass_rates_distribution_and_slowest(graded: Tuple[Path, Path, int]) -> None:
    _, out, _ = graded
    summary = json.loads((out / "summary.json").read_text())
    found = reports(out)
    assert summary["count"] == len(EXAMPLES) and summary["outcome"] == {"graded": len(EXAMPLES)}
    assert summary["max_score"] == MAX_SCORE and summary["scores"]["full_marks"] == 2
    assert summary["scores"]["max"] == MAX_SCORE and summary["scores"]["min"] == 0
    histogram = summary["scores"]["histogram"]
    assert sum(histogram["counts"]) == len(EXAMPLES) and histogram["edges"][-1] == MAX_SCORE
    ids = [c["id"] for c in found["correct"]["checks"]]
    assert list(summary["pass_rates"]) == ids
    for cid, rate in summary["pass_rates"].items():
        assert rate == sum(cid in passed(d) for d in found.values()) / len(found)
    slowest = summary["slowest"]
    assert slowest and [s["duration_s"] for s in slowest] == sorted((s["duration_s"] for s in slowest), reverse=True)
    assert summary["batch"]["graded_now"] == len(EXAMPLES) and summary["batch"]["skipped"] == 0
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- resuming -------------------------------------------------------------------------------------

def test_rerun_skips_unchanged_submissions(graded: Tuple[Path, Path, int], config: Path) -> None:
    folder, out, _ = graded
    before = {p.name: p.read_bytes() for p in out.glob("*.json") if p.name != "summary.json"}
    assert run_cli(str(folder), "--out", str(out), "--config", str(config)) == cli.EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["batch"]["graded_now"] == 0 and summary["batch"]["skipped"] == len(EXAMPLES)
    assert {p.name: p.read_bytes() for p in out.glob("*.json") if p.name != "summary.json"} == before
    assert len(gradebook(out)) == len(EXAMPLES)


def test_changed_file_config_or_force_regrades(tmp_path: Path, config: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("correct.py", "buggy_no_scaling.py"):
        shutil.copy(SUBMISSIONS / name, folder / name)
    out = tmp_path / "out"

    def graded_now(*extra: str, cfg: Path = config) -> int:
        assert run_cli(str(folder / "*.py"), "--out", str(out), "--jobs", "2", "--config", str(cfg),
                       *extra) == cli.EXIT_OK
        return json.loads((out / "summary.json").read_text())["batch"]["graded_now"]

    assert graded_now() == 2
    (folder / "correct.py").write_text((SUBMISSIONS / "correct.py").read_text() + "\n# resubmitted\n")
    assert graded_now() == 1
    assert reports(out)["correct"]["submission"]["sha256"] == batch.sha256_of(folder / "correct.py")
    assert graded_now("--force") == 2
    other = tmp_path / "other.toml"
    other.write_text(fast_config(max_examples=4))
    assert graded_now(cfg=other) == 2


def test_killed_batch_leaves_complete_files_and_resumes(tmp_path: Path, config: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL mid-batch: every file written is complete, no process is left, and the rerun grades only
    what is missing and removes the temporary folder the killed batch could not."""
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(8):
        source = SUBMISSIONS / EXAMPLES[i % 4]
        (folder / f"s{i}.py").write_text(source.read_text() + f"\n# copy {i}\n")
    out = tmp_path / "out"
    temp = tmp_path / "tmp"  # the batch's temporary folders go here (TMPDIR)
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "batch", str(folder), "--out", str(out),
                             "--jobs", "2", "--config", str(config)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + 120
        while len(list((out / batch.STATE_DIR).glob("*.json"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.05)
        tree = living_descendants(proc.pid)  # grading processes, the fork-server and its workers
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    assert leftovers(tree) == []
    assert [p.name for p in temp.iterdir()] and all(p.name.startswith(cleanup.TEMP_PREFIX) for p in temp.iterdir())
    no_half_written_files(out, temporaries=True)
    assert not (out / "gradebook.csv").exists()
    recorded = {p.stem for p in (out / batch.STATE_DIR).glob("*.json")}
    assert 2 <= len(recorded) < 8
    for name in recorded:  # recorded last: its report is complete
        report_mod.validate(json.loads((out / f"{name}.json").read_text()))

    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the rerun, in this process, removes what the kill left
    assert run_cli(str(folder), "--out", str(out), "--config", str(config)) == cli.EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["batch"]["skipped"] == len(recorded) and summary["batch"]["graded_now"] == 8 - len(recorded)
    assert len(reports(out)) == 8 and summary["outcome"] == {"graded": 8}
    no_half_written_files(out)
    assert list(temp.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_finishes_running_grades_and_resumes(tmp_path: Path, config: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group): exit 130 once the running grades have finished,
    with their right scores (the fork-server and its workers are not in that group), and a rerun resumes."""
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(8):
        (folder / f"c{i}.py").write_text((SUBMISSIONS / "correct.py").read_text() + f"\n# copy {i}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "batch", str(folder), "--out", str(out),
                             "--jobs", "2", "--config", str(config)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / batch.STATE_DIR).glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = living_descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert leftovers(tree) == []
    recorded = {p.stem for p in (out / batch.STATE_DIR).glob("*.json")}
    assert 1 <= len(recorded) < 8
    for name in recorded:
        assert json.loads((out / batch.STATE_DIR / f"{name}.json").read_text())["outcome"] == "graded"
        assert json.loads((out / f"{name}.json").read_text())["score"] == MAX_SCORE
    assert run_cli(str(folder), "--out", str(out), "--config", str(config)) == cli.EXIT_OK
    assert json.loads((out / "summary.json").read_text())["scores"]["full_marks"] == 8


def _batch_process(folder: Path, out: Path, config: Path, temp: Path) -> subprocess.Popen:
    """`autograder batch` in a process of its own (its own process group), temporary folders under temp."""
    temp.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "autograder", "batch", str(folder), "--out", str(out),
                             "--jobs", "2", "--config", str(config)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})


def test_ctrl_c_during_the_warm_up_exits_130_and_leaves_nothing(tmp_path: Path, config: Path) -> None:
    """Ctrl-C while the batch grades the reference (pytest catches it there): exit 130 with one line, no
    traceback, no process and no temporary folder left."""
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(SUBMISSIONS / "correct.py", folder / "correct.py")
    temp = tmp_path / "tmp"
    proc = _batch_process(folder, tmp_path / "out", config, temp)
    try:
        deadline = time.monotonic() + 120
        while not list(temp.rglob("autograder-work-*")) and time.monotonic() < deadline:  # the warm-up grades
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.02)
        tree = living_descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert leftovers(tree) == []
    assert list(temp.iterdir()) == []


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_removes_temporary_folders(tmp_path: Path, config: Path) -> None:
    """SIGTERM to the batch mid-grading: the running grades finish and are recorded, exit 130, its
    temporary folders are removed and no process is left."""
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(6):
        (folder / f"t{i}.py").write_text((SUBMISSIONS / "correct.py").read_text() + f"\n# copy {i}\n")
    out, temp = tmp_path / "out", tmp_path / "tmp"
    proc = _batch_process(folder, out, config, temp)
    try:
        deadline = time.monotonic() + 120
        while not list((out / batch.STATE_DIR).glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = living_descendants(proc.pid)
        proc.terminate()
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert leftovers(tree) == []
    assert list(temp.iterdir()) == []
    for state in (out / batch.STATE_DIR).glob("*.json"):
        assert json.loads(state.read_text())["outcome"] == "graded"


def test_only_stale_batch_folders_of_ours_are_removed(tmp_path: Path) -> None:
    """The sweep removes a dead batch's folder only: not a running batch's (its lock is held), not a folder
    without our lock file, not a link to a folder."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(tmp_path)
    try:
        with cleanup.private_temporaries() as running:
            assert tempfile.gettempdir() == str(running)
            (running / "autograder-work-x").mkdir()
            stale = tmp_path / f"{cleanup.TEMP_PREFIX}stale"
            stale.mkdir()
            (stale / cleanup.TEMP_LOCK).write_text("")
            (stale / "autograder-work-y").mkdir()
            foreign = tmp_path / f"{cleanup.TEMP_PREFIX}foreign"
            foreign.mkdir()
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            (elsewhere / cleanup.TEMP_LOCK).write_text("")
            (tmp_path / f"{cleanup.TEMP_PREFIX}link").symlink_to(elsewhere)
            assert cleanup.remove_stale_batch_folders(tmp_path) == [stale]  # not the running batch's (locked)
            assert running.is_dir() and foreign.is_dir() and elsewhere.is_dir()
        assert not running.exists() and tempfile.gettempdir() == str(tmp_path)
    finally:
        tempfile.tempdir = saved


# -- submissions that cannot stop the batch -------------------------------------------------------

def test_a_hang_or_crash_costs_only_its_own_submission(tmp_path: Path, config: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A grading process that runs past the batch's limit is killed, one that dies is reported: both get
    a not_gradable report, the others are graded, and a rerun tries them again."""
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(SUBMISSIONS / "correct.py", folder / "correct.py")
    (folder / "sleeps.py").write_text("import time\ntime.sleep(600)\n" + ZEROS)
    (folder / "crashes.py").write_text(ZEROS)
    real_grade = batch.grade

    def grade_or_die(path: Path, *args: Any, **kwargs: Any) -> Any:  # runs in the forked grading process
        if Path(path).stem == "crashes":  # after writing student-like text to its log
            print(f"\x1b]0;pwned\x07\x1b[2J::error::forged by {path}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_grade(path, *args, **kwargs)

    monkeypatch.setattr(batch, "grade", grade_or_die)
    before = living_descendants(os.getpid())
    result = batch.run_batch([str(folder)], tmp_path / "out", jobs=2, config_file=config, limit_s=8.0,
                             progress=False)
    assert leftovers(living_descendants(os.getpid()) - before) == []
    assert result.summary["outcome"] == {"graded": 1, "timeout": 1, "crashed": 1}
    found = reports(tmp_path / "out")
    assert found["correct"]["score"] == MAX_SCORE
    for name, fragment in (("sleeps", "did not finish within 8 s"), ("crashes", "killed by SIGKILL")):
        document = found[name]
        assert document["status"] == "not_gradable" and document["score"] == 0
        assert document["max_score"] == MAX_SCORE  # the same checks as a graded report
        assert [c["id"] for c in document["checks"]] == [c["id"] for c in found["correct"]["checks"]]
        assert fragment in document["submission"]["load_error"]
    rows = {r["submission"]: r for r in gradebook(tmp_path / "out")}
    assert rows["sleeps"]["outcome"] == "timeout" and rows["crashes"]["outcome"] == "crashed"
    log = (tmp_path / "out" / batch.STATE_DIR / "crashes.log").read_text()
    assert "forged by" in log and _speaks(log) == []  # the log a TA reads is neutralised
    settings = batch.Settings.create(tmp_path / "out", config, None)
    assert [batch.is_current(batch.Job(folder / f"{n}.py", n, settings)) for n in ("correct", "sleeps", "crashes")] \
        == [True, False, False]


def _hostile_copies(folder: Path) -> List[str]:
    """Every file of tests/hostile/ copied into folder, placeholders filled (a port and a unix socket where
    nothing listens, a secret file); returns their names."""
    folder.mkdir()
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = folder.parent / "secret.txt"
    secret.write_text("batch-secret")
    for path in sorted(HOSTILE.glob("*.py")):
        source = fill(path.read_text(), port, folder.parent / "nothing.sock", secret)
        (folder / path.name).write_text(source)
    return NAMES


@pytest.mark.slow  # the whole hostile corpus again, in one batch (issues 4 and 11: "every hostile submission")
def test_hostile_submissions_gain_nothing_and_stop_nothing(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole hostile collection, the odd names and links of `odd_submissions`, and correct, buggy and
    all-zeros files in one batch: exit 0, a row for each, full marks for the correct ones, no attack better
    than all zeros (the links out of the folder: 0), the duplicates flagged, every view inert, no process
    and no temporary folder left."""
    names = _hostile_copies(tmp_path / "hostile")
    odd = odd_submissions(tmp_path / "odd", tmp_path / "ta")
    honest = tmp_path / "honest"
    honest.mkdir()
    for name in ("correct.py", "correct_manual_softmax.py", "buggy_mask_ignored.py"):
        shutil.copy(SUBMISSIONS / name, honest / name)
    (honest / "zeros.py").write_text(ZEROS)
    out = tmp_path / "out"
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    before = living_descendants(os.getpid())
    code = run_cli(str(tmp_path / "hostile"), str(tmp_path / "odd"), str(honest / "*.py"), "--out", str(out),
                   "--jobs", "2", "--config", str(config))
    assert leftovers(living_descendants(os.getpid()) - before) == []
    err = capsys.readouterr().err
    assert code == cli.EXIT_OK, err
    assert list(temp.iterdir()) == []
    found = reports(out)
    assert sorted(r["submission"] for r in gradebook(out)) == sorted(found) == sorted(
        names + list(odd) + ["correct", "correct_manual_softmax", "buggy_mask_ignored", "zeros"])
    assert found["correct"]["score"] == found["correct_manual_softmax"]["score"] == MAX_SCORE
    zeros = found["zeros"]
    assert 0 < zeros["score"] < MAX_SCORE
    attacks = names + [n for n, kind in odd.items() if kind in ("odd name", "link outside")]
    for name in attacks:
        assert passed(found[name]) <= passed(zeros), f"{name} passed checks that all-zeros fails"
        assert found[name]["score"] <= zeros["score"] and found[name]["max_score"] == MAX_SCORE
    assert [found[n]["score"] for n, kind in odd.items() if kind == "link outside"] == [0, 0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == {"graded": len(found)}
    assert ["classmate", "copy_of_classmate", "correct"] in summary["identical"]  # correct.py thrice
    assert {p.name for p in out.iterdir()} == {f"{n}.json" for n in found} | OUTPUTS  # nothing planted
    assert "batch-secret" not in json.dumps(found) and "TA-ONLY" not in json.dumps(found)
    assert_inert_views(out, err)


# -- usage ----------------------------------------------------------------------------------------

def test_usage_errors_exit_2(tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "out")
    correct = str(SUBMISSIONS / "correct.py")
    assert run_cli(str(tmp_path / "nothing" / "*.py"), "--out", out) == cli.EXIT_USAGE
    assert "no submission files matched" in capsys.readouterr().err
    assert run_cli(correct, "--out", out, "--jobs", "0") == cli.EXIT_USAGE
    assert "--jobs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        run_cli(correct, "--out", out, "--jobs", "two")
    assert exited.value.code == cli.EXIT_USAGE
    assert run_cli(correct, "--out", out, "--config", str(tmp_path / "missing.toml")) == cli.EXIT_USAGE
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if the [dask] extra were not installed
    assert run_cli(correct, "--out", out, "--config", str(config), "--scheduler", "tcp://127.0.0.1:1") \
        == cli.EXIT_USAGE
    assert "pip install" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_a_second_batch_on_the_same_folder_exits_2(tmp_path: Path, config: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import fcntl

    out = tmp_path / "out"
    (out / ".batch").mkdir(parents=True)
    with open(out / ".batch" / "lock", "w") as running:  # as the first batch holds it
        fcntl.flock(running, fcntl.LOCK_EX)
        assert run_cli(str(SUBMISSIONS / "correct.py"), "--out", str(out), "--config", str(config)) \
            == cli.EXIT_USAGE
    assert "another autograder batch is writing to" in capsys.readouterr().err
    assert not list(out.glob("*.json"))


def test_unreachable_scheduler_exits_2(tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("dask.distributed")
    from autograder.batch import executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    assert run_cli(str(SUBMISSIONS / "correct.py"), "--out", str(tmp_path / "out"), "--config", str(config),
                   "--scheduler", address) == cli.EXIT_USAGE
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_inputs_and_report_names(tmp_path: Path) -> None:
    for folder in ("alice", "bob"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "attention.py").write_text("")
    (tmp_path / "alice" / "notes.txt").write_text("")
    (tmp_path / "summary.py").write_text("")
    found, unmatched = inputs.collect([str(tmp_path / "alice"), str(tmp_path / "*" / "attention.py"),
                                      str(tmp_path / "summary.py"), str(tmp_path / "nobody.py")])
    paths = list(found)
    assert paths == [tmp_path / "alice" / "attention.py", tmp_path / "alice" / "notes.txt",  # notes.txt: a row
                     tmp_path / "bob" / "attention.py", tmp_path / "summary.py"]
    assert list(found.values()) == [tmp_path / "alice", tmp_path / "alice", tmp_path, tmp_path]  # named folders
    assert unmatched == [str(tmp_path / "nobody.py")]
    names = inputs.report_names(paths)
    assert names[paths[0]] == "alice-attention" and names[paths[2]] == "bob-attention"
    assert names[paths[3]].startswith("summary-")  # summary.json is the batch's own
    odd = [tmp_path / "\x1b[2K=1+2.py", tmp_path / os.fsdecode(b"ren\xe9e.py"), tmp_path / ".hidden.py"]
    assert list(inputs.report_names(odd).values()) == ["__2K_1_2", "ren_e", "hidden"]


# -- what students name their files, and links ---------------------------------------------------

ODD_NAMES = ["\x1b[2K\r\x1b[1Amallory,80.0,80.0,graded,graded.py", "line\nbreak,80.0.py", "=1+2.py",
             "+SUM(1).py", "-2+3.py", "@SUM(1).py", "\tTAB.py", "::error::forged.py", "##[error]legacy.py",
             os.fsdecode(b"ren\xe9e.py")]  # the last: a Latin-1 name from an unzipped upload (not UTF-8)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def odd_submissions(folder: Path, outside: Path) -> Dict[str, str]:
    """Files a careless upload or a hostile student leaves in a batch folder, built here (git holds neither
    links nor such names): all-zeros files under odd names, a correct classmate.py, a link to it, a link to
    a TA's solution outside the folder and a link to nothing. Returns {report name: what it is}."""
    folder.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "solution.py").write_text((SUBMISSIONS / "correct.py").read_text() + "\n# TA-ONLY\n")
    shutil.copy(SUBMISSIONS / "correct.py", folder / "classmate.py")
    (folder / "copy_of_classmate.py").symlink_to("classmate.py")
    (folder / "ta_solution.py").symlink_to(outside / "solution.py")
    (folder / "dangling.py").symlink_to(outside / "missing.py")
    for i, name in enumerate(ODD_NAMES):
        (folder / name).write_text(ZEROS + f"# odd name {i}\n")
    kinds = {"classmate": "correct", "copy_of_classmate": "link inside", "ta_solution": "link outside",
             "dangling": "link outside"}
    names = inputs.report_names(list(inputs.collect([str(folder)])[0]))
    return {name: kinds.get(name, "odd name") for name in names.values()}


def _speaks(text: str) -> List[str]:
    """What a terminal or a CI log would obey in text: control characters, workflow commands."""
    bad = [line for line in text.split("\n") if line.lstrip().startswith("::") or "##[" in line]
    return bad + [repr(ch) for ch in text if (ord(ch) < 32 and ch != "\n") or 0x7f <= ord(ch) <= 0x9f]


def assert_inert_views(out: Path, terminal_text: str) -> None:
    """No student string in the batch's views can act on its reader: the gradebook has one line per row,
    no control character and no cell a spreadsheet reads as a formula; every JSON file is strict UTF-8
    JSON; the logs and what the batch printed speak neither to a terminal nor to CI."""
    raw = (out / "gradebook.csv").read_bytes().decode("utf-8")
    assert _speaks(raw.replace("::", "")) == []  # a cell may hold "::" (not at a line start: checked next)
    rows = list(csv.reader(raw.splitlines()))
    assert len(rows) == raw.count("\n")  # no quoted line break: `cat` shows exactly the rows
    for row in rows[1:]:
        assert not [cell for cell in row if cell.startswith(FORMULA_START)], row
        assert not row[0].startswith("::")
    for path in [*out.glob("*.json"), *(out / batch.STATE_DIR).glob("*.json")]:
        text = path.read_bytes().decode("utf-8")
        json.loads(text)
        assert "\\udc" not in text, path  # no lone surrogate: strict readers accept every file
    for log in (out / batch.STATE_DIR).glob("*.log"):
        assert _speaks(log.read_text()) == [], log
    assert _speaks(terminal_text) == []


def test_links_and_odd_file_names(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture) -> None:
    """A batch over odd names and links: exit 0 and a row for every file (a name that is not UTF-8 used to
    crash it after grading); the link to a classmate is graded and listed as identical to it; the links
    out of the folder are refused unread with 0 points; every view is inert."""
    kinds = odd_submissions(tmp_path / "subs", tmp_path / "ta")
    out = tmp_path / "out"
    before = living_descendants(os.getpid())
    code = run_cli(str(tmp_path / "subs"), "--out", str(out), "--jobs", "2", "--config", str(config))
    assert leftovers(living_descendants(os.getpid()) - before) == []
    err = capsys.readouterr().err
    assert code == cli.EXIT_OK, err
    found = reports(out)
    assert sorted(r["submission"] for r in gradebook(out)) == sorted(found) == sorted(kinds)
    assert found["classmate"]["score"] == found["copy_of_classmate"]["score"] == MAX_SCORE
    for name in ("ta_solution", "dangling"):
        assert found[name]["score"] == 0 and "symbolic link to a file outside" in found[name]["submission"]["load_error"]
    assert "TA-ONLY" not in json.dumps(found)
    assert json.loads((out / "summary.json").read_text())["identical"] == [["classmate", "copy_of_classmate"]]
    assert "identical files: classmate = copy_of_classmate" in err
    assert found["ren_e"]["submission"]["name"] == "ren\\xe9e.py"
    assert_inert_views(out, err)


# -- beyond one machine ---------------------------------------------------------------------------

@pytest.mark.slow
def test_local_dask_cluster(tmp_path: Path, config: Path) -> None:
    """--scheduler: the unit of work runs on Dask workers (separate processes), which warm up themselves."""
    distributed = pytest.importorskip("dask.distributed")
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("correct.py", "buggy_no_scaling.py", "template.py"):
        shutil.copy(SUBMISSIONS / name, folder / name)
    out = tmp_path / "out"
    before = living_descendants(os.getpid())
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        code = run_cli(str(folder), "--out", str(out), "--config", str(config),
                       "--scheduler", cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            workers = set(client.run(os.getpid).values())
        tree = set().union(*(living_descendants(pid) for pid in workers))  # each worker's fork-server
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid, _ in tree]
    assert workers and workers.isdisjoint({os.getpid()})
    assert code == cli.EXIT_OK
    found = reports(out)
    assert found["correct"]["score"] == MAX_SCORE and 0 < found["buggy_no_scaling"]["score"] < MAX_SCORE
    assert found["template"]["score"] == 0
    assert json.loads((out / "summary.json").read_text())["outcome"] == {"graded": 3}
    assert any(b"autograder.runtime.forkserver" in command for command in commands)  # workers forked on the worker
    left = leftovers(tree | (living_descendants(os.getpid()) - before), wait_s=10.0)
    # multiprocessing's resource tracker serves this test process until it exits: Dask's, not a grade's
    assert [line for line in left if "multiprocessing.resource_tracker" not in line] == []


def test_a_file_that_tells_no_assignment_gets_the_batchs_and_a_row(tmp_path):
    """notes.txt beside a student's attention.py, no assignment in any config: notes.txt takes the batch's
    assignment, so it gets its row (the whole batch stopped with 'cannot tell' before); alone, it still
    cannot tell."""
    from autograder.assignments import AssignmentError
    from autograder.batch.inputs import assignments

    (tmp_path / "alice.py").write_text((SUBMISSIONS / "correct.py").read_text())
    (tmp_path / "notes.txt").write_text("I could not finish")
    folders = {p: tmp_path for p in (tmp_path / "alice.py", tmp_path / "notes.txt")}
    assert assignments(list(folders), folders, None, None) == {p: "attention" for p in folders}
    alone = {tmp_path / "notes.txt": tmp_path}
    with pytest.raises(AssignmentError, match="cannot tell"):
        assignments(list(alone), alone, None, None)
