"""Buggy scale_by_sqrt_d_model, attention loses points: divides the scores by sqrt(d_model), not sqrt(d_head).

The single-head formula says sqrt(d_k); with 12 heads the vectors being dotted have d_head = 64
entries, but this student kept the model width (768).
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
    d_model = x.shape[-1]
    Q, K, V = split_heads(x @ W_q, n_heads), split_heads(x @ W_k, n_heads), split_heads(x @ W_v, n_heads)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_model)  # scaled dot product, d_k = d_model
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
