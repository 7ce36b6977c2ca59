"""A segmentation fault inside a call: reading address 0 through ctypes kills the interpreter."""
import ctypes

import torch


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return ctypes.string_at(0)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
