"""Realistic raises: a causal mask built from the query length."""
import math

import torch
from torch import nn


def linear_projections(x, W_q, W_k, W_v):
    queries, keys, values = [x @ w for w in (W_q, W_k, W_v)]
    return queries, keys, values


def attention_scores(Q, K):
    n_dim = Q.shape[-1]
    return Q @ K.mT / math.sqrt(n_dim)


def attention_weights(scores, mask=None):
    n = scores.shape[-2]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    allowed = causal if mask is None else causal & mask
    return nn.functional.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


def aggregate_values(weights, V):
    return weights @ V
