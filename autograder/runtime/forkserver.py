"""A warm fork-server for sandboxed workers: a worker in milliseconds instead of a fresh interpreter (~0.7 s).

`python -m autograder.runtime.forkserver` is a separate interpreter that imports torch, `autograder.runtime.worker` and
`autograder.runtime.sandbox` once (never `reference`: a worker forked from a process holding right answers could
read them), prepares the sandbox, becomes a subreaper and then forks one worker per request. The child
runs exactly what a spawned worker runs (`autograder.runtime.worker.run`): one torch thread, harden, import the
submission, serve.

Grader side: `start()` launches the server for this grading process and everything it forks later;
`connection()` gives the calling process its own channel to it (or None: then `Submission` spawns
workers itself). The grader hands over the worker's socket end and its stdout pipe with SCM_RIGHTS.

Wire format, over an abstract-namespace SOCK_SEQPACKET socket, one JSON object per message:

    {"op": "fork", "submission": PATH, "settings": {...}} + [worker socket, stdout write end]
        -> {"ok": true, "pid": PID} | {"ok": false, "error": TEXT}
    {"op": "stop", "pid": PID} -> {"ok": true, "code": EXIT_CODE | null (it was still running)}

A worker is ended with `sandbox.kill_tree` before it is reaped; a connection's workers are stopped when
it closes (so killing a grading process takes its workers along), processes orphaned to the server are
killed, and the server exits with its workers when its starter's end of its stdin closes.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, NoReturn, Optional, Sequence, Set, Tuple

REPLY_TIMEOUT_S = 60.0  # covers the server's own start (~1.2 s, much longer on a loaded machine)
SWEEP_S = 1.0           # how often the server looks for orphaned processes
_MESSAGE_MAX = 1 << 16


class ForkServerError(RuntimeError):
    """The fork-server could not be reached or refused a request."""


def clean_environment() -> Dict[str, str]:
    """The environment a worker interpreter starts with: nothing secret, one thread, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "HOME")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


# -- grader side ---------------------------------------------------------------------------------

class RemoteWorker:
    """A worker forked by the fork-server; `stop()` matches `subprocess.Popen`-based stopping."""

    def __init__(self, channel: "Connection", pid: int) -> None:
        self.channel, self.pid = channel, pid

    def stop(self) -> Optional[int]:
        """Kill the worker's whole tree and reap it; its exit code if it had already ended, else None."""
        return self.channel.request({"op": "stop", "pid": self.pid}).get("code")


class Connection:
    """One process's channel to the fork-server (requests from several threads take turns)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sock.connect(address)
        self._lock = threading.Lock()

    def request(self, message: Dict[str, Any], fds: Sequence[int] = ()) -> Dict[str, Any]:
        with self._lock:
            try:
                socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
                data = self.sock.recv(_MESSAGE_MAX)
            except OSError as exc:  # socket.timeout included
                raise ForkServerError(f"fork-server unreachable: {exc}") from exc
        if not data:
            raise ForkServerError("fork-server closed the connection")
        reply = json.loads(data)
        if not reply.get("ok"):
            raise ForkServerError(str(reply.get("error")))
        return reply

    def launch(self, submission: Path, settings: Dict[str, Any]) -> Tuple[socket.socket, RemoteWorker, BinaryIO]:
        """Fork a worker for `submission`: (our end of its socket, the worker, its stdout+stderr stream)."""
        ours, theirs = socket.socketpair()
        read_fd, write_fd = os.pipe()
        try:
            reply = self.request({"op": "fork", "submission": str(submission), "settings": settings},
                                 (theirs.fileno(), write_fd))
        except ForkServerError:
            ours.close()
            os.close(read_fd)
            raise
        finally:
            theirs.close()
            os.close(write_fd)
        return ours, RemoteWorker(self, int(reply["pid"])), open(read_fd, "rb")


class ForkServer:
    """The server process, as seen by the process that started it (and inherited by its forks)."""

    def __init__(self, proc: subprocess.Popen, address: str) -> None:
        self.proc, self.address = proc, address
        self.owner = os.getpid()

    def close(self) -> None:
        """Close the server's stdin (it stops its workers and exits) and reap it."""
        if os.getpid() != self.owner:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_server: Optional[ForkServer] = None
_connection: Optional[Tuple[int, Connection]] = None  # (pid that opened it, channel): never shared by forks


