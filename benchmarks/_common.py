"""What the benchmarks share: the command a student types to grade one file."""
from __future__ import annotations

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
