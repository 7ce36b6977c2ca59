"""Keeps state between calls: the first answer for any input is garbage, every later one is zeros. A
property check that fails on the first call passes when it is replayed (hypothesis: Flaky)."""
import torch

SEEN = set()


def _first_time(*tensors):
    key = tuple((tuple(t.shape), float(t.double().sum())) for t in tensors if isinstance(t, torch.Tensor))
    fresh = key not in SEEN
    SEEN.add(key)
    return fresh


def _answer(shape, dtype, *inputs):
    if _first_time(*inputs):
        return torch.full(shape, 7.0, dtype=dtype)
    return torch.zeros(*shape, dtype=dtype)


def linear_projections(x, W_q, W_k, W_v):
    return tuple(_answer((*x.shape[:-1], W.shape[-1]), x.dtype, x, W) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return _answer((*Q.shape[:-1], K.shape[-2]), Q.dtype, Q, K)


def attention_weights(scores, mask=None):
    return _answer(tuple(scores.shape), scores.dtype, scores, mask)


def aggregate_values(weights, V):
    return _answer((*weights.shape[:-1], V.shape[-1]), V.dtype, weights, V)
