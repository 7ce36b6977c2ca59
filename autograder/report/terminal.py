"""The terminal view of a report: points per section, then what to fix, then what the code printed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from autograder.report import neutralise
from autograder.report.document import failing_groups, section_not_graded

OUTPUT_LINES = 20


def sanitize_live(text: str) -> str:
    """`neutralise.terminal` for a piece of output shown as it is printed: line ends are kept (a carriage return
    becomes one)."""
    pieces = str(text).splitlines(keepends=True)
    return "".join(neutralise.terminal(p.rstrip("\r\n")) + ("\n" if p.rstrip("\r\n") != p else "") for p in pieces)


def _pictures_line(artifacts: List[Dict[str, Any]]) -> str:
    """One line for all pictures: how many, and the folder(s) that hold them ("" when there are none)."""
    if not artifacts:
        return ""
    folders = list(dict.fromkeys(str(Path(art["path"]).parent) for art in artifacts))
    return f"pictures: {len(artifacts)} in {', '.join(folder + '/' for folder in folders)}"


def render(document: Dict[str, Any], report_path: Path) -> str:
    lines: List[str] = ["", f"=== attention-autograder: {document['submission']['name']} (assignment "
                            f"{document['assignment']}) ==="]
    if document["submission"]["load_error"]:
        lines.append(f"Could not load the submission: {document['submission']['load_error']}")
    lines.append(f"{'section':<14}{'points':>12}{'checks':>10}")
    for name, sec in document["sections"].items():
        if section_not_graded(sec):
            lines.append(f"{name:<14}{'not graded':>12}{'-':>5}/{sec['total']}")
        else:
            lines.append(f"{name:<14}{sec['score']:>6g} / {sec['max_score']:<4g}{sec['passed']:>5}/{sec['total']}")
    total = f"{'total':<14}{document['score']:>6g} / {document['max_score']:<4g}"
    lines.append(total + ("  (incomplete)" if document["status"] == "incomplete" else ""))
    for missing in document.get("not_graded", []):
        counted = ("kept in the maximum: this grade is incomplete" if missing["counted"]
                   else "not counted in the total")
        lines.append(f"Not graded: {missing['section']} ({missing['checks']} checks, {counted}): {missing['reason']}")
    model = document["environment"].get("model")
    if model and model.get("source") and document["sections"].get("model"):
        lines.append(f"model: {model['name']} ({model['why']})")
    groups = failing_groups(document["checks"])
    if document["submission"]["load_error"]:
        lines.append(f"All {sum(map(len, groups))} checks score 0 until the file loads.")
    elif groups:
        lines.append("")
        lines.append("What to fix:")
        for group, following in zip(groups, groups[1:] + [None]):
            lost = sum(c["max_score"] for c in group)
            ids = ", ".join(c["id"] for c in group)
            lines.append(f"  [{ids}] ({group[0]['status']}, -{lost:g}) {group[0]['message']}")
            hint = group[0].get("hint")
            if hint and (following is None or following[0].get("hint") != hint):  # a shared hint once, after its run
                lines.append(f"      hint: {hint}")
    output = document["submission"]["output"].strip()
    if output:
        shown = output.splitlines()
        lines.append("")
        lines.append(f"Your code printed ({len(shown)} lines{', first ' + str(OUTPUT_LINES) if len(shown) > OUTPUT_LINES else ''}):")
        lines.extend("  | " + line for line in shown[:OUTPUT_LINES])
    pictures = _pictures_line(document.get("artifacts", []))
    if pictures:
        lines.append(pictures)
    lines.append(f"report: {report_path}")
    # student text reaches many of these lines (file names, messages, hints, output): one pass over all
    return neutralise.terminal("\n".join(lines)) + "\n"
