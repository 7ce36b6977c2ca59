"""A seccomp filter through libseccomp (PyPI `pyseccomp`): no new processes or programs, no reaching other
processes, the kernel's administration, the network or file metadata. Everything else is allowed, threads
included."""
from __future__ import annotations

import errno
import functools
import socket
from types import ModuleType

from . import _linux

_CLONE_THREAD = 0x00010000
_TIOCSTI = 0x5412  # pushes bytes into a terminal's input: a classic way out of a sandbox sharing a tty
_PR_GET_SECCOMP = 21

_DENIED = (
    # new processes and programs: glibc's fork() is clone(), filtered by its flags in _add_rules
    "fork", "vfork", "execve", "execveat",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "tkill",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    # file metadata, which Landlock does not cover: uid 0 owns most files and may chmod them without any
    # capability
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "utime", "utimes",
    "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
    "fremovexattr",
    # the kernel and the machine
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon",
    "swapoff", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "open_by_handle_at",
    "name_to_handle_at", "acct", "quotactl", "syslog", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm",
    # io_uring submits operations (socket, connect, ...) that this filter never sees
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # Every new socket: connecting to a pathname unix socket (a root-owned daemon's, say) is beyond both
    # Landlock (ABI <= 7) and the network namespace. socketpair stays, for AF_UNIX only.
    "socket",
)
_ONLY_SELF_BY_PID = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")  # argument 0 is a pid
_ONLY_SELF_BY_ZERO = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
                      "migrate_pages", "move_pages")  # argument 0 is a pid, 0 meaning the caller
_ONLY_SELF_BY_ZERO_SECOND = ("setpriority", "ioprio_set")  # argument 1 is the "who", 0 meaning the caller


@functools.cache
def bindings() -> ModuleType | None:
    """The pyseccomp module, None where it or libseccomp is missing.

    The first call runs ldconfig and gcc (ctypes.util.find_library): make it before rlimits, Landlock and
    seccomp, best once in the supervisor before forking workers.
    """
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError):  # RuntimeError: "Unable to find libseccomp"
        return None
    return pyseccomp


def available() -> bool:
    """Whether the bindings load and the kernel has seccomp (PR_GET_SECCOMP fails with EINVAL otherwise)."""
    if not _linux.IS_LINUX or bindings() is None:
        return False
    try:
        _linux.prctl(_PR_GET_SECCOMP)
    except OSError:
        return False
    return True


def _deny(rules: object, name: str, action: int, *args: object) -> None:
    try:
        rules.add_rule(action, name, *args)
    except OSError:  # EINVAL: a name this libseccomp does not know; the call stays allowed
        pass


def _add_rules(sc: ModuleType, rules: object, pid: int) -> None:
    eperm = sc.ERRNO(errno.EPERM)
    for name in _DENIED:
        _deny(rules, name, eperm)
    _deny(rules, "clone", eperm, sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    # clone3 passes its flags in memory, out of a filter's reach; on ENOSYS glibc falls back to clone
    _deny(rules, "clone3", sc.ERRNO(errno.ENOSYS))
    for name in _ONLY_SELF_BY_PID:
        _deny(rules, name, eperm, sc.Arg(0, sc.NE, pid))
    for name in _ONLY_SELF_BY_ZERO:
        _deny(rules, name, eperm, sc.Arg(0, sc.NE, 0))
    for name in _ONLY_SELF_BY_ZERO_SECOND:
        _deny(rules, name, eperm, sc.Arg(1, sc.NE, 0))
    _deny(rules, "socketpair", eperm, sc.Arg(0, sc.NE, socket.AF_UNIX))
    _deny(rules, "ioctl", eperm, sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))


def load(pid: int) -> None:
    """Install the filter on this process (every thread), pid being this process's own id. Sets
    no_new_privs. Irreversible; children would inherit it, but none can be created."""
    sc = bindings()
    if sc is None:
        raise OSError(errno.ENOSYS, "pyseccomp or libseccomp is missing")
    rules = sc.SyscallFilter(sc.ALLOW)
    rules.set_attr(sc.Attr.CTL_TSYNC, 1)
    _add_rules(sc, rules, pid)
    rules.load()
