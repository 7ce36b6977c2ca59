"""Wall time of grading one submission the way a student does, as a ratio to a bare `import torch`.

    python benchmarks/single.py [--submission student_submissions/correct.py] [--repeats 3] [--config FILE]
                                [--model NAME_OR_DIR]

Each repeat times `python -c "import torch"` and then `pytest --submission FILE` (a fresh process, cold:
interpreter, pytest, imports, worker, every check, the model section with its heatmaps, the report) side
by side, so that the ratio holds on a loaded machine; it prints each pair, the median ratio (the target is
3x or less) and the load average. Runs in the repository root with the course's default config unless
--config is given. The model section needs distilgpt2 cached; offline, pass `--model DIR` (any
save_pretrained folder, e.g. the seeded distilgpt2-shaped GPT-2 of tests/model_fixtures.py). Not a test.

Each repeat also times the floor of any grade with the model section: `python -c "import torch; from
transformers import GPT2LMHeadModel"`, the imports the capstone cannot do without, in one interpreter.

The commands run in a student's environment (`_common.students_environment`: compiled modules cached, unless
--as-is), after one untimed grade that writes those caches.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, add_as_is, student_command, students_environment

TARGET_RATIO = 3.0


FLOOR = "import torch; from transformers import GPT2LMHeadModel"


def seconds(command, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", type=Path, default=REPO / "student_submissions" / "correct.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", type=Path, help="course config (--grading-config); default: the defaults")
    parser.add_argument("--model", help="hub id or local model directory (--model)")
    add_as_is(parser)
    args = parser.parse_args()
    students_environment(args.as_is)
    ratios, grades, floors, bares = [], [], [], []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="autograder-single-") as tmp:
        report = Path(tmp) / "report.json"
        command = student_command(args.submission, report, args.config, args.model)
        seconds(command, REPO)  # untimed: writes the bytecode caches, like a student's first run
        for i in range(args.repeats):
            bare = seconds([sys.executable, "-c", "import torch"], REPO)
            bares.append(bare)
            floors.append(seconds([sys.executable, "-c", FLOOR], REPO))
            grades.append(seconds(command, REPO))
            ratios.append(grades[-1] / bare)
            document = json.loads(report.read_text())
            model = [c for c in document["checks"] if c["section"] == "model"]
            timing = document.get("metrics", {}).get("model", {}).get("timing_s", {})
            print(f"run {i + 1}: import torch {bare:.2f} s, + transformers {floors[-1]:.2f} s "
                  f"({floors[-1] / bare:.1f}x), grade {grades[-1]:.2f} s = {ratios[-1]:.1f}x; score "
                  f"{document['score']:g}/{document['max_score']:g} (model checks: {len(model)}, passed "
                  f"{sum(c['status'] == 'passed' for c in model)}; model section once loaded "
                  f"{timing.get('section', float('nan')):.2f} s, model load "
                  f"{timing.get('load_work', float('nan')):.2f} s in the background, waited for "
                  f"{timing.get('load', float('nan')):.2f} s)")
    ratio = statistics.median(ratios)
    print(f"pytest --submission {args.submission.name}: median {statistics.median(grades):.2f} s, median ratio to "
          f"a bare import torch {ratio:.1f}x (target {TARGET_RATIO:g}x: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs")
    print(f"floor: {FLOOR!r} alone takes median {statistics.median(floors):.2f} s "
          f"({statistics.median(f / b for f, b in zip(floors, bares)):.1f}x import torch); "
          f"the grade takes {statistics.median(g / f for g, f in zip(grades, floors)):.2f}x that")


if __name__ == "__main__":
    main()
