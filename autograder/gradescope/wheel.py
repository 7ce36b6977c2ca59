"""A wheel of the running grader, made from its own files: the exact code that builds the zip is the code
Gradescope installs, with no source tree, network or build backend needed (an editable install works too).
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from pathlib import Path
from typing import Iterator, List, Tuple

import autograder
from autograder import __version__

DISTRIBUTION = "attention-autograder"
PACKAGES = ("autograder", "reference")  # what pyproject's packages.find includes


def wheel_name() -> str:
    return f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"


def _package_files() -> Iterator[Tuple[str, Path]]:
    """(archive name, file) for every file of the grader's packages, bytecode and caches left out."""
    root = Path(autograder.__file__).resolve().parent.parent
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts \
                    and path.suffix not in (".pyc", ".pyo"):
                yield path.relative_to(root).as_posix(), path


def _entry_points() -> str:
    """entry_points.txt of the installed distribution (the `autograder` command, the pytest plugin): the
    wheel declares exactly what pyproject.toml does."""
    text = importlib.metadata.distribution(DISTRIBUTION).read_text("entry_points.txt")
    if not text:
        raise RuntimeError(f"{DISTRIBUTION} is installed without entry points (pip install -e . first)")
    return text


def _metadata() -> str:
    """METADATA: name, version, and the dependencies and extras of the installed distribution."""
    try:
        installed = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"{DISTRIBUTION} is not installed (pip install -e . first): its dependencies "
                           "are read from the installed metadata") from None
    lines = ["Metadata-Version: 2.1", f"Name: {DISTRIBUTION}", f"Version: {__version__}",
             f"Summary: {installed.get('Summary', '')}", f"Requires-Python: {installed.get('Requires-Python', '>=3.10')}"]
    lines += [f"Provides-Extra: {extra}" for extra in installed.get_all("Provides-Extra") or []]
    lines += [f"Requires-Dist: {req}" for req in installed.get_all("Requires-Dist") or []]
    return "\n".join(lines) + "\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(out_dir: Path) -> Path:
    """Write the wheel into `out_dir` and return its path."""
    info = f"{DISTRIBUTION.replace('-', '_')}-{__version__}.dist-info"
    entries: List[Tuple[str, bytes]] = [(name, path.read_bytes()) for name, path in _package_files()]
    entries += [
        (f"{info}/METADATA", _metadata().encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: attention-autograder\nRoot-Is-Purelib: true\n"
                          b"Tag: py3-none-any\n"),
        (f"{info}/entry_points.txt", _entry_points().encode()),
    ]
    record = "\n".join([_record_line(n, d) for n, d in entries] + [f"{info}/RECORD,,"]) + "\n"
    out = Path(out_dir) / wheel_name()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries + [(f"{info}/RECORD", record.encode())]:
            wheel.writestr(name, data)
    return out
