"""Cost of the model section: the untouched model's forward next to the model section as it is graded.

    python benchmarks/model_section.py [--model distilgpt2|DIR] [--repeats 5]
                                       [--submission student_submissions/correct.py]

Uses the cached distilgpt2 when there is one, else builds the seeded distilgpt2-shaped GPT-2 of the tests
(needs ../shared/data/gpt2-tokenizer). "Model section as graded" runs `autograder grade -k model` on the
submission in this process (sandboxed worker, model loaded once and reused like in batch grading) and
reads `metrics.model.timing_s.section` from the report: everything after the model is loaded
(comparison with a 5-token continuation, 12 heatmaps, projections mode, gradients). The model is loaded
once, through the grader's own cache, on CUDA when there is one, else on the CPU. Medians of
`--repeats` runs after one warm-up. Peak memory is torch.cuda.max_memory_allocated on CUDA, else the
process's peak RSS (it never goes down, so each row shows the peak so far).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from autograder.checks import model_section  # noqa: E402
from autograder.assignments.attention.contract import PROMPT_EXAMPLE  # noqa: E402
from autograder.grade import grade  # noqa: E402
from autograder.model import (
    compare,  # noqa: E402
    heatmaps,  # noqa: E402
    loading,  # noqa: E402
)
from autograder.model.loading import one_cpu_thread  # noqa: E402
from reference.attention import scaled_dot_product_attention  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def timed(parts: Dict[str, List[float]], name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            parts.setdefault(name, []).append(time.perf_counter() - start)
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="hub id, model directory or builtin (default: distilgpt2, else seeded)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--submission", default=str(REPO / "student_submissions" / "correct.py"))
    args = parser.parse_args()

    start = time.perf_counter()
    # the grader's own per-process cache (with the default fallback), so the graded runs below reuse this model
    model, tokenizer, choice = model_section.load(args.model or loading.DEFAULT_MODEL, True)
    source = f"{choice.name} ({choice.why})"
    if choice.name == loading.BUILTIN_MODEL and not args.model:  # distilgpt2 is not cached: its shape instead
        from tests.model_fixtures import save_seeded_gpt2

        folder = save_seeded_gpt2(Path(tempfile.mkdtemp()) / "distilgpt2-seeded")
        start = time.perf_counter()
        args.model = str(folder)
        model, tokenizer, _ = model_section.load(args.model, True)
        source = "seeded distilgpt2-shaped GPT-2 (distilgpt2 is not cached)"
    load_s = time.perf_counter() - start
    device = model.device
    inputs = tokenizer(PROMPT_EXAMPLE, return_tensors="pt").to(device)
    threads = torch.get_num_threads()

    def forward() -> None:
        with torch.no_grad():
            model(**inputs)

    def forward_recorded() -> None:
        with torch.no_grad():
            model(**inputs, output_attentions=True, output_hidden_states=True, use_cache=False)

    def comparison() -> None:
        compare.compare_attention_implementations(model, tokenizer, scaled_dot_product_attention)

    print(f"model: {source} on {device}, prompt {PROMPT_EXAMPLE!r} ({inputs['input_ids'].shape[-1]} tokens)")
    print(f"load_mini_transformer: {load_s * 1000:.0f} ms; torch threads {threads} (the model section uses 1)")
    print(f"{'what':<62} {'median ms':>10} {'peak MB':>9}")
    rows = [
        (f"untouched forward ({threads} threads)", forward, False),
        ("untouched forward (1 thread)", forward, True),
        ("untouched forward, attentions + hidden states (1 thread)", forward_recorded, True),
        ("comparison + 5-token continuation, reference in-process", comparison, True),
    ]
    for name, fn, single in rows:
        reset_peak(device)
        with one_cpu_thread() if single else contextlib.nullcontext():
            seconds = median_seconds(fn, args.repeats * 3, device)
        print(f"{name:<62} {seconds * 1000:>10.1f} {peak_mb(device):>9.0f}")

    # the model section as graded, parts timed from outside
    parts: Dict[str, List[float]] = {}
    names = {(compare, "compare_attention_implementations"): "comparisons (attention mode, projections mode)",
             (compare, "_continuation"): "  of which the greedy continuations",
             (heatmaps, "visualize_model_comparison"): "heatmaps (one PNG per head)"}
    for (module, function), name in names.items():
        setattr(module, function, timed(parts, name, getattr(module, function)))
    out = Path(tempfile.mkdtemp())
    config = out / "autograder.toml"
    config.write_text("[hypothesis]\nmax_examples = 5\n")
    sections, totals, per_part = [], [], {}
    submission = Path(args.submission)
    for i in range(args.repeats + 1):
        parts.clear()
        reset_peak(device)
        begin = time.perf_counter()
        document = grade(submission, out / f"report{i}.json", model=args.model or loading.DEFAULT_MODEL,
                         config_file=config, echo=False, extra=["-k", "model"])
        wall = time.perf_counter() - begin
        metrics = document["metrics"].get("model")
        if metrics is None:
            sys.exit(f"the model section did not run: {document['feedback']}")
        if i == 0:  # warm-up: loads the model once (later grades reuse it, as batch grading does)
            lost = [c["id"] for c in document["checks"] if c["section"] == "model" and c["status"] != "passed"]
            print(f"first grade: model load {metrics['timing_s']['load'] * 1000:.0f} ms, "
                  f"model checks not passed: {lost or 'none'}; heatmaps: "
                  f"{sum(a['kind'] == 'heatmap' for a in document['artifacts'])} PNGs")
            continue
        sections.append(metrics["timing_s"]["section"])
        totals.append(wall)
        for name, values in parts.items():
            per_part.setdefault(name, []).append(sum(values))
    print(f"{'model section as graded (' + submission.name + ', sandboxed worker)':<62} "
          f"{statistics.median(sections) * 1000:>10.1f} {peak_mb(device):>9.0f}")
    for name in names.values():
        if name in per_part:
            print(f"{'  ' + name:<62} {statistics.median(per_part[name]) * 1000:>10.1f}")
    rest = statistics.median(sections) - sum(statistics.median(per_part[n]) for n in names.values()
                                             if n in per_part and not n.startswith("  "))
    print(f"{'  the rest (gradients check, student model copies, ...)':<62} {rest * 1000:>10.1f}")
    print(f"{'whole grade -k model (pytest, worker start, report)':<62} {statistics.median(totals) * 1000:>10.1f}")
    memory = metrics["peak_memory_mb"]
    print(f"report: timing_s {{reference {metrics['timing_s']['reference'] * 1000:.1f} ms, student "
          f"{metrics['timing_s']['student'] * 1000:.1f} ms}}, peak memory {memory['reference']:.0f} / "
          f"{memory['student']:.0f} MB ({memory['measure']}); section min/max "
          f"{min(sections):.2f}/{max(sections):.2f} s")


if __name__ == "__main__":
    main()
