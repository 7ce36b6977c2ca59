"""The terminal view of a report: points per section, then what to fix, then what the code printed."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

from autograder.report.document import failing_groups

OUTPUT_LINES = 20

# Terminal control: C0 (but tab), DEL, C1 (ESC [ ... moves the cursor, ESC ] sets titles and links), and
# the bidirectional overrides that display text in another order than it is written.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _neutral_line(line: str) -> str:
    """One line that a CI runner will not execute and a terminal will not obey.

    GitHub's runner takes a line as a workflow command when, after leading whitespace is trimmed
    (TrimStart), it starts with '::' (::error::, ::add-mask::, ::stop-commands::, ::set-output), and takes
    the legacy '##[command]' form anywhere in a line: a visible mark goes before such a line, and '##['
    is broken up."""
    line = _CONTROL.sub("?", line).replace("##[", "# #[")
    return "| " + line if line.lstrip().startswith("::") else line


def sanitize(text: str) -> str:
    """Text with student parts that must not speak to CI or to the terminal (see _neutral_line); splitlines
    also splits at carriage returns, which would let a line overwrite the one before it."""
    return "\n".join(_neutral_line(line) for line in str(text).splitlines())


def render(document: Dict[str, Any], report_path: Path) -> str:
    lines: List[str] = ["", f"=== attention-autograder: {document['submission']['name']} (assignment "
                            f"{document['assignment']}) ==="]
    if document["submission"]["load_error"]:
        lines.append(f"Could not load the submission: {document['submission']['load_error']}")
    lines.append(f"{'section':<14}{'points':>12}{'checks':>10}")
    for name, sec in document["sections"].items():
        lines.append(f"{name:<14}{sec['score']:>6g} / {sec['max_score']:<4g}{sec['passed']:>5}/{sec['total']}")
    lines.append(f"{'total':<14}{document['score']:>6g} / {document['max_score']:<4g}")
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
    for art in document.get("artifacts", []):
        lines.append(f"picture: {art['path']}")
    lines.append(f"report: {report_path}")
    # student text reaches many of these lines (file names, messages, hints, output): one pass over all
    return sanitize("\n".join(lines)) + "\n"
