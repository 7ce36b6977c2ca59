"""The built-in model's training cost and quality next to the bigram baseline, measured in one run.

    python benchmarks/lm.py [--data FILE] [--threads 2] [--iters N]

Retrains the built-in model's exact configuration (seeded; into a temporary folder, the package is left
alone), times it (wall and CPU seconds, the load average at the end: other processes inflate the wall
time), and evaluates on Tiny Shakespeare's last 10%, in nats per character: the count-based bigram model,
the freshly trained TinyGPT, and the model shipped in the package. `--iters` shortens the run (then the
loss is not the built-in model's). The corpus: --data, else ../shared/data/tinyshakespeare.txt when
present, else the cached download (cache/tinyshakespeare.txt, fetched once with its sha256 checked).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see autograder.cli._cpu_threads

import torch  # noqa: E402

from autograder.lm import BUILTIN_DIR, data  # noqa: E402
from autograder.lm.commands import BUILTIN_THREADS  # noqa: E402
from autograder.lm.export import load  # noqa: E402
from autograder.lm.train import BUILTIN_SHAPE, BUILTIN_TRAINING, train_on_text  # noqa: E402
from reference.tinygpt import evaluate  # noqa: E402

SHARED_CORPUS = REPO.parent / "shared" / "data" / data.CORPUS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the corpus (default: ../shared/data, else the cached download)")
    parser.add_argument("--threads", type=int, default=BUILTIN_THREADS,
                        help="default: the built-in model's (1: the very model shipped, bit for bit)")
    parser.add_argument("--iters", type=int, help="training steps (default: the built-in model's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.data) if args.data else SHARED_CORPUS if SHARED_CORPUS.exists() else data.corpus_path()
    text = data.read_corpus(corpus)
    settings = dataclasses.replace(BUILTIN_TRAINING, max_iters=args.iters or BUILTIN_TRAINING.max_iters)

    result = train_on_text(text, BUILTIN_SHAPE, settings, progress=sys.stderr.isatty())
    params, config, tokenizer = load(BUILTIN_DIR)
    _, val_ids = data.split(data.encode_corpus(text, tokenizer))
    start = time.perf_counter()
    shipped = evaluate(params, val_ids, config.n_heads, config.block_size)
    eval_s = time.perf_counter() - start

    print(f"corpus: {corpus} ({len(text):,} characters, sha256 "
          f"{'ok' if data.sha256_of(corpus) == data.CORPUS_SHA256 else 'DIFFERENT'}), "
          f"validation = last 10% ({len(val_ids):,} characters)")
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (wall times grow with the load)")
    print(f"{'model':<48} {'val nats/char':>13} {'train wall s':>13} {'train CPU s':>12}")
    print(f"{'bigram (counts of the first 90%, add-1)':<48} {result.bigram_loss:>13.3f} {'-':>13} {'-':>12}")
    label = f"TinyGPT, built-in config ({settings.max_iters} steps, seed {settings.seed})"
    print(f"{label:<48} {result.val_loss:>13.3f} {result.wall_s:>13.1f} {result.cpu_s:>12.1f}")
    print(f"{'TinyGPT shipped in the package':<48} {shipped:>13.3f} {'-':>13} {'-':>12}"
          f"   (evaluated in {eval_s:.1f} s)")


if __name__ == "__main__":
    main()
