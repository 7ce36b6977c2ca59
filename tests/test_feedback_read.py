"""Feedback that is read: a leftover breakpoint() named, prints shown live with --no-sandbox, the
template's stub of the optional composed function costing nothing, one `pictures:` line."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from autograder.assignments.attention import ASSIGNMENT
from autograder.report import terminal
from autograder.runtime.submission import Submission, SubmissionError
from reference import attention as ref
from tests.grading_helpers import CORRECT, FAST_CONFIG, by_id, grade_quick, variant

STUB = '''
def scaled_dot_product_attention(Q, K, V, mask=None):
    raise NotImplementedError("scaled_dot_product_attention: return (attended, weights)")
'''


def _with(source_change: str, tmp: Path, name: str) -> Path:
    return variant(tmp, name, CORRECT.read_text() + source_change)


def _submission(path: Path, **kwargs) -> Submission:
    return Submission(path, contract=ASSIGNMENT.wire(), call_timeout=20, import_timeout=60, **kwargs)


def test_a_leftover_breakpoint_fails_fast_and_is_named(tmp_path):
    """In the sandboxed worker, breakpoint() fails the call at once with its line (no pdb on a pipe)."""
    lines = CORRECT.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("def attention_scores"))
    body = next(i for i in range(at + 1, len(lines)) if lines[i].strip() and not lines[i].strip().startswith(('"', "'")))
    lines.insert(body, "    breakpoint()")
    path = variant(tmp_path, "with_breakpoint.py", "\n".join(lines) + "\n")
    Q, K = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    with _submission(path) as sub:
        start = time.monotonic()
        with pytest.raises(SubmissionError) as err:
            sub.call("attention_scores", Q, K)
        assert time.monotonic() - start < 10
    assert err.value.kind == "raised"
    assert f"breakpoint() at line {body + 1} of your file: remove it, or debug with --no-sandbox" in err.value.message

    at_import = variant(tmp_path, "breakpoint_at_import.py", "breakpoint()\n" + CORRECT.read_text())
    with _submission(at_import) as sub:
        assert sub.load_error is not None
        assert "breakpoint() at line 1 of your file" in sub.load_error.message


def test_no_sandbox_shows_prints_as_they_happen_and_keeps_them(tmp_path):
    path = _with('\n_real = attention_scores\n\ndef attention_scores(Q, K):\n'
                 '    print("scores of shape", tuple(Q.shape))\n    return _real(Q, K)\n', tmp_path, "printing.py")
    shown = []
    with _submission(path, sandbox=False, live=shown.append) as sub:
        sub.call("attention_scores", torch.randn(2, 3, 4), torch.randn(2, 3, 4))
        assert "".join(shown) == "scores of shape (2, 3, 4)\n"  # already there when the call returns
        assert sub.output == "scores of shape (2, 3, 4)\n"


def test_no_sandbox_prints_reach_the_terminal_under_pytest_capture(tmp_path):
    """`pytest --submission F --no-sandbox`: the student's prints reach the terminal (pytest captures each
    check's output; the grader shows theirs anyway) and the report keeps them."""
    path = _with('\n_real = attention_scores\n\ndef attention_scores(Q, K):\n'
                 '    print("LIVE-DEBUG", tuple(Q.shape))\n    return _real(Q, K)\n', tmp_path, "printing.py")
    config = tmp_path / "course.toml"
    config.write_text(FAST_CONFIG)
    report = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "--submission", str(path), "--no-sandbox",
                          "--grading-config", str(config), "--grade-json", str(report), "-k", "scores",
                          "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:]
    before_table = run.stdout.split("=== attention-autograder")[0]
    assert "LIVE-DEBUG (1, 6, 64)" in before_table
    assert "LIVE-DEBUG (1, 6, 64)" in json.loads(report.read_text())["submission"]["output"]


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_templates_stub_of_the_composed_function_counts_as_absent(tmp_path, sandbox):
    path = _with(STUB, tmp_path, "stub.py")
    Q, K, V = (torch.randn(2, 5, 8, dtype=torch.float64) for _ in range(3))
    with _submission(path, sandbox=sandbox) as sub:
        attended, weights = sub.call("attention", Q, K, V)
    expected, expected_weights = ref.scaled_dot_product_attention(Q, K, V)
    torch.testing.assert_close(attended, expected)
    torch.testing.assert_close(weights, expected_weights)

    # a stub whose steps are missing too still says what is missing
    lone = variant(tmp_path, "lone_stub.py", "def attention_scores(Q, K):\n    return Q\n" + STUB)
    with _submission(lone, sandbox=sandbox) as sub, pytest.raises(SubmissionError):
        sub.call("attention", Q, K, V)


def test_the_templates_stub_costs_no_points(tmp_path):
    document = grade_quick(_with(STUB, tmp_path, "stub.py"), tmp_path, extra=["-k", "attention"])
    attention = [c for c in by_id(document).values() if c["section"] == "attention"]
    assert attention and all(c["status"] == "passed" for c in attention), attention


def test_one_pictures_line_for_all_heatmaps():
    document = {"status": "graded", "environment": {}, "submission": {"name": "a.py", "load_error": None, "output": ""}, "assignment": "attention",
                "sections": {}, "score": 0, "max_score": 0, "checks": [],
                "artifacts": [{"kind": "heatmap", "path": f"/r/report-heatmaps/layer0_head{h:02d}.png"}
                              for h in range(12)]}
    text = terminal.render(document, Path("/r/report.json"))
    assert [line for line in text.splitlines() if "picture" in line] == ["pictures: 12 in /r/report-heatmaps/"]
    assert "picture" not in terminal.render(dict(document, artifacts=[]), Path("/r/report.json"))


def test_a_template_stub_is_told_to_be_filled_in_not_to_run_the_example():
    """A TODO left as the template's `raise NotImplementedError(...)`: the hint says so, whatever the example."""
    from autograder.feedback import STUB, hint_for
    from autograder.runtime.submission import SubmissionError

    stub = SubmissionError("raised", "attention_scores raised NotImplementedError: section 2", "",
                           ("NotImplementedError", "section 2: attention_scores"))
    other = SubmissionError("raised", "attention_scores raised ValueError: bad", "", ("ValueError", "bad"))
    assert hint_for(stub) == hint_for(stub, example_passed=True) == STUB
    assert hint_for(other) != STUB and hint_for(other, example_passed=True) != STUB


def test_every_check_a_stub_fails_says_fill_it_in_the_model_section_too(tmp_path):
    """attention_scores left as the template's stub: each check it fails (its section, the composed
    attention, the model section) has the stub's hint, not an input ladder's "raises on every input kind"."""
    from autograder.feedback import STUB

    source = CORRECT.read_text().replace(
        "def attention_scores(Q, K):", "def attention_scores(Q, K):\n    raise NotImplementedError('section 2')", 1)
    (tmp_path / "autograder.toml").write_text(FAST_CONFIG.replace("enabled = false", 'name = "builtin"'))
    document = grade_quick(variant(tmp_path, "stub_scores.py", source), tmp_path)
    lost = [c for c in document["checks"] if c["status"] != "passed"]
    assert {c["section"] for c in lost} == {"scores", "attention", "model"}
    assert all(c["hint"] == STUB for c in lost), [(c["id"], c["hint"]) for c in lost if c["hint"] != STUB]
