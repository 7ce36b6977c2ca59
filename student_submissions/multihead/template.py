"""Multi-head causal self-attention: the file you hand in (assignment `multihead`).

Fill in the four functions below. Each is graded on its own, and `multi_head_attention` is also run
inside a real GPT-2: it replaces the attention of the model's first block, with that block's weights.

Conventions for every function:
- Tensors are `[..., seq, d_model]`: any number of leading batch dims (none, [batch], [batch, beams], ...),
  and your code must work for all of them, so index from the end (`-1`, `-2`, `-3`), never `shape[1]`.
- Weights multiply on the right: `x @ W` with W `[d_model, d_model]` (no transpose).
- Head h owns the columns `h * d_head : (h + 1) * d_head` of Q, K and V, with d_head = d_model // n_heads.
- A mask is a bool tensor, True = "this query may attend to this key", that broadcasts against the
  attention weights `[..., n_heads, seq, seq]`: a `[seq, seq]` mask (the same for every head and batch
  entry) or a `[batch, 1, seq, seq]` mask (one per batch entry, the same for every head). Use it as it
  comes: it already lines up with the weights. `mask=None` means every key is visible.
- Masked weights must be exactly 0. Use torch operations only, so gradients flow back to the inputs (no
  `.detach()`, no NumPy), and do not modify the inputs in place.
- Do not use `torch.nn.functional.scaled_dot_product_attention` or `nn.MultiheadAttention`.

Shapes for PROMPT_EXAMPLE = "The cat sat on the mat" (6 tokens) with distilgpt2's sizes
(d_model = 768, 12 heads of d_head = 64):
    x                                [1, 6, 768]
    W_q, W_k, W_v, W_o               [768, 768]
    split_heads(x @ W_q, 12)         [1, 12, 6, 64]
    causal_mask(6)                   [6, 6]
    weights (per head, per query)    [1, 12, 6, 6]
    merge_heads(attended)            [1, 6, 768]
    out                              [1, 6, 768]
"""
import math  # noqa: F401  (you will want math.sqrt)

import torch  # noqa: F401


def split_heads(x, n_heads):
    """Cut the last axis into heads.

    x: `[..., seq, d_model]` -> `[..., n_heads, seq, d_head]`, d_head = d_model // n_heads, where head h
    takes the columns `h * d_head : (h + 1) * d_head` (contiguous blocks, in order).
    Raise ValueError when n_heads does not divide d_model.
    Example: x [1, 6, 768], n_heads 12 -> [1, 12, 6, 64]; out[0, h, i] == x[0, i, 64*h : 64*(h+1)].
    """
    raise NotImplementedError("split_heads: reshape to [..., seq, n_heads, d_head], then swap seq and heads")


def merge_heads(x):
    """The inverse of split_heads.

    x: `[..., n_heads, seq, d_head]` -> `[..., seq, n_heads * d_head]`, head h back in columns
    `h * d_head : (h + 1) * d_head`, so that merge_heads(split_heads(x, n)) == x.
    Example: [1, 12, 6, 64] -> [1, 6, 768].
    """
    raise NotImplementedError("merge_heads: swap heads and seq back, then flatten the last two axes")


def causal_mask(seq_len):
    """The mask of a language model: query i may attend to keys 0..i (itself and the past), never ahead.

    Returns a bool tensor `[seq_len, seq_len]`, True on and below the diagonal.
    Example: causal_mask(3) == [[True, False, False], [True, True, False], [True, True, True]].
    """
    raise NotImplementedError("causal_mask: a lower-triangular bool matrix, diagonal included")


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    """Multi-head self-attention.

    x: `[..., seq, d_model]`; W_q, W_k, W_v, W_o: `[d_model, d_model]`; mask: None or bool, see above.
    Steps: Q, K, V = x @ W_q, x @ W_k, x @ W_v; split each into heads `[..., n_heads, seq, d_head]`;
    per head weights = softmax(Q_h K_h^T / sqrt(d_head)) over the keys (masked entries exactly 0);
    attended_h = weights @ V_h; merge the heads `[..., seq, d_model]`; out = merged @ W_o.
    Returns the tuple `(out [..., seq, d_model], weights [..., n_heads, seq, seq])`.
    Raise ValueError when n_heads does not divide d_model.
    Example: x [1, 6, 768], 12 heads, mask causal_mask(6) -> out [1, 6, 768], weights [1, 12, 6, 6].
    """
    raise NotImplementedError("multi_head_attention: return (out, weights)")
