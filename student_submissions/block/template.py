"""The transformer block, GPT-2 style (pre-LN): the file you hand in (assignment `block`).

Fill in the four functions below. Each is graded on its own, and `transformer_block` is also run inside
a real GPT-2: it replaces the model's first block entirely, with that block's weights.

    h   = x + attn(layer_norm(x, ln_1.gamma, ln_1.beta))             the attention sub-layer
    out = h + feed_forward(layer_norm(h, ln_2.gamma, ln_2.beta))     the MLP sub-layer

Conventions for every function:
- Tensors are `[..., seq, d_model]` with any leading batch dims: index from the end, never `shape[1]`.
- Weights multiply on the right (`x @ W`, W `[d_in, d_out]`); every bias is added after its product.
- attn is the multi-head attention of the `multihead` assignment with a bias on every projection:
  Q = x @ W_q + b_q, K = x @ W_k + b_k, V = x @ W_v + b_v; per head softmax(Q_h K_h^T / sqrt(d_head))
  (masked entries exactly 0) @ V_h; heads merged (head h = columns h*d_head:(h+1)*d_head); then
  merged @ W_o + b_o. Write it in this file (helpers of your own are welcome).
- A mask is bool, True = may attend, broadcasting against `[..., n_heads, seq, seq]`; None = no mask.
  GPT-2 is causal: inside the model your block gets the causal mask.
- Use torch operations only (no `.detach()`, no NumPy), and do not modify the inputs in place.

`params` is a dict of tensors with exactly these keys (d_ff = 4 * d_model in GPT-2):
    ln_1.gamma, ln_1.beta, ln_2.gamma, ln_2.beta          [d_model]
    attn.W_q, attn.W_k, attn.W_v, attn.W_o                [d_model, d_model]
    attn.b_q, attn.b_k, attn.b_v, attn.b_o                [d_model]
    mlp.W_1 [d_model, d_ff], mlp.b_1 [d_ff], mlp.W_2 [d_ff, d_model], mlp.b_2 [d_model]

Shapes for PROMPT_EXAMPLE = "The cat sat on the mat" (6 tokens) with distilgpt2's sizes
(d_model = 768, 12 heads of 64, d_ff = 3072):
    x, layer_norm(x, ...), h, out    [1, 6, 768]
    x @ mlp.W_1 + mlp.b_1            [1, 6, 3072]
    attention weights                [1, 12, 6, 6]
"""
import math  # noqa: F401

import torch  # noqa: F401


def layer_norm(x, gamma, beta, eps=1e-5):
    """Normalise each vector of x over its last axis, then scale and shift.

    x: `[..., d]`, gamma and beta: `[d]` -> `[..., d]`:
    (x - mean) / sqrt(var + eps) * gamma + beta, with mean and var over the last axis and the biased
    variance (divide by d, not d - 1). eps goes inside the square root.
    Example: x [1, 6, 768] -> [1, 6, 768].
    """
    raise NotImplementedError("layer_norm: (x - mean) / sqrt(var + eps) * gamma + beta")


def gelu(x):
    """GPT-2's GELU, the tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).

    Elementwise, any shape. (torch's default GELU uses erf and differs from this by up to ~5e-4.)
    """
    raise NotImplementedError("gelu: the tanh approximation")


def feed_forward(x, W_1, b_1, W_2, b_2):
    """The MLP: gelu(x @ W_1 + b_1) @ W_2 + b_2.

    x: `[..., d_model]`, W_1: `[d_model, d_ff]`, b_1: `[d_ff]`, W_2: `[d_ff, d_model]`, b_2: `[d_model]`
    -> `[..., d_model]`. Example: x [1, 6, 768] -> hidden [1, 6, 3072] -> [1, 6, 768].
    """
    raise NotImplementedError("feed_forward: gelu(x @ W_1 + b_1) @ W_2 + b_2")


def transformer_block(x, params, n_heads, mask=None):
    """One pre-LN block: h = x + attn(layer_norm_1(x)), out = h + feed_forward(layer_norm_2(h)).

    x: `[..., seq, d_model]`, params: the dict above, n_heads: int (dividing d_model), mask: None or bool.
    Returns out `[..., seq, d_model]`. Example: x [1, 6, 768], 12 heads, causal mask -> [1, 6, 768].
    """
    raise NotImplementedError("transformer_block: two sub-layers, each with its residual")
