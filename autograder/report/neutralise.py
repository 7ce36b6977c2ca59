"""Neutralisers: student text (file names, messages, printed output) made inert for the one reader it goes to.

One function per reader, each applied where that reader's view is written:

- `workflow`: a line GitHub's runner reads. It takes a line as a workflow command when, after leading
  whitespace is trimmed, it starts with '::' (::error::, ::add-mask::, ::stop-commands::), and takes the
  legacy '##[command]' form anywhere in a line: a line that would start with '::' (also behind invisible
  format characters such as a BOM) gets a visible '| ' in front, '##[' is broken up, every line break a
  reader may honour (\r, U+2028, ...) ends a line, and control characters become '?'.
- `terminal`: a terminal or a CI log: `workflow`, and the bidirectional marks and overrides (which show
  text in another order than it is written) become '?' too (ESC [ moves the cursor, ESC ] sets titles and
  links: gone with the control characters).
- `csv_cell`: a gradebook cell that a spreadsheet or `cat` reads. Every control character (tab, CR and
  LF included: a quoted newline forges a row under `cat`) becomes '?', and a cell a spreadsheet would
  read as a formula (starting with = + - @, tab or CR) gets a leading apostrophe; no workflow command
  either (a TA may `cat` the gradebook in a CI step).
- `html`: HTML text or a quoted attribute: escaped, control characters and bidirectional marks as '?'.
- `path_text`: a file name as text that every reader can hold. A name that is not UTF-8 (a Latin-1 name
  from an unzipped upload reaches Python as lone surrogates, which no UTF-8 writer accepts) shows its odd
  bytes as \\xNN escapes.

JSON needs no neutraliser of its own: `json.dumps` escapes every control character, and `path_text`
keeps file names encodable.
"""
from __future__ import annotations

import html as _html
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Union

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and LF, DEL, C1
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CSV_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _ignorable(char: str) -> bool:
    """A character a runner might trim before it looks for '::': whitespace in any definition (Python's
    is a superset of .NET's TrimStart), separators, invisible format and control characters (BOM, ...)."""
    return char.isspace() or unicodedata.category(char) in ("Zs", "Zl", "Zp", "Cf", "Cc")


def _workflow_line(line: str) -> str:
    while "##[" in line:
        line = line.replace("##[", "# #[")
    rest = line
    while rest and _ignorable(rest[0]):
        rest = rest[1:]
    return "| " + line if rest.startswith("::") else line


def workflow(text: str) -> str:
    """`text` with no line that GitHub's runner would execute as a workflow command (see the module)."""
    return "\n".join(_workflow_line(_CONTROL.sub("?", line)) for line in path_text(text).splitlines())


def terminal(text: str) -> str:
    """`text` safe to print on a terminal or into a CI log: no control character or bidirectional mark, no
    line that overwrites another (splitlines also splits at carriage returns), no workflow command."""
    return workflow(_BIDI.sub("?", path_text(text)))


def csv_cell(value: Any) -> Any:
    """A gradebook cell: strings lose control characters and cannot start a formula; numbers pass as they are."""
    if not isinstance(value, str):
        return value
    value = _workflow_line(_CSV_CONTROL.sub("?", _BIDI.sub("?", path_text(value))))
    return "'" + value if value.startswith(_FORMULA_START) else value


def html(value: Any) -> str:
    """Text for HTML text or a quoted attribute: &, <, >, " and ' escaped; control characters and the
    bidirectional marks replaced by '?'."""
    return _html.escape(_BIDI.sub("?", _CONTROL.sub("?", path_text(str(value)))), quote=True)


def path_text(path: Union[str, Path]) -> str:
    """A path (or any str from the file system) as valid text: bytes that are not UTF-8 become \\xNN
    (also lone surrogates that did not come from the file system)."""
    text = str(path)
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")
