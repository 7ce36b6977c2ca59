"""The one seam through which every check reaches student code.

`Submission` runs the student's file in a worker process (default) or in-process (`--no-sandbox`, for
breakpoints); both backends speak the same wire format (`autograder.runtime.protocol`), so only plain tensors
ever come back. Errors in student code become `SubmissionError`s with a student-facing message.

Workers are started by `autograder.runtime.launcher` (a fork-server's child, or a fresh interpreter).
"""
from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from autograder.feedback import Diagnosable
from autograder.runtime import notebook, protocol
from autograder.runtime.launcher import Launched, Process, outside, start_worker
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


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def precheck(path: Path, folder: Path) -> Optional[SubmissionError]:
    """Problems found without running anything: a symbolic link out of `folder` (the folder the course
    staff named), not a file, not .py or .ipynb, empty, undecodable, not a notebook, a syntax error (in a
    notebook: which code cell, which line of it).

    A submission that links to a file outside that folder (a TA's solution, another course's file) is
    refused before anything reads it; a link to a classmate's file inside it is graded (and the batch
    summary lists the two as identical)."""
    path = Path(path)
    if outside(path, folder):
        return SubmissionError("invalid", f"{path.name} is a symbolic link to a file outside the folder being "
                               "graded: it was not read (submit the file itself)")
    if not path.exists():
        return SubmissionError("invalid", f"{path} does not exist")
    if path.is_dir():
        return SubmissionError("invalid", f"{path} is a directory; give the path of your .py or .ipynb file")
    if path.suffix not in notebook.SUFFIXES:
        return SubmissionError("invalid", f"{path.name} is not a Python file (.py) or a Jupyter notebook (.ipynb): "
                               "save your code in a .py file or a notebook")
    raw = path.read_bytes()
    if not raw.strip():
        return SubmissionError("load", f"{path.name} is empty: start from the assignment's template in "
                               "student_submissions/")
    try:
        source = notebook.module_source(path, raw)
    except UnicodeDecodeError as exc:
        return SubmissionError("load", f"{path.name} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#x}): "
                               "save it with UTF-8 encoding")
    except notebook.NotebookError as exc:
        return SubmissionError("load", f"{path.name} {exc}: save it again from Jupyter")
    if not source.text.strip():
        return SubmissionError("load", f"{path.name} has no code: its code cells are empty")
    try:
        for _ in notebook.compile_cells(source, str(path)):
            pass
    except notebook.CellSyntaxError as exc:
        line = (exc.text or "").rstrip()
        return SubmissionError("load", f"{path.name} has a syntax error at {exc.where}: {exc.msg}"
                               + (f"\n    {line}" if line else ""))
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; nesting too deep for the compiler
        return SubmissionError("load", f"{path.name} cannot be compiled: {type(exc).__name__}: {exc}")
    return None


def _cell_number(value: Any) -> Optional[int]:
    """The cell number in a worker's {"cell": n} (which the student's code could forge: only a number)."""
    cell = value.get("cell") if isinstance(value, dict) else None
    return cell if type(cell) is int and 0 < cell < 1_000_000 else None


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


