"""TinyGPT that never checks the sequence length against wpe."""
import math
import re

import torch


def embed(ids, wte, wpe):
    return wte[ids] + wpe[: ids.shape[-1]]


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(x, p, n_heads, mask):
    *batch, seq, d_model = x.shape
    d_head = d_model // n_heads

    def heads(t):  # [..., seq, d_model] -> [..., n_heads, seq, d_head]
        return t.reshape(*batch, seq, n_heads, d_head).transpose(-3, -2)

    q, k, v = (heads(x @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]) for n in "qkv")
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)
    scores = scores.masked_fill(~mask, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v                      # [..., n_heads, seq, d_head]
    merged = out.transpose(-3, -2).reshape(*batch, seq, d_model)
    return merged @ p["attn.W_o"] + p["attn.b_o"]


def transformer_block(x, p, n_heads, mask):
    h = x + attention(layer_norm(x, p["ln_1.gamma"], p["ln_1.beta"]), p, n_heads, mask)
    ff = gelu(layer_norm(h, p["ln_2.gamma"], p["ln_2.beta"]) @ p["mlp.W_1"] + p["mlp.b_1"]) @ p["mlp.W_2"] + p["mlp.b_2"]
    return h + ff


def gpt_forward(ids, params, n_heads):
    seq = ids.shape[-1]
    x = embed(ids, params["wte"], params["wpe"])
    mask = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    layers = sorted({int(m.group(1)) for key in params if (m := re.match(r"h\.(\d+)\.", key))})
    for i in layers:
        block = {key[len(f"h.{i}."):]: value for key, value in params.items() if key.startswith(f"h.{i}.")}
        x = transformer_block(x, block, n_heads, mask)
    x = layer_norm(x, params["ln_f.gamma"], params["ln_f.beta"])
    return x @ params["wte"].transpose(0, 1)
