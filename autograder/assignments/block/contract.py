"""The student contract of the `block` assignment: functions, sections and the worked example.

Example ("The cat sat on the mat", distilgpt2's sizes): x [1, 6, 768], 12 heads of 64, d_ff 3072,
out [1, 6, 768]. `params` keys: reference.block.PARAM_KEYS.
"""
from __future__ import annotations

from autograder.assignments.spec import Assignment, Example, Function

EXAMPLE_SEQ, EXAMPLE_D_MODEL, EXAMPLE_HEADS = 6, 768, 12

FUNCTIONS = (
    Function("layer_norm", "layer_norm(x [..., d], gamma [d], beta [d], eps=1e-5) -> [..., d]: over the last "
             "axis, biased variance, (x - mean) / sqrt(var + eps) * gamma + beta", ("normalised x",), "layer_norm"),
    Function("gelu", "gelu(x) -> same shape, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
             ("activations",), "gelu"),
    Function("feed_forward", "feed_forward(x [..., d_model], W_1 [d_model, d_ff], b_1 [d_ff], W_2 [d_ff, d_model], "
             "b_2 [d_model]) -> gelu(x @ W_1 + b_1) @ W_2 + b_2", ("output",), "feed_forward"),
    Function("transformer_block", "transformer_block(x [..., seq, d_model], params, n_heads, mask=None) -> "
             "[..., seq, d_model]: h = x + attn(layer_norm_1(x)), out = h + feed_forward(layer_norm_2(h))",
             ("output",), "block"),
)

ASSIGNMENT = Assignment(
    name="block",
    title="The transformer block (pre-LN, GPT-2 style)",
    functions=FUNCTIONS,
    sections=("layer_norm", "gelu", "feed_forward", "block", "model"),
    package="autograder.assignments.block",
    reference="reference.block",
    mistakes="autograder.assignments.block.mistakes",
    example=Example("The cat sat on the mat", {
        "x": (1, EXAMPLE_SEQ, EXAMPLE_D_MODEL), "hidden": (1, EXAMPLE_SEQ, 4 * EXAMPLE_D_MODEL),
        "out": (1, EXAMPLE_SEQ, EXAMPLE_D_MODEL)}),
    example_args="autograder.assignments.block.inputs:example_args",
    capstone="model",
)
