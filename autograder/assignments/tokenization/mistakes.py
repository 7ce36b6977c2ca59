"""The `tokenization` mistake catalogue: each classic mistake recomputed on the student's exact inputs.

Trusted side only. Answers are str and int64 ids, compared exactly by the checks (exact.py), which try
these rules in order. Functions and their sections: char_vocab (char_vocab), encode_chars (char_encode),
decode_chars (char_decode), learn_bpe (learn), bpe_encode (encode), bpe_decode (decode).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, Iterator, List, Tuple

import regex
import torch
from torch import Tensor

from autograder.assignments.tokenization.contract import ASSIGNMENT
from autograder.diagnosis import Catalogue
from reference import tokenization as ref

CATALOGUE = Catalogue(ASSIGNMENT)
_mistake = CATALOGUE.mistake
Pair = Tuple[int, int]


# ---------------------------------------------------------------- the character tokenizer


@_mistake(
    "vocab_not_sorted",
    "char_vocab",
    "your vocabulary lists the characters in the order they first appear; the contract sorts them by code "
    "point, so the same characters always get the same ids: ''.join(sorted(set(text)))",
)
def _vocab_not_sorted(text: str) -> Iterator[str]:
    yield "".join(dict.fromkeys(text))


@_mistake(
    "char_ids_from_one",
    "char_encode",
    "your ids are one too large: the character vocab[i] has id i, counting from 0 (no id is reserved)",
)
def _char_ids_from_one(text: str, vocab: str) -> Iterator[Tensor]:
    yield ref.encode_chars(text, vocab) + 1


# ---------------------------------------------------------------- learn_bpe: (text, n_merges)


def learn(text: str, n_merges: int, pick: Callable[[Counter], Pair]) -> Tensor:
    """learn_bpe with another way of picking the pair to merge from the pair counts."""
    words = [list(chunk) for chunk in ref.chunks(text)]
    merges: List[Pair] = []
    for k in range(n_merges):
        counts = Counter(pair for w in words for pair in zip(w, w[1:]))
        if not counts:
            break
        pair = pick(counts)
        words = [ref.merge(w, pair, 256 + k) for w in words]
        merges.append(pair)
    return torch.tensor(merges, dtype=torch.int64).reshape(len(merges), 2)


@_mistake(
    "ties_broken_differently",
    "learn",
    "when several pairs are equally frequent your code picks another one than the contract: the pair seen "
    "first (max(counts, key=counts.get), Counter.most_common) or the largest; the contract takes the "
    "smallest pair (a, b), comparing a first, then b: min(p for p, c in counts.items() if c == top)",
)
def _ties_broken_differently(text: str, n_merges: int) -> Iterator[Tensor]:
    yield learn(text, n_merges, lambda counts: max(counts, key=counts.get))                     # first seen
    yield learn(text, n_merges, lambda counts: max(counts.items(), key=lambda pc: (pc[1], pc[0]))[0])  # largest


# ---------------------------------------------------------------- bpe_encode: (text, merges, byte_ids)


def _encode(text: str, merges: Tensor, byte_ids: Tensor, *, first_ids: Callable[[str, List[int]], List[int]],
            priority: Callable[[int], float]) -> Tensor:
    ranks: Dict[Pair, int] = {(a, b): k for k, (a, b) in enumerate(merges.tolist())}
    table, out = byte_ids.tolist(), []
    for piece in regex.findall(ref.SPLIT_PATTERN, text):
        ids = first_ids(piece, table)
        while len(ids) >= 2:
            present = [p for p in zip(ids, ids[1:]) if p in ranks]
            if not present:
                break
            pair = min(present, key=lambda p: priority(ranks[p]))
            ids = ref.merge(ids, pair, 256 + ranks[pair])
        out += ids
    return torch.tensor(out, dtype=torch.int64)


def _utf8(piece: str, table: List[int]) -> List[int]:
    return [table[b] for b in piece.encode("utf-8")]


def _code_points(piece: str, table: List[int]) -> List[int]:
    return [table[ord(c)] for c in piece]  # IndexError past U+00FF, one id instead of two bytes for é


@_mistake(
    "merges_in_wrong_order",
    "encode",
    "your encoder applies the merges in another order than they were learned (the newest first, or the pair "
    "that is most frequent in the text); a merge may only use tokens made by earlier merges, so the contract "
    "merges, again and again, the present pair with the lowest merge index",
)
def _merges_in_wrong_order(text: str, merges: Tensor, byte_ids: Tensor) -> Iterator[Tensor]:
    yield _encode(text, merges, byte_ids, first_ids=_utf8, priority=lambda rank: -rank)


@_mistake(
    "code_points_not_bytes",
    "encode",
    "your encoder starts from the characters' code points (ord(c)), not from their UTF-8 bytes; byte-level "
    "BPE starts from text.encode('utf-8'), so 'é' is two bytes (0xC3 0xA9) and every character has ids",
)
def _code_points_not_bytes(text: str, merges: Tensor, byte_ids: Tensor) -> Iterator[Tensor]:
    yield _encode(text, merges, byte_ids, first_ids=_code_points, priority=float)


# ---------------------------------------------------------------- bpe_decode: (ids, merges, byte_ids)


def _bytes_of(merges: Tensor, byte_ids: Tensor, *, mapped: bool = True) -> Dict[int, bytes]:
    byte_of = {(i if mapped else b): bytes([b]) for b, i in enumerate(byte_ids.tolist())}
    for k, (a, b) in enumerate(merges.tolist()):
        byte_of[256 + k] = byte_of[a] + byte_of[b]
    return byte_of


@_mistake(
    "decode_ignores_byte_ids",
    "decode",
    "your decoder takes ids 0..255 for the byte values themselves; they are byte_ids[b] for byte b (GPT-2 "
    "numbers its bytes in its own order), so invert the map: the byte of id byte_ids[b] is b",
)
def _decode_ignores_byte_ids(ids: Tensor, merges: Tensor, byte_ids: Tensor) -> Iterator[str]:
    byte_of = _bytes_of(merges, byte_ids, mapped=False)
    yield b"".join(byte_of[i] for i in ids.tolist()).decode("utf-8", errors="replace")


@_mistake(
    "decode_per_token",
    "decode",
    "your decoder turns each token into text on its own; a character's UTF-8 bytes can be split across "
    "tokens, so join all the bytes first and decode once: b''.join(...).decode('utf-8', errors='replace')",
)
def _decode_per_token(ids: Tensor, merges: Tensor, byte_ids: Tensor) -> Iterator[str]:
    byte_of = _bytes_of(merges, byte_ids)
    yield "".join(byte_of[i].decode("utf-8", errors="replace") for i in ids.tolist())
