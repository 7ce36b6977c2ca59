"""`autograder train`: train the reference TinyGPT on Tiny Shakespeare with a progress bar, then save it.

The result is a transformers GPT-2 folder (export.py) plus `training.json` (configs, seed, corpus sha256,
validation loss in nats per character, wall and CPU seconds). `--builtin` trains the built-in model with its
fixed, seeded configuration and writes it into the package (autograder/lm/builtin/).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from tqdm import tqdm

from autograder.lm.data import (
    CharTokenizer,
    bigram_loss,
    encode_corpus,
    read_corpus,
    sha256_of,
    split,
)
from autograder.lm.export import export
from reference.tinygpt import GPTConfig, Params, TrainConfig, evaluate, train

TRAINING_RECORD = "training.json"
# The built-in model: 4 layers, d_model 128, 2 heads of 64 (distilgpt2's head size), 64 characters of context.
BUILTIN_SHAPE = dict(block_size=64, n_layers=4, d_model=128, n_heads=2)
BUILTIN_TRAINING = TrainConfig(max_iters=1500, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_iters=100, seed=1337)


@dataclass(frozen=True)
class TrainingResult:
    params: Params
    config: GPTConfig
    tokenizer: CharTokenizer
    val_loss: float       # nats per character on the last 10% of the corpus
    bigram_loss: float    # the count-based bigram model's, on the same split (the baseline)
    wall_s: float         # training only (not the validation pass)
    cpu_s: float          # CPU seconds of this process while training (all threads)


def train_on_text(text: str, shape: Dict[str, int], train_config: TrainConfig, progress: bool = True) -> TrainingResult:
    """Train a TinyGPT of this shape on the text's first 90% and measure its loss on the last 10%."""
    tokenizer = CharTokenizer.from_text(text)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **shape)
    train_ids, val_ids = split(encode_corpus(text, tokenizer))
    tokens_per_step = train_config.batch_size * config.block_size
    bar = tqdm(total=train_config.max_iters, desc="training TinyGPT", unit="step", disable=not progress,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    started, cpu_started = time.perf_counter(), time.process_time()

    def on_step(step: int, loss: float) -> None:
        bar.update(1)
        if step % 10 == 0 or step == train_config.max_iters - 1:
            rate = (step + 1) * tokens_per_step / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(f"loss {loss:.3f}, {rate:,.0f} tok/s", refresh=False)

    params = train(config, train_config, train_ids, on_step)
    bar.close()
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    val_loss = evaluate(params, val_ids, config.n_heads, config.block_size)
    baseline = bigram_loss(train_ids, val_ids, config.vocab_size)
    return TrainingResult(params, config, tokenizer, val_loss, baseline, wall_s, cpu_s)


def save(result: TrainingResult, train_config: TrainConfig, corpus: Path, directory: Path) -> Dict[str, Any]:
    """Export the model into directory and write its training record there; returns the record."""
    export(result.params, result.config, result.tokenizer, directory)
    record = {
        "model": asdict(result.config), "training": asdict(train_config),
        "corpus": {"name": "tinyshakespeare", "sha256": sha256_of(corpus), "split": "first 90% train, last 10% val"},
        "val_loss_nats_per_char": round(result.val_loss, 4), "bigram_val_loss": round(result.bigram_loss, 4),
        "wall_s": round(result.wall_s, 1), "cpu_s": round(result.cpu_s, 1), "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
    }
    (directory / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def run(corpus: Path, out: Path, train_config: TrainConfig, shape: Optional[Dict[str, int]] = None,
        progress: bool = True) -> Dict[str, Any]:
    """Train on the corpus file and save into out; returns the training record."""
    result = train_on_text(read_corpus(corpus), shape or BUILTIN_SHAPE, train_config, progress)
    return save(result, train_config, corpus, out)
