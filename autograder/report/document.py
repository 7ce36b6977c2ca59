"""The JSON report: the one document every grading run produces and every other view reads.

Schema: `autograder/report/schema/report.schema.json` (`schema_version` below). Writes are atomic (a temp
file renamed into place), so a crash never leaves half a report.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jsonschema

from autograder import __version__
from autograder.report import neutralise

MAX_OUTPUT = 256 * 1024  # characters kept of what the code printed, whatever output_kb a config sets
SCHEMA_VERSION = "1.0"
SCHEMA_FILE = Path(__file__).parent / "schema" / "report.schema.json"
HIDDEN_MESSAGE = "hidden check: its details are released after the deadline"


def schema() -> Dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    """The schema checked and compiled once per process (`jsonschema.validate` does both on every call: ~15 ms
    of a batch grade's ~500)."""
    checked = schema()
    cls = jsonschema.validators.validator_for(checked)
    cls.check_schema(checked)
    return cls(checked)


def validate(document: Dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when the document does not follow the schema."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise error


def model_entry(name: str, choice: Optional[Dict[str, str]] = None, enabled: bool = True) -> Dict[str, Any]:
    """environment.model: the model that ran (name, source, why, from loading.ModelChoice), or the configured
    name with source None and why it did not run."""
    if choice is not None:
        return dict(choice)
    why = "the model section ran no model" if enabled else "the model section is disabled in the course config"
    return {"name": name, "source": None, "why": why}


def environment(config: Any, sandboxed: bool, layers: List[str], model: Dict[str, Any]) -> Dict[str, Any]:
    """Versions, seeds and isolation of a grading run under `config` (an `autograder.config.Config`);
    model as `model_entry` gives it."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "transformers": _installed_version("transformers"),  # metadata: importing it costs ~2 s
        "autograder": __version__,
        "seeds": {"tensors": config.seed, "hypothesis": {"derandomize": True, "database": None,
                                                         "max_examples": config.max_examples}},
        "sandbox": {"enabled": bool(sandboxed and config.sandbox["enabled"]), "layers": list(layers)},
        "config_sources": list(config.sources),
        "model": model,
    }


def _installed_version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sections(checks: List[Dict[str, Any]], order: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Points per section, in the assignment's section `order` (sections without checks left out)."""
    out: Dict[str, Dict[str, Any]] = {}
    for name in order:
        mine = [c for c in checks if c["section"] == name]
        if mine:
            out[name] = {"score": sum(c["score"] for c in mine), "max_score": sum(c["max_score"] for c in mine),
                         "passed": sum(c["status"] == "passed" for c in mine), "total": len(mine),
                         "not_graded": sum(c["status"] == "not_graded" for c in mine)}
    return out


def public_check(record: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("id", "section", "status", "score", "max_score", "message", "hint", "mistake", "duration_s", "hidden")
    check = {k: record.get(k) for k in keys}
    check["hidden"] = bool(check["hidden"])
    if check["hidden"] and check["status"] not in ("passed", "not_graded"):
        check.update(message=HIDDEN_MESSAGE, hint=None, mistake=None)
    return check


def failing_groups(checks: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """The checks that lost points, grouped by what they say (status, message, hint), in grading order:
    one cause failing several checks is said once. Checks not graded lost nothing: never here."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for c in checks:
        if c["status"] not in ("passed", "not_graded"):
            groups.setdefault((c["status"], c["message"], c.get("hint")), []).append(c)
    return list(groups.values())


def section_not_graded(section: Dict[str, Any]) -> bool:
    """Whether none of a report section's checks could run on this machine (its score says nothing)."""
    return section.get("not_graded", 0) == section["total"]


def not_graded(checks: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One entry per section with checks this machine could not run: section, the reason (once), how many
    checks, and whether their points stay in the maximum (counted: the grade is then incomplete)."""
    out: Dict[str, Dict[str, Any]] = {}
    for c in checks:
        if c["status"] == "not_graded":
            entry = out.setdefault(c["section"], {"section": c["section"], "reason": c["message"], "checks": 0,
                                                  "counted": False})
            entry["checks"] += 1
            entry["counted"] = entry["counted"] or c["max_score"] > 0
    return list(out.values())


def feedback(checks: List[Dict[str, Any]]) -> List[str]:
    """The teaching messages in grading order: one line per group of failing_groups, naming every check it
    applies to ("[scores.shapes, scores.values] ...")."""
    return [f"[{', '.join(c['id'] for c in group)}] {group[0]['message']}"
            + (f" Hint: {group[0]['hint']}" if group[0].get("hint") else "")
            for group in failing_groups(checks)]


def build(grading: Any) -> Dict[str, Any]:
    """The report for a finished grading session (`autograder.plugin.GradingSession`)."""
    sub = grading._submission
    submission = {
        "path": str(grading.path),
        "sha256": sub.sha256 if sub is not None else None,
        "functions": list(sub.functions) if sub is not None else [],
        "load_error": sub.load_error.message if sub is not None and sub.load_error is not None else None,
        "output": sub.output if sub is not None else "",
    }
    model = model_entry(grading.model, grading.extra.get("model_choice"), bool(grading.config.model["enabled"]))
    env = environment(grading.config, grading.sandbox, sub.layers if sub is not None else [], model)
    return assemble([public_check(r) for r in grading.results], submission, env, grading.started,
                    round(time.time() - grading.started, 3), metrics=grading.extra.get("metrics", {}),
                    artifacts=grading.extra.get("artifacts", []), assignment=grading.assignment)


def assemble(checks: List[Dict[str, Any]], submission: Dict[str, Any], env: Dict[str, Any], started: float,
             duration_s: float, metrics: Optional[Dict[str, Any]] = None,
             artifacts: Optional[List[Dict[str, Any]]] = None, assignment: Any = None) -> Dict[str, Any]:
    """A validated report from its parts: checks as `public_check` gives them, submission {path, sha256,
    functions, load_error, output}, the environment block, the start time (time.time()) and duration;
    `assignment` (an `autograder.assignments.Assignment`; default: the packaged default assignment) gives
    the report's name and section order."""
    if assignment is None:
        from autograder.assignments import registry
        from autograder.config import packaged_assignment

        assignment = registry.get(packaged_assignment())
    submission, checks = _bounded(submission, checks)
    load_error = submission["load_error"]
    path = submission["path"]
    missing = not_graded(checks)
    status = "not_gradable" if load_error else "incomplete" if any(m["counted"] for m in missing) else "graded"
    document: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "assignment": assignment.name,
        "status": status,
        "score": sum(c["score"] for c in checks),
        "max_score": sum(c["max_score"] for c in checks),
        "submission": {"path": path, "name": Path(path).name,
                       **{k: submission[k] for k in ("sha256", "functions", "load_error", "output")}},
        "environment": env,
        "checks": checks,
        "sections": sections(checks, assignment.sections),
        "feedback": [f"[load] {load_error}"] if load_error else feedback(checks),
        "not_graded": missing,
        "metrics": dict(metrics or {}),
        "artifacts": list(artifacts or []),
        "timing": {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                   "duration_s": duration_s},
    }
    validate(document)
    return document


def _bounded(submission: Dict[str, Any], checks: List[Dict[str, Any]]
             ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The student-controlled parts of a report, bounded in size and valid as text: the path (a name that
    is not UTF-8 stays writable by every view), at most MAX_NAMES function names, messages and hints of
    MAX_TEXT characters, MAX_OUTPUT characters of output. Whatever a worker sent or a check built, the
    report stays small (a forged header listing 700,000 names makes no 11 MB report)."""
    from autograder.runtime.protocol import MAX_NAME, MAX_NAMES, MAX_TEXT, clip

    def text(value: Optional[str], limit: int = MAX_TEXT) -> Optional[str]:
        return None if value is None else clip(neutralise.path_text(value), limit)

    bounded = dict(submission, path=neutralise.path_text(submission["path"]), load_error=text(submission["load_error"]),
                   functions=[text(n, MAX_NAME) for n in submission["functions"][:MAX_NAMES]],
                   output=text(submission["output"], MAX_OUTPUT))
    return bounded, [dict(c, message=text(c["message"]), hint=text(c.get("hint"))) for c in checks]


def write(document: Dict[str, Any], path: Path) -> None:
    """Write atomically: readers see the old report or the new one, never half of one."""
    write_atomically(Path(path), (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give: a TA's group may read the class's reports


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, then rename it into place (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
