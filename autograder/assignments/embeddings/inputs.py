"""Random problems of the `embeddings` assignment and the inputs of each function (trusted side only)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.embeddings.contract import (ASSIGNMENT, EXAMPLE_D_MODEL, EXAMPLE_IDS, EXAMPLE_MAX_SEQ,
                                                        EXAMPLE_VOCAB)
from autograder.checks.support import Checker, Seeded, batch_dims
from reference import embeddings as ref

CHECK = Checker(ASSIGNMENT)
# float32 sinusoid tables drift from the exact values in proportion to position (4.5e-6 at 128, 6.7e-5 at
# 1024, measured on correct public code): the long-table check allows this much per position, on top of atol
DRIFT_PER_POSITION = 1e-7


@dataclass(frozen=True)
class Problem(Seeded):
    """One seeded problem: ids int64 `[*batch, seq]` in [0, vocab), a table `[vocab, d_model]` (dtype),
    positions `[max_seq, d_model]` (the reference's sinusoids in dtype, plus noise so that a table the
    student recomputes instead of using the argument shows), seq_len and d_model for the sinusoids."""

    batch: Tuple[int, ...] = (1,)
    seq: int = len(EXAMPLE_IDS)
    vocab: int = EXAMPLE_VOCAB
    d_model: int = EXAMPLE_D_MODEL
    max_seq: int = EXAMPLE_MAX_SEQ
    example_ids: bool = False

    def ids(self) -> Tensor:
        if self.example_ids:
            return torch.tensor([EXAMPLE_IDS], dtype=torch.int64) % self.vocab
        return torch.randint(self.vocab, (*self.batch, self.seq), generator=self.generator(1), dtype=torch.int64)

    def table(self) -> Tensor:
        return self.randn(self.vocab, self.d_model, salt=2)

    def positions(self) -> Tensor:
        exact = ref.sinusoidal_positions(self.max_seq, self.d_model).to(self.dtype)
        return exact + 0.1 * self.randn(self.max_seq, self.d_model, salt=3)

    def args(self, fn: str) -> Tuple[Any, ...]:
        """The inputs of one contract function on this problem."""
        if fn == "token_embedding":
            return (self.ids(), self.table())
        if fn == "sinusoidal_positions":
            return (self.max_seq, self.d_model)
        return (self.ids(), self.table(), self.positions())

    def __str__(self) -> str:
        return (f"ids {[*self.batch, self.seq]}, vocab {self.vocab}, d_model {self.d_model}, max_seq {self.max_seq}, "
                f"{str(self.dtype).replace('torch.', '')}")


EXAMPLE = Problem(example_ids=True)  # "The cat sat on the mat" with distilgpt2's width


def problems(max_seq: int = 12, max_d_half: int = 8) -> st.SearchStrategy[Problem]:
    """Random sizes: 0-2 leading batch dims of 1..3, seq 1..max_seq (max_seq of the table seq..seq+5),
    vocab 1..50, d_model even 2..2*max_d_half, float32 or float64."""
    return st.builds(
        lambda batch, seq, extra, vocab, half, dtype, seed: Problem(
            seed=seed, dtype=dtype, batch=batch, seq=seq, vocab=vocab, d_model=2 * half, max_seq=seq + extra),
        batch_dims(), st.integers(1, max_seq), st.integers(0, 5), st.integers(1, 50), st.integers(1, max_d_half),
        st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16))


def example_args(section: str) -> Tuple[Any, ...]:
    """The worked example's inputs of a section's function (the plugin's one call before its checks)."""
    return EXAMPLE.args(ASSIGNMENT.op(section))
