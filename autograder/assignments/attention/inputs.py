"""Random problems of the attention assignment, and the inputs of each section's op (trusted side only)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import torch
from hypothesis import strategies as st

from autograder.assignments.attention.contract import ASSIGNMENT, EXAMPLE_D, EXAMPLE_SEQ
from autograder.checks.support import Checker, Seeded, batch_dims
from reference import attention as ref

Tensor = torch.Tensor
CHECK = Checker(ASSIGNMENT)
# the checker's helpers by the names the property checks call them: hypothesis derives each check's
# examples from its source, so these names keep the examples (and the grades) of before the move
call_checked, check_against_reference = CHECK.call_checked, CHECK.against_reference
diagnoser, expected_of = CHECK.diagnoser, CHECK.expected_of
require_values = CHECK.require_values


@dataclass(frozen=True)
class Case(Seeded):
    """One random problem: Q `[*batch, seq_q, d_k]`, K `[*batch, seq_k, d_k]`, V `[*batch, seq_k, d_v]`."""

    batch: Tuple[int, ...] = (1,)
    seq_q: int = EXAMPLE_SEQ
    seq_k: int = EXAMPLE_SEQ
    d_k: int = EXAMPLE_D
    d_v: int = EXAMPLE_D
    mask: str = "none"  # "none" | "causal" | "random"

    def qkv(self) -> Tuple[Tensor, Tensor, Tensor]:
        return (self.randn(*self.batch, self.seq_q, self.d_k, salt=1),
                self.randn(*self.batch, self.seq_k, self.d_k, salt=2),
                self.randn(*self.batch, self.seq_k, self.d_v, salt=3))

    def scores(self, scale: float = 3.0) -> Tensor:
        return self.randn(*self.batch, self.seq_q, self.seq_k, salt=4) * scale

    def weights(self) -> Tensor:
        """Rows on the simplex `[*batch, seq_q, seq_k]` (not softmax-shaped, so aggregation is tested alone)."""
        raw = torch.rand(*self.batch, self.seq_q, self.seq_k, generator=self.generator(5), dtype=torch.float64)
        return (raw / raw.sum(-1, keepdim=True)).to(self.dtype)

    def attn_mask(self) -> Optional[Tensor]:
        """Boolean mask (True = may attend) with at least one allowed key in every row, or None."""
        if self.mask == "none":
            return None
        if self.mask == "causal":
            return ref.causal_mask(self.seq_q, self.seq_k).expand(*self.batch, self.seq_q, self.seq_k).clone()
        keep = torch.rand(*self.batch, self.seq_q, self.seq_k, generator=self.generator(6)) < 0.6
        first = torch.randint(self.seq_k, (*self.batch, self.seq_q, 1), generator=self.generator(7))
        return keep.scatter(-1, first, True)

    def __str__(self) -> str:
        dims = f"batch {list(self.batch)}, seq_q {self.seq_q}, seq_k {self.seq_k}, d_k {self.d_k}, d_v {self.d_v}"
        return f"{dims}, mask {self.mask}, {str(self.dtype).replace('torch.', '')}"


EXAMPLE = Case()  # PROMPT_EXAMPLE: "The cat sat on the mat", 6 tokens, 64 dims


def cases(max_seq: int = 64, max_d: int = 128, masks: Sequence[str] = ("none",), cross: bool = True,
          dtypes: Sequence[torch.dtype] = (torch.float64,)) -> st.SearchStrategy[Case]:
    """Random problem sizes: 0-2 leading batch dims of 1..3, sequences 1..max_seq, widths 1..max_d."""
    seq = st.integers(1, max_seq)
    return st.builds(
        lambda batch, sq, sk, dk, dv, mask, seed, dtype: Case(batch=batch, seq_q=sq, seq_k=sk if cross else sq,
                                                              d_k=dk, d_v=dv, mask=mask, seed=seed, dtype=dtype),
        batch_dims(), seq, seq, st.integers(1, max_d), st.integers(1, max_d),
        st.sampled_from(list(masks)), st.integers(0, 2**16), st.sampled_from(list(dtypes)))


def projection_args(case: Case, d_model: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """x `[*batch, seq_q, d_model]` and W_q, W_k, W_v `[d_model, d_k]` (W_v `[d_model, d_v]`)."""
    d_model = case.d_k if d_model is None else d_model
    x = case.randn(*case.batch, case.seq_q, d_model, salt=8)
    scale = 1 / math.sqrt(d_model)
    return (x, case.randn(d_model, case.d_k, salt=9) * scale, case.randn(d_model, case.d_k, salt=10) * scale,
            case.randn(d_model, case.d_v, salt=11) * scale)


def section_args(section: str, case: Case) -> Tuple[Any, ...]:
    """Inputs for one call of a section's op on `case`."""
    Q, K, V = case.qkv()
    if section == "projections":
        return projection_args(case)
    if section == "scores":
        return (Q, K)
    if section == "softmax":
        return (case.scores(), case.attn_mask())
    if section == "values":
        return (case.weights(), V)
    return (Q, K, V, case.attn_mask())


def example_args(section: str) -> Tuple[Any, ...]:
    """The worked example's inputs of a section (the plugin's one call before the section's checks)."""
    return section_args(section, EXAMPLE)
