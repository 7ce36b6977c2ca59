"""Batch grading throughput: `autograder batch` on 100 distinct submissions next to one `pytest
--submission` process per submission, measured in the same run at the same concurrency.

    python benchmarks/batch.py [--count 100] [--jobs 2] [--sample 6] [--config FILE] [--model NAME_OR_DIR]
                               [--sources 'correct*.py']

The submissions are student_submissions/*.py (correct, buggy and template files; `--sources` another glob,
e.g. the correct ones only) in turn, each copy with a unique comment appended, so every one has its own
content hash and none is skipped as already graded.
The batch side is the real command (`autograder batch DIR --out OUT --jobs N`), timed from its start to its
exit: interpreter start, imports, fork-server and warm-up included. The one-process-each side runs
`python -m pytest --submission FILE` on an evenly spread sample of `--sample` files, `--jobs` processes at a
time, and is extrapolated to all of them (it is the slow side; grading 100 that way takes minutes).

Default config: the packaged defaults with the model section disabled (the hub is unreachable here), or
enabled with `--model DIR` (a local save_pretrained folder, e.g. tests/model_fixtures.py's seeded GPT-2):
both sides then pay the same model checks per submission, and the one-process side also its load.
Both sides run in a student's environment (`_common.students_environment`: compiled modules cached, unless
--as-is). It prints figures; it is not a test and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from _common import REPO, add_as_is, student_command, students_environment

DEFAULT_CONFIG = "[model]\nenabled = false\n"


def make_submissions(folder: Path, count: int, pattern: str) -> List[Path]:
    """`count` distinct files: the example submissions matching `pattern` in turn, each with a unique
    trailing comment."""
    sources = sorted((REPO / "student_submissions").glob(pattern))
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        source = sources[i % len(sources)]
        path = folder / f"student{i:03d}_{source.stem}.py"
        path.write_text(source.read_text() + f"\n# benchmark copy {i}\n")
        paths.append(path)
    return paths


def cpu_seconds_of_children() -> float:
    """User + system CPU of this process's waited-for descendants (a batch's grading processes and workers
    are waited for by the batch and its fork-server, which are waited for here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_batch(folder: Path, out: Path, jobs: int, config: Path, model: Optional[str]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds) of one `autograder batch` command over every file in folder."""
    command = [sys.executable, "-m", "autograder", "batch", str(folder), "--out", str(out), "--jobs", str(jobs),
               "--config", str(config)] + (["--model", model] if model else [])
    cpu, start = cpu_seconds_of_children(), time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, cpu_seconds_of_children() - cpu


def run_one_process_each(paths: Sequence[Path], out: Path, jobs: int, config: Path, model: Optional[str]) -> float:
    """Wall seconds of `python -m pytest --submission FILE` for each of paths, `jobs` at a time."""
    out.mkdir(parents=True)

    def one(path: Path) -> None:
        subprocess.run(student_command(path, out / f"{path.stem}.json", config, model), cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - start


def scores(out: Path, names: Sequence[str]) -> List[float]:
    return [json.loads((out / f"{name}.json").read_text())["score"] for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="distinct submissions in the batch")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes at once, both sides")
    parser.add_argument("--sample", type=int, default=6, help="files graded one process each, extrapolated")
    parser.add_argument("--config", type=Path, help="course config for both sides (default: model disabled)")
    parser.add_argument("--model", help="local model folder (or hub id): the model section on, both sides")
    parser.add_argument("--sources", default="*.py", help="which student_submissions/ files are copied (a glob; "
                                                          "'correct*.py': correct submissions only)")
    add_as_is(parser)
    args = parser.parse_args()
    students_environment(args.as_is)

    with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
        root = Path(tmp)
        config = args.config or root / "autograder.toml"
        if args.config is None:
            config.write_text("" if args.model else DEFAULT_CONFIG)
        paths = make_submissions(root / "submissions", args.count, args.sources)
        step = max(1, len(paths) // args.sample)
        sample = paths[::step][:args.sample]
        load = os.getloadavg()[0]

        batch_s, batch_cpu = run_batch(root / "submissions", root / "batch", args.jobs, config, args.model)
        summary = json.loads((root / "batch" / "summary.json").read_text())
        timing = summary["batch"]
        each_cpu = cpu_seconds_of_children()
        each_s = run_one_process_each(sample, root / "each", args.jobs, config, args.model)
        each_cpu = cpu_seconds_of_children() - each_cpu

        names = [p.stem for p in sample]
        same = scores(root / "batch", names) == scores(root / "each", names)
        batch_rate = args.count / batch_s * 60
        each_rate = len(sample) / each_s * 60
        grading_s = timing["seconds"] - timing["warm_up_s"]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} before / {os.getloadavg()[0]:.2f} after; "
              f"--jobs {args.jobs}; config: {config if args.config else 'defaults'}, "
              f"model section: {args.model or 'disabled'}; submissions: copies of student_submissions/{args.sources}")
        print(f"autograder batch: {args.count} distinct submissions in {batch_s:.1f} s wall (command start to exit) "
              f"= {batch_rate:.0f} submissions/minute; mean {batch_s / args.count * 1000:.0f} ms each")
        print(f"  of which: interpreter, imports and the summary files {batch_s - timing['seconds']:.1f} s; warm-up "
              f"(fork-server, reference graded once) {timing['warm_up_s']:.1f} s; grading {grading_s:.1f} s = "
              f"{args.count / grading_s * 60:.0f}/minute, {grading_s / args.count * 1000:.0f} ms each")
        print(f"  CPU: {batch_cpu:.1f} s in all, {batch_cpu / args.count:.2f} s a submission; mean score "
              f"{summary['scores']['mean']}/{summary['max_score']:g}")
        print(f"one `pytest --submission` process per submission: {len(sample)} of the {args.count} files (a sample, "
              f"every {step}th) in {each_s:.1f} s, {args.jobs} at a time = {each_rate:.1f} submissions/minute "
              f"({each_cpu / len(sample):.2f} CPU s each); extrapolated to all {args.count}: "
              f"{each_s / len(sample) * args.count:.0f} s")
        print(f"speed-up of the batch over one process each: {batch_rate / each_rate:.1f}x "
              f"(same scores on the sample: {'yes' if same else 'NO'})")


if __name__ == "__main__":
    main()
