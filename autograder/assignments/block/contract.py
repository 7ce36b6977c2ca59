"""The `block` assignment's contract: functions, sections, signatures, the worked example and the inputs
the checks draw (trusted side only).

Example ("The cat sat on the mat", distilgpt2's sizes): x [1, 6, 768], 12 heads of 64, d_ff 3072,
out [1, 6, 768]. Every random parameter is far from neutral (biases and shifts clearly non-zero, scales
around 1, not 1): zero biases would hide an ignored bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from autograder.assignments.block import mistakes
from autograder.checks.generic import Spec
from reference import block as ref
from reference.multihead import causal_mask

ASSIGNMENT = "block"
SECTION_FUNCTIONS: Dict[str, str] = mistakes.SECTION_FUNCTIONS
SECTIONS: Tuple[str, ...] = (*SECTION_FUNCTIONS, "model")
SIGNATURES: Dict[str, str] = {
    "layer_norm": "layer_norm(x [..., d], gamma [d], beta [d], eps=1e-5) -> [..., d], over the last axis, "
                  "biased variance, (x - mean) / sqrt(var + eps) * gamma + beta",
    "gelu": "gelu(x) -> same shape, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    "feed_forward": "feed_forward(x [..., d_model], W_1 [d_model, d_ff], b_1 [d_ff], W_2 [d_ff, d_model], "
                    "b_2 [d_model]) -> [..., d_model]",
    "transformer_block": "transformer_block(x [..., seq, d_model], params, n_heads, mask=None) -> "
                         "[..., seq, d_model]",
}
ARG_NAMES: Dict[str, Tuple[str, ...]] = {
    "layer_norm": ("x", "gamma", "beta", "eps"),
    "gelu": ("x",),
    "feed_forward": ("x", "W_1", "b_1", "W_2", "b_2"),
    "transformer_block": ("x", "params", "n_heads", "mask"),
}
SPEC = Spec(
    reference={name: getattr(ref, name) for name in SECTION_FUNCTIONS.values()},
    outputs={"layer_norm": ("normalised x",), "gelu": ("activations",), "feed_forward": ("output",),
             "transformer_block": ("output",)},
    signatures=SIGNATURES,
    candidate_rules=mistakes.CANDIDATE_RULES,
    axes_hint="tensors have any leading batch dims, so index from the end (-1, -2) and take sizes from the "
              "input, never hard-coded",
)


@dataclass(frozen=True)
class Problem:
    """One seeded problem: x `[*batch, seq, d_model]`, the 16 params (d_ff = 4 d_model), a mask kind:
    "none", "causal" ([seq, seq]) or "batched" ([*batch, 1, seq, seq], random, diagonal always allowed)."""

    batch: Tuple[int, ...] = (1,)
    seq: int = 6
    d_model: int = 768
    n_heads: int = 12
    mask: str = "causal"
    seed: int = 0
    dtype: torch.dtype = torch.float64
    ln_scale: float = 1.0  # the spread of layer_norm's input: small (e.g. 3e-3) is where eps placement shows

    def randn(self, *shape: int, salt: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + salt)
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(self.dtype)

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
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7)
        keep = torch.rand(*self.batch, 1, self.seq, self.seq, generator=g) < 0.5
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
        lambda batch, seq, heads, d_head, mask, seed, ln: Problem(tuple(batch), seq, heads * d_head, heads, mask,
                                                                  seed, ln_scale=ln),
        st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, max_seq), st.integers(1, max_heads),
        st.integers(1, max_d_head), st.sampled_from(list(masks)), st.integers(0, 2**16),
        st.sampled_from([1.0, 3e-3]))
