"""The `tokenization` assignment: the reference against GPT-2's tokenizer (the `tokenizers` library on
../shared/data's files; skipped without them), and grading end to end: every catalogued mistake loses
points where it lives and is named; the correct styles get full marks; the template scores nothing."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
from hypothesis import given, settings

from autograder.assignments import registry
from autograder.assignments.tokenization.inputs import PASSAGE, gpt2_merges, learned, permuted_bytes, text_strategy
from autograder.assignments.tokenization.mistakes import CATALOGUE
from autograder.grade import grade
from reference import tokenization as ref
from tests.assignment_grading import assert_is_its_mistake, folder
from tests.grading_helpers import fast_config
from tests.model_fixtures import TOKENIZER_FILES

ASSIGNMENT = "tokenization"
CORRECT = sorted(folder(ASSIGNMENT).glob("correct*.py"))
BUGGY = sorted(folder(ASSIGNMENT).glob("buggy_*.py"))
BY_ID = {m.id for rules in CATALOGUE.rules.values() for m, _ in rules}
HAVE_GPT2 = (TOKENIZER_FILES / "vocab.json").exists()
needs_gpt2 = pytest.mark.skipif(not HAVE_GPT2, reason=f"GPT-2 tokenizer files not at {TOKENIZER_FILES}")


def grade_file(path: Path, out_dir: Path) -> Dict[str, Any]:
    config = out_dir / "tokenization.toml"
    config.write_text(fast_config(max_examples=3) + f"[tokenization]\ngpt2_files = {json.dumps(str(TOKENIZER_FILES))}\n")
    return grade(path, out_dir / f"{path.stem}.json", config_file=config, echo=False, sandbox=False,
                 assignment=ASSIGNMENT)


def test_points_sum_to_100_and_every_mistake_has_an_example():
    points = tomllib.loads(registry.get(ASSIGNMENT).defaults_file.read_text())["points"]
    assert sum(points.values()) == 100
    assert len(BY_ID) == 7 and {p.stem for p in BUGGY} == {f"buggy_{i}" for i in BY_ID}


@needs_gpt2
def test_the_reference_gives_distilgpt2_ids():
    from tokenizers import Tokenizer, models, pre_tokenizers

    bpe = Tokenizer(models.BPE.from_file(str(TOKENIZER_FILES / "vocab.json"), str(TOKENIZER_FILES / "merges.txt")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    merges, byte_ids = gpt2_merges(TOKENIZER_FILES)
    vocab = json.loads((TOKENIZER_FILES / "vocab.json").read_text(encoding="utf-8"))
    assert merges.shape == (50000, 2) and sorted(byte_ids.tolist()) == list(range(256))
    assert ref.bpe_encode("The cat sat on the mat", merges, byte_ids).tolist() == [464, 3797, 3332, 319, 262, 2603]
    for text in (PASSAGE, "naïve café — 日本語 🙂 it's 2024!\n\n  x"):
        ids = ref.bpe_encode(text, merges, byte_ids)
        assert ids.tolist() == bpe.encode(text).ids
        assert ref.bpe_decode(ids, merges, byte_ids) == text
    # byte b's id is the id of GPT-2's printable stand-in for b (' ' -> 'Ġ', 'A' -> 'A')
    assert byte_ids[32] == vocab["Ġ"] and byte_ids[65] == vocab["A"] and byte_ids[0] == vocab["Ā"]


@settings(max_examples=50, deadline=None)
@given(text=text_strategy(80))
def test_reference_round_trips_and_is_deterministic(text):
    ids = ref.bpe_encode(text, learned(), permuted_bytes())
    assert ref.bpe_decode(ids, learned(), permuted_bytes()) == text
    assert ref.decode_chars(ref.encode_chars(text, ref.char_vocab(text)), ref.char_vocab(text)) == text
    assert torch.equal(ref.learn_bpe(text, 8), ref.learn_bpe(text, 8))


def test_ties_go_to_the_smallest_pair():
    assert ref.learn_bpe("ba ab", 1).tolist() == [[32, 97]]  # pairs ba, " a", ab once each: (32, 97) is smallest
    assert ref.learn_bpe("aaabdaaabac", 2).tolist() == [[97, 97], [97, 98]]


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_each_mistake_loses_points_where_it_lives_and_is_named(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path)
    assert document["assignment"] == ASSIGNMENT
    assert_is_its_mistake(document, ASSIGNMENT, path)


@needs_gpt2
@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_styles_get_full_marks(path: Path, tmp_path: Path):
    document = grade_file(path, tmp_path)
    assert document["max_score"] == 100
    assert document["score"] == 100, [(c["id"], c["message"]) for c in document["checks"] if c["status"] != "passed"]


def test_the_template_scores_nothing(tmp_path: Path):
    assert grade_file(folder(ASSIGNMENT) / "template.py", tmp_path)["score"] == 0
