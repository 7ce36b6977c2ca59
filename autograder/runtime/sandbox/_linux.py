"""ctypes access to the Linux calls that Python 3.11's os module lacks (prctl, unshare, capset, syscall)."""
from __future__ import annotations

import ctypes
import os
import sys

IS_LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True) if IS_LINUX else None
if _libc is not None:
    _libc.syscall.restype = ctypes.c_long

# prctl options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# unshare flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# mount flags (linux/mount.h)
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _as_c(arg: object) -> object:
    return ctypes.c_long(arg) if isinstance(arg, int) else arg


def _libc_or_raise() -> ctypes.CDLL:
    if _libc is None:
        raise OSError(38, "not Linux")  # ENOSYS
    return _libc


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    """prctl(2); raises OSError on failure."""
    libc = _libc_or_raise()
    return _check(libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def unshare(flags: int) -> None:
    """unshare(2) (os.unshare exists only from Python 3.12)."""
    _check(_libc_or_raise().unshare(flags))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); raises OSError on failure."""
    def c(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(_libc_or_raise().mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)))


def syscall(number: int, *args: object) -> int:
    """A raw system call; int arguments are passed as C longs (syscall(2) is variadic)."""
    libc = _libc_or_raise()
    return _check(libc.syscall(ctypes.c_long(number), *(_as_c(a) for a in args)))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def clear_capabilities() -> None:
    """capset(2) with empty effective, permitted and inheritable sets for this thread."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # version 3 takes two 32-bit halves of the 64-bit sets
    _check(_libc_or_raise().capset(ctypes.byref(header), data))
