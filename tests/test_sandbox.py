"""The isolation layers, each exercised for real in a forked child that calls harden() and reports over a pipe.

A test skips, saying why, where this machine lacks the layer it needs.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from autograder.runtime import sandbox
from autograder.runtime.sandbox import landlock

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="forked workers are Linux-only (fork after torch is unsafe on macOS)")

AVAILABLE = sandbox.available_layers() if sys.platform == "linux" else {}
SECRET = "hunter2-do-not-leak"


def requires(*layers: str) -> None:
    missing = [layer for layer in layers if not AVAILABLE.get(layer)]
    if missing:
        pytest.skip(f"layer(s) not available on this machine: {', '.join(missing)}")


def attempt(action: Callable[[], object]) -> str:
    """'ok', or the name of the exception the action raised."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - reporting any failure is the point
        return type(error).__name__
    return "ok"


def fork_hardened(policy: sandbox.Policy, body: Callable[[int], dict]) -> tuple[int, int]:
    """Fork a child that hardens itself and sends {"layers": ..., **body(fd)} as one JSON line.
    Returns (pid, read end of the pipe)."""
    read_fd, write_fd = os.pipe()
    threads = torch.get_num_threads()
    # the child inherits one torch thread: after this process's OpenMP pool ran with more, setting it in the
    # child would start a thread there, which harden refuses (test_harden_refuses_the_thread_...)
    torch.set_num_threads(1)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            result = {"layers": sandbox.harden(policy, keep_fds=[write_fd])}
            result.update(body(write_fd))
        except BaseException as error:  # noqa: BLE001 - the parent asserts on it
            result, code = {"error": repr(error)}, 1
        try:
            os.write(write_fd, json.dumps(result).encode() + b"\n")
        finally:
            os._exit(code)
    torch.set_num_threads(threads)
    os.close(write_fd)
    return pid, read_fd


def read_line(read_fd: int, timeout: float, until_eof: bool = False) -> dict:
    """The child's first JSON line, {} if it ended or the time ran out without one. until_eof waits for the
    child to close the pipe (to exit) as well."""
    data, deadline = b"", time.monotonic() + timeout
    while (until_eof or b"\n" not in data) and select.select([read_fd], [], [], max(0, deadline - time.monotonic()))[0]:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data.split(b"\n")[0]) if b"\n" in data else {}


def run_child(policy: sandbox.Policy, body: Callable[[], dict], timeout: float = 10.0) -> tuple[dict, int]:
    """Run body in a hardened child; returns (its report, its wait status)."""
    pid, read_fd = fork_hardened(policy, lambda _fd: body())
    try:
        report = read_line(read_fd, timeout, until_eof=True)
    finally:
        os.close(read_fd)
        sandbox.kill_tree(pid)
        _, status = os.waitpid(pid, 0)
    return report, status


def run_hardened(policy: sandbox.Policy, body: Callable[[], dict], timeout: float = 10.0) -> tuple[dict, int]:
    """run_child, failing the test if harden or body raised."""
    report, status = run_child(policy, body, timeout)
    assert "error" not in report, report["error"]
    return report, status


