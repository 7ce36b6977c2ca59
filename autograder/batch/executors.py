"""Where batch grading's unit of work runs: a `concurrent.futures.Executor`, local or on a Dask cluster.

Locally the executor is a pool of `jobs` threads that each fork one grading process per submission from
this (warm) process and wait for it, so `jobs` submissions are graded at once in separate processes. With
a scheduler address, `dask.distributed.Client(address).get_executor()` runs the same unit of work on the
cluster's workers, as many at once as they have threads (`jobs` does not apply). Dask is the optional
extra `attention-autograder[dask]`.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Iterator, Optional

CONNECT_TIMEOUT_S = 30.0  # to reach the Dask scheduler


class ExecutorUnavailable(RuntimeError):
    """The requested executor cannot be used: its package is missing or its scheduler unreachable."""


@contextlib.contextmanager
def executor(jobs: int, scheduler: Optional[str] = None) -> Iterator[Executor]:
    """An executor for the batch; on leaving, running tasks finish (cancel the pending ones first)."""
    if scheduler is None:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="autograder-grade") as pool:
            yield pool
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ExecutorUnavailable("--scheduler needs Dask: pip install 'attention-autograder[dask]'") from exc
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:  # refused, timed out, or not an address
        raise ExecutorUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client:
        yield client.get_executor(pure=False)
