"""Token embeddings and sinusoidal positions: the file you hand in (assignment `embeddings`).

Fill in the three functions below. Each is graded on its own.

Conventions for every function:
- ids are int64 `[..., seq]` with any leading batch dims (none too): index from the end, never `shape[1]`.
- table is `[vocab, d_model]`; a positions table is `[max_seq, d_model]` with max_seq >= seq.
- sinusoidal_positions(seq_len, d_model) returns `[seq_len, d_model]` in torch's default dtype, d_model
  even, sin and cos INTERLEAVED, positions counted from 0:
      PE[p, 2i]   = sin(p / 10000^(2i / d_model))
      PE[p, 2i+1] = cos(p / 10000^(2i / d_model))
- Keep the dtype of the table (float32 in, float32 out); torch operations only (no torch.nn.Embedding,
  no F.embedding, no .detach(), no NumPy); do not modify the inputs in place.

Shapes for PROMPT_EXAMPLE = "The cat sat on the mat" (GPT-2 ids [464, 3797, 3332, 319, 262, 2603]) at
distilgpt2's width (d_model = 768, 1024 positions):
    ids                          [1, 6]
    token_embedding(ids, table)  [1, 6, 768]
    sinusoidal_positions(1024, 768)  [1024, 768]
    embed(ids, table, positions) [1, 6, 768]
"""
import math  # noqa: F401

import torch  # noqa: F401


def token_embedding(ids, table):
    """ids `[..., seq]` int64, table `[vocab, d_model]` -> `[..., seq, d_model]`: row ids[...] of table."""
    raise NotImplementedError


def sinusoidal_positions(seq_len, d_model):
    """-> `[seq_len, d_model]`: the interleaved sin/cos table above (raise ValueError for an odd d_model)."""
    raise NotImplementedError


def embed(ids, table, positions):
    """token_embedding(ids, table) + positions[:seq] with seq = ids.shape[-1] -> `[..., seq, d_model]`."""
    raise NotImplementedError
