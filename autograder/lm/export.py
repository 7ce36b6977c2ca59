"""TinyGPT params <-> a transformers GPT-2 model and its character tokenizer, in save_pretrained layout.

The mapping is one-to-one (GPT-2's Conv1D weights are `[d_in, d_out]`, as in the block contract):
  wte, wpe                      transformer.wte.weight, transformer.wpe.weight (lm_head tied to wte)
  h.i.ln_1.gamma / beta         transformer.h.i.ln_1.weight / bias              (ln_2, ln_f alike)
  h.i.attn.W_q | W_k | W_v      transformer.h.i.attn.c_attn.weight  [d, 3 d]    (biases concatenated too)
  h.i.attn.W_o, b_o             transformer.h.i.attn.c_proj.weight, bias
  h.i.mlp.W_1, b_1 / W_2, b_2   transformer.h.i.mlp.c_fc.* / mlp.c_proj.*
The tokenizer is a `tokenizers` WordLevel model over the characters with a per-character split and a
fusing decoder, wrapped in PreTrainedTokenizerFast, so AutoTokenizer loads it offline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Tuple

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from torch import Tensor
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as transformers_logging

from autograder.lm.data import UNK, CharTokenizer
from reference.tinygpt import GPTConfig, Params, block_indices

_TOP_LEVEL = {"wte": "transformer.wte.weight", "wpe": "transformer.wpe.weight",
              "ln_f.gamma": "transformer.ln_f.weight", "ln_f.beta": "transformer.ln_f.bias"}
_IN_BLOCK = {"ln_1.gamma": "ln_1.weight", "ln_1.beta": "ln_1.bias", "attn.W_o": "attn.c_proj.weight",
             "attn.b_o": "attn.c_proj.bias", "ln_2.gamma": "ln_2.weight", "ln_2.beta": "ln_2.bias",
             "mlp.W_1": "mlp.c_fc.weight", "mlp.b_1": "mlp.c_fc.bias", "mlp.W_2": "mlp.c_proj.weight",
             "mlp.b_2": "mlp.c_proj.bias"}  # q, k and v share c_attn: handled on their own


def _gpt2_names(layers: Iterable[int]) -> Dict[str, str]:
    """param name -> GPT2LMHeadModel state-dict key, for every param except the q/k/v projections."""
    names = dict(_TOP_LEVEL)
    for i in layers:
        names.update({f"h.{i}.{ours}": f"transformer.h.{i}.{theirs}" for ours, theirs in _IN_BLOCK.items()})
    return names


def gpt2_state_dict(params: Params) -> Dict[str, Tensor]:
    """The GPT2LMHeadModel state dict (without the tied lm_head) holding exactly these params."""
    layers = block_indices(params)
    state = {key: params[name] for name, key in _gpt2_names(layers).items()}
    for i in layers:  # c_attn is W_q | W_k | W_v side by side: [d, 3 d], its bias [3 d]
        state[f"transformer.h.{i}.attn.c_attn.weight"] = torch.cat([params[f"h.{i}.attn.W_{n}"] for n in "qkv"], 1)
        state[f"transformer.h.{i}.attn.c_attn.bias"] = torch.cat([params[f"h.{i}.attn.b_{n}"] for n in "qkv"])
    return state


def to_gpt2(params: Params, config: GPTConfig) -> GPT2LMHeadModel:
    """A GPT2LMHeadModel (eval mode, eager attention, float32) whose logits equal gpt_forward's."""
    gpt2_config = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.d_model,
        n_layer=config.n_layers, n_head=config.n_heads, n_inner=config.d_ff, activation_function="gelu_new",
        layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    gpt2_config._attn_implementation = "eager"
    model = GPT2LMHeadModel(gpt2_config)
    missing, unexpected = model.load_state_dict(gpt2_state_dict(params), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise ValueError(f"params do not fit GPT-2: missing {missing}, unexpected {unexpected}")
    return model.eval()


def to_hf_tokenizer(tokenizer: CharTokenizer) -> PreTrainedTokenizerFast:
    """The character tokenizer as a transformers fast tokenizer with the same ids (unknown -> `<unk>`)."""
    vocab = {c: i for i, c in enumerate(tokenizer.chars)}
    vocab[UNK] = tokenizer.unk_id
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
    backend.decoder = decoders.Fuse()  # ids -> the characters joined, no spaces added
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK)


transformers_logging.disable_progress_bar()  # saving and loading a 3 MB model needs no progress bars


def export(params: Params, config: GPTConfig, tokenizer: CharTokenizer, directory: Path) -> None:
    """Write config.json, model.safetensors and the tokenizer files into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    to_gpt2(params, config).save_pretrained(directory)
    to_hf_tokenizer(tokenizer).save_pretrained(directory)


def load(directory: Path) -> Tuple[Params, GPTConfig, CharTokenizer]:
    """Read an exported folder back (offline): the params, the shape and the character tokenizer."""
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    hf_tokenizer = AutoTokenizer.from_pretrained(directory)
    c = model.config
    config = GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layers=c.n_layer, d_model=c.n_embd,
                       n_heads=c.n_head)
    state = {key: value.detach() for key, value in model.state_dict().items()}
    params = {name: state[key] for name, key in _gpt2_names(range(config.n_layers)).items()}
    d = config.d_model
    for i in range(config.n_layers):  # c_attn holds W_q | W_k | W_v side by side: [d, 3 d]
        weight, bias = state[f"transformer.h.{i}.attn.c_attn.weight"], state[f"transformer.h.{i}.attn.c_attn.bias"]
        for j, n in enumerate("qkv"):
            params[f"h.{i}.attn.W_{n}"] = weight[:, j * d:(j + 1) * d].clone()
            params[f"h.{i}.attn.b_{n}"] = bias[j * d:(j + 1) * d].clone()
    by_id = sorted((i, token) for token, i in hf_tokenizer.get_vocab().items() if token != UNK)
    return params, config, CharTokenizer(token for _, token in by_id)
