"""The student contract of the `tinygpt` assignment: one function, and the training milestone.

Example: ids [1, 6] (a 6-character prompt), vocab 66, 2 blocks of d_model 64 and 2 heads, 32 positions:
logits [1, 6, 66]. `params` keys: wte, wpe, h.{i}.<block key> (reference/block.py's PARAM_KEYS),
ln_f.gamma, ln_f.beta.
"""
from __future__ import annotations

from autograder.assignments.spec import Assignment, Example, Function

FUNCTIONS = (
    Function("gpt_forward", "gpt_forward(ids [..., seq] int64, params, n_heads) -> logits [..., seq, vocab]: "
             "embed(ids, wte, wpe), blocks h.0. ... h.{L-1}. in numeric order with the causal mask, "
             "layer_norm(ln_f), @ wte^T; seq beyond the rows of wpe raises ValueError", ("logits",), "forward"),
)

ASSIGNMENT = Assignment(
    name="tinygpt",
    title="TinyGPT: the GPT forward pass, trained on Tiny Shakespeare",
    functions=FUNCTIONS,
    sections=("forward", "milestone"),
    section_ops={"milestone": "gpt_forward"},  # the milestone trains gpt_forward (its smoke call: the example)
    package="autograder.assignments.tinygpt",
    reference="reference.tinygpt",
    mistakes="autograder.assignments.tinygpt.mistakes",
    example=Example("ROMEO:", {"ids": (1, 6), "logits": (1, 6, 66)}),
    example_args="autograder.assignments.tinygpt.inputs:example_args",
    capstone=None,
)
