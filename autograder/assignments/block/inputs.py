"""Random problems of the `block` assignment and the inputs of each function (trusted side only)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.block.contract import ASSIGNMENT, EXAMPLE_D_MODEL, EXAMPLE_HEADS, EXAMPLE_SEQ
from autograder.checks.support import Checker, Seeded, batch_dims
from reference import block as ref
from reference.multihead import causal_mask

CHECK = Checker(ASSIGNMENT)
BLOCK = "transformer_block"


@dataclass(frozen=True)
class Problem(Seeded):
    """One seeded problem: x `[*batch, seq, d_model]`, the 16 params (d_ff = 4 d_model), a mask kind:
    "none", "causal" ([seq, seq]) or "batched" ([*batch, 1, seq, seq], random, diagonal always allowed).
    Every parameter is far from neutral (biases and shifts clearly non-zero, scales around 1, not 1): zero
    biases would hide an ignored bias."""

    batch: Tuple[int, ...] = (1,)
    seq: int = EXAMPLE_SEQ
    d_model: int = EXAMPLE_D_MODEL
    n_heads: int = EXAMPLE_HEADS
    mask: str = "causal"
    ln_scale: float = 1.0  # the spread of layer_norm's input: small (e.g. 3e-3) is where eps placement shows

    def x(self) -> Tensor:
        return self.randn(*self.batch, self.seq, self.d_model, salt=1)

    def params(self) -> Dict[str, Tensor]:
        d, d_ff = self.d_model, 4 * self.d_model
        p: Dict[str, Tensor] = {}
        for i, name in enumerate(ref.PARAM_KEYS):
            if name.endswith("gamma"):
                p[name] = 1 + 0.3 * self.randn(d, salt=10 + i)
            elif ".W_" in name:
                rows, cols = (d, d_ff) if name == "mlp.W_1" else (d_ff, d) if name == "mlp.W_2" else (d, d)
                p[name] = self.randn(rows, cols, salt=10 + i) / math.sqrt(rows)
            else:  # a bias or a shift
                p[name] = 0.3 * self.randn(d_ff if name == "mlp.b_1" else d, salt=10 + i)
        return p

    def attn_mask(self) -> Optional[Tensor]:
        if self.mask == "none":
            return None
        if self.mask == "causal":
            return causal_mask(self.seq)
        keep = torch.rand(*self.batch, 1, self.seq, self.seq, generator=self.generator(7)) < 0.5
        return keep | torch.eye(self.seq, dtype=torch.bool)

    def args(self, fn: str) -> Tuple[Any, ...]:
        """The inputs of one contract function on this problem."""
        p = self.params()
        if fn == "layer_norm":
            shift = self.randn(*self.batch, self.seq, 1, salt=2) * self.ln_scale  # rows near zero mean
            return (self.x() * self.ln_scale + shift, p["ln_1.gamma"], p["ln_1.beta"], 1e-5)
        if fn == "gelu":
            return (3 * self.x(),)
        if fn == "feed_forward":
            return (self.x(), p["mlp.W_1"], p["mlp.b_1"], p["mlp.W_2"], p["mlp.b_2"])
        return (self.x(), p, self.n_heads, self.attn_mask())

    def __str__(self) -> str:
        ln = f", layer-norm input scale {self.ln_scale:g}" if self.ln_scale != 1.0 else ""
        return (f"batch {list(self.batch)}, seq {self.seq}, d_model {self.d_model}, {self.n_heads} heads, "
                f"mask {self.mask}, {str(self.dtype).replace('torch.', '')}{ln}")


EXAMPLE = Problem()  # distilgpt2's sizes, "The cat sat on the mat"


def problems(masks: Tuple[str, ...] = ("none", "causal", "batched"), max_seq: int = 10, max_heads: int = 4,
             max_d_head: int = 6) -> st.SearchStrategy[Problem]:
    """Random sizes: 0-2 leading batch dims of 1..3, seq 1..max_seq, 1..max_heads heads of 1..max_d_head,
    layer-norm inputs of ordinary or small spread."""
    return st.builds(
        lambda batch, seq, heads, d_head, mask, seed, ln: Problem(seed=seed, batch=batch, seq=seq,
                                                                  d_model=heads * d_head, n_heads=heads, mask=mask,
                                                                  ln_scale=ln),
        batch_dims(), st.integers(1, max_seq), st.integers(1, max_heads),
        st.integers(1, max_d_head), st.sampled_from(list(masks)), st.integers(0, 2**16),
        st.sampled_from([1.0, 3e-3]))


def example_args(section: str) -> Tuple[Any, ...]:
    """The worked example's inputs of a section's function (the plugin's one call before its checks)."""
    return EXAMPLE.args(ASSIGNMENT.op(section))
