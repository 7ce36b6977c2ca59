"""Realistic transposed_weight_matrix: nn.Linear layout, x @ W.T."""
import math

import torch
import torch.nn.functional as F


def linear_projections(x, W_q, W_k, W_v):
    """like F.linear"""
    return F.linear(x, W_q), F.linear(x, W_k), F.linear(x, W_v)


def attention_scores(Q, K):
    """Q K^T / sqrt(d_k) via einsum"""
    scale = 1.0 / math.sqrt(Q.shape[-1])
    return torch.einsum("...id,...jd->...ij", Q, K) * scale


def attention_weights(scores, mask=None):
    """masked softmax over the last dim"""
    if mask is not None:
        scores = scores.masked_fill(~mask.bool(), float("-inf"))
    return F.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    return torch.einsum("...ij,...jd->...id", weights, V)


def scaled_dot_product_attention(Q, K, V, mask=None):
    attn = attention_weights(attention_scores(Q, K), mask)
    return aggregate_values(attn, V), attn
