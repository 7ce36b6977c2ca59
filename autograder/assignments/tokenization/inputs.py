"""The texts, merges and byte maps the `tokenization` checks use, and GPT-2's merges (trusted side only)."""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Optional, Tuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from reference import tokenization as ref

# Hamlet III.1 (public domain): GPT-2's ids for it are checked against the `tokenizers` library in the tests
PASSAGE = ("HAMLET:\nTo be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
           "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n"
           "And by opposing end them. To die: to sleep;\nNo more; and by a sleep to say we end\n"
           "The heart-ache and the thousand natural shocks\nThat flesh is heir to, 'tis a consummation\n"
           "Devoutly to be wish'd.\n")
UNICODE = "naïve café — 日本語のテキスト, Ünïcödé 🙂🙂 and ASCII: ab ab ab"
TIES = "dcba abcd xyzw wzyx"   # every pair once: the tie rule decides the first merges
WIKI = "aaabdaaabac"          # Wikipedia's BPE example: aa, then aaa... ties among the rest
TEXTS = {"the example": "The cat sat on the mat", "Hamlet": PASSAGE, "a unicode text": UNICODE,
         "a text of ties": TIES, "aaabdaaabac": WIKI, "the empty text": ""}
LEARNED_ON = PASSAGE + UNICODE  # the merges that encode and decode are checked with (40 of them)
N_MERGES = 40


def identity_bytes() -> Tensor:
    return torch.arange(256, dtype=torch.int64)


def permuted_bytes(seed: int = 7) -> Tensor:
    """A fixed random permutation of 0..255: byte b's id is not b (as in GPT-2), so ignoring byte_ids shows."""
    return torch.randperm(256, generator=torch.Generator().manual_seed(seed)).to(torch.int64)


@functools.lru_cache(maxsize=None)
def learned() -> Tensor:
    return ref.learn_bpe(LEARNED_ON, N_MERGES)


def text_strategy(max_size: int = 40) -> st.SearchStrategy[str]:
    """Arbitrary unicode text (no lone surrogates: they have no UTF-8), biased to mix ASCII and multi-byte."""
    return st.one_of(st.text(max_size=max_size),
                     st.text(st.sampled_from("ab c'\n\té日🙂"), max_size=max_size))


# ---------------------------------------------------------------- GPT-2's files


def gpt2_folder(configured: str) -> Path:
    """Where GPT-2's vocab.json and merges.txt are: $AUTOGRADER_GPT2_TOKENIZER, else the configured path."""
    return Path(os.environ.get("AUTOGRADER_GPT2_TOKENIZER") or configured).expanduser()


@functools.lru_cache(maxsize=4)
def gpt2_merges(folder: Path) -> Optional[Tuple[Tensor, Tensor]]:
    """(merges int64 [50000, 2], byte_ids int64 [256]) in the contract's form, from GPT-2's files; None when
    they are absent. Merge k of merges.txt is vocab id 256 + k (checked), so the contract's ids are GPT-2's."""
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if not (vocab_file.is_file() and merges_file.is_file()):
        return None
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    lines = [line for line in merges_file.read_text(encoding="utf-8").split("\n")
             if line and not line.startswith("#version")]
    pairs = [line.split(" ") for line in lines]
    if any(vocab[a + b] != 256 + k for k, (a, b) in enumerate(pairs)):
        raise ValueError(f"{merges_file}: merge k is not vocabulary id 256 + k (not GPT-2's files?)")
    merges = torch.tensor([[vocab[a], vocab[b]] for a, b in pairs], dtype=torch.int64)
    return merges, ref.gpt2_byte_ids()


