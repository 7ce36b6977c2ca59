"""Reference token and sinusoidal position embeddings: the answers the `embeddings` assignment is graded against.

ids are int64 `[..., seq]`; table `[vocab, d_model]`; positions `[max_seq, d_model]`.
  PE[p, 2i]   = sin(p / 10000^(2i / d_model))
  PE[p, 2i+1] = cos(p / 10000^(2i / d_model))     p = 0, 1, ...; d_model even
"The cat sat on the mat" with GPT-2's tokenizer: ids [1, 6] -> embeddings [1, 6, d_model].
"""
from __future__ import annotations

import torch
from torch import Tensor


def token_embedding(ids: Tensor, table: Tensor) -> Tensor:
    """ids `[..., seq]` -> `[..., seq, d_model]`: row ids[...] of the table."""
    return table[ids]


def sinusoidal_positions(seq_len: int, d_model: int) -> Tensor:
    """`[seq_len, d_model]` in torch's default dtype: interleaved sin (even columns) and cos (odd columns)."""
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even")
    position = torch.arange(seq_len, dtype=torch.float64).unsqueeze(1)              # [seq_len, 1]
    rates = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # [d_model / 2]
    table = torch.empty(seq_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates)
    return table.to(torch.get_default_dtype())


def embed(ids: Tensor, table: Tensor, positions: Tensor) -> Tensor:
    """token_embedding(ids, table) + positions[:seq], seq = ids.shape[-1]: `[..., seq, d_model]`."""
    return token_embedding(ids, table) + positions[: ids.shape[-1]]
