"""Private network and IPC namespaces for a worker."""
from __future__ import annotations

import functools
import os

from . import _linux


def enter(network: bool) -> None:
    """Move this process into a new IPC namespace and, unless network is True, a new network namespace.

    As root a plain unshare works; otherwise a user namespace must come first (blocked by AppArmor on
    ubuntu-24.04 runners, and by Docker's default seccomp profile), mapping our own uid and gid into it.
    The new network namespace holds only a loopback device that is down: nothing can be reached.
    """
    flags = _linux.CLONE_NEWIPC | (0 if network else _linux.CLONE_NEWNET)
    uid, gid = os.getuid(), os.getgid()
    try:
        _linux.unshare(flags)
    except OSError:
        _linux.unshare(flags | _linux.CLONE_NEWUSER)
        _map_ids(uid, gid)


def _map_ids(uid: int, gid: int) -> None:
    with open("/proc/self/setgroups", "w") as setgroups:  # must be denied before an unprivileged gid_map
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"{gid} {gid} 1")


@functools.cache
def available() -> bool:
    """Whether enter() works here, tried in a short-lived child (the answer depends on privileges, AppArmor
    and container seccomp profiles, which only trying reveals)."""
    if not _linux.IS_LINUX:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            enter(network=False)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def network_namespace(pid: int | str = "self") -> int | None:
    """Inode of a process's network namespace, None where it cannot be read (gone, zombie, no /proc)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None
