"""Reference TinyGPT: the course's character-level GPT, built on the block contract (reads like nanoGPT).

    logits = layer_norm(blocks(embed(ids, wte, wpe)), ln_f) @ wte^T        tied head

Shapes (the built-in model: vocab 66, block 64, 4 layers, d_model 128, 2 heads of 64, d_ff 512):
  ids                     [batch, seq]            int64, seq <= block_size (rows of wpe)
  embed(ids, wte, wpe)    [batch, seq, 128]       wte [vocab, 128], wpe [block_size, 128] (learned)
  h.0. ... h.3.           [batch, seq, 128]       reference/block.py's transformer_block, causal mask
  ln_f, @ wte^T           [batch, seq, vocab]     logits

`params` is a flat dict: wte, wpe, h.{i}.<block key> (reference/block.py's PARAM_KEYS), ln_f.gamma, ln_f.beta.
It is GPT-2's architecture, so trained params map one-to-one onto a transformers GPT2LMHeadModel.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from reference.block import PARAM_KEYS, layer_norm, transformer_block
from reference.embeddings import embed
from reference.multihead import causal_mask

Params = Dict[str, Tensor]
_BLOCK_PREFIX = re.compile(r"^h\.(\d+)\.")


@dataclass(frozen=True)
class GPTConfig:
    """The model's shape. d_model // n_heads is the head size (64 for the built-in model, like distilgpt2)."""
    vocab_size: int
    block_size: int = 64
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 2

    @property
    def d_ff(self) -> int:
        return 4 * self.d_model


def block_indices(params: Params) -> list[int]:
    """The block numbers present in params (prefixes h.0. ... h.{L-1}.), in numeric order (h.10 after h.9)."""
    return sorted({int(m.group(1)) for key in params if (m := _BLOCK_PREFIX.match(key))})


def block_params(params: Params, index: int) -> Params:
    """The params of block `index` with the h.{index}. prefix removed (the block contract's keys)."""
    prefix = f"h.{index}."
    return {key[len(prefix):]: value for key, value in params.items() if key.startswith(prefix)}


def gpt_forward(ids: Tensor, params: Params, n_heads: int) -> Tensor:
    """ids int64 `[..., seq]` -> logits `[..., seq, vocab]`; seq beyond the rows of wpe raises ValueError."""
    seq = ids.shape[-1]
    if seq > params["wpe"].shape[0]:
        raise ValueError(f"sequence of {seq} tokens is longer than the {params['wpe'].shape[0]} positions of wpe")
    x = embed(ids, params["wte"], params["wpe"])                     # [..., seq, d_model]
    mask = causal_mask(seq).to(x.device)                             # [seq, seq], True = may attend
    for index in block_indices(params):
        x = transformer_block(x, block_params(params, index), n_heads, mask)  # [..., seq, d_model]
    x = layer_norm(x, params["ln_f.gamma"], params["ln_f.beta"])     # [..., seq, d_model]
    return x @ params["wte"].T                                       # [..., seq, vocab]


def init_params(config: GPTConfig, generator: torch.Generator) -> Params:
    """GPT-2's initialisation: weights N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 L)), biases 0, gains 1."""
    d, d_ff = config.d_model, config.d_ff

    def normal(*shape: int, std: float = 0.02) -> Tensor:
        return torch.randn(*shape, generator=generator) * std

    params: Params = {"wte": normal(config.vocab_size, d), "wpe": normal(config.block_size, d)}
    residual_std = 0.02 / math.sqrt(2 * config.n_layers)
    shapes = {"attn.W_q": (d, d), "attn.W_k": (d, d), "attn.W_v": (d, d), "attn.W_o": (d, d),
              "mlp.W_1": (d, d_ff), "mlp.W_2": (d_ff, d)}
    for layer in range(config.n_layers):
        for key in PARAM_KEYS:
            if key in shapes:
                std = residual_std if key in ("attn.W_o", "mlp.W_2") else 0.02
                params[f"h.{layer}.{key}"] = normal(*shapes[key], std=std)
            elif key.endswith("gamma"):
                params[f"h.{layer}.{key}"] = torch.ones(d)
            else:  # biases and betas: [d] or [d_ff] (mlp.b_1)
                params[f"h.{layer}.{key}"] = torch.zeros(d_ff if key == "mlp.b_1" else d)
    params["ln_f.gamma"], params["ln_f.beta"] = torch.ones(d), torch.zeros(d)
    return params


