"""The model section every capstone shares: which model runs, once per grading run, and what a check sees.

The model is `--model` / `[model] name` (distilgpt2 by default); where it cannot be loaded and `[model]
fallback` holds, the built-in model (`loading.load_capstone_model`); the report's environment.model says
which ran and why. When no model at all can be loaded, every model check is not graded (NotGraded, one
reason), never points lost. The capstone's own comparison (`compute`) runs once per grading run after
the load, its production | student | difference heatmaps drawn in the background when it has attention
weights; its failures are kept and re-raised in each check.
"""
from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from autograder import fast_exit
from autograder.feedback import CheckFailed, NotGraded, hint_for, is_stub
from autograder.model import loading
from autograder.model.surgery import ModelIntegrationError

# (state with model and tokenizer) -> the comparison (with `to_dict()`), stored as state["comparison"]
Compute = Callable[[Dict[str, Any]], Any]
# (the error raised inside the model, the run's state) -> the check's hint
Hint = Callable[[Exception, Dict[str, Any]], str]


Loaded = Tuple[Any, Any, loading.ModelChoice]
KEPT = 2  # models kept per process (the latest)
DEFAULT_SWITCH_S = sys.getswitchinterval()
SWITCH_S = 0.0005  # the GIL switch interval while a load runs beside the checks


@dataclass
class _Load:
    """One model's load: its outcome, the thread running it (None once joined, or loaded in the caller's
    thread) and how long it took, in whichever thread ran it."""

    future: "Future[Loaded]" = field(default_factory=Future)
    thread: Optional[threading.Thread] = None
    seconds: float = 0.0

    def run(self, name: str, fallback: bool, heatmaps: bool = False) -> None:
        """The model, and what the section imports after it: transformers' attention registry, and the
        colormaps when `heatmaps` (a preload for a section that draws them: imported here, not in the checks'
        thread; otherwise `_state` imports them if it draws)."""
        start = time.perf_counter()
        try:
            loaded = loading.load_capstone_model(name, fallback)
            from autograder.model import surgery

            surgery.register_kernel()
            if heatmaps:
                importlib.import_module("autograder.model.heatmaps")
        except BaseException as exc:  # noqa: BLE001 - re-raised by `load`, in the check that needs the model
            self.future.set_exception(exc)
        else:
            self.future.set_result(loaded)
        self.seconds = time.perf_counter() - start


_LOADS: Dict[Tuple[str, bool], _Load] = {}  # (name, fallback) -> its load


def _keep(key: Tuple[str, bool], record: _Load) -> _Load:
    _LOADS[key] = record
    while len(_LOADS) > KEPT:
        del _LOADS[next(iter(_LOADS))]
    return record


def preload(name: str, fallback: bool, heatmaps: bool = True) -> None:
    """Start loading the model in a background thread (once per process and model), so that transformers'
    import (~2 s of CPU, about twice `import torch`) and the load happen while the checks of the other
    sections wait for the student's worker; `load` joins it. Meanwhile the GIL changes hands every
    SWITCH_S (Python's default is ten times that), so that the checks' thread gets it back soon after a
    worker's answer arrives. `heatmaps`: the section draws them, so the colormaps are imported there too."""
    key = (name, fallback)
    if key in _LOADS:
        return
    record = _keep(key, _Load())
    record.thread = threading.Thread(target=record.run, args=(name, fallback, heatmaps), name="autograder-model-load",
                                     daemon=True)
    sys.setswitchinterval(SWITCH_S)
    record.thread.start()


def _join(record: _Load) -> None:
    if record.thread is not None:
        record.thread.join()  # ended, not just done: nothing of it still runs when the grader forks
        record.thread = None
        sys.setswitchinterval(DEFAULT_SWITCH_S)


def settle() -> None:
    """Wait for any load still running (no check needed the model: the student's file failed to load): a
    process that goes on (more grades, forks) never has it importing beside other work."""
    for record in list(_LOADS.values()):
        _join(record)


def forget() -> None:
    """Drop the models this process keeps (tests that load another)."""
    _LOADS.clear()


def load(name: str, fallback: bool) -> Loaded:
    """One load per process and model (batch grading and repeated grades reuse it), `preload`'s when it
    started one. A load that failed is not kept: the next grade tries again."""
    key = (name, fallback)
    record = _LOADS.get(key)
    if record is None:
        record = _keep(key, _Load())
        record.run(name, fallback)
    _join(record)
    try:
        loaded = record.future.result()
    except BaseException:
        _LOADS.pop(key, None)
        raise
    fast_exit.freeze_if_one_shot()
    return loaded


