"""The `autograder` command: `autograder grade PATH [--json OUT]`, `autograder watch PATH`,
`autograder batch SUBMISSIONS... --out DIR`,
`autograder export REPORT --format classroom|gradescope`, `autograder assignments`.

Exit codes of `grade`: 0 full marks, 1 points lost, 2 usage error (missing path, a directory, bad config, an
unknown assignment or one that cannot be told from the file).
Exit codes of `watch`: 130 when stopped with Ctrl-C, 2 usage error (as for grade).
Exit codes of `batch`: 0 the batch completed (whatever the scores), 2 usage error (nothing matched, bad
config, Dask missing or its scheduler unreachable for --scheduler, another batch writing to --out), 130 interrupted (Ctrl-C; rerun to resume).
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
    problem = _usage_problem(path, args)  # usage errors are said here, in one line, before pytest starts
    if problem:
        print(f"autograder: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from autograder.grade import grade

    config_file = Path(args.config) if args.config else None
    document = grade(path, Path(args.json), sandbox=not args.no_sandbox, model=args.model, config_file=config_file,
                     assignment=args.assignment)
    return EXIT_OK if document["score"] >= document["max_score"] else EXIT_POINTS_LOST


def _usage_problem(path: Path, args: argparse.Namespace) -> Optional[str]:
    """What is wrong with grading `path` under args' config and assignment (None: nothing), said before
    pytest starts; the assignment chosen goes to `args.assignment`."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path} is a directory; give one .py file (or use `autograder batch {path}`)"
    from autograder.assignments import AssignmentError, registry
    from autograder.config import ConfigError, configured_assignment, course_layers, load_config

    config_file = Path(args.config) if args.config else None
    try:
        configured = configured_assignment(course_layers(Path.cwd(), config_file))
        assignment = registry.choose(path, args.assignment, configured)
        load_config(Path.cwd(), config_file, assignment)
    except (ConfigError, AssignmentError) as exc:
        return str(exc)
    args.assignment = assignment.name
    return None


def cmd_watch(args: argparse.Namespace) -> int:
    path = Path(args.path)
    problem = _usage_problem(path, args)
    if problem:
        print(f"autograder: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from autograder.watch import watch

    return watch(path, Path(args.json), config_file=Path(args.config) if args.config else None, model=args.model,
                 assignment=args.assignment)


def cmd_batch(args: argparse.Namespace) -> int:
    from autograder.batch.executors import ExecutorUnavailable
    from autograder.assignments import AssignmentError
    from autograder.batch.runner import BatchBusy, NoSubmissions, final_line, run_batch
    from autograder.config import ConfigError

    if args.jobs < 1:
        print("autograder: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_batch(args.submissions, Path(args.out), jobs=args.jobs, force=args.force, model=args.model,
                           config_file=Path(args.config) if args.config else None, scheduler=args.scheduler,
                           assignment=args.assignment)
    except (NoSubmissions, ConfigError, AssignmentError, ExecutorUnavailable, BatchBusy) as exc:
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


def cmd_assignments(args: argparse.Namespace) -> int:
    """List the installed assignments: name, title, functions (optional ones in brackets), points."""
    from autograder.assignments import AssignmentError, installed
    from autograder.config import ConfigError, load_config

    try:
        found = installed()
        for spec in found.values():
            config = load_config(Path.cwd(), Path(args.config) if args.config else None, spec)
            points = config.data["points"]
            by_section = {s: sum(v for k, v in points.items() if k.split(".")[0] == s) for s in spec.sections}
            functions = ", ".join(f"[{f.name}]" if f.optional else f.name for f in spec.functions)
            print(f"{spec.name}: {spec.title}\n  functions: {functions}\n  points: {sum(by_section.values()):g} ("
                  + ", ".join(f"{s} {p:g}" for s, p in by_section.items()) + ")")
    except (AssignmentError, ConfigError) as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade the course's assignments.")
    parser.add_argument("--version", action="version", version=f"attention-autograder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grading = argparse.ArgumentParser(add_help=False)  # what grade and batch share
    grading.add_argument("--model", help="hub id or local directory of the model (default: config, distilgpt2)")
    grading.add_argument("--config", help="a course config file (autograder.toml format)")
    grading.add_argument("--assignment", metavar="NAME",
                         help="the assignment to grade with (default: inferred from each file's functions, else "
                              "the config's `assignment`; see `autograder assignments`)")
    grade_p = sub.add_parser("grade", parents=[grading], help="grade one submission file")
    grade_p.add_argument("path", help="the student's .py file")
    grade_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    grade_p.add_argument("--no-sandbox", action="store_true", help="run student code in-process (debugging)")
    grade_p.set_defaults(func=cmd_grade)
    watch_p = sub.add_parser("watch", parents=[grading],
                             help="regrade a file every time it is saved (a warm process: seconds a grade)")
    watch_p.add_argument("path", help="the student's .py file")
    watch_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    watch_p.set_defaults(func=cmd_watch)
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
    list_p = sub.add_parser("assignments", help="list the installed assignments, their functions and points")
    list_p.add_argument("--config", help="a course config file (its points are shown)")
    list_p.set_defaults(func=cmd_assignments)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    _quiet_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
