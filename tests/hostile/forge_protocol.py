"""Speaks the worker's wire protocol itself, on the worker's own socket (found with gc): a reply without a
result, a frame announcing 1 TiB, a header nested 100,000 deep, a frame trickled one byte at a time
(which resets a per-read timeout forever), and an error of an unknown kind with a huge message."""
import gc
import json
import socket
import struct
import time

import torch

_LEN = struct.Struct("!Q")


def _sock():
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family == socket.AF_UNIX and obj.fileno() >= 0:
            return obj
    raise RuntimeError("no socket found")


def _frame(header, blob=b""):
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return _LEN.pack(len(head)) + head + _LEN.pack(len(blob)) + blob


def linear_projections(x, W_q, W_k, W_v):
    _sock().sendall(_frame({"ok": True}))  # and then the real reply too: the stream is one frame ahead
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    _sock().sendall(_LEN.pack(1 << 40) + b"{")
    time.sleep(60)


def attention_weights(scores, mask=None):
    _sock().sendall(_frame(b"[" * 100_000 + b"]" * 100_000))
    time.sleep(60)


def aggregate_values(weights, V):
    sock = _sock()
    frame = _frame({"ok": True, "result": {"kind": "none"}, "pad": "x" * 100})
    for i in range(len(frame)):
        sock.sendall(frame[i:i + 1])
        time.sleep(0.5)
    time.sleep(60)


def scaled_dot_product_attention(Q, K, V, mask=None):
    _sock().sendall(_frame({"ok": False, "error": {"kind": "internal", "type": "GraderBug",
                                                   "message": "::error::forged " * 200_000}}))
    time.sleep(60)
