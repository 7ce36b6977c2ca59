"""The `embeddings` assignment graded end to end and its catalogue: every catalogued mistake loses points
where it lives and is named by its hint; the correct styles get full marks; the template scores nothing."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch

from autograder.assignments import registry
from autograder.assignments.embeddings.mistakes import CATALOGUE
from reference import embeddings as ref
from tests.assignment_grading import assert_is_its_mistake, folder, grade_file

ASSIGNMENT = "embeddings"
CORRECT = sorted(folder(ASSIGNMENT).glob("correct*.py"))
BUGGY = sorted(folder(ASSIGNMENT).glob("buggy_*.py"))
BY_ID = {m.id: f for f, rules in CATALOGUE.rules.items() for m, _ in rules}


def test_points_sum_to_100_and_every_mistake_has_an_example():
    spec = registry.get(ASSIGNMENT)
    assert spec.name == ASSIGNMENT and spec.capstone is None
    points = tomllib.loads(spec.defaults_file.read_text())["points"]
    assert sum(points.values()) == 100
    assert {"sin_cos_concatenated", "exponent_i_over_d", "positions_from_one", "wrong_base",
            "replaced_not_added"} <= set(BY_ID)
    assert {p.stem for p in BUGGY} == {f"buggy_{i}" for i in BY_ID}


def test_rules_differ_from_the_reference():
    inputs = {"sinusoidal_positions": {"seq_len": 16, "d_model": 8},
              "embed": {"ids": torch.tensor([[1, 0, 2]]), "table": torch.randn(3, 8, dtype=torch.float64),
                        "positions": torch.randn(5, 8, dtype=torch.float64)}}
    for function, inputs_of in inputs.items():
        want = getattr(ref, function)(**inputs_of)
        for mistake, rule in CATALOGUE.rules[function]:
            for got in rule(**inputs_of):
                assert got.shape == want.shape and not torch.allclose(got, want), mistake.id


def test_reference_sinusoids_follow_the_contract():
    pe = ref.sinusoidal_positions(50, 10).to(torch.float64)
    p, i = 37, 3
    angle = p / 10000 ** (2 * i / 10)
    assert abs(pe[p, 2 * i] - torch.sin(torch.tensor(angle))) < 1e-6
    assert abs(pe[p, 2 * i + 1] - torch.cos(torch.tensor(angle))) < 1e-6
    assert torch.equal(pe[0, 0::2], torch.zeros(5)) and torch.equal(pe[0, 1::2], torch.ones(5))


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_mistake_loses_points_where_it_lives_and_is_named(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path, ASSIGNMENT)
    assert document["assignment"] == ASSIGNMENT
    assert_is_its_mistake(document, ASSIGNMENT, path)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_styles_get_full_marks(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path, ASSIGNMENT)
    assert document["max_score"] == 100
    assert document["score"] == 100, [(c["id"], c["message"]) for c in document["checks"] if c["status"] != "passed"]


def test_the_template_scores_nothing(tmp_path: Path):
    assert grade_file(folder(ASSIGNMENT) / "template.py", tmp_path, ASSIGNMENT)["score"] == 0
