"""The terminal view of a report: points per section, then what to fix, then what the code printed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

OUTPUT_LINES = 20


def _sanitize(text: str) -> str:
    """Student text must not speak to CI: a line starting with '::' would be a GitHub workflow command."""
    return "\n".join(("  " + line) if line.lstrip().startswith("::") else line for line in text.splitlines())


def _grouped(checks: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    groups: Dict[Any, List[Dict[str, Any]]] = {}
    for check in checks:
        groups.setdefault((check["status"], check["message"], check.get("hint")), []).append(check)
    return list(groups.values())


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
        for group in _grouped(failing):  # one cause failing several checks is said once
            lost = sum(c["max_score"] for c in group)
            ids = ", ".join(c["id"] for c in group)
            lines.append(f"  [{ids}] ({group[0]['status']}, -{lost:g}) {_sanitize(group[0]['message'])}")
            if group[0].get("hint"):
                lines.append(f"      hint: {_sanitize(group[0]['hint'])}")
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
