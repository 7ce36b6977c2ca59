"""Multi-head attention with einsum: the head axis stays explicit in every product."""
import math

import torch


def split_heads(x, n_heads):
    """[..., seq, d_model] -> [..., n_heads, seq, d_head] via unflatten + movedim."""
    d_model = x.shape[-1]
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError("d_model must be a multiple of n_heads")
    return x.unflatten(-1, (n_heads, d_model // n_heads)).movedim(-2, -3)


def merge_heads(x):
    """[..., n_heads, seq, d_head] -> [..., seq, n_heads * d_head]."""
    return x.movedim(-3, -2).flatten(-2)


def causal_mask(seq_len):
    """True where key j <= query i."""
    i = torch.arange(seq_len)
    return i[None, :] <= i[:, None]


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    """Projections, per-head attention with einsum, then the output projection."""
    q, k, v = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))
    scores = torch.einsum("...hqd,...hkd->...hqk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    weights = scores.softmax(dim=-1)
    attended = torch.einsum("...hqk,...hkd->...hqd", weights, v)
    return merge_heads(attended) @ W_o, weights
