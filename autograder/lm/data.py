"""Tiny Shakespeare and its character-level tokenizer.

The corpus (1,115,394 characters; char-rnn's and nanoGPT's) is downloaded once, checked against its sha256
and cached as `cache/tinyshakespeare.txt`. Token ids: one per character, the corpus' characters in code-point
order (65 of them) and then `<unk>` for any other character, so every text encodes.
The split is the course's: the first 90% of the ids for training, the last 10% for validation.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import torch
from torch import Tensor

CORPUS_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
CORPUS_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPUS_FILE = "tinyshakespeare.txt"
UNK = "<unk>"
TRAIN_FRACTION = 0.9
_REPO_ROOT = Path(__file__).resolve().parents[2]


class CorpusError(RuntimeError):
    """The corpus is not cached and cannot be downloaded, or what was downloaded is not Tiny Shakespeare."""


def default_cache_dir() -> Path:
    """`$AUTOGRADER_CACHE` if set, else `cache/` in the repository (or the working directory)."""
    env = os.environ.get("AUTOGRADER_CACHE")
    if env:
        return Path(env).expanduser()
    root = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / "cache"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corpus_path(cache_dir: Optional[Path] = None, url: str = CORPUS_URL, timeout_s: float = 30.0) -> Path:
    """The cached corpus, downloading it first if needed; raises CorpusError on a failed download or checksum."""
    target = (cache_dir or default_cache_dir()) / CORPUS_FILE
    if target.exists() and sha256_of(target) == CORPUS_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            payload = response.read()
    except OSError as exc:
        raise CorpusError(f"cannot download Tiny Shakespeare from {url}: {exc}; put the file at {target} "
                          f"(sha256 {CORPUS_SHA256}) or pass --data FILE") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != CORPUS_SHA256:
        raise CorpusError(f"the file downloaded from {url} has sha256 {digest}, expected {CORPUS_SHA256}; "
                          "not cached")
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:  # atomic: never a torn file
        handle.write(payload)
    os.replace(handle.name, target)
    return target


def read_corpus(path: Optional[Path] = None) -> str:
    """The text of path, or of the cached (downloaded if needed) corpus when path is None."""
    return (path or corpus_path()).read_text(encoding="utf-8")


class CharTokenizer:
    """One id per character: `chars` in the given order, then `<unk>` (id len(chars)) for anything else."""

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars: List[str] = list(chars)
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must be distinct single characters")
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The text's distinct characters in code-point order (65 for Tiny Shakespeare)."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> List[int]:
        return [self.stoi.get(c, self.unk_id) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] if 0 <= i < len(self.chars) else UNK for i in ids)


def split(ids: Tensor) -> Tuple[Tensor, Tensor]:
    """ids `[n]` -> (train = the first 90%, validation = the last 10%)."""
    n_train = int(TRAIN_FRACTION * len(ids))
    return ids[:n_train], ids[n_train:]


def encode_corpus(text: str, tokenizer: CharTokenizer) -> Tensor:
    """int64 `[len(text)]`."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def bigram_loss(train_ids: Tensor, val_ids: Tensor, vocab_size: int, smoothing: float = 1.0) -> float:
    """Validation loss (nats per token) of the count-based bigram model of train_ids, add-`smoothing`:
    the baseline any model with context must beat (2.48 nats/char on Tiny Shakespeare)."""
    counts = torch.full((vocab_size, vocab_size), smoothing, dtype=torch.float64)
    counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1, dtype=torch.float64),
                      accumulate=True)
    log_probs = (counts / counts.sum(dim=1, keepdim=True)).log()  # [vocab, vocab]: row = current token
    return float(-log_probs[val_ids[:-1], val_ids[1:]].mean())
