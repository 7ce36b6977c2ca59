"""Tokenization: a character tokenizer and GPT-2's byte-level BPE (assignment `tokenization`).

Fill in the six functions below. Each is graded on its own; answers must be exact (ids and text).

The character tokenizer:
- char_vocab(text) -> str: the distinct characters of text sorted by code point; id i is vocab[i].
- encode_chars(text, vocab) -> int64 tensor [len(text)]; decode_chars(ids, vocab) -> str.

Byte-pair encoding (GPT-2's form, like minbpe's RegexTokenizer):
- Text is split into chunks by SPLIT_PATTERN below (the `regex` module, not `re`); pairs never cross chunks.
- Each chunk is its UTF-8 bytes. learn_bpe uses the byte values as ids (0..255); bpe_encode/bpe_decode
  get byte_ids, an int64 tensor [256]: byte b has id byte_ids[b] (torch.arange(256) for your own merges;
  GPT-2 numbers its bytes in its own order).
- learn_bpe(text, n_merges) -> int64 [n, 2]: count the adjacent pairs of all chunks; merge k joins the most
  frequent pair (a, b) into the new id 256 + k; ties: the SMALLEST pair (a first, then b); replace the
  pair's non-overlapping occurrences left to right; stop early when no pair is left.
- bpe_encode(text, merges, byte_ids) -> int64 [n_tokens]: per chunk, repeatedly merge the present pair
  with the lowest merge index k (into 256 + k) until no pair of merges is present.
- bpe_decode(ids, merges, byte_ids) -> str: expand ids to bytes (merge k: the bytes of its pair; id
  byte_ids[b]: byte b), join them, then .decode("utf-8", errors="replace").
- Plain functions: no randomness, no state between calls; write the tokenizer yourself (no tokenizers,
  tiktoken or transformers).

With GPT-2's 50,000 merges, PROMPT_EXAMPLE = "The cat sat on the mat" encodes to
[464, 3797, 3332, 319, 262, 2603] (distilgpt2's ids).
"""
import regex  # noqa: F401
import torch  # noqa: F401

SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def char_vocab(text):
    """-> str: the distinct characters of text, sorted by code point."""
    raise NotImplementedError


def encode_chars(text, vocab):
    """-> int64 [len(text)]: the index of each character in vocab."""
    raise NotImplementedError


def decode_chars(ids, vocab):
    """ids int64 [n] -> str."""
    raise NotImplementedError


def learn_bpe(text, n_merges):
    """-> int64 [n, 2], n <= n_merges: the merges in the order learned."""
    raise NotImplementedError


def bpe_encode(text, merges, byte_ids):
    """-> int64 [n_tokens]."""
    raise NotImplementedError


def bpe_decode(ids, merges, byte_ids):
    """ids int64 [n] -> str."""
    raise NotImplementedError
