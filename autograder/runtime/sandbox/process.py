"""Per-process steps of hardening: session, parent death, environment, descriptors, capabilities."""
from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Iterable

from . import _linux

KEPT_VARIABLES = ("PATH", "LANG")


def new_session() -> None:
    """Leave the supervisor's session and process group, so that the worker's group can be killed as one.
    A worker started with start_new_session=True leads its session already (setsid would fail with EPERM)."""
    if os.getsid(0) != os.getpid():
        os.setsid()


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies.

    The kernel ties this to the parent *thread*: the supervisor must fork workers from a thread that outlives
    them (its main thread).
    """
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def scrub_environment(workdir: str | None) -> None:
    """Replace the environment by a minimal one and wipe the environment block the process started with.

    os.environ.clear() only drops glibc's pointers: the original strings stay readable at the top of the stack
    (that is what /proc/self/environ shows), so they are overwritten with zeros. Secrets that the fork-server's
    Python heap still holds are out of reach of this step: start the fork-server with a clean environment.
    """
    kept = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    os.environ.clear()
    os.environ.update(kept, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if workdir is not None:
        os.environ.update(HOME=workdir, TMPDIR=workdir)
    _wipe_initial_environment()


def _wipe_initial_environment() -> None:
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return
    # proc(5) numbers env_start and env_end 50 and 51; fields[0] here is field 3 (state).
    start, end = int(fields[47]), int(fields[48])
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def close_fds(keep: Iterable[int]) -> None:
    """Close every descriptor except 0, 1, 2 and keep."""
    kept = sorted({0, 1, 2, *keep})
    for low, high in zip(kept, [*kept[1:], os.sysconf("SC_OPEN_MAX")]):
        os.closerange(low + 1, high)


def drop_capabilities() -> None:
    """Drop every capability, also from the bounding set, so that uid 0 cannot regain them through execve."""
    with open("/proc/sys/kernel/cap_last_cap") as last:
        last_cap = int(last.read())
    for cap in range(last_cap + 1):
        try:
            _linux.prctl(_linux.PR_CAPBSET_DROP, cap)
        except OSError:  # EINVAL: not in the set already, or unknown to this kernel
            pass
    _linux.prctl(_linux.PR_CAP_AMBIENT, _linux.PR_CAP_AMBIENT_CLEAR_ALL)
    _linux.clear_capabilities()

