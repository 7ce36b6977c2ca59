"""The built-in model shipped in the package: its files, its shape, its loss, its record, offline loading."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from autograder.lm import BUILTIN_DIR, data
from autograder.lm.commands import BUILTIN_THREADS
from autograder.lm.export import load
from autograder.lm.train import BUILTIN_SHAPE, BUILTIN_TRAINING, TRAINING_RECORD
from autograder.model.loading import BUILTIN_MODEL, load_mini_transformer
from reference.attention import PROMPT_EXAMPLE
from reference.tinygpt import evaluate, gpt_forward

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / data.CORPUS_FILE
MAX_VAL_LOSS = 1.9  # nats/char on the last 10%; nanoGPT's CPU configuration reaches 1.88


def test_the_package_ships_a_small_save_pretrained_folder():
    names = {p.name for p in BUILTIN_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", TRAINING_RECORD} <= names
    assert sum(p.stat().st_size for p in BUILTIN_DIR.iterdir()) <= 10 * 2 ** 20
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"lm/builtin/*"' in pyproject  # package-data: installed with the package


def test_transformers_loads_it_offline_with_64_dim_heads_and_a_character_tokenizer(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR)
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_DIR)
    config = model.config
    assert config.n_embd // config.n_head == 64 and config.n_head == BUILTIN_SHAPE["n_heads"]
    assert config.n_layer == BUILTIN_SHAPE["n_layers"] and config.n_positions == BUILTIN_SHAPE["block_size"]
    ids = tokenizer(PROMPT_EXAMPLE)["input_ids"]
    assert len(ids) == len(PROMPT_EXAMPLE) == 22 and tokenizer.decode(ids) == PROMPT_EXAMPLE
    loaded, _ = load_mini_transformer(BUILTIN_MODEL, device="cpu")  # the grader's path: eager attention
    assert loaded.config._attn_implementation == "eager" and not loaded.training


def test_the_exported_model_reproduces_gpt_forward_on_its_params():
    params, config, tokenizer = load(BUILTIN_DIR)
    model = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR, attn_implementation="eager").eval()
    ids = torch.tensor([tokenizer.encode("ROMEO:\nTo be or not to be, that is the question.")])
    with torch.no_grad():
        expected = gpt_forward(ids, params, config.n_heads)
        got = model(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_its_training_record_matches_the_command_that_retrains_it():
    record = json.loads((BUILTIN_DIR / TRAINING_RECORD).read_text())
    assert record["training"] == asdict(BUILTIN_TRAINING)
    assert {k: record["model"][k] for k in BUILTIN_SHAPE} == BUILTIN_SHAPE
    assert record["corpus"]["sha256"] == data.CORPUS_SHA256 and record["threads"] == BUILTIN_THREADS
    assert record["val_loss_nats_per_char"] <= MAX_VAL_LOSS < record["bigram_val_loss"]
    assert record["cpu_s"] <= 300  # CPU seconds of all threads: under 5 minutes on 2 (even 1) idle cores


@pytest.mark.slow
def test_its_validation_loss_on_the_last_tenth_of_tiny_shakespeare_beats_1_9_nats_per_char():
    if not CORPUS.exists():
        pytest.skip(f"Tiny Shakespeare not found at {CORPUS} (../shared/data is absent)")
    params, config, tokenizer = load(BUILTIN_DIR)
    text = CORPUS.read_text(encoding="utf-8")
    _, val_ids = data.split(data.encode_corpus(text, tokenizer))
    assert len(val_ids) == 111_540
    loss = evaluate(params, val_ids, config.n_heads, config.block_size)
    assert loss <= MAX_VAL_LOSS
    record = json.loads((BUILTIN_DIR / TRAINING_RECORD).read_text())
    assert loss == pytest.approx(record["val_loss_nats_per_char"], abs=1e-3)
