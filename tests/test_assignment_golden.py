"""The attention assignment grades every example submission exactly as before it became an Assignment.

tests/golden/attention_grades.json was recorded with the code before the move (see
tests/golden/attention_grades.py): per file, each check's id, status, score, max_score, named mistake and
hint, and the total score and status. Each config is regraded in one batch run and compared.
"""
from __future__ import annotations

import json

import pytest

from tests.golden.attention_grades import CONFIGS, GOLDEN, grade_all, grade_with_model
from tests.grading_helpers import SUBMISSIONS
from tests.model_fixtures import gpt2_dir  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow
RECORDED = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_example_grades_as_recorded(config):
    expected = RECORDED[config]
    got = grade_all([SUBMISSIONS / name for name in sorted(expected)], CONFIGS[config])
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name


def test_the_model_section_grades_as_recorded(gpt2_dir):
    expected = RECORDED["model"]
    got = grade_with_model(gpt2_dir)
    for name in expected:
        assert got[name] == expected[name], name
