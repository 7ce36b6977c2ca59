"""The student contract of the `embeddings` assignment: functions, sections and the worked example.

Example ("The cat sat on the mat", distilgpt2's sizes): ids [1, 6], table [50257, 768] (a random one of
the same width and a small vocabulary in the checks), positions [1024, 768], embeddings [1, 6, 768].
"""
from __future__ import annotations

from autograder.assignments.spec import Assignment, Example, Function

EXAMPLE_IDS = (464, 3797, 3332, 319, 262, 2603)  # "The cat sat on the mat", GPT-2's tokenizer
EXAMPLE_VOCAB, EXAMPLE_D_MODEL, EXAMPLE_MAX_SEQ = 4096, 768, 1024

FUNCTIONS = (
    Function("token_embedding", "token_embedding(ids [..., seq] int64, table [vocab, d_model]) -> "
             "[..., seq, d_model]: row ids[...] of the table", ("embeddings",), "token"),
    Function("sinusoidal_positions", "sinusoidal_positions(seq_len, d_model) -> [seq_len, d_model] in torch's "
             "default dtype, d_model even: PE[p, 2i] = sin(p / 10000^(2i/d_model)), PE[p, 2i+1] = "
             "cos(p / 10000^(2i/d_model)), p = 0, 1, ...", ("positions",), "positions"),
    Function("embed", "embed(ids [..., seq], table [vocab, d_model], positions [max_seq, d_model]) -> "
             "token_embedding(ids, table) + positions[:seq]", ("embeddings",), "embed"),
)

ASSIGNMENT = Assignment(
    name="embeddings",
    title="Token embeddings and sinusoidal positions",
    functions=FUNCTIONS,
    sections=("token", "positions", "embed"),
    package="autograder.assignments.embeddings",
    reference="reference.embeddings",
    mistakes="autograder.assignments.embeddings.mistakes",
    example=Example("The cat sat on the mat", {
        "ids": (1, len(EXAMPLE_IDS)), "positions": (EXAMPLE_MAX_SEQ, EXAMPLE_D_MODEL),
        "embeddings": (1, len(EXAMPLE_IDS), EXAMPLE_D_MODEL)}),
    example_args="autograder.assignments.embeddings.inputs:example_args",
    capstone=None,
)
