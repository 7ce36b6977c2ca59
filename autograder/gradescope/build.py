"""`autograder gradescope build`: the zip Gradescope takes (setup.sh and run_autograder at its root).

Gradescope unpacks it into /autograder/source, runs setup.sh once to build the image, and runs
run_autograder for each submission (see autograder/gradescope/run.py). The zip holds:
  setup.sh         installs Python, a CPU torch (PyTorch's CPU wheel index) and this exact grader, then
                   caches the course's model under /autograder/cache so grading never needs the network
  run_autograder   grades /autograder/submission, always leaves /autograder/results/results.json
  course.toml      the course config every grade uses
  wheels/          the wheel of the running grader (unless --pip-spec names another install source)
"""
from __future__ import annotations

import importlib.metadata
import io
import re
import shlex
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from autograder.config import Config, ConfigError, load_config
from autograder.gradescope.wheel import build_wheel, wheel_name
from autograder.report.document import write_atomically
from autograder.report.exports import GRADESCOPE_VISIBILITIES

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image from this zip.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip libseccomp2
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install --upgrade pip
# a CPU-only torch (about 200 MB instead of several GB of CUDA libraries)
"$ROOT/venv/bin/pip" install "torch=={torch}" --index-url https://download.pytorch.org/whl/cpu
# this exact grader: {source}
"$ROOT/venv/bin/pip" install {install}
{cache}"""

CACHE_MODEL = """# the model section's model, cached now: grading runs offline
AUTOGRADER_CACHE="$ROOT/cache" "$ROOT/venv/bin/python" -c \\
  "from autograder.model.loading import load_mini_transformer; load_mini_transformer({name!r})"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. Whatever happens, it leaves results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
export AUTOGRADER_CACHE="${AUTOGRADER_CACHE:-$ROOT/cache}" HF_HUB_OFFLINE=1
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
"$PYTHON" -m autograder.gradescope.run --root "$ROOT" --config "$ROOT/source/course.toml"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then  # Python itself could not run: still a result
  printf '{"score": 0, "output_format": "text", "stdout_visibility": "hidden", "tests": [], "output": %s}\\n' \\
    "\\"The autograder could not start (exit $status); this is not your fault, tell the course staff.\\"" \\
    > "$ROOT/results/results.json"
fi
"""


class BuildError(ValueError):
    """The zip cannot be built as asked (a bad config, an assignment that contradicts it)."""


def course_config(config_file: Optional[Path], assignment: Optional[str]) -> Tuple[str, Config]:
    """The text of the zip's course.toml (`config_file` as given, with `assignment = NAME` in front when
    --assignment names one the file does not set) and its settings, checked as `autograder grade --config`
    would."""
    text = Path(config_file).read_text(encoding="utf-8") if config_file else ""
    if assignment:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", assignment):
            raise BuildError(f"--assignment {assignment!r} is not an assignment name")
        try:
            named = tomllib.loads(text).get("assignment")
        except tomllib.TOMLDecodeError as exc:
            raise BuildError(f"cannot read {config_file}: {exc}") from None
        if named not in (None, assignment):
            raise BuildError(f"--assignment {assignment} contradicts assignment = {named!r} in {config_file}")
        text = text if named else f'assignment = "{assignment}"\n' + text
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(_written(Path(tmp) / "course.toml", text))
    _check(config)
    return text, config


def _check(config: Config) -> None:
    visibility = config.data["gradescope"]["hidden_visibility"]
    if visibility not in GRADESCOPE_VISIBILITIES:
        raise BuildError(f"[gradescope] hidden_visibility must be one of {', '.join(GRADESCOPE_VISIBILITIES)}, "
                         f"not {visibility!r}")


def build(out: Path, config_file: Optional[Path] = None, assignment: Optional[str] = None,
          pip_spec: Optional[str] = None) -> Path:
    """Write Gradescope's autograder zip to `out`; `pip_spec` installs the grader from there (e.g.
    "attention-autograder[sandbox]==0.1.0" from PyPI) instead of bundling this one's wheel."""
    if pip_spec is not None and not pip_spec.isprintable():  # a newline would end setup.sh's comment line
        raise BuildError(f"--pip-spec {pip_spec!r} holds a line break or a control character")
    try:
        course, config = course_config(config_file, assignment)
    except (ConfigError, OSError) as exc:
        raise BuildError(str(exc)) from None
    with tempfile.TemporaryDirectory() as tmp:
        model = config.data["model"]
        cache = CACHE_MODEL.format(name=str(model["name"])) if model["enabled"] else ""
        if pip_spec:
            install, source = shlex.quote(pip_spec), f"{pip_spec} (as --pip-spec named it)"
        else:
            install, source = f'"$SOURCE/wheels/{wheel_name()}[sandbox]"', "the wheel bundled in wheels/"
        setup = SETUP_SH.format(torch=importlib.metadata.version("torch").split("+")[0], install=install, source=source, cache=cache)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            _add(archive, "setup.sh", setup.encode(), executable=True)
            _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
            _add(archive, "course.toml", course.encode())
            if not pip_spec:
                wheel = build_wheel(Path(tmp) / "wheels")
                _add(archive, f"wheels/{wheel.name}", wheel.read_bytes())
    write_atomically(Path(out), buffer.getvalue())
    return Path(out)


def _written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
