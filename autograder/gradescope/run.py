"""What the zip's `run_autograder` does for one submission: find the file, grade it, write results.json.

`python -m autograder.gradescope.run [--root /autograder] [--config FILE]`. Layout (Gradescope's):
`<root>/submission/` the student's upload, `<root>/source/` the unpacked zip, `<root>/results/results.json`
the result. A results.json is written on every path: no file, several candidates, a grade that crashes
or runs past `[gradescope] timeout_s` each give every check 0 points with one message saying why.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from autograder.report import neutralise

SUFFIXES = (".py", ".ipynb")
LAST_RESORT = {"score": 0, "output_format": "text", "stdout_visibility": "hidden", "tests": []}


def _candidates(folder: Path) -> List[Path]:
    """The .py and .ipynb files under `folder` (links, hidden folders and caches skipped), shallowest first."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "__MACOSX"))
        found += [Path(top) / f for f in sorted(files)
                  if Path(f).suffix in SUFFIXES and not (Path(top) / f).is_symlink()]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))


def find_submission(folder: Path, stem: str) -> Tuple[Optional[Path], str]:
    """The file to grade under `folder` and "" or None and why not. `<stem>.py` wins, then `<stem>.ipynb`,
    then the only .py/.ipynb file there is."""
    found = _candidates(folder) if folder.is_dir() else []
    for suffix in SUFFIXES:
        named = [p for p in found if p.name == stem + suffix]
        if named:
            return named[0], ""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no submission: upload {stem}.py (or {stem}.ipynb); no .py or .ipynb file was found"
    names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
    return None, f"several files could be the submission ({names}): name yours {stem}.py (or {stem}.ipynb)"


def _grade(path: Path, report: Path, config_file: Optional[Path], timeout_s: float, workdir: Path) -> str:
    """Grade `path` in a child process (a crash there cannot take this one down); "" or what went wrong."""
    command = [sys.executable, "-m", "autograder", "grade", str(path), "--json", str(report)]
    command += ["--config", str(config_file)] if config_file else []
    try:
        done = subprocess.run(command, cwd=workdir, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"grading did not finish within {timeout_s:g} s; tell the course staff"
    if done.returncode not in (0, 1) or not report.is_file():
        return f"the grader stopped with exit code {done.returncode}; this is not your fault, tell the course staff"
    return ""


def run(root: Path, config_file: Optional[Path]) -> None:
    """Grade the submission under `root` and write `root/results/results.json` (see the module doc)."""
    from autograder.config import load_config
    from autograder.report import document as report_mod
    from autograder.report import exports
    from autograder.report.fallback import zero_report

    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as tmp:
        workdir = Path(tmp)  # the grader's cwd: no course or student file is picked up from there
        config = load_config(config_file)
        settings = config.data["gradescope"]
        path, problem = find_submission(root / "submission", str(config.data["assignment"]))
        report = workdir / "report.json"
        if path is not None:
            print(neutralise.terminal(f"grading {path}"), flush=True)  # the student's file name
            problem = _grade(path, report, config_file, float(settings["timeout_s"]), workdir)
        if problem:
            print(neutralise.terminal(problem), flush=True)
            document = zero_report(problem, config, path.name if path else "")
        else:
            document = json.loads(report.read_text(encoding="utf-8"))
            report_mod.validate(document)
        text = exports.gradescope_json(document, settings["hidden_visibility"])
        report_mod.write_atomically(root / "results" / "results.json", text.encode("utf-8"))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope.run")
    parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    parser.add_argument("--config", help="the course config bundled in the zip")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        run(root, Path(args.config) if args.config else None)
    except BaseException as exc:  # whatever happened, Gradescope gets a result and the staff the reason
        results = root / "results" / "results.json"
        results.parent.mkdir(parents=True, exist_ok=True)
        reason = f"The autograder failed ({type(exc).__name__}); this is not your fault, tell the course staff."
        results.write_text(json.dumps({**LAST_RESORT, "output": reason}) + "\n", encoding="utf-8")
        print(neutralise.terminal(f"{reason} {exc}"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
