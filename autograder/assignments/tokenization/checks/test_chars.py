"""The character tokenizer: the vocabulary, encoding and decoding on fixed texts, and round trips on
arbitrary unicode text (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import given

from autograder.assignments.tokenization.exact import against_reference, show
from autograder.assignments.tokenization.inputs import TEXTS, text_strategy
from reference import tokenization as ref


@pytest.mark.check("char_vocab.values")
def test_vocab(submission):
    """The distinct characters of each text, sorted by code point (the empty text: '')."""
    for where, text in TEXTS.items():
        against_reference(submission, "char_vocab", (text,), where)


@pytest.mark.check("char_encode.values")
def test_encode(submission):
    """Each character's index in the (sorted) vocabulary; the vocabulary may hold more characters."""
    for where, text in TEXTS.items():
        against_reference(submission, "encode_chars", (text, ref.char_vocab(text)), where)
    against_reference(submission, "encode_chars", ("bad", "abcdefgh"), "'bad' with the vocabulary 'abcdefgh'")


@pytest.mark.check("char_decode.values")
def test_decode(submission):
    for where, text in TEXTS.items():
        vocab = ref.char_vocab(text)
        against_reference(submission, "decode_chars", (ref.encode_chars(text, vocab), vocab), where)


@pytest.mark.check("char_encode.round_trip")
@given(text=text_strategy())
def test_encode_round_trip(submission, text):
    """On arbitrary unicode text your encode_chars gives the contract's ids, the ones decode_chars turns back
    into the text (a round trip through your own two functions alone would pass for any pair that undo
    each other, e.g. two functions that return their input)."""
    against_reference(submission, "encode_chars", (text, ref.char_vocab(text)), show(text))


@pytest.mark.check("char_decode.round_trip")
@given(text=text_strategy())
def test_decode_round_trip(submission, text):
    """Your decode_chars turns the contract's ids of arbitrary unicode text back into the text."""
    vocab = ref.char_vocab(text)
    against_reference(submission, "decode_chars", (ref.encode_chars(text, vocab), vocab), f"the ids of {show(text)}")
