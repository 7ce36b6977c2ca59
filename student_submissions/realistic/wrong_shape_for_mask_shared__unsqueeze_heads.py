"""Realistic wrong shape: mask.unsqueeze(1) copied from multi-head code broadcasts the weights."""
import math

import torch


def linear_projections(x, W_q, W_k, W_v):
    # project the input into queries, keys and values
    Q = x @ W_q
    K = x @ W_k
    V = x @ W_v
    return Q, K, V


def attention_scores(Q, K):
    d_k = Q.size(-1)
    scores = torch.matmul(Q, K.transpose(-2, -1))
    return scores / math.sqrt(d_k)


def attention_weights(scores, mask=None):
    if mask is not None:
        mask = mask.unsqueeze(1)  # broadcast over heads
        scores = scores.masked_fill(mask == 0, float("-inf"))
    return torch.softmax(scores, dim=-1)


def aggregate_values(weights, V):
    return torch.matmul(weights, V)


def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = attention_scores(Q, K)
    weights = attention_weights(scores, mask)
    output = aggregate_values(weights, V)
    return output, weights
