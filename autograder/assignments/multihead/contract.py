"""The student contract of the `multihead` assignment: functions, sections and the worked example.

Example ("The cat sat on the mat", distilgpt2's sizes): x [1, 6, 768], 12 heads of 64,
split_heads -> [1, 12, 6, 64], causal_mask(6) -> [6, 6], out [1, 6, 768], weights [1, 12, 6, 6].
"""
from __future__ import annotations

from autograder.assignments.spec import Assignment, Example, Function

EXAMPLE_SEQ, EXAMPLE_D_MODEL, EXAMPLE_HEADS = 6, 768, 12
EXAMPLE_D_HEAD = EXAMPLE_D_MODEL // EXAMPLE_HEADS

FUNCTIONS = (
    Function("split_heads", "split_heads(x [..., seq, d_model], n_heads) -> [..., n_heads, seq, d_head]; head h "
             "takes columns h*d_head:(h+1)*d_head; ValueError when n_heads does not divide d_model",
             ("heads",), "split"),
    Function("merge_heads", "merge_heads(x [..., n_heads, seq, d_head]) -> [..., seq, n_heads * d_head], the "
             "inverse of split_heads", ("merged heads",), "merge"),
    Function("causal_mask", "causal_mask(seq_len) -> bool [seq_len, seq_len], True on and below the diagonal",
             ("mask",), "mask"),
    Function("multi_head_attention", "multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None) -> "
             "(out [..., seq, d_model], weights [..., n_heads, seq, seq]); W [d_model, d_model]; mask broadcasts "
             "against [..., n_heads, seq, seq]", ("out", "weights"), "attention"),
)

ASSIGNMENT = Assignment(
    name="multihead",
    title="Multi-head causal self-attention",
    functions=FUNCTIONS,
    sections=("split", "merge", "mask", "attention", "model"),
    package="autograder.assignments.multihead",
    reference="reference.multihead",
    mistakes="autograder.assignments.multihead.mistakes",
    example=Example("The cat sat on the mat", {
        "x": (1, EXAMPLE_SEQ, EXAMPLE_D_MODEL), "W_q": (EXAMPLE_D_MODEL, EXAMPLE_D_MODEL),
        "heads": (1, EXAMPLE_HEADS, EXAMPLE_SEQ, EXAMPLE_D_HEAD), "mask": (EXAMPLE_SEQ, EXAMPLE_SEQ),
        "out": (1, EXAMPLE_SEQ, EXAMPLE_D_MODEL), "weights": (1, EXAMPLE_HEADS, EXAMPLE_SEQ, EXAMPLE_SEQ)}),
    example_args="autograder.assignments.multihead.inputs:example_args",
    capstone="model",
)