@pytest.fixture
def policy(tmp_path: Path) -> sandbox.Policy:
    """The default policy, for a child forked from this test process: its memory limit leaves 1 GiB above
    what the process has mapped by now (a long test run maps more than a worker's default 4 GiB: models,
    threads' malloc arenas), so that the limit is applied, not refused."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    from autograder.runtime.sandbox.limits import address_space_in_use

    memory_mb = max(sandbox.Policy().memory_mb, address_space_in_use() // 2**20 + 1024)
    return sandbox.Policy(workdir=str(workdir), memory_mb=memory_mb)


def test_harden_reports_every_available_layer(policy: sandbox.Policy) -> None:
    report, status = run_hardened(policy, dict)
    assert os.waitstatus_to_exitcode(status) == 0
    assert set(report["layers"]) == {name for name, ok in AVAILABLE.items() if ok}


def test_torch_still_works(policy: sandbox.Policy) -> None:
    def body() -> dict:
        torch.manual_seed(0)
        q = torch.randn(1, 6, 64, requires_grad=True)
        weights = torch.softmax(q @ q.transpose(-1, -2) / 8.0, dim=-1)
        (weights @ q).sum().backward()
        big = torch.ones(64, 1024, 1024)  # 256 MiB
        worker = threading.Thread(target=lambda: None)
        worker.start()
        worker.join()
        rows = weights.sum(-1).flatten().tolist()
        return {"rows": rows, "grad": bool(q.grad.abs().sum() > 0), "big": float(big.sum())}

    report, _ = run_hardened(policy, body)
    assert report["rows"] == pytest.approx([1.0] * 6)
    assert report["grad"] and report["big"] == 64 * 1024 * 1024


def test_files_outside_the_readable_set_are_out_of_reach(tmp_path: Path, policy: sandbox.Policy) -> None:
    requires("landlock")
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    root = tmp_path / "submission"
    (root / "hidden").mkdir(parents=True)
    (root / "student.py").write_text("x = 1")
    (root / "hidden" / "answers.py").write_text(SECRET)
    policy = sandbox.Policy(workdir=policy.workdir, readable=(str(root),), hidden=(str(root / "hidden"),))

    def body() -> dict:
        return {
            "read outside": attempt(outside.read_text),
            "read hidden": attempt((root / "hidden" / "answers.py").read_text),
            "read readable": attempt((root / "student.py").read_text),
            "write outside": attempt(lambda: (tmp_path / "planted.py").write_text("x")),
            "write readable": attempt(lambda: (root / "student.py").write_text("x")),
            "write workdir": attempt(lambda: Path("scratch.txt").write_text("x")),
        }

    report, _ = run_hardened(policy, body)
    assert report["read outside"] == report["read hidden"] == "PermissionError"
    assert report["write outside"] == report["write readable"] == "PermissionError"
    assert report["read readable"] == report["write workdir"] == "ok"
    assert (Path(policy.workdir) / "scratch.txt").exists() and not (tmp_path / "planted.py").exists()


def test_no_new_processes_and_no_signals_to_others(policy: sandbox.Policy) -> None:
    requires("seccomp")

    def body() -> dict:
        return {
            "fork": attempt(os.fork),
            "subprocess": attempt(lambda: subprocess.run(["true"], check=True)),
            "kill parent": attempt(lambda: os.kill(os.getppid(), 0)),  # signal 0: harmless if it got through
            "chmod outside": attempt(lambda: os.chmod("/tmp", 0o1777)),
            "unix socket": attempt(lambda: socket.socket(socket.AF_UNIX)),
            "kill self": attempt(lambda: os.kill(os.getpid(), 0)),
        }

    report, _ = run_hardened(policy, body)
    assert report["fork"] == report["subprocess"] == report["kill parent"] == "PermissionError"
    assert report["chmod outside"] == report["unix socket"] == "PermissionError"
    assert report["kill self"] == "ok"


@pytest.mark.parametrize("seccomp", [True, False], ids=["all-layers", "without-seccomp"])
def test_tcp_to_the_parents_loopback_fails(policy: sandbox.Policy, seccomp: bool) -> None:
    if not any(AVAILABLE.get(layer) for layer in (["seccomp"] if seccomp else []) + ["netns", "landlock-net"]):
        pytest.skip("no layer that blocks TCP is available on this machine")
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        port = server.getsockname()[1]

        def body() -> dict:
            return {"connect": attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
                    "interfaces": [] if seccomp else [name for _, name in socket.if_nameindex()]}

        report, _ = run_hardened(sandbox.Policy(workdir=policy.workdir, seccomp=seccomp), body)
        assert report["connect"] != "ok"
        if "netns" in report["layers"] and not seccomp:
            assert report["interfaces"] == ["lo"]  # a namespace of its own, whatever Landlock adds
        with pytest.raises(BlockingIOError):
            server.accept()


def test_memory_bomb_fails_inside_the_child(policy: sandbox.Policy) -> None:
    requires("rlimits")

    def body() -> dict:
        return {
            "bytearray": attempt(lambda: bytearray(20 * 1024**3)),
            "torch": attempt(lambda: torch.empty(5 * 1024**3, dtype=torch.float32)),
        }

    report, status = run_hardened(policy, body)
    assert report["bytearray"] == "MemoryError" and report["torch"] in ("RuntimeError", "OutOfMemoryError")
    assert os.waitstatus_to_exitcode(status) == 0


def test_busy_loop_is_stopped_by_the_cpu_limit(policy: sandbox.Policy) -> None:
    requires("rlimits")

    def body() -> dict:
        while True:
            pass

    report, status = run_child(sandbox.Policy(workdir=policy.workdir, cpu_seconds=1), body, timeout=30)
    assert report == {}
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU  # not kill_tree's SIGKILL


def test_kill_tree_kills_a_setsid_grandchild_whose_parent_exited(policy: sandbox.Policy) -> None:
    requires("netns")  # the only trace a setsid()ed, double-forked grandchild keeps of its worker
    assert sandbox.become_subreaper()

    def body(write_fd: int) -> dict:
        middle = os.fork()
        if middle == 0:
            if os.fork() == 0:
                os.setsid()
                os.write(write_fd, json.dumps({"grandchild": os.getpid()}).encode() + b"\n")
                time.sleep(60)
            os._exit(0)
        os.waitpid(middle, 0)
        time.sleep(60)
        return {}

    worker, read_fd = fork_hardened(sandbox.Policy(workdir=policy.workdir, seccomp=False), body)
    grandchild = read_line(read_fd, timeout=10).get("grandchild")
    os.close(read_fd)
    try:
        assert grandchild and os.path.exists(f"/proc/{grandchild}")
        sandbox.kill_tree(worker)
        _, status = os.waitpid(worker, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert not os.path.exists(f"/proc/{grandchild}")
    finally:  # leave nothing behind when kill_tree failed
        for pid in (worker, grandchild):
            if pid and os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)


def test_environment_secrets_are_gone(policy: sandbox.Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SECRET", SECRET)
    report, _ = run_hardened(policy, lambda: {"environ": dict(os.environ)})
    assert SECRET not in json.dumps(report["environ"])
    assert report["environ"]["HOME"] == policy.workdir and report["environ"]["OMP_NUM_THREADS"] == "1"


def test_the_environment_block_the_process_started_with_is_wiped(tmp_path: Path) -> None:
    """/proc/self/environ and the stack still hold the original strings after os.environ.clear()."""
    script = textwrap.dedent(f"""
        import ctypes, json
        from autograder.runtime import sandbox
        fields = open("/proc/self/stat", "rb").read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])
        sandbox.harden(sandbox.Policy(workdir={str(tmp_path)!r}))
        print(json.dumps(ctypes.string_at(start, end - start).decode("latin-1")))
    """)
    env = {"PATH": os.environ.get("PATH", ""), "FAKE_SECRET": SECRET}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout and "FAKE_SECRET" not in done.stdout


def test_harden_refuses_a_process_with_threads(policy: sandbox.Policy) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
        os.write(write_fd, attempt(lambda: sandbox.harden(policy)).encode())
        os._exit(0)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_fd, 100) == b"RuntimeError"
    os.close(read_fd)


def test_harden_refuses_the_thread_its_own_torch_setting_starts(tmp_path: Path) -> None:
    """A child forked from a process whose OpenMP pool ran gets a new thread when torch is set to one thread.
    harden sets it before it counts threads, so it refuses instead of leaving that thread unconfined by
    Landlock. A fresh interpreter, so the test does not depend on what this process ran before."""
    script = textwrap.dedent(f"""
        import os
        import torch
        from autograder.runtime import sandbox
        torch.set_num_threads(2)
        (torch.randn(300, 300) @ torch.randn(300, 300)).sum()
        pid = os.fork()
        if pid == 0:
            try:
                sandbox.harden(sandbox.Policy(workdir={str(tmp_path)!r}))
            except RuntimeError as error:
                print("refused:", error, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: harden() needs a single-threaded process, this one has 2 threads" in done.stdout, done.stdout


def test_harden_refuses_a_memory_limit_below_what_is_mapped(policy: sandbox.Policy) -> None:
    report, _ = run_child(sandbox.Policy(workdir=policy.workdir, memory_mb=1), dict)
    assert report["error"].startswith("ValueError")


def test_landlock_plan_grants_the_siblings_of_a_hidden_path(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "reference").mkdir(parents=True)
    (tmp_path / "pkg" / "student.py").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "link-to-reference").symlink_to(tmp_path / "pkg" / "reference")
    rules = landlock.plan([str(tmp_path)], [], [str(tmp_path / "pkg" / "reference")])
    root = tmp_path.resolve()
    granted = {Path(path).relative_to(root).as_posix() for path in rules if Path(path).is_relative_to(root)}
    assert granted == {"other", "pkg/student.py"}
