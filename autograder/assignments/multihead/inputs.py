"""Random problems of the `multihead` assignment and the inputs of each function (trusted side only)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.multihead.contract import ASSIGNMENT, EXAMPLE_D_MODEL, EXAMPLE_HEADS, EXAMPLE_SEQ
from autograder.checks.support import Checker, Seeded, batch_dims
from reference import multihead as ref

CHECK = Checker(ASSIGNMENT)
MHA = "multi_head_attention"


@dataclass(frozen=True)
class Problem(Seeded):
    """x `[*batch, seq, d_model]`, four `[d_model, d_model]` weights and a mask kind: "none", "causal"
    ([seq, seq]) or "batched" ([*batch, 1, seq, seq], random, the diagonal always allowed)."""

    batch: Tuple[int, ...] = (1,)
    seq: int = EXAMPLE_SEQ
    d_model: int = EXAMPLE_D_MODEL
    n_heads: int = EXAMPLE_HEADS
    mask: str = "causal"

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def x(self) -> Tensor:
        return self.randn(*self.batch, self.seq, self.d_model, salt=1)

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """W_q, W_k, W_v, W_o, scaled so that scores stay O(1)."""
        scale = 1 / math.sqrt(self.d_model)
        return tuple(self.randn(self.d_model, self.d_model, salt=2 + i) * scale for i in range(4))

    def heads(self) -> Tensor:
        """The input of merge_heads: `[*batch, n_heads, seq, d_head]`."""
        return self.randn(*self.batch, self.n_heads, self.seq, self.d_head, salt=6)

    def attn_mask(self) -> Optional[Tensor]:
        if self.mask == "none":
            return None
        if self.mask == "causal":
            return ref.causal_mask(self.seq)
        keep = torch.rand(*self.batch, 1, self.seq, self.seq, generator=self.generator(7)) < 0.5
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
        lambda batch, seq, heads, d_head, mask, seed: Problem(seed=seed, batch=batch, seq=seq,
                                                              d_model=heads * d_head, n_heads=heads, mask=mask),
        batch_dims(), st.integers(1, max_seq), st.integers(1, max_heads), st.integers(1, max_d_head),
        st.sampled_from(list(masks)), st.integers(0, 2**16))


def example_args(section: str) -> Tuple[Any, ...]:
    """The worked example's inputs of a section's function (the plugin's one call before its checks)."""
    return EXAMPLE.args(ASSIGNMENT.op(section))
