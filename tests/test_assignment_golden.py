"""The attention assignment grades every example submission exactly as recorded.

tests/golden/attention_grades.json (see tests/golden/attention_grades.py) was first recorded with the code
before the assignment became a package, and this test proved the move changed no check, score or named
mistake. It now guards every later refactor the same way: per file, each check's id, status, score,
max_score, named mistake and hint, and the total score and status. A change that is meant to change grades
or hints regenerates the JSON (`python -m tests.golden.attention_grades`) in the same commit.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from tests.golden.attention_grades import CONFIGS, GOLDEN, grade_all, grade_with_model
from tests.grading_helpers import SUBMISSIONS
from tests.model_fixtures import gpt2_dir  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow
RECORDED = json.loads(GOLDEN.read_text())


def differences(expected: Dict[str, Any], got: Dict[str, Any]) -> List[str]:
    """One line per file and check that differs: 'file check: field recorded -> now'."""
    lines = []
    for name in sorted(expected):
        want, have = expected[name], got.get(name, {"checks": []})
        if want.get("score") != have.get("score") or want.get("status") != have.get("status"):
            lines.append(f"{name}: score {want.get('score')} -> {have.get('score')}, "
                         f"status {want.get('status')} -> {have.get('status')}")
        now = {c["id"]: c for c in have["checks"]}
        for check in want["checks"]:
            other = now.pop(check["id"], {})
            changed = [f"{k} {check[k]!r:.60} -> {other.get(k)!r:.60}" for k in check if other.get(k) != check[k]]
            if changed:
                lines.append(f"{name} {check['id']}: " + "; ".join(changed))
        lines += [f"{name} {cid}: a new check" for cid in now]
    return lines


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_example_grades_as_recorded(config):
    expected = RECORDED[config]
    got = grade_all([SUBMISSIONS / name for name in sorted(expected)], CONFIGS[config])
    assert differences(expected, got) == []


def test_the_model_section_grades_as_recorded(gpt2_dir):
    expected = RECORDED["model"]
    assert differences(expected, grade_with_model(gpt2_dir)) == []
