"""Correct: the four sections only; the grader composes scaled_dot_product_attention (full marks)."""
import math

import torch
import torch.nn.functional as F


def linear_projections(x, W_q, W_k, W_v):
    """x [..., seq, d_model], W [d_model, d] -> (Q, K, V), each [..., seq, d]."""
    Q = torch.matmul(x, W_q)
    K = torch.matmul(x, W_k)
    V = torch.matmul(x, W_v)
    return Q, K, V


def attention_scores(Q, K):
    """Q [..., seq_q, d_k], K [..., seq_k, d_k] -> scores [..., seq_q, seq_k]."""
    scale = 1.0 / math.sqrt(Q.size(-1))
    return torch.matmul(Q, K.mT) * scale


def attention_weights(scores, mask=None):
    """Softmax over the keys, blocked entries exactly 0."""
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
    return F.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    """weights [..., seq_q, seq_k] @ V [..., seq_k, d_v] -> [..., seq_q, d_v]."""
    return torch.matmul(weights, V)
