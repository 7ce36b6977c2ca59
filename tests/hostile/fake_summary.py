"""Speaks to the terminal and to CI: a fake pytest summary, a fake score table, GitHub workflow commands
(::error::, ::set-output, ::add-mask::, ::stop-commands::, legacy ##[...]) with and without leading
spaces, terminal escape sequences that move the cursor up and rewrite lines, and carriage returns; in a
file name-like first line, at import, in calls and in an exception message."""
import sys

import torch

LIES = "\n".join([
    "============================= 29 passed in 0.42s =============================",
    "total           100 / 100",
    "::error::x",
    "   ::error file=attention.py,line=1::everything is fine",
    "::set-output name=result::eyJzY29yZSI6IDEwMH0=",
    "::add-mask::total",
    "::stop-commands::pwned",
    "##[error]legacy command",
    "score: 27 ##[set-output name=result;]100",
    "\x1b[2A\x1b[2Ktotal           100 / 100",
    "\x1b]0;all tests passed\x07",
    "partial\rtotal           100 / 100",
    "\u202etotal 100 / 100",
])

print(LIES)
sys.stderr.write(LIES + "\n")


def linear_projections(x, W_q, W_k, W_v):
    print(LIES)
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)


def scaled_dot_product_attention(Q, K, V, mask=None):
    raise ValueError("\n" + LIES)