def get_batch(data: Tensor, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random windows of data (int64 `[n]`): inputs x `[batch, block]` and next-token targets y `[batch, block]`."""
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + block_size] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + 1 + block_size] for s in starts.tolist()])
    return x, y


def loss_fn(params: Params, x: Tensor, y: Tensor, n_heads: int) -> Tensor:
    """Mean cross-entropy of next-token predictions, in nats per token (per character for a char model)."""
    logits = gpt_forward(x, params, n_heads)                         # [batch, block, vocab]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate(params: Params, data: Tensor, n_heads: int, block_size: int, batch_size: int = 64) -> float:
    """Loss over every full, non-overlapping window of data (deterministic), nats per token."""
    n_windows = (len(data) - 1) // block_size
    total, count = 0.0, 0
    for first in range(0, n_windows, batch_size):
        starts = torch.arange(first, min(first + batch_size, n_windows)) * block_size
        offsets = torch.arange(block_size)
        x, y = data[starts[:, None] + offsets], data[starts[:, None] + offsets + 1]  # [b, block] each
        total += loss_fn(params, x, y, n_heads).item() * x.numel()
        count += x.numel()
    return total / count


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: AdamW, linear warm-up then cosine decay to min_lr; seeded batches and init."""
    max_iters: int = 2000
    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    seed: int = 1337


def learning_rate(step: int, train: TrainConfig) -> float:
    """Linear warm-up for warmup_iters steps, then cosine decay from lr to min_lr at max_iters."""
    if step < train.warmup_iters:
        return train.lr * (step + 1) / train.warmup_iters
    progress = (step - train.warmup_iters) / max(1, train.max_iters - train.warmup_iters)
    return train.min_lr + 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))) * (train.lr - train.min_lr)


def train(config: GPTConfig, train_config: TrainConfig, data: Tensor,
          on_step: Optional[Callable[[int, float], None]] = None) -> Params:
    """Train a fresh TinyGPT on data (int64 token ids `[n]`); on_step(step, loss) after every step."""
    generator = torch.Generator().manual_seed(train_config.seed)
    params = init_params(config, generator)
    for value in params.values():
        value.requires_grad_(True)
    # weight decay on matrices and embedding tables (dim >= 2), as nanoGPT does; none on biases and gains
    decayed = [v for v in params.values() if v.dim() >= 2]
    others = [v for v in params.values() if v.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": train_config.weight_decay},
                                   {"params": others, "weight_decay": 0.0}],
                                  lr=train_config.lr, betas=(0.9, train_config.beta2))
    for step in range(train_config.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, train_config)
        x, y = get_batch(data, train_config.batch_size, config.block_size, generator)  # [batch, block] each
        loss = loss_fn(params, x, y, config.n_heads)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), train_config.grad_clip)
        optimizer.step()
        if on_step is not None:
            on_step(step, loss.item())
    return {key: value.detach() for key, value in params.items()}


@torch.no_grad()
def sample(params: Params, ids: Tensor, n_heads: int, max_new_tokens: int, generator: torch.Generator,
           temperature: float = 0.8, top_k: Optional[int] = None) -> Iterator[int]:
    """Yield max_new_tokens sampled token ids continuing ids `[seq]` (context cropped to wpe's rows)."""
    block_size = params["wpe"].shape[0]
    ids = ids.clone()
    for _ in range(max_new_tokens):
        logits = gpt_forward(ids[-block_size:], params, n_heads)[-1] / temperature  # [vocab]
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # [1]
        ids = torch.cat([ids, next_id])
        yield int(next_id)
