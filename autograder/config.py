"""One configuration for a grading run: packaged defaults, overridden by the course's file.

Lookup order (later wins): `autograder/defaults.toml`, `[tool.autograder]` in `pyproject.toml`,
`autograder.toml`, then an explicit `--config FILE`. Files are searched in the given folder only.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

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

    def tolerance(self, dtype: torch.dtype) -> Dict[str, float]:
        key = "float64" if dtype == torch.float64 else "float32"
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


def load_config(folder: Optional[Path] = None, explicit: Optional[Path] = None) -> Config:
    """Merge the defaults with the course's settings found in `folder` (default: the cwd)."""
    folder = Path.cwd() if folder is None else Path(folder)
    data = _read_toml(DEFAULTS_FILE)
    sources = [str(DEFAULTS_FILE)]
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("autograder")
        if section:
            data = _merge(data, section)
            sources.append(str(pyproject))
    candidates = [folder / "autograder.toml"] + ([Path(explicit)] if explicit else [])
    for path in candidates:
        if path == explicit and not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        if path.is_file():
            data = _merge(data, _read_toml(path))
            sources.append(str(path))
    unknown = set(data) - set(_read_toml(DEFAULTS_FILE))
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} in {sources[-1]}")
    if data["model"].get("not_graded") not in NOT_GRADED_MODES:
        raise ConfigError(f"[model] not_graded must be one of {list(NOT_GRADED_MODES)}, "
                          f"not {data['model'].get('not_graded')!r}")
    return Config(data, tuple(sources))
