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
import difflib
import functools
import math
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
        else:  # a copy too: a config never shares a list with the file it came from (`_packaged` keeps those)
            merged[key] = copy.deepcopy(value)
    return merged


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@functools.lru_cache(maxsize=None)
def _packaged(path: Path) -> Dict[str, Any]:
    """A TOML file shipped with a package (the defaults, an assignment's defaults), read once per process.
    Shared: callers only read it (`_merge` copies both sides)."""
    return _read_toml(path)


# Numbers that must be above zero (the others: zero or more), and numbers that must be whole (the others may
# have a fraction: points, seconds, tolerances); "section.key", or a whole section
POSITIVE = ("timeouts", "hypothesis.max_examples", "sandbox.memory_mb", "sandbox.cpu_seconds",
            "sandbox.max_processes", "sandbox.max_file_mb", "sandbox.max_open_files", "sandbox.output_kb",
            "gradescope.timeout_s")
WHOLE = ("hypothesis", "sandbox", "model.layer", "model.continuation_tokens")
# Tables whose keys are check ids, not fixed names
CHECK_ID_TABLES = ("points",)


def _kind(value: Any) -> str:
    """The kind of a TOML value, as a course author reads it."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a table" if isinstance(value, dict) else type(value).__name__


def _describe(value: Any) -> str:
    return f"{_kind(value)} ({value!r})" if not isinstance(value, (dict, list)) else _kind(value)


def _check_leaf(name: str, value: Any, default: Any, problems: List[str], key_path: str = "") -> None:
    """One setting against its default's type (int where the default is an int) and range; `key_path`: its
    place in the defaults (default: `name`)."""
    key_path = key_path or name
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        if isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{name} must be a list of strings, not {_describe(value)}")
        elif type(value) is not type(default):
            problems.append(f"{name} must be {_kind(default)}, not {_describe(value)}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{name} must be a number, not {_describe(value)}")
    elif _listed(key_path, WHOLE) and not isinstance(value, int):
        problems.append(f"{name} must be a whole number, not {value!r}")
    elif not math.isfinite(value) or value < 0:
        problems.append(f"{name} must be a finite number of 0 or more, not {value!r}")
    elif value == 0 and _listed(key_path, POSITIVE):
        problems.append(f"{name} must be above 0")


def _listed(name: str, names: Tuple[str, ...]) -> bool:
    return name in names or name.split(".")[0] in names


def check_settings(override: Dict[str, Any], defaults: Dict[str, Any], prefix: str = "",
                   check_ids: bool = True) -> List[str]:
    """What is wrong with a course's settings, judged against an assignment's merged defaults: unknown
    sections and keys, values of another type than the default's, numbers out of range, check ids (in
    [points] and `hidden`) that are not the defaults' check ids. `prefix` names where the settings sit
    ("assignments.NAME."); `check_ids` False: check ids are not judged (an assignment not installed here).
    Empty when all is well."""
    problems: List[str] = []
    ids = set(defaults["points"])

    def walk(path: str, data: Dict[str, Any], base: Dict[str, Any]) -> None:
        for key, value in data.items():
            key_path = f"{path}{key}"  # as in the defaults (what POSITIVE, WHOLE, CHECK_ID_TABLES list)
            name = f"{prefix}{key_path}"  # as the course wrote it
            if key not in base:
                what = "section" if isinstance(value, dict) else "setting"
                problems.append(f"unknown {what} {name!r} (known: {', '.join(sorted(base))})")
            elif isinstance(base[key], dict):
                if not isinstance(value, dict):
                    problems.append(f"{name} must be a table ([{name}]), not {_describe(value)}")
                elif key_path in CHECK_ID_TABLES:
                    for check, points in value.items():
                        if check_ids and check not in ids:
                            problems.append(f"unknown check id {check!r} in [{name}]{_suggest(check, ids)}")
                        else:
                            _check_leaf(f'{name}."{check}"', points, 0.0, problems, key_path)
                else:
                    walk(f"{key_path}.", value, base[key])
            else:
                _check_leaf(name, value, base[key], problems, key_path)

    walk("", override, defaults)
    hidden = override.get("hidden")
    if isinstance(hidden, list):
        for check in hidden:
            if check_ids and isinstance(check, str) and check not in ids:
                problems.append(f"unknown check id {check!r} in {prefix}hidden{_suggest(check, ids)}")
    return problems


def _suggest(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
    def values_first(self) -> bool:
        """Whether contract, gradient and property checks first require the reference's values."""
        return bool(self.data.get("values_first", True))

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
    return str(_packaged(DEFAULTS_FILE)["assignment"])


