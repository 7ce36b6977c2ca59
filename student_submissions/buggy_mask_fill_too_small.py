"""Buggy mask_fill_too_small, softmax loses points: fills blocked scores with -100, which large scores overtake."""
import math

import torch


def linear_projections(x, W_q, W_k, W_v):
    """x [..., seq, d_model], W [d_model, d] -> (Q, K, V), each [..., seq, d]."""
    return x @ W_q, x @ W_k, x @ W_v


def attention_scores(Q, K):
    """Q [..., seq_q, d_k], K [..., seq_k, d_k] -> scores [..., seq_q, seq_k]."""
    d_k = Q.shape[-1]
    return Q @ K.transpose(-2, -1) / math.sqrt(d_k)


def attention_weights(scores, mask=None):
    """Softmax over the keys; blocked entries (mask False) get -inf, hence weight exactly 0."""
    if mask is not None:
        scores = scores.masked_fill(~mask, -100.0)
    return torch.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    """weights [..., seq_q, seq_k] @ V [..., seq_k, d_v] -> [..., seq_q, d_v]."""
    return weights @ V


def scaled_dot_product_attention(Q, K, V, mask=None):
    """(attended [..., seq_q, d_v], weights [..., seq_q, seq_k])."""
    weights = attention_weights(attention_scores(Q, K), mask)
    return aggregate_values(weights, V), weights
