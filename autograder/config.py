"""One configuration for a grading run: packaged defaults, the assignment's, overridden by the course's files.

Course settings come from the course: `autograder/defaults.toml` and the assignment's `defaults.toml`
(the installed packages), then the one file given explicitly (`--config FILE`, `--grading-config FILE`).
No file is ever searched for: not in the working directory, not next to the submission, not in a
pyproject.toml. The Classroom workflow grades in the student's own checkout, where a committed
`autograder.toml` would otherwise set its own points, tolerances or sandbox: nothing in a student's folder
changes how it is graded. In the course's file, top-level keys apply to every assignment and an
`[assignments.NAME]` table to assignment NAME only (after that file's top-level keys).
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is not imported to read a config: the grader starts its worker first
    import torch

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
NOT_GRADED_MODES = ("exclude", "incomplete")  # [model] not_graded: checks no model could run count or not


class ConfigError(ValueError):
    """A course configuration file that cannot be read or has wrong keys."""


def _merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class Config:
    """The merged settings; `data` is the raw merged mapping, `sources` the files it came from."""

    data: Dict[str, Any]
    sources: Tuple[str, ...] = field(default=())

    def points(self, check_id: str) -> float:
        return float(self.data["points"].get(check_id, 0))

    def tolerance(self, dtype: "torch.dtype") -> Dict[str, float]:
        key = "float64" if str(dtype) == "torch.float64" else "float32"
        return dict(self.data["tolerance"][key])

    def timeout(self, name: str) -> float:
        return float(self.data["timeouts"][name])

    def is_hidden(self, check_id: str) -> bool:
        return check_id in self.data.get("hidden", [])

    @property
    def seed(self) -> int:
        return int(self.data["hypothesis"]["seed"])

    @property
    def max_examples(self) -> int:
        return int(self.data["hypothesis"]["max_examples"])

    @property
    def shrink(self) -> bool:
        return bool(self.data["hypothesis"].get("shrink", True))

    @property
    def sandbox(self) -> Dict[str, Any]:
        return self.data["sandbox"]

    @property
    def model(self) -> Dict[str, Any]:
        return self.data["model"]

    @property
    def not_graded_counts(self) -> bool:
        """Whether checks that could not run keep their points in the maximum (the grade is then incomplete)."""
        return self.data["model"]["not_graded"] == "incomplete"

    def with_overrides(self, overrides: Dict[str, Any]) -> "Config":
        return Config(_merge(self.data, overrides), self.sources)


def packaged_assignment() -> str:
    """The packaged default `assignment` (where no file and no course config tells)."""
    return str(_read_toml(DEFAULTS_FILE)["assignment"])


def course_layers(explicit: Optional[Path] = None) -> List[Tuple[str, Dict[str, Any]]]:
    """The course's settings as (source, mapping): the file `explicit`, when given (never a file found
    anywhere: see the module)."""
    layers: List[Tuple[str, Dict[str, Any]]] = []
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        layers.append((str(explicit), _read_toml(Path(explicit))))
    known = set(_read_toml(DEFAULTS_FILE))
    for source, data in layers:
        unknown = set(data) - known - {"assignments"}
        for name, table in data.get("assignments", {}).items():
            unknown |= {f"assignments.{name}.{k}" for k in set(table) - known} if isinstance(table, dict) else {
                f"assignments.{name}"}
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)} in {source}")
    return layers


def configured_assignment(layers: List[Tuple[str, Dict[str, Any]]]) -> Optional[str]:
    """The course's `assignment = "NAME"` (the last layer that sets one), or None."""
    names = [str(data["assignment"]) for _, data in layers if data.get("assignment")]
    return names[-1] if names else None


def load_config(explicit: Optional[Path] = None, assignment: Optional[Any] = None) -> Config:
    """The settings for grading `assignment` (an `autograder.assignments.Assignment`, its name, or None for
    the course config's `assignment`, else the packaged one): the packaged defaults, the assignment's
    defaults, then each course layer (`course_layers`): its top-level keys, then its `[assignments.NAME]`
    table for this assignment. ConfigError also when the named assignment is not installed."""
    layers = course_layers(explicit)
    data = _read_toml(DEFAULTS_FILE)
    if assignment is None or isinstance(assignment, str):
        from autograder.assignments import registry

        try:
            assignment = registry.get(assignment or configured_assignment(layers) or str(data["assignment"]))
        except registry.AssignmentError as exc:
            raise ConfigError(str(exc)) from None
    sources = [str(DEFAULTS_FILE)]
    data = _merge(data, _read_toml(assignment.defaults_file))
    sources.append(str(assignment.defaults_file))
    for source, layer in layers:
        data = _merge(data, {k: v for k, v in layer.items() if k != "assignments"})
        data = _merge(data, layer.get("assignments", {}).get(assignment.name, {}))
        sources.append(source)
    data["assignment"] = assignment.name
    if data["model"].get("not_graded") not in NOT_GRADED_MODES:
        raise ConfigError(f"[model] not_graded must be one of {list(NOT_GRADED_MODES)}, "
                          f"not {data['model'].get('not_graded')!r}")
    return Config(data, tuple(sources))
