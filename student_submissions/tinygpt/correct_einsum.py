"""TinyGPT with einsum attention, a count of the blocks, and the final layer norm from torch.var."""
import math

import torch


def norm(x, g, b):
    return (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * g + b


def block(x, p, H, mask):
    T, D = x.shape[-2], x.shape[-1]
    a = norm(x, p["ln_1.gamma"], p["ln_1.beta"])
    q, k, v = (torch.stack((a @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]).split(D // H, dim=-1), dim=-3) for n in "qkv")
    w = torch.einsum("...hqd,...hkd->...hqk", q, k) / math.sqrt(D // H)
    w = torch.softmax(w.masked_fill(~mask, float("-inf")), dim=-1)
    o = torch.cat(torch.einsum("...hqk,...hkd->...hqd", w, v).unbind(dim=-3), dim=-1)
    x = x + o @ p["attn.W_o"] + p["attn.b_o"]
    m = norm(x, p["ln_2.gamma"], p["ln_2.beta"]) @ p["mlp.W_1"] + p["mlp.b_1"]
    m = 0.5 * m * (1 + torch.tanh(math.sqrt(2 / math.pi) * (m + 0.044715 * m.pow(3))))
    return x + m @ p["mlp.W_2"] + p["mlp.b_2"]


def gpt_forward(ids, params, n_heads):
    T = ids.shape[-1]
    if T > len(params["wpe"]):
        raise ValueError("sequence longer than the position table")
    x = params["wte"][ids] + params["wpe"][:T]
    mask = torch.ones(T, T).tril().bool()
    n_layers = len({k.split(".")[1] for k in params if k.startswith("h.")})
    for i in range(n_layers):
        x = block(x, {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"h.{i}.")}, n_heads, mask)
    return norm(x, params["ln_f.gamma"], params["ln_f.beta"]) @ params["wte"].T
