"""The `block` mistake catalogue: each classic mistake recomputed on the student's exact inputs.

Trusted side only, in the form of the attention catalogue (a mistake next to the rule that yields what a
student making it returns). Students build feed_forward on their gelu and transformer_block on their
layer_norm, gelu and feed_forward, so those rules are also lifted into the functions built from them.

Functions and their sections: layer_norm (layer_norm), gelu (gelu), feed_forward (feed_forward),
transformer_block (block).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor

from autograder.assignments.block.contract import ASSIGNMENT
from autograder.diagnosis import Catalogue, Rule
from reference import block as ref
from reference.multihead import merge_heads, split_heads

Params = Dict[str, Tensor]
CATALOGUE = Catalogue(ASSIGNMENT)
_mistake = CATALOGUE.mistake
_MAX_VARIANTS = 8  # no rule yields more outputs than this


def attention(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor], *, biases: str = "qkvo") -> Tensor:
    """GPT-2's attention `[..., seq, d_model]` with the biases named in `biases` (the reference: all four)."""

    def bias(name: str) -> object:
        return params[f"attn.b_{name}"] if name in biases else 0.0

    Q, K, V = (split_heads(x @ params[f"attn.W_{n}"] + bias(n), n_heads) for n in "qkv")
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask.to(torch.bool), float("-inf"))
    return merge_heads(torch.softmax(scores, dim=-1) @ V) @ params["attn.W_o"] + bias("o")


def block(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor] = None, *,
          layer_norm: Callable[..., Tensor] = ref.layer_norm, gelu: Callable[[Tensor], Tensor] = ref.gelu,
          biases: str = "qkvo", pre_ln: bool = True, residuals: str = "xh") -> Tensor:
    """The block with one piece swapped for a student's variant; with the defaults it is the reference.
    residuals: what each sub-layer adds its output to, "x" / "h" / "-" (none), attention first."""
    p = params

    def ln(t: Tensor, n: int) -> Tensor:
        return layer_norm(t, p[f"ln_{n}.gamma"], p[f"ln_{n}.beta"])

    def mlp(t: Tensor) -> Tensor:
        return gelu(t @ p["mlp.W_1"] + p["mlp.b_1"]) @ p["mlp.W_2"] + p["mlp.b_2"]

    if not pre_ln:  # the 2017 Transformer: LayerNorm(x + Sublayer(x))
        h = ln(x + attention(x, p, n_heads, mask, biases=biases), 1)
        return ln(h + mlp(h), 2)
    attended = attention(ln(x, 1), p, n_heads, mask, biases=biases)
    h = attended + (x if residuals[0] == "x" else 0.0)
    ff = mlp(ln(h, 2))
    return ff + {"x": x, "h": h, "-": 0.0}[residuals[1]]


# ---------------------------------------------------------------- layer_norm: (x, gamma, beta, eps) -> [..., d]


@_mistake(
    "unbiased_variance",
    "layer_norm",
    "your variance divides by d - 1 (torch.var's default, the sample variance); layer norm uses the biased "
    "variance, the mean of (x - mean)^2: x.var(-1, keepdim=True, unbiased=False)",
)
def _unbiased_variance(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Iterator[Tensor]:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).sum(-1, keepdim=True) / (x.shape[-1] - 1)  # torch.var's default (d = 1: inf/NaN)
    yield (x - mean) / torch.sqrt(var + eps) * gamma + beta


