"""Batch grading for TAs: many submissions, each graded in its own process forked from a warm parent.

    autograder batch SUBMISSIONS... --out DIR [--jobs N] [--force] [--model M] [--config F] [--scheduler ADDR]

The parent imports torch, transformers and the checks, starts one fork-server for sandboxed workers and
grades the reference implementation once (hypothesis, torch and the model are warm after that). Each
submission is then graded by `grade()` in a child forked from that parent, which writes the report the
single-file grader writes and exits. The unit of work, `grade_job`, runs behind a
`concurrent.futures.Executor` (`autograder.batch.executors`): locally `jobs` at a time, or on a Dask cluster.
A child that runs past its wall-clock limit is killed with everything it started and a child that dies
is replaced by an error report, so no submission stops the batch.

DIR gets `<name>.json` per submission, `gradebook.csv`, `summary.json` and `scores.png`
(`autograder.report.gradebook`), with --html also `html/` (`autograder.report.html_batch`), and
`.batch/<name>.json`, which records what each report was graded with: a
rerun skips submissions whose report has the same sha256, autograder version and config fingerprint
(`--force` regrades everything; runs that timed out or crashed are always retried), and `.batch/<name>.log`
(what the grading process wrote to stderr, when anything). Every file is written
atomically and a job's record is removed before it is regraded and written after its report, so a batch
killed at any moment leaves complete files only, and a rerun grades exactly what is missing.

Needs Linux (fork, pidfd) where the grading runs: locally, or on the Dask workers.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn, Optional, Sequence, Set, Tuple

import nbformat  # noqa: F401 (see below)
import torch
from tqdm import tqdm

from autograder import __version__, diagnosis  # noqa: F401 (diagnosis: see below)
from autograder.assignments import registry
from autograder.batch import cleanup
from autograder.batch.executors import executor
from autograder.batch.inputs import assignments, collect, report_names
from autograder.config import Config, configured_assignment, course_layers, load_config
from autograder.grade import grade
from autograder.model.loading import one_cpu_thread
from autograder.report import document as report_mod
from autograder.report import gradebook, html_batch, neutralise
from autograder.report.fallback import zero_report
from autograder.runtime import forkserver
from autograder.runtime.sandbox import kill_tree
from autograder.runtime.sandbox.process import die_with_parent
from autograder.runtime.submission import sha256_of

# Everything a forked grading child runs is imported above, before any fork: a child forked while another
# thread of its parent was importing a module would wait forever on that module's import lock. (diagnosis
# is otherwise imported lazily, by the first failing check, and nbformat by the first notebook: grading the
# reference never imports them.)

OUTCOMES = ("graded", "timeout", "crashed")  # how grading one submission ended
STATE_DIR = ".batch"                           # under DIR: what each report was graded with
IDENTICAL_SHOWN = 5                            # groups of identical submissions named in the final line
LOG_BYTES = 1 << 20                            # kept of a grading process's log


class NoSubmissions(ValueError):
    """The inputs matched no submission file."""


class BatchBusy(RuntimeError):
    """Another batch is writing to the same output folder."""


class ReferenceLosesPoints(RuntimeError):
    """The reference implementation does not get full marks in the warm-up: every grade would be wrong."""


@dataclass(frozen=True)
class Settings:
    """What every submission of one batch is graded with (picklable: it travels to Dask workers)."""

    out: Path
    config_file: Optional[Path]
    model: Optional[str]
    limit_s: float
    fingerprint: str
    assignment: str = ""  # the assignment these submissions are graded with ("": the course config's)

    @classmethod
    def create(cls, out: Path, config_file: Optional[Path], model: Optional[str],
               limit_s: Optional[float] = None, assignment: Optional[str] = None) -> "Settings":
        """Load the course config for `assignment` (ConfigError when it is bad) and derive the limit and the
        fingerprint (which covers the assignment: its name is in the config)."""
        config = load_config(config_file, assignment)
        model_name = model or str(config.model["name"])
        blob = json.dumps({"config": config.data, "model": model_name, "autograder": __version__},
                          sort_keys=True, default=str)
        return cls(out=Path(out).absolute(), config_file=Path(config_file).absolute() if config_file else None,
                   model=model, limit_s=float(limit_s if limit_s is not None else default_limit(config)),
                   fingerprint=hashlib.sha256(blob.encode()).hexdigest(), assignment=str(config.data["assignment"]))


def default_limit(config: Config) -> float:
    """Wall clock for grading one submission: importing it plus every check running to its own timeout."""
    return config.timeout("import_s") + config.timeout("check_s") * len(config.data["points"])


@dataclass(frozen=True)
class Job:
    """One submission of a batch, with the name its report gets in the output folder."""

    path: Path
    name: str
    settings: Settings
    folder: Optional[Path] = None  # the folder the TA named for it: a symbolic link may not lead out of it

    @property
    def report(self) -> Path:
        """The submission's report, exactly what `autograder grade` writes."""
        return self.settings.out / f"{self.name}.json"

    @property
    def state(self) -> Path:
        """What the report was graded with: {"outcome", "seconds", "fingerprint"} (absent while grading)."""
        return self.settings.out / STATE_DIR / f"{self.name}.json"

    @property
    def log(self) -> Path:
        """The grading process's stderr (kept only when it is not empty)."""
        return self.settings.out / STATE_DIR / f"{self.name}.log"


