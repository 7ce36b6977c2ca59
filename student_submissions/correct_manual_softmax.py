"""Correct: a hand-rolled, numerically stable masked softmax (full marks)."""
import math

import torch


def linear_projections(x, W_q, W_k, W_v):
    """x [..., seq, d_model], W [d_model, d] -> (Q, K, V), each [..., seq, d]."""
    return torch.matmul(x, W_q), torch.matmul(x, W_k), torch.matmul(x, W_v)


def attention_scores(Q, K):
    """Q [..., seq_q, d_k], K [..., seq_k, d_k] -> scores [..., seq_q, seq_k]."""
    return torch.matmul(Q, K.transpose(-1, -2)) / math.sqrt(K.size(-1))


def attention_weights(scores, mask=None):
    """exp(s - max) / sum, over the keys. Blocked scores take the dtype's lowest value, their exp is then
    zeroed exactly, and a row without any allowed key divides by 1 instead of 0 (all zeros, no NaN)."""
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    exp = torch.exp(scores - scores.max(dim=-1, keepdim=True).values) * mask
    total = exp.sum(dim=-1, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))


def aggregate_values(weights, V):
    """weights [..., seq_q, seq_k] @ V [..., seq_k, d_v] -> [..., seq_q, d_v]."""
    return torch.matmul(weights, V)


def scaled_dot_product_attention(Q, K, V, mask=None):
    """(attended, weights), composed from the sections."""
    weights = attention_weights(attention_scores(Q, K), mask)
    return aggregate_values(weights, V), weights
