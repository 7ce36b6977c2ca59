"""Buggy merge_without_transpose, merge loses points: flattens [..., n_heads, seq, d_head] directly.

split_heads is right; merge_heads reshapes to [..., seq, d_model] without moving the heads axis back
next to d_head first, so token i's output row is made of pieces of several tokens of one head.
"""
import math

import torch


def split_heads(x, n_heads):
    *batch, seq, d_model = x.shape
    if d_model % n_heads != 0:
        raise ValueError(f"{n_heads} heads do not divide d_model={d_model}")
    return x.view(*batch, seq, n_heads, d_model // n_heads).transpose(-3, -2)


def merge_heads(x):
    *batch, n_heads, seq, d_head = x.shape
    # back to [..., seq, d_model]
    return x.reshape(*batch, seq, n_heads * d_head)


def causal_mask(seq_len):
    return torch.tril(torch.ones(seq_len, seq_len)).bool()


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q = split_heads(x @ W_q, n_heads)
    K = split_heads(x @ W_k, n_heads)
    V = split_heads(x @ W_v, n_heads)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
