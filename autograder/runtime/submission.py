"""The one seam through which every check reaches student code.

`Submission` runs the student's file in a worker process (default) or in-process (`--no-sandbox`, for
breakpoints); both backends speak the same wire format (`autograder.runtime.protocol`), so only plain tensors
ever come back. Errors in student code become `SubmissionError`s with a student-facing message.

A worker comes from the fork-server when one runs for this grading process (`autograder.runtime.forkserver`,
started by batch grading: milliseconds a worker), else from a fresh interpreter (`python -m
autograder.runtime.worker`, ~0.7 s: cheaper than starting a fork-server for one submission).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Protocol, Sequence, Tuple, Union

import torch

from autograder.feedback import Diagnosable
from autograder.runtime import forkserver, protocol
from autograder.runtime.worker import Runner, is_time_limit

ERROR_KINDS = ("missing", "raised", "banned", "load", "timeout", "crashed", "protocol", "invalid")


class CallInterrupted(BaseException):
    """A check's time limit (pytest-timeout) fired while a call into student code was in flight.

    A BaseException, like the KeyboardInterrupt it resembles: hypothesis lets it through instead of
    replaying the example (which would call a restarted worker and report the check as nondeterministic).
    The interrupted worker is already stopped; the next call starts a fresh one, so its late reply is
    never read as the answer to another request.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SubmissionError(Diagnosable, Exception):
    """Student code could not give an answer: missing, raised, banned API, hung, crashed, unloadable.

    For kind "raised", `raised` is (exception type name, its message) as the student's code raised it: a
    classic mistake can raise too (Q @ K on non-square K), and the diagnosis matches the error itself.
    """

    def __init__(self, kind: str, message: str, detail: str = "",
                 raised: Optional[Tuple[str, str]] = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.detail, self.raised = kind, message, detail, raised


def answer_paths() -> Tuple[str, ...]:
    """Folders that hold right answers: a worker's sandbox keeps them unreadable."""
    import reference

    return tuple(str(Path(p).resolve()) for p in reference.__path__)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def precheck(path: Path) -> Optional[SubmissionError]:
    """Problems found without running anything: not a file, not .py, empty, undecodable, syntax error."""
    path = Path(path)
    if not path.exists():
        return SubmissionError("invalid", f"{path} does not exist")
    if path.is_dir():
        return SubmissionError("invalid", f"{path} is a directory; give the path of your .py file")
    if path.suffix != ".py":
        return SubmissionError("invalid", f"{path.name} is not a Python file (.py): save your code in a .py file")
    raw = path.read_bytes()
    if not raw.strip():
        return SubmissionError("load", f"{path.name} is empty: start from the assignment's template in "
                               "student_submissions/")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return SubmissionError("load", f"{path.name} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#x}): "
                               "save it with UTF-8 encoding")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        return SubmissionError("load", f"{path.name} has a syntax error at line {exc.lineno}: {exc.msg}"
                               + (f"\n    {line}" if line else ""))
    except ValueError as exc:  # e.g. source with null bytes
        return SubmissionError("load", f"{path.name} cannot be compiled: {exc}")
    return None


class _OutputDrain:
    """Reads a worker's stdout+stderr continuously, keeping the first `limit` bytes."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.limit, self.kept, self.dropped = limit, bytearray(), 0
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for chunk in iter(lambda: stream.read1(1 << 16), b""):
            room = self.limit - len(self.kept)
            self.kept += chunk[:max(room, 0)]
            self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        self._thread.join(timeout=1)
        out = self.kept.decode("utf-8", "replace")
        return out + (f"\n... ({self.dropped} more bytes of output dropped)" if self.dropped else "")


class _Process(Protocol):
    def stop(self) -> Optional[int]:
        """Kill the worker and everything it started; its exit code if it had ended by itself, else None."""


class _SpawnedProcess:
    """A worker in a fresh interpreter; it leads its own process group."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def stop(self) -> Optional[int]:
        code = self.proc.poll()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        return code


def _spawn(path: Path, settings: Dict[str, Any]) -> Tuple[socket.socket, _Process, BinaryIO]:
    """Start `python -m autograder.runtime.worker`: (our end of its socket, the process, its stdout+stderr)."""
    ours, theirs = socket.socketpair()
    with theirs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.runtime.worker", "--fd", str(theirs.fileno()), "--submission", str(path),
             "--policy", json.dumps(settings)],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=settings["workdir"], env=forkserver.clean_environment(),
            start_new_session=True)
    assert proc.stdout is not None
    return ours, _SpawnedProcess(proc), proc.stdout


