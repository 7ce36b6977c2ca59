"""Correct: every product written with torch.einsum, masking with a large negative fill (full marks)."""
import torch


def linear_projections(x, W_q, W_k, W_v):
    """x [..., seq, d_model], W [d_model, d] -> (Q, K, V), each [..., seq, d]."""
    return tuple(torch.einsum("...sm,md->...sd", x, W) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    """scores[..., i, j] = <Q[..., i, :], K[..., j, :]> / sqrt(d_k), [..., seq_q, seq_k]."""
    return torch.einsum("...qd,...kd->...qk", Q, K) / Q.shape[-1] ** 0.5


def attention_weights(scores, mask=None):
    """Softmax over the keys; -1e9 makes a blocked key's exp underflow to exactly 0."""
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -1e9)
    return scores.softmax(dim=-1)


def aggregate_values(weights, V):
    """attended[..., i, :] = sum_j weights[..., i, j] V[..., j, :], [..., seq_q, d_v]."""
    return torch.einsum("...qk,...kd->...qd", weights, V)


def scaled_dot_product_attention(Q, K, V, mask=None):
    """(attended, weights), composed from the sections."""
    weights = attention_weights(attention_scores(Q, K), mask)
    return aggregate_values(weights, V), weights
