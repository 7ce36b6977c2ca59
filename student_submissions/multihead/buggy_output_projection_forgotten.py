"""Buggy output_projection_forgotten, attention loses points: returns the merged heads without @ W_o.

The shapes work out ([..., seq, d_model] either way), which is why the missing projection goes unnoticed.
"""
import math

import torch


def split_heads(x, n_heads):
    *batch, seq, d_model = x.shape
    if d_model % n_heads:
        raise ValueError("n_heads must divide d_model")
    return x.reshape(*batch, seq, n_heads, d_model // n_heads).transpose(-3, -2)


def merge_heads(x):
    *batch, n_heads, seq, d_head = x.shape
    return x.transpose(-3, -2).reshape(*batch, seq, n_heads * d_head)


def causal_mask(seq_len):
    return torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = merge_heads(weights @ V)  # concat(head_1, ..., head_h)
    return out, weights
