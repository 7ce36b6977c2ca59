"""Starting a sandboxed worker, without torch: the grader launches its worker first, so that the worker's
interpreter imports torch while the grader imports its own (two cores, one cold `pytest --submission`).

A worker comes from the fork-server when one runs for this grading process (`autograder.runtime.forkserver`,
started by batch grading: milliseconds a worker), else from a fresh interpreter (`python -m
autograder.runtime.worker`, ~0.7 s: cheaper than starting a fork-server for one submission).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, Optional, Protocol, Sequence, Tuple

from autograder.runtime import forkserver


def answer_paths() -> Tuple[str, ...]:
    """Folders that hold right answers: a worker's sandbox keeps them unreadable."""
    import reference

    return tuple(str(Path(p).resolve()) for p in reference.__path__)


def outside(path: Path, folder: Path) -> bool:
    """Whether `path`, its symbolic links followed, ends outside `folder` (also followed)."""
    return not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


class Process(Protocol):
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


def _spawn(path: Path, settings: Dict[str, Any]) -> Tuple[socket.socket, Process, BinaryIO]:
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


def launch(path: Path, settings: Dict[str, Any]) -> Tuple[socket.socket, Process, BinaryIO]:
    """A worker for `path` from this process's fork-server, or a spawned one when none runs (or it failed)."""
    server = forkserver.connection()
    if server is not None:
        try:
            return server.launch(path, settings)
        except forkserver.ForkServerError:
            pass  # the fork-server is gone: a fresh interpreter still grades correctly, only slower
    return _spawn(path, settings)


@dataclass
class Launched:
    """A worker started for one file, not yet greeted: `Submission(..., launched=...)` takes it over."""
    path: Path
    sock: socket.socket
    process: Process
    output: BinaryIO
    workdir: str

    def stop(self) -> None:
        """End a worker that will not be used, and remove its workdir."""
        self.sock.close()
        self.process.stop()
        self.output.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_worker(path: Path, *, banned: Sequence[str], limits: Dict[str, Any], hidden: Sequence[str],
                 contract: Dict[str, Any]) -> Launched:
    """Launch the sandboxed worker of `path` (in a fresh private workdir) and return at once."""
    workdir = tempfile.mkdtemp(prefix="autograder-work-")
    settings = {"banned": list(banned), "workdir": workdir, "limits": dict(limits), "hidden": list(hidden),
                "contract": contract}
    sock, process, output = launch(Path(path), settings)
    return Launched(Path(path), sock, process, output, workdir)
