"""The pytest plugin: `pytest --submission PATH [--assignment NAME]` grades PATH with an assignment's checks.

Without `--submission` it stays out of the way (the project's own tests run as usual). With it, the
assignment is `--assignment`, else the one the file's functions match, else the course config's
(`autograder.assignments.registry.choose`); pytest collects that assignment's `checks/` instead of the
command line's paths, each check's outcome is recorded with its points, and the run ends with a points
table and a JSON report (`--grade-json`; also its HTML page with `--grade-html`). Checks get the fixtures
`grading`, `submission`, `course` (the config) and `assignment` (the `Assignment`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional

import pytest

from autograder.assignments import Assignment, AssignmentError, registry
from autograder.config import (Config, ConfigError, configured_assignment, course_layers, load_config,
                               packaged_assignment)
from autograder import fast_exit
from autograder.feedback import CheckFailed, NotGraded, hint_for
from autograder.report import document as report_mod
from autograder.report import neutralise, progress, terminal
from autograder.runtime.launcher import Launched, answer_paths, outside, start_worker

if TYPE_CHECKING:
    from autograder.runtime.submission import Submission

# torch, hypothesis and the seam (which imports torch) are imported inside the hooks that need them: the
# plugin loads before any grading, and `pytest_configure` starts the worker before this process imports
# torch, so that the worker's interpreter imports it on the other core meanwhile.

CHECKS_DIR = Path(__file__).parent / "checks"  # the check library: its pytest.ini is the grader's own, and the rootdir
DEFAULT_REPORT = Path("grading") / "report.json"
_SESSION = pytest.StashKey["GradingSession"]()
_QUIET = pytest.StashKey[bool]()  # no explicit --tb: failures are told by the table only
_RUN = pytest.StashKey[pytest.Session]()  # the session, whose exitstatus `pytest` exits with


class GradingSession:
    """State of one grading run: the config, the submission (started lazily) and the results."""

    def __init__(self, path: Path, assignment: Assignment, config: Config, sandbox: bool, report_path: Path,
                 model: Optional[str], folder: Optional[Path] = None) -> None:
        self.path, self.config, self.sandbox, self.report_path = path, config, sandbox, report_path
        self.assignment = assignment
        self.folder = folder  # the folder the course staff named (default: the submission's own)
        self.model = model or str(config.model["name"])
        self.results: List[Dict[str, Any]] = []
        self.smoke: Dict[str, Optional[Exception]] = {}
        self.extra: Dict[str, Any] = {}  # e.g. metrics.model, artifacts, filled by checks
        self.started = time.time()
        self._submission: Optional["Submission"] = None
        self._launched: Optional[Launched] = None
        self.threads = 0  # torch's intra-op threads before the run (it grades with one)
        self.at_finish: List[Callable[[], None]] = []  # waits for work that checks left running (heatmaps)
        self.live: Optional[Callable[[str], Any]] = None if sandbox else _terminal_printer()

    def _worker_settings(self) -> Dict[str, Any]:
        box = self.config.sandbox
        limits = {k: box[k] for k in ("memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "max_open_files")}
        return dict(banned=box["banned"], limits=limits, hidden=answer_paths() + self.assignment.answer_paths(),
                    contract=self.assignment.wire())

    @property
    def sandboxed(self) -> bool:
        """Whether the student's code runs in a sandboxed worker (not --no-sandbox, not `[sandbox] enabled =
        false`); otherwise it runs in this process."""
        return self.sandbox and bool(self.config.sandbox["enabled"])

    def prelaunch(self) -> None:
        """Start the sandboxed worker now (its interpreter imports torch while this one does); never for a
        file that `precheck` will refuse unread (a link out of the folder)."""
        if (self.sandboxed and self.path.suffix == ".py" and self.path.is_file()
                and not outside(self.path, self.folder or self.path.absolute().parent)):
            self._launched = start_worker(self.path.resolve(), **self._worker_settings())

    @property
    def submission(self) -> "Submission":
        if self._submission is None:
            from autograder.runtime.submission import Submission

            box = self.config.sandbox
            launched, self._launched = self._launched, None
            self._submission = Submission(
                self.path, sandbox=self.sandboxed, call_timeout=self.config.timeout("call_s"),
                import_timeout=self.config.timeout("import_s"), output_limit=int(box["output_kb"]) * 1024,
                live=self.live, launched=launched, folder=self.folder, **self._worker_settings())
        return self._submission

    def close(self) -> None:
        if self._submission is None and self._launched is not None:  # no check needed the student's code
            _ = self.submission
        if self._submission is not None:
            self._submission.close()


def _terminal_printer() -> Callable[[str], Any]:
    """Writes to the terminal even while pytest captures a check's output: a copy of file descriptor 1 taken
    now, at configure time, when pytest's capture is suspended (--no-sandbox shows prints as they happen)."""
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)

    def show(text: str) -> None:
        stream.write(terminal.sanitize_live(text))
        stream.flush()

    return show


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a submission (attention-autograder)")
    group.addoption("--submission", metavar="PATH", help="grade this student file with the packaged checks")
    group.addoption("--grade-json", metavar="OUT", help=f"where to write the JSON report (default {DEFAULT_REPORT})")
    group.addoption("--grade-html", metavar="OUT", help="also write the report as a self-contained HTML page")
    group.addoption("--grade-progress", metavar="FILE",
                    help="the course progress file this grade updates (default: progress.json next to the report; "
                         "an empty value: none)")
    group.addoption("--no-sandbox", action="store_true",
                    help="run student code in this process (for breakpoints and print-debugging)")
    group.addoption("--model", metavar="NAME_OR_DIR",
                    help="hub id, local directory or `builtin` (the model shipped in the package); default distilgpt2")
    group.addoption("--grading-config", metavar="FILE", help="a course config file (autograder.toml format)")
    group.addoption("--assignment", metavar="NAME",
                    help="the assignment to grade with (default: inferred from the file's functions, else the "
                         "course config's `assignment`); `autograder assignments` lists them")
    group.addoption("--submission-folder", metavar="DIR",
                    help="the folder being graded: a submission that is a symbolic link to a file outside it is "
                         "refused (default: the submission's own folder)")


GRADING_BLOCKS = ("logging",)  # pytest's plugins a grading run leaves out (`pytest --submission` and grade.py alike)


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: List[str]) -> None:
    """A grading run (`--submission`) leaves out pytest's log capture: it has no use for it (~0.05 s a grade),
    and its per-check handler setup iterates logging's registry of loggers unlocked while the model's
    background load imports modules that add loggers ("RuntimeError: dictionary changed size during
    iteration", an internal error in a random check)."""
    if getattr(early_config.known_args_namespace, "submission", None):
        for name in GRADING_BLOCKS:
            early_config.pluginmanager.set_blocked(name)


def assignment_for(path: Path, folder: Path, explicit: Optional[str], configured: Optional[str]) -> Assignment:
    """The assignment to grade `path` with (`registry.choose`), except that a symbolic link out of `folder`
    is never read to infer it: it gets `explicit`, the course's or the packaged assignment, under which the
    grade refuses it unread (`autograder.runtime.submission.precheck`)."""
    if outside(path, folder):
        return registry.get(explicit or configured or packaged_assignment())
    return registry.choose(path, explicit, configured)


def grading_session(config: pytest.Config) -> Optional[GradingSession]:
    return config.stash.get(_SESSION, None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(id): a grading check; its points come from the course config")
    path = config.getoption("--submission", None)
    if not path:
        return
    target = Path(path)
    if not target.exists() and not target.is_symlink():  # a dangling link is graded: refused, or not found
        raise pytest.UsageError(f"--submission {path}: no such file")
    if target.is_dir():
        raise pytest.UsageError(f"--submission {path} is a directory; give the path of one .py or .ipynb file "
                                "(autograder batch grades folders)")
    folder = Path(config.getoption("--submission-folder") or target.absolute().parent)
    try:
        layers = course_layers(config.getoption("--grading-config"))
        assignment = assignment_for(target, folder, config.getoption("--assignment"), configured_assignment(layers))
        course = load_config(config.getoption("--grading-config"), assignment)
    except (ConfigError, AssignmentError) as exc:
        raise pytest.UsageError(str(exc)) from None
    report_path = Path(config.getoption("--grade-json") or DEFAULT_REPORT)
    config.stash[_SESSION] = GradingSession(target, assignment, course, not config.getoption("--no-sandbox"),
                                            report_path, config.getoption("--model"), folder)
    config.stash[_SESSION].prelaunch()
    if fast_exit.pytest_is_the_program(config.invocation_params.args):
        fast_exit.one_shot()  # the report is written and the table printed by exit time: no teardown (~1 s)
        fast_exit.at_exit(lambda: getattr(config.stash.get(_RUN, None), "exitstatus", None))
    config.args[:] = [str(assignment.checks_dir)]
    if config.option.tbstyle == "auto":  # our table says each lost check's message once: no FAILURES section
        config.option.tbstyle = "no"     # and no short-summary lines repeating it (an explicit --tb keeps them)
        config.stash[_QUIET] = True
        if config.option.reportchars == "fE":
            config.option.reportchars = ""
    from autograder.checks import (
        settings,  # registers and loads the derandomized hypothesis profile
    )
    settings.load(course)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: List[pytest.Item]) -> None:
    grading = grading_session(config)
    if grading is None:
        return
    spec = grading.assignment
    sections = set(spec.sections) - (set() if grading.config.model["enabled"] else {spec.capstone})
    checks = [item for item in items if item.get_closest_marker("check") and check_id(item).split(".")[0] in sections]
    order = {s: i for i, s in enumerate(spec.sections)}
    checks.sort(key=lambda item: order.get(check_id(item).split(".")[0], len(order)))
    import torch

    # the checks' tensors are tiny: one intra-op thread is faster, and many times faster on a loaded machine
    # (OpenMP threads waiting for each other); the process's own setting comes back at the end of the run
    grading.threads = torch.get_num_threads()
    torch.set_num_threads(1)
    fast_exit.freeze_if_one_shot()
    # the model loads beside the checks, unless the student's code runs in this process (--no-sandbox): its
    # guards swap torch functions process-wide, which the loading thread must never meet
    if grading.sandboxed and any("model_run" in getattr(item, "fixturenames", ()) for item in checks):
        from autograder.checks import model_section

        model = grading.config.model
        model_section.preload(grading.model, bool(model["fallback"]), bool(model["heatmaps"]))
    limit = grading.config.timeout("check_s")
    for item in checks:  # the check's own code: starting the worker (import_s) and the smoke call are not in it
        item.add_marker(pytest.mark.timeout(limit, method="signal", func_only=True))
    items[:] = checks


def smoke_test(sub: "Submission", assignment: Assignment, section: str) -> Optional[Exception]:
    """Call the section's op once on the worked example; the error if it gives no usable answer."""
    from autograder.checks.support import Checker
    from autograder.runtime.submission import SubmissionError

    args = assignment.worked_example(section)
    if args is None:
        return None
    checker = Checker(assignment)
    try:
        checker.call_checked(sub, section, args, checker.expected_of(section, args))
    except (SubmissionError, CheckFailed) as exc:
        return exc
    return None


def check_id(item: pytest.Item) -> str:
    return str(item.get_closest_marker("check").args[0])


@pytest.fixture(scope="session")
def grading(request: pytest.FixtureRequest) -> GradingSession:
    """The grading run (config, submission, results); only under --submission."""
    session = grading_session(request.config)
    if session is None:
        pytest.skip("grading checks run only with --submission PATH")
    return session


@pytest.fixture
def submission(grading: GradingSession, request: pytest.FixtureRequest) -> "Submission":
    """The student's code behind the seam; fails the check (not the run) when it cannot load.

    Before a section's first check, one call on PROMPT_EXAMPLE: a function that gives no usable answer
    there (missing, raising, hanging, crashing, a list, a wrong shape) then fails every check of its
    section at once, instead of hypothesis searching and shrinking over a failure that any input shows.
    """
    sub = grading.submission
    if sub.load_error is not None:
        raise sub.load_error
    section = check_id(request.node).split(".")[0]
    if section not in grading.smoke:
        grading.smoke[section] = smoke_test(sub, grading.assignment, section)
    if grading.smoke[section] is not None:
        raise grading.smoke[section]
    return sub


@pytest.fixture
def course(grading: GradingSession) -> Config:
    """The merged config of this grading run (points, tolerances, model settings...)."""
    return grading.config


@pytest.fixture(scope="session")
def assignment(grading: GradingSession) -> Assignment:
    """The assignment being graded."""
    return grading.assignment


TIME_LIMIT = {"status": "error", "message": "this check ran past its time limit", "mistake": None,
              "hint": "each check has a time limit for all its calls together: look for work far beyond what "
                      "the tensor sizes need (Python loops over elements, recomputing the same thing)"}


def _timed_out(exc: BaseException, depth: int = 0) -> bool:
    """A check's time limit, also when hypothesis caught it and replayed the example (a Flaky failure)."""
    from autograder.runtime.submission import CallInterrupted
    from autograder.runtime.worker import is_time_limit

    if isinstance(exc, CallInterrupted) or is_time_limit(exc):
        return True
    inner = list(getattr(exc, "exceptions", None) or ())  # hypothesis's FlakyFailure is an exception group,
    inner += [exc.__cause__] if exc.__cause__ is not None else []  # of wrappers whose cause is the original
    return depth < 4 and any(_timed_out(e, depth + 1) for e in inner if isinstance(e, BaseException))


def _outcome(call: pytest.CallInfo, limit_s: float, example_passed: bool = False) -> Dict[str, Any]:
    import hypothesis.errors

    from autograder.runtime.submission import CallInterrupted, SubmissionError

    if call.excinfo is None:
        return {"status": "passed", "message": "", "hint": None, "mistake": None}
    exc = call.excinfo.value
    if _timed_out(exc):
        detail = f": {exc.message}" if isinstance(exc, CallInterrupted) else ""
        return dict(TIME_LIMIT, message=f"{TIME_LIMIT['message']} ({limit_s:g} s){detail}")
    if isinstance(exc, NotGraded):
        return {"status": "not_graded", "message": exc.reason, "hint": None, "mistake": None}
    if isinstance(exc, CheckFailed):
        exc.resolve()
        return {"status": "failed", "message": exc.message, "hint": exc.hint, "mistake": exc.mistake}
    if isinstance(exc, SubmissionError):
        exc.resolve()
        return {"status": "error", "message": exc.message, "hint": exc.hint or hint_for(exc, example_passed),
                "mistake": exc.mistake,
                "detail": exc.detail}
    if isinstance(exc, hypothesis.errors.Flaky):  # the same input failed once and then passed
        return {"status": "failed", "message": "your function answered the same input differently on two calls",
                "hint": "a grade needs a deterministic function: keep no state between calls (globals, "
                        "counters, caches) and use no randomness", "mistake": None}
    if call.excinfo.errisinstance(pytest.skip.Exception):
        return {"status": "error", "message": str(exc), "hint": None, "mistake": None}
    return {"status": "error", "message": f"internal grader error ({type(exc).__name__}: {exc}); "
            "this is not your fault, tell the course staff", "hint": None, "mistake": None, "internal": True}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    outcome = yield
    grading = grading_session(item.config)
    if grading is None or not item.get_closest_marker("check"):
        return
    result = outcome.get_result()
    if call.when == "call" or (call.when == "setup" and result.failed):
        cid = check_id(item)
        record = _outcome(call, grading.config.timeout("check_s"),
                          example_passed=grading.smoke.get(cid.split(".")[0], False) is None)
        points = grading.config.points(cid)
        not_graded = record["status"] == "not_graded"
        record.update(id=cid, section=cid.split(".")[0],
                      max_score=points if not not_graded or grading.config.not_graded_counts else 0.0,
                      score=points if record["status"] == "passed" else 0.0, duration_s=round(call.duration, 4),
                      hidden=grading.config.is_hidden(cid))
        grading.results.append(record)
        if not_graded:  # pytest says "skipped", with the reason, instead of a failure
            result.outcome, result.longrepr = "skipped", (str(item.path), 0, f"not graded: {record['message']}")
            return
        if result.failed:  # what pytest prints of it, at any --tb: student text neutralised
            teaching = record["hidden"] or (not record.get("internal") and item.config.stash.get(_QUIET, False))
            result.longrepr = (_teaching_repr(report_mod.public_check(record)) if teaching
                               else neutralise.terminal(str(result.longrepr)))
        result.sections = [(title, neutralise.terminal(content)) for title, content in result.sections]


def _teaching_repr(check: Dict[str, Any]) -> str:
    """What pytest prints for a graded failure: the teaching message, not the grader's own traceback.

    Internal grader errors and an explicit --tb keep pytest's traceback (for course staff debugging);
    a hidden check never shows more than the report does; student text is neutralised as in the table.
    """
    lines = [f"[{check['id']}] {check['status']}: {check['message']}"]
    if check["hint"]:
        lines.append(f"hint: {check['hint']}")
    return neutralise.terminal("\n".join(lines))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_RUN] = session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    grading = grading_session(session.config)
    if grading is None:
        return
    grading.close()
    for finish in grading.at_finish:
        finish()
    if not fast_exit.is_one_shot():
        from autograder.checks import model_section

        model_section.settle()
    if grading.threads:
        import torch

        torch.set_num_threads(grading.threads)
    document = report_mod.build(grading)
    report_mod.write(document, grading.report_path)
    if session.config.getoption("--grade-html"):
        from autograder.report import html

        html.write(document, Path(session.config.getoption("--grade-html")))
    progress_file = session.config.getoption("--grade-progress")
    if progress_file is None:
        progress_file = str(grading.report_path.parent / progress.FILE_NAME)
    if progress_file:
        progress.update(Path(progress_file), document, grading.report_path)
    grading.extra["document"] = document


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    grading = grading_session(config)
    if grading is None or "document" not in grading.extra:
        return
    terminalreporter.write(terminal.render(grading.extra["document"], grading.report_path))
