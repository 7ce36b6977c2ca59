"""Positions counted from 1."""
import torch


def token_embedding(ids, table):
    return table[ids]


def sinusoidal_positions(seq_len, d_model):
    if d_model % 2:
        raise ValueError("d_model must be even")
    position = torch.arange(1, seq_len + 1, dtype=torch.float64).unsqueeze(1)
    rates = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.zeros(seq_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * rates)
    pe[:, 1::2] = torch.cos(position * rates)
    return pe.to(torch.get_default_dtype())


def embed(ids, table, positions):
    return token_embedding(ids, table) + positions[: ids.shape[-1]]
