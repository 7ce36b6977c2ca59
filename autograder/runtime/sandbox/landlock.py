"""Landlock through raw system calls: filesystem access, TCP and scoping (the PyPI `landlock` package covers
only the filesystem)."""
from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Iterable

from . import _linux

# The same numbers on every architecture: Landlock came after the syscall tables were unified.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# Filesystem rights (linux/landlock.h); those we never grant (character/block devices, fifos, sockets) are
# handled all the same, by the ranges below.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_DIR, MAKE_REG, MAKE_SYM = 1 << 4, 1 << 5, 1 << 7, 1 << 8, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only rights a file rule may carry

READ = READ_FILE | READ_DIR
READ_WRITE = READ | WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | REFER

_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

# What the interpreter and torch read lazily besides the Python installation; nothing secret lives here.
SYSTEM_READ = (
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/localtime", "/etc/ld.so.cache",
    "/sys/devices/system/cpu", "/proc/cpuinfo", "/dev/urandom", "/dev/random", "/dev/zero",
)
SYSTEM_READ_WRITE = ("/dev/null",)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def abi() -> int:
    """The kernel's Landlock ABI version, 0 where Landlock is missing or disabled."""
    try:
        return _linux.syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0


def layers(version: int) -> list[str]:
    """Names of the Landlock layers an ABI version provides."""
    names = ["landlock"] if version >= 1 else []
    names += ["landlock-net"] if version >= 4 else []
    names += ["landlock-scope"] if version >= 6 else []
    return names


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _grant(path: str, access: int, hidden: tuple[str, ...], rules: dict[str, int]) -> None:
    """Add path to rules, unless it is hidden; a directory holding a hidden path is granted child by child,
    because Landlock can only allow (symlinked children are skipped there, as a grant of the whole directory
    would not reach their targets either)."""
    path = os.path.realpath(path)
    if not os.path.exists(path) or any(_within(path, h) for h in hidden):
        return
    if any(_within(h, path) for h in hidden):
        for child in os.scandir(path):
            if not child.is_symlink():
                _grant(child.path, access, hidden, rules)
        return
    rules[path] = rules.get(path, 0) | access


def plan(read_only: Iterable[str], read_write: Iterable[str], hidden: Iterable[str]) -> dict[str, int]:
    """The path rules, path -> rights, before masking by what the kernel handles."""
    hidden = tuple(os.path.realpath(h) for h in hidden)
    rules: dict[str, int] = {}
    for path in (*read_only, *SYSTEM_READ):
        _grant(path, READ, hidden, rules)
    for path in (*read_write, *SYSTEM_READ_WRITE):
        _grant(path, READ_WRITE, hidden, rules)
    return rules


def _handled_fs(version: int) -> int:
    return _FS_RIGHTS_BY_ABI[max(v for v in _FS_RIGHTS_BY_ABI if v <= version)]


def _add_path_rule(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:  # gone since plan() or not ours to open: it stays out of reach, which is safe
        return
    try:
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
        attr = _PathBeneathAttr(access, fd)
        _linux.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(attr), 0)
    finally:
        os.close(fd)


def restrict(read_only: Iterable[str], read_write: Iterable[str], hidden: Iterable[str]) -> None:
    """Confine this thread (and every process it creates) to the planned paths; with ABI >= 4 deny TCP bind
    and connect, with ABI >= 6 also signals and abstract unix sockets towards processes outside the sandbox
    (layers(abi()) names what is then active). Only the calling thread is confined: call it single-threaded."""
    version = abi()
    if version < 1:
        raise OSError(38, "Landlock is not available")  # ENOSYS
    handled = _handled_fs(version)
    attr = _RulesetAttr(
        handled_access_fs=handled,
        handled_access_net=_NET_BIND_TCP | _NET_CONNECT_TCP if version >= 4 else 0,
        scoped=_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if version >= 6 else 0,
    )
    ruleset = _linux.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    try:
        for path, access in plan(read_only, read_write, hidden).items():
            _add_path_rule(ruleset, path, access & handled)
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)  # restrict_self demands it without CAP_SYS_ADMIN
        _linux.syscall(_SYS_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)
