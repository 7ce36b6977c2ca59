"""Guards around student code: banned APIs raise a clear error, the grader's answers cannot be imported.

Used by the worker around the import and every call. Inside the sandbox these are a courtesy that names
the rule; the filesystem layer (Landlock) is what actually keeps `reference/` unreadable.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import sys
from typing import Any, Iterator, List, Sequence, Tuple

# Packages holding the right answers or the checks: a submission importing them would grade itself.
BLOCKED_IMPORTS: Tuple[str, ...] = ("reference", "autograder")


class BannedAPIError(RuntimeError):
    """Raised inside student code when it calls an API the course has banned for this assignment."""


class _ImportBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in BLOCKED_IMPORTS:
            raise ImportError(f"importing '{fullname}' is not allowed in a submission: write the code yourself")
        return None


def _banned_stand_in(dotted: str) -> Any:
    message = f"{dotted} is not allowed in this assignment: implement it yourself from the sections"

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise BannedAPIError(message)

    refuse.__qualname__ = refuse.__name__ = dotted.rsplit(".", 1)[-1]
    refuse.banned = dotted  # type: ignore[attr-defined]
    return refuse


def _resolve(dotted: str) -> Tuple[Any, str]:
    module_name, attr = dotted.rsplit(".", 1)
    owner: Any = importlib.import_module(module_name.split(".")[0])
    for part in module_name.split(".")[1:]:
        owner = getattr(owner, part)
    return owner, attr


_scan: Tuple[int, Tuple[str, ...]] = (-1, ())


def _blocked_loaded() -> Tuple[str, ...]:
    """Names of loaded modules under BLOCKED_IMPORTS; rescanned only when sys.modules grew or shrank
    (a full scan on every call cost a third of a grading run)."""
    global _scan
    if _scan[0] != len(sys.modules):
        names = tuple(n for n in sys.modules if n.partition(".")[0] in BLOCKED_IMPORTS)
        _scan = (len(sys.modules), names)
    return _scan[1]


@contextlib.contextmanager
def guarded(banned: Sequence[str]) -> Iterator[None]:
    """Within the block, each dotted name in `banned` raises BannedAPIError and BLOCKED_IMPORTS fail."""
    saved: List[Tuple[Any, str, Any]] = []
    for dotted in banned:
        try:
            owner, attr = _resolve(dotted)
        except (ImportError, AttributeError):
            continue  # an API this torch does not have cannot be called anyway
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, _banned_stand_in(dotted))
    hidden = {name: sys.modules[name] for name in _blocked_loaded() if name in sys.modules}
    for name in hidden:
        del sys.modules[name]
    blocker = _ImportBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        if blocker in sys.meta_path:
            sys.meta_path.remove(blocker)
        sys.modules.update(hidden)
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)
