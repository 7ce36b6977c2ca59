"""Keeps state between calls: the first answer for any input is garbage, every later one is right. A
property check that fails on the first call passes when it is replayed (hypothesis: Flaky)."""
import math

import torch

SEEN = set()


def _first_time(*tensors):
    key = tuple((tuple(t.shape), float(t.double().sum())) for t in tensors if isinstance(t, torch.Tensor))
    fresh = key not in SEEN
    SEEN.add(key)
    return fresh


def _answer(right, *inputs):
    value = right()
    return torch.full_like(value, 7.0) if _first_time(*inputs) else value


def linear_projections(x, W_q, W_k, W_v):
    return tuple(_answer(lambda W=W: x @ W, x, W) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return _answer(lambda: Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]), Q, K)


def attention_weights(scores, mask=None):
    def right():
        masked = scores if mask is None else scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(masked, dim=-1)
    return _answer(right, scores, mask)


def aggregate_values(weights, V):
    return _answer(lambda: weights @ V, weights, V)
