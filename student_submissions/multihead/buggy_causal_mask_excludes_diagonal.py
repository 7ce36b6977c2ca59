"""Buggy causal_mask_excludes_diagonal, mask loses points: True strictly below the diagonal only.

"A token must not see itself predicting itself", the student thought; but query i predicts token i+1,
so it may (must) see key i. With diagonal=-1 the first query sees nothing at all.
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
    # only the past: strictly below the diagonal
    return torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool), diagonal=-1)


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
