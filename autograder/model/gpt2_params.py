"""transformers' GPT-2 weights as the `params` of the contract (trusted side only).

GPT-2's Conv1D computes `x @ weight + bias` with weight `[d_in, d_out]`, the contract's layout, so
nothing is transposed: `attn.c_attn.weight [d_model, 3 * d_model]` splits column-wise into W_q, W_k, W_v
(in that order), `attn.c_proj` is W_o, `mlp.c_fc` is W_1 `[d_model, d_ff]`, `mlp.c_proj` is W_2.
The tensors returned are the module's own parameters (views): gradients reach the module through them.
"""
from __future__ import annotations

from typing import Dict

from torch import Tensor, nn


def attention_params(attn: nn.Module) -> Dict[str, Tensor]:
    """`attn.W_q attn.b_q ... attn.W_o attn.b_o` of a GPT2Attention: W `[d_model, d_model]`, b `[d_model]`."""
    d_model = attn.c_attn.weight.shape[0]
    weights = attn.c_attn.weight.split(d_model, dim=1)
    biases = attn.c_attn.bias.split(d_model)
    params = {f"attn.W_{n}": w for n, w in zip("qkv", weights)}
    params.update({f"attn.b_{n}": b for n, b in zip("qkv", biases)})
    params.update({"attn.W_o": attn.c_proj.weight, "attn.b_o": attn.c_proj.bias})
    return params


def block_params(block: nn.Module) -> Dict[str, Tensor]:
    """All 16 contract keys of a GPT2Block (see reference.block.PARAM_KEYS)."""
    return {
        "ln_1.gamma": block.ln_1.weight, "ln_1.beta": block.ln_1.bias,
        **attention_params(block.attn),
        "ln_2.gamma": block.ln_2.weight, "ln_2.beta": block.ln_2.bias,
        "mlp.W_1": block.mlp.c_fc.weight, "mlp.b_1": block.mlp.c_fc.bias,
        "mlp.W_2": block.mlp.c_proj.weight, "mlp.b_2": block.mlp.c_proj.bias,
    }
