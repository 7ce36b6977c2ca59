"""The attention assignment's mistakes described by a parameter, read off the student's own output.

- a constant scale factor: the student's scores are c * Q K^T; 1/c is named by the quantity it matches
  (sqrt(d_v), a sequence length, a hard-coded 64, a model's width) or given as a number;
- the same factor seen through the softmax, in the composed attention (fitted on the log-weights);
- a scale applied after the softmax (weights or attended values multiplied by a constant);
- a finite mask fill: too small to block scores this large (-1e4 with scores of order 1e4), or a fill
  near 0 that does not block at all (-1e-12, +1e-15).

The textbook forms (no scale, d_k, sqrt(seq), 512/768, 8 or 64) are exact rules of the catalogue and are
tried first; these name the rest. Imported by `mistakes`, which registers them after its exact rules.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

from autograder.assignments.attention.contract import EXAMPLE_D
from autograder.assignments.attention.mistakes import CATALOGUE, _blocked, _qk, _serial_softmax
from autograder.diagnosis import Mistake, named
from autograder.diagnosis.parametric import Quantities, finite, name_factor, nice, ratio, width_quantities

WRONG_SCALE = Mistake(
    "wrong_scale", "scores",
    "your scores are Q K^T {applied}{what}, instead of Q K^T / sqrt(d_k) with d_k = Q.shape[-1] = {d_k} "
    "(/ {right}): the scale is 1/math.sqrt(Q.shape[-1]) of the Q and K you are given",
)
SCALE_AFTER_SOFTMAX = Mistake(
    "scale_after_softmax", "attention",
    "you scaled after the softmax: your {which} are the right ones {applied}{what}; the 1/sqrt(d_k) belongs "
    "to the scores, before the softmax (whose weights sum to 1): softmax(Q K^T / sqrt(d_k)) @ V",
)
FILL_TOO_SMALL = Mistake(
    "mask_fill_too_small", "softmax",
    "you block masked scores with the finite value {fill}, which stops masking once scores reach {reach}: "
    "here scores go down to {lowest}, and the blocked keys get weight again; use float('-inf') or "
    "torch.finfo(scores.dtype).min",
)
FILL_NO_EFFECT = Mistake(
    "mask_fill_no_effect", "softmax",
    "your mask fill value {fill} does not block anything: a blocked score becomes about 0, and exp(0) still "
    "gives the key weight; fill with float('-inf') (or torch.finfo(scores.dtype).min), not a tiny number",
)
# when no row shows the fill (every allowed weight underflowed), the fills students type, most common first
_TYPICAL_FILLS = (-1e4, -1e3, -1e5, -1e6, -1e8, -1e7, -65504.0, -1e2, -3e4)


def _quantities(Q: Tensor, K: Tensor, V: Optional[Tensor] = None) -> Quantities:
    """What students divide by instead of sqrt(d_k), most telling first."""
    sizes = [("d_k", Q.shape[-1], "")] + ([("d_v", V.shape[-1], "the width of V")] if V is not None else [])
    sizes += [("seq_k", K.shape[-2], "the number of keys"), ("seq_q", Q.shape[-2], "the number of queries"),
              (str(EXAMPLE_D), EXAMPLE_D, "the worked example's d_k, hard-coded")]
    return tuple((label, float(value), note) for label, value, note in sizes) + width_quantities()


def _describe(factor: float, quantities: Quantities) -> Tuple[str, str]:
    """('/ 19.6', ', i.e. divided by sqrt(384) = 19.6, a model width') for a multiplicative factor."""
    if factor <= 0 or not math.isfinite(factor):
        return f"* {nice(factor)}", ""
    if factor < 1:
        name = name_factor(1 / factor, quantities)
        return f"/ {nice(1 / factor)}", f", i.e. divided by {name}" if name else ""
    name = name_factor(factor, quantities)
    return f"* {nice(factor)}", f", i.e. multiplied by {name}" if name else ""


def _scale_mistake(factor: float, Q: Tensor, K: Tensor, V: Optional[Tensor] = None) -> Mistake:
    applied, what = _describe(factor, _quantities(Q, K, V))
    d_k = Q.shape[-1]
    return named(WRONG_SCALE, applied=applied, what=what, d_k=d_k, right=nice(math.sqrt(d_k)))


@CATALOGUE.fitted("scores", WRONG_SCALE)
def _constant_scale(student: Tuple[Tensor, ...], Q: Tensor, K: Tensor) -> Iterator[Tuple[Tensor, Mistake]]:
    """scores = c * Q K^T for a c that is not 1/sqrt(d_k)."""
    unscaled = _qk(Q, K)
    factor = ratio(student[0], unscaled)
    yield factor * unscaled, _scale_mistake(factor, Q, K)


def _log_weight_factor(weights: Tensor, unscaled: Tensor, mask: Optional[Tensor]) -> float:
    """The c with log(weights) = c * unscaled + (a constant per row), by least squares on the entries the
    mask allows and the weights do not underflow."""
    keep = (weights > 0) & torch.isfinite(unscaled)
    if mask is not None:
        keep &= torch.broadcast_to(mask, weights.shape)
    log_w = torch.where(keep, weights.clamp_min(1e-300).log(), 0.0)
    u = torch.where(keep, unscaled, 0.0)
    count = keep.sum(-1, keepdim=True).clamp_min(1)
    log_w = torch.where(keep, log_w - log_w.sum(-1, keepdim=True) / count, 0.0)
    u = torch.where(keep, u - u.sum(-1, keepdim=True) / count, 0.0)
    return finite(float((log_w * u).sum() / (u * u).sum()))


@CATALOGUE.fitted("attention", WRONG_SCALE)
def _constant_scale_composed(student: Tuple[Tensor, ...], Q: Tensor, K: Tensor, V: Tensor,
                             mask: Optional[Tensor]) -> Iterator[Tuple[Tuple[Tensor, Tensor], Mistake]]:
    """softmax(c * Q K^T) for a c that is not 1/sqrt(d_k), read off the student's weights."""
    unscaled = _qk(Q, K)
    factor = _log_weight_factor(student[1].to(unscaled.dtype), unscaled, mask)
    for c in (factor, float(f"{factor:.6g}")):
        weights = _serial_softmax(_blocked(c * unscaled, mask, float("-inf")))
        yield (weights @ V, weights), _scale_mistake(c, Q, K, V)


