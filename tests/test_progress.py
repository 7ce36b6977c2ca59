"""Progress across the course: each student-run grade updates grading/progress.json; `autograder progress`
prints the course so far; batch grading and the Python API write none."""
from __future__ import annotations

import json
from pathlib import Path

from autograder import cli
from autograder.report import progress
from tests.grading_helpers import FAST_CONFIG, SUBMISSIONS, grade_quick


def _document(score: float, passed: int) -> dict:
    return {"assignment": "attention", "score": score, "max_score": 80.0, "submission": {"name": "a.py"},
            "sections": {"scores": {"passed": passed, "total": 5}, "softmax": {"passed": 8, "total": 8},
                         "model": {"passed": 0, "total": 5, "not_graded": 5}}}


def test_best_score_is_kept_and_latest_sections_counted(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    progress.update(path, _document(70, 5), tmp_path / "r1.json")
    entry = progress.update(path, _document(40, 3), tmp_path / "r2.json")
    assert entry["best_score"] == 70 and entry["last_score"] == 40
    assert entry["sections_complete"] == ["softmax"]  # a not-graded section is not complete
    assert entry["report"] == str(tmp_path / "r2.json")
    again = progress.update(path, _document(75, 5), tmp_path / "r3.json")
    assert again["best_score"] == 75 and again["sections_complete"] == ["scores", "softmax"]
    text = progress.table(progress.read(path), ["attention", "multihead"])
    assert "75 / 80" in text and "2 of 3" in text
    assert "multihead" in text and "not graded yet" in text


def test_an_unreadable_progress_file_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    path.write_text("{not json")
    assert progress.read(path) == {}
    progress.update(path, _document(10, 1), tmp_path / "r.json")
    assert progress.read(path)["attention"]["best_score"] == 10


def test_a_hand_edited_entry_neither_crashes_the_table_nor_keeps_a_nan_best(tmp_path: Path) -> None:
    """The file is the student's: NaN, text or a list where numbers belong."""
    path = tmp_path / "progress.json"
    path.write_text('{"version": 1, "assignments": {"attention": {"best_score": NaN, "best_max_score": "eighty", '
                    '"last_score": "lots", "max_score": 80, "sections_complete": 3, "sections": [1]}}}')
    text = progress.table(progress.read(path), ["attention"])
    assert "- / -" in text and "- / 80" in text and "- of -" in text and "nan" not in text
    path.write_text('{"assignments": {"attention": {"best_score": 0, "best_max_score": 0, "sections": 0}}}')
    assert "0 / 0" in progress.table(progress.read(path), ["attention"])  # zero is a number, not missing
    assert "of 0" in progress.table(progress.read(path), ["attention"])
    entry = progress.update(path, _document(10, 1), tmp_path / "r.json")
    assert entry["best_score"] == 10 and entry["best_max_score"] == 80  # NaN > 10 is False: never kept


def test_autograder_grade_updates_progress_and_the_api_does_not(tmp_path: Path, capsys) -> None:
    config = tmp_path / "course.toml"
    config.write_text(FAST_CONFIG)
    report = tmp_path / "grading" / "report.json"
    code = cli.main(["grade", str(SUBMISSIONS / "buggy_no_scaling.py"), "--json", str(report), "--config",
                     str(config)])
    assert code == 1
    entries = json.loads((report.parent / "progress.json").read_text())["assignments"]
    assert entries["attention"]["last_score"] < entries["attention"]["max_score"]
    assert "scores" not in entries["attention"]["sections_complete"]
    capsys.readouterr()
    assert cli.main(["progress", "--file", str(report.parent / "progress.json")]) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[1].startswith("attention") and "block" in shown

    api = tmp_path / "api"
    api.mkdir()
    grade_quick(SUBMISSIONS / "correct.py", api)  # what batch, watch and Gradescope use: no progress file
    assert not list(api.rglob("progress.json"))
