"""`autograder watch` driven from outside, as a student's editor would: start it, save, time the table.

Shared by tests/test_watch.py and benchmarks/watch.py (which imports it with the repository on sys.path).
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
END_OF_TABLE = "graded in"  # the line watch prints after each table


class WatchSession:
    """`python -m autograder watch FILE ...extra` in its own process; its stdout read line by line."""

    def __init__(self, student: Path, extra: Sequence[str] = (), cwd: Optional[Path] = None) -> None:
        self.student = student
        env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder", "watch", str(student), *extra],
                                     cwd=cwd or student.parent, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [self._lines.put(line) for line in self.proc.stdout], daemon=True).start()

    def table(self, timeout: float) -> str:
        """Everything printed up to and including the next END_OF_TABLE line."""
        deadline, seen = time.monotonic() + timeout, []
        while not seen or END_OF_TABLE not in seen[-1]:
            seen.append(self._lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
        return "".join(seen)

    def save(self, source: str, timeout: float) -> "tuple[float, str]":
        """Write source into the file (as an editor saves) and return (seconds until its table, the table)."""
        time.sleep(0.05)  # a new modification time even on coarse clocks
        saved = time.monotonic()
        self.student.write_text(source)
        text = self.table(timeout)
        return time.monotonic() - saved, text

    def interrupt(self, timeout: float = 60) -> "tuple[int, str]":
        """Ctrl-C: (exit code, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        return code, self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def median(values: List[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
