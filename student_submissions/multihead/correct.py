"""Multi-head attention with reshape and transpose, built from split_heads and merge_heads."""
import math

import torch


def split_heads(x, n_heads):
    """[..., seq, d_model] -> [..., n_heads, seq, d_head]."""
    *batch, seq, d_model = x.shape
    if d_model % n_heads != 0:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    d_head = d_model // n_heads
    return x.reshape(*batch, seq, n_heads, d_head).transpose(-3, -2)


def merge_heads(x):
    """[..., n_heads, seq, d_head] -> [..., seq, n_heads * d_head]."""
    *batch, n_heads, seq, d_head = x.shape
    return x.transpose(-3, -2).reshape(*batch, seq, n_heads * d_head)


def causal_mask(seq_len):
    """[seq_len, seq_len] bool, True on and below the diagonal."""
    return torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    """x [..., seq, d_model] -> (out [..., seq, d_model], weights [..., n_heads, seq, seq])."""
    Q = split_heads(x @ W_q, n_heads)  # [..., n_heads, seq, d_head]
    K = split_heads(x @ W_k, n_heads)
    V = split_heads(x @ W_v, n_heads)
    d_head = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_head)  # [..., n_heads, seq, seq]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = merge_heads(weights @ V) @ W_o
    return out, weights
