"""The mistake catalogue of the `attention` assignment: its classic mistakes, each with its rule.

Each mistake is defined next to a tiny generator (a "rule") that yields what a student making it returns
(see `autograder.diagnosis` for how rules are tried). A rule yields several outputs where students differ
in a detail the mistake leaves open: what a line with no allowed entry becomes (NaN, uniform, zeros),
which fill value blocks a score (-inf or -1e9). The composed `scaled_dot_product_attention` reuses the
section rules: a scores mistake flows through the right softmax and values, a softmax mistake through the
right values, a values mistake takes the right weights. Rows whose mask allows no key are not graded, so
they are not compared either.
"""
from __future__ import annotations

import importlib
import itertools
import math
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import Tensor

from autograder.assignments.attention.contract import ASSIGNMENT, EXAMPLE_D
from autograder.assignments.attention.ladder import LADDER
from autograder.diagnosis import (ANY_SECTION, GRADIENT_MISTAKES, Catalogue, Mistake, Output, Rule,
                                  gradient_mistake, rows_allowed_by_mask)
from autograder.diagnosis.parametric import PRECISION_MISTAKES

__all__ = ["ANY_SECTION", "CANDIDATE_RULES", "CATALOGUE", "GRADIENT_MISTAKES", "MISTAKES", "Mistake",
           "PRECISION_MISTAKES", "diagnose",
           "diagnose_error", "gradient_mistake", "mistake"]

ATTENTION = ASSIGNMENT.function_of(ASSIGNMENT.op("attention"))  # scaled_dot_product_attention
CATALOGUE = Catalogue(ASSIGNMENT, graded_rows=rows_allowed_by_mask, ladder=LADDER)

_LARGE_NEGATIVE = -1e9  # the finite fill students use instead of -inf
_MODEL_WIDTHS = (512, 768)  # d_model of the original paper and of distilgpt2


# ---------------------------------------------------------------- helpers shared by the rules


def _qk(Q: Tensor, K: Tensor) -> Tensor:
    """Unscaled scores Q K^T: `[..., seq_q, d_k] @ [..., d_k, seq_k] -> [..., seq_q, seq_k]`."""
    return Q @ K.transpose(-2, -1)


def _serial_softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """torch.softmax written out. The fused kernel wakes torch's thread pool even for a 6 x 6 tensor, which
    costs about a millisecond on a busy machine, and diagnose computes dozens; these ops stay serial."""
    exp = torch.exp(scores - scores.amax(dim, keepdim=True))
    return exp / exp.sum(dim, keepdim=True)


def _serial_log_softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """torch.log_softmax written out, for the same reason as _serial_softmax."""
    shifted = scores - scores.amax(dim, keepdim=True)
    return shifted - torch.exp(shifted).sum(dim, keepdim=True).log()


def _blocked(scores: Tensor, mask: Optional[Tensor], fill: float) -> Tensor:
    """scores with the entries the bool mask blocks (False) replaced by fill; unchanged without a mask."""
    return scores if mask is None else scores.masked_fill(~mask, fill)


