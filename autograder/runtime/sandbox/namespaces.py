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


def private_tmpfs(path: str, size_mb: int) -> None:
    """Mount a fresh tmpfs of size_mb MiB over the folder path, visible to this process only, and make it the
    cwd: what the worker writes there is bounded in size (RLIMIT_FSIZE bounds one file, not how many),
    invisible to every other process, and gone when the worker ends.

    Needs CAP_SYS_ADMIN in the current user namespace: root, or after enter() fell back to a user namespace.
    Must come before Landlock, whose rule for the folder must name the tmpfs, not the folder under it.
    """
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE)  # nothing propagates back to the host
    _linux.mount("tmpfs", path, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC,
                 f"size={int(size_mb)}m,mode=0700")
    os.chdir(path)


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