@_mistake(
    "eps_outside_sqrt",
    "layer_norm",
    "you added eps after the square root, (x - mean) / (sqrt(var) + eps); it belongs inside: "
    "(x - mean) / sqrt(var + eps). The two differ most for nearly constant vectors, where var is tiny",
)
def _eps_outside_sqrt(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Iterator[Tensor]:
    mean = x.mean(-1, keepdim=True)
    std = ((x - mean) ** 2).mean(-1, keepdim=True).sqrt()
    yield (x - mean) / (std + eps) * gamma + beta


@_mistake(
    "layer_norm_wrong_axis",
    "layer_norm",
    "you took the mean and variance over the wrong axis (over the tokens or the batch, like batch norm); "
    "layer norm normalises each vector over its features, the last axis: dim=-1, keepdim=True",
)
def _layer_norm_wrong_axis(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Iterator[Tensor]:
    for dim in range(-2, -x.ndim - 1, -1):
        mean = x.mean(dim, keepdim=True)
        var = ((x - mean) ** 2).mean(dim, keepdim=True)
        yield (x - mean) / torch.sqrt(var + eps) * gamma + beta


# ---------------------------------------------------------------- gelu: x -> same shape


@_mistake(
    "exact_gelu",
    "gelu",
    "you used the exact GELU, 0.5 x (1 + erf(x / sqrt(2))) (torch's default); GPT-2 was trained with the "
    "tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
)
def _exact_gelu(x: Tensor) -> Iterator[Tensor]:
    yield 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


@_mistake(
    "relu",
    "gelu",
    "your gelu is a ReLU, max(0, x); GELU is smooth and slightly negative for small negative x: "
    "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
)
def _relu(x: Tensor) -> Iterator[Tensor]:
    yield torch.relu(x)


# ---------------------------------------------------------------- transformer_block: (x, params, n_heads, mask)


@_mistake(
    "post_ln",
    "block",
    "your block normalises after each residual sum, LayerNorm(x + Sublayer(x)) as in the 2017 paper; GPT-2 "
    "is pre-LN: h = x + attn(layer_norm_1(x)), out = h + feed_forward(layer_norm_2(h)), the residual "
    "stream itself is never normalised inside the block",
)
def _post_ln(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield block(x, params, n_heads, mask, pre_ln=False)


@_mistake(
    "missing_residual",
    "block",
    "a residual connection is missing: each sub-layer adds its output to its own input, "
    "h = x + attn(layer_norm_1(x)) and out = h + feed_forward(layer_norm_2(h))",
)
def _missing_residual(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for residuals in ("-h", "x-", "--"):
        yield block(x, params, n_heads, mask, residuals=residuals)


@_mistake(
    "attention_biases_ignored",
    "block",
    "your attention ignores its biases: GPT-2 adds one to every projection, Q = x @ W_q + b_q (likewise "
    "K, V) and out = merged @ W_o + b_o",
)
def _attention_biases_ignored(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for biases in ("", "o", "qkv", "kvo"):
        yield block(x, params, n_heads, mask, biases=biases)


@_mistake(
    "mlp_residual_from_x",
    "block",
    "your second residual adds the MLP's output to the block's input x instead of to h, which throws the "
    "attention sub-layer away: out = h + feed_forward(layer_norm_2(h))",
)
def _mlp_residual_from_x(x: Tensor, params: Params, n_heads: int, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield block(x, params, n_heads, mask, residuals="xx")


# ---------------------------------------------------------------- lifting the pieces into what is built on them


def _variant(rule: Rule, k: int, names: Tuple[str, ...]) -> Callable[..., Tensor]:
    """The rule's k-th output as a plain function of the piece's positional arguments (IndexError past the
    last): a piece used several times in one call uses the same variant everywhere."""

    def piece(*args: object) -> Tensor:
        outputs = list(itertools.islice(rule(**dict(zip(names, args))), k, k + 1))
        if not outputs:
            raise IndexError(k)
        return outputs[0]

    return piece


_LN_NAMES = ("x", "gamma", "beta", "eps")


def _layer_norm_piece(rule: Rule, k: int) -> Callable[..., Tensor]:
    piece = _variant(rule, k, _LN_NAMES)
    return lambda x, gamma, beta, eps=1e-5: piece(x, gamma, beta, eps)


def _lift(rule: Rule, piece: str) -> Rule:
    """A layer_norm or gelu rule as a transformer_block rule, or a gelu rule as a feed_forward rule."""

    def composed(**inputs: object) -> Iterator[Tensor]:
        for k in range(_MAX_VARIANTS):
            swapped = _layer_norm_piece(rule, k) if piece == "layer_norm" else _variant(rule, k, ("x",))
            try:
                if "params" in inputs:
                    yield block(inputs["x"], inputs["params"], inputs["n_heads"], inputs["mask"], **{piece: swapped})
                else:
                    yield swapped(inputs["x"] @ inputs["W_1"] + inputs["b_1"]) @ inputs["W_2"] + inputs["b_2"]
            except IndexError:
                return

    return composed


CATALOGUE.lift("gelu", into="feed_forward", how=lambda rule: _lift(rule, "gelu"))
for _piece in ("layer_norm", "gelu"):
    CATALOGUE.lift(_piece, into="transformer_block", how=lambda rule, piece=_piece: _lift(rule, piece))
