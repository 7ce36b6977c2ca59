"""Reference scaled dot-product attention: the answers the grader compares against.

Standalone and importable (`from reference.attention import scaled_dot_product_attention`).
Tensors are `[..., seq, d]` with any leading batch dims; masks are boolean, True = may attend.

PROMPT_EXAMPLE "The cat sat on the mat": 6 tokens, d_model = d_k = 64
  x            [1, 6, 64]
  Q, K, V      [1, 6, 64]
  scores       [1, 6, 6]
  weights      [1, 6, 6]   (each row sums to 1)
  attended     [1, 6, 64]
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

PROMPT_EXAMPLE = "The cat sat on the mat"


def linear_projections(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Project x `[..., seq, d_model]` with W `[d_model, d_k]` into Q, K, V `[..., seq, d_k]`."""
    return x @ W_q, x @ W_k, x @ W_v


def attention_scores(Q: Tensor, K: Tensor) -> Tensor:
    """Q `[..., seq_q, d_k]`, K `[..., seq_k, d_k]` -> scores `[..., seq_q, seq_k]` = Q K^T / sqrt(d_k)."""
    return Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])


def attention_weights(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Softmax over the keys (last axis) of scores `[..., seq_q, seq_k]`.

    mask `[..., seq_q, seq_k]` (broadcastable), True = may attend; masked weights are exactly 0.
    A row with no allowed key gets all-zero weights rather than NaN.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = mask.to(torch.bool)
    masked = scores.masked_fill(~mask, float("-inf"))
    row_max = masked.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(masked - row_max)
    total = exp.sum(dim=-1, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))


def aggregate_values(weights: Tensor, V: Tensor) -> Tensor:
    """weights `[..., seq_q, seq_k]` @ V `[..., seq_k, d_v]` -> attended `[..., seq_q, d_v]`."""
    return weights @ V


def scaled_dot_product_attention(
    Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """Composed attention: returns (attended `[..., seq_q, d_v]`, weights `[..., seq_q, seq_k]`)."""
    weights = attention_weights(attention_scores(Q, K), mask)
    return aggregate_values(weights, V), weights


def causal_mask(seq_q: int, seq_k: Optional[int] = None) -> Tensor:
    """Boolean lower-triangular mask `[seq_q, seq_k]`: query i may attend to keys 0..i."""
    seq_k = seq_q if seq_k is None else seq_k
    return torch.ones(seq_q, seq_k, dtype=torch.bool).tril()
