"""The `autograder` command: `autograder grade PATH [--json OUT] [--html OUT]`, `autograder watch PATH`,
`autograder batch SUBMISSIONS... --out DIR [--html]`,
`autograder export REPORT --format classroom|gradescope|evaluation`, `autograder gradescope build --out ZIP`,
`autograder evaluate REPORT --url URL`, `autograder assignments`,
`autograder train [--builtin]`, `autograder generate --prompt TEXT` (autograder/lm/commands.py).

Exit codes of `grade`: 0 full marks, 1 points lost, 2 usage error (missing path, a directory, bad config, an
unknown assignment or one that cannot be told from the file).
Exit codes of `watch`: 130 when stopped with Ctrl-C, 2 usage error (as for grade).
Exit codes of `batch`: 0 the batch completed (whatever the scores), 2 usage error (nothing matched, bad
config, the reference implementation losing points in the warm-up, Dask missing or its scheduler unreachable
for --scheduler, another batch writing to --out), 130 interrupted (Ctrl-C, SIGTERM or SIGHUP; rerun to resume).
Exit codes of `export`: 0 written, 2 the report is missing or not a valid report (classroom and gradescope
still write a 0-point result out of the course's maximum, so the service records a grade), or a bad config.
Exit codes of `gradescope build`: 0 written, 2 a bad config or assignment.
Exit codes of `evaluate`: 0 the answer is stored, 2 a bad report, URL or missing key variable, 3 the endpoint gave no
usable answer (unreachable, HTTP error, timeout, not a chat completion); the report is then unchanged.
Exit codes of `train` and `generate`: 0 done, 2 usage error (no corpus and no download, a bad model folder).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, NoReturn, Optional

from autograder import __version__, fast_exit
from autograder.lm import commands as lm_commands

EXIT_OK, EXIT_POINTS_LOST, EXIT_USAGE = 0, 1, 2
EXIT_SERVICE = 3  # evaluate: the endpoint gave no usable answer
EXIT_INTERRUPTED = 130  # batch: Ctrl-C (128 + SIGINT, as a shell reports it)


def _quiet_environment() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _say(message: str) -> None:
    """One line on stderr, neutralised: it may quote a file name or a report's (student) text."""
    from autograder.report import neutralise

    print(neutralise.terminal(message), file=sys.stderr)


def cmd_grade(args: argparse.Namespace) -> int:
    path = Path(args.path)
    problem = _usage_problem(path, args)  # usage errors are said here, in one line, before pytest starts
    if problem:
        _say(f"autograder: {problem}")
        return EXIT_USAGE
    from autograder.grade import grade

    config_file = Path(args.config) if args.config else None
    document = grade(path, Path(args.json), sandbox=not args.no_sandbox, model=args.model, config_file=config_file,
                     html=Path(args.html) if args.html else None, assignment=args.assignment,
                     progress=Path(args.json).parent / "progress.json")
    return EXIT_OK if document["score"] >= document["max_score"] else EXIT_POINTS_LOST


