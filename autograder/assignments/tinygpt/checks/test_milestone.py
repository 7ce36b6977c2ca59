"""The milestone: the grader trains your gpt_forward on Tiny Shakespeare for the configured budget
([milestone] in the config), then computes the validation loss with the REFERENCE forward on your trained
parameters; it must beat the gate (2.25 nats/char by default; the bigram baseline is 2.48). The report
shows the loss, the baseline, the time and a sample the trained model writes."""
from __future__ import annotations

import pytest
import torch

from autograder.assignments.tinygpt.inputs import CHECK
from autograder.assignments.tinygpt.milestone import Budget, Corpus, sample, train_student, validation_loss
from autograder.feedback import CheckFailed, NotGraded
from autograder.lm.data import CorpusError


@pytest.mark.check("milestone.validation_loss")
@pytest.mark.timeout(3600, method="signal")  # the budget's own limit below is the one that applies
def test_validation_loss(submission, course, grading):
    budget = Budget.from_config(course.data.get("milestone", {}))
    try:
        data = Corpus.load(budget.corpus)
    except (CorpusError, OSError) as exc:
        raise NotGraded(f"Tiny Shakespeare is not available: {exc}") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and many gradings share the machine
    try:
        params, seconds = train_student(submission, CHECK, data, budget)
        loss, bigram = validation_loss(params, data, budget), data.bigram()
        text = sample(params, data, budget)
    finally:
        torch.set_num_threads(threads)
    grading.extra.setdefault("metrics", {})["milestone"] = {
        "validation_loss": round(loss, 4), "gate": budget.gate, "bigram_baseline": round(bigram, 4),
        "steps": budget.steps, "train_seconds": round(seconds, 1), "sample": text}
    if not loss <= budget.gate:  # NaN fails too
        raise CheckFailed(f"after {budget.steps} training steps ({seconds:.0f} s), your model's validation loss is "
                          f"{loss:.3f} nats/char (computed by the reference forward on your trained parameters, "
                          f"causal); the milestone asks for at most {budget.gate} (the bigram baseline: {bigram:.2f}). "
                          f"Its sample: {text[:120]!r}",
                          "a forward that matches the contract trains past the gate within the budget; check the "
                          "forward section first (a model that sees the future learns to copy, not to predict)")
