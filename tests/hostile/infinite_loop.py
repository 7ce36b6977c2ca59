"""A call that never returns (and a busy thread from import on, competing for the GIL)."""
import threading

import torch


def _spin():
    while True:
        pass


threading.Thread(target=_spin, daemon=True, name="hostile-spin").start()


def linear_projections(x, W_q, W_k, W_v):
    while True:
        pass


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