def _attention(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """The right (scores, weights, attended); a row with no allowed key is NaN (it is not graded)."""
    scores = _qk(Q, K) / math.sqrt(Q.shape[-1])
    weights = _serial_softmax(_blocked(scores, mask, float("-inf")))
    return scores, weights, weights @ V


def _softmax_variants(scores: Tensor, mask: Optional[Tensor], dim: int = -1) -> Iterator[Tensor]:
    """Masked softmax of scores along dim (blocked entries 0), once per way students' code fills a line
    along dim that has no allowed entry: NaN (-inf fill), uniform (finite fill), the unmasked softmax
    (additive -1e9) or zeros (guarded like the reference). Without such lines, one output."""
    weights = _serial_softmax(_blocked(scores, mask, float("-inf")), dim)
    yield weights
    if mask is None:
        return
    empty = ~torch.broadcast_to(mask, scores.shape).any(dim, keepdim=True)
    if empty.any():
        uniform = torch.full_like(scores, 1.0 / scores.shape[dim])
        for line in (uniform, _serial_softmax(scores, dim), torch.zeros_like(scores)):
            yield torch.where(empty, line, weights)


# ---------------------------------------------------------------- 1 projections: (x, W_q, W_k, W_v) -> (Q, K, V)


@CATALOGUE.mistake(
    "swapped_projections",
    "projections",
    "your Q, K and V come out in the wrong order (for example K computed with W_q): return "
    "(x @ W_q, x @ W_k, x @ W_v) in exactly that order, each matrix learns a different role",
)
def _swapped_projections(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    right = (x @ W_q, x @ W_k, x @ W_v)
    yield from itertools.islice(itertools.permutations(right), 1, None)  # every order but the right one


@CATALOGUE.mistake(
    "transposed_weight_matrix",
    "projections",
    "you multiplied x by W transposed (x @ W.T, the nn.Linear weight layout), but here W is [d_model, d_k]: "
    "compute x @ W_q, x @ W_k and x @ W_v without transposing",
)
def _transposed_weight_matrix(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    yield tuple(x @ W.transpose(-2, -1) for W in (W_q, W_k, W_v))


@CATALOGUE.mistake(
    "same_matrix_for_all",
    "projections",
    "you projected Q, K and V all with W_q, so every token's query, key and value are the same vector: "
    "use W_k for K and W_v for V",
)
def _same_matrix_for_all(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    yield (x @ W_q,) * 3


# ---------------------------------------------------------------- 2 scores: (Q, K) -> [..., seq_q, seq_k]


@CATALOGUE.mistake(
    "no_scaling",
    "scores",
    "your scores equal Q K^T without the 1/sqrt(d_k) factor: divide by math.sqrt(d_k) so the softmax does "
    "not saturate as d_k grows",
)
def _no_scaling(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(Q, K)


@CATALOGUE.mistake(
    "divide_by_dk",
    "scores",
    "you divided Q K^T by d_k instead of by sqrt(d_k), which makes the scores too small and the softmax too "
    "flat: divide by math.sqrt(d_k)",
)
def _divide_by_dk(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(Q, K) / Q.shape[-1]


@CATALOGUE.mistake(
    "scale_by_sqrt_seq",
    "scores",
    "you divided Q K^T by the square root of a sequence length (Q.shape[-2] or K.shape[-2]) instead of "
    "sqrt(d_k): the scale depends on the size of the vectors being dotted, d_k = Q.shape[-1], not on how "
    "many tokens there are",
)
def _scale_by_sqrt_seq(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for seq in (Q.shape[-2], K.shape[-2]):
        yield _qk(Q, K) / math.sqrt(seq)


@CATALOGUE.mistake(
    "scale_by_d_model",
    "scores",
    "you divided Q K^T by the square root of a whole model's width (sqrt(512) or sqrt(768)) instead of "
    "sqrt(d_k) of the Q and K you were given: the scale is per head, d_k = Q.shape[-1]",
)
def _scale_by_d_model(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for width in _MODEL_WIDTHS:
        yield _qk(Q, K) / math.sqrt(width)


@CATALOGUE.mistake(
    "hardcoded_scale",
    "scores",
    "your scale is a fixed number from the worked example (8 = sqrt(64), or 64) rather than computed from "
    "the input, so it is only right when d_k = 64: use math.sqrt(Q.shape[-1])",
)
def _hardcoded_scale(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for constant in (math.sqrt(EXAMPLE_D), EXAMPLE_D):
        yield _qk(Q, K) / constant


@CATALOGUE.mistake(
    "transposed_scores",
    "scores",
    "your scores are K Q^T, with the keys on the rows: row i must hold query i's score for every key, "
    "so compute Q @ K.transpose(-2, -1)",
)
def _transposed_scores(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(K, Q) / math.sqrt(Q.shape[-1])


@CATALOGUE.mistake(
    "missing_transpose",
    "scores",
    "you computed Q @ K without transposing K; it only ran because K happens to be square: use "
    "Q @ K.transpose(-2, -1) (not K.T, which reverses every axis of a batched tensor)",
)
def _missing_transpose(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield Q @ K / math.sqrt(Q.shape[-1])


# ---------------------------------------------------------------- 3 softmax: (scores, mask) -> [..., seq_q, seq_k]


@CATALOGUE.mistake(
    "softmax_wrong_axis",
    "softmax",
    "your softmax normalises over the wrong axis (dim=-2, or dim=1 of a batched tensor), so columns instead "
    "of each query's row sum to 1: use dim=-1, the key axis",
)
def _softmax_wrong_axis(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for dim in range(-2, -scores.ndim - 1, -1):
        yield from _softmax_variants(scores, mask, dim)


@CATALOGUE.mistake(
    "mask_ignored",
    "softmax",
    "you ignored the mask, so blocked positions still get weight: fill the scores where mask is False with "
    "-inf before the softmax, e.g. scores.masked_fill(~mask, float('-inf'))",
)
def _mask_ignored(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield _serial_softmax(scores)


@CATALOGUE.mistake(
    "mask_inverted",
    "softmax",
    "you blocked the positions where the mask is True, but True means 'may attend': block where it is "
    "False, e.g. scores.masked_fill(~mask, float('-inf'))",
)
def _mask_inverted(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        yield from _softmax_variants(scores, ~mask)


@CATALOGUE.mistake(
    "mask_after_softmax",
    "softmax",
    "you applied the mask after the softmax (zeroing or multiplying the blocked weights): the rows no longer "
    "sum to 1, and renormalising them gives 0/0 = NaN once the allowed keys' weights underflow (large "
    "scores); block the scores with -inf before the softmax instead",
)
def _mask_after_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        zeroed = _serial_softmax(scores).masked_fill(~mask, 0.0)
        yield zeroed
        total = zeroed.sum(-1, keepdim=True)
        for epsilon in (0.0, 1e-12, 1e-9, 1e-6):  # renormalised, with or without a guard against 0/0
            yield zeroed / (total + epsilon)
        yield zeroed / total.clamp_min(1e-12)


@CATALOGUE.mistake(
    "multiplicative_mask",
    "softmax",
    "you multiplied the scores by the mask (or filled the blocked ones with 0), which makes blocked scores 0 "
    "rather than -inf, and exp(0) = 1 still gives them weight: use scores.masked_fill(~mask, float('-inf')) "
    "before the softmax",
)
def _multiplicative_mask(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        yield _serial_softmax(scores * mask)


@CATALOGUE.mistake(
    "unstable_softmax",
    "softmax",
    "your softmax takes exp(scores) directly, which overflows to inf and gives NaN for large scores: "
    "subtract each row's maximum first (the result is mathematically the same) or call torch.softmax",
)
def _unstable_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    exp = torch.exp(_blocked(scores, mask, float("-inf")))
    yield exp / exp.sum(-1, keepdim=True)


@CATALOGUE.mistake(
    "no_normalisation",
    "softmax",
    "you returned exp(scores) without dividing by the row sum, so the weights do not sum to 1: divide by "
    "the sum over the last axis (keepdim=True), or call torch.softmax(scores, dim=-1)",
)
def _no_normalisation(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield torch.exp(_blocked(scores, mask, float("-inf")))


@CATALOGUE.mistake(
    "log_softmax",
    "softmax",
    "you returned log-probabilities (log_softmax), but attention weights are probabilities that sum to 1: "
    "use torch.softmax(scores, dim=-1)",
)
def _log_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for fill in (float("-inf"), _LARGE_NEGATIVE):
        yield _serial_log_softmax(_blocked(scores, mask, fill))


# ---------------------------------------------------------------- 4 values: (weights, V) -> [..., seq_q, d_v]


@CATALOGUE.mistake(
    "transposed_weights",
    "values",
    "you multiplied the transposed weights with V: output i is the sum over keys j of weights[i, j] * V[j], "
    "which is weights @ V with no transpose",
)
def _transposed_weights(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield weights.transpose(-2, -1) @ V


@CATALOGUE.mistake(
    "wrong_matmul_order",
    "values",
    "you computed V @ weights, but matrix products do not commute: attended = weights @ V, "
    "[..., seq_q, seq_k] @ [..., seq_k, d_v]",
)
def _wrong_matmul_order(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield V @ weights


@CATALOGUE.mistake(
    "elementwise_product",
    "values",
    "you multiplied weights * V entry by entry; attention needs a matrix product that sums over the keys: "
    "weights @ V",
)
def _elementwise_product(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield weights * V


@CATALOGUE.mistake(
    "summed_wrong_axis",
    "values",
    "you multiplied each weight with its value vector but summed over the queries instead of the keys: "
    "attended[i] = sum over keys j of weights[i, j] * V[j], i.e. weights @ V",
)
def _summed_wrong_axis(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield (weights.unsqueeze(-1) * V.unsqueeze(-3)).sum(-3)


# ---------------------------------------------------------------- composed: (Q, K, V, mask) -> (attended, weights)


@CATALOGUE.mistake(
    "returns_scores_not_weights",
    "attention",
    "the second output of your scaled_dot_product_attention is the scores, not the softmax weights: "
    "return (attended, weights) with the weights you multiplied V by",
)
def _returns_scores_not_weights(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    scores, _, attended = _attention(Q, K, V, mask)
    for fill in (float("-inf"), _LARGE_NEGATIVE):
        yield attended, _blocked(scores, mask, fill)
    yield attended, scores


@CATALOGUE.mistake(
    "outputs_swapped",
    "attention",
    "you returned (weights, attended), but the contract is (attended, weights): swap the two outputs",
)
def _outputs_swapped(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    _, weights, attended = _attention(Q, K, V, mask)
    yield weights, attended


@CATALOGUE.mistake(
    "weights_transposed",
    "attention",
    "your attended output is right but the weights you return are transposed ([seq_k, seq_q]): return the "
    "weights exactly as you multiplied V by them, one row per query",
)
def _weights_transposed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    _, weights, attended = _attention(Q, K, V, mask)
    yield attended, weights.transpose(-2, -1)


def _through_scores(rule: Rule) -> Rule:
    """A scores rule as a composed rule: its scores go through the right softmax and values."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        for scores in rule(Q=Q, K=K):
            weights = _serial_softmax(_blocked(scores, mask, float("-inf")))
            yield weights @ V, weights

    return composed


def _through_softmax(rule: Rule) -> Rule:
    """A softmax rule as a composed rule: on the right scores, then through the right values."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        scores, _, _ = _attention(Q, K, V, mask)
        for weights in rule(scores=scores, mask=mask):
            yield weights @ V, weights

    return composed


def _through_values(rule: Rule) -> Rule:
    """A values rule as a composed rule: applied to the right weights, which are returned alongside."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        _, weights, _ = _attention(Q, K, V, mask)
        for attended in rule(weights=weights, V=V):
            yield attended, weights

    return composed


for _part, _lift in (("attention_scores", _through_scores), ("attention_weights", _through_softmax),
                     ("aggregate_values", _through_values)):
    CATALOGUE.lift(_part, ATTENTION, _lift)

importlib.import_module("autograder.assignments.attention.fitted")  # registers the fitted rules (it imports this)

# the names the project's tests and the grader use
MISTAKES: Tuple[Mistake, ...] = CATALOGUE.mistakes
CANDIDATE_RULES: Dict[str, List[Tuple[Mistake, Rule]]] = {f: CATALOGUE.candidates(f) for f in CATALOGUE.rules}
mistake = CATALOGUE.lookup
diagnose = CATALOGUE.diagnose
diagnose_error = CATALOGUE.diagnose_error
