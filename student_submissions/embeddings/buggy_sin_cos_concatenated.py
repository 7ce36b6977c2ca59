"""All the sines, then all the cosines (torch.cat) instead of interleaving them."""
import torch


def token_embedding(ids, table):
    return table[ids]


def sinusoidal_positions(seq_len, d_model):
    if d_model % 2:
        raise ValueError("d_model must be even")
    position = torch.arange(seq_len, dtype=torch.float64).unsqueeze(1)
    rates = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.cat([torch.sin(position * rates), torch.cos(position * rates)], dim=-1)
    return pe.to(torch.get_default_dtype())


def embed(ids, table, positions):
    return token_embedding(ids, table) + positions[: ids.shape[-1]]
