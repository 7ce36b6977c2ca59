"""Where in the student's file a failure arose: a few numbered lines of the graded source.

Views read the source at render time from `submission.path`, and only when that file is still the one
that was graded (its sha256 is the report's) and small: a view shows no lines rather than lines of
another version. The excerpt is the line a message names ("... at line 9 (...)", a syntax error's line)
with a little context, else the function the message names, shown whole up to a cap.
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MAX_FILE_BYTES = 1_000_000
CONTEXT = 2             # lines either side of the line a message names
MAX_FUNCTION_LINES = 25  # of a function shown whole; the rest is counted, not shown
MAX_LINE_CHARS = 160

_AT_LINE = re.compile(r"\bat line (\d+)\b")


@dataclass(frozen=True)
class Excerpt:
    """Lines `first`..`first + len(lines) - 1` (1-based) of the file; `mark` is the line the failure names
    (None when the excerpt is a whole function); `more` counts the function's lines left out."""

    first: int
    lines: List[str]
    mark: Optional[int]
    more: int = 0

    def numbered(self) -> List[Tuple[int, str]]:
        return [(self.first + i, line) for i, line in enumerate(self.lines)]


def graded_source(submission: Dict[str, Any]) -> Optional[List[str]]:
    """The lines of the report's submission (`document["submission"]`) when the file on disk is the graded
    .py file, else None (missing, changed since grading, too large, not a .py file)."""
    path = Path(submission["path"])
    if not submission.get("sha256") or path.suffix != ".py":
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != submission["sha256"]:
        return None
    return raw.decode("utf-8", errors="replace").splitlines()


def excerpt(lines: List[str], message: str) -> Optional[Excerpt]:
    """The lines of `lines` (a whole file) that `message` points at, or None when it points at none."""
    named = [int(n) for n in _AT_LINE.findall(message) if 1 <= int(n) <= len(lines)]
    if named:  # the last one: the worker appends "at line N (source)" after the exception's own text
        mark = named[-1]
        first, last = max(1, mark - CONTEXT), min(len(lines), mark + CONTEXT)
        return Excerpt(first, _clip(lines[first - 1:last]), mark)
    span = _function_named(lines, message)
    if span is None:
        return None
    first, last = span
    shown = min(last, first + MAX_FUNCTION_LINES - 1)
    return Excerpt(first, _clip(lines[first - 1:shown]), None, last - shown)


def _function_named(lines: List[str], message: str) -> Optional[Tuple[int, int]]:
    """(first, last) line of the top-level function whose name comes first in `message`."""
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    spans = {node.name: (min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno or node.lineno)
             for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found = [(m.start(), name) for name in spans for m in [re.search(rf"\b{re.escape(name)}\b", message)] if m]
    return spans[min(found)[1]] if found else None


def _clip(lines: List[str]) -> List[str]:
    return [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …" for line in lines]