def start() -> Optional[ForkServer]:
    """Start this process's fork-server unless one runs; None where workers cannot be forked (not Linux)."""
    global _server
    if not sys.platform.startswith("linux"):
        return None  # fork after importing torch is unsafe on macOS; Windows has no fork
    if _server is not None and _server.proc.poll() is None:
        return _server
    address = f"\0autograder-forkserver-{secrets.token_hex(16)}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    with listener:
        # its own session: Ctrl-C in the terminal reaches the grader (which lets running grades finish with
        # their workers), never the server; the server ends when its stdin closes
        proc = subprocess.Popen([sys.executable, "-m", "autograder.runtime.forkserver", "--fd", str(listener.fileno())],
                                pass_fds=(listener.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                env=clean_environment(), cwd="/", start_new_session=True)
    _server = ForkServer(proc, address)
    return _server


def shutdown() -> None:
    """Stop this process's fork-server (a no-op in processes that only inherited it)."""
    global _server, _connection
    if _server is not None:
        _server.close()
    _server = _connection = None


def connection() -> Optional[Connection]:
    """This process's channel to the running fork-server, opened on first use; None when none runs."""
    global _connection
    if _server is None:
        return None
    if _connection is not None and _connection[0] == os.getpid():
        return _connection[1]
    if _connection is not None:  # inherited through fork: the parent's channel, not ours to use
        _connection[1].sock.close()
    try:
        _connection = (os.getpid(), Connection(_server.address))
    except OSError:  # the server has ended
        _connection = None
        return None
    return _connection[1]


# -- server side ---------------------------------------------------------------------------------

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class Server:
    """The fork-server's single-threaded loop (workers must be forked from the thread that outlives them)."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.clients: Dict[socket.socket, Set[int]] = {}
        self.workers: Dict[int, socket.socket] = {}

    def serve(self) -> None:
        """Answer requests until the starter goes away (end of stdin), then stop every worker."""
        while True:
            ready, _, _ = select.select([self.listener, sys.stdin, *self.clients], [], [], SWEEP_S)
            if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
                break
            if self.listener in ready:
                self._accept()
            for client in ready:
                if client in self.clients:
                    self._handle(client)
            self._sweep()
        for client in list(self.clients):
            self._drop(client)

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        pid, uid, _gid = _PEERCRED.unpack(client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid != os.getuid() or self._is_worker(pid):  # a worker must not get more processes through us
            client.close()
            return
        self.clients[client] = set()

    def _is_worker(self, pid: int) -> bool:
        try:
            return pid in self.workers or os.getsid(pid) in self.workers
        except OSError:
            return True  # gone already: nobody to serve

    def _handle(self, client: socket.socket) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(client, _MESSAGE_MAX, 2)
        except OSError:
            data, fds = b"", []
        if not data:
            self._drop(client)
            return
        try:
            reply = self._answer(client, json.loads(data), fds)
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "error": f"bad request: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        try:
            client.send(json.dumps(reply).encode())
        except OSError:
            self._drop(client)

    def _answer(self, client: socket.socket, message: Dict[str, Any], fds: List[int]) -> Dict[str, Any]:
        if message["op"] == "fork" and len(fds) == 2:
            pid = os.fork()
            if pid == 0:
                self._become_worker(fds[0], fds[1], str(message["submission"]), dict(message["settings"]))
            self.workers[pid] = client
            self.clients[client].add(pid)
            return {"ok": True, "pid": pid}
        if message["op"] == "stop" and int(message["pid"]) in self.clients[client]:
            return {"ok": True, "code": self._stop(int(message["pid"]))}
        return {"ok": False, "error": f"refused: {message['op']!r} with {len(fds)} descriptors"}

    def _become_worker(self, sock_fd: int, out_fd: int, submission: str, settings: Dict[str, Any]) -> NoReturn:
        """In the forked child: the grader's pipe as stdout and stderr, then the worker's life."""
        try:
            self.listener.close()
            for client in self.clients:
                client.close()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_fd, 1)
            os.dup2(out_fd, 2)
            os.close(null)
            from autograder.runtime import worker

            worker.run(sock_fd, submission, settings)
        finally:
            os._exit(70)

    def _stop(self, pid: int) -> Optional[int]:
        """kill_tree the worker (while it is unreaped, see sandbox.kill_tree), reap it, forget it."""
        from autograder.runtime import sandbox

        ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        sandbox.kill_tree(pid)
        _, status = os.waitpid(pid, 0)
        self.clients[self.workers.pop(pid)].discard(pid)
        return None if ended is None else os.waitstatus_to_exitcode(status)

    def _drop(self, client: socket.socket) -> None:
        for pid in list(self.clients[client]):
            self._stop(pid)
        del self.clients[client]
        client.close()

    def _sweep(self) -> None:
        """Kill and reap processes orphaned to us (we are their subreaper) that are not our workers."""
        try:
            with open(f"/proc/self/task/{os.getpid()}/children") as listing:
                children = [int(pid) for pid in listing.read().split()]
        except OSError:  # no CONFIG_PROC_CHILDREN: kill_tree still ends a worker's descendants
            return
        for pid in children:
            if pid in self.workers:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, os.WNOHANG)
            except (ProcessLookupError, ChildProcessError):
                pass


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="autograder fork-server (started by the grader, not by hand)")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket")
    args = parser.parse_args(argv)
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]  # the cwd would be readable to workers
    import nbformat  # noqa: F401  (notebook submissions: read in the worker, imported once here)

    from autograder.runtime import (
        sandbox,
        worker,  # noqa: F401  (every worker starts with these and torch imported)
    )

    if "reference" in sys.modules:
        raise SystemExit("autograder.runtime.forkserver: the reference answers were imported; refusing to fork workers")
    worker.warm_torch()
    sandbox.prepare()
    sandbox.become_subreaper()
    Server(socket.socket(fileno=args.fd)).serve()


if __name__ == "__main__":
    main()
