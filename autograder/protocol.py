"""The wire format between the grader and a submission's worker: JSON headers plus safetensors.

Only data crosses: a JSON header and a safetensors blob (no pickle, so nothing a worker sends can run
code in the grader). Values are encoded as specs:

    {"kind": "tensor", "key": "t0"}            a plain tensor, stored in the blob under "t0"
    {"kind": "tuple", "items": [spec, ...]}   a tuple of values
    {"kind": "none"}                           None
    {"kind": "scalar", "value": 3}             a bool, int, float or str argument
    {"kind": "other", "type": "list", "desc": "a list of 6 floats"}   anything else, described only
"""
from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

_LEN = struct.Struct("!Q")
MAX_FRAME = 1 << 31


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid frame (or went away)."""


@dataclass(frozen=True)
class Foreign:
    """A value the submission returned that is not a tensor: only its description crosses."""

    type: str
    desc: str

    def __repr__(self) -> str:
        return self.desc


def describe(value: Any) -> str:
    """A short human description of a non-tensor value: 'a list of 6 floats', 'None', 'a numpy.ndarray ...'."""
    if value is None:
        return "None"
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(value, torch.Tensor):
        return f"a {name} (a subclass of torch.Tensor) of shape {list(value.shape)}"
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "dtype", None) is not None:
        return f"a {name} of dtype {value.dtype} and shape {list(shape)}"
    if isinstance(value, (list, tuple)):
        inner = sorted({type(v).__name__ for v in value})
        return f"a {name} of {len(value)} item(s) ({', '.join(inner) or 'empty'})"
    return f"a {name}"


class Encoder:
    """Collects tensors into one safetensors blob while building JSON specs."""

    def __init__(self) -> None:
        self.tensors: Dict[str, torch.Tensor] = {}

    def add(self, value: Any, *, top: bool = True) -> Dict[str, Any]:
        if type(value) is torch.Tensor:
            key = f"t{len(self.tensors)}"
            # clone: safetensors refuses shared storage and needs contiguous, CPU, non-grad data
            self.tensors[key] = value.detach().to("cpu").contiguous().clone()
            return {"kind": "tensor", "key": key}
        if value is None:
            return {"kind": "none"}
        if isinstance(value, (bool, int, float, str)) and not isinstance(value, torch.Tensor):
            return {"kind": "scalar", "value": value}
        if type(value) is tuple and top:
            return {"kind": "tuple", "items": [self.add(v, top=False) for v in value]}
        return {"kind": "other", "type": type(value).__name__, "desc": describe(value)}

    def blob(self) -> bytes:
        return st_save(self.tensors) if self.tensors else b""


def decode(spec: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Any:
    """Rebuild a value from its spec; tensors come back as plain torch.Tensor."""
    kind = spec.get("kind")
    if kind == "tensor":
        return tensors[spec["key"]]
    if kind == "tuple":
        return tuple(decode(item, tensors) for item in spec["items"])
    if kind == "none":
        return None
    if kind == "scalar":
        return spec["value"]
    if kind == "other":
        return Foreign(str(spec.get("type", "?")), str(spec.get("desc", "?")))
    raise ProtocolError(f"unknown value kind {kind!r}")


def pack(header: Dict[str, Any], blob: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return _LEN.pack(len(head)) + head + _LEN.pack(len(blob)) + blob


def unpack_blob(blob: bytes) -> Dict[str, torch.Tensor]:
    if not blob:
        return {}
    try:
        return st_load(blob)
    except Exception as exc:  # a malformed blob is the sender's fault, never ours to crash on
        raise ProtocolError(f"malformed tensor data: {exc}") from exc


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: List[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, header: Dict[str, Any], blob: bytes = b"") -> None:
    sock.sendall(pack(header, blob))


def recv(sock: socket.socket) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """Read one frame: (header, tensors). Raises ProtocolError on a bad or closed stream."""
    (head_len,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if head_len > MAX_FRAME:
        raise ProtocolError("header too large")
    try:
        header = json.loads(_recv_exact(sock, head_len))
    except ValueError as exc:
        raise ProtocolError(f"malformed header: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    (blob_len,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if blob_len > MAX_FRAME:
        raise ProtocolError("tensor data too large")
    return header, unpack_blob(_recv_exact(sock, blob_len))


def encode_values(values: Any) -> Tuple[Any, bytes]:
    """Encode one value (or a list of arguments) into (spec, blob)."""
    enc = Encoder()
    spec = [enc.add(v) for v in values] if isinstance(values, list) else enc.add(values)
    return spec, enc.blob()


def decode_values(spec: Any, tensors: Dict[str, torch.Tensor]) -> Any:
    if isinstance(spec, list):
        return [decode(s, tensors) for s in spec]
    return decode(spec, tensors)


def optional_tensor(value: Any) -> Optional[torch.Tensor]:
    return value if type(value) is torch.Tensor else None
