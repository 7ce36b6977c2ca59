"""The terminal view of a report: points per section, then what to fix, then what the code printed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

OUTPUT_LINES = 20


def _sanitize(text: str) -> str:
    """Student text must not speak to CI: a line starting with '::' would be a GitHub workflow command."""
    return "\n".join(("  " + line) if line.lstrip().startswith("::") else line for line in text.splitlines())


def render(document: Dict[str, Any], report_path: Path) -> str:
    lines: List[str] = ["", f"=== attention-autograder: {document['submission']['name']} ==="]
    if document["submission"]["load_error"]:
        lines.append(f"Could not load the submission: {_sanitize(document['submission']['load_error'])}")
    lines.append(f"{'section':<14}{'points':>12}{'checks':>10}")
    for name, sec in document["sections"].items():
        lines.append(f"{name:<14}{sec['score']:>6g} / {sec['max_score']:<4g}{sec['passed']:>5}/{sec['total']}")
    lines.append(f"{'total':<14}{document['score']:>6g} / {document['max_score']:<4g}")
    failing = [c for c in document["checks"] if c["status"] != "passed"]
    if document["submission"]["load_error"]:
        lines.append(f"All {len(failing)} checks score 0 until the file loads.")
    elif failing:
        lines.append("")
        lines.append("What to fix:")
        for c in failing:
            lines.append(f"  [{c['id']}] ({c['status']}, -{c['max_score']:g}) {_sanitize(c['message'])}")
            if c.get("hint"):
                lines.append(f"      hint: {_sanitize(c['hint'])}")
    output = document["submission"]["output"].strip()
    if output:
        shown = output.splitlines()
        lines.append("")
        lines.append(f"Your code printed ({len(shown)} lines{', first ' + str(OUTPUT_LINES) if len(shown) > OUTPUT_LINES else ''}):")
        lines.extend("  | " + _sanitize(line) for line in shown[:OUTPUT_LINES])
    for art in document.get("artifacts", []):
        lines.append(f"picture: {art['path']}")
    lines.append(f"report: {report_path}")
    return "\n".join(lines) + "\n"
