"""Distances between attention maps and between next-token distributions.

Pure functions on tensors; every one reduces the last axis and keeps the leading ones, so a stack of
attention maps `[B, H, S_q, S_k]` gives one number per query row `[B, H, S_q]`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _as_distribution(p: Tensor) -> Tensor:
    """Clamp negatives to 0 and rescale each row `[..., K]` to sum to 1 (a zero row becomes NaN)."""
    p = p.double().clamp_min(0.0)
    return p / p.sum(dim=-1, keepdim=True)


def cosine_per_row(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine similarity of the rows of a and b `[..., K]` -> `[...]` (float64)."""
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)


def emd_per_row(p: Tensor, q: Tensor) -> Tensor:
    """Earth Mover's (1-Wasserstein) distance between rows p, q `[..., K]` on positions 0..K-1 -> `[...]`.

    Same value as `scipy.stats.wasserstein_distance(range(K), range(K), p_row, q_row)`: rows are
    normalised to sum to 1 as scipy does; negative entries are clamped to 0 first. In 1-D with unit
    spacing the distance is the L1 distance between the two cumulative distributions.
    """
    cdf_gap = _as_distribution(p).cumsum(-1) - _as_distribution(q).cumsum(-1)
    return cdf_gap[..., :-1].abs().sum(-1)


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) between rows p, q `[..., K]` -> `[...]`.

    Rows are clamped at 0 and normalised like `emd_per_row`.
    """
    p, q = _as_distribution(p), _as_distribution(q)
    m = 0.5 * (p + q)

    def kl_to_m(x: Tensor) -> Tensor:
        # 0 * log(0 / m) = 0: only positions where x > 0 contribute
        return torch.where(x > 0, x * (x / m).log(), torch.zeros_like(x)).sum(-1)

    return 0.5 * (kl_to_m(p) + kl_to_m(q)) / math.log(2.0)


def kl_from_logits(reference_logits: Tensor, student_logits: Tensor) -> Tensor:
    """KL(P_reference || P_student) in nats between softmax distributions of logits `[..., V]` -> `[...]`."""
    log_p = torch.log_softmax(reference_logits.double(), dim=-1)
    log_q = torch.log_softmax(student_logits.double(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def topk_agreement(reference_logits: Tensor, student_logits: Tensor, k: int) -> Tensor:
    """Fraction of the reference's top-k tokens that are also in the student's top-k: `[..., V]` -> `[...]`.

    k = 1 gives top-1 agreement (1.0 when the argmax agrees, else 0.0).
    """
    ref = reference_logits.topk(k, dim=-1).indices  # [..., k]
    stu = student_logits.topk(k, dim=-1).indices  # [..., k]
    shared = (ref.unsqueeze(-1) == stu.unsqueeze(-2)).any(-1)  # [..., k]
    return shared.double().mean(-1)


def max_abs_diff(a: Tensor, b: Tensor, where: Tensor | None = None) -> float:
    """Largest |a - b| over all entries, or over those `where` selects (bool, broadcastable); NaN counts as inf."""
    diff = (a.double() - b.double()).abs().nan_to_num(nan=math.inf)
    if where is not None:
        diff = diff[where.expand_as(diff)]
    return float(diff.max()) if diff.numel() else 0.0
