"""Views of a batch's reports for the course staff: gradebook.csv, summary.json and scores.png.

Every figure here is read back from the per-submission reports, so a resumed batch summarizes reports
graded in earlier runs exactly like fresh ones.
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from autograder.report import document as report_mod
from autograder.report import neutralise

HISTOGRAM_BINS = 10
SLOWEST = 5


@dataclass(frozen=True)
class Row:
    """One submission of the batch: its report name, its report, and how its grading ended (`batch.OUTCOMES`)."""

    name: str
    document: Dict[str, Any]
    outcome: str


def _section_cell(section: Any) -> Any:
    if section is None:
        return ""
    return "not graded" if report_mod.section_not_graded(section) else section["score"]


def gradebook_csv(rows: Sequence[Row]) -> str:
    """One line per submission: the assignment graded, scores, status and one column per section score
    ("not graded" for a section this machine could not run; the sections of every assignment in the batch, in the order the reports list them). Every cell is
    neutralised for spreadsheets and `cat` (file names are the student's: no formula, no control character)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = list(dict.fromkeys(name for r in rows for name in r.document["sections"]))
    writer.writerow(["submission", "assignment", "score", "max_score", "status", "outcome", *columns, "duration_s",
                     "path", "sha256"])
    for r in rows:
        doc = r.document
        sections = [_section_cell(doc["sections"].get(s)) for s in columns]
        row = [r.name, doc["assignment"], doc["score"], doc["max_score"], doc["status"], r.outcome, *sections,
               doc["timing"]["duration_s"], doc["submission"]["path"], doc["submission"]["sha256"]]
        writer.writerow([neutralise.csv_cell(cell) for cell in row])
    return out.getvalue()


def summary(rows: Sequence[Row]) -> Dict[str, Any]:
    """Counts, per-check pass rates, the score distribution, the slowest submissions, and the groups of
    identical submissions (same sha256: copies, or links to a classmate's file), for the course staff."""
    docs = [r.document for r in rows]
    scores = [float(d["score"]) for d in docs]
    top = max((float(d["max_score"]) for d in docs), default=0.0)
    counts, edges = np.histogram(scores, bins=HISTOGRAM_BINS, range=(0.0, top or 1.0))
    outcomes = Counter(r.outcome for r in rows)
    statuses = Counter(doc["status"] for doc in docs)
    results: Dict[str, List[bool]] = {}
    for doc in docs:
        for check in doc["checks"]:
            if check["status"] != "not_graded":  # a pass rate counts the submissions the check graded
                results.setdefault(check["id"], []).append(check["status"] == "passed")
    slowest = sorted(rows, key=lambda r: -r.document["timing"]["duration_s"])[:SLOWEST]
    same: Dict[str, List[str]] = {}
    for r in rows:
        if r.document["submission"]["sha256"]:
            same.setdefault(r.document["submission"]["sha256"], []).append(r.name)
    return {
        "count": len(rows),
        "status": dict(statuses),
        "outcome": dict(outcomes),
        "max_score": top,
        "scores": {
            "mean": round(statistics.fmean(scores), 3) if scores else None,
            "median": statistics.median(scores) if scores else None,
            "min": min(scores, default=None),
            "max": max(scores, default=None),
            "full_marks": sum(float(d["score"]) >= float(d["max_score"]) for d in docs),
            "histogram": {"edges": [round(float(e), 3) for e in edges], "counts": [int(c) for c in counts]},
        },
        "pass_rates": {cid: round(sum(passed) / len(passed), 4) for cid, passed in results.items()},
        "slowest": [{"submission": r.name, "duration_s": r.document["timing"]["duration_s"]} for r in slowest],
        "identical": sorted(sorted(names) for names in same.values() if len(names) > 1),
    }


def scores_png(histogram: Dict[str, List[float]], path: Path) -> None:
    """Draw summary()'s score histogram (matplotlib's Agg canvas: no display, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    edges = histogram["edges"]
    ax.bar(edges[:-1], histogram["counts"], width=np.diff(edges), align="edge", edgecolor="black")
    ax.set_xlabel("score")
    ax.set_ylabel("submissions")
    ax.set_title(f"{sum(histogram['counts'])} submissions")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    report_mod.write_atomically(path, buffer.getvalue())


def write_all(rows: Sequence[Row], out: Path, extra: Dict[str, Any]) -> Dict[str, Any]:
    """Write gradebook.csv, summary.json (with `extra` merged in) and scores.png into `out`; returns the summary."""
    report_mod.write_atomically(out / "gradebook.csv", gradebook_csv(rows).encode())
    document = {**summary(rows), **extra}
    report_mod.write(document, out / "summary.json")
    scores_png(document["scores"]["histogram"], out / "scores.png")
    return document