# -- inputs --------------------------------------------------------------------------------------

def is_current(job: Job) -> bool:
    """Whether the job's report was graded to the end for this very file, autograder version and config."""
    try:
        state = json.loads(job.state.read_text())
        document = json.loads(job.report.read_text())
        sha256 = sha256_of(job.path)
    except (OSError, ValueError):
        return False
    # the fingerprint covers the autograder version, the config and the model
    return (state.get("outcome") == "graded" and state.get("fingerprint") == job.settings.fingerprint
            and document.get("submission", {}).get("sha256") == sha256)


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files of atomic writes that a killed batch left half-written (`.NAME.XXXXXXXX`
    next to NAME; see `report.write`): only names that would replace one of our outputs."""
    for folder in (out, out / STATE_DIR):
        for tmp in folder.glob(".*.*"):
            target = tmp.name[1:].rsplit(".", 1)[0]
            if tmp.is_file() and Path(target).suffix in (".json", ".csv", ".png", ".log"):
                tmp.unlink(missing_ok=True)


# -- the warm parent -----------------------------------------------------------------------------

_warm_lock = threading.Lock()
_warmed: Dict[str, Dict[str, Any]] = {}  # settings.fingerprint -> the warm-up report


def warm(settings: Settings) -> Dict[str, Any]:
    """Make this process a warm parent for `settings`: start the fork-server unless it runs, and grade the
    reference implementation once, which imports and runs everything a grade needs (torch, hypothesis,
    the checks, the model). Returns that warm-up report."""
    with _warm_lock:
        forkserver.start()  # again after run_batch's shutdown(): a second batch in one process
        if settings.fingerprint not in _warmed:
            _warmed[settings.fingerprint] = _grade_reference(settings)
        return _warmed[settings.fingerprint]


def _grade_reference(settings: Settings) -> Dict[str, Any]:
    """Grade a copy of the assignment's reference module (a copy: the worker's sandbox hides the reference)
    with one torch thread, like the grading children: it computes what they compute, and leaves no OpenMP
    pool for the forks to inherit. Imports the mistake catalogue too, which failing grades use."""
    spec = registry.get(settings.assignment)
    spec.catalogue()
    with one_cpu_thread(), tempfile.TemporaryDirectory(prefix="autograder-warmup-") as tmp:
        copy = Path(tmp) / f"reference_{spec.name}.py"
        shutil.copyfile(spec.module("reference").__file__, copy)
        return grade(copy, Path(tmp) / "report.json", model=settings.model, config_file=settings.config_file,
                     assignment=spec.name, echo=False)


def warm_up_problem(document: Dict[str, Any]) -> Optional[str]:
    """What the reference implementation lost points on (a bad config, or this machine's problem), or None;
    a section not graded on this machine (no model) costs no points and is `warm_up_notice`'s."""
    lost = [c for c in document["checks"] if c["status"] not in ("passed", "not_graded")]
    if not lost:
        return None
    first = lost[0]["message"].splitlines()[0]
    return (f"the reference implementation scored {document['score']:g}/{document['max_score']:g} on this "
            f"machine, so every grade would be wrong: {', '.join(c['id'] for c in lost)} lost "
            f"({first}); nothing was graded (fix the config, give --model DIR, or set [model] enabled = false)")


def warm_up_notice(document: Dict[str, Any]) -> Optional[str]:
    """The sections the warm-up could not grade on this machine (e.g. no model), or None: a warning, not a
    reason to stop (those checks are not graded for anyone)."""
    missing = report_mod.not_graded(document["checks"])
    return "; ".join(f"the {m['section']} section is not graded on this machine: {m['reason']}"
                     for m in missing) or None


# -- the unit of work ----------------------------------------------------------------------------

def grade_job(job: Job) -> Dict[str, Any]:
    """Grade one submission in a child forked from this (warm) process; always leaves a report and its
    record (`job.state`) behind, the record last.

    Returns {"name", "outcome" (one of OUTCOMES), "seconds"}. Runs wherever the executor puts it: a local
    thread, or a Dask worker (which warms up on its first job). Raises ReferenceLosesPoints, grading
    nothing, where the warm-up's reference implementation does not get full marks.
    """
    warm_up = warm(job.settings)
    problem = warm_up_problem(warm_up)
    if problem:
        raise ReferenceLosesPoints(problem)
    job.state.parent.mkdir(parents=True, exist_ok=True)
    job.state.unlink(missing_ok=True)  # from here until record(), the report counts as not graded
    if job.path.is_dir():  # a folder with no file in it (see collect): nothing to fork a grader for
        write_unfinished(job, f"{job.path.name} is a folder without a file to grade in it: batch grades the "
                         f"*.py and *.ipynb files directly inside a folder, not its subfolders", 0.0, like=warm_up)
        return record(job, "graded", 0.0)
    started = time.monotonic()
    parent = os.getpid()
    # Ctrl-C must stop the batch only: the child is born with SIGINT blocked and ignores it before unblocking
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    pid = os.fork()
    if pid == 0:
        _child(job, parent, mask)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    outcome, message = _wait(pid, job.settings.limit_s)
    seconds = round(time.monotonic() - started, 3)
    _tidy_log(job.log)
    if outcome != "graded":
        write_unfinished(job, message, seconds, like=warm_up)
    return record(job, outcome, seconds)


def _tidy_log(log: Path) -> None:
    """Remove the grading process's log when empty; else keep its first LOG_BYTES, neutralised for the
    terminal a TA reads it on (a traceback there may quote the student's file name or text)."""
    try:
        with open(log, "rb") as handle:
            raw = handle.read(LOG_BYTES + 1)
    except FileNotFoundError:  # the child died before opening it
        return
    if not raw:
        log.unlink()
        return
    text = raw[:LOG_BYTES].decode("utf-8", "replace") + ("\n... (log cut)" if len(raw) > LOG_BYTES else "")
    report_mod.write_atomically(log, (neutralise.terminal(text) + "\n").encode("utf-8"))


def record(job: Job, outcome: str, seconds: float) -> Dict[str, Any]:
    """Write the job's record (after its report) and return the job's result."""
    report_mod.write({"outcome": outcome, "seconds": seconds, "fingerprint": job.settings.fingerprint}, job.state)
    return {"name": job.name, "outcome": outcome, "seconds": seconds}


def _child(job: Job, parent: int, mask: Set[signal.Signals]) -> NoReturn:
    """The forked grading process: its output goes to the job's log, its report where the job says."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the batch; running grades finish
        for signum in cleanup.STOP_SIGNALS:  # not the batch's handlers: a signal sent to this process ends it
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        die_with_parent()
        if os.getppid() != parent:  # the batch died before the line above: nobody would stop us
            os._exit(code)
        torch.set_num_threads(1)  # before any torch op: the parent's OpenMP pool does not survive fork
        # The inherited heap is never garbage: keep it out of every collection, or each one scans it (0.3 s a
        # submission: hypothesis collects once per thread that first runs a test, and this is a new thread).
        gc.freeze()
        _output_to(job.log)
        grade(job.path, job.report, model=job.settings.model, config_file=job.settings.config_file,
              assignment=job.settings.assignment, echo=False, folder=job.folder)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever it was, the log says it and the parent reports it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _output_to(log: Path) -> None:
    """Point fds 1 and 2 at the log, with fresh file objects (another thread may hold the inherited ones' locks)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False)


def _wait(pid: int, limit_s: float) -> Tuple[str, str]:
    """Wait for the grading child up to limit_s; kill its tree past that. Returns (outcome, message)."""
    handle = os.pidfd_open(pid)
    try:
        finished, _, _ = select.select([handle], [], [], limit_s)
    finally:
        os.close(handle)
    if not finished:
        kill_tree(pid)
        os.waitpid(pid, 0)
        return "timeout", f"grading this submission did not finish within {limit_s:g} s"
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "graded", ""
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return "crashed", f"grading this submission ended abnormally ({how}); the course staff has the log"


def write_unfinished(job: Job, message: str, seconds: float, like: Optional[Dict[str, Any]] = None) -> None:
    """Write a valid report in which every check is an error with `message` (status not_gradable). Its
    checks are those of the report `like` (the warm-up's, same config: same ids in the same order), else
    those the config grades (`fallback.zero_report`)."""
    spec = registry.get(job.settings.assignment)
    document = zero_report(message, load_config(job.settings.config_file, spec), str(job.path), assignment=spec,
                           ids=None if like is None else [c["id"] for c in like["checks"]], sandboxed=True,
                           sha256=sha256_of(job.path) if job.path.is_file() else None,
                           model_name=job.settings.model, seconds=seconds)
    report_mod.write(document, job.report)


# -- the batch -----------------------------------------------------------------------------------

@dataclass
class Result:
    """What a batch did: the summary it wrote, and counts for the final line."""

    summary: Dict[str, Any]
    graded: int
    skipped: int
    seconds: float


def run_batch(inputs: Sequence[str], out: Path, *, jobs: int = 2, force: bool = False, model: Optional[str] = None,
              config_file: Optional[Path] = None, scheduler: Optional[str] = None, limit_s: Optional[float] = None,
              progress: bool = True, html: bool = False, assignment: Optional[str] = None) -> Result:
    """Grade every submission the inputs name into `out` (and its HTML pages into `out/html/` with `html`,
    see `autograder.report.html_batch`), each with `assignment`, else the assignment its functions match,
    else the course config's. Raises NoSubmissions, ConfigError, AssignmentError (a file whose assignment
    cannot be told), ExecutorUnavailable, BatchBusy, ReferenceLosesPoints (before any submission is graded;
    on Dask, from the first worker that warms up) and KeyboardInterrupt (after the running grades have
    finished and been recorded)."""
    folders, unmatched = collect(inputs)
    paths = list(folders)
    if not paths:
        raise NoSubmissions(f"no submission files matched {' '.join(inputs)}")
    for item in unmatched:
        print(neutralise.terminal(f"autograder batch: warning: {item} matched no submission file"), file=sys.stderr)
    chosen = assignments(paths, folders, assignment, configured_assignment(course_layers(config_file)))
    settings = {name: Settings.create(Path(out), config_file, model, limit_s, name)
                for name in sorted(set(chosen.values()))}
    names = report_names(paths)
    all_jobs = [Job(path, names[path], settings[chosen[path]], folders[path]) for path in paths]
    with _only_batch_writing(Path(out).absolute()), cleanup.stopped_like_ctrl_c(), cleanup.private_temporaries():
        return _grade_into(list(settings.values()), all_jobs, jobs=jobs, force=force, scheduler=scheduler,
                           progress=progress, html=html)


@contextlib.contextmanager
def _only_batch_writing(out: Path) -> Iterator[None]:
    """Hold `out/.batch/lock` while the batch runs: a second batch on the same folder would delete the first
    one's half-written files (remove_stale_temporaries) and grade the same submissions over its reports."""
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    with open(out / STATE_DIR / "lock", "w") as lock:  # released when closed (and when this process dies)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchBusy(f"another autograder batch is writing to {out}: wait for it to end, "
                            "or give another --out") from None
        yield


def _grade_into(settings: List[Settings], all_jobs: List[Job], *, jobs: int, force: bool, scheduler: Optional[str],
                progress: bool, html: bool = False) -> Result:
    """Grade the jobs that are not current; `settings`: one per assignment of the batch (same `out`)."""
    out = settings[0].out
    remove_stale_temporaries(out)
    todo = [job for job in all_jobs if force or not is_current(job)]
    started = time.monotonic()
    warm_up_s = 0.0
    if todo:
        try:
            warm_up_s = _run(todo, jobs, scheduler, progress)
        finally:
            forkserver.shutdown()
    seconds = time.monotonic() - started
    rows = [gradebook.Row(job.name, json.loads(job.report.read_text()), _outcome(job)) for job in all_jobs]
    extra = {"batch": {"graded_now": len(todo), "skipped": len(all_jobs) - len(todo), "seconds": round(seconds, 2),
                       "warm_up_s": round(warm_up_s, 2),
                       "per_minute": round(len(todo) / seconds * 60, 1) if todo else None,
                       "limit_s": max(s.limit_s for s in settings), "autograder": __version__,
                       "fingerprint": settings[0].fingerprint if len(settings) == 1 else hashlib.sha256(
                           " ".join(s.fingerprint for s in settings).encode()).hexdigest(),
                       "assignments": [s.assignment for s in settings]}}
    summary = gradebook.write_all(rows, out, extra)
    if html:
        html_batch.write_site(rows, summary, out / "html")
    return Result(summary, len(todo), len(all_jobs) - len(todo), seconds)


def _outcome(job: Job) -> str:
    """How the job's report came about, from its record."""
    return str(json.loads(job.state.read_text())["outcome"])


def _run(todo: Sequence[Job], jobs: int, scheduler: Optional[str], progress: bool) -> float:
    """Grade `todo` on the executor, with a progress bar (counts, outcomes, rate, time left) on a terminal.
    Returns the seconds spent warming up this process (0 on Dask: its workers warm themselves)."""
    warm_up_s = 0.0
    shown = progress and sys.stderr.isatty()
    with executor(jobs, scheduler) as pool, \
            tqdm(total=len(todo), unit="sub", file=sys.stderr, disable=not shown) as bar:
        if scheduler is None:  # local: warm up here, where the forks come from
            bar.set_description("warming up")
            started = time.monotonic()
            for settings in dict.fromkeys(job.settings for job in todo):  # each assignment of the batch
                document = warm(settings)
                problem = warm_up_problem(document)
                if problem:
                    raise ReferenceLosesPoints(problem)
                notice = warm_up_notice(document)
                if notice:
                    bar.write(f"autograder batch: warning: {notice}", file=sys.stderr)
            warm_up_s = time.monotonic() - started
            bar.set_description("grading")
            bar.reset()  # rate and time left count from here, not from the start of the warm-up
        futures: Dict[Future, Job] = {pool.submit(grade_job, job): job for job in todo}
        counts = Counter({outcome: 0 for outcome in OUTCOMES})
        try:
            for future in as_completed(futures):
                result = _result(futures[future], future)
                counts[result["outcome"]] += 1
                bar.set_postfix(counts, refresh=False)
                bar.update()
        except ReferenceLosesPoints:
            for future in futures:
                future.cancel()
            raise
        except KeyboardInterrupt:  # the executor's exit waits for the running grades, which record themselves
            for future in futures:
                future.cancel()
            bar.write("autograder batch: interrupted; letting running grades finish (rerun to resume)",
                      file=sys.stderr)
            raise
    return warm_up_s


def _result(job: Job, future: Future) -> Dict[str, Any]:
    """The job's result, or a crash (with an error report) when the executor itself failed to run it."""
    try:
        return future.result()
    except ReferenceLosesPoints:  # a Dask worker's warm-up: every grade would be wrong, stop the batch
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a Dask worker that died: this submission only
        write_unfinished(job, f"grading this submission failed ({type(exc).__name__}: {exc})", 0.0,
                         like=_warmed.get(job.settings.fingerprint))
        return record(job, "crashed", 0.0)


def final_line(result: Result, out: Path) -> str:
    """The one line `autograder batch` ends with."""
    summary = result.summary
    outcome = summary["outcome"]
    rate = f", {summary['batch']['per_minute']}/min" if result.graded else ""
    identical = summary["identical"]
    shown = "; ".join(" = ".join(group) for group in identical[:IDENTICAL_SHOWN])
    more = f" and {len(identical) - IDENTICAL_SHOWN} more" if len(identical) > IDENTICAL_SHOWN else ""
    same = f"; identical files: {shown}{more} (summary.json)" if identical else ""
    return neutralise.terminal(
        f"autograder batch: {summary['count']} submissions ({result.graded} graded now, {result.skipped} "
        f"unchanged and skipped; {outcome.get('timeout', 0)} timed out, {outcome.get('crashed', 0)} crashed) "
        f"in {result.seconds:.1f} s{rate}; mean score {summary['scores']['mean']}/{summary['max_score']:g}"
        f"{same}; reports in {out}")
