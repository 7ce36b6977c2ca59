"""Cost of the TinyGPT milestone per submission: `autograder grade -k milestone` on each file, sandboxed.

    python benchmarks/milestone.py [--corpus FILE] [--steps N] [FILE ...]

Default files: student_submissions/tinygpt/correct.py and buggy_no_causal_mask.py; default corpus:
../shared/data/tinyshakespeare.txt (else the cached download). Prints, per submission, the wall and CPU
seconds of the whole milestone check (training through the seam, the reference's validation loss, the
sample), the training seconds, the validation loss next to the gate and the bigram baseline. CPU seconds
count this process and its children (the submission's worker).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.grade import grade  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
DEFAULT_FILES = [REPO / "student_submissions" / "tinygpt" / name for name in ("correct.py", "buggy_no_causal_mask.py")]


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS) if DEFAULT_CORPUS.is_file() else "")
    parser.add_argument("--steps", type=int, default=None, help="override [milestone] steps")
    args = parser.parse_args()
    print(f"{'submission':32} {'wall s':>7} {'cpu s':>7} {'train s':>8} {'val loss':>9} {'gate':>6} {'bigram':>7} status")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "milestone.toml"
        settings = f"corpus = {json.dumps(args.corpus)}\n" + (f"steps = {args.steps}\n" if args.steps else "")
        config.write_text("[milestone]\n" + settings)
        for path in args.files:
            wall, cpu = time.monotonic(), cpu_seconds()
            document = grade(path, Path(tmp) / f"{path.stem}.json", config_file=config, echo=False,
                             assignment="tinygpt", extra=("-k", "milestone"))
            wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
            m = document["metrics"].get("milestone", {})
            check = next(c for c in document["checks"] if c["id"] == "milestone.validation_loss")
            print(f"{path.name:32} {wall:7.1f} {cpu:7.1f} {m.get('train_seconds', float('nan')):8.1f} "
                  f"{m.get('validation_loss', float('nan')):9.3f} {m.get('gate', float('nan')):6.2f} "
                  f"{m.get('bigram_baseline', float('nan')):7.3f} {check['status']}")


if __name__ == "__main__":
    main()
