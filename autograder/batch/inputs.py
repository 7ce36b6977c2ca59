"""What a batch's inputs become: the files that get a row (`collect`), the folder each came from, the
name of each row (`report_names`) and the assignment each is graded with (`assignments`)."""
from __future__ import annotations

import glob
import hashlib
import itertools
import os
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from autograder.assignments import AssignmentError
from autograder.plugin import assignment_for

RESERVED_NAMES = ("summary",)  # report names that would overwrite a batch output


def collect(inputs: Sequence[str]) -> Tuple[Dict[Path, Path], List[str]]:
    """What gets a row: files as given and glob matches, whatever they are (`*.py` and `*.ipynb` are graded,
    any other file's report says why it is not), the visible files inside folders (not recursive), and a
    folder that has none; absolute, without repeats. Returns ({file: the folder its input named
    (`named_folder`)}, the inputs that matched none)."""
    found: Dict[Path, Path] = {}
    unmatched = []
    for item in inputs:
        exists = Path(item).exists() or Path(item).is_symlink()
        matches = [Path(item)] if exists else [Path(m) for m in sorted(glob.glob(item))]
        files = [f for path in matches for f in (_in_folder(path) if path.is_dir() else [path])]
        if not files:
            unmatched.append(item)
        folder = named_folder(item) if files else None
        for file in files:
            found.setdefault(file.absolute(), folder)
    return found, unmatched


def named_folder(item: str) -> Path:
    """The folder an input names, which its submissions' symbolic links may not lead out of: a folder
    itself, a file's own folder, a pattern's part before its first wildcard (`hw3` for `hw3/*/attention.py`)."""
    path = Path(item)
    if path.is_dir():
        return path.absolute()
    if path.exists() or path.is_symlink():
        return path.absolute().parent
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), path.parts))
    return Path(*fixed).absolute() if fixed else Path.cwd()


def _in_folder(folder: Path) -> List[Path]:
    """A folder's visible files (not `.ipynb_checkpoints/`, not subfolders), or the folder itself when it
    has none: its row says that it holds nothing to grade."""
    files = sorted(p for p in folder.iterdir() if (p.is_file() or p.is_symlink()) and not p.name.startswith("."))
    return files or [folder]


def report_names(paths: Sequence[Path]) -> Dict[Path, str]:
    """`alice.py` -> `alice`; files that share a name get their folder's name in front (`a-attention`), and
    a hash of their path where that still clashes (also for names of the batch's own outputs). A name keeps
    letters, digits, '.', '_' and '-' only (no leading '.' or '-'), whatever the student called the file: it
    becomes a file name in the output folder and the first cell of the gradebook."""
    stems = Counter(safe_name(p.stem) for p in paths)
    names = {p: safe_name(p.stem if stems[safe_name(p.stem)] == 1 else f"{p.parent.name}-{p.stem}") for p in paths}
    counts = Counter(names.values())
    return {p: f"{n}-{hashlib.sha256(os.fsencode(p)).hexdigest()[:8]}" if counts[n] > 1 or n in RESERVED_NAMES
            else n for p, n in names.items()}


def safe_name(text: str) -> str:
    """`text` with every character but letters, digits, '.', '_' and '-' replaced by '_', leading dots and
    dashes dropped (no hidden file, nothing a command takes for an option)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text).lstrip(".-")
    return cleaned or "_"


def assignments(paths: Sequence[Path], folders: Dict[Path, Path], explicit: Optional[str],
                 configured: Optional[str]) -> Dict[Path, str]:
    """Each file's assignment (`assignment_for`). A file that tells none (notes.txt, an archive, an empty
    folder, a .py defining none of the functions) is graded with the batch's most common one, so that its
    row says what is wrong with it; AssignmentError only when no file tells one."""
    chosen: Dict[Path, str] = {}
    undecided: List[Tuple[Path, AssignmentError]] = []
    for path in paths:
        try:
            chosen[path] = assignment_for(path, folders[path], explicit, configured).name
        except AssignmentError as exc:
            undecided.append((path, exc))
    if undecided and not chosen:
        raise undecided[0][1]
    if undecided:
        common = Counter(chosen.values()).most_common(1)[0][0]
        chosen.update((path, common) for path, _ in undecided)
    return {path: chosen[path] for path in paths}