def course_layers(explicit: Optional[Path] = None) -> List[Tuple[str, Dict[str, Any]]]:
    """The course's settings as (source, mapping): the file `explicit`, when given (never a file found
    anywhere: see the module). Read, not yet validated: `load_config` validates each layer against the
    chosen assignment's defaults."""
    layers: List[Tuple[str, Dict[str, Any]]] = []
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        layers.append((str(explicit), _read_toml(Path(explicit))))
    return layers


def configured_assignment(layers: List[Tuple[str, Dict[str, Any]]]) -> Optional[str]:
    """The course's `assignment = "NAME"` (the last layer that sets one), or None."""
    names = [str(data["assignment"]) for _, data in layers if data.get("assignment")]
    return names[-1] if names else None


def assignment_defaults(assignment: Any) -> Dict[str, Any]:
    """The packaged defaults with `assignment`'s own defaults on top (its check ids are its [points])."""
    return _merge(_packaged(DEFAULTS_FILE), _packaged(assignment.defaults_file))


def layer_problems(layer: Dict[str, Any], assignment: Any) -> List[str]:
    """What is wrong with one course layer: its top-level keys judged against `assignment`'s merged
    defaults (its check ids), each `[assignments.NAME]` table against assignment NAME's."""
    from autograder.assignments import registry

    problems = check_settings({k: v for k, v in layer.items() if k != "assignments"}, assignment_defaults(assignment))
    tables = layer.get("assignments", {})
    if not isinstance(tables, dict):
        return problems + [f"assignments must be a table of [assignments.NAME] tables, not {_describe(tables)}"]
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"assignments.{name} must be a table ([assignments.{name}]), not {_describe(table)}")
            continue
        try:
            named = assignment if name == assignment.name else registry.get(name)
        except registry.AssignmentError:  # another course's assignment, not installed here: its check ids
            problems += check_settings(table, _packaged(DEFAULTS_FILE), f"assignments.{name}.", check_ids=False)
            continue
        problems += check_settings(table, assignment_defaults(named), prefix=f"assignments.{name}.")
    return problems


def load_config(explicit: Optional[Path] = None, assignment: Optional[Any] = None) -> Config:
    """The settings for grading `assignment` (an `autograder.assignments.Assignment`, its name, or None for
    the course config's `assignment`, else the packaged one): the packaged defaults, the assignment's
    defaults, then each course layer (`course_layers`): its top-level keys, then its `[assignments.NAME]`
    table for this assignment. ConfigError also when the named assignment is not installed.

    Every layer is validated on its own (`layer_problems`) before anything is merged: one ConfigError
    names the file and lists everything wrong in it."""
    layers = course_layers(explicit)
    if assignment is None or isinstance(assignment, str):
        from autograder.assignments import registry

        try:
            assignment = registry.get(assignment or configured_assignment(layers) or packaged_assignment())
        except registry.AssignmentError as exc:
            raise ConfigError(str(exc)) from None
    for source, layer in layers:
        problems = layer_problems(layer, assignment)
        if problems:
            raise ConfigError(f"{source} is not a valid course config:\n  " + "\n  ".join(problems))
    data = assignment_defaults(assignment)
    sources = [str(DEFAULTS_FILE), str(assignment.defaults_file)]
    for source, layer in layers:
        data = _merge(data, {k: v for k, v in layer.items() if k != "assignments"})
        data = _merge(data, layer.get("assignments", {}).get(assignment.name, {}))
        sources.append(source)
    data["assignment"] = assignment.name
    if data["model"].get("not_graded") not in NOT_GRADED_MODES:
        raise ConfigError(f"[model] not_graded must be one of {list(NOT_GRADED_MODES)}, "
                          f"not {data['model'].get('not_graded')!r}")
    return Config(data, tuple(sources))
