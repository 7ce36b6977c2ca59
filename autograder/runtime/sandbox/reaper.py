"""Killing a worker together with everything it started, for the supervising process."""
from __future__ import annotations

import os
import signal
import time
from typing import NamedTuple

from . import _linux, namespaces

_KILL_DEADLINE_S = 2.0


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children instead of init's (PR_SET_CHILD_SUBREAPER),
    so that they stay visible and get reaped here. Call once in the supervisor; False where unsupported."""
    try:
        _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


class _Proc(NamedTuple):
    ppid: int
    sid: int
    zombie: bool


def _process(pid: int | str) -> _Proc | None:
    """pid's parent, session and zombie state from /proc; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is proc(5)'s field 3: state, ppid, pgrp, session
    return _Proc(ppid=int(fields[1]), sid=int(fields[3]), zombie=fields[0] == b"Z")


def _processes() -> dict[int, _Proc]:
    procs = {int(entry): _process(entry) for entry in os.listdir("/proc") if entry.isdigit()}
    return {pid: proc for pid, proc in procs.items() if proc is not None}


def _tree(pid: int, procs: dict[int, _Proc], netns: int | None) -> set[int]:
    """pid, its descendants, members of its session, and sharers of its private network namespace.

    Session and namespace membership find descendants whose parent exited (they are reparented): the worker
    leads its own session (harden's setsid), and its network namespace is its own.
    """
    found = {pid} | {p for p, proc in procs.items() if proc.sid == pid}
    if netns is not None:
        found |= {p for p in procs if namespaces.network_namespace(p) == netns}
    frontier = set(found)
    while frontier:
        frontier = {p for p, proc in procs.items() if proc.ppid in frontier} - found
        found |= frontier
    return found - {os.getpid()}


def kill_tree(pid: int) -> None:
    """SIGKILL pid and every process descended from it, including ones that called setsid() or double-forked,
    then reap those of them that became this process's children (see become_subreaper). pid itself is left
    for the caller to reap, for its exit status.

    Call it before reaping pid: the namespace that finds setsid()+double-fork escapees can only be read
    from a living (or unreaped) worker. Without /proc only pid's process group is killed.
    """
    if not os.path.isdir("/proc/self"):
        _kill_group(pid)
        return
    own_netns = namespaces.network_namespace()
    netns = namespaces.network_namespace(pid)
    netns = None if netns == own_netns else netns
    killed: set[int] = set()
    deadline = time.monotonic() + _KILL_DEADLINE_S
    while time.monotonic() < deadline:
        procs = _processes()
        # a process that got SIGKILL can fork no more: stop once a scan finds nobody new
        fresh = {p for p in _tree(pid, procs, netns) if p in procs and not procs[p].zombie} - killed
        if not fresh:
            break
        for p in fresh:
            _kill(p)
        killed |= fresh
    _reap(killed - {pid}, killed | {pid}, deadline)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _kill(pid)


def _reap(pids: set[int], killed: set[int], deadline: float) -> None:
    """Reap those of pids that are, or become, our children, waiting for them to die until deadline.

    A killed process whose parent was killed too is that parent's zombie first and ours (the subreaper's)
    only once the parent has died: it is waited for until then, not given up at the first ChildProcessError.
    """
    pending = set(pids)
    while pending:
        for p in list(pending):
            try:
                if os.waitpid(p, os.WNOHANG)[0] != 0:
                    pending.discard(p)
                continue
            except ChildProcessError:
                pass
            proc = _process(p)
            if proc is None or proc.ppid not in killed:  # gone, or another process's to reap
                pending.discard(p)
        if pending and time.monotonic() > deadline:
            return
        time.sleep(0.001)
