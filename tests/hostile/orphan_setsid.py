"""An orphan: double fork, setsid (out of the worker's process group and session), sleep, outlive grading.

It also tries subprocess (fork + exec) and os.posix_spawn, which take other system calls than os.fork.
"""
import ctypes
import os
import subprocess
import sys
import time

import torch

ATTEMPTS = []


def _orphan():
    try:
        pid = os.fork()
    except OSError as exc:
        ATTEMPTS.append(f"fork: {exc!r}")
        return
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, b"hostile-orphan", 0, 0, 0)  # PR_SET_NAME
                time.sleep(600)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    ATTEMPTS.append("orphaned")


_orphan()
for attempt in (lambda: subprocess.Popen(["sleep", "600"], start_new_session=True),
                lambda: os.posix_spawn("/bin/sleep", ["hostile-spawn", "600"], {}),
                lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])):
    try:
        attempt()
        ATTEMPTS.append("spawned")
    except OSError as exc:
        ATTEMPTS.append(repr(exc))
print("orphan attempts:", "; ".join(ATTEMPTS))


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    _orphan()
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
