"""Time from a save to its table in `autograder watch FILE`, the model section included.

    python benchmarks/watch.py [--model NAME_OR_DIR] [--saves 5] [--config FILE]

Starts `autograder watch` on a copy of student_submissions/correct.py, waits for the warm-up and the first
table, then saves the file `--saves` times (correct and buggy_no_scaling.py in turn) and prints the time
from each save to its table, the median (the target is 1.5 s or less) and the load average. Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.watch_session import WatchSession, median  # noqa: E402

TARGET_S = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub id or local model directory (--model)")
    parser.add_argument("--config", type=Path, help="course config (default: the defaults, model section on)")
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    sources = [(REPO / "student_submissions" / name).read_text() for name in ("buggy_no_scaling.py", "correct.py")]
    with tempfile.TemporaryDirectory(prefix="autograder-watch-") as tmp:
        student = Path(tmp) / "attention.py"
        student.write_text(sources[1])
        extra = ["--json", str(Path(tmp) / "grading" / "report.json")]
        extra += ["--model", args.model] if args.model else []
        extra += ["--config", str(args.config)] if args.config else []
        start = time.monotonic()
        session = WatchSession(student, extra)
        try:
            session.table(timeout=600)
            print(f"warm-up and first table: {time.monotonic() - start:.1f} s")
            times = []
            for i in range(args.saves):
                seconds, text = session.save(sources[i % 2], timeout=300)
                times.append(seconds)
                total = next(line for line in text.splitlines() if line.startswith("total"))
                print(f"save {i + 1}: table after {seconds:.2f} s ({' '.join(total.split())}), "
                      f"load average {os.getloadavg()[0]:.2f}")
            session.interrupt()
        finally:
            session.close()
    m = median(times)
    print(f"autograder watch: median {m:.2f} s from a save to its table (target {TARGET_S:g} s: "
          f"{'met' if m <= TARGET_S else 'NOT met'}); load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
