"""The `autograder` command: `autograder grade PATH [--json OUT]`, `autograder batch SUBMISSIONS... --out DIR`,
`autograder export REPORT --format classroom|gradescope`.

Exit codes of `grade`: 0 full marks, 1 points lost, 2 usage error (missing path, a directory, bad config).
Exit codes of `batch`: 0 the batch completed (whatever the scores), 2 usage error (nothing matched, bad
config, the reference implementation losing points in the warm-up, Dask missing or its scheduler unreachable
for --scheduler, another batch writing to --out), 130 interrupted (Ctrl-C; rerun to resume).
Exit codes of `export`: 0 written, 2 the report is missing or not a valid report.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from autograder import __version__

EXIT_OK, EXIT_POINTS_LOST, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # batch: Ctrl-C (128 + SIGINT, as a shell reports it)


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
    from autograder.config import ConfigError, load_config
    from autograder.grade import grade

    try:
        load_config(Path.cwd(), Path(args.config) if args.config else None)  # one clear error, before pytest
        document = grade(path, Path(args.json), sandbox=not args.no_sandbox, model=args.model,
                         config_file=Path(args.config) if args.config else None)
    except ConfigError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if document["score"] >= document["max_score"] else EXIT_POINTS_LOST


def cmd_batch(args: argparse.Namespace) -> int:
    from autograder.batch.executors import ExecutorUnavailable
    from autograder.batch.runner import BatchBusy, NoSubmissions, ReferenceLosesPoints, final_line, run_batch
    from autograder.config import ConfigError

    if args.jobs < 1:
        print("autograder: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_batch(args.submissions, Path(args.out), jobs=args.jobs, force=args.force, model=args.model,
                           config_file=Path(args.config) if args.config else None, scheduler=args.scheduler)
    except (NoSubmissions, ConfigError, ExecutorUnavailable, BatchBusy, ReferenceLosesPoints) as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # the running grades were finished and recorded: a rerun resumes
        return EXIT_INTERRUPTED
    print(final_line(result, Path(args.out)), file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    import json

    import jsonschema

    from autograder.report import document as report_mod
    from autograder.report import exports as views

    try:
        document = json.loads(Path(args.report).read_text(encoding="utf-8"))
        report_mod.validate(document)
    except (OSError, ValueError, jsonschema.ValidationError) as exc:  # missing, not JSON, not a report
        print(f"autograder: {args.report} is not a readable grading report: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.format == "classroom":
        text = views.classroom_output(document) + "\n"
    else:
        text = json.dumps(views.gradescope(document), indent=2) + "\n"
    if args.out:
        report_mod.write_atomically(Path(args.out), text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade attention assignments.")
    parser.add_argument("--version", action="version", version=f"attention-autograder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grading = argparse.ArgumentParser(add_help=False)  # what grade and batch share
    grading.add_argument("--model", help="hub id or local directory of the model (default: config, distilgpt2)")
    grading.add_argument("--config", help="a course config file (autograder.toml format)")
    grade_p = sub.add_parser("grade", parents=[grading], help="grade one submission file")
    grade_p.add_argument("path", help="the student's .py file")
    grade_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    grade_p.add_argument("--no-sandbox", action="store_true", help="run student code in-process (debugging)")
    grade_p.set_defaults(func=cmd_grade)
    batch_p = sub.add_parser("batch", parents=[grading],
                             help="grade many submissions into a folder of reports and a gradebook")
    batch_p.add_argument("submissions", nargs="+", help=".py files, folders (their *.py) or glob patterns")
    batch_p.add_argument("--out", required=True, help="folder for the reports, gradebook.csv, summary.json, scores.png")
    batch_p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                         help="submissions graded at once (default: the number of CPUs)")
    batch_p.add_argument("--force", action="store_true", help="regrade submissions whose report is up to date")
    batch_p.add_argument("--scheduler", metavar="ADDRESS",
                         help="grade on a Dask cluster (e.g. tcp://host:8786); needs the [dask] extra and the "
                              "submissions and --out at the same paths on every worker")
    batch_p.set_defaults(func=cmd_batch)
    export_p = sub.add_parser("export", help="a report in another tool's format (GitHub Classroom, Gradescope)")
    export_p.add_argument("report", help="a JSON report written by `autograder grade` or `pytest --submission`")
    export_p.add_argument("--format", required=True, choices=("classroom", "gradescope"),
                          help="classroom: the result=<base64> line for $GITHUB_OUTPUT; gradescope: results.json")
    export_p.add_argument("--out", help="write here instead of standard output (e.g. /autograder/results/results.json)")
    export_p.set_defaults(func=cmd_export)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    _quiet_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
