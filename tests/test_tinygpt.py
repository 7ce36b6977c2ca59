"""The reference TinyGPT and the language-model runtime: forward contract, export to transformers, training,
sampling, the corpus download (a file:// URL: no network) and the character tokenizer."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from autograder.cli import main
from autograder.lm import data
from autograder.lm.export import export, load, to_gpt2, to_hf_tokenizer
from autograder.model.loading import one_cpu_thread
from reference.block import transformer_block
from reference.multihead import causal_mask
from reference.tinygpt import (
    GPTConfig,
    TrainConfig,
    block_params,
    evaluate,
    get_batch,
    gpt_forward,
    init_params,
    sample,
    train,
)

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20
SMALL = dict(block_size=16, n_layers=2, d_model=32, n_heads=2)


def random_params(config: GPTConfig, seed: int = 0) -> dict:
    """Init params plus noise everywhere, so that no bias, gain or table is trivially zero or one."""
    generator = torch.Generator().manual_seed(seed)
    params = init_params(config, generator)
    return {k: v + 0.1 * torch.randn(v.shape, generator=generator) for k, v in params.items()}


def test_forward_is_embed_blocks_in_numeric_order_ln_f_and_the_tied_head():
    config = GPTConfig(vocab_size=11, block_size=8, n_layers=12, d_model=16, n_heads=2)  # h.10 sorts before h.2
    params = random_params(config)
    ids = torch.randint(11, (3, 7), generator=torch.Generator().manual_seed(1))
    x = params["wte"][ids] + params["wpe"][:7]
    for i in range(12):
        x = transformer_block(x, block_params(params, i), 2, causal_mask(7))
    x = torch.nn.functional.layer_norm(x, (16,), params["ln_f.gamma"], params["ln_f.beta"], eps=1e-5)
    expected = x @ params["wte"].T
    shuffled = dict(sorted(params.items(), key=lambda kv: kv[0][::-1]))  # insertion order must not matter
    logits = gpt_forward(ids, shuffled, 2)
    assert logits.shape == (3, 7, 11)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_forward_is_causal_and_refuses_sequences_longer_than_wpe():
    config = GPTConfig(vocab_size=11, **SMALL)
    params = random_params(config)
    ids = torch.randint(11, (16,), generator=torch.Generator().manual_seed(2))
    changed = ids.clone()
    changed[10] = (ids[10] + 1) % 11
    a, b = gpt_forward(ids, params, 2), gpt_forward(changed, params, 2)
    torch.testing.assert_close(a[:10], b[:10])
    assert (a[10:] - b[10:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="17 tokens"):
        gpt_forward(torch.zeros(17, dtype=torch.long), params, 2)


def test_exported_transformers_model_reproduces_gpt_forward_and_loads_back(tmp_path):
    tokenizer = data.CharTokenizer.from_text(TEXT)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layers=2, d_model=128, n_heads=2)
    params = random_params(config)
    ids = torch.tensor([tokenizer.encode("Before we proceed any further")])
    with torch.no_grad():
        hf_logits = to_gpt2(params, config)(ids).logits
    torch.testing.assert_close(hf_logits, gpt_forward(ids, params, 2), rtol=1e-4, atol=1e-5)

    export(params, config, tokenizer, tmp_path / "model")
    loaded, loaded_config, loaded_tokenizer = load(tmp_path / "model")
    assert loaded_config == config and loaded_tokenizer.chars == tokenizer.chars
    assert loaded.keys() == params.keys() and all(torch.equal(loaded[k], params[k]) for k in params)


def test_transformers_tokenizer_gives_the_char_tokenizer_ids_and_decodes_back():
    tokenizer = data.CharTokenizer.from_text(TEXT)
    fast = to_hf_tokenizer(tokenizer)
    text = "Speak, speak!\n  Zé\t"  # '!', 'Z', 'é' and tab are not in TEXT: <unk>
    assert fast(text)["input_ids"] == tokenizer.encode(text)
    assert tokenizer.encode(text).count(tokenizer.unk_id) == 4
    assert fast.decode(tokenizer.encode("Speak, speak.\n")) == "Speak, speak.\n"


def test_char_tokenizer_round_trips_known_characters_and_rejects_duplicates():
    tokenizer = data.CharTokenizer.from_text(TEXT)
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT
    assert tokenizer.chars == sorted(set(TEXT)) and tokenizer.vocab_size == len(set(TEXT)) + 1
    with pytest.raises(ValueError):
        data.CharTokenizer(["a", "a"])


def test_training_lowers_the_loss_and_is_reproducible_from_its_seed():
    tokenizer = data.CharTokenizer.from_text(TEXT)
    ids = data.encode_corpus(TEXT, tokenizer)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **SMALL)
    settings = TrainConfig(max_iters=60, batch_size=8, lr=3e-3, warmup_iters=5, seed=7)
    losses = []
    with one_cpu_thread():  # bit for bit on one thread (two may sum floats in another order on each run)
        first = train(config, settings, ids, lambda step, loss: losses.append(loss))
        second = train(config, settings, ids)
    assert len(losses) == 60 and sum(losses[-10:]) / 10 < losses[0] - 1.0
    assert all(torch.equal(first[k], second[k]) for k in first)
    fresh = init_params(config, torch.Generator().manual_seed(7))
    assert evaluate(first, ids, 2, 16) < evaluate(fresh, ids, 2, 16) - 1.0


def test_batches_are_next_character_targets():
    ids = torch.arange(100)
    x, y = get_batch(ids, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(y, x + 1)


def test_sampling_is_seeded_and_continues_from_the_last_block_of_context():
    config = GPTConfig(vocab_size=11, **SMALL)
    params = random_params(config)
    prompt = torch.randint(11, (40,), generator=torch.Generator().manual_seed(3))  # longer than wpe: cropped
    a = list(sample(params, prompt, 2, 20, torch.Generator().manual_seed(5)))
    b = list(sample(params, prompt, 2, 20, torch.Generator().manual_seed(5)))
    assert a == b and len(a) == 20 and all(0 <= t < 11 for t in a)
    greedy = list(sample(params, prompt, 2, 1, torch.Generator(), temperature=1.0, top_k=1))
    assert greedy == [int(gpt_forward(prompt[-16:], params, 2)[-1].argmax())]


def test_corpus_is_downloaded_once_checked_and_cached(tmp_path, monkeypatch):
    source = tmp_path / "source.txt"
    source.write_text(TEXT)
    monkeypatch.setattr(data, "CORPUS_SHA256", hashlib.sha256(TEXT.encode()).hexdigest())
    cache = tmp_path / "cache"
    path = data.corpus_path(cache, url=source.as_uri())
    assert path == cache / data.CORPUS_FILE and path.read_text() == TEXT
    source.unlink()  # from now on only the cache can answer
    assert data.corpus_path(cache, url=source.as_uri()) == path


def test_a_corpus_with_the_wrong_checksum_or_no_download_is_refused_and_not_cached(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("not Shakespeare")
    with pytest.raises(data.CorpusError, match="sha256"):
        data.corpus_path(tmp_path / "cache", url=source.as_uri())
    assert not (tmp_path / "cache" / data.CORPUS_FILE).exists()
    with pytest.raises(data.CorpusError, match="cannot download"):
        data.corpus_path(tmp_path / "cache", url=(tmp_path / "missing.txt").as_uri())


def test_bigram_baseline_is_exact_on_a_text_it_can_memorise():
    ids = torch.tensor([0, 1, 2] * 50)  # each character determines the next: loss -> 0 as smoothing -> 0
    assert data.bigram_loss(ids, ids, 3, smoothing=1e-6) < 1e-4
    assert data.bigram_loss(ids, ids, 3, smoothing=1.0) > 0.01


def test_train_and_generate_commands(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "model"
    assert main(["train", "--data", str(corpus), "--iters", "3", "--out", str(out), "--threads", "1"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["training"]["max_iters"] == 3 and record["val_loss_nats_per_char"] > 0
    assert (out / "config.json").exists() and "validation loss" in capsys.readouterr().err
    assert main(["generate", "--prompt", "Speak", "--model", str(out), "--tokens", "12"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Speak") and 12 <= len(text[:-1]) - len("Speak") <= 12 * len("<unk>")
    assert main(["generate", "--prompt", "x", "--model", str(tmp_path / "nothing")]) == 2
