"""Buggy exact_gelu, gelu loses points: the exact erf GELU (torch's default), not GPT-2's tanh approximation.

The difference is at most ~5e-4 per activation, but it is not the function GPT-2 was trained with.
"""
import math

import torch


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased variance
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def gelu(x):
    # GELU(x) = x * Phi(x), Phi the standard normal CDF
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def feed_forward(x, W_1, b_1, W_2, b_2):
    return gelu(x @ W_1 + b_1) @ W_2 + b_2


def split_heads(x, n_heads):
    *batch, seq, d_model = x.shape
    if d_model % n_heads:
        raise ValueError("n_heads must divide d_model")
    return x.reshape(*batch, seq, n_heads, d_model // n_heads).transpose(-3, -2)


def merge_heads(x):
    *batch, n_heads, seq, d_head = x.shape
    return x.transpose(-3, -2).reshape(*batch, seq, n_heads * d_head)


def self_attention(x, params, n_heads, mask=None):
    Q = split_heads(x @ params["attn.W_q"] + params["attn.b_q"], n_heads)
    K = split_heads(x @ params["attn.W_k"] + params["attn.b_k"], n_heads)
    V = split_heads(x @ params["attn.W_v"] + params["attn.b_v"], n_heads)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return merge_heads(weights @ V) @ params["attn.W_o"] + params["attn.b_o"]


def transformer_block(x, params, n_heads, mask=None):
    h = x + self_attention(layer_norm(x, params["ln_1.gamma"], params["ln_1.beta"]), params, n_heads, mask)
    normed = layer_norm(h, params["ln_2.gamma"], params["ln_2.beta"])
    return h + feed_forward(normed, params["mlp.W_1"], params["mlp.b_1"], params["mlp.W_2"], params["mlp.b_2"])
