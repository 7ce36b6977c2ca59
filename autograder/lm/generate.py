"""`autograder generate`: continue a prompt with a trained TinyGPT, sampled by the reference model.

The model is a folder written by `autograder train` (default: `cache/tinygpt/` when it exists) or, failing
that, the built-in model shipped in the package. Characters outside the model's vocabulary become `<unk>`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import torch

from autograder.lm import BUILTIN_DIR
from autograder.lm.data import default_cache_dir
from autograder.lm.export import load
from reference.tinygpt import sample

TRAINED_DIR_NAME = "tinygpt"


def default_model_dir() -> Path:
    """The user's own trained model (`cache/tinygpt/`) when there is one, else the built-in model."""
    trained = default_cache_dir() / TRAINED_DIR_NAME
    return trained if (trained / "config.json").exists() else BUILTIN_DIR


def generate(prompt: str, model_dir: Optional[Path] = None, max_new_tokens: int = 300, temperature: float = 0.8,
             top_k: Optional[int] = None, seed: int = 0) -> Iterator[str]:
    """Yield the sampled continuation of prompt one character at a time (seeded: the same text every run)."""
    params, config, tokenizer = load(model_dir or default_model_dir())
    ids = torch.tensor(tokenizer.encode(prompt), dtype=torch.long)  # [seq]
    if len(ids) == 0:
        raise ValueError("the prompt is empty: give at least one character")
    generator = torch.Generator().manual_seed(seed)
    for token in sample(params, ids, config.n_heads, max_new_tokens, generator, temperature, top_k):
        yield tokenizer.decode([token])
