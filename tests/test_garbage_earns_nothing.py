"""Checks that a garbage answer must not pass: property checks (round trips, causality, per-head weights)
that a function ignoring the contract could satisfy are gated on the reference's values. Each case is a
correct file with one function made garbage; the named checks, which it passed before, now fail."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.grading_helpers import SUBMISSIONS, fast_config, grade_quick, passed

IDENTITY_TOKENIZER = '''
def char_vocab(text):
    return "".join(sorted(set(text)))


def encode_chars(text, vocab):  # returns its input: the pair below "round-trips" anything
    return text


def decode_chars(ids, vocab):
    return ids


def learn_bpe(text, num_merges):
    raise NotImplementedError


def bpe_encode(text, merges, byte_ids):
    return text


def bpe_decode(ids, merges, byte_ids):
    return ids
'''


def _with(source: str, old: str, new: str) -> str:
    assert old in source
    return source.replace(old, new)


CASES = {
    "tokenization": (lambda: IDENTITY_TOKENIZER, ["char_encode.round_trip", "char_decode.round_trip",
                                                  "decode.round_trip"]),
    "tinygpt": (lambda: _with((SUBMISSIONS / "tinygpt" / "correct.py").read_text(),
                              '    return x @ params["wte"].transpose(0, 1)',
                              '    return torch.zeros(*ids.shape, params["wte"].shape[0], dtype=params["wte"].dtype)'),
                ["forward.causal"]),
    "multihead": (lambda: _with((SUBMISSIONS / "multihead" / "correct.py").read_text(),
                                "    return out, weights", "    return torch.zeros_like(out), weights"),
                  ["attention.per_head"]),
}


@pytest.mark.parametrize("assignment", sorted(CASES))
def test_a_property_check_is_not_passed_by_garbage(assignment: str, tmp_path: Path) -> None:
    make, checks = CASES[assignment]
    path = tmp_path / "garbage.py"
    path.write_text(make())
    (tmp_path / "autograder.toml").write_text(fast_config(max_examples=3, assignment=assignment))
    document = grade_quick(path, tmp_path, assignment=assignment)
    got = passed(document)
    assert [c for c in checks if c in got] == [], [(c["id"], c["message"][:120]) for c in document["checks"]]
    assert {c["id"] for c in document["checks"]} >= set(checks)  # they ran (and were not skipped)
