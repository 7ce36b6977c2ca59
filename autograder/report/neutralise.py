"""Neutralisers: student text (file names, messages, printed output) made inert for the one reader it goes to.

One function per reader, each applied where that reader's view is written:

- `terminal`: a terminal or a CI log. Control characters (C0 but tab, DEL, C1: ESC [ moves the cursor,
  ESC ] sets titles and links) and bidirectional overrides become '?', carriage returns cannot overwrite a
  line, and nothing can speak to GitHub's runner (`workflow`).
- `workflow`: a line GitHub's runner reads. It takes a line as a workflow command when, after leading
  whitespace is trimmed, it starts with '::' (::error::, ::add-mask::, ::stop-commands::), and takes the
  legacy '##[command]' form anywhere in a line: a visible mark goes before the first kind, the second is
  broken up. (The exports to Classroom and Gradescope use this one too.)
- `csv_cell`: a gradebook cell that a spreadsheet or `cat` reads. Every control character (tab, CR and
  LF included: a quoted newline forges a row under `cat`) becomes '?', and a cell a spreadsheet would
  read as a formula (starting with = + - @, tab or CR) gets a leading apostrophe; no workflow command
  either (a TA may `cat` the gradebook in a CI step).
- `path_text`: a file name as text that every reader can hold. A name that is not UTF-8 (a Latin-1 name
  from an unzipped upload reaches Python as lone surrogates, which no UTF-8 writer accepts) shows its odd
  bytes as \\xNN escapes.

JSON needs no neutraliser of its own: `json.dumps` escapes every control character, and `path_text`
keeps file names encodable.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Union

# C0 but tab, DEL, C1, and the bidirectional marks and overrides that display text in another order
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CSV_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _workflow_line(line: str) -> str:
    line = line.replace("##[", "# #[")
    return "| " + line if line.lstrip().startswith("::") else line


def workflow(text: str) -> str:
    """`text` with no line that GitHub's runner would execute as a workflow command (see the module)."""
    return "\n".join(_workflow_line(line) for line in path_text(text).split("\n"))


def terminal(text: str) -> str:
    """`text` safe to print on a terminal or into a CI log: no control characters, no line that overwrites
    another (splitlines also splits at carriage returns), no workflow command."""
    return "\n".join(_workflow_line(_CONTROL.sub("?", line)) for line in path_text(text).splitlines())


def csv_cell(value: Any) -> Any:
    """A gradebook cell: strings lose control characters and cannot start a formula; numbers pass as they are."""
    if not isinstance(value, str):
        return value
    value = _workflow_line(_CSV_CONTROL.sub("?", path_text(value)))  # `cat gradebook.csv` in a CI step too
    return "'" + value if value.startswith(_FORMULA_START) else value


def path_text(path: Union[str, Path]) -> str:
    """A path (or any str from the file system) as valid text: bytes that are not UTF-8 become \\xNN
    (also lone surrogates that did not come from the file system)."""
    text = str(path)
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")
