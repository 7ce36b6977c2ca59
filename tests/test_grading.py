"""Grading the example submissions end to end: full marks, each classic mistake named, reproducible."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from autograder.assignments.attention import mistakes as diagnosis
from autograder.config import load_config
from tests.grading_helpers import (
    FAST_CONFIG,
    SUBMISSIONS,
    by_id,
    fast_config,
    grade_quick,
    lost,
    variant,
)

CORRECT = sorted(SUBMISSIONS.glob("correct*.py"))
BUGGY = sorted(SUBMISSIONS.glob("buggy_*.py"))
UNIT_SECTIONS = ("projections", "scores", "softmax", "values", "attention")


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Dict[str, Dict[str, Any]]:
    """Reports by file stem, graded lazily once per module."""
    out = tmp_path_factory.mktemp("corpus")
    cache: Dict[str, Dict[str, Any]] = {}

    class Lazy(dict):
        def __missing__(self, path: Path) -> Dict[str, Any]:
            cache[path] = grade_quick(path, out)
            return cache[path]

    return Lazy()


def test_corpus_is_big_enough():
    assert len(CORRECT) >= 4 and len(BUGGY) >= 10


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_styles_get_full_marks(graded, path):
    document = graded[path]
    assert lost(document) == [], document["feedback"]
    assert document["score"] == document["max_score"] == 80


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_classic_mistake_loses_points_in_its_section_and_is_named(graded, path):
    mistake = diagnosis.mistake(path.stem[len("buggy_"):])
    document = graded[path]
    failing = [c for c in document["checks"] if c["status"] != "passed"]
    assert failing, f"{path.name} earned full marks"
    section = mistake.section if mistake not in diagnosis.PRECISION_MISTAKES else \
        path.read_text().splitlines()[0].split(", ")[1].split(" loses points")[0]
    if section in UNIT_SECTIONS:
        allowed = {section, "attention"}
        assert {c["section"] for c in failing} <= allowed, lost(document)
        assert any(c["section"] == section for c in failing)
    else:  # gradient mistakes: only gradient checks may fail
        assert all(c["id"].endswith(".gradients") for c in failing), lost(document)
    named = {c["mistake"] for c in failing}
    assert mistake.id in named, f"{path.name}: diagnosis named {named}"
    hinted = [c for c in failing if c["mistake"] == mistake.id]
    assert all(c["hint"].startswith(mistake.hint.split("{")[0]) for c in hinted)  # fitted hints fill a template


def test_template_scores_zero_and_says_not_implemented(graded):
    document = graded[SUBMISSIONS / "template.py"]
    assert document["score"] == 0
    assert "NotImplementedError" in by_id(document)["scores.values"]["message"]
    # feedback names each failing check once, one line per distinct message (a section's checks share one)
    feedback = document["feedback"]
    assert len(feedback) < len(lost(document))
    named = [i for line in feedback for i in line[1:line.index("]")].split(", ")]
    assert sorted(named) == lost(document)


# Mistakes of behaviour rather than value, one function at a time (the corpus files keep behaviour right).
GOOD = (SUBMISSIONS / "correct_sections_only.py").read_text()
BEHAVIOUR = {  # check id -> (correct line, the line with the behaviour mistake; values stay right)
    "projections.contract": ("Q = torch.matmul(x, W_q)", "Q = torch.matmul(x.mul_(1.0 + 1e-3) / (1.0 + 1e-3), W_q)"),
    "scores.contract": ("return torch.matmul(Q, K.mT) * scale", "return torch.matmul(Q.mul_(scale), K.mT)"),
    "softmax.contract": ("return F.softmax(scores, dim=-1)", "return F.softmax(scores.float(), dim=-1)"),
    "values.contract": ("return torch.matmul(weights, V)", "return torch.matmul(weights, V) + 1e-3 * torch.rand(())"),
}


def _variant_source(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def test_every_check_is_failed_by_some_known_buggy_submission(graded, tmp_path):
    """No check is unfailable: the corpus plus behaviour variants fail every unit check at least once."""
    failed = set()
    for path in BUGGY:
        failed |= set(lost(graded[path]))
    for check_id, (old, new) in BEHAVIOUR.items():
        document = grade_quick(variant(tmp_path, f"{check_id.replace('.', '_')}.py", _variant_source(old, new)), tmp_path)
        assert check_id in lost(document), f"{check_id} not failed by its variant: {lost(document)}"
        failed |= set(lost(document))
    points = load_config(assignment="attention").data["points"]
    unit_checks = {cid for cid in points if not cid.startswith("model.")}
    assert unit_checks - failed == set()


def test_two_runs_give_identical_reports_apart_from_timings(graded, tmp_path):
    """With shrinking on (the default): the same shrunk examples in the messages, run after run; and the
    same score and failing checks as the corpus's grade without shrinking."""
    path = SUBMISSIONS / "buggy_softmax_wrong_axis.py"
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "autograder.toml").write_text(fast_config(shrink=True))
        runs.append(grade_quick(path, tmp_path / name))
    assert runs[0]["score"] == graded[path]["score"] and lost(runs[0]) == lost(graded[path])
    first, second = runs
    for doc in runs:
        doc.pop("timing"); doc.pop("_exit")
        for check in doc["checks"]:
            check.pop("duration_s")
        doc["environment"].pop("config_sources")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_course_config_sets_points_and_hides_checks(tmp_path):
    (tmp_path / "autograder.toml").write_text(
        'hidden = ["scores.any_shapes"]\n' + FAST_CONFIG + '[points]\n"scores.values" = 40\n')
    document = grade_quick(SUBMISSIONS / "buggy_no_scaling.py", tmp_path)
    checks = by_id(document)
    assert checks["scores.values"]["max_score"] == 40 and document["max_score"] == 116
    assert checks["scores.any_shapes"]["hidden"] and "hidden check" in checks["scores.any_shapes"]["message"]
    assert checks["scores.any_shapes"]["hint"] is None


def test_terminal_says_a_shared_hint_once_after_the_checks_it_explains(graded):
    from autograder.report import terminal

    document = graded[SUBMISSIONS / "buggy_softmax_wrong_axis.py"]
    hint = diagnosis.mistake("softmax_wrong_axis").hint
    assert sum(c["hint"] == hint for c in document["checks"]) >= 3
    text = terminal.render(document, Path("report.json"))
    assert text.count(hint) == 1
    fixes = text.split("What to fix:")[1].splitlines()
    hint_at = next(i for i, line in enumerate(fixes) if hint in line)
    assert "softmax.values" in "\n".join(fixes[:hint_at]) and "attention.values" in "\n".join(fixes[:hint_at])


def test_a_second_grade_in_one_process_uses_its_own_hypothesis_settings(tmp_path):
    """`@given` takes its settings when a check module is imported: a second in-process grade under another
    config must re-import the checks, not keep the first grade's max_examples."""
    import sys

    for n in (3, 7):
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "autograder.toml").write_text(fast_config(max_examples=n))
        grade_quick(SUBMISSIONS / "correct.py", folder, sandbox=False)
        module = sys.modules["autograder.assignments.attention.checks.test_properties"]
        found = {getattr(module, name)._hypothesis_internal_use_settings.max_examples for name in dir(module)
                 if hasattr(getattr(module, name), "_hypothesis_internal_use_settings")}
        assert found == {n}
