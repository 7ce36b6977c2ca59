"""The wire format between the grader and a submission's worker: JSON headers plus safetensors.

Only data crosses: a JSON header and a safetensors blob (no pickle, so nothing a worker sends can run
code in the grader). Values are encoded as specs:

    {"kind": "tensor", "key": "t0"}            a plain tensor, stored in the blob under "t0"
    {"kind": "tuple", "items": [spec, ...]}   a tuple of values
    {"kind": "dict", "items": [[key, spec], ...]}   a dict with str keys (the `block` assignment's params)
    {"kind": "none"}                           None
    {"kind": "scalar", "value": 3}             a bool, int, float or str argument
    {"kind": "other", "type": "list", "desc": "a list of 6 floats"}   anything else, described only

The student's code shares its process with the worker's end of the socket, so whatever the grader reads
may be forged: `recv` bounds every frame in size and time, and refuses specs that do not decode (see
`check_frame`); a malformed frame is a ProtocolError, never an exception of another kind in the grader.

Requests (headers with an "op") are numbered by `send` ("seq"); the worker's reply names the request it
answers ("reply_to") and `recv` on the requesting socket refuses any other frame, and a reply that lacks
what its request asked for ("result", "grads", "args_after"). So a frame the student slipped into the
stream, or a late reply to a request whose wait was cut short, can never be taken for the answer to
another request: the stream is declared broken (ProtocolError) instead.
"""
from __future__ import annotations

import itertools
import json
import socket
import struct
import time
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from safetensors import TensorSpec, serialize
from safetensors.torch import load as st_load

_LEN = struct.Struct("!Q")
MAX_HEADER = 1 << 20   # bytes of JSON in one frame: specs, error messages (clipped), descriptions
MAX_BLOB = 64 << 20    # bytes of tensor data in one frame (the largest graded input is under 1 MiB); a reply
                       # gets a budget from what its request expects (`reply_budget`), refused before it is read
