"""`autograder watch FILE`: a table after each save, from a warm process; Ctrl-C exits 130 cleanly.

The time from a save to its table is printed (`-s` shows it; benchmarks/watch.py measures it with the
model section), not asserted: the machine's load decides it."""
from __future__ import annotations

import os

from tests.grading_helpers import CORRECT, FAST_CONFIG, SUBMISSIONS
from tests.watch_session import WatchSession


def test_watch_regrades_on_save_and_exits_130_on_ctrl_c(tmp_path):
    student = tmp_path / "attention.py"
    student.write_text(CORRECT.read_text())
    config = tmp_path / "course.toml"
    config.write_text(FAST_CONFIG)
    session = WatchSession(student, ["--config", str(config), "--json", str(tmp_path / "grading" / "report.json")])
    try:
        first = session.table(timeout=300)
        assert "total" in first and "80 / 80" in first, first

        seconds, second = session.save((SUBMISSIONS / "buggy_no_scaling.py").read_text(), timeout=120)
        assert "What to fix:" in second and "[scores." in second, second
        print(f"\nwatch: table {seconds:.2f} s after the save (load average {os.getloadavg()[0]:.1f})")

        # the next save grades afresh: nothing of the buggy file's grade is left over
        _, third = session.save(CORRECT.read_text(), timeout=120)
        assert "80 / 80" in third and "What to fix:" not in third, third

        code, stderr = session.interrupt()
        assert code == 130 and "Traceback" not in stderr, stderr
    finally:
        session.close()
