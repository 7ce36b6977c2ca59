"""Buggy interleaved_heads, split loses points: head h takes every n_heads-th column (h, h + n, h + 2n, ...).

Each head still gets d_head columns, so every shape is right; but the model's weights put head h's
columns in one contiguous block, so this student's heads mix pieces of all the real heads.
"""
import math

import torch


def split_heads(x, n_heads):
    if x.shape[-1] % n_heads != 0:
        raise ValueError("d_model is not divisible by n_heads")
    # deal the columns out to the heads like cards
    return torch.stack([x[..., h::n_heads] for h in range(n_heads)], dim=-3)


def merge_heads(x):
    # put the heads side by side again
    return torch.cat(x.unbind(-3), dim=-1)


def causal_mask(seq_len):
    return torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ W_o, weights
