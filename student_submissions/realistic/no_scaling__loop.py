"""Realistic no_scaling: a loop over the keys, no scale."""
import math
import torch


def _project(x, W):
    return torch.matmul(x, W)


def linear_projections(x, W_q, W_k, W_v):
    return _project(x, W_q), _project(x, W_k), _project(x, W_v)


def attention_scores(query, key):
    # score every query against one key at a time
    out = torch.empty(*query.shape[:-1], key.shape[-2], dtype=query.dtype)
    for j in range(key.shape[-2]):
        out[..., j] = (query * key[..., j:j + 1, :]).sum(-1)
    return out


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
    s = attention_scores(query, key)
    p = attention_weights(s, mask)
    return aggregate_values(p, value), p
