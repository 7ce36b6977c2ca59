"""Prints gigabytes: a thread that writes from import on until the worker ends, and a first call that
writes 1 GiB straight to the descriptor before returning."""
import os
import sys
import threading

import torch

CHUNK = b"29 passed ::error::flood " * (1 << 15)  # ~800 KiB


def _flood():
    while True:
        try:
            os.write(2, CHUNK)
        except OSError:
            return


threading.Thread(target=_flood, daemon=True).start()


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


FLOODED = []


def attention_scores(Q, K):
    written = 0
    while not FLOODED and written < (1 << 30):
        written += os.write(1, CHUNK)
    FLOODED.append(written)
    sys.stdout.write(f"done flooding: {written} bytes\n")
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
