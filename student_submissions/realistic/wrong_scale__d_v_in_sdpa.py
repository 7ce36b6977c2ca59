"""Realistic wrong_scale: the fused function scales by the width of V."""
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


def _stable_exp(x):
    return torch.exp(x - x.max(dim=-1, keepdim=True).values)


def attention_weights(scores, mask=None):
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    e = _stable_exp(scores)
    return e / e.sum(dim=-1, keepdim=True)


def aggregate_values(weights, values):
    out = weights @ values  # weighted sum of the value rows
    return out


def scaled_dot_product_attention(query, key, value, mask=None):
    d = value.shape[-1]  # head size
    s = (query @ key.transpose(-1, -2)) / math.sqrt(d)
    p = attention_weights(s, mask)
    return p @ value, p
