"""A one-hot matrix product for the lookup; the sinusoids in float32 with exp/log, stacked and flattened."""
import math

import torch


def token_embedding(ids, table):
    one_hot = torch.nn.functional.one_hot(ids, table.shape[0]).to(table.dtype)  # [..., seq, vocab]
    return one_hot @ table


def sinusoidal_positions(seq_len, d_model):
    position = torch.arange(seq_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    angle = position * div                                  # [seq_len, d_model / 2]
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(seq_len, d_model)


def embed(ids, table, positions):
    seq = ids.shape[-1]
    return token_embedding(ids, table) + positions[:seq, :]
