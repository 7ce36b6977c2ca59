"""The `multihead` mistake catalogue: each classic mistake recomputed on the student's exact inputs.

Trusted side only, in the form of the attention catalogue: a mistake is defined next to its rule, a
generator that yields what a student making it returns (several outputs where students differ in a
detail the mistake leaves open). A rule that cannot apply to the inputs raises and is skipped.
`multi_head_attention` reuses the rules of the pieces students build it from: a split or merge mistake
flows through otherwise right attention, as it does in a student's file that calls its own helpers.

Functions and their sections: split_heads (split), merge_heads (merge), causal_mask (mask),
multi_head_attention (attention).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Optional, Tuple

import torch
from torch import Tensor

from autograder.assignments.multihead.contract import ASSIGNMENT
from autograder.diagnosis import Catalogue, Rule
from reference import multihead as ref

CATALOGUE = Catalogue(ASSIGNMENT)
_mistake = CATALOGUE.mistake


def attention(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
              mask: Optional[Tensor] = None, *, split: Callable[[Tensor, int], Tensor] = ref.split_heads,
              merge: Callable[[Tensor], Tensor] = ref.merge_heads, scale: Optional[float] = None,
              softmax_dim: int = -1, mask_view: Callable[[Tensor], Tensor] = lambda m: m,
              project: bool = True) -> Tuple[Tensor, Tensor]:
    """Multi-head attention `(out [..., seq, d_model], weights [..., n_heads, seq, seq])` with one piece
    swapped for a student's variant; with the defaults it is the reference."""
    Q, K, V = (split(x @ W, n_heads) for W in (W_q, W_k, W_v))  # [..., n_heads, seq, d_head]
    scores = Q @ K.transpose(-2, -1) / (math.sqrt(Q.shape[-1]) if scale is None else scale)
    if mask is not None:
        scores = scores.masked_fill(~mask_view(mask.to(torch.bool)), float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim)
    merged = merge(weights @ V)  # [..., seq, d_model]
    return (merged @ W_o if project else merged), weights


# ---------------------------------------------------------------- split_heads: (x, n_heads) -> [..., n_heads, seq, d_head]


def _d_head(x: Tensor, n_heads: int) -> int:
    if n_heads <= 0 or x.shape[-1] % n_heads:
        raise ValueError("n_heads does not divide d_model")
    return x.shape[-1] // n_heads


@_mistake(
    "split_without_transpose",
    "split",
    "you reshaped [..., seq, d_model] straight to [..., n_heads, seq, d_head]: that cuts the memory into "
    "chunks of whole tokens instead of giving every token's columns h*d_head:(h+1)*d_head to head h; "
    "reshape to [..., seq, n_heads, d_head] first, then .transpose(-3, -2)",
)
def _split_without_transpose(x: Tensor, n_heads: int) -> Iterator[Tensor]:
    d_head = _d_head(x, n_heads)
    yield x.reshape(*x.shape[:-2], n_heads, x.shape[-2], d_head)


@_mistake(
    "interleaved_heads",
    "split",
    "your head h takes every n_heads-th column (h, h + n_heads, ...): the heads must be contiguous blocks, "
    "head h = columns h*d_head:(h+1)*d_head, which is what reshaping the last axis to (n_heads, d_head) gives",
)
def _interleaved_heads(x: Tensor, n_heads: int) -> Iterator[Tensor]:
    d_head = _d_head(x, n_heads)
    yield x.reshape(*x.shape[:-1], d_head, n_heads).movedim(-1, -3)


# ---------------------------------------------------------------- merge_heads: x -> [..., seq, n_heads * d_head]


@_mistake(
    "merge_without_transpose",
    "merge",
    "you flattened [..., n_heads, seq, d_head] straight to [..., seq, d_model] without moving the heads "
    "axis back next to d_head, so each output row mixes several tokens: .transpose(-3, -2) first, then "
    "reshape (the inverse of split_heads)",
)
def _merge_without_transpose(x: Tensor) -> Iterator[Tensor]:
    *batch, n_heads, seq, d_head = x.shape
    yield x.reshape(*batch, seq, n_heads * d_head)


# ---------------------------------------------------------------- causal_mask: seq_len -> bool [seq_len, seq_len]


