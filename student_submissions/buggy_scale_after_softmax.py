"""Buggy scale_after_softmax, attention loses points: divides the weights by sqrt(d_k) after an unscaled softmax."""
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
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    """weights [..., seq_q, seq_k] @ V [..., seq_k, d_v] -> [..., seq_q, d_v]."""
    return weights @ V


def scaled_dot_product_attention(Q, K, V, mask=None):
    """(attended [..., seq_q, d_v], weights [..., seq_q, seq_k])."""
    scores = Q @ K.transpose(-2, -1)
    weights = attention_weights(scores, mask) / math.sqrt(Q.shape[-1])
    return aggregate_values(weights, V), weights
