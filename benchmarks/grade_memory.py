"""Memory of one whole grade with the model section, as a Gradescope container counts it (every process).

    python benchmarks/grade_memory.py [--model DIR] [--submission student_submissions/correct.py]
                                      [--tokenizer ../shared/data/gpt2-tokenizer]

Runs `python -m autograder grade SUBMISSION --model DIR` (the command run_autograder runs, default config:
model section on, sandboxed worker) and samples every 50 ms the process tree it starts: the sum of RSS
(shared pages counted once per process: an upper bound) and the sum of PSS (shared pages split between
the processes that share them: what the kernel's accounting is closest to). Without --model it builds the
seeded distilgpt2-shaped GPT-2 of the tests (6 layers, 768 dims, 50,257 tokens: distilgpt2's footprint).
Prints the peaks; it is a measurement, not a test. Needs psutil.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Tuple

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def tree_memory(root: psutil.Process) -> Tuple[float, float, int]:
    """(sum of RSS, sum of PSS, processes) of `root` and its descendants, in MiB."""
    rss = pss = 0.0
    procs = [root] + root.children(recursive=True)
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20, len(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model directory (default: build the seeded distilgpt2-shaped GPT-2)")
    parser.add_argument("--submission", default=str(REPO / "student_submissions" / "correct.py"))
    parser.add_argument("--no-model", action="store_true", help="grade without the model section, for comparison")
    parser.add_argument("--tokenizer", default=str(REPO.parent / "shared" / "data" / "gpt2-tokenizer"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None and not args.no_model:
            from transformers import GPT2Config, GPT2LMHeadModel

            from tests.model_fixtures import DISTILGPT2_SHAPE, gpt2_tokenizer

            model = str(Path(tmp) / "distilgpt2-seeded")
            GPT2LMHeadModel(GPT2Config(**DISTILGPT2_SHAPE)).save_pretrained(model)
            gpt2_tokenizer(Path(args.tokenizer)).save_pretrained(model)
        command = [sys.executable, "-m", "autograder", "grade", args.submission, "--json", str(Path(tmp) / "report.json")]
        if args.no_model:
            (Path(tmp) / "course.toml").write_text("[model]\nenabled = false\n")
            command += ["--config", str(Path(tmp) / "course.toml")]
        else:
            command += ["--model", model]
        start = time.monotonic()
        child = subprocess.Popen(command, cwd=tmp, stdout=subprocess.DEVNULL, env=dict(os.environ))
        proc = psutil.Process(child.pid)
        peak_rss = peak_pss = 0.0
        most = 0
        while child.poll() is None:
            rss, pss, count = tree_memory(proc)
            peak_rss, peak_pss, most = max(peak_rss, rss), max(peak_pss, pss), max(most, count)
            time.sleep(0.05)
        seconds = time.monotonic() - start
        report = json.loads((Path(tmp) / "report.json").read_text())
        model_checks = [c for c in report["checks"] if c["section"] == "model"]
    print(f"grade of {Path(args.submission).name} with{'out' if args.no_model else ''} the model section ({len(model_checks)} model checks, "
          f"score {report['score']:g}/{report['max_score']:g}) in {seconds:.1f} s")
    print(f"peak memory of the process tree (up to {most} processes): RSS sum {peak_rss:.0f} MiB, "
          f"PSS sum {peak_pss:.0f} MiB")


if __name__ == "__main__":
    main()
