"""Processes seen through /proc, for the tests that assert that grading leaves none behind.

Deliberately independent of `autograder.runtime.sandbox.reaper`, which those tests check.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

Identity = Tuple[int, int]  # (pid, start time): a pid that was reused is another process


class Proc(NamedTuple):
    ppid: int
    state: str    # proc(5)'s state: R, S, D, Z (zombie), X (dead), ...
    started: int  # start time in clock ticks since boot
    comm: str
    cmdline: str


def processes() -> Dict[int, Proc]:
    """Every process, each read once."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:  # exited meanwhile
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode("utf-8", "replace")
        fields = stat.rsplit(b")", 1)[1].split()  # fields[0] is proc(5)'s field 3
        found[int(entry)] = Proc(int(fields[1]), fields[0].decode(), int(fields[19]), comm, cmdline)
    return found


def descendants(root: int, procs: Optional[Dict[int, Proc]] = None) -> Dict[int, Proc]:
    """root's descendants, zombies too, through parent links."""
    procs = processes() if procs is None else procs
    found: Set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, proc in procs.items() if proc.ppid in frontier} - found
        found |= frontier
    return {pid: procs[pid] for pid in found}


def alive(identities: Iterable[Identity]) -> Set[Identity]:
    """Those of the processes still running (not gone, not a zombie, not a reused pid)."""
    procs = processes()
    return {(pid, started) for pid, started in identities
            if pid in procs and procs[pid].started == started and procs[pid].state not in ("Z", "X")}


def living_descendants(root: int) -> Set[Identity]:
    return alive((pid, proc.started) for pid, proc in descendants(root).items())


def leftovers(identities: Set[Identity], wait_s: float = 5.0) -> List[str]:
    """Those of the processes still alive after wait_s (a fork-server notices its end of stdin within a
    second), as "pid command line"."""
    deadline = time.monotonic() + wait_s
    while alive(identities) and time.monotonic() < deadline:
        time.sleep(0.1)
    procs = processes()
    return [f"{pid} {procs[pid].cmdline[:200]}" for pid, _ in sorted(alive(identities)) if pid in procs]
