"""Random problems of the `tinygpt` assignment and the inputs of gpt_forward (trusted side only)."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.tinygpt.contract import ASSIGNMENT
from autograder.checks.support import Checker, Seeded, batch_dims
from reference.block import PARAM_KEYS

CHECK = Checker(ASSIGNMENT)
FORWARD = "gpt_forward"


@dataclass(frozen=True)
class Problem(Seeded):
    """ids int64 `[*batch, seq]` in [0, vocab) and params of n_layers blocks, far from neutral (biases and
    shifts clearly non-zero, gains around 1): zero biases would hide ignored ones. The params dict lists
    its keys in a shuffled order, so code that relies on the dict's order (not the block numbers) shows."""

    batch: Tuple[int, ...] = (1,)
    seq: int = 6
    vocab: int = 66
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    max_seq: int = 32

    def ids(self) -> Tensor:
        return torch.randint(self.vocab, (*self.batch, self.seq), generator=self.generator(1))

    def params(self) -> Dict[str, Tensor]:
        d, d_ff = self.d_model, 4 * self.d_model
        p: Dict[str, Tensor] = {"wte": self.randn(self.vocab, d, salt=2), "wpe": 0.5 * self.randn(self.max_seq, d, salt=3),
                                "ln_f.gamma": 1 + 0.3 * self.randn(d, salt=4), "ln_f.beta": 0.3 * self.randn(d, salt=5)}
        for layer in range(self.n_layers):
            for i, name in enumerate(PARAM_KEYS):
                salt = 100 * (layer + 1) + i
                if name.endswith("gamma"):
                    value = 1 + 0.3 * self.randn(d, salt=salt)
                elif ".W_" in name:
                    rows, cols = (d, d_ff) if name == "mlp.W_1" else (d_ff, d) if name == "mlp.W_2" else (d, d)
                    value = self.randn(rows, cols, salt=salt) / math.sqrt(rows)
                else:
                    value = 0.3 * self.randn(d_ff if name == "mlp.b_1" else d, salt=salt)
                p[f"h.{layer}.{name}"] = value
        keys = list(p)
        random.Random(self.seed).shuffle(keys)
        return {key: p[key] for key in keys}

    def args(self, fn: str = FORWARD) -> Tuple[Any, ...]:
        return (self.ids(), self.params(), self.n_heads)

    def __str__(self) -> str:
        return (f"ids {[*self.batch, self.seq]}, vocab {self.vocab}, {self.n_layers} blocks of d_model {self.d_model} "
                f"and {self.n_heads} heads, {self.max_seq} positions, {str(self.dtype).replace('torch.', '')}")


EXAMPLE = Problem(seed=0)


def problems(max_seq: int = 8) -> st.SearchStrategy[Problem]:
    """Random sizes: 0-2 batch dims, seq 1..max_seq (wpe up to 3 rows longer), 1..3 heads of 1..4 dims,
    1..3 blocks, vocab 2..20, float32 or float64."""
    return st.builds(
        lambda batch, seq, extra, heads, d_head, layers, vocab, dtype, seed: Problem(
            seed=seed, dtype=dtype, batch=batch, seq=seq, vocab=vocab, d_model=heads * d_head, n_heads=heads,
            n_layers=layers, max_seq=seq + extra),
        batch_dims(), st.integers(1, max_seq), st.integers(0, 3), st.integers(1, 3), st.integers(1, 4),
        st.integers(1, 3), st.integers(2, 20), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16))


def example_args(section: str) -> Tuple[Any, ...]:
    """The worked example's inputs (the plugin's one call before the forward checks)."""
    return EXAMPLE.args()
