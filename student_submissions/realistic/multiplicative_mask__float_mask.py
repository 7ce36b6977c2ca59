"""Realistic multiplicative_mask: the mask turned to floats and multiplied in."""
import numpy as np
import torch
import torch.nn.functional as F


def linear_projections(x, W_q, W_k, W_v):
    q = torch.matmul(x, W_q)
    k = torch.matmul(x, W_k)
    v = torch.matmul(x, W_v)
    return q, k, v


def attention_scores(q, k):
    d = q.size()[-1]
    return torch.matmul(q, torch.transpose(k, -2, -1)) / np.sqrt(d)


def attention_weights(scores, mask=None):
    if mask is not None:
        m = mask.to(scores.dtype)
        scores = scores * m
    return F.softmax(scores, dim=-1)


def aggregate_values(weights, v):
    return torch.matmul(weights, v)


def scaled_dot_product_attention(q, k, v, mask=None):
    w = attention_weights(attention_scores(q, k), mask)
    return torch.matmul(w, v), w
