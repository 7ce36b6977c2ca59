"""Reference pre-LN transformer block, GPT-2 style: the answers the `block` assignment is graded against.

    h   = x + attn(layer_norm_1(x))          attn: multi-head attention with biases
    out = h + feed_forward(layer_norm_2(h))  feed_forward: gelu(x @ W_1 + b_1) @ W_2 + b_2

distilgpt2's shapes, "The cat sat on the mat": x [1, 6, 768], 12 heads of 64, d_ff 3072, out [1, 6, 768].
`params` keys: ln_1.gamma ln_1.beta attn.W_q attn.b_q attn.W_k attn.b_k attn.W_v attn.b_v attn.W_o attn.b_o
ln_2.gamma ln_2.beta mlp.W_1 mlp.b_1 mlp.W_2 mlp.b_2 (the same layout as transformers' GPT2Block, Conv1D
weights being `[d_in, d_out]` already).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch import Tensor

from reference.attention import scaled_dot_product_attention
from reference.multihead import merge_heads, split_heads

PARAM_KEYS = ("ln_1.gamma", "ln_1.beta", "attn.W_q", "attn.b_q", "attn.W_k", "attn.b_k", "attn.W_v", "attn.b_v",
              "attn.W_o", "attn.b_o", "ln_2.gamma", "ln_2.beta", "mlp.W_1", "mlp.b_1", "mlp.W_2", "mlp.b_2")


def layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis of x `[..., d]` (biased variance, eps inside the sqrt), then scale and shift."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def gelu(x: Tensor) -> Tensor:
    """GPT-2's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def feed_forward(x: Tensor, W_1: Tensor, b_1: Tensor, W_2: Tensor, b_2: Tensor) -> Tensor:
    """x `[..., d_model]`, W_1 `[d_model, d_ff]`, W_2 `[d_ff, d_model]` -> `[..., d_model]`."""
    return gelu(x @ W_1 + b_1) @ W_2 + b_2


def attention_with_biases(x: Tensor, params: Dict[str, Tensor], n_heads: int,
                          mask: Optional[Tensor] = None) -> Tensor:
    """GPT-2's attention: multi-head attention with a bias on each projection, `[..., seq, d_model]`."""
    Q, K, V = (split_heads(x @ params[f"attn.W_{n}"] + params[f"attn.b_{n}"], n_heads) for n in "qkv")
    attended, _ = scaled_dot_product_attention(Q, K, V, mask)  # [..., n_heads, seq, d_head]
    return merge_heads(attended) @ params["attn.W_o"] + params["attn.b_o"]


def transformer_block(x: Tensor, params: Dict[str, Tensor], n_heads: int, mask: Optional[Tensor] = None) -> Tensor:
    """x `[..., seq, d_model]` -> `[..., seq, d_model]`: pre-LN attention and MLP, each with its residual."""
    h = x + attention_with_biases(layer_norm(x, params["ln_1.gamma"], params["ln_1.beta"]), params, n_heads, mask)
    normed = layer_norm(h, params["ln_2.gamma"], params["ln_2.beta"])
    return h + feed_forward(normed, params["mlp.W_1"], params["mlp.b_1"], params["mlp.W_2"], params["mlp.b_2"])
