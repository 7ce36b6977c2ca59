"""Buggy split_without_transpose, split loses points: reshapes straight to [..., n_heads, seq, d_head].

The reshape has the right shape, but it cuts the flat row-major data of [seq, d_model] into n_heads
chunks of seq * d_head numbers: "head 0" gets the first tokens' whole vectors, not every token's first
d_head columns. merge_heads is right, so the two no longer undo each other.
"""
import math

import torch


def split_heads(x, n_heads):
    *batch, seq, d_model = x.shape
    if d_model % n_heads:
        raise ValueError("n_heads must divide d_model")
    d_head = d_model // n_heads
    # [..., seq, d_model] -> [..., n_heads, seq, d_head]
    return x.reshape(*batch, n_heads, seq, d_head)


def merge_heads(x):
    *batch, n_heads, seq, d_head = x.shape
    return x.transpose(-3, -2).reshape(*batch, seq, n_heads * d_head)


def causal_mask(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
