"""Which assignments are installed, and which one a submission is.

Built-in assignments are the packages listed in BUILTIN; a course adds its own through an entry point in the
group `autograder.assignments` whose object is an `Assignment` (or a callable returning one):

    [project.entry-points."autograder.assignments"]
    linear_regression = "my_course.linreg:ASSIGNMENT"
"""
from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set

from autograder.assignments.spec import Assignment
from autograder.runtime import notebook

GROUP = "autograder.assignments"
BUILTIN = ("autograder.assignments.attention", "autograder.assignments.multihead",
           "autograder.assignments.block", "autograder.assignments.embeddings",
           "autograder.assignments.tokenization", "autograder.assignments.tinygpt")  # each package's ASSIGNMENT


class AssignmentError(ValueError):
    """No such assignment, a broken entry point, or a submission whose assignment cannot be told."""


def _resolve(obj: object, where: str) -> Assignment:
    found = obj() if callable(obj) and not isinstance(obj, Assignment) else obj
    if not isinstance(found, Assignment):
        raise AssignmentError(f"{where} is not an autograder Assignment (got {type(found).__name__})")
    return found


def installed() -> Dict[str, Assignment]:
    """Every assignment by name: the built-in ones, then the entry points (which cannot replace them)."""
    found: Dict[str, Assignment] = {}
    for package in BUILTIN:
        spec = _resolve(importlib.import_module(package).ASSIGNMENT, package)
        found[spec.name] = spec
    for entry in importlib.metadata.entry_points(group=GROUP):
        try:
            spec = _resolve(entry.load(), f"entry point {entry.name} = {entry.value}")
        except AssignmentError:
            raise
        except Exception as exc:  # noqa: BLE001 - a course package that fails to import: say which
            raise AssignmentError(f"entry point {entry.name} = {entry.value} failed to load: "
                                  f"{type(exc).__name__}: {exc}") from exc
        found.setdefault(spec.name, spec)
    return found


def get(name: str) -> Assignment:
    """The installed assignment called `name`; AssignmentError naming the installed ones otherwise."""
    available = installed()
    if name not in available:
        raise AssignmentError(f"no assignment {name!r}; installed: {', '.join(sorted(available))}")
    return available[name]


def defined_names(path: Path) -> Set[str]:
    """The top-level names a submission defines (def, assignment, import), read without running it (a
    notebook: its code cells); empty when it cannot be read or parsed."""
    try:
        tree = ast.parse(notebook.module_source(Path(path), Path(path).read_bytes()).text)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: not UTF-8, not a notebook
        return set()
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def infer(functions: Iterable[str], configured: Optional[str] = None,
          available: Optional[Dict[str, Assignment]] = None) -> Assignment:
    """The assignment a file defining `functions` is for.

    1. Those whose required functions the file all defines, the most specific first (the one matching
       most of the file's functions); 2. else those sharing most functions with the file; a unique best
       one wins. 3. Else the course config's choice (`configured`). 4. Else AssignmentError naming the
       candidates.
    """
    available = installed() if available is None else available
    defined = set(functions)
    complete = [a for a in available.values() if set(a.required) <= defined and a.required]
    pool = complete or [a for a in available.values() if defined & set(a.function_names)]
    best = _most_matching(pool, defined)
    if len(best) == 1:
        return best[0]
    if configured:
        if configured not in available:
            raise AssignmentError(f"the course config names assignment {configured!r}, which is not installed; "
                                  f"installed: {', '.join(sorted(available))}")
        return available[configured]
    candidates = best or list(available.values())
    if len(candidates) == 1:
        return candidates[0]
    raise AssignmentError(f"cannot tell which assignment this file is for (candidates: "
                          f"{', '.join(sorted(a.name for a in candidates))}); give --assignment NAME or set "
                          "assignment = \"NAME\" in the course config")


def _most_matching(pool: List[Assignment], defined: Set[str]) -> List[Assignment]:
    if not pool:
        return []
    overlap = {a.name: len(defined & set(a.function_names)) for a in pool}
    top = max(overlap.values())
    return [a for a in pool if overlap[a.name] == top]


def choose(path: Path, explicit: Optional[str] = None, configured: Optional[str] = None) -> Assignment:
    """The assignment to grade `path` with: `explicit` (--assignment), else inferred from the file (see
    `infer`, `configured` being the course config's `assignment`)."""
    if explicit:
        return get(explicit)
    return infer(defined_names(path), configured)
