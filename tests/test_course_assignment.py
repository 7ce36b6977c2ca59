"""A course's own assignment, shipped as its own package, is found through its entry point and graded end to
end (checks, diagnosis, report, batch) without a line of the autograder knowing it.

tests/fixtures/course_assignment/ is installed for real with pip into a temporary folder, which then goes
on PYTHONPATH for `autograder` commands run as subprocesses.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from autograder.assignments import registry
from tests.grading_helpers import REPO, fast_config

# the packaged assignments and the course's own, installed by the fixture below
WITH_THE_COURSES = ", ".join(sorted([*registry.installed(), "dot_product"]))

FIXTURE = REPO / "tests" / "fixtures" / "course_assignment"
SUBMISSIONS = FIXTURE / "submissions"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The fixture package installed with pip (no dependencies, no build isolation: offline)."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "course_assignment"
    shutil.copytree(FIXTURE, source)  # setuptools builds in the source folder: keep the checkout clean
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True,
                   timeout=300, cwd=source.parent)
    assert (target / "course_dot" / "checks" / "test_norm.py").is_file()
    return target


def autograder(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), HF_HUB_OFFLINE="1")
    (cwd / "autograder.toml").write_text(fast_config(assignment=None))  # the files' functions choose
    config = ["--config", str(cwd / "autograder.toml")] if args[0] in ("grade", "batch") else []  # never found
    return subprocess.run([sys.executable, "-m", "autograder", *args, *config], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def checks_of(document: Dict) -> Dict[str, Dict]:
    return {c["id"]: c for c in document["checks"]}


def test_the_entry_point_is_listed_with_its_functions_and_points(installed, tmp_path):
    listing = autograder(installed, tmp_path, "assignments").stdout
    assert "attention:" in listing
    assert "dot_product: Dot products and norms" in listing
    assert "functions: dot, norm" in listing and "points: 10 (dot 5, norm 5)" in listing


def test_a_correct_submission_is_inferred_and_gets_full_marks(installed, tmp_path):
    result = autograder(installed, tmp_path, "grade", str(SUBMISSIONS / "correct.py"), "--json", "r.json")
    document = json.loads((tmp_path / "r.json").read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert document["assignment"] == "dot_product"
    assert document["score"] == document["max_score"] == 10
    assert list(document["sections"]) == ["dot", "norm"]


def test_the_catalogued_mistake_loses_its_points_and_is_named(installed, tmp_path):
    result = autograder(installed, tmp_path, "grade", str(SUBMISSIONS / "buggy_forgot_sqrt.py"), "--json", "r.json")
    document = json.loads((tmp_path / "r.json").read_text())
    assert result.returncode == 1
    checks = checks_of(document)
    assert checks["norm.values"]["status"] == "failed" and checks["norm.values"]["mistake"] == "forgot_sqrt"
    assert "square root" in checks["norm.values"]["hint"]
    assert {c["id"] for c in document["checks"] if c["status"] != "passed"} <= {"norm.values", "norm.gradients"}
    assert document["sections"]["dot"]["score"] == 5
    assert "take the square root of dot(a, a)" in result.stdout  # the terminal says the hint


def test_a_batch_grades_the_course_assignment_beside_attention(installed, tmp_path):
    attention = REPO / "student_submissions" / "correct.py"
    result = autograder(installed, tmp_path, "batch", str(SUBMISSIONS), str(attention), "--out", "grades",
                        "--jobs", "2")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "grades" / "gradebook.csv", newline="") as handle:
        rows = {r["submission"]: r for r in csv.DictReader(handle)}
    assert rows["buggy_forgot_sqrt"]["assignment"] == rows["submissions-correct"]["assignment"] == "dot_product"
    assert rows["student_submissions-correct"]["assignment"] == "attention"
    assert float(rows["submissions-correct"]["score"]) == 10 and float(rows["buggy_forgot_sqrt"]["norm"]) < 5
    assert float(rows["student_submissions-correct"]["score"]) == 80


def test_an_unknown_assignment_is_a_one_line_usage_error(installed, tmp_path):
    result = autograder(installed, tmp_path, "grade", str(SUBMISSIONS / "correct.py"), "--assignment", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"autograder: no assignment 'nope'; installed: {WITH_THE_COURSES}"]


def test_a_file_that_matches_no_assignment_names_the_candidates(installed, tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    result = autograder(installed, tmp_path, "grade", str(empty))
    assert result.returncode == 2
    assert f"candidates: {WITH_THE_COURSES}" in result.stderr and len(result.stderr.strip().splitlines()) == 1
