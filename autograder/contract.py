"""The student contract of the `attention` assignment: function names, sections and the example.

Everything else (checks, worker, model surgery) reads names from here, never spells them again.
"""
from __future__ import annotations

from typing import Dict, Tuple

ASSIGNMENT = "attention"
PROMPT_EXAMPLE = "The cat sat on the mat"
EXAMPLE_SEQ = 6
EXAMPLE_D = 64

# section -> the function a student writes for it
SECTION_FUNCTIONS: Dict[str, str] = {
    "projections": "linear_projections",
    "scores": "attention_scores",
    "softmax": "attention_weights",
    "values": "aggregate_values",
    "attention": "scaled_dot_product_attention",
}
SECTIONS: Tuple[str, ...] = ("projections", "scores", "softmax", "values", "attention", "model")

# the functions the composed attention falls back on when `scaled_dot_product_attention` is absent
COMPOSED_FROM: Tuple[str, ...] = ("attention_scores", "attention_weights", "aggregate_values")
OPTIONAL_FUNCTIONS: Tuple[str, ...] = ("scaled_dot_product_attention",)

# how many tensors each function returns (1 = a bare tensor)
RETURN_ARITY: Dict[str, int] = {
    "linear_projections": 3,
    "attention_scores": 1,
    "attention_weights": 1,
    "aggregate_values": 1,
    "scaled_dot_product_attention": 2,
}

SIGNATURES: Dict[str, str] = {
    "linear_projections": "linear_projections(x, W_q, W_k, W_v) -> (Q, K, V)",
    "attention_scores": "attention_scores(Q, K) -> scores [..., seq_q, seq_k]",
    "attention_weights": "attention_weights(scores, mask=None) -> weights [..., seq_q, seq_k]",
    "aggregate_values": "aggregate_values(weights, V) -> attended [..., seq_q, d_v]",
    "scaled_dot_product_attention": "scaled_dot_product_attention(Q, K, V, mask=None) -> (attended, weights)",
}