class _Tee:
    """sys.stdout and sys.stderr while in-process student code runs (--no-sandbox): each write is shown
    at once through `live` (print-debugging) and kept for the report, up to `limit` characters."""

    def __init__(self, live: Optional[Callable[[str], Any]], kept: List[str], limit: int) -> None:
        self.live, self.kept, self.room = live, kept, limit

    def write(self, text: str) -> int:
        text = str(text)
        if self.live is not None:
            self.live(text)
        if self.room > 0:
            self.kept.append(text[:self.room])
            self.room -= len(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@dataclass
class _Worker:
    process: Process
    sock: socket.socket
    drain: _OutputDrain
    workdir: str
    layers: List[str] = field(default_factory=list)


class Submission:
    """A student's file, reachable only through calls that return plain tensors.

    `folder` is the folder the course staff named (default: the file's own): a file that is a symbolic
    link to a file outside it is refused unread (`precheck`). `call(name, *args)` calls a contract function
    or a composed op (theirs, or built from their other functions as `contract` says: `Assignment.wire()`);
    `vjp(...)` their gradients. A function that timed out or crashed fails fast from then on, so a hang
    costs its time limit once.
    """

    def __init__(self, path: Path, *, sandbox: bool = True, banned: Sequence[str] = (),
                 call_timeout: float = 10.0, import_timeout: float = 20.0, output_limit: int = 64 * 1024,
                 limits: Optional[Dict[str, Any]] = None, hidden: Sequence[str] = (),
                 contract: Optional[Dict[str, Any]] = None, folder: Optional[Path] = None,
                 live: Optional[Callable[[str], Any]] = None, launched: Optional[Launched] = None) -> None:
        """folder: the folder the course staff named (a symbolic link out of it is refused; default: the
        file's own). live: in-process only (sandbox=False), where the student's prints go as they happen (the
        report keeps them too). launched: the worker `launcher.start_worker` already started for this
        file with these settings (the grader starts it before importing torch)."""
        folder = Path(path).absolute().parent if folder is None else Path(folder)
        self.load_error: Optional[SubmissionError] = precheck(path, folder)  # before anything reads the file
        self.path = Path(path).resolve()
        self.live, self._launched = live, launched
        self.contract: Dict[str, Any] = dict(contract or {"functions": [], "compositions": {}})
        self.sandbox, self.banned = sandbox, tuple(banned)
        self.call_timeout, self.import_timeout, self.output_limit = call_timeout, import_timeout, output_limit
        self.limits, self.hidden = dict(limits or {}), tuple(hidden)
        self.sha256 = sha256_of(self.path) if self.path.is_file() and not outside(path, folder) else None
        self.functions: Tuple[str, ...] = ()
        self.layers: List[str] = []
        self.calls = 0
        self._outputs: List[str] = []
        self._output_room = output_limit  # bytes of output still kept, over every worker this file starts
        self._dead: Dict[str, SubmissionError] = {}
        self._worker: Optional[_Worker] = None
        self._runner: Optional[Runner] = None
        if self.load_error is None:
            self._start()
        elif launched is not None:  # started before the file was checked: never greeted, ended here
            launched.stop()

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self) -> None:
        if not self.sandbox:
            self._runner = Runner(self.path, self.banned, self.contract, in_process=True)
            with self._printing():
                self._loaded(self._runner.load())
            return
        launched, self._launched = self._launched, None
        if launched is None or launched.path != self.path:
            launched = start_worker(self.path, banned=self.banned, limits=self.limits, hidden=self.hidden,
                                    contract=self.contract)
        parent = launched.sock
        running: Optional[int] = None  # the notebook's code cell the worker last said it runs
        self._worker = _Worker(launched.process, parent, _OutputDrain(launched.output, self._output_room),
                               launched.workdir)
        try:
            parent.settimeout(self.import_timeout)
            hello, _ = protocol.recv(parent)
            if not hello.get("ok"):
                self._stop()
                raise RuntimeError(str(hello.get("error")))
            self._worker.layers = self.layers = list(hello.get("layers", []))
            deadline = time.monotonic() + self.import_timeout
            while True:  # a notebook's worker says which code cell it runs before each one
                parent.settimeout(max(deadline - time.monotonic(), 1e-3))
                loaded, _ = protocol.recv(parent)
                if "running" not in loaded:
                    break
                running = _cell_number(loaded["running"])
        except (socket.timeout, protocol.ProtocolError, OSError) as exc:
            status = self._stop()
            cell = f" (code cell {running} was running)" if running else ""
            if isinstance(exc, socket.timeout):
                message = (f"{self.path.name} did not finish importing within {self.import_timeout:g} s{cell}{status}: "
                           "code that trains, plots or sleeps belongs under `if __name__ == \"__main__\":`, "
                           "which Jupyter runs and grading skips")
            else:
                message = f"{self.path.name} ended the worker process while being imported{cell}{status}"
            self.load_error = SubmissionError("load", message)
            return
        except BaseException:  # interrupted while it starts: its greeting must never be read as a reply
            self._stop()
            raise
        self._loaded(loaded)

    def _loaded(self, header: Dict[str, Any]) -> None:
        if header.get("ok"):  # the contract's names only, whatever a forged header lists
            listed = set(header.get("functions", ()))
            self.functions = tuple(n for n in self.contract["functions"] if n in listed)
        else:
            err = header.get("error", {})
            self.load_error = SubmissionError("load", str(err.get("message")), str(err.get("detail", "")))

    @contextmanager
    def _printing(self) -> Iterator[None]:
        """In-process student code prints through a `_Tee` (shown live, kept for the report)."""
        kept: List[str] = []
        tee = _Tee(self.live, kept, self.output_limit - len(self.output))
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = tee  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
            self._outputs.append("".join(kept))

    def _stop(self) -> str:
        """End the worker and its whole process group; returns how it ended, for messages."""
        worker, self._worker = self._worker, None
        if worker is None:
            return ""
        worker.sock.close()
        code = worker.process.stop()
        self._outputs.append(worker.drain.text())
        self._output_room = max(self._output_room - len(worker.drain.kept), 0)
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
        """What the student's code printed so far: the first `output_limit` bytes over all its workers (a
        worker restarted after a crash or a time limit does not bring another limit's worth)."""
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
                with self._printing():
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
