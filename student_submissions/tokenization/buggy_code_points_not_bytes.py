"""Encoding starts from code points (ord) instead of UTF-8 bytes."""
import regex
import torch

SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def char_vocab(text):
    return "".join(sorted(set(text)))


def encode_chars(text, vocab):
    stoi = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([stoi[c] for c in text], dtype=torch.long)


def decode_chars(ids, vocab):
    return "".join(vocab[i] for i in ids.tolist())


def get_stats(ids, counts):
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, idx):
    new, i = [], 0
    while i < len(ids):
        if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            new.append(idx)
            i += 2
        else:
            new.append(ids[i])
            i += 1
    return new


def learn_bpe(text, n_merges):
    chunks = [list(c.encode("utf-8")) for c in regex.findall(SPLIT_PATTERN, text)]
    merges = []
    for k in range(n_merges):
        stats = {}
        for chunk in chunks:
            get_stats(chunk, stats)
        if not stats:
            break
        best = max(stats.values())
        pair = min(p for p in stats if stats[p] == best)
        chunks = [merge(c, pair, 256 + k) for c in chunks]
        merges.append(pair)
    return torch.tensor(merges, dtype=torch.long).reshape(-1, 2)


def bpe_encode(text, merges, byte_ids):
    ranks = {tuple(p): k for k, p in enumerate(merges.tolist())}
    table = byte_ids.tolist()
    out = []
    for chunk in regex.findall(SPLIT_PATTERN, text):
        ids = [table[ord(c)] for c in chunk]
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            ids = merge(ids, pair, 256 + ranks[pair])
        out.extend(ids)
    return torch.tensor(out, dtype=torch.long)


def bpe_decode(ids, merges, byte_ids):
    vocab = {i: bytes([b]) for b, i in enumerate(byte_ids.tolist())}
    for k, (a, b) in enumerate(merges.tolist()):
        vocab[256 + k] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids.tolist()).decode("utf-8", errors="replace")
