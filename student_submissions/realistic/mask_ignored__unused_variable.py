"""Realistic mask_ignored: the masked scores are computed, then the raw ones used."""
import math
import torch


def _project(x, W):
    return torch.matmul(x, W)


def linear_projections(x, W_q, W_k, W_v):
    return _project(x, W_q), _project(x, W_k), _project(x, W_v)


def attention_scores(query, key):
    # similarity of every query with every key
    dk = key.shape[-1]
    key_t = key.transpose(-1, -2)
    return (query @ key_t) / (dk ** 0.5)


def attention_weights(scores, mask=None):
    if mask is not None:
        masked_scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def aggregate_values(weights, values):
    out = weights @ values  # weighted sum of the value rows
    return out


def scaled_dot_product_attention(query, key, value, mask=None):
    s = attention_scores(query, key)
    p = attention_weights(s, mask)
    return aggregate_values(p, value), p
