"""Reference tokenizers: the answers the `tokenization` assignment is graded against (reads like minbpe).

A character tokenizer, and byte-level byte-pair encoding (BPE) in GPT-2's form:

  char_vocab(text)            -> vocab: str, the distinct characters of text sorted by code point
  encode_chars(text, vocab)   -> ids int64 [len(text)], ids[j] = vocab.index(text[j])
  decode_chars(ids, vocab)    -> str

  text --utf-8--> bytes --byte_ids--> ids 0..255 --merges--> ids          (bpe_encode)
  learn_bpe(text, n_merges)   -> merges int64 [n, 2]: merge k joins the pair (a, b) into the new id 256 + k
  bpe_encode(text, merges, byte_ids) -> ids int64 [n_tokens]
  bpe_decode(ids, merges, byte_ids)  -> str (bytes that are not UTF-8 become U+FFFD)

Text is first split into chunks by GPT-2's pattern (SPLIT_PATTERN); pairs never cross a chunk boundary.
learn_bpe counts the adjacent pairs of every chunk (bytes as ids 0..255, byte_ids = identity), merges the
most frequent pair, ties broken by the smallest pair (a, b) (a first, then b); a merge replaces the
pair's non-overlapping occurrences left to right. bpe_encode repeatedly merges, in each chunk, the present
pair of the lowest merge index (the same as applying the merges in order). byte_ids `[256]` is the id of
each byte value (a permutation of 0..255): torch.arange(256) for learned merges; GPT-2's own order for
GPT-2's merges, whose merge k also makes id 256 + k, so GPT-2's 50,000 merges give distilgpt2's ids.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Tuple

import regex
import torch
from torch import Tensor

SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
Pair = Tuple[int, int]


def char_vocab(text: str) -> str:
    """The distinct characters of text, sorted by code point (id i is vocab[i])."""
    return "".join(sorted(set(text)))


def encode_chars(text: str, vocab: str) -> Tensor:
    """int64 `[len(text)]`: the position of each character in vocab (every character is in vocab)."""
    stoi = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([stoi[c] for c in text], dtype=torch.int64)


def decode_chars(ids: Tensor, vocab: str) -> str:
    """ids `[n]` -> the characters vocab[ids[0]] vocab[ids[1]] ..."""
    return "".join(vocab[i] for i in ids.tolist())


def chunks(text: str) -> List[bytes]:
    """text split by GPT-2's pattern, each chunk as UTF-8 bytes."""
    return [piece.encode("utf-8") for piece in regex.findall(SPLIT_PATTERN, text)]


def merge(ids: List[int], pair: Pair, new_id: int) -> List[int]:
    """ids with each non-overlapping occurrence of pair (left to right) replaced by new_id."""
    out, j = [], 0
    while j < len(ids):
        if j + 1 < len(ids) and (ids[j], ids[j + 1]) == pair:
            out.append(new_id)
            j += 2
        else:
            out.append(ids[j])
            j += 1
    return out


def learn_bpe(text: str, n_merges: int) -> Tensor:
    """int64 `[n, 2]` (n <= n_merges: it stops early when no pair is left): the merges, in order."""
    words = [list(chunk) for chunk in chunks(text)]
    merges: List[Pair] = []
    for k in range(n_merges):
        counts = Counter(pair for w in words for pair in zip(w, w[1:]))
        if not counts:
            break
        top = max(counts.values())
        pair = min(p for p, c in counts.items() if c == top)  # ties: the smallest pair
        words = [merge(w, pair, 256 + k) for w in words]
        merges.append(pair)
    return torch.tensor(merges, dtype=torch.int64).reshape(len(merges), 2)


def _ranks(merges: Tensor) -> Dict[Pair, int]:
    return {(a, b): k for k, (a, b) in enumerate(merges.tolist())}


def bpe_encode(text: str, merges: Tensor, byte_ids: Tensor) -> Tensor:
    """int64 `[n_tokens]`: each chunk's bytes as byte_ids, then its lowest-ranked pair merged until none is left."""
    ranks, table = _ranks(merges), byte_ids.tolist()
    out: List[int] = []
    for chunk in chunks(text):
        ids = [table[b] for b in chunk]
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            ids = merge(ids, pair, 256 + ranks[pair])
        out += ids
    return torch.tensor(out, dtype=torch.int64)


def bpe_decode(ids: Tensor, merges: Tensor, byte_ids: Tensor) -> str:
    """The text of ids: each id expanded to its bytes (merge k: the bytes of its pair), UTF-8 decoded."""
    byte_of = {i: bytes([b]) for b, i in enumerate(byte_ids.tolist())}
    for k, (a, b) in enumerate(merges.tolist()):
        byte_of[256 + k] = byte_of[a] + byte_of[b]
    return b"".join(byte_of[i] for i in ids.tolist()).decode("utf-8", errors="replace")


def gpt2_byte_ids() -> Tensor:
    """int64 `[256]`: GPT-2's id of each byte value (printable bytes first, in byte order, then the rest)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    order = printable + [b for b in range(256) if b not in printable]
    ids = torch.empty(256, dtype=torch.int64)
    ids[torch.tensor(order)] = torch.arange(256)
    return ids
