"""TinyGPT: the whole GPT forward pass, trained on Tiny Shakespeare (assignment `tinygpt`).

Write gpt_forward from your own pieces (the embeddings, multihead and block assignments: copy them in).
It is graded against the reference, and then trained: the grader runs AdamW on parameters it owns, with
gradients from your forward, for a fixed budget on Tiny Shakespeare, and computes the validation loss with
its OWN (reference, causal) forward on your trained parameters. It must beat the gate (2.25 nats/char;
the bigram baseline is 2.48). The report shows a sample your trained model writes.

    logits = layer_norm(blocks(embed(ids, wte, wpe)), ln_f.gamma, ln_f.beta) @ wte^T      (tied head)

- ids int64 `[..., seq]`; logits `[..., seq, vocab]`; embed(ids, wte, wpe) = wte[ids] + wpe[:seq] (learned
  positions, wpe `[max_seq, d_model]`); a sequence longer than wpe's rows raises ValueError.
- The blocks are h.0., h.1., ..., h.{L-1}. in params (L = the number of distinct block prefixes), run in
  NUMERIC order (h.2 before h.10), each the pre-LN GPT-2 block of the `block` assignment with the causal
  mask (True where key <= query): h = x + attn(layer_norm_1(x)), out = h + feed_forward(layer_norm_2(h)).
- params: wte [vocab, d_model], wpe [max_seq, d_model], ln_f.gamma, ln_f.beta [d_model], and for each block
  i: h.{i}.ln_1.gamma ... h.{i}.mlp.b_2 (the block assignment's 16 keys with the prefix h.{i}.).
- Torch operations only (no nn.Embedding, no F.layer_norm, no scaled_dot_product_attention, no .detach()),
  keep the dtype, do not modify the inputs.

Shapes for PROMPT_EXAMPLE = "ROMEO:" (6 characters), vocab 66, 2 blocks, d_model 64, 2 heads, 32 positions:
    ids [1, 6] -> x [1, 6, 64] -> logits [1, 6, 66]
"""
import math  # noqa: F401

import torch  # noqa: F401


def gpt_forward(ids, params, n_heads):
    """ids `[..., seq]` -> logits `[..., seq, vocab]`."""
    raise NotImplementedError
