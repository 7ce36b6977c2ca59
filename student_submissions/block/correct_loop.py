"""A GPT-2 block with the attention heads in a loop, as drawn in the lecture."""
import math

import torch


def layer_norm(x, gamma, beta, eps=1e-5):
    d = x.shape[-1]
    mean = x.sum(-1, keepdim=True) / d
    centred = x - mean
    var = (centred * centred).sum(-1, keepdim=True) / d
    return centred / (var + eps) ** 0.5 * gamma + beta


def gelu(x):
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
    return x * 0.5 * (1 + torch.tanh(inner))


def feed_forward(x, W_1, b_1, W_2, b_2):
    hidden = x @ W_1 + b_1
    hidden = gelu(hidden)
    return hidden @ W_2 + b_2


def attention(x, params, n_heads, mask):
    d_model = x.shape[-1]
    if d_model % n_heads != 0:
        raise ValueError("n_heads must divide d_model")
    d_head = d_model // n_heads
    q = x @ params["attn.W_q"] + params["attn.b_q"]
    k = x @ params["attn.W_k"] + params["attn.b_k"]
    v = x @ params["attn.W_v"] + params["attn.b_v"]
    head_outputs = []
    for h in range(n_heads):
        cols = slice(h * d_head, (h + 1) * d_head)
        scores = q[..., cols] @ k[..., cols].transpose(-1, -2) / math.sqrt(d_head)
        if mask is not None:
            head_mask = mask if mask.dim() < 3 else mask.select(-3, 0)  # broadcast over heads
            scores = scores.masked_fill(~head_mask, -math.inf)
        head_outputs.append(torch.softmax(scores, dim=-1) @ v[..., cols])
    return torch.cat(head_outputs, dim=-1) @ params["attn.W_o"] + params["attn.b_o"]


def transformer_block(x, params, n_heads, mask=None):
    attn_out = attention(layer_norm(x, params["ln_1.gamma"], params["ln_1.beta"]), params, n_heads, mask)
    h = x + attn_out
    mlp_out = feed_forward(layer_norm(h, params["ln_2.gamma"], params["ln_2.beta"]),
                           params["mlp.W_1"], params["mlp.b_1"], params["mlp.W_2"], params["mlp.b_2"])
    return h + mlp_out
