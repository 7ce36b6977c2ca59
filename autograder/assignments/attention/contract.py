"""The student contract of the `attention` assignment (single-head scaled dot-product attention).

Everything else (checks, catalogue, capstone) reads names from here, never spells them again.
"""
from __future__ import annotations

from typing import Dict, Tuple

from autograder.assignments.spec import Assignment, Composition, Example, Function, Step

PROMPT_EXAMPLE = "The cat sat on the mat"
EXAMPLE_SEQ = 6
EXAMPLE_D = 64
COMPOSED = "attention"  # the op of the `attention` section: the student's function, or the sections composed

FUNCTIONS: Tuple[Function, ...] = (
    Function("linear_projections", "linear_projections(x, W_q, W_k, W_v) -> (Q, K, V)", ("Q", "K", "V"),
             "projections"),
    Function("attention_scores", "attention_scores(Q, K) -> scores [..., seq_q, seq_k]", ("scores",), "scores"),
    Function("attention_weights", "attention_weights(scores, mask=None) -> weights [..., seq_q, seq_k]",
             ("weights",), "softmax"),
    Function("aggregate_values", "aggregate_values(weights, V) -> attended [..., seq_q, d_v]",
             ("attended values",), "values"),
    Function("scaled_dot_product_attention",
             "scaled_dot_product_attention(Q, K, V, mask=None) -> (attended, weights)",
             ("attended values", "weights"), "attention", optional=True),
)

# when `scaled_dot_product_attention` is absent, the attention section calls the three sections composed
ATTENTION_OP = Composition(
    op=COMPOSED, own="scaled_dot_product_attention", params=("Q", "K", "V", "mask"), optional_params=("mask",),
    steps=(Step("attention_scores", ("Q", "K"), "scores"), Step("attention_weights", ("scores", "mask"), "weights"),
           Step("aggregate_values", ("weights", "V"), "attended")),
    returns=("attended", "weights"),
    label="your attention (scaled_dot_product_attention, or your sections composed)")

ASSIGNMENT = Assignment(
    name="attention",
    title="Scaled dot-product attention (single head)",
    functions=FUNCTIONS,
    sections=("projections", "scores", "softmax", "values", "attention", "model"),
    package="autograder.assignments.attention",
    reference="reference.attention",
    mistakes="autograder.assignments.attention.mistakes",
    compositions=(ATTENTION_OP,),
    section_ops={"attention": COMPOSED},
    example=Example(PROMPT_EXAMPLE, {"x": (1, EXAMPLE_SEQ, EXAMPLE_D), "Q": (1, EXAMPLE_SEQ, EXAMPLE_D),
                                     "scores": (1, EXAMPLE_SEQ, EXAMPLE_SEQ), "weights": (1, EXAMPLE_SEQ, EXAMPLE_SEQ),
                                     "attended": (1, EXAMPLE_SEQ, EXAMPLE_D)}),
    example_args="autograder.assignments.attention.inputs:example_args",
    capstone="model",
)

# views of the contract by name, for the catalogue and the project's tests
SECTION_FUNCTIONS: Dict[str, str] = {f.section: f.name for f in FUNCTIONS}
SECTIONS: Tuple[str, ...] = ASSIGNMENT.sections
COMPOSED_FROM: Tuple[str, ...] = ATTENTION_OP.parts
OPTIONAL_FUNCTIONS: Tuple[str, ...] = tuple(f.name for f in FUNCTIONS if f.optional)
RETURN_ARITY: Dict[str, int] = {f.name: f.arity for f in FUNCTIONS}
SIGNATURES: Dict[str, str] = {f.name: f.signature for f in FUNCTIONS}
