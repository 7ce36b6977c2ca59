"""The student side of the seam: imports one submission and answers call requests.

`Runner` holds the student's module and turns each request into a call of their code; it never sees a
reference result. `serve` runs a Runner over a socket (one worker process per submission, see
`autograder.runtime.submission`); `python -m autograder.runtime.worker` is that process's entry point.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import linecache
import os
import socket
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

import torch

from autograder.runtime import notebook, protocol
from autograder.runtime.guards import BannedAPIError, ban_for_this_process, guarded

MODULE_NAME = "submission"
WORKDIR_MB = 64  # room for what a submission writes (matplotlib's cache, a scratch file), in memory


class LeftoverBreakpoint(RuntimeError):
    """A `breakpoint()` reached in a sandboxed worker, which has no terminal to debug in."""


def _no_breakpoint(*args: Any, **kwargs: Any) -> NoReturn:
    """sys.breakpointhook of a worker: fail the call at once and say where, instead of hanging in pdb."""
    line = sys._getframe(1).f_lineno  # the frame that called breakpoint()
    raise LeftoverBreakpoint(f"breakpoint() at line {line} of your file: remove it, or debug with --no-sandbox")


def _student_frames(exc: BaseException, path: str) -> List[traceback.FrameSummary]:
    """The traceback entries that point into the student's file, most recent last (at most 3)."""
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path][-3:]


def _text_of(exc: BaseException) -> str:
    """str(exc), which runs the student's __str__: it may raise, or return something that is not a str."""
    try:
        text = str(exc)
        return text if type(text) is str else "<not a str>"
    except BaseException:  # noqa: BLE001 - SystemExit from a hostile __str__ too: this is our error path
        return f"<{type(exc).__name__} object whose message cannot be shown>"


def _line(lineno: Optional[int]) -> str:
    return f"line {lineno}"


def _format_frames(frames: List[traceback.FrameSummary], where: Callable[[int], str]) -> str:
    """Like traceback.format_list, with each place named by `where` (a notebook's cell and line)."""
    return "".join(f'  File "{Path(f.filename).name}", {where(f.lineno or 0)}, in {f.name}\n'
                   + (f"    {f.line.strip()}\n" if f.line else "") for f in frames)


def error_header(exc: BaseException, path: str, fn: str, where: Callable[[int], str] = _line) -> Dict[str, Any]:
    """The reply for an exception of the student's code. Must not raise itself: it runs on the way out of
    a failed call, and whatever it calls (str(exc), the traceback's source lines) is the student's.
    `where` names a line of the module (`ModuleSource.where`: "code cell 3, line 2" in a notebook)."""
    kind = "banned" if isinstance(exc, BannedAPIError) else "raised"
    name = protocol.clip(type(exc).__name__, 100)
    try:
        frames = _student_frames(exc, path)
        detail = protocol.clip(_format_frames(frames, where))
        line = protocol.clip((frames[-1].line or "").strip(), 200) if frames else ""
        at = f" at {where(frames[-1].lineno or 0)} ({line})" if frames else ""
    except BaseException:  # noqa: BLE001 - a traceback the student tampered with
        detail, at = "", ""
    text = protocol.clip(_text_of(exc), protocol.ERROR_TEXT)
    return {
        "ok": False,
        "error": {
            "kind": kind,
            "type": name,
            "message": f"{fn} raised {name}: {text}{at}",
            "text": text,
            "detail": detail,
        },
    }


def is_time_limit(exc: BaseException) -> bool:
    """Whether `exc` is pytest-timeout's interruption of a check (pytest's Failed("Timeout >Ns")): the
    grader's own, not the student's exception, when it fires in student code run in-process."""
    return type(exc).__name__ == "Failed" and str(exc).startswith("Timeout")


