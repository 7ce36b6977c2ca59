"""NaN where a comparison `not (abs(d) > tol).any()` would pass it, and the wrong types: a list, a numpy
array, float16, a tensor of the wrong shape, a generator, a dict, a huge string, None."""
import numpy as np
import torch


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.full((*x.shape[:-1], W.shape[-1]), float("nan"), dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype).tolist()


def attention_weights(scores, mask=None):
    if mask is not None:
        return np.zeros(tuple(scores.shape))
    return torch.full_like(scores, float("nan")).to(torch.float16)


def aggregate_values(weights, V):
    return {"attended": torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)}


def scaled_dot_product_attention(Q, K, V, mask=None):
    out = torch.full((*Q.shape[:-1], V.shape[-1]), float("nan"), dtype=Q.dtype)
    if mask is not None:
        return (x for x in (out, None))
    return out, "x" * 10_000_000
