"""Realistic log_softmax: scores minus logsumexp, the log of the softmax."""
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
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores - torch.logsumexp(scores, dim=-1, keepdim=True)


def aggregate_values(weights, V):
    return weights @ V
