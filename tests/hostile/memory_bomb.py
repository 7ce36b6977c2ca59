"""Memory: 1 TiB at import, 8 GiB at once in one call, and in another a fill of memory page by page (every
page written, so really resident) until something refuses."""
import torch

try:
    _HOARD = bytearray(1 << 40)
except MemoryError:
    _HOARD = None


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    hoard = []
    while True:
        hoard.append(torch.ones(1 << 25, dtype=torch.float64))  # 256 MiB


def aggregate_values(weights, V):
    return torch.ones(1 << 30, dtype=torch.float64)  # 8 GiB
