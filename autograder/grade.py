"""Grading one submission from Python or the command line: runs pytest with the plugin, returns the report."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from autograder import plugin

# Our own configuration, never the course's or the student's: no conftest.py from anywhere, no cache
# folder written into the student's directory, no other plugins auto-loaded beside ours.
BASE_ARGS = ["-p", "autograder.plugin", "-p", "pytest_timeout", "-p", "no:cacheprovider", "--noconftest",
             "-p", "no:unraisableexception", "-p", "no:threadexception",  # each gc.collect()s ~0.3 s at exit
             "--capture=sys",  # no fd redirection per check (pytest's logging plugin: plugin.GRADING_BLOCKS)
             "-o", "addopts=", "-o", "python_files=test_*.py", "-o", "python_functions=test_*",
             "-W", "ignore::pytest.PytestAssertRewriteWarning", "--rootdir", str(plugin.CHECKS_DIR)]
AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


@contextlib.contextmanager
def _no_plugin_autoload() -> Iterator[None]:
    """Only the plugins named in BASE_ARGS load (also when called from inside another pytest run)."""
    saved = os.environ.get(AUTOLOAD)
    os.environ[AUTOLOAD] = "1"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[AUTOLOAD]
        else:
            os.environ[AUTOLOAD] = saved


def pytest_args(path: Path, report: Path, *, sandbox: bool = True, model: Optional[str] = None,
                config_file: Optional[Path] = None, quiet: bool = True, html: Optional[Path] = None,
                assignment: Optional[str] = None, folder: Optional[Path] = None,
                progress: Optional[Path] = None) -> List[str]:
    args = BASE_ARGS + ["-c", str(plugin.CHECKS_DIR / "pytest.ini"), "--submission", str(path),
                        "--grade-json", str(report), "--grade-progress", str(progress) if progress else ""]
    args += ["--grade-html", str(html)] if html else []
    args += ["-q", "--no-header", "-p", "no:warnings", "--tb=no", "-rN"] if quiet else []
    args += [] if sandbox else ["--no-sandbox"]
    args += ["--model", model] if model else []
    args += ["--grading-config", str(config_file)] if config_file else []
    args += ["--assignment", assignment] if assignment else []
    args += ["--submission-folder", str(folder)] if folder else []
    return args


def grade(path: Path, report: Path, *, sandbox: bool = True, model: Optional[str] = None,
          config_file: Optional[Path] = None, echo: bool = True, extra: Sequence[str] = (),
          html: Optional[Path] = None, assignment: Optional[str] = None,
          folder: Optional[Path] = None, progress: Optional[Path] = None) -> Dict[str, Any]:
    """Grade `path` with `assignment` (None: inferred, see `autograder.assignments.registry.choose`), write the
    report to `report` (and its HTML page to `html`, when given) and return it (plus the pytest exit code
    under `_exit`). `folder`: the folder the course staff named, which a symbolic link may not lead out of
    (default: the file's own). `progress`: the course progress file this grade updates (None: none, as for
    batch grading)."""
    args = pytest_args(path, report, sandbox=sandbox, model=model, config_file=config_file, html=html,
                       assignment=assignment, folder=folder, progress=progress) + list(extra)
    sink = contextlib.nullcontext() if echo else contextlib.redirect_stdout(io.StringIO())
    with sink, _no_plugin_autoload():
        code = pytest.main(args)
    if code == pytest.ExitCode.INTERRUPTED:  # pytest caught a Ctrl-C: it stops the caller too (a batch's warm-up)
        raise KeyboardInterrupt
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"pytest ended with exit code {int(code)} while grading {path}")
    document = json.loads(Path(report).read_text())
    document["_exit"] = int(code)
    return document
