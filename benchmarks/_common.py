"""What the benchmarks share: the command a student types to grade one file, in a student's environment."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]


def student_command(submission: Path, report: Path, config: Optional[Path] = None,
                    model: Optional[str] = None) -> List[str]:
    """`python -m pytest --submission FILE`, the way a student grades one file, in a fresh interpreter."""
    command = [sys.executable, "-m", "pytest", "--submission", str(submission), "--grade-json", str(report), "-q"]
    command += ["--grading-config", str(config)] if config else []
    return command + (["--model", model] if model else [])


def add_as_is(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if set (default: remove it, as on a student's machine)")


def students_environment(as_is: bool) -> None:
    """Python caches compiled modules (`__pycache__`) unless PYTHONDONTWRITEBYTECODE is set: a student's
    machine caches them, some containers (this one) do not, and then every grading process compiles the
    grader's modules again. Unless `as_is`, remove the variable for this process and the commands it runs,
    and say so."""
    if not as_is and os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        print("PYTHONDONTWRITEBYTECODE is set here: removed for these runs, so that Python caches compiled modules "
              "as on a student's machine (--as-is keeps it)")
