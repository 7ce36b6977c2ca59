"""Bad submissions get a clear, graded answer and a valid report: never a traceback wall or a hang."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.grading_helpers import by_id, grade_quick, variant

GOOD = '''
import math, torch

def linear_projections(x, W_q, W_k, W_v):
    return x @ W_q, x @ W_k, x @ W_v

def attention_scores(Q, K):
    return Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])

def attention_weights(scores, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)

def aggregate_values(weights, V):
    return weights @ V
'''


def swap(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


def sections_lost(document) -> set:
    return {c["section"] for c in document["checks"] if c["status"] != "passed"}


def test_good_baseline_full_marks(out):
    document = grade_quick(variant(out, "good.py", GOOD), out)
    assert document["score"] == document["max_score"] == 80
    assert document["status"] == "graded" and document["_exit"] == 0


@pytest.mark.parametrize("name, content, fragment", [
    ("empty.py", "", "is empty"),
    ("syntax.py", GOOD + "\ndef broken(:\n", "syntax error at line"),
    ("latin1.py", GOOD.encode() + b"\n# caf\xe9\n", "not UTF-8"),
    ("imports.py", "import numpyy_not_installed\n" + GOOD, "ModuleNotFoundError"),
    ("notes.txt", GOOD, "not a Python file"),
    ("exits.py", "import sys\nsys.exit(3)\n" + GOOD, "SystemExit"),
])
def test_unloadable_files_score_zero_with_one_message(out, name, content, fragment):
    document = grade_quick(variant(out, name, content), out)
    assert document["status"] == "not_gradable"
    assert document["score"] == 0 and document["max_score"] == 80
    assert fragment in document["submission"]["load_error"]
    assert document["feedback"] == [f"[load] {document['submission']['load_error']}"]
    assert all(c["status"] == "error" for c in document["checks"])


def test_missing_function_loses_only_its_sections(out):
    document = grade_quick(variant(out, "no_values.py", swap("def aggregate_values(weights, V):\n    return weights @ V", "")), out)
    # the composed attention needs aggregate_values too
    assert sections_lost(document) == {"values", "attention"}
    assert "aggregate_values is not defined" in by_id(document)["values.shapes"]["message"]


@pytest.mark.parametrize("body, fragment", [
    ("return (weights @ V).tolist()", "returned a list"),
    ("return (weights @ V).numpy()", "numpy.ndarray"),
    ("return None", "returned None"),
    ("return weights @ V, weights", "returned a tuple"),
])
def test_wrong_return_types_explained(out, body, fragment):
    path = variant(out, f"ret_{abs(hash(body))}.py", swap("return weights @ V", body))
    document = grade_quick(path, out)
    shapes = by_id(document)["values.shapes"]
    assert shapes["status"] == "failed" and fragment in shapes["message"]
    assert by_id(document)["scores.values"]["status"] == "passed"


def test_wrong_tuple_length_for_projections(out):
    document = grade_quick(variant(out, "two.py", swap("return x @ W_q, x @ W_k, x @ W_v", "return x @ W_q, x @ W_k")), out)
    assert "expected a tuple of 3 tensors" in by_id(document)["projections.shapes"]["message"]


def test_nan_outputs_are_named(out):
    document = grade_quick(variant(out, "nan.py", swap("return weights @ V", "return (weights @ V) * float('nan')")), out)
    message = by_id(document)["values.values"]["message"]
    assert "contain NaN at" in message and "where the reference is" in message
    assert by_id(document)["values.values"]["status"] == "failed"


def test_hanging_function_is_stopped_and_the_rest_graded(out):
    document = grade_quick(variant(out, "hang.py", swap("return weights @ V", "while True:\n        pass")), out)
    assert by_id(document)["values.shapes"]["status"] == "error"
    assert "did not return within" in by_id(document)["values.shapes"]["message"]
    assert by_id(document)["scores.values"]["status"] == "passed"
    assert document["timing"]["duration_s"] < 30


def test_raising_function_points_at_the_line(out):
    document = grade_quick(variant(out, "raises.py", swap("return weights @ V", "raise ValueError('oops')")), out)
    message = by_id(document)["values.shapes"]["message"]
    assert "aggregate_values raised ValueError: oops" in message and "line" in message


def test_crash_of_the_interpreter_is_graded(out):
    document = grade_quick(variant(out, "crash.py", swap("return weights @ V", "import os; os._exit(0)")), out)
    assert "ended the Python process" in by_id(document)["values.shapes"]["message"]
    assert by_id(document)["softmax.values"]["status"] == "passed"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_usage_errors_exit_2_without_traceback(tmp_path):
    missing = _cli("grade", "nope.py", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    folder = _cli("grade", str(tmp_path), cwd=tmp_path)
    assert folder.returncode == 2 and "is a directory" in folder.stderr


def test_pytest_usage_error_for_missing_submission(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", "--submission", "nope.py", "-p", "no:cacheprovider"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 4 and "no such file" in run.stderr
