"""Right-shaped zeros still connected to the inputs (`0 * x`): a constant function whose zero gradient
agrees with its own finite differences, is deterministic, dtype-preserving, shift invariant and
permutation equivariant. Only the shape points may be earned."""


def linear_projections(x, W_q, W_k, W_v):
    return tuple(0 * (x[..., :1] * W.sum()).expand(*x.shape[:-1], W.shape[-1]) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return 0 * (Q[..., :1] * K.sum()).expand(*Q.shape[:-1], K.shape[-2])


def attention_weights(scores, mask=None):
    return 0 * scores


def aggregate_values(weights, V):
    return 0 * (weights[..., :1] * V.sum()).expand(*weights.shape[:-1], V.shape[-1])