class Runner:
    """Imports a submission and executes requests against it (student code runs only in here)."""

    def __init__(self, path: Path, banned: Sequence[str] = (), contract: Optional[Dict[str, Any]] = None,
                 in_process: bool = False) -> None:
        """contract: {"functions": [names], "compositions": {op: composition}} as `Assignment.wire()` gives
        it: which functions the grader may ask for, and how to build an op from others when the student
        did not write it (see `compose`). in_process: in the grader's process, whose own interruptions (a
        check's time limit) pass through the student's code."""
        self.path = Path(path).resolve()
        self.banned = tuple(banned)
        self.in_process = in_process
        contract = contract or {}
        self.contract_functions: Tuple[str, ...] = tuple(contract.get("functions", ()))
        self.compositions: Dict[str, Dict[str, Any]] = dict(contract.get("compositions", {}))
        self.module: Optional[ModuleType] = None
        self.source = notebook.ModuleSource((), notebook=False)  # what load() compiled
        self.stubs: set = set()  # own functions of composed ops that raised NotImplementedError: absent

    # -- loading -------------------------------------------------------------------------------
    def load(self, running: Callable[[int], None] = lambda cell: None) -> Dict[str, Any]:
        """Import the student's file, a notebook cell by cell (`running(n)` before code cell n runs, so
        that the grader can say which cell was running when the import limit ran out); the header lists
        the contract functions it defines.

        The file is compiled from its source (`autograder.runtime.notebook`), never from a __pycache__ next
        to it (which could hold other code than the source that was checked and hashed). Its folder is not
        put on sys.path: a submission is one file, and the sandbox grants that file only, not its folder
        (classmates' files, solutions).
        """
        name = self.path.name
        try:
            self.source = notebook.module_source(self.path, self.path.read_bytes())
        except (OSError, ValueError) as exc:  # precheck refuses these first; a file changed since then
            return {"ok": False, "error": {"kind": "load", "type": type(exc).__name__, "detail": "",
                                           "message": protocol.clip(f"cannot import {name}: {exc}")}}
        text = self.source.text  # tracebacks show the module's lines, not the notebook's JSON
        linecache.cache[str(self.path)] = (len(text), None, text.splitlines(True), str(self.path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(MODULE_NAME, loader=None))
        module.__file__ = str(self.path)
        module.__dict__.update(notebook.ipython_stand_ins(module.__dict__))
        try:
            with guarded(self.banned):
                for cell, code in notebook.compile_cells(self.source, str(self.path)):
                    if self.source.notebook:
                        running(cell.number)
                    exec(code, module.__dict__)  # noqa: S102 - running the student's module is the point
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the student's import failed
            header = error_header(exc, str(self.path), f"importing {name}", self.source.where)
            header["error"]["kind"] = "load"
            return header
        self.module = module
        names = [n for n in self.contract_functions if callable(getattr(module, n, None))]
        return {"ok": True, "functions": names}

    # -- calls ---------------------------------------------------------------------------------
    def _function(self, name: str) -> Callable[..., Any]:
        if name in self.compositions:
            return self._composed(self.compositions[name])
        fn = getattr(self.module, name, None)
        if not callable(fn):
            raise LookupError(name)
        return fn

    def _composed(self, composition: Dict[str, Any]) -> Callable[..., Any]:
        """The student's own function for a composed op, else its steps over their other functions.

        An own function that raises NotImplementedError (the template's stub, left as it is) counts as
        absent when the steps are all there: the op falls back on them from that call on."""
        own = getattr(self.module, composition["own"], None)
        if not callable(own) or composition["own"] in self.stubs:
            return compose(composition, {step[0]: self._function(step[0]) for step in composition["steps"]})
        try:
            steps = {step[0]: self._function(step[0]) for step in composition["steps"]}
        except LookupError:
            return own
        fallback = compose(composition, steps)

        def own_or_steps(*args: Any) -> Any:
            try:
                return own(*args)
            except NotImplementedError:
                self.stubs.add(composition["own"])
                return fallback(*args)

        return own_or_steps

    def handle(self, header: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Tuple[Dict[str, Any], bytes]:
        """Answer one request: {"op": "call"|"vjp", "fn": name, "args": [specs], ...}."""
        op, fn_name = header.get("op"), str(header.get("fn"))
        args = protocol.decode_values(header.get("args", []), tensors)
        try:
            fn = self._function(fn_name)
        except LookupError as exc:
            missing = exc.args[0]
            return {"ok": False, "error": {"kind": "missing", "type": "AttributeError", "detail": "",
                                           "message": f"{missing} is not defined in your file"}}, b""
        if op not in ("call", "vjp"):
            return {"ok": False, "error": {"kind": "protocol", "type": "ValueError", "detail": "",
                                           "message": f"unknown op {protocol.clip(str(op), 40)!r}"}}, b""
        try:
            with guarded(self.banned) as refusals:
                if op == "call":
                    answer = self._call(fn, args, bool(header.get("echo")))
                else:
                    answer = self._vjp(fn, args, header.get("wrt", []), header.get("cotangents", []), tensors)
            if refusals:  # the student's code caught a refusal and answered anyway: still a banned call
                raise BannedAPIError(refusals[0])
            return answer
        except BaseException as exc:  # the student's exception, whatever it is, is a graded result
            if self.in_process and is_time_limit(exc):  # a check's time limit fired in their code
                raise
            return error_header(exc, str(self.path), fn_name, self.source.where), b""

    @staticmethod
    def _call(fn: Callable[..., Any], args: List[Any], echo: bool) -> Tuple[Dict[str, Any], bytes]:
        result = fn(*args)
        enc = protocol.Encoder()
        out: Dict[str, Any] = {"ok": True, "result": enc.add(result)}
        if echo:  # the arguments as the student's code left them, to detect in-place mutation
            out["args_after"] = [enc.add(a) for a in args]
        return out, enc.blob()

    @staticmethod
    def _vjp(fn: Callable[..., Any], args: List[Any], wrt: Sequence[int], cotangent_specs: Sequence[Any],
             tensors: Dict[str, torch.Tensor]) -> Tuple[Dict[str, Any], bytes]:
        """Run fn with grad on args[wrt] and pull the cotangents back; a missing gradient comes back None.

        Grad mode is switched on: in-process (--no-sandbox) this runs inside autograd's backward, where it is off."""
        leaves = []
        for target in wrt:  # an argument's index, or [index, key] for one tensor of a dict argument
            if isinstance(target, list):
                index, key = target
                args[index] = dict(args[index])
                args[index][key] = leaf = args[index][key].detach().requires_grad_(True)
            else:
                args[target] = leaf = args[target].detach().requires_grad_(True)
            leaves.append(leaf)
        with torch.enable_grad():
            result = fn(*args)
        outputs = result if isinstance(result, tuple) else (result,)
        cotangents = protocol.decode_values(list(cotangent_specs), tensors)
        pairs = [(o, c) for o, c in zip(outputs, cotangents)
                 if c is not None and type(o) is torch.Tensor and o.requires_grad]
        grads: Sequence[Optional[torch.Tensor]] = [None] * len(wrt)
        if pairs:
            grads = torch.autograd.grad([o for o, _ in pairs], leaves, [c for _, c in pairs], allow_unused=True)
        enc = protocol.Encoder()
        out = {"ok": True, "result": enc.add(result), "grads": [enc.add(g) for g in grads]}
        return out, enc.blob()


def compose(composition: Dict[str, Any], functions: Dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    """A function of `composition["params"]` that runs its steps `[function, [input names], output name]`
    in order over `functions` and returns the values named in `returns` (one: bare; several: a tuple).
    Trailing parameters listed in `optional` default to None."""
    params, optional = list(composition["params"]), set(composition.get("optional", ()))
    required = len([p for p in params if p not in optional])

    def composed(*args: Any) -> Any:
        if not required <= len(args) <= len(params):
            raise TypeError(f"expected {required} to {len(params)} arguments ({', '.join(params)}), got {len(args)}")
        scope = dict(zip(params, list(args) + [None] * (len(params) - len(args))))
        for function, inputs, output in composition["steps"]:
            scope[output] = functions[function](*(scope[name] for name in inputs))
        values = tuple(scope[name] for name in composition["returns"])
        return values[0] if len(values) == 1 else values

    return composed


def serve(sock: socket.socket, runner: Runner) -> None:
    """Load the submission, report, then answer requests until the grader closes the socket."""
    protocol.send(sock, runner.load(lambda cell: protocol.send(sock, {"running": {"cell": cell}})))
    while True:
        try:
            header, tensors = protocol.recv(sock)
        except (protocol.ProtocolError, OSError):
            return
        if header.get("op") == "close":
            return
        try:
            reply, blob = runner.handle(header, tensors)
        except Exception as exc:  # noqa: BLE001 - ours (or a tampered worker): answer, do not die silently
            message = protocol.clip(f"the worker could not answer: {exc}", protocol.ERROR_TEXT)
            reply, blob = {"ok": False, "error": {"kind": "protocol", "type": type(exc).__name__, "detail": "",
                                                  "message": message}}, b""
        protocol.send(sock, protocol.reply_to(header, reply), blob)


def _harden(settings: Dict[str, Any], runner: Runner, fd: int) -> List[str]:
    """Apply the sandbox policy the grader sent; returns the active isolation layers."""
    if not settings.get("harden", True):
        return []
    from autograder.runtime import sandbox

    # the submission file only, never its folder: in a batch that folder holds every classmate's file;
    # what it writes goes to a private tmpfs over the workdir (WORKDIR_MB), not to the grader's disk
    limits = {"workdir_mb": WORKDIR_MB, **settings.get("limits", {})}
    policy = sandbox.Policy(**limits, readable=(str(runner.path),), hidden=tuple(settings.get("hidden", ())),
                            workdir=settings.get("workdir"))
    return sandbox.harden(policy, keep_fds=(fd, 1, 2))


def warm_torch() -> None:
    """Pay torch's one-time costs before the first request: operator dispatch, and the lazy import of sympy
    by the first backward of a broadcasting matmul (~0.3 s, else paid inside the first gradient check). The
    fork-server does it once for all its workers; a spawned worker does it while the grader still imports.
    One thread: no OpenMP pool is created, so forks inherit none."""
    torch.set_num_threads(1)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 3, 4, dtype=dtype, requires_grad=True)
        w = torch.randn(4, 4, dtype=dtype, requires_grad=True)
        q = x @ w  # [2, 3, 4] @ [4, 4]: broadcast over the batch
        causal = torch.ones(3, 3, dtype=torch.bool).tril()
        weights = torch.softmax((q @ x.transpose(-2, -1)).masked_fill(~causal, float("-inf")), dim=-1)
        out = torch.einsum("bij,bjd->bid", weights, x)
        torch.autograd.grad([out], [x, w], [torch.ones_like(out)])


def run(fd: int, submission: str, settings: Dict[str, Any]) -> NoReturn:
    """Be the worker for `submission` on the socket `fd`: harden, load, serve, exit. Shared by the spawned
    worker (`main`) and the fork-server's children (`autograder.runtime.forkserver`); stdout and stderr are the
    grader's output pipe by then."""
    torch.set_num_threads(1)
    sys.breakpointhook = _no_breakpoint
    os.environ["PYTHONBREAKPOINT"] = f"{__name__}._no_breakpoint"
    sock = socket.socket(fileno=fd)
    runner = Runner(Path(submission), settings.get("banned", ()), settings.get("contract"))
    try:
        layers = _harden(settings, runner, fd)
    except Exception as exc:  # our failure, not the student's: the grader reports it as internal
        protocol.send(sock, {"ok": False, "error": f"sandbox setup failed: {type(exc).__name__}: {exc}"})
        os._exit(70)
    ban_for_this_process(runner.banned)  # this process runs only student code from here on
    protocol.send(sock, {"ok": True, "layers": layers})
    serve(sock, runner)
    os._exit(0)  # never run student atexit handlers or flush their buffers into our pipes


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="autograder worker (started by the grader, not by hand)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--policy", default="{}")
    args = parser.parse_args(argv)
    warm_torch()
    run(args.fd, args.submission, json.loads(args.policy))


if __name__ == "__main__":
    main()