def _usage_problem(path: Path, args: argparse.Namespace) -> Optional[str]:
    """What is wrong with grading `path` under args' config and assignment (None: nothing), said before
    pytest starts; the assignment chosen goes to `args.assignment`."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path} is a directory; give one .py or .ipynb file (or use `autograder batch {path}`)"
    from autograder.assignments import AssignmentError, registry
    from autograder.config import ConfigError, configured_assignment, course_layers, load_config

    config_file = Path(args.config) if args.config else None
    try:
        configured = configured_assignment(course_layers(config_file))
        assignment = registry.choose(path, args.assignment, configured)
        load_config(config_file, assignment)
    except (ConfigError, AssignmentError) as exc:
        return str(exc)
    args.assignment = assignment.name
    return None


def cmd_watch(args: argparse.Namespace) -> int:
    path = Path(args.path)
    problem = _usage_problem(path, args)
    if problem:
        _say(f"autograder: {problem}")
        return EXIT_USAGE
    from autograder.watch import watch

    return watch(path, Path(args.json), config_file=Path(args.config) if args.config else None, model=args.model,
                 assignment=args.assignment)


def cmd_batch(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        _say("autograder: --jobs must be at least 1")
        return EXIT_USAGE
    try:  # from the imports on: Ctrl-C at any moment (loading torch, the warm-up, grading) exits 130
        from autograder.assignments import AssignmentError
        from autograder.batch.executors import ExecutorUnavailable
        from autograder.batch.runner import BatchBusy, NoSubmissions, ReferenceLosesPoints, final_line, run_batch
        from autograder.config import ConfigError

        try:
            result = run_batch(args.submissions, Path(args.out), jobs=args.jobs, force=args.force, model=args.model,
                               config_file=Path(args.config) if args.config else None, scheduler=args.scheduler,
                               html=args.html, assignment=args.assignment)
        except (NoSubmissions, ConfigError, AssignmentError, ExecutorUnavailable, BatchBusy,
                ReferenceLosesPoints) as exc:
            _say(f"autograder: {exc}")
            return EXIT_USAGE
    except KeyboardInterrupt:  # the running grades were finished and recorded: a rerun resumes
        print("autograder batch: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(final_line(result, Path(args.out)), file=sys.stderr)
    return EXIT_OK


NO_REPORT = "no grading result: the submission is missing or could not be graded (see the grading step's log)"


def cmd_export(args: argparse.Namespace) -> int:
    import json

    import jsonschema

    from autograder.config import ConfigError, load_config
    from autograder.report import document as report_mod
    from autograder.report import exports as views
    from autograder.report.evaluation import payload
    from autograder.report.fallback import zero_report

    try:
        config = load_config(Path(args.config) if args.config else None)
    except ConfigError as exc:
        _say(f"autograder: {exc}")
        return EXIT_USAGE
    code = EXIT_OK
    try:
        document = json.loads(Path(args.report).read_text(encoding="utf-8"))
        report_mod.validate(document)
    except (OSError, ValueError, jsonschema.ValidationError) as exc:  # missing, not JSON, not a report
        _say(f"autograder: {args.report} is not a readable grading report: {str(exc).splitlines()[0]}")
        if args.format == "evaluation":
            return EXIT_USAGE
        # Classroom and Gradescope record nothing without a result: a 0 out of the course's maximum
        document, code = zero_report(NO_REPORT, config), EXIT_USAGE
    if args.format == "classroom":
        text = views.classroom_output(document) + "\n"
    elif args.format == "gradescope":
        text = views.gradescope_json(document, config.data["gradescope"]["hidden_visibility"])
    else:
        text = views.log_safe_json(payload(document))
    if args.out:
        report_mod.write_atomically(Path(args.out), text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return code


def cmd_gradescope_build(args: argparse.Namespace) -> int:
    from autograder.gradescope.build import BuildError, build

    try:
        out = build(Path(args.out), Path(args.config) if args.config else None, args.assignment, args.pip_spec)
    except BuildError as exc:
        _say(f"autograder: {exc}")
        return EXIT_USAGE
    print(f"wrote {out}: upload it as the assignment's autograder (Configure Autograder > Zip file upload)",
          file=sys.stderr)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import jsonschema

    from autograder.report import document as report_mod
    from autograder.report.llm_client import EvaluationError, chat_url, evaluate

    try:
        document = json.loads(Path(args.report).read_text(encoding="utf-8"))
        report_mod.validate(document)
    except (OSError, ValueError, jsonschema.ValidationError) as exc:
        _say(f"autograder: {args.report} is not a readable grading report: {str(exc).splitlines()[0]}")
        return EXIT_USAGE
    try:
        chat_url(args.url)
    except EvaluationError as exc:
        _say(f"autograder: {exc}")
        return EXIT_USAGE
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not key:
        _say(f"autograder: the environment variable {args.api_key_env} (--api-key-env) is not set")
        return EXIT_USAGE
    try:
        evaluated = evaluate(document, args.url, args.model, key, args.timeout)
    except EvaluationError as exc:
        _say(f"autograder: {exc}; the report is unchanged")
        return EXIT_SERVICE
    report_mod.write(evaluated, Path(args.report))
    _say(f"evaluation by {evaluated['evaluation']['model']} stored in {args.report}")
    return EXIT_OK


def cmd_assignments(args: argparse.Namespace) -> int:
    """List the installed assignments: name, title, functions (optional ones in brackets), points."""
    from autograder.assignments import AssignmentError, installed
    from autograder.config import ConfigError, load_config

    try:
        found = installed()
        for spec in found.values():
            config = load_config(Path(args.config) if args.config else None, spec)
            points = config.data["points"]
            by_section = {s: sum(v for k, v in points.items() if k.split(".")[0] == s) for s in spec.sections}
            functions = ", ".join(f"[{f.name}]" if f.optional else f.name for f in spec.functions)
            print(f"{spec.name}: {spec.title}\n  functions: {functions}\n  points: {sum(by_section.values()):g} ("
                  + ", ".join(f"{s} {p:g}" for s, p in by_section.items()) + ")")
    except (AssignmentError, ConfigError) as exc:
        _say(f"autograder: {exc}")
        return EXIT_USAGE
    return EXIT_OK


def cmd_progress(args: argparse.Namespace) -> int:
    """The course so far: per assignment, the best and latest score and the sections complete."""
    from autograder.assignments import AssignmentError, installed
    from autograder.report import progress

    try:
        course = list(installed())
    except AssignmentError as exc:
        _say(f"autograder: {exc}")
        return EXIT_USAGE
    print(progress.table(progress.read(Path(args.file)), course), end="")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade the course's assignments.")
    parser.add_argument("--version", action="version", version=f"attention-autograder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grading = argparse.ArgumentParser(add_help=False)  # what grade and batch share
    grading.add_argument("--model", help="hub id, local directory, or `builtin` (the model shipped in the "
                                         "package); default: config, distilgpt2")
    grading.add_argument("--config", help="a course config file (autograder.toml format)")
    grading.add_argument("--assignment", metavar="NAME",
                         help="the assignment to grade with (default: inferred from each file's functions, else "
                              "the config's `assignment`; see `autograder assignments`)")
    grade_p = sub.add_parser("grade", parents=[grading], help="grade one submission file")
    grade_p.add_argument("path", help="the student's .py file or Jupyter notebook (.ipynb)")
    grade_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    grade_p.add_argument("--html", metavar="OUT", help="also write the report as a self-contained HTML page")
    grade_p.add_argument("--no-sandbox", action="store_true", help="run student code in-process (debugging)")
    grade_p.set_defaults(func=cmd_grade)
    watch_p = sub.add_parser("watch", parents=[grading],
                             help="regrade a file every time it is saved (a warm process: seconds a grade)")
    watch_p.add_argument("path", help="the student's .py file")
    watch_p.add_argument("--json", default="grading/report.json", help="where to write the JSON report")
    watch_p.set_defaults(func=cmd_watch)
    batch_p = sub.add_parser("batch", parents=[grading],
                             help="grade many submissions into a folder of reports and a gradebook")
    batch_p.add_argument("submissions", nargs="+",
                         help=".py and .ipynb files, folders (every file in them: *.py and *.ipynb are graded, "
                              "any other gets a row saying why) or glob patterns")
    batch_p.add_argument("--out", required=True, help="folder for the reports, gradebook.csv, summary.json, scores.png")
    batch_p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                         help="submissions graded at once (default: the number of CPUs)")
    batch_p.add_argument("--force", action="store_true", help="regrade submissions whose report is up to date")
    batch_p.add_argument("--scheduler", metavar="ADDRESS",
                         help="grade on a Dask cluster (e.g. tcp://host:8786); needs the [dask] extra and the "
                              "submissions and --out at the same paths on every worker")
    batch_p.add_argument("--html", action="store_true",
                         help="also write OUT/html/: a page per submission and index.html (sortable gradebook)")
    batch_p.set_defaults(func=cmd_batch)
    export_p = sub.add_parser("export", help="a report in another tool's format (GitHub Classroom, Gradescope, "
                                             "an LLM grader)")
    export_p.add_argument("report", help="a JSON report written by `autograder grade` or `pytest --submission`")
    export_p.add_argument("--format", required=True, choices=("classroom", "gradescope", "evaluation"),
                          help="classroom: the result=<base64> line for $GITHUB_OUTPUT; gradescope: results.json; "
                               "evaluation: the payload for an LLM grader (schema/evaluation.schema.json)")
    export_p.add_argument("--out", help="write here instead of standard output (e.g. /autograder/results/results.json)")
    export_p.add_argument("--config", help="the course config (its maximum score when the report is missing, "
                                           "Gradescope's visibility of hidden checks)")
    export_p.set_defaults(func=cmd_export)
    gradescope_p = sub.add_parser("gradescope", help="Gradescope's autograder zip")
    gradescope_sub = gradescope_p.add_subparsers(dest="gradescope_command", required=True)
    build_p = gradescope_sub.add_parser("build", help="write the zip to upload as the assignment's autograder")
    build_p.add_argument("--out", required=True, help="the zip to write, e.g. autograder.zip")
    build_p.add_argument("--assignment", help="the assignment to grade (default: the config's, attention)")
    build_p.add_argument("--config", help="the course config every grade uses (autograder.toml format)")
    build_p.add_argument("--pip-spec", help="install the grader from this pip requirement (e.g. "
                                            "'attention-autograder[sandbox]==VERSION' from PyPI) instead of "
                                            "bundling this installation's wheel")
    build_p.set_defaults(func=cmd_gradescope_build)
    evaluate_p = sub.add_parser("evaluate", help="ask an OpenAI-compatible chat endpoint for an evaluation and "
                                                 "store its answer in the report")
    evaluate_p.add_argument("report", help="a JSON report; rewritten with `evaluation` filled in")
    evaluate_p.add_argument("--url", required=True, help="the server (http://host:port, .../v1 or the full "
                                                         ".../v1/chat/completions)")
    evaluate_p.add_argument("--model", default="default", help="the model name the server expects")
    evaluate_p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key "
                                                                 "(sent as a Bearer token)")
    evaluate_p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the answer")
    evaluate_p.set_defaults(func=cmd_evaluate)
    progress_p = sub.add_parser("progress", help="the course so far: best and latest score per assignment")
    progress_p.add_argument("--file", default="grading/progress.json",
                            help="the progress file `autograder grade` and `pytest --submission` update")
    progress_p.set_defaults(func=cmd_progress)
    list_p = sub.add_parser("assignments", help="list the installed assignments, their functions and points")
    list_p.add_argument("--config", help="a course config file (its points are shown)")
    list_p.set_defaults(func=cmd_assignments)
    lm_commands.add_parsers(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    _quiet_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


def run() -> NoReturn:
    """The `autograder` command: `main()` on the process's arguments, then its exit without the interpreter's
    teardown (see autograder.fast_exit)."""
    fast_exit.leave(main())


if __name__ == "__main__":
    run()
