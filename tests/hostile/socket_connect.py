"""Reaches out: TCP to a port listening on 127.0.0.1, a unix socket at a known path, UDP, DNS, and an
abstract unix socket; from import and from a call. Zeros otherwise."""
import socket

import torch

PORT = "__HOSTILE_PORT__"
UNIX = "__HOSTILE_UNIX__"
TRIED = {}


def _try(label, action):
    try:
        action()
        TRIED[label] = "ok"
    except Exception as exc:  # noqa: BLE001
        TRIED[label] = type(exc).__name__


def _tcp():
    with socket.create_connection(("127.0.0.1", int(PORT)), timeout=1) as conn:
        conn.sendall(b"HOSTILE-CONNECT tcp")


def _unix():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(1)
        conn.connect(UNIX)
        conn.sendall(b"HOSTILE-CONNECT unix")


def _udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
        conn.sendto(b"HOSTILE-CONNECT udp", ("127.0.0.1", int(PORT)))


def _abstract():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(1)
        conn.connect("\0hostile-abstract")


def _dns():
    socket.getaddrinfo("example.com", 80)


def reach(tag):
    for label, action in (("tcp", _tcp), ("unix", _unix), ("udp", _udp), ("abstract", _abstract), ("dns", _dns)):
        _try(f"{tag}:{label}", action)


reach("import")
print("network attempts:", TRIED)


def linear_projections(x, W_q, W_k, W_v):
    reach("call")
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