MAX_TEXT = 4000        # characters kept of any string a worker sends (messages, details, descriptions)
ERROR_TEXT = 500       # characters kept of an exception's own message (the worker clips it: `clip`)
MAX_DEPTH = 4          # nesting of tuple and dict specs (the encoder nests one level)
MAX_KEYS = 256         # entries of one dict value; its keys are strings of at most MAX_KEY characters
MAX_KEY = 100
MAX_NAMES = 64         # names in a worker's "functions" or "layers" list (an assignment has a few functions)
MAX_NAME = 100         # characters of one such name
VALUE_FIELDS = ("args", "cotangents", "result", "grads", "args_after")  # header fields holding specs
LIST_FIELDS = ("args", "cotangents", "grads", "args_after")             # ... of which these are lists
SCALARS = (bool, int, float, str)


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid frame (or went away)."""


class ReplyTooLarge(ProtocolError):
    """A frame announced more tensor data than its reader allows: refused before a byte of it is read."""

    def __init__(self, size: int, limit: int, drained: bool = False) -> None:
        super().__init__(f"tensor data too large ({size} bytes, at most {limit})")
        self.size, self.limit, self.drained = size, limit, drained


REPLY_SLACK = 1 << 20  # bytes a reply may hold beyond REPLY_FACTOR times what its request expects
REPLY_FACTOR = 4       # (float64 for float32 inputs is 2x; a broadcasting mistake at test sizes fits)


def nbytes(values: Any) -> int:
    """Bytes of tensor data in a value, a tuple or a list of them (what encoding it would send)."""
    if isinstance(values, (list, tuple)):
        return sum(nbytes(v) for v in values)
    return values.numel() * values.element_size() if isinstance(values, torch.Tensor) else 0


def reply_budget(expected_bytes: int) -> int:
    """The most tensor data a reply expected to carry `expected_bytes` may announce (capped at MAX_BLOB)."""
    return min(MAX_BLOB, REPLY_SLACK + REPLY_FACTOR * expected_bytes)


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


class FrameTooLarge(ValueError):
    """The values to send exceed MAX_BLOB: raised by the sender, before anything is sent."""


class Encoder:
    """Collects tensors into one safetensors blob while building JSON specs.

    Exact types only (`type(v) is ...`): a subclass of int, str or tuple could lie to isinstance through
    `__class__` or run code when serialized; such values are described, not sent.
    """

    def __init__(self, max_bytes: int = MAX_BLOB) -> None:
        self.tensors: Dict[str, torch.Tensor] = {}
        self.max_bytes, self.size = max_bytes, 0

    def add(self, value: Any, *, top: bool = True) -> Dict[str, Any]:
        if type(value) is torch.Tensor:
            key = f"t{len(self.tensors)}"
            nbytes = value.numel() * value.element_size()
            if self.size + nbytes > self.max_bytes:
                raise FrameTooLarge(f"the values add up to more than {self.max_bytes >> 20} MiB of tensor data "
                                    f"(this one is a tensor of shape {list(value.shape)})")
            self.size += nbytes
            # contiguous CPU data, read by `blob` at its data_ptr (two values may share storage: each is copied);
            # a pending negation or conjugation (`x.conj().imag`, a neg view) is applied first: it is a flag on
            # the tensor, not in its memory
            self.tensors[key] = value.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
            return {"kind": "tensor", "key": key}
        if value is None:
            return {"kind": "none"}
        if type(value) in SCALARS and not (type(value) is str and len(value) > MAX_TEXT):
            return {"kind": "scalar", "value": value}
        if type(value) is tuple and top:
            return {"kind": "tuple", "items": [self.add(v, top=False) for v in value]}
        if (type(value) is dict and top and len(value) <= MAX_KEYS
                and all(type(k) is str and len(k) <= MAX_KEY for k in value)):
            return {"kind": "dict", "items": [[k, self.add(v, top=False)] for k, v in value.items()]}
        return {"kind": "other", "type": type(value).__name__[:100], "desc": clip(describe(value))}

    def blob(self) -> bytes:
        """The tensors as one safetensors blob, written by safetensors' low-level `serialize` from contiguous
        CPU tensors (`add`): `safetensors.torch.save` would also refuse shared storage (two outputs that are
        one tensor), which a copy per tensor avoided, and check each tensor again: ~80 us a message, where
        this writes the same bytes in 10 us."""
        if not self.tensors:
            return b""
        return serialize({key: TensorSpec(dtype=str(t.dtype).split(".")[-1], shape=list(t.shape), data_ptr=t.data_ptr(),
                                          data_len=t.numel() * t.element_size())
                          for key, t in self.tensors.items()}, None)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """text, cut to limit characters with a note of how many were dropped."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def decode(spec: Dict[str, Any], tensors: Dict[str, torch.Tensor], depth: int = 0) -> Any:
    """Rebuild a value from its spec; tensors come back as plain torch.Tensor. ProtocolError on a bad spec."""
    if not isinstance(spec, dict) or depth > MAX_DEPTH:
        raise ProtocolError("malformed value spec")
    kind = spec.get("kind")
    if kind == "tensor":
        key = spec.get("key")
        if not isinstance(key, str) or key not in tensors:
            raise ProtocolError(f"value spec names a tensor that was not sent ({str(key)[:40]!r})")
        return tensors[key]
    if kind == "tuple":
        items = spec.get("items")
        if not isinstance(items, list):
            raise ProtocolError("malformed tuple spec")
        return tuple(decode(item, tensors, depth + 1) for item in items)
    if kind == "dict":
        items = spec.get("items")
        if (not isinstance(items, list) or len(items) > MAX_KEYS
                or not all(isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) and len(i[0]) <= MAX_KEY
                           for i in items)):
            raise ProtocolError("malformed dict spec")
        return {key: decode(item, tensors, depth + 1) for key, item in items}
    if kind == "none":
        return None
    if kind == "scalar":
        value = spec.get("value")
        if type(value) not in SCALARS:
            raise ProtocolError("malformed scalar spec")
        return clip(value) if isinstance(value, str) else value
    if kind == "other":
        return Foreign(clip(str(spec.get("type", "?")), 100), clip(str(spec.get("desc", "?")), 300))
    raise ProtocolError(f"unknown value kind {str(kind)[:40]!r}")


class ErrorInfo(dict):
    """An error object from the other side ({"kind", "type", "message", "detail"} and, for an exception the
    student's code raised, its own "text"); str() is its message."""

    def __str__(self) -> str:
        return str(self.get("message", ""))


ERROR_KINDS = ("missing", "raised", "banned", "load", "protocol")  # what a worker may report


def _error(raw: Any) -> ErrorInfo:
    """A well-formed ErrorInfo from whatever the frame carried: strings clipped, unknown kinds 'raised'."""
    fields = raw if isinstance(raw, dict) else {"kind": "protocol", "type": "Error", "message": raw}
    kind = fields.get("kind")
    error = ErrorInfo(kind=kind if kind in ERROR_KINDS else "raised",
                      type=clip(str(fields.get("type", "Error")), 100),
                      message=clip(str(fields.get("message", "failed"))),
                      detail=clip(str(fields.get("detail", "")), 2 * MAX_TEXT))
    if "text" in fields:
        error["text"] = clip(str(fields["text"]))
    return error


