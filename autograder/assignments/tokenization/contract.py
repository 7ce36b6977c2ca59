"""The student contract of the `tokenization` assignment: functions and sections.

Texts are str (at most 4,000 characters cross the seam), ids and merges int64 tensors, vocabularies str:
plain deterministic functions whose ties are broken by a stated rule (reference/tokenization.py).
Example: "The cat sat on the mat" with GPT-2's merges -> [464, 3797, 3332, 319, 262, 2603].
"""
from __future__ import annotations

from autograder.assignments.spec import Assignment, Example, Function

EXAMPLE_TEXT = "The cat sat on the mat"
EXAMPLE_GPT2_IDS = (464, 3797, 3332, 319, 262, 2603)

FUNCTIONS = (
    Function("char_vocab", "char_vocab(text) -> str: the distinct characters of text sorted by code point",
             ("vocab",), "char_vocab"),
    Function("encode_chars", "encode_chars(text, vocab) -> int64 [len(text)]: each character's index in vocab",
             ("ids",), "char_encode"),
    Function("decode_chars", "decode_chars(ids [n], vocab) -> str: vocab[ids[0]] vocab[ids[1]] ...",
             ("text",), "char_decode"),
    Function("learn_bpe", "learn_bpe(text, n_merges) -> int64 [n, 2]: over GPT-2's chunks of text's UTF-8 bytes, "
             "merge k joins the most frequent adjacent pair (ties: the smallest pair) into id 256 + k",
             ("merges",), "learn"),
    Function("bpe_encode", "bpe_encode(text, merges [n, 2], byte_ids [256]) -> int64 [n_tokens]: per chunk, "
             "bytes as byte_ids, then the lowest merge present applied until none is", ("ids",), "encode"),
    Function("bpe_decode", "bpe_decode(ids [n], merges [n, 2], byte_ids [256]) -> str: ids expanded to bytes, "
             "UTF-8 decoded (errors='replace')", ("text",), "decode"),
)

ASSIGNMENT = Assignment(
    name="tokenization",
    title="Tokenization: characters and byte-pair encoding",
    functions=FUNCTIONS,
    sections=("char_vocab", "char_encode", "char_decode", "learn", "encode", "decode"),
    package="autograder.assignments.tokenization",
    reference="reference.tokenization",
    mistakes="autograder.assignments.tokenization.mistakes",
    example=Example(EXAMPLE_TEXT, {"ids": (len(EXAMPLE_GPT2_IDS),), "byte_ids": (256,), "merges": (50000, 2)}),
    example_args=None,  # outputs are str and ids of any length: each check compares them exactly (exact.py)
    capstone=None,
)
