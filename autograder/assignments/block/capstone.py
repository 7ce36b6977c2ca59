"""The `block` capstone: the student's transformer_block as GPT-2's block L, with that block's own weights.

The block's parameters (`gpt2_params.block_params`: ln_1, attn's c_attn split into W_q, W_k, W_v with
their biases, c_proj as W_o, ln_2, mlp's c_fc and c_proj) go to the student's function as its `params`
dict, the model's mask as bool `[B|1, 1, S, S]`; gradients flow through their function (its vjp) back to
every parameter of the block.
"""
from __future__ import annotations

from typing import Any, List

import torch
from torch import Tensor, nn

from autograder.assignments.block.inputs import BLOCK, CHECK
from autograder.model import bridge
from autograder.model.gpt2_params import block_params
from reference.block import PARAM_KEYS


def _pack(args: List[Any]) -> List[Any]:
    """(x, *the 16 params in PARAM_KEYS order, n_heads, mask) -> the contract's (x, params, n_heads, mask)."""
    x, tensors, (n_heads, mask) = args[0], args[1:1 + len(PARAM_KEYS)], args[1 + len(PARAM_KEYS):]
    return [x, dict(zip(PARAM_KEYS, tensors)), n_heads, mask]


def _shapes(x: Tensor, params: Any, n_heads: int, mask: Any = None) -> Tensor:
    return torch.empty(*x.shape, dtype=x.dtype)


def student_block(submission: Any) -> Any:
    """A `swap.StudentForward` for GPT2Block: (block, hidden [B, S, d], bool mask) -> hidden [B, S, d]."""
    wrt = tuple(range(1 + len(PARAM_KEYS)))
    targets = (0, *((1, key) for key in PARAM_KEYS))
    run = bridge.student_op(submission, CHECK, BLOCK, _shapes, wrt, pack=_pack, targets=targets)

    def forward(block: nn.Module, hidden: Tensor, mask: Tensor) -> Tensor:
        params = block_params(block)
        (out,) = run(hidden, *(params[key] for key in PARAM_KEYS), int(block.attn.num_heads), mask)
        return out

    return forward
