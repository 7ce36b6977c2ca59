"""The TinyGPT milestone: train the student's gpt_forward on Tiny Shakespeare, grade it with the reference.

Training runs in the grader: AdamW over parameters it owns, batches it draws (seeded), the loss it computes
from the logits the student's forward returns, and gradients from the student's vjp (the forward and
backward of their embeddings and blocks run in their worker, through `autograder.model.bridge`). The loss
that decides the points is computed here, by reference/tinygpt.py's forward (causal) on the trained
parameters: student code never reports its own loss, and a model that peeks at future tokens, which trains
to a low loss of its own, is graded as the causal model it must be.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.feedback import CheckFailed
from autograder.lm import data as corpus
from autograder.model.bridge import student_op
from reference import tinygpt as ref

Params = Dict[str, Tensor]


@dataclass(frozen=True)
class Budget:
    """The [milestone] settings of the config (defaults.toml documents each)."""

    corpus: str = ""
    steps: int = 800
    batch_size: int = 16
    block_size: int = 32
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 2
    lr: float = 6e-3
    seed: int = 1337
    gate: float = 2.25
    eval_chars: int = 20000
    sample_prompt: str = "ROMEO:"
    sample_chars: int = 200
    timeout_s: float = 600.0  # a float literal: from_config casts with the default's type

    @classmethod
    def from_config(cls, settings: Dict[str, Any]) -> "Budget":
        return cls(**{f.name: type(f.default)(settings[f.name]) for f in fields(cls) if f.name in settings})


@dataclass(frozen=True)
class Corpus:
    """Tiny Shakespeare as character ids: the tokenizer, the train split and the validation split."""

    tokenizer: corpus.CharTokenizer
    train: Tensor
    val: Tensor

    @classmethod
    def load(cls, path: str) -> "Corpus":
        """From path, or from the cached download when path is "" (CorpusError when neither is there)."""
        text = corpus.read_corpus(Path(path) if path else None)
        tokenizer = corpus.CharTokenizer.from_text(text)
        train, val = corpus.split(corpus.encode_corpus(text, tokenizer))
        return cls(tokenizer, train, val)

    def bigram(self) -> float:
        return corpus.bigram_loss(self.train, self.val, self.tokenizer.vocab_size)


def train_student(submission: Any, checker: Any, data: Corpus, budget: Budget) -> Tuple[Params, float]:
    """(trained params, seconds): `budget.steps` AdamW steps of the reference's schedule on the student's
    forward and vjp; the init, the batches and the optimizer are the grader's (seeded)."""
    config = ref.GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=budget.block_size,
                           n_layers=budget.n_layers, d_model=budget.d_model, n_heads=budget.n_heads)
    schedule = ref.TrainConfig(max_iters=budget.steps, batch_size=budget.batch_size, lr=budget.lr,
                               min_lr=budget.lr / 10, warmup_iters=min(100, budget.steps // 10), seed=budget.seed)
    generator = torch.Generator().manual_seed(budget.seed)
    params = ref.init_params(config, generator)
    keys: List[str] = list(params)
    tensors = [params[k].requires_grad_(True) for k in keys]

    def pack(args: List[Any]) -> List[Any]:  # (ids, *tensors) -> gpt_forward's arguments
        return [args[0], dict(zip(keys, args[1:])), budget.n_heads]

    def shapes(ids: Tensor, p: Params, n_heads: int) -> Tensor:
        return torch.empty(*ids.shape, p["wte"].shape[0], dtype=p["wte"].dtype)

    forward = student_op(submission, checker, "gpt_forward", shapes, wrt=list(range(1, len(keys) + 1)),
                         pack=pack, targets=[(1, k) for k in keys])
    decayed = [t for t in tensors if t.dim() >= 2]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": schedule.weight_decay},
                                   {"params": [t for t in tensors if t.dim() < 2], "weight_decay": 0.0}],
                                  lr=schedule.lr, betas=(0.9, schedule.beta2))
    started = time.monotonic()
    for step in range(schedule.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = ref.learning_rate(step, schedule)
        x, y = ref.get_batch(data.train, schedule.batch_size, config.block_size, generator)  # [batch, block]
        (logits,) = forward(x, *tensors)                                                    # [batch, block, vocab]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        if not torch.isfinite(loss):  # NaN weights from here on: no loss or sample could be computed from them
            raise CheckFailed(f"training your model diverged at step {step + 1} of {schedule.max_iters}: the "
                              f"loss is {loss.item()}",
                              "your forward's logits (or their gradients) are not finite: look for a division by "
                              "zero, a -inf mask fill that leaves a row with no key, or log of a softmax")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tensors, schedule.grad_clip)
        optimizer.step()
        if time.monotonic() - started > budget.timeout_s:
            raise CheckFailed(f"training your model ran past the milestone's limit of {budget.timeout_s:g} s "
                              f"(step {step + 1} of {schedule.max_iters})",
                              "one forward and backward of this tiny model should take milliseconds: look for "
                              "Python loops over tokens or batch entries")
    return {k: t.detach() for k, t in zip(keys, tensors)}, time.monotonic() - started


def validation_loss(params: Params, data: Corpus, budget: Budget) -> float:
    """Nats per character of the REFERENCE forward on the first eval_chars of the validation split."""
    return ref.evaluate(params, data.val[: budget.eval_chars], budget.n_heads, budget.block_size)


def sample(params: Params, data: Corpus, budget: Budget) -> str:
    """A continuation of the prompt by the reference forward on the trained params (seeded)."""
    ids = torch.tensor(data.tokenizer.encode(budget.sample_prompt), dtype=torch.long)
    new = ref.sample(params, ids, budget.n_heads, budget.sample_chars, torch.Generator().manual_seed(budget.seed))
    return budget.sample_prompt + data.tokenizer.decode(list(new))
