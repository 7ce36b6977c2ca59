"""Answers every call with 16 MiB of tensor data (two million float64 zeros) instead of a few hundred
bytes: a grader that reads whatever size a worker announces holds it all, for every call. Shaped wrong,
so it can earn nothing; the point is what the grader allocates."""
import torch

HUGE = 2_000_000


def _huge(like):
    return torch.zeros(HUGE, dtype=like.dtype)


def linear_projections(x, W_q, W_k, W_v):
    return _huge(x), _huge(x), _huge(x)


def attention_scores(Q, K):
    return _huge(Q)


def attention_weights(scores, mask=None):
    return _huge(scores)


def aggregate_values(weights, V):
    return _huge(V)
