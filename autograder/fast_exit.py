"""Ending a grading process without the interpreter's teardown.

Finalising an interpreter that imported torch and transformers takes about a second on this project's
2-core machines (a script that only imports them spends ~1.0 s after its last atexit handler): every
module dict is cleared and every object freed one by one, for a process that is about to vanish. A
grading process has written its report and printed its table by then, so it flushes its streams and
leaves with `os._exit`.
"""
from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
from typing import Callable, NoReturn, Optional


def leave(code: int) -> NoReturn:
    """Flush the standard streams and the logging handlers, then end the process with `code` at once."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing left to save
            pass
    os._exit(code)


def at_exit(code: Callable[[], Optional[int]]) -> None:
    """When the interpreter exits, after the atexit handlers registered from now on have run, `leave(code())`;
    when `code()` is None (the program did not get as far as knowing its exit code), exit normally."""
    def _leave() -> None:
        value = code()
        if value is not None:
            leave(int(value))

    atexit.register(_leave)


def pytest_is_the_program() -> bool:
    """Whether this process is `pytest ...` or `python -m pytest ...` (not a program calling pytest.main)."""
    import pytest

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (getattr(spec, "name", None) == "pytest.__main__"
            or getattr(main, "console_main", None) is pytest.console_main)


def freeze_if_one_shot() -> None:
    """In a one-shot grading process (`pytest --submission`, where pytest is the program), hide everything
    alive now (torch, transformers, the model) from the garbage collector: pytest's unraisable-exception
    plugin runs five full collections at exit, ~0.5 s over the objects of those imports."""
    if pytest_is_the_program():
        gc.freeze()