def _ones(seq_len: int) -> Tensor:
    return torch.ones(seq_len, seq_len, dtype=torch.bool)


@_mistake(
    "causal_mask_excludes_diagonal",
    "mask",
    "your causal mask is off by one: it blocks the diagonal, so query i cannot see its own token (and "
    "query 0 sees nothing); True belongs on and below the diagonal: torch.tril(ones, diagonal=0)",
)
def _causal_mask_excludes_diagonal(seq_len: int) -> Iterator[Tensor]:
    yield _ones(seq_len).tril(-1)


@_mistake(
    "causal_mask_one_future_token",
    "mask",
    "your causal mask is off by one the other way: query i also sees key i+1, the token it must predict; "
    "True belongs on and below the diagonal only: torch.tril(ones, diagonal=0)",
)
def _causal_mask_one_future_token(seq_len: int) -> Iterator[Tensor]:
    yield _ones(seq_len).tril(1)


@_mistake(
    "causal_mask_inverted",
    "mask",
    "your causal mask marks the future (the positions to block), but True means 'may attend': return "
    "torch.tril(ones) (on and below the diagonal), not torch.triu(ones, diagonal=1)",
)
def _causal_mask_inverted(seq_len: int) -> Iterator[Tensor]:
    yield _ones(seq_len).triu(1)
    yield ~_ones(seq_len).tril()


# ---------------------------------------------------------------- multi_head_attention: -> (out, weights)


@_mistake(
    "scale_by_sqrt_d_model",
    "attention",
    "you divided the scores by sqrt(d_model) instead of sqrt(d_head): each head dots vectors of d_head = "
    "d_model // n_heads entries, so the scale is 1 / math.sqrt(Q_h.shape[-1])",
)
def _scale_by_sqrt_d_model(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                           mask: Optional[Tensor]) -> Iterator[object]:
    yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, scale=math.sqrt(x.shape[-1]))


@_mistake(
    "mask_not_broadcast_over_heads",
    "attention",
    "you added a head axis to the mask yourself (mask.unsqueeze(1), as for [batch, seq, seq] masks in The "
    "Annotated Transformer); here the mask already broadcasts against the weights [..., n_heads, seq, seq] "
    "(a [seq, seq] mask, or [batch, 1, seq, seq]): use it as it comes, scores.masked_fill(~mask, -inf)",
)
def _mask_not_broadcast_over_heads(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                                   mask: Optional[Tensor]) -> Iterator[object]:
    if mask is not None:
        yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, mask_view=lambda m: m.unsqueeze(1))


@_mistake(
    "output_projection_forgotten",
    "attention",
    "you returned the merged heads without the output projection: out = merge_heads(...) @ W_o (the shapes "
    "match either way, which is why it is easy to forget)",
)
def _output_projection_forgotten(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                                 mask: Optional[Tensor]) -> Iterator[object]:
    yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, project=False)


@_mistake(
    "softmax_wrong_axis",
    "attention",
    "your softmax normalises over the wrong axis (dim=1 of [batch, heads, seq, seq] is the heads, dim=-2 "
    "the queries): each query's weights over the keys must sum to 1, so use dim=-1",
)
def _softmax_wrong_axis(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                        mask: Optional[Tensor]) -> Iterator[object]:
    ndim = x.ndim + 1  # the weights have a heads axis more than x
    for dim in range(-2, -ndim - 1, -1):
        yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, softmax_dim=dim)


def _through_split(rule: Rule) -> Rule:
    """A split rule as an attention rule: the student's split for Q, K and V, everything else right."""

    def composed(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                 mask: Optional[Tensor]) -> Iterator[object]:
        def split(t: Tensor, n: int) -> Tensor:
            return next(iter(rule(x=t, n_heads=n)))

        yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, split=split)

    return composed


def _through_merge(rule: Rule) -> Rule:
    """A merge rule as an attention rule: the student's merge, everything else right."""

    def composed(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor, n_heads: int,
                 mask: Optional[Tensor]) -> Iterator[object]:
        yield attention(x, W_q, W_k, W_v, W_o, n_heads, mask, merge=lambda t: next(iter(rule(x=t))))

    return composed


CATALOGUE.lift("split_heads", into="multi_head_attention", how=_through_split)
CATALOGUE.lift("merge_heads", into="multi_head_attention", how=_through_merge)
