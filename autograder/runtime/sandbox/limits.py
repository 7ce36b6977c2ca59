"""Resource limits (setrlimit) for a worker process."""
from __future__ import annotations

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

MIB = 1024 * 1024


def available() -> bool:
    return resource is not None


def address_space_in_use() -> int:
    """Bytes of address space this process has mapped already (VmSize), 0 where /proc is missing."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _lower(kind: int, soft: int, hard: int | None = None) -> None:
    """Set a limit without ever raising the current hard limit (raising needs CAP_SYS_RESOURCE)."""
    _, current_hard = resource.getrlimit(kind)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(kind, (min(soft, hard), hard))


def check_memory(memory_mb: int) -> None:
    """Refuse an address-space limit below what this process has mapped already.

    RLIMIT_AS counts every mapping, including those inherited from the fork-server (torch alone maps about
    620 MiB): such a limit is a configuration error, not a weaker sandbox.
    """
    in_use = address_space_in_use()
    if memory_mb * MIB <= in_use:
        raise ValueError(f"memory_mb={memory_mb} is below the {in_use // MIB} MiB this process has mapped already")


def apply(memory_mb: int, cpu_seconds: int, max_processes: int, max_file_mb: int, max_open_files: int) -> None:
    """Apply the limits to this process; raises OSError or ValueError where the platform refuses one.

    The CPU hard limit is one second above the soft one: SIGXCPU first (catchable), then SIGKILL.
    RLIMIT_NPROC counts every process of the uid and is never enforced for uid 0.
    """
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)
    _lower(resource.RLIMIT_FSIZE, max_file_mb * MIB)
    _lower(resource.RLIMIT_NOFILE, max_open_files)
    if hasattr(resource, "RLIMIT_NPROC"):
        _lower(resource.RLIMIT_NPROC, max_processes)
    if hasattr(resource, "RLIMIT_AS"):
        _lower(resource.RLIMIT_AS, memory_mb * MIB)