def load_seconds(name: str, fallback: bool) -> float:
    """How long the kept load of this model took (transformers' import included), wherever it ran."""
    record = _LOADS.get((name, fallback))
    return record.seconds if record is not None else 0.0


def _state(grading: Any, compute: Compute) -> Dict[str, Any]:
    """Load the model and run `compute` once per grading run; errors are kept and re-raised per check.
    Sets grading.extra's "model_choice" and "metrics"["model"] (the comparison, its timing_s)."""
    if "model_state" in grading.extra:
        return grading.extra["model_state"]
    state: Dict[str, Any] = {"load_s": 0.0}
    key = (grading.model, bool(grading.config.model["fallback"]))
    try:
        start = time.perf_counter()
        model, tokenizer, choice = load(*key)
        grading.extra["model_choice"] = choice.to_dict()
        state.update(model=model, tokenizer=tokenizer, load_s=time.perf_counter() - start)
        state["comparison"] = comparison = compute(state)
        metrics = grading.extra.setdefault("metrics", {})["model"] = comparison.to_dict()
        # load: what this grade waited for the model; load_work: the load itself (transformers' import
        # included), in the background or in an earlier grade of this process; section: filled in as checks run
        metrics["timing_s"].update(load=state["load_s"], load_work=round(load_seconds(*key), 4), section=0.0)
        if grading.config.model["heatmaps"] and comparison.student_weights is not None:
            from autograder.model import heatmaps

            folder = grading.report_path.parent / f"{grading.report_path.stem}-heatmaps"
            # drawn on the other core while the checks go on; listed when they are there
            grading.at_finish.append(functools.partial(_heatmaps_drawn, grading, metrics,
                                                       heatmaps.render_in_background(comparison, folder)))
    except loading.ModelUnavailableError as exc:
        state["error"] = exc
        grading.extra["model_choice"] = {"name": grading.model, "source": None,
                                         "why": f"no model could be loaded: {exc.reason}"}
    except (ModelIntegrationError, CheckFailed) as exc:
        state["error"] = exc
    grading.extra["model_state"] = state
    return state


def _heatmaps_drawn(grading: Any, metrics: Dict[str, Any], finish: Callable[[], Any]) -> None:
    """Wait for the heatmaps and list them in the report (pictures are extras: they never cost points)."""
    try:
        paths = finish()
    except (OSError, ValueError, RuntimeError) as exc:
        metrics["heatmaps_error"] = f"{type(exc).__name__}: {exc}"
        paths = []
    grading.extra.setdefault("artifacts", []).extend(
        {"kind": "heatmap", "path": str(p), "description": "production | student | difference"} for p in paths)


def worker_hint(error: Exception) -> Optional[str]:
    """The worker's own hint for a failure inside the model (a missing function, a hang, a crash, a template's
    stub), or None when the student's code raised (then the capstone says what its function receives inside
    the model)."""
    cause = error.__cause__
    if cause is None:
        return None
    raised_by_them = getattr(cause, "kind", "raised") == "raised"
    return hint_for(cause) if not raised_by_them or is_stub(getattr(cause, "raised", None)) else None


@contextmanager
def model_run(grading: Any, compute: Compute, hint: Hint) -> Iterator[Dict[str, Any]]:
    """The run's model state for one check (one CPU thread, exact float32), its time added to the section's
    (`metrics.model.timing_s.section`: the whole model section once the model is loaded).

    Raises NotGraded when no model could be loaded, CheckFailed (with `hint(error, state)`) when the
    student's code failed inside the model."""
    start = time.perf_counter()
    with loading.one_cpu_thread(), loading.exact_float32():
        state = _state(grading, compute)
        error = state.get("error")
        if isinstance(error, CheckFailed):
            raise error
        if isinstance(error, loading.ModelUnavailableError):  # this machine's problem: not graded, said once
            raise NotGraded(f"no model could be loaded: {error.reason}")
        if error is not None:
            raise CheckFailed(str(error), hint(error, state))
        try:
            yield state
        finally:
            spent = time.perf_counter() - start - state.pop("load_s", 0.0)
            timing = grading.extra["metrics"]["model"]["timing_s"]
            timing["section"] = round(timing["section"] + spent, 4)
