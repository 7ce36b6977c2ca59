"""Progress across the course: a small JSON file that each student-run grade updates, and its table.

`grading/progress.json` (next to the report) holds, per assignment: the best score and its maximum, the
latest score, the sections complete in the latest grade (every check passed), when it was last graded and
the report's path. `pytest --submission` and `autograder grade` update it; batch grading, `watch` and the
Python API do not (a TA's folder holds many students). `autograder progress` prints the course so far.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List

from autograder.report import neutralise
from autograder.report.document import write_atomically

FILE_NAME = "progress.json"
VERSION = 1


def read(path: Path) -> Dict[str, Any]:
    """The progress file's entries by assignment ({} when it is missing or unreadable: it starts again)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("assignments") if isinstance(data, dict) else None
    return {str(k): v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def _number(value: Any) -> Any:
    """A finite number from the file, else None (the file is the student's: hand-edited NaN, text, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def update(path: Path, document: Dict[str, Any], report_path: Path) -> Dict[str, Any]:
    """Record one finished grade (a report document) in the progress file at `path`; returns its entry."""
    entries = read(path)
    old = entries.get(document["assignment"], {})
    score, maximum = float(document["score"]), float(document["max_score"])
    best = _number(old.get("best_score"))
    better = best is None or score > best  # a NaN or unreadable best is replaced, never kept
    complete = [name for name, sec in document["sections"].items()
                if sec["total"] and sec["passed"] == sec["total"] and not sec.get("not_graded")]
    entry = {
        "best_score": score if better else best,
        "best_max_score": maximum if better or _number(old.get("best_max_score")) is None else old["best_max_score"],
        "last_score": score,
        "max_score": maximum,
        "sections_complete": complete,
        "sections": len(document["sections"]),
        "last_graded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "submission": document["submission"]["name"],
        "report": str(Path(report_path).absolute()),
    }
    entries[document["assignment"]] = entry
    write_atomically(Path(path), (json.dumps({"version": VERSION, "assignments": entries}, indent=2) + "\n")
                     .encode("utf-8"))
    return entry


def table(entries: Dict[str, Any], course: Iterable[str]) -> str:
    """The course so far, one row per assignment in course order (then any other graded ones)."""
    order: List[str] = list(course) + sorted(set(entries) - set(course))
    rows = [f"{'assignment':<14}{'best':>14}{'latest':>14}  {'sections complete':<22}last graded"]
    for name in order:
        entry = entries.get(name)
        if not entry:
            rows.append(f"{name:<14}{'-':>14}{'-':>14}  {'not graded yet':<22}-")
            continue
        best = _fraction(entry.get("best_score"), entry.get("best_max_score"))
        latest = _fraction(entry.get("last_score"), entry.get("max_score"))
        complete = entry.get("sections_complete")
        sections = _number(entry.get("sections"))
        done = f"{len(complete) if isinstance(complete, list) else '-'} of {'-' if sections is None else sections}"
        rows.append(f"{name:<14}{best:>14}{latest:>14}  {done:<22}{entry.get('last_graded', '-')}")
    return neutralise.terminal("\n".join(rows)) + "\n"


def _fraction(score: Any, maximum: Any) -> str:
    score, maximum = _number(score), _number(maximum)
    return f"{'-' if score is None else format(score, 'g')} / {'-' if maximum is None else format(maximum, 'g')}"
