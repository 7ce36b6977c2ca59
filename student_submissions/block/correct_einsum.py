"""A GPT-2 block with torch's var/rsqrt and einsum attention (heads kept as an explicit axis)."""
import math

import torch


def layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return gamma * (x - mu) * torch.rsqrt(var + eps) + beta


def gelu(x):
    c = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3.0))))


def feed_forward(x, W_1, b_1, W_2, b_2):
    hidden = torch.addmm(b_1, x.reshape(-1, x.shape[-1]), W_1).reshape(*x.shape[:-1], -1)
    return gelu(hidden) @ W_2 + b_2


def attention(x, p, n_heads, mask):
    d_model = x.shape[-1]
    if d_model % n_heads != 0:
        raise ValueError(f"{n_heads} heads do not divide {d_model}")
    d_head = d_model // n_heads
    q, k, v = ((x @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]).unflatten(-1, (n_heads, d_head)) for n in "qkv")
    scores = torch.einsum("...qhd,...khd->...hqk", q, k) / math.sqrt(d_head)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float("-inf"))
    weights = scores.softmax(-1)
    attended = torch.einsum("...hqk,...khd->...qhd", weights, v).flatten(-2)
    return attended @ p["attn.W_o"] + p["attn.b_o"]


def transformer_block(x, params, n_heads, mask=None):
    x = x + attention(layer_norm(x, params["ln_1.gamma"], params["ln_1.beta"]), params, n_heads, mask)
    mlp_in = layer_norm(x, params["ln_2.gamma"], params["ln_2.beta"])
    return x + feed_forward(mlp_in, params["mlp.W_1"], params["mlp.b_1"], params["mlp.W_2"], params["mlp.b_2"])
