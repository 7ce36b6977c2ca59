"""Forges the worker's load header at import, on the worker's own socket (found with gc): 700,000
function names (under the 8 MB header limit) and the contract's five, to inflate the report to megabytes
and to claim functions the file does not define; then prints far more than the output limit."""
import gc
import json
import socket
import struct

import torch

_LEN = struct.Struct("!Q")


def _sock():
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family == socket.AF_UNIX and obj.fileno() >= 0:
            return obj
    raise RuntimeError("no socket found")


names = ["attention_scores", "attention_weights", "aggregate_values", "scaled_dot_product_attention"]
names += [f"f{i:06d}" for i in range(700_000)]
head = json.dumps({"ok": True, "functions": names}).encode()
_sock().sendall(_LEN.pack(len(head)) + head + _LEN.pack(0))
print("x" * (1 << 20))


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))
