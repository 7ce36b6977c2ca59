"""The `multihead` capstone: the student's multi_head_attention as GPT-2's block-L attention module.

GPT-2's attention adds a bias to each projection; the contract's function has none. The biases are folded
into the one call of the student's function, exactly, so their whole function (projections, split,
softmax, merge, output projection) computes the module's output:

    x'   = [x, 1, 0, ..., 0]                          [B, S, d_model + n_heads]: n_heads still divides it
    W'   = per head h, columns h*(d_head+1) .. : W's head-h columns and one zero column; rows: W, then the
           bias (it meets the ones column), then zeros. So x' @ W' = (x @ W + b) per head, plus a zero dim.
    W_q' also scaled by sqrt((d_head + 1) / d_head): their 1/sqrt(d_head + 1) becomes GPT-2's 1/sqrt(d_head).
    W_o' = W_o's rows spread the same way (the zero dims meet zero rows), its columns padded with zeros.
    out  = their out'[..., :d_model] + b_o             (the output bias is the only thing added outside)

Their weights `[B, n_heads, S, S]` are GPT-2's, the mask is the model's (bool `[B|1, 1, S, S]`), and
gradients flow through their function (its vjp) back to c_attn and c_proj.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from autograder.assignments.multihead.inputs import CHECK, MHA
from autograder.model import bridge
from autograder.model.gpt2_params import attention_params


def _spread(W: Tensor, n_heads: int) -> Tensor:
    """`[rows, n_heads * d_head]` -> `[rows, n_heads * (d_head + 1)]`: a zero column after each head's block."""
    rows = W.shape[0]
    blocks = W.reshape(rows, n_heads, -1)
    return torch.cat([blocks, blocks.new_zeros(rows, n_heads, 1)], dim=-1).reshape(rows, -1)


def fold_biases(x: Tensor, params: Dict[str, Tensor], n_heads: int) -> Tuple[Tensor, ...]:
    """(x', W_q', W_k', W_v', W_o') as in the module docstring; x `[..., S, d_model]`."""
    d_model = x.shape[-1]
    d_head = d_model // n_heads
    extra = x.new_zeros(*x.shape[:-1], n_heads)
    x_aug = torch.cat([x, extra[..., :1] + 1, extra[..., 1:]], dim=-1)  # [..., S, d_model + n_heads]
    zeros = x.new_zeros(n_heads - 1, d_model)
    projections = []
    for name in "qkv":
        W = torch.cat([params[f"attn.W_{name}"], params[f"attn.b_{name}"][None], zeros], dim=0)
        projections.append(_spread(W, n_heads))
    projections[0] = projections[0] * math.sqrt((d_head + 1) / d_head)
    W_o = _spread(params["attn.W_o"].t(), n_heads).t()  # rows spread: [n_heads * (d_head + 1), d_model]
    W_o = torch.cat([W_o, W_o.new_zeros(W_o.shape[0], n_heads)], dim=1)  # square again
    return (x_aug, *projections, W_o)


def _shapes(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
            mask: Any = None) -> Tuple[Tensor, Tensor]:
    seq = x.shape[-2]
    return (torch.empty(*x.shape, dtype=x.dtype), torch.empty(*x.shape[:-2], n_heads, seq, seq, dtype=x.dtype))


def student_attention_module(submission: Any) -> Any:
    """A `swap.StudentForward` for GPT2Attention: (module, hidden [B, S, d], bool mask) -> (out, weights)."""
    run = bridge.student_op(submission, CHECK, MHA, _shapes, wrt=(0, 1, 2, 3, 4))

    def forward(module: nn.Module, hidden: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        params = attention_params(module)
        n_heads = int(module.num_heads)
        out, weights = run(*fold_biases(hidden, params, n_heads), n_heads, mask)
        return out[..., :hidden.shape[-1]] + params["attn.b_o"], weights

    return forward
