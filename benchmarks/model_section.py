"""Cost of the model section: an untouched forward next to the full comparison with the reference injected.

    python benchmarks/model_section.py [--model distilgpt2|DIR] [--repeats 10] [--device cpu|cuda]

Uses the cached distilgpt2 when there is one, else builds the seeded distilgpt2-shaped GPT-2 of the tests
(needs ../shared/data/gpt2-tokenizer). Medians of `--repeats` runs after one warm-up; peak memory is
torch.cuda.max_memory_allocated on CUDA, else the process's peak RSS (which never goes down).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from autograder.contract import PROMPT_EXAMPLE  # noqa: E402
from autograder.model_utils import (  # noqa: E402
    ModelUnavailableError,
    compare_attention_implementations,
    load_mini_transformer,
    replace_attention_mechanism,
)
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


def peak_mb(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        return torch.cuda.max_memory_allocated(device) / 2**20
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or model directory (default: distilgpt2, else seeded)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    try:
        model, tokenizer = load_mini_transformer(args.model, device=args.device)
        source = args.model or "distilgpt2 (cached)"
    except ModelUnavailableError:
        if args.model:
            raise
        from tests.model_fixtures import save_seeded_gpt2

        folder = save_seeded_gpt2(Path(tempfile.mkdtemp()) / "distilgpt2-seeded")
        start = time.perf_counter()
        model, tokenizer = load_mini_transformer(str(folder), device=args.device)
        source = "seeded distilgpt2-shaped GPT-2 (distilgpt2 is not cached)"
    load_s = time.perf_counter() - start
    device = model.device
    inputs = tokenizer(PROMPT_EXAMPLE, return_tensors="pt").to(device)

    def forward() -> None:
        with torch.no_grad():
            model(**inputs)

    def forward_recorded() -> None:
        with torch.no_grad():
            model(**inputs, output_attentions=True, output_hidden_states=True)

    def surgery() -> None:
        replace_attention_mechanism(model, scaled_dot_product_attention)

    def comparison(tokens: int) -> Callable[[], object]:
        return lambda: compare_attention_implementations(model, tokenizer, scaled_dot_product_attention,
                                                         continuation_tokens=tokens)

    rows = [
        ("untouched forward", forward),
        ("untouched forward, attentions + hidden states", forward_recorded),
        ("surgery only (shared-weights copy + injection)", surgery),
        ("full comparison, no continuation", comparison(0)),
        ("full comparison, 5-token greedy continuation", comparison(5)),
    ]
    print(f"model: {source} on {device}, prompt {PROMPT_EXAMPLE!r}, torch threads {torch.get_num_threads()}")
    print(f"load_mini_transformer: {load_s * 1000:.0f} ms")
    print(f"{'what':<50} {'median ms':>10} {'peak MB':>10}")
    for name, fn in rows:
        seconds = median_seconds(fn, args.repeats, device)
        print(f"{name:<50} {seconds * 1000:>10.1f} {peak_mb(fn, device):>10.0f}")
    result = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention)
    memory = result.peak_memory_mb
    print(f"check: student_ran={result.student_ran}, output max |diff| {result.last_hidden_max_abs_diff:.2e}; "
          f"comparison's own timing {result.timing_s}; peak memory {memory['reference']:.0f} / "
          f"{memory['student']:.0f} MB ({memory['measure']})")


if __name__ == "__main__":
    main()
