"""`autograder train` and `autograder generate`: the course's TinyGPT demo (registered by autograder/cli.py).

Exit codes (as the other commands'): 0 done, 2 usage error (no corpus and no download, no model folder).
torch is imported only when a command runs, after the OpenMP settings are made.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2
# The built-in model trains on one thread: bit for bit the same model on a given machine (with two, OpenMP
# sums floats in an order that varies from run to run: 1.782 and 1.786 nats/char from the same seed).
BUILTIN_THREADS = 1


def _cpu_threads(threads: int) -> None:
    """Before torch starts: OpenMP threads that sleep rather than spin while they wait (on a busy machine
    spinning threads slowed training 10x), then the number of threads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(max(1, threads))


def cmd_train(args: argparse.Namespace) -> int:
    _cpu_threads(BUILTIN_THREADS if args.builtin else args.threads)
    from dataclasses import replace

    from autograder.lm import BUILTIN_DIR, data, train

    try:
        corpus = Path(args.data) if args.data else data.corpus_path()
    except data.CorpusError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.builtin:
        config, out = train.BUILTIN_TRAINING, BUILTIN_DIR
    else:
        overrides = {k: v for k, v in (("max_iters", args.iters), ("seed", args.seed)) if v is not None}
        config = replace(train.BUILTIN_TRAINING, **overrides)
        out = Path(args.out) if args.out else data.default_cache_dir() / "tinygpt"
    record = train.run(corpus, out, config)
    print(f"validation loss {record['val_loss_nats_per_char']:.3f} nats/char (bigram baseline "
          f"{record['bigram_val_loss']:.2f}); trained in {record['wall_s']:.0f} s ({record['cpu_s']:.0f} s CPU, "
          f"{record['threads']} threads); saved to {out}", file=sys.stderr)
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    _cpu_threads(1)
    from autograder.lm.generate import default_model_dir, generate

    model_dir = Path(args.model) if args.model else default_model_dir()
    if not (model_dir / "config.json").exists():
        print(f"autograder: {model_dir} holds no trained model (run `autograder train` first)", file=sys.stderr)
        return EXIT_USAGE
    print(f"(model: {model_dir})", file=sys.stderr)
    sys.stdout.write(args.prompt)
    for text in generate(args.prompt, model_dir, args.tokens, args.temperature, seed=args.seed):
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return EXIT_OK


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `train` and `generate` on the `autograder` command's subparsers."""
    train_p = sub.add_parser("train", help="train the course's TinyGPT on Tiny Shakespeare (downloaded once)")
    train_p.add_argument("--data", help="the corpus file (default: cache/tinyshakespeare.txt, downloaded and "
                                        "checked against its sha256)")
    train_p.add_argument("--out", help="where to save the model (default: cache/tinygpt)")
    train_p.add_argument("--iters", type=int, help="training steps (default: the built-in model's)")
    train_p.add_argument("--seed", type=int, help="seed of the initialisation and the batches")
    train_p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="CPU threads (default 2)")
    train_p.add_argument("--builtin", action="store_true",
                         help="retrain the built-in model exactly (fixed config, seed, 1 thread) into the package")
    train_p.set_defaults(func=cmd_train)
    generate_p = sub.add_parser("generate", help="continue a prompt with the trained TinyGPT")
    generate_p.add_argument("--prompt", required=True, help='e.g. "ROMEO:" or "To be or not to be"')
    generate_p.add_argument("--model", help="a folder written by `autograder train` (default: cache/tinygpt, "
                                            "else the built-in model)")
    generate_p.add_argument("--tokens", type=int, default=300, help="characters to generate (default 300)")
    generate_p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    generate_p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    generate_p.set_defaults(func=cmd_generate)
