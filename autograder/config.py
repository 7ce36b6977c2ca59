"""One configuration for a grading run: packaged defaults, overridden by the course's file.

Lookup order (later wins): `autograder/defaults.toml`, `[tool.autograder]` in `pyproject.toml`,
`autograder.toml`, then an explicit `--config FILE`. Files are searched in the given folder only.
"""
from __future__ import annotations

import copy
import difflib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import torch

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")


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


def _check_leaf(name: str, value: Any, default: Any, problems: List[str]) -> None:
    """One setting against its default's type (int where the default is an int) and range."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        if isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{name} must be a list of strings, not {_describe(value)}")
        elif type(value) is not type(default):
            problems.append(f"{name} must be {_kind(default)}, not {_describe(value)}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{name} must be a number, not {_describe(value)}")
    elif _listed(name, WHOLE) and not isinstance(value, int):
        problems.append(f"{name} must be a whole number, not {value!r}")
    elif not math.isfinite(value) or value < 0:
        problems.append(f"{name} must be a finite number of 0 or more, not {value!r}")
    elif value == 0 and _listed(name, POSITIVE):
        problems.append(f"{name} must be above 0")


def _listed(name: str, names: Tuple[str, ...]) -> bool:
    return name in names or name.split(".")[0] in names


def check_settings(override: Dict[str, Any], defaults: Dict[str, Any]) -> List[str]:
    """What is wrong with a course's settings, judged against the packaged defaults: unknown sections and
    keys, values of another type than the default's, numbers out of range, check ids (in [points] and
    `hidden`) that are not the defaults' check ids. Empty when all is well."""
    problems: List[str] = []
    check_ids = set(defaults["points"])

    def walk(prefix: str, data: Dict[str, Any], base: Dict[str, Any]) -> None:
        for key, value in data.items():
            name = f"{prefix}{key}"
            if key not in base:
                what = "section" if isinstance(value, dict) else "setting"
                problems.append(f"unknown {what} {name!r} (known: {', '.join(sorted(base))})")
            elif isinstance(base[key], dict):
                if not isinstance(value, dict):
                    problems.append(f"{name} must be a table ([{name}]), not {_describe(value)}")
                elif name in CHECK_ID_TABLES:
                    for check, points in value.items():
                        if check not in check_ids:
                            problems.append(f"unknown check id {check!r} in [{name}]{_suggest(check, check_ids)}")
                        else:
                            _check_leaf(f'{name}."{check}"', points, 0.0, problems)
                else:
                    walk(f"{name}.", value, base[key])
            else:
                _check_leaf(name, value, base[key], problems)

    walk("", override, defaults)
    hidden = override.get("hidden")
    if isinstance(hidden, list):
        for check in hidden:
            if isinstance(check, str) and check not in check_ids:
                problems.append(f"unknown check id {check!r} in hidden{_suggest(check, check_ids)}")
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

    def tolerance(self, dtype: torch.dtype) -> Dict[str, float]:
        key = "float64" if dtype == torch.float64 else "float32"
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

    def with_overrides(self, overrides: Dict[str, Any]) -> "Config":
        return Config(_merge(self.data, overrides), self.sources)


def load_config(folder: Optional[Path] = None, explicit: Optional[Path] = None) -> Config:
    """Merge the defaults with the course's settings found in `folder` (default: the cwd).

    Every file is validated on its own (`check_settings`) before anything is merged: one ConfigError
    names the file and lists everything wrong in it."""
    folder = Path.cwd() if folder is None else Path(folder)
    defaults = _read_toml(DEFAULTS_FILE)
    data = copy.deepcopy(defaults)
    sources = [str(DEFAULTS_FILE)]
    found = []
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("autograder")
        if section:
            found.append((f"{pyproject} [tool.autograder]", str(pyproject), section))
    candidates = [folder / "autograder.toml"] + ([Path(explicit)] if explicit else [])
    for path in candidates:
        if path == explicit and not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        if path.is_file():
            found.append((str(path), str(path), _read_toml(path)))
    for where, source, override in found:
        problems = check_settings(override, defaults)
        if problems:
            raise ConfigError(f"{where} is not a valid course config:\n  " + "\n  ".join(problems))
        data = _merge(data, override)
        sources.append(source)
    return Config(data, tuple(sources))
