"""The references of `multihead` and `block` against transformers' GPT-2 modules with the same weights.

float32, eager attention, every parameter random (biases and layer-norm scales far from 0 and 1, so an
ignored bias or gamma shows). GPT2Block and GPT2Attention build no causal mask themselves: they get the
additive float mask `[batch, 1, seq, seq]` the model would pass them (0 = may attend, dtype min = blocked).
"""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention, GPT2Block

from autograder.model.gpt2_params import attention_params, block_params
from reference import block as ref_block
from reference import multihead as ref_mh

ATOL = 1e-5
SHAPES = [  # (batch, seq, d_model, n_heads)
    pytest.param((1,), 6, 768, 12, id="distilgpt2"),
    pytest.param((3,), 9, 64, 4, id="small-batched"),
]


def _module(cls: type, d_model: int, n_heads: int, seed: int) -> torch.nn.Module:
    """A GPT-2 module with every parameter drawn at random (eager attention, eval mode, no dropout)."""
    config = GPT2Config(n_embd=d_model, n_head=n_heads, attn_implementation="eager")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = cls(config, layer_idx=0).eval()
        with torch.no_grad():
            for name, param in module.named_parameters():
                noise = torch.randn(param.shape)
                if param.ndim == 2:  # Conv1D weight [d_in, d_out]
                    param.copy_(noise / param.shape[0] ** 0.5)
                else:  # layer-norm scales around 1, every bias and shift clearly non-zero
                    param.copy_(1 + 0.5 * noise if name.startswith("ln_") and name.endswith("weight") else 0.5 * noise)
    return module


def _masks(batch: tuple, seq: int, seed: int) -> list:
    """bool masks (True = may attend): causal [seq, seq], and a per-batch [batch, 1, seq, seq] random one
    that keeps the diagonal (every row allows some key)."""
    generator = torch.Generator().manual_seed(seed)
    random = (torch.rand(*batch, 1, seq, seq, generator=generator) < 0.5) | torch.eye(seq, dtype=torch.bool)
    return [ref_mh.causal_mask(seq), random]


def _additive(mask: torch.Tensor, batch: tuple) -> torch.Tensor:
    """transformers' eager mask: `[batch, 1, seq, seq]`, 0 where allowed, the dtype's minimum elsewhere."""
    full = torch.broadcast_to(mask, (*batch, 1, *mask.shape[-2:]))
    return torch.zeros(full.shape).masked_fill(~full, torch.finfo(torch.float32).min)


@pytest.mark.parametrize("batch, seq, d_model, n_heads", SHAPES)
def test_reference_block_matches_gpt2_block(batch, seq, d_model, n_heads):
    block = _module(GPT2Block, d_model, n_heads, seed=d_model)
    params = {k: v.detach() for k, v in block_params(block).items()}
    assert set(params) == set(ref_block.PARAM_KEYS)
    x = torch.randn(*batch, seq, d_model, generator=torch.Generator().manual_seed(1))
    for mask in _masks(batch, seq, seed=2):
        with torch.no_grad():
            expected = block(x, attention_mask=_additive(mask, batch))
        got = ref_block.transformer_block(x, params, n_heads, mask)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("batch, seq, d_model, n_heads", SHAPES)
def test_reference_attention_with_biases_matches_gpt2_attention(batch, seq, d_model, n_heads):
    attn = _module(GPT2Attention, d_model, n_heads, seed=d_model + 1)
    params = {k: v.detach() for k, v in attention_params(attn).items()}
    x = torch.randn(*batch, seq, d_model, generator=torch.Generator().manual_seed(3))
    for mask in _masks(batch, seq, seed=4):
        with torch.no_grad():
            expected, _ = attn(x, attention_mask=_additive(mask, batch))
        got = ref_block.attention_with_biases(x, params, n_heads, mask)
        torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("batch, seq, d_model, n_heads", SHAPES)
def test_reference_multihead_matches_gpt2_attention_without_biases(batch, seq, d_model, n_heads):
    """The contract's multi_head_attention has no biases: GPT2Attention with zero biases, weights included."""
    attn = _module(GPT2Attention, d_model, n_heads, seed=d_model + 2)
    with torch.no_grad():
        attn.c_attn.bias.zero_()
        attn.c_proj.bias.zero_()
    p = {k: v.detach() for k, v in attention_params(attn).items()}
    x = torch.randn(*batch, seq, d_model, generator=torch.Generator().manual_seed(5))
    for mask in _masks(batch, seq, seed=6):
        with torch.no_grad():
            expected_out, expected_weights = attn(x, attention_mask=_additive(mask, batch))
        out, weights = ref_mh.multi_head_attention(x, p["attn.W_q"], p["attn.W_k"], p["attn.W_v"], p["attn.W_o"],
                                                   n_heads, mask)
        torch.testing.assert_close(out, expected_out, rtol=0, atol=ATOL)
        torch.testing.assert_close(weights, expected_weights, rtol=0, atol=ATOL)


def test_a_wrong_block_is_caught():
    """The comparison can fail: a post-LN block (a catalogued mistake) is far from GPT2Block."""
    block = _module(GPT2Block, 64, 4, seed=9)
    params = {k: v.detach() for k, v in block_params(block).items()}
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(7))
    mask = ref_mh.causal_mask(5)
    with torch.no_grad():
        expected = block(x, attention_mask=_additive(mask, (2,)))
    ln = ref_block.layer_norm
    h = ln(x + ref_block.attention_with_biases(x, params, 4, mask), params["ln_1.gamma"], params["ln_1.beta"])
    post_ln = ln(h + ref_block.feed_forward(h, params["mlp.W_1"], params["mlp.b_1"], params["mlp.W_2"],
                                            params["mlp.b_2"]), params["ln_2.gamma"], params["ln_2.beta"])
    assert (post_ln - expected).abs().max() > 0.1
