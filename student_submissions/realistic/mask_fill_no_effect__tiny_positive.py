"""Realistic mask_fill_no_effect: fill 1e-9 where -1e9 was meant."""
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
    if mask is not None:
        scores = scores.masked_fill(~mask, 1e-9)
    return nn.functional.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    return weights @ V
