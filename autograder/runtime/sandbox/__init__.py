"""Isolation that a freshly forked worker applies to itself before it imports a student's module.

The supervisor (fork-server) calls prepare() once before forking workers, and become_subreaper(); each
worker, already holding torch and whatever else it needs, calls harden() and then imports the submission;
the supervisor ends a worker with kill_tree(pid) before reaping it. Every layer is tried, and harden()
returns the ones actually active, so that the report can say how isolated a grading run was.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _linux, landlock, limits, namespaces, process, seccomp_filter
from .reaper import become_subreaper, kill_tree

__all__ = ["Policy", "harden", "available_layers", "prepare", "kill_tree", "become_subreaper"]


@dataclass(frozen=True)
class Policy:
    memory_mb: int = 4096          # RLIMIT_AS: counts the fork-server's mappings too (torch alone: ~620 MiB)
    cpu_seconds: int = 60          # RLIMIT_CPU: SIGXCPU, then SIGKILL one second later
    max_processes: int = 64        # RLIMIT_NPROC (only meaningful under a non-root uid)
    max_file_mb: int = 16          # RLIMIT_FSIZE
    max_open_files: int = 256      # RLIMIT_NOFILE
    network: bool = False          # False -> new network namespace where possible
    readable: tuple[str, ...] = () # extra paths the child may read (the submission's folder, ...)
    hidden: tuple[str, ...] = ()   # paths that must stay unreadable even if under a readable root
    workdir: str | None = None     # a fresh empty folder; becomes the cwd and the only writable place
    workdir_mb: int | None = None  # a private tmpfs of this size over the workdir (None: the folder itself)
    seccomp: bool = True           # False only to let a test fork (kill_tree's) or to debug


def prepare() -> dict[str, bool]:
    """Call once in the supervisor before forking workers: loads the libseccomp bindings (whose first import
    runs ldconfig and gcc) and probes the kernel, so that workers do neither. Returns available_layers()."""
    seccomp_filter.bindings()
    return available_layers()


def available_layers() -> dict[str, bool]:
    """Which layers harden() can apply on this machine, probed without applying any to this process
    (the namespace probe forks a short-lived child once). "tmpfs-workdir" is left out: it is a choice of
    the policy (workdir_mb), possible wherever "netns" is."""
    linux = _linux.IS_LINUX
    landlock_layers = landlock.layers(landlock.abi()) if linux else []
    return {
        "new-session": hasattr(os, "setsid"),
        "die-with-parent": linux,
        "scrubbed-env": True,
        "close-fds": True,
        "workdir": True,
        "ipcns": namespaces.available(),
        "netns": namespaces.available(),
        "rlimits": limits.available(),
        "no-caps": os.path.exists("/proc/sys/kernel/cap_last_cap"),
        **{name: name in landlock_layers for name in ("landlock", "landlock-net", "landlock-scope")},
        "seccomp": seccomp_filter.available(),
    }


def harden(policy: Policy, keep_fds: Sequence[int] = ()) -> list[str]:
    """Apply every isolation layer this machine supports to the CURRENT process (a freshly forked worker,
    already holding whatever modules it needs: torch is imported before harden). Returns the names of the
    layers that are active, e.g. ["new-session", "scrubbed-env", "close-fds", "rlimits", "netns", "landlock",
    "seccomp"].

    Must run single-threaded (Landlock confines only the calling thread). Sets torch to one thread (OpenMP
    is not fork-safe: a forked child running a multi-threaded op hangs). Raises ValueError or
    FileNotFoundError on a policy that cannot work (memory_mb below what is mapped, missing workdir);
    a layer this machine lacks is left out of the result instead.
    """
    # one torch thread first: in a child forked from a process whose OpenMP pool ran, setting it starts a
    # thread, which the check must see (Landlock would not confine it)
    _one_torch_thread()
    _check_single_threaded()
    limits.check_memory(policy.memory_mb)
    if policy.workdir is not None and not os.path.isdir(policy.workdir):
        raise FileNotFoundError(policy.workdir)
    if policy.seccomp:
        seccomp_filter.bindings()  # before any limit: the first import spawns ldconfig and gcc
    active = []
    for names, step in _steps(policy, keep_fds):
        try:
            step()
        except (OSError, ValueError):  # ValueError: setrlimit refusing a limit
            continue
        active += names
    return active


def _steps(policy: Policy, keep_fds: Sequence[int]) -> list[tuple[list[str], Callable[[], None]]]:
    """The layers in the order they must run: unshare needs the capabilities dropped after it; Landlock opens
    its rule files under the descriptor limit; seccomp forbids unshare, so it comes last. Paths are made
    absolute first, as the workdir step changes the cwd."""
    pid = os.getpid()
    workdir = None if policy.workdir is None else os.path.abspath(policy.workdir)
    readable = tuple(os.path.abspath(path) for path in (*_python_paths(), *policy.readable))
    hidden = tuple(os.path.abspath(path) for path in policy.hidden)
    steps = [
        (["new-session"], process.new_session),
        (["die-with-parent"], process.die_with_parent),
        (["scrubbed-env"], functools.partial(process.scrub_environment, workdir)),
        (["close-fds"], functools.partial(process.close_fds, keep_fds)),
    ]
    if workdir is not None:
        steps.append((["workdir"], functools.partial(os.chdir, workdir)))
    steps += [
        (["ipcns"] if policy.network else ["ipcns", "netns"], functools.partial(namespaces.enter, policy.network)),
    ]
    if workdir is not None and policy.workdir_mb is not None:
        steps.append((["tmpfs-workdir"], functools.partial(namespaces.private_tmpfs, workdir, policy.workdir_mb)))
    steps += [
        (["rlimits"], functools.partial(limits.apply, policy.memory_mb, policy.cpu_seconds, policy.max_processes,
                                        policy.max_file_mb, policy.max_open_files)),
        (["no-caps"], process.drop_capabilities),
        (landlock.layers(landlock.abi()), functools.partial(
            landlock.restrict, readable, () if workdir is None else (workdir,), hidden)),
    ]
    if policy.seccomp:
        steps.append((["seccomp"], functools.partial(seccomp_filter.load, pid)))
    return steps


def _python_paths() -> tuple[str, ...]:
    """What the interpreter may read: the Python installation (prefixes, standard library, site-packages on
    sys.path) and, from anywhere else, only the packages this process has already imported.

    A sys.path entry outside the installation is never granted whole: '' is the cwd (the grader's, when a
    fork-server forks from a course repository), and PYTHONPATH=. or an old-style editable install puts a
    source checkout there, with its .git (every version of the answers), solutions and other submissions.
    """
    stdlib = os.path.dirname(os.__file__)
    roots = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                            stdlib)]
    roots += [os.path.realpath(p) for p in _site_dirs() if p and os.path.realpath(p) in _real_sys_path()]
    return (*dict.fromkeys(roots), *_imported_elsewhere(roots))


def _real_sys_path() -> set[str]:
    return {os.path.realpath(entry) for entry in sys.path if entry}


def _site_dirs() -> list[str]:
    import site

    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    user = getattr(site, "getusersitepackages", lambda: None)()
    return dirs + ([user] if isinstance(user, str) else [])


def _imported_elsewhere(roots: Sequence[str]) -> list[str]:
    """Folders of the top-level packages (or files of top-level modules) already imported from outside roots."""
    def within(path: str) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    found: dict[str, None] = {}
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)  # torch.ops has a relative one: not a file to grant
        if not isinstance(where, str) or not os.path.isabs(where) or within(os.path.realpath(where)):
            continue
        top = sys.modules.get(name.split(".")[0], module)
        package_dirs = getattr(top, "__path__", None)
        if package_dirs is not None and name != "__main__":
            for folder in list(package_dirs):
                if isinstance(folder, str) and os.path.isdir(folder) and not within(os.path.realpath(folder)):
                    found[os.path.realpath(folder)] = None
        else:
            found[os.path.realpath(where)] = None
    return list(found)


def _check_single_threaded() -> None:
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads > 1:
        raise RuntimeError(f"harden() needs a single-threaded process, this one has {threads} threads: "
                           "the other threads would stay unconfined")


def _one_torch_thread() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:  # setting it again to 1 can start a thread too
        torch.set_num_threads(1)
