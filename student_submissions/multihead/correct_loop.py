"""Multi-head attention as the lecture draws it: one single-head attention per head, in a loop."""
import math

import torch


def split_heads(x, n_heads):
    """Stack the column blocks of x: head h gets x[..., h*d_head:(h+1)*d_head]."""
    d_model = x.shape[-1]
    if d_model % n_heads != 0:
        raise ValueError(f"cannot split {d_model} dims into {n_heads} heads")
    d_head = d_model // n_heads
    heads = [x[..., h * d_head:(h + 1) * d_head] for h in range(n_heads)]
    return torch.stack(heads, dim=-3)


def merge_heads(x):
    """Concatenate the heads side by side along the feature axis."""
    return torch.cat(x.unbind(dim=-3), dim=-1)


def causal_mask(seq_len):
    mask = torch.zeros(seq_len, seq_len, dtype=torch.bool)
    for i in range(seq_len):
        mask[i, : i + 1] = True  # query i sees keys 0..i
    return mask


def single_head(q, k, v, mask):
    """Scaled dot-product attention for one head: q, k, v [..., seq, d_head]."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask == False, float("-inf"))  # noqa: E712
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = split_heads(x @ W_q, n_heads), split_heads(x @ W_k, n_heads), split_heads(x @ W_v, n_heads)
    outputs, all_weights = [], []
    for h in range(n_heads):
        # the mask broadcasts over heads: pick head h's slice ([seq, seq] masks have no head axis)
        head_mask = None if mask is None else (mask if mask.dim() < 3 else mask[..., min(h, mask.shape[-3] - 1), :, :])
        out_h, w_h = single_head(Q[..., h, :, :], K[..., h, :, :], V[..., h, :, :], head_mask)
        outputs.append(out_h)
        all_weights.append(w_h)
    attended = torch.stack(outputs, dim=-3)  # [..., n_heads, seq, d_head]
    weights = torch.stack(all_weights, dim=-3)  # [..., n_heads, seq, seq]
    return merge_heads(attended) @ W_o, weights
