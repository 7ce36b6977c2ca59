"""The `autograder` command: `autograder grade PATH [--json OUT]` (batch and doctor join later).

Exit codes of `grade`: 0 full marks, 1 points lost, 2 usage error (missing path, a directory, bad config).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from autograder import __version__

EXIT_OK, EXIT_POINTS_LOST, EXIT_USAGE = 0, 1, 2


def _quiet_environment() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_grade(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        print(f"autograder: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if path.is_dir():
        print(f"autograder: {path} is a directory; give one .py file (or use `autograder batch {path}`)",
              file=sys.stderr)
        return EXIT_USAGE
    from autograder.config import ConfigError
    from autograder.grade import grade

    try:
        document = grade(path, Path(args.json), sandbox=not args.no_sandbox, model=args.model,
                         config_file=Path(args.config) if args.config else None)
    except ConfigError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if document["score"] >= document["max_score"] else EXIT_POINTS_LOST


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade attention assignments.")
    parser.add_argument("--version", action="version", version=f"attention-autograder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grade_p = sub.add_parser("grade", help="grade one submission file")
    grade_p.add_argument("path", help="the student's .py file")
    grade_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    grade_p.add_argument("--no-sandbox", action="store_true", help="run student code in-process (debugging)")
    grade_p.add_argument("--model", help="hub id or local directory of the model (default: config, distilgpt2)")
    grade_p.add_argument("--config", help="a course config file (autograder.toml format)")
    grade_p.set_defaults(func=cmd_grade)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    _quiet_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
