"""Wall time of grading one submission the way a student does: `pytest --submission FILE` in a fresh process.

    python benchmarks/single.py [--submission student_submissions/correct.py] [--repeats 3] [--config FILE]
                                [--model NAME_OR_DIR]

Prints each run and the median (the target is under 10 s). Runs in the repository root with the course's
default config unless --config is given. The model section needs distilgpt2 cached; offline, its checks
fail at once (the line says how many model checks passed), or pass `--model DIR` (any save_pretrained
folder, e.g. the seeded distilgpt2-shaped GPT-2 of tests/model_fixtures.py). Not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import REPO, student_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", type=Path, default=REPO / "student_submissions" / "correct.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", type=Path, help="course config (--grading-config); default: the defaults")
    parser.add_argument("--model", help="hub id or local model directory (--model)")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory(prefix="autograder-single-") as tmp:
        report = Path(tmp) / "report.json"
        command = student_command(args.submission, report, args.config, args.model)
        for i in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            document = json.loads(report.read_text())
            model = [c for c in document["checks"] if c["section"] == "model"]
            print(f"run {i + 1}: {times[-1]:.2f} s, score {document['score']:g}/{document['max_score']:g}"
                  f" (model checks: {len(model)}, passed {sum(c['status'] == 'passed' for c in model)})")
    print(f"pytest --submission {args.submission.name}: median {statistics.median(times):.2f} s over "
          f"{len(times)} runs (target: under 10 s)")


if __name__ == "__main__":
    main()
