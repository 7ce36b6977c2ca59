"""`autograder watch FILE`: regrade a student's file every time it is saved, from a warm process.

The process warms up once the way batch grading does (`autograder.batch.runner.warm`: torch, hypothesis,
the checks and the model imported and run on the reference implementation, a fork-server for sandboxed
workers), then polls the file's modification time. Each save is graded by `grade_job` in a child forked
from that warm parent, with the student's code in a fresh sandboxed worker, so nothing a submission does
survives into the next grade; the parent prints the report's table. Ctrl-C ends it (exit code 130).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TextIO, Tuple

POLL_S = 0.05  # how often the file's modification time is read


def _stamp(path: Path) -> Optional[Tuple[int, int]]:
    """(mtime_ns, size) of the file, None while it does not exist (an editor between delete and write)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def watch(path: Path, report: Path, *, config_file: Optional[Path] = None, model: Optional[str] = None,
          assignment: Optional[str] = None, out: TextIO = sys.stdout,
          stop: Callable[[int], bool] = lambda grades: False) -> int:
    """Grade `path` now and after every save until Ctrl-C (returns 130) or `stop(grades so far)` is true
    (returns 0; for tests). Returns 2 at once, grading nothing, when the warm-up's reference implementation
    loses points under this config (every grade would be wrong), as `autograder batch` does. Writes each
    report to `report`, like `autograder grade --json`."""
    from autograder.batch import runner
    from autograder.report import neutralise, terminal
    from autograder.runtime import forkserver

    path, report = Path(path).absolute(), Path(report).absolute()
    settings = runner.Settings.create(report.parent, config_file, model, assignment=assignment)
    out.write(f"autograder watch: warming up (torch, the checks, the model) for {neutralise.terminal(path.name)}...\n")
    out.flush()
    grades = 0
    try:
        warm_up = runner.warm(settings)
        problem = runner.warm_up_problem(warm_up)
        if problem:  # every grade would be wrong (a bad config, or this machine's problem): as batch does
            out.write(neutralise.terminal(f"autograder watch: {problem}") + "\n")
            return 2
        notice = runner.warm_up_notice(warm_up)
        if notice:
            out.write(neutralise.terminal(f"autograder watch: note: {notice}") + "\n")
        seen = None
        while not stop(grades):
            stamp = _stamp(path)
            if stamp is None or stamp == seen:
                time.sleep(POLL_S)
                continue
            seen = stamp
            started = time.monotonic()
            result = runner.grade_job(runner.Job(path, report.stem, settings))
            document = json.loads(report.read_text(encoding="utf-8"))
            out.write(terminal.render(document, report))
            out.write(f"graded in {time.monotonic() - started:.2f} s ({result['outcome']}); watching "
                      f"{neutralise.terminal(path.name)} for changes, Ctrl-C to stop\n")
            out.flush()
            grades += 1
    except KeyboardInterrupt:
        out.write("\n")
        return 130
    finally:
        forkserver.shutdown()
    return 0
