"""The JSON report: the one document every grading run produces and every other view reads.

Schema: `autograder/schema/report.schema.json` (`schema_version` below). Writes are atomic (a temp
file renamed into place), so a crash never leaves half a report.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import jsonschema

from autograder import __version__
from autograder.contract import ASSIGNMENT, SECTIONS

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = Path(__file__).parent / "schema" / "report.schema.json"
HIDDEN_MESSAGE = "hidden check: its details are released after the deadline"


def schema() -> Dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def validate(document: Dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when the document does not follow the schema."""
    jsonschema.validate(document, schema())


def environment(grading: Any) -> Dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "transformers": _installed_version("transformers"),  # metadata: importing it costs ~2 s
        "autograder": __version__,
        "seeds": {"tensors": grading.config.seed, "hypothesis": {"derandomize": True, "database": None,
                                                                 "max_examples": grading.config.max_examples}},
        "sandbox": {"enabled": bool(grading.sandbox and grading.config.sandbox["enabled"]),
                    "layers": list(grading._submission.layers) if grading._submission else []},
        "config_sources": list(grading.config.sources),
        "model": grading.model,
    }


def _installed_version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sections(checks: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for name in SECTIONS:
        mine = [c for c in checks if c["section"] == name]
        if mine:
            out[name] = {"score": sum(c["score"] for c in mine), "max_score": sum(c["max_score"] for c in mine),
                         "passed": sum(c["status"] == "passed" for c in mine), "total": len(mine)}
    return out


def public_check(record: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("id", "section", "status", "score", "max_score", "message", "hint", "mistake", "duration_s", "hidden")
    check = {k: record.get(k) for k in keys}
    check["hidden"] = bool(check["hidden"])
    if check["hidden"] and check["status"] != "passed":
        check.update(message=HIDDEN_MESSAGE, hint=None, mistake=None)
    return check


def feedback(checks: List[Dict[str, Any]]) -> List[str]:
    """The teaching messages in grading order: one line per distinct (message, hint) among the checks that
    lost points, naming every check it applies to ("[scores.shapes, scores.values] ...")."""
    grouped: Dict[tuple, List[str]] = {}
    for c in checks:
        if c["status"] != "passed":
            grouped.setdefault((c["message"], c.get("hint")), []).append(c["id"])
    return [f"[{', '.join(ids)}] {message}" + (f" Hint: {hint}" if hint else "")
            for (message, hint), ids in grouped.items()]


def build(grading: Any) -> Dict[str, Any]:
    """The report for a finished grading session (`autograder.plugin.GradingSession`)."""
    checks = [public_check(r) for r in grading.results]
    sub = grading._submission
    load_error = sub.load_error.message if sub is not None and sub.load_error is not None else None
    path = Path(grading.path)
    document: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "assignment": ASSIGNMENT,
        "status": "not_gradable" if load_error else "graded",
        "score": sum(c["score"] for c in checks),
        "max_score": sum(c["max_score"] for c in checks),
        "submission": {
            "path": str(path),
            "name": path.name,
            "sha256": sub.sha256 if sub is not None else None,
            "functions": list(sub.functions) if sub is not None else [],
            "load_error": load_error,
            "output": sub.output if sub is not None else "",
        },
        "environment": environment(grading),
        "checks": checks,
        "sections": sections(checks),
        "feedback": [f"[load] {load_error}"] if load_error else feedback(checks),
        "metrics": dict(grading.extra.get("metrics", {})),
        "artifacts": list(grading.extra.get("artifacts", [])),
        "timing": {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(grading.started)),
                   "duration_s": round(time.time() - grading.started, 3)},
    }
    validate(document)
    return document


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