def launch(path: Path, settings: Dict[str, Any]) -> Tuple[socket.socket, _Process, BinaryIO]:
    """A worker for `path` from this process's fork-server, or a spawned one when none runs (or it failed)."""
    server = forkserver.connection()
    if server is not None:
        try:
            return server.launch(path, settings)
        except forkserver.ForkServerError:
            pass  # the fork-server is gone: a fresh interpreter still grades correctly, only slower
    return _spawn(path, settings)


@dataclass
class _Worker:
    process: _Process
    sock: socket.socket
    drain: _OutputDrain
    workdir: str
    layers: List[str] = field(default_factory=list)


class Submission:
    """A student's file, reachable only through calls that return plain tensors.

    `call(name, *args)` calls a contract function or a composed op (theirs, or built from their other
    functions as `contract` says: `Assignment.wire()`); `vjp(...)` their gradients. A function that timed
    out or crashed fails fast from then on, so a hang costs its time limit once.
    """

    def __init__(self, path: Path, *, sandbox: bool = True, banned: Sequence[str] = (),
                 call_timeout: float = 10.0, import_timeout: float = 20.0, output_limit: int = 64 * 1024,
                 limits: Optional[Dict[str, Any]] = None, hidden: Sequence[str] = (),
                 contract: Optional[Dict[str, Any]] = None) -> None:
        self.path = Path(path).resolve()
        self.contract: Dict[str, Any] = dict(contract or {"functions": [], "compositions": {}})
        self.sandbox, self.banned = sandbox, tuple(banned)
        self.call_timeout, self.import_timeout, self.output_limit = call_timeout, import_timeout, output_limit
        self.limits, self.hidden = dict(limits or {}), tuple(hidden)
        self.sha256 = sha256_of(self.path) if self.path.is_file() else None
        self.functions: Tuple[str, ...] = ()
        self.layers: List[str] = []
        self.calls = 0
        self._outputs: List[str] = []
        self._dead: Dict[str, SubmissionError] = {}
        self._worker: Optional[_Worker] = None
        self._runner: Optional[Runner] = None
        self.load_error: Optional[SubmissionError] = precheck(self.path)
        if self.load_error is None:
            self._start()

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self) -> None:
        if not self.sandbox:
            self._runner = Runner(self.path, self.banned, self.contract, in_process=True)
            self._loaded(self._runner.load())
            return
        workdir = tempfile.mkdtemp(prefix="autograder-work-")
        settings = {"banned": list(self.banned), "workdir": workdir, "limits": self.limits,
                    "hidden": list(self.hidden), "contract": self.contract}
        parent, process, output = launch(self.path, settings)
        self._worker = _Worker(process, parent, _OutputDrain(output, self.output_limit), workdir)
        try:
            parent.settimeout(self.import_timeout)
            hello, _ = protocol.recv(parent)
            if not hello.get("ok"):
                self._stop()
                raise RuntimeError(str(hello.get("error")))
            self._worker.layers = self.layers = list(hello.get("layers", []))
            loaded, _ = protocol.recv(parent)
        except (socket.timeout, protocol.ProtocolError, OSError) as exc:
            status = self._stop()
            what = "did not finish importing" if isinstance(exc, socket.timeout) else "ended the worker process"
            self.load_error = SubmissionError("load", f"{self.path.name} {what} while being imported{status}")
            return
        except BaseException:  # interrupted while it starts: its greeting must never be read as a reply
            self._stop()
            raise
        self._loaded(loaded)

    def _loaded(self, header: Dict[str, Any]) -> None:
        if header.get("ok"):
            self.functions = tuple(header.get("functions", ()))
        else:
            err = header.get("error", {})
            self.load_error = SubmissionError("load", str(err.get("message")), str(err.get("detail", "")))

    def _stop(self) -> str:
        """End the worker and its whole process group; returns how it ended, for messages."""
        worker, self._worker = self._worker, None
        if worker is None:
            return ""
        worker.sock.close()
        code = worker.process.stop()
        self._outputs.append(worker.drain.text())
        shutil.rmtree(worker.workdir, ignore_errors=True)
        if code is None or code == 0:
            return ""
        if code < 0:
            return f" (killed by {signal.Signals(-code).name})"
        return f" (exit code {code})"

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> "Submission":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def output(self) -> str:
        """Everything the student's code printed so far (truncated to the output limit per worker)."""
        return "".join(self._outputs)

    # -- calls ---------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.functions

    def missing(self, fn: str) -> Optional[str]:
        """The contract function that `fn` needs and the file lacks (None when all are there)."""
        composition = self.contract["compositions"].get(fn)
        if composition is not None:
            if composition["own"] in self.functions:
                return None
            parts = dict.fromkeys(step[0] for step in composition["steps"])
            return next((n for n in parts if n not in self.functions), None)
        return None if fn in self.functions else fn

    def _request(self, header: Dict[str, Any], values: List[Any], expected_bytes: Optional[int] = None
                 ) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
        """Send one request and read its reply; a reply announcing more tensor data than `expected_bytes`
        allows (`protocol.reply_budget`; MAX_BLOB when unknown) is refused before any of it is read."""
        fn = header["fn"]
        budget = protocol.MAX_BLOB if expected_bytes is None else protocol.reply_budget(expected_bytes)
        if self.load_error is not None:
            raise self.load_error
        if fn in self._dead:
            raise self._dead[fn]
        absent = self.missing(fn)
        if absent:
            raise SubmissionError("missing", f"{absent} is not defined in your file")
        enc = protocol.Encoder()
        header = dict(header, args=[enc.add(v) for v in values],
                      cotangents=[enc.add(c) for c in header.get("cotangents", [])])
        blob = enc.blob()
        self.calls += 1
        if self._runner is not None:  # in-process: same encoding, no socket
            start = time.monotonic()
            try:
                reply, out_blob = self._runner.handle(header, protocol.unpack_blob(blob))
            except BaseException as exc:  # only the grader's own interruptions get through handle()
                if is_time_limit(exc):
                    raise self._interrupted(fn, start) from None
                raise
            if len(out_blob) > budget:
                raise self._too_large(fn, len(out_blob), expected_bytes)
            return self._check(fn, reply, protocol.unpack_blob(out_blob))
        if self._worker is None:
            self._start()
            if self.load_error is not None:
                raise self.load_error
        assert self._worker is not None
        sock = self._worker.sock
        start = time.monotonic()
        try:
            sock.settimeout(self.call_timeout)
            protocol.send(sock, header, blob)
            reply, tensors = protocol.recv(sock, max_blob=budget)
        except protocol.ReplyTooLarge as exc:  # refused unread; not drained: a fresh worker next time
            if not exc.drained:
                self._stop()
            raise self._too_large(fn, exc.size, expected_bytes) from None
        except socket.timeout:
            self._stop()
            error = SubmissionError("timeout", f"{self._label(fn)} did not return within {self.call_timeout:g} s "
                                    "(an infinite loop, or far too slow?)")
            self._dead[fn] = error
            raise error from None
        except (protocol.ProtocolError, OSError):
            status = self._stop()
            error = SubmissionError("crashed", f"{self._label(fn)} ended the Python process{status} after "
                                    f"{time.monotonic() - start:.1f} s (sys.exit, os._exit, a segfault or "
                                    "running out of memory?)")
            self._dead[fn] = error
            raise error from None
        except BaseException as exc:  # interrupted mid-call (a check's time limit, Ctrl-C): the worker is
            self._stop()              # still busy with a request nobody waits for; never read its reply
            if not is_time_limit(exc):
                raise
            error = self._interrupted(fn, start)
            self._start()  # now, on the interrupted check's time: the next check starts with a ready worker
            raise error from None
        return self._check(fn, reply, tensors)

    def _interrupted(self, fn: str, start: float) -> CallInterrupted:
        return CallInterrupted(f"{self._label(fn)} was still running when the check's time limit ran out "
                               f"({time.monotonic() - start:.1f} s into the call)")

    def _too_large(self, fn: str, size: int, expected_bytes: Optional[int]) -> SubmissionError:
        expected = "" if expected_bytes is None else f" where its answer takes {expected_bytes / 2**20:.2f} MiB"
        return SubmissionError("invalid", f"{self._label(fn)} answered with {size / 2**20:.1f} MiB of tensor "
                               f"data{expected}: a tensor far larger than the contract's shapes (check how your "
                               "tensors broadcast)")

    def _label(self, fn: str) -> str:
        composition = self.contract["compositions"].get(fn)
        return str(composition.get("label", fn)) if composition else fn

    @staticmethod
    def _check(fn: str, reply: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
        if not reply.get("ok"):
            err = reply.get("error", {})
            raised = (str(err["type"]), str(err["text"])) if "text" in err else None
            raise SubmissionError(str(err.get("kind", "raised")), str(err.get("message", "failed")),
                                  str(err.get("detail", "")), raised)
        return reply, tensors

    def call(self, name: str, *args: Any, expect: Any = None) -> Any:
        """Call a contract function; returns its value (tensors, tuples, or `protocol.Foreign`). `expect`: a
        value shaped like the right answer (tensors or a tuple), which bounds the reply's size."""
        reply, tensors = self._request({"op": "call", "fn": name}, list(args),
                                       None if expect is None else protocol.nbytes(expect))
        return protocol.decode(reply["result"], tensors)

    def call_echo(self, name: str, *args: Any, expect: Any = None) -> Tuple[Any, List[Any]]:
        """Like `call`, and also returns the arguments as the student's code left them."""
        reply, tensors = self._request({"op": "call", "fn": name, "echo": True}, list(args),
                                       None if expect is None else protocol.nbytes(expect) + protocol.nbytes(args))
        return protocol.decode(reply["result"], tensors), protocol.decode_values(reply["args_after"], tensors)

    def vjp(self, name: str, args: Sequence[Any], wrt: Sequence[Union[int, Tuple[int, str]]],
            cotangents: Sequence[Optional[torch.Tensor]]) -> Tuple[Any, List[Any]]:
        """Call `name` on args and pull `cotangents` (one per output) back to args[wrt]; an entry of wrt is an
        argument's index, or (index, key) for one tensor of a dict argument (args[index][key]).

        Returns (outputs, grads); a grad is None where the student's output does not depend on that input
        through autograd (detached, numpy round-trip, new tensor).
        """
        targets = [list(w) if isinstance(w, tuple) else w for w in wrt]
        inputs = [args[w[0]][w[1]] if isinstance(w, tuple) else args[w] for w in wrt]
        expected = protocol.nbytes(list(cotangents)) + protocol.nbytes(inputs)  # the outputs and the grads
        reply, tensors = self._request({"op": "vjp", "fn": name, "wrt": targets, "cotangents": list(cotangents)},
                                       list(args), expected)
        grads = protocol.decode_values(reply["grads"], tensors)
        if len(grads) != len(inputs) or not all(_fits(g, x) for g, x in zip(grads, inputs)):
            got = ", ".join("None" if g is None else f"{list(g.shape)} {g.dtype}" if type(g) is torch.Tensor
                            else protocol.describe(g) for g in grads[:len(inputs) + 1])
            want = ", ".join(f"{list(x.shape)} {x.dtype}" for x in inputs)
            raise SubmissionError("invalid", protocol.clip(f"the gradients of {self._label(name)} came back as "
                                                           f"[{got}]; autograd gives one per input: [{want}]"))
        return protocol.decode(reply["result"], tensors), grads


def _fits(grad: Any, x: Any) -> bool:
    """A gradient is None (the output does not depend on x) or a plain tensor of x's very shape and dtype:
    checked before any arithmetic, so a forged [N, 1, ..., 1] one cannot broadcast to gigabytes."""
    return grad is None or (type(grad) is torch.Tensor and type(x) is torch.Tensor and grad.shape == x.shape
                            and grad.dtype == x.dtype)
