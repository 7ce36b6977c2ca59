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
from typing import Callable, NoReturn, Optional, Sequence


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


_one_shot = False  # this process grades once and ends (see `one_shot`)


def pytest_is_the_program(args: Sequence[str]) -> bool:
    """Whether this process is `pytest ...` or `python -m pytest ...` run with `args` (the session's
    invocation arguments): not a program calling pytest.main, and not a grade nested in a test run."""
    import pytest

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    is_pytest = (getattr(spec, "name", None) == "pytest.__main__"
                 or getattr(main, "console_main", None) is pytest.console_main)
    return is_pytest and tuple(args) == tuple(sys.argv[1:])


def one_shot() -> None:
    """Mark this process as one that grades once and ends (`pytest --submission` as the program): see
    `is_one_shot`, `freeze_if_one_shot`."""
    global _one_shot
    _one_shot = True


def is_one_shot() -> bool:
    return _one_shot


def freeze_if_one_shot() -> None:
    """In a one-shot grading process, hide everything alive now (torch, transformers, the model) from the
    garbage collector: pytest's unraisable-exception plugin runs five full collections at exit, ~0.5 s over
    the objects of those imports. (A process that goes on grading would keep its garbage forever.)"""
    if _one_shot:
        gc.freeze()