def check_frame(header: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """Refuse (ProtocolError) a frame whose value specs do not decode; normalize its error object.

    After this, decode() of any VALUE_FIELDS entry cannot fail, and header["error"] (when present) is an
    ErrorInfo whose strings are clipped to MAX_TEXT.
    """
    for name in VALUE_FIELDS:
        if name not in header:
            continue
        value = header[name]
        if name in LIST_FIELDS:
            if not isinstance(value, list):
                raise ProtocolError(f"{name} is not a list")
            decode_values(value, tensors)
        else:
            decode(value, tensors)
    for name in ("functions", "layers"):  # the worker's hello and load headers: lists of names
        if name in header and not (isinstance(header[name], list) and len(header[name]) <= MAX_NAMES
                                   and all(isinstance(v, str) and len(v) <= MAX_NAME for v in header[name])):
            raise ProtocolError(f"{name} is not a list of names")
    if "ok" in header:
        header["ok"] = header["ok"] is True
    if "error" in header:
        header["error"] = _error(header["error"])
    return header


def pack(header: Dict[str, Any], blob: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return _LEN.pack(len(head)) + head + _LEN.pack(len(blob)) + blob


def unpack_blob(blob: bytes) -> Dict[str, torch.Tensor]:
    if not blob:
        return {}
    try:
        tensors = st_load(blob)
    except Exception as exc:  # a malformed blob is the sender's fault, never ours to crash on
        raise ProtocolError(f"malformed tensor data: {exc}") from exc
    if not all(type(t) is torch.Tensor for t in tensors.values()):
        raise ProtocolError("malformed tensor data")
    return tensors


def _recv_exact(sock: socket.socket, size: int, deadline: Optional[float]) -> bytes:
    """size bytes; with a deadline (time.monotonic()), socket.timeout once it passes, however the bytes trickle."""
    chunks: List[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            sock.settimeout(left)
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _discard(sock: socket.socket, size: int, deadline: Optional[float]) -> bool:
    """Read and drop `size` bytes (1 MiB at a time): the stream stays in step without holding the data.
    False when the bytes do not come before the deadline or the peer goes away."""
    try:
        while size:
            size -= len(_recv_exact(sock, min(size, 1 << 20), deadline))
    except (socket.timeout, ProtocolError, OSError):
        return False
    return True


_SEQ = itertools.count(1)
# socket -> what its last request needs in the reply: {"seq", "op", "echo"}
_PENDING: "weakref.WeakKeyDictionary[socket.socket, Dict[str, Any]]" = weakref.WeakKeyDictionary()


def send(sock: socket.socket, header: Dict[str, Any], blob: bytes = b"") -> None:
    """Send one frame. A request (a header with "op", but "close") is numbered, and the next recv on this
    socket accepts only the reply to it."""
    if "op" in header and header.get("op") != "close":
        header = dict(header, seq=next(_SEQ))
        _PENDING[sock] = {"seq": header["seq"], "op": header["op"], "echo": bool(header.get("echo"))}
    else:
        _PENDING.pop(sock, None)
    sock.sendall(pack(header, blob))


def reply_to(request: Dict[str, Any], reply: Dict[str, Any]) -> Dict[str, Any]:
    """The reply header for `request` (the worker's side of the numbering)."""
    return dict(reply, reply_to=request.get("seq"))


def _check_reply(header: Dict[str, Any], request: Dict[str, Any]) -> None:
    if header.get("reply_to") != request["seq"]:
        raise ProtocolError("a frame that does not answer the request (slipped into the stream, or late)")
    if header.get("ok") is True:
        needed = ["result"] + (["grads"] if request["op"] == "vjp" else []) + (["args_after"] if request["echo"] else [])
        missing = [name for name in needed if name not in header]
        if missing:
            raise ProtocolError(f"a reply without {', '.join(missing)}")


def recv(sock: socket.socket, *, max_header: int = MAX_HEADER,
         max_blob: int = MAX_BLOB) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """Read one frame: (header, tensors). Raises ProtocolError on a bad, oversized or closed stream.

    The socket's timeout (if any) bounds the whole frame, not each read: a peer that sends one byte at
    a time cannot hold the caller longer (socket.timeout, as for a silent peer). The timeout is restored.
    """
    timeout = sock.gettimeout()
    deadline = None if timeout is None else time.monotonic() + timeout
    request = _PENDING.pop(sock, None)  # popped first: a wait cut short leaves nothing to match later
    try:
        (head_len,) = _LEN.unpack(_recv_exact(sock, _LEN.size, deadline))
        if head_len > max_header:
            raise ProtocolError(f"header too large ({head_len} bytes)")
        try:
            header = json.loads(_recv_exact(sock, head_len, deadline))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ProtocolError(f"malformed header: {str(exc)[:200]}") from None
        if not isinstance(header, dict):
            raise ProtocolError("header is not an object")
        (blob_len,) = _LEN.unpack(_recv_exact(sock, _LEN.size, deadline))
        if blob_len > max_blob:  # read past it in small chunks, keeping none, when that is cheap
            drained = blob_len <= MAX_BLOB and _discard(sock, blob_len, deadline)
            raise ReplyTooLarge(blob_len, max_blob, drained)
        tensors = unpack_blob(_recv_exact(sock, blob_len, deadline))
    finally:
        if deadline is not None:
            try:
                sock.settimeout(timeout)
            except OSError:  # closed meanwhile
                pass
    if request is not None:
        _check_reply(header, request)
    return check_frame(header, tensors), tensors


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
