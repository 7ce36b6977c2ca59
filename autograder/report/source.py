"""Where in the student's file a failure arose: a few numbered lines of the graded source.

Views read the source at render time from `submission.path`, and only when that file is still the one
that was graded (its sha256 is the report's) and small: a view shows no lines rather than lines of
another version. A notebook is read as the module the worker imported (`runtime.notebook.module_source`:
its code cells, in order), and an excerpt stays inside one code cell, numbered by the cell's own lines.
The excerpt is the line a message names ("... at line 9 (...)", "at code cell 3, line 2 (...)", a syntax
error's line) with a little context, else the function the message names, shown whole up to a cap.
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from autograder.runtime import notebook

MAX_FILE_BYTES = 1_000_000
CONTEXT = 2             # lines either side of the line a message names
MAX_FUNCTION_LINES = 25  # of a function shown whole; the rest is counted, not shown
MAX_LINE_CHARS = 160

_AT_LINE = re.compile(r"\bat (?:code cell (\d+), )?line (\d+)\b")


@dataclass(frozen=True)
class Excerpt:
    """Lines `first`..`first + len(lines) - 1` (1-based) of code cell `cell` (0: a .py file, numbered as the
    file); `mark` is the line the failure names (None when the excerpt is a whole function); `more` counts
    the function's lines left out."""

    first: int
    lines: List[str]
    mark: Optional[int]
    more: int = 0
    cell: int = 0

    def numbered(self) -> List[Tuple[int, str]]:
        return [(self.first + i, line) for i, line in enumerate(self.lines)]


def graded_source(submission: Dict[str, Any]) -> Optional[notebook.ModuleSource]:
    """The module of the report's submission (`document["submission"]`) when the file on disk is the graded
    .py file or notebook, else None (missing, changed since grading, too large, not a submission, unreadable)."""
    path = Path(submission["path"])
    if not submission.get("sha256") or path.suffix not in notebook.SUFFIXES:
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != submission["sha256"]:
        return None
    if path.suffix != notebook.NOTEBOOK:  # shown as it is on disk, undecodable bytes and all
        return notebook.assemble([raw.decode("utf-8", errors="replace")], notebook=False)
    try:
        return notebook.module_source(path, raw)
    except (UnicodeDecodeError, notebook.NotebookError):
        return None


def excerpt(module: notebook.ModuleSource, message: str) -> Optional[Excerpt]:
    """The lines of `module` that `message` points at (within one cell of a notebook), or None when it
    points at none."""
    cells = {cell.number: cell.source.split("\n") for cell in module.cells}
    named = []
    for cell_number, line in _AT_LINE.findall(message):
        if bool(cell_number) == module.notebook:  # "at line N" of a .py; "at code cell C, line N" of a notebook
            number = int(cell_number or 0)
            if 1 <= int(line) <= len(cells.get(number, [])):
                named.append((number, int(line)))
    if named:  # the last one: the worker appends "at line N (source)" after the exception's own text
        number, mark = named[-1]
        lines = cells[number]
        first, last = max(1, mark - CONTEXT), min(len(lines), mark + CONTEXT)
        return Excerpt(first, _clip(lines[first - 1:last]), mark, cell=number)
    span = _function_named(module.text.split("\n"), message)
    if span is None:
        return None
    cell = module.cell_at(span[0])
    lines = cell.source.split("\n")
    first, last = (n - cell.first_line + 1 for n in span)
    shown = min(last, first + MAX_FUNCTION_LINES - 1)
    return Excerpt(first, _clip(lines[first - 1:shown]), None, last - shown, cell.number)


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
