"""Buggy mask_not_broadcast_over_heads, attention loses points: adds its own head axis to the mask.

Copied from The Annotated Transformer, where masks come as [batch, seq, seq] and
`mask.unsqueeze(1)` inserts the head axis. Here the mask already lines up with the weights
[..., n_heads, seq, seq], so the extra axis misaligns it: a [seq, seq] mask no longer broadcasts and a
[batch, 1, seq, seq] mask multiplies the batch.
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
        mask = mask.unsqueeze(1)  # same mask applied to all heads
        scores = scores.masked_fill(mask == 0, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
