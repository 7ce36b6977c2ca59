"""Calls the banned library attention directly: torch.nn.functional.scaled_dot_product_attention."""
import torch
import torch.nn.functional as F


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)


def scaled_dot_product_attention(Q, K, V, mask=None):
    attended = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
    return attended, torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)
