"""Scaled dot-product attention, single head: the file you hand in.

Fill in the four functions below (one per graded section); `scaled_dot_product_attention` is optional:
when you leave it out, the grader composes it from your other three functions.

Conventions for every function:
- Tensors are `[..., seq, d]`: any number of leading batch dims (none, [batch], [batch, heads], ...), and
  your code must work for all of them, so index from the end (`-1`, `-2`), never `shape[1]`.
- A mask is a bool tensor broadcastable to the scores `[..., seq_q, seq_k]`; True means "this query may
  attend to this key", False means blocked.
- Use torch operations only, so gradients flow back to the inputs: no `.detach()`, no NumPy.
- Do not use `torch.nn.functional.scaled_dot_product_attention` or `nn.MultiheadAttention`: the point is
  to write them yourself.

Shapes for PROMPT_EXAMPLE = "The cat sat on the mat" (6 tokens, d_model = d_k = 64):
    x                    [1, 6, 64]
    W_q, W_k, W_v        [64, 64]
    Q, K, V              [1, 6, 64]
    scores, weights      [1, 6, 6]
    attended             [1, 6, 64]
"""
import math  # noqa: F401  (you will want math.sqrt)

import torch  # noqa: F401


def linear_projections(x, W_q, W_k, W_v):
    """Section 1 (projections): project the token vectors into queries, keys and values.

    x: `[..., seq, d_model]`; W_q, W_k: `[d_model, d_k]`; W_v: `[d_model, d_v]`.
    Returns the tuple `(Q, K, V)` with Q = x @ W_q `[..., seq, d_k]`, K = x @ W_k `[..., seq, d_k]`,
    V = x @ W_v `[..., seq, d_v]`, in exactly that order. (W is `[d_model, d_k]`: no transpose.)
    Example: x [1, 6, 64] -> Q, K, V [1, 6, 64].
    """
    raise NotImplementedError("linear_projections: return (x @ W_q, x @ W_k, x @ W_v)")


def attention_scores(Q, K):
    """Section 2 (scores): how well each query matches each key.

    Q: `[..., seq_q, d_k]`, K: `[..., seq_k, d_k]` -> scores `[..., seq_q, seq_k]` = Q K^T / sqrt(d_k),
    where d_k = Q.shape[-1] (take it from the input, do not hard-code 64) and K^T swaps K's last two axes.
    Row i holds query i's score for every key. Example: Q, K [1, 6, 64] -> scores [1, 6, 6].
    """
    raise NotImplementedError("attention_scores: return Q K^T / sqrt(d_k)")


def attention_weights(scores, mask=None):
    """Section 3 (softmax): turn each query's scores into attention weights.

    scores: `[..., seq_q, seq_k]`; mask: None, or bool broadcastable to scores (True = may attend).
    Returns weights `[..., seq_q, seq_k]`: the softmax over the last axis (the keys), so each row sums
    to 1. Blocked entries (mask False) must be exactly 0 and the remaining ones of the row still sum to 1:
    block the scores before the softmax, not the weights after it. Your softmax must stay finite for
    large scores (scores of 1000 are fine for torch.softmax; exp(1000) alone is not).
    Example: scores [1, 6, 6] with a causal mask -> weights [1, 6, 6], row i non-zero on keys 0..i only.
    """
    raise NotImplementedError("attention_weights: return the masked softmax over the last axis")


def aggregate_values(weights, V):
    """Section 4 (values): each query's output is the weighted average of the value vectors.

    weights: `[..., seq_q, seq_k]`, V: `[..., seq_k, d_v]` -> attended `[..., seq_q, d_v]` = weights @ V,
    i.e. attended[i] = sum over keys j of weights[i, j] * V[j].
    Example: weights [1, 6, 6], V [1, 6, 64] -> attended [1, 6, 64].
    """
    raise NotImplementedError("aggregate_values: return weights @ V")


def scaled_dot_product_attention(Q, K, V, mask=None):
    """Optional: the whole attention, composed from the three functions above.

    Q: `[..., seq_q, d_k]`, K: `[..., seq_k, d_k]`, V: `[..., seq_k, d_v]`, mask as in attention_weights.
    Returns the tuple `(attended, weights)`: attended `[..., seq_q, d_v]` first, then the weights
    `[..., seq_q, seq_k]` you multiplied V by. Delete this function to let the grader compose it.
    Example: Q, K, V [1, 6, 64] -> attended [1, 6, 64], weights [1, 6, 6].
    """
    raise NotImplementedError("scaled_dot_product_attention: return (attended, weights)")
