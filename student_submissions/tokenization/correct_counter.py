"""Counter and a sort for the vocabulary and the ties; byte_ids indexed as a tensor; decode recursively."""
from collections import Counter

import regex
import torch

SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def char_vocab(text):
    return "".join(sorted(Counter(text)))


def encode_chars(text, vocab):
    return torch.tensor([vocab.index(c) for c in text], dtype=torch.int64)


def decode_chars(ids, vocab):
    return "".join([vocab[int(i)] for i in ids])


def _merge_word(word, pair, new):
    out, skip = [], False
    for j, t in enumerate(word):
        if skip:
            skip = False
            continue
        if j + 1 < len(word) and (t, word[j + 1]) == pair:
            out.append(new)
            skip = True
        else:
            out.append(t)
    return out


def learn_bpe(text, n_merges):
    words = [list(w.encode("utf-8")) for w in regex.findall(SPLIT_PATTERN, text)]
    merges = []
    for k in range(n_merges):
        counts = Counter()
        for w in words:
            counts.update(zip(w, w[1:]))
        if not counts:
            break
        pair = sorted(counts.items(), key=lambda pc: (-pc[1], pc[0]))[0][0]
        words = [_merge_word(w, pair, 256 + k) for w in words]
        merges.append(list(pair))
    return torch.tensor(merges, dtype=torch.int64).view(len(merges), 2)


def bpe_encode(text, merges, byte_ids):
    rank = {tuple(p): k for k, p in enumerate(merges.tolist())}
    result = []
    for w in regex.findall(SPLIT_PATTERN, text):
        word = byte_ids[torch.tensor(list(w.encode("utf-8")), dtype=torch.int64)].tolist()
        while True:
            present = [rank[p] for p in zip(word, word[1:]) if p in rank]
            if not present:
                break
            k = min(present)
            word = _merge_word(word, tuple(merges[k].tolist()), 256 + k)
        result += word
    return torch.tensor(result, dtype=torch.int64)


def bpe_decode(ids, merges, byte_ids):
    byte_of = torch.argsort(byte_ids).tolist()  # id -> byte
    pairs = merges.tolist()

    def expand(i):
        return [byte_of[i]] if i < 256 else expand(pairs[i - 256][0]) + expand(pairs[i - 256][1])

    data = bytes(b for i in ids.tolist() for b in expand(i))
    return data.decode("utf-8", errors="replace")
