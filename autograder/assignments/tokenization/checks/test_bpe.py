"""Byte-pair encoding: learned merges, encoding and decoding against the reference exactly (fixed texts,
identity and permuted byte maps, and hypothesis text), round trips on arbitrary unicode text, and
GPT-2's own merges: "The cat sat on the mat" and a Hamlet passage give distilgpt2's ids."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from autograder.assignments.tokenization.contract import EXAMPLE_GPT2_IDS, EXAMPLE_TEXT
from autograder.assignments.tokenization.exact import against_reference, call, expect, show
from autograder.assignments.tokenization.inputs import (PASSAGE, TEXTS, gpt2_folder, gpt2_merges, identity_bytes,
                                                        learned, permuted_bytes, text_strategy)
from autograder.feedback import NotGraded
from reference import tokenization as ref

BYTE_MAPS = {"byte_ids = arange(256)": identity_bytes, "a permuted byte_ids": permuted_bytes}


@pytest.mark.check("learn.values")
def test_learn(submission):
    """Merges learned from fixed texts (ties decided by the smallest pair), the same twice."""
    for where, text in TEXTS.items():
        for n in (1, 5, 30):
            against_reference(submission, "learn_bpe", (text, n), f"{where}, n_merges={n}")
    first = call(submission, "learn_bpe", (PASSAGE, 30))
    expect("learn_bpe", (PASSAGE, 30), call(submission, "learn_bpe", (PASSAGE, 30)), first,
           "Hamlet, n_merges=30, a second time", "no randomness and no state between calls")


@pytest.mark.check("learn.any_text")
@given(text=text_strategy(60), n=st.integers(0, 12))
def test_learn_any_text(submission, text, n):
    against_reference(submission, "learn_bpe", (text, n), f"{show(text)}, n_merges={n}")


@pytest.mark.check("encode.values")
def test_encode(submission):
    """Fixed texts with 40 merges learned from Hamlet and a unicode text, both byte maps."""
    for where, text in TEXTS.items():
        for maps, byte_ids in BYTE_MAPS.items():
            against_reference(submission, "bpe_encode", (text, learned(), byte_ids()), f"{where}, {maps}")


@pytest.mark.check("encode.any_text")
@given(text=text_strategy())
def test_encode_any_text(submission, text):
    against_reference(submission, "bpe_encode", (text, learned(), permuted_bytes()), show(text))


@pytest.mark.check("decode.values")
def test_decode(submission):
    for where, text in TEXTS.items():
        for maps, byte_ids in BYTE_MAPS.items():
            ids = ref.bpe_encode(text, learned(), byte_ids())
            against_reference(submission, "bpe_decode", (ids, learned(), byte_ids()), f"{where}, {maps}")
    half_char = ref.bpe_encode("é", learned(), identity_bytes())[:1]  # one byte of a two-byte character
    against_reference(submission, "bpe_decode", (half_char, learned(), identity_bytes()),
                      "the first byte of 'é' alone (not UTF-8: U+FFFD)")


@pytest.mark.check("decode.round_trip")
@given(text=text_strategy())
def test_round_trip(submission, text):
    """Your bpe_decode turns the contract's ids of arbitrary unicode text back into the text (permuted byte
    map). The ids are the reference encoder's: through your own encoder, any pair of functions that undo each
    other (two that return their input) would pass."""
    args = (learned(), permuted_bytes())
    against_reference(submission, "bpe_decode", (ref.bpe_encode(text, *args), *args), f"the ids of {show(text)}")


def _gpt2(course):
    folder = gpt2_folder(str(course.data.get("tokenization", {}).get("gpt2_files", "")))
    found = gpt2_merges(folder)
    if found is None:
        raise NotGraded(f"GPT-2's tokenizer files are not at {folder} (set [tokenization] gpt2_files)")
    return found


@pytest.mark.check("encode.gpt2")
def test_gpt2_encode(submission, course):
    """With GPT-2's 50,000 merges and byte order: distilgpt2's ids for the example and a Hamlet passage."""
    merges, byte_ids = _gpt2(course)
    expect("bpe_encode", (EXAMPLE_TEXT, merges, byte_ids), call(submission, "bpe_encode", (EXAMPLE_TEXT, merges,
           byte_ids)), torch.tensor(EXAMPLE_GPT2_IDS), f"{EXAMPLE_TEXT!r} with GPT-2's merges")
    against_reference(submission, "bpe_encode", (PASSAGE, merges, byte_ids), "Hamlet with GPT-2's merges")


@pytest.mark.check("decode.gpt2")
def test_gpt2_decode(submission, course):
    merges, byte_ids = _gpt2(course)
    for where, text in (("the example", EXAMPLE_TEXT), ("Hamlet", PASSAGE)):
        ids = ref.bpe_encode(text, merges, byte_ids)
        against_reference(submission, "bpe_decode", (ids, merges, byte_ids), f"GPT-2's ids of {where}")