@CATALOGUE.fitted("attention", SCALE_AFTER_SOFTMAX)
def _scale_after_softmax(student: Tuple[Tensor, ...], Q: Tensor, K: Tensor, V: Tensor,
                         mask: Optional[Tensor]) -> Iterator[Tuple[Tuple[Tensor, Tensor], Mistake]]:
    """softmax(s) * c, with s scaled or not, and the factor on the weights (both outputs) or on the
    attended values only."""
    quantities = _quantities(Q, K, V)
    for scores in (_qk(Q, K), _qk(Q, K) / math.sqrt(Q.shape[-1])):
        weights = _serial_softmax(_blocked(scores, mask, float("-inf")))
        attended = weights @ V
        factor = ratio(student[0], attended)
        applied, what = _describe(factor, quantities)
        yield (factor * attended, factor * weights), named(SCALE_AFTER_SOFTMAX, which="weights", applied=applied,
                                                          what=what)
        yield (factor * attended, weights), named(SCALE_AFTER_SOFTMAX, which="attended values",
                                                  applied=applied, what=what)


def _fill_estimates(weights: Tensor, scores: Tensor, mask: Tensor) -> Iterator[Tuple[str, float]]:
    """(form, fill) read off the weights: log w_blocked - log w_allowed = fill - s_allowed ("replace",
    masked_fill) or fill + s_blocked - s_allowed ("add", scores + fill * ~mask); medians over the rows
    where a blocked and an allowed weight are both > 0."""
    mask = torch.broadcast_to(mask, scores.shape)
    allowed_w = torch.where(mask, weights, -1.0)
    top = allowed_w.argmax(-1, keepdim=True)
    w_a, s_a = weights.gather(-1, top), scores.gather(-1, top)
    usable = (~mask) & (weights > 0) & (w_a > 0)
    if not usable.any():
        return
    gap = (weights.clamp_min(1e-300).log() - w_a.clamp_min(1e-300).log())
    yield "replace", float((gap + s_a)[usable].median())
    yield "add", float((gap + s_a - scores)[usable].median())


def _fill_candidates(weights: Tensor, scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tuple[Tensor, float]]:
    """Weights with blocked scores replaced by (or added) a finite fill, for the fills the student's weights
    show, rounded as written, then the fills students type."""
    if mask is None:
        return
    fitted = list(_fill_estimates(weights, scores, mask))
    fills = [(form, float(f"{f:.2g}")) for form, f in fitted] + fitted
    fills += [(form, f) for f in _TYPICAL_FILLS for form in ("replace", "add")]
    for form, fill in fills:
        blocked = scores.masked_fill(~mask, fill) if form == "replace" else scores + fill * (~mask)
        yield _serial_softmax(blocked), fill


def _fill_mistake(fill: float, scores: Tensor, mask: Tensor) -> Optional[Mistake]:
    """The mistake a finite fill makes on these scores; None for a fill of 0 within rounding (the same
    weights as multiplying the scores by the mask, which the catalogue names)."""
    if abs(fill) < 1e-14:
        return None
    if abs(fill) < 1:
        return named(FILL_NO_EFFECT, fill=nice(fill))
    allowed = scores[torch.broadcast_to(mask, scores.shape)]
    return named(FILL_TOO_SMALL, fill=nice(fill), reach=nice(float(f"{abs(fill):.1g}")),
                 lowest=nice(float(f"{float(allowed.min()):.2g}")))


def _fills(student_weights: Tensor, scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tuple[Tensor, Mistake]]:
    """Finite-fill candidates, except a fitted fill above -100 that gives the weights of ignoring the mask
    (a fill added near 0, or one equal to the only blocked score it replaces): that is the catalogue's
    mask_ignored. A fill students type (-1000, -1e4) is kept: on scores this large it blocks nothing, as
    ignoring the mask does, and elsewhere it blocks."""
    ignored = _serial_softmax(scores)
    for weights, fill in _fill_candidates(student_weights.to(scores.dtype), scores, mask):
        found = _fill_mistake(fill, scores, mask)
        if found is not None and (fill <= -100 or not torch.allclose(weights, ignored, rtol=1e-6, atol=1e-9)):
            yield weights, found


@CATALOGUE.fitted("softmax", FILL_TOO_SMALL, FILL_NO_EFFECT, first=True)
def _finite_fill(student: Tuple[Tensor, ...], scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tuple[Tensor, Mistake]]:
    """softmax of the scores with blocked entries set to (or shifted by) a finite fill."""
    yield from _fills(student[0], scores, mask)


@CATALOGUE.fitted("attention", FILL_TOO_SMALL, FILL_NO_EFFECT, first=True)
def _finite_fill_composed(student: Tuple[Tensor, ...], Q: Tensor, K: Tensor, V: Tensor,
                          mask: Optional[Tensor]) -> Iterator[Tuple[Tuple[Tensor, Tensor], Mistake]]:
    """The finite fill on the right scores, through the right values."""
    scores = _qk(Q, K) / math.sqrt(Q.shape[-1])
    for weights, found in _fills(student[1], scores, mask):
        yield (weights @ V, weights), found
