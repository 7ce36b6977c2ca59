"""The `multihead` assignment's contract: functions, sections, signatures, the worked example and the
inputs the checks draw (trusted side only).

Example ("The cat sat on the mat", distilgpt2's sizes): x [1, 6, 768], 12 heads of 64,
split_heads -> [1, 12, 6, 64], causal_mask(6) -> [6, 6], out [1, 6, 768], weights [1, 12, 6, 6].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.multihead import mistakes
from autograder.checks.generic import Spec
from reference import multihead as ref

ASSIGNMENT = "multihead"
SECTION_FUNCTIONS: Dict[str, str] = mistakes.SECTION_FUNCTIONS
SECTIONS: Tuple[str, ...] = (*SECTION_FUNCTIONS, "model")
SIGNATURES: Dict[str, str] = {
    "split_heads": "split_heads(x [..., seq, d_model], n_heads) -> [..., n_heads, seq, d_head]",
    "merge_heads": "merge_heads(x [..., n_heads, seq, d_head]) -> [..., seq, n_heads * d_head]",
    "causal_mask": "causal_mask(seq_len) -> bool [seq_len, seq_len], True on and below the diagonal",
    "multi_head_attention": "multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads, mask=None) -> "
                            "(out [..., seq, d_model], weights [..., n_heads, seq, seq])",
}
ARG_NAMES: Dict[str, Tuple[str, ...]] = {
    "split_heads": ("x", "n_heads"),
    "merge_heads": ("x",),
    "causal_mask": ("seq_len",),
    "multi_head_attention": ("x", "W_q", "W_k", "W_v", "W_o", "n_heads", "mask"),
}
SPEC = Spec(
    reference={name: getattr(ref, name) for name in SECTION_FUNCTIONS.values()},
    outputs={"split_heads": ("heads",), "merge_heads": ("merged heads",), "causal_mask": ("mask",),
             "multi_head_attention": ("out", "weights")},
    signatures=SIGNATURES,
    candidate_rules=mistakes.CANDIDATE_RULES,
    axes_hint="tensors have any leading batch dims, so index from the end (-1, -2, -3) and take sizes from the "
              "input, never hard-coded",
)


@dataclass(frozen=True)
class Problem:
    """One seeded problem: x `[*batch, seq, d_model]`, four `[d_model, d_model]` weights and a mask kind:
    "none", "causal" ([seq, seq]) or "batched" ([*batch, 1, seq, seq], random, diagonal always allowed)."""

    batch: Tuple[int, ...] = (1,)
    seq: int = 6
    d_model: int = 768
    n_heads: int = 12
    mask: str = "causal"
    seed: int = 0
    dtype: torch.dtype = torch.float64

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def randn(self, *shape: int, salt: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + salt)
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(self.dtype)

    def x(self) -> Tensor:
        return self.randn(*self.batch, self.seq, self.d_model, salt=1)

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """W_q, W_k, W_v, W_o scaled so that scores stay O(1)."""
        scale = 1 / math.sqrt(self.d_model)
        return tuple(self.randn(self.d_model, self.d_model, salt=2 + i) * scale for i in range(4))

    def heads(self) -> Tensor:
        """Input of merge_heads: `[*batch, n_heads, seq, d_head]`."""
        return self.randn(*self.batch, self.n_heads, self.seq, self.d_head, salt=6)

    def attn_mask(self) -> Optional[Tensor]:
        if self.mask == "none":
            return None
        if self.mask == "causal":
            return ref.causal_mask(self.seq)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7)
        keep = torch.rand(*self.batch, 1, self.seq, self.seq, generator=g) < 0.5  # [*batch, 1, seq, seq]
        return keep | torch.eye(self.seq, dtype=torch.bool)

    def args(self, fn: str) -> Tuple[Any, ...]:
        """The inputs of one contract function on this problem."""
        if fn == "split_heads":
            return (self.x(), self.n_heads)
        if fn == "merge_heads":
            return (self.heads(),)
        if fn == "causal_mask":
            return (self.seq,)
        return (self.x(), *self.weights(), self.n_heads, self.attn_mask())

    def __str__(self) -> str:
        return (f"batch {list(self.batch)}, seq {self.seq}, d_model {self.d_model}, {self.n_heads} heads, "
                f"mask {self.mask}, {str(self.dtype).replace('torch.', '')}")


EXAMPLE = Problem()  # distilgpt2's sizes, "The cat sat on the mat"


def problems(masks: Tuple[str, ...] = ("none", "causal", "batched"), max_seq: int = 12, max_heads: int = 6,
             max_d_head: int = 8) -> st.SearchStrategy[Problem]:
    """Random sizes: 0-2 leading batch dims of 1..3, seq 1..max_seq, 1..max_heads heads of 1..max_d_head."""
    return st.builds(
        lambda batch, seq, heads, d_head, mask, seed: Problem(tuple(batch), seq, heads * d_head, heads, mask, seed),
        st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, max_seq), st.integers(1, max_heads),
        st.integers(1, max_d_head), st.sampled_from(list(masks)), st.integers(0, 2**16))
