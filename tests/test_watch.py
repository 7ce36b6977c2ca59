"""`autograder watch FILE`: a table after each save, from a warm process; Ctrl-C exits 130 cleanly.

The time from a save to its table is printed (`-s` shows it; benchmarks/watch.py measures it with the
model section), not asserted: the machine's load decides it."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.grading_helpers import CORRECT, FAST_CONFIG, SUBMISSIONS

REPO = Path(__file__).resolve().parent.parent


class Lines:
    """A process's stdout, line by line, readable with a timeout."""

    def __init__(self, stream) -> None:
        self.queue: "queue.Queue[str]" = queue.Queue()
        self.seen: list = []
        threading.Thread(target=lambda: [self.queue.put(line) for line in stream], daemon=True).start()

    def until(self, text: str, timeout: float) -> float:
        """Wait for a line containing text; returns the monotonic time it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            self.seen.append(line)
            if text in line:
                return time.monotonic()


def test_watch_regrades_on_save_and_exits_130_on_ctrl_c(tmp_path):
    student = tmp_path / "attention.py"
    student.write_text(CORRECT.read_text())
    config = tmp_path / "course.toml"
    config.write_text(FAST_CONFIG)
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "watch", str(student), "--config", str(config),
                             "--json", str(tmp_path / "grading" / "report.json")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(proc.stdout)
        lines.until("graded in", timeout=300)
        first = "".join(lines.seen)
        assert "total" in first and "80 / 80" in first, first

        time.sleep(0.05)  # a new modification time even on coarse clocks
        saved = time.monotonic()
        student.write_text((SUBMISSIONS / "buggy_no_scaling.py").read_text())
        lines.seen.clear()
        done = lines.until("graded in", timeout=120)
        second = "".join(lines.seen)
        assert "What to fix:" in second and "[scores." in second, second
        print(f"\nwatch: table {done - saved:.2f} s after the save (load average {os.getloadavg()[0]:.1f})")

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
