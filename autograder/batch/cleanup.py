"""What a batch leaves behind, and how it stops: its own temporary folder, and SIGTERM taken as Ctrl-C.

Every temporary folder of a batch (its workers' `autograder-work-*`, the warm-up's copy) lies in one
folder of its own, `autograder-batch-*` in the system's temporary folder, removed when the batch ends by
itself, by Ctrl-C, SIGTERM or SIGHUP. A batch killed outright (SIGKILL, a power cut) cannot remove it: the
next batch does, knowing it for ours and dead by its lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, List

TEMP_PREFIX = "autograder-batch-"                # a batch's own temporary folder (`private_temporaries`)
TEMP_LOCK = "batch.lock"                         # in it: locked while its batch runs
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)   # stop a batch as Ctrl-C does


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the batch as Ctrl-C does (KeyboardInterrupt: running grades finish and are
    recorded, temporary folders are removed, exit 130). Only where signals can be handled: the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    saved = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def private_temporaries() -> Iterator[Path]:
    """Put every temporary folder of this batch (the workers' `autograder-work-*`, the warm-up's copy) in
    one folder of its own, `autograder-batch-*` in the system's temporary folder, removed when the batch
    ends, by Ctrl-C and SIGTERM too. It holds a lock while its batch lives (the grading processes inherit
    it): one that a killed batch left behind is unlocked, and the next batch removes it
    (`remove_stale_batch_folders`), never a running batch's, another user's, or anything not ours."""
    base = Path(tempfile.gettempdir())
    remove_stale_batch_folders(base)
    root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=base))
    fd, taking = tempfile.mkstemp(dir=root)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(taking, root / TEMP_LOCK)  # appears locked: a sweeper never sees it free while we live
    saved, tempfile.tempdir = tempfile.tempdir, str(root)
    try:
        yield root
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(root, ignore_errors=True)
        os.close(fd)


def remove_stale_batch_folders(base: Path) -> List[Path]:
    """Remove the `autograder-batch-*` folders in `base` that a killed batch left: folders (not links) of
    this user whose lock file no batch holds any more. Returns those removed."""
    removed = []
    for folder in base.glob(TEMP_PREFIX + "*"):
        try:
            info = folder.lstat()
            fd = os.open(folder / TEMP_LOCK, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # gone, or not one of ours (no lock file: not made by private_temporaries)
            continue
        try:
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its batch is running
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
