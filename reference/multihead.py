"""Reference multi-head (causal) self-attention: the answers the `multihead` assignment is graded against.

Tensors are `[..., seq, d_model]` with any leading batch dims; weights multiply on the right (`x @ W`,
W `[d_model, d_model]`); masks are boolean, True = may attend, broadcast against `[..., n_heads, seq, seq]`.

distilgpt2's shapes, "The cat sat on the mat" (6 tokens), 12 heads of 64:
  x                   [1, 6, 768]
  split_heads(x, 12)  [1, 12, 6, 64]
  weights             [1, 12, 6, 6]
  out                 [1, 6, 768]
"""
from __future__ import annotations

from typing import Optional, Tuple

from torch import Tensor

from reference.attention import causal_mask as _rectangular_causal_mask
from reference.attention import scaled_dot_product_attention


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """`[..., seq, d_model]` -> `[..., n_heads, seq, d_head]`; head h takes columns h*d_head:(h+1)*d_head."""
    *batch, seq, d_model = x.shape
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} does not divide d_model={d_model}")
    return x.reshape(*batch, seq, n_heads, d_model // n_heads).transpose(-3, -2)


def merge_heads(x: Tensor) -> Tensor:
    """`[..., n_heads, seq, d_head]` -> `[..., seq, n_heads * d_head]` (the inverse of split_heads)."""
    *batch, n_heads, seq, d_head = x.shape
    return x.transpose(-3, -2).reshape(*batch, seq, n_heads * d_head)


def causal_mask(seq_len: int) -> Tensor:
    """bool `[seq_len, seq_len]`, True on and below the diagonal (query i sees keys 0..i)."""
    return _rectangular_causal_mask(seq_len)


def multi_head_attention(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                         mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """x `[..., seq, d_model]` -> (out `[..., seq, d_model]`, weights `[..., n_heads, seq, seq]`).

    Per head: softmax(Q_h K_h^T / sqrt(d_head)) (masked entries exactly 0) @ V_h; heads merged, then @ W_o.
    """
    Q, K, V = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))  # [..., n_heads, seq, d_head]
    attended, weights = scaled_dot_product_attention(Q, K, V, mask)   # [..., n_heads, seq, d_head]
    return merge_heads(attended) @ W_o, weights
