"""The gradient checks compare with the reference's gradients, fail on NaN, and award points only for
right values; the seam refuses gradients that are not shaped like their inputs; zeros earn the shapes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autograder.assignments.attention.contract import ASSIGNMENT
from autograder.runtime.submission import Submission, SubmissionError
from tests.grading_helpers import (
    CORRECT,
    FAST_CONFIG,
    fast_config,
    by_id,
    grade_quick,
    passed,
    variant,
)

GRADIENTS = [f"{s}.gradients" for s in ("projections", "scores", "softmax", "values", "attention")]
ZEROS_SOURCE = (Path(__file__).parent / "hostile" / "constant_connected.py").read_text()

# right values everywhere, but each output carries a NaN gradient (0 * sqrt(x - x): value 0, gradient NaN)
NAN_GRADIENT = CORRECT.read_text() + '''

def _nan(t):
    return 0 * torch.sqrt(t - t).sum()


_ORIGINAL = dict(linear_projections=linear_projections, attention_scores=attention_scores,
                 attention_weights=attention_weights, aggregate_values=aggregate_values)


def linear_projections(x, W_q, W_k, W_v):
    return tuple(t + _nan(x) + _nan(W) for t, W in zip(_ORIGINAL["linear_projections"](x, W_q, W_k, W_v),
                                                        (W_q, W_k, W_v)))


def attention_scores(Q, K):
    return _ORIGINAL["attention_scores"](Q, K) + _nan(Q) + _nan(K)


def attention_weights(scores, mask=None):
    return _ORIGINAL["attention_weights"](scores, mask) + _nan(scores)


def aggregate_values(weights, V):
    return _ORIGINAL["aggregate_values"](weights, V) + _nan(weights) + _nan(V)


del scaled_dot_product_attention  # composed from the sections above
'''

# right values, a backward that doubles the true gradient (agrees with nothing but itself)
WRONG_BACKWARD = CORRECT.read_text() + '''

class _Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, g):
        return 2 * g


_scores = attention_scores


def attention_scores(Q, K):
    return _Twice.apply(_scores(Q, K))
'''


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gradients")


def test_nan_gradients_fail_where_values_pass(out: Path) -> None:
    checks = by_id(grade_quick(variant(out, "nan_gradient.py", NAN_GRADIENT), out))
    for cid in GRADIENTS:
        assert checks[cid]["status"] == "failed", cid
        assert "NaN" in checks[cid]["message"], checks[cid]["message"]
        assert checks[cid.replace("gradients", "values")]["status"] == "passed"


def test_gradients_are_compared_with_the_reference(out: Path) -> None:
    checks = by_id(grade_quick(variant(out, "wrong_backward.py", WRONG_BACKWARD), out))
    assert checks["scores.values"]["status"] == "passed"
    assert checks["scores.gradients"]["status"] == "failed"
    assert "with respect to Q differ from the reference" in checks["scores.gradients"]["message"]


def test_zeros_earn_contract_points_only_when_the_course_says_so(out: Path) -> None:
    """`values_first = false` is the documented way back to properties judged alone."""
    folder = out / "lenient"
    folder.mkdir()
    (folder / "autograder.toml").write_text("values_first = false\n" + FAST_CONFIG)
    lenient = passed(grade_quick(variant(folder, "zeros.py", ZEROS_SOURCE), folder))
    strict = passed(grade_quick(variant(out, "zeros.py", ZEROS_SOURCE), out))
    assert strict == {"projections.shapes", "scores.shapes", "softmax.shapes", "values.shapes", "attention.shapes"}
    assert {"scores.contract", "softmax.shift_invariance", "attention.permutation_equivariance"} <= lenient


def test_the_seam_refuses_gradients_not_shaped_like_their_inputs(tmp_path: Path) -> None:
    """A worker that forges torch.autograd.grad ([7, 1, 1, 1] zeros) gets a refusal, not a broadcast."""
    path = variant(tmp_path, "forged.py", (Path(__file__).parent / "hostile" / "forged_gradients.py").read_text())
    Q, K = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    with Submission(path, call_timeout=10, contract=ASSIGNMENT.wire()) as sub, pytest.raises(SubmissionError) as raised:
        sub.vjp("attention_scores", [Q, K], [0, 1], [torch.ones(2, 3, 5, dtype=torch.float64)])
    assert raised.value.kind == "invalid"
    assert "[7, 1, 1, 1]" in raised.value.message and "[2, 3, 4]" in raised.value.message


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer GPT-2 (64 dims, 4 heads) with GPT-2's real tokenizer: the model section in seconds."""
    from tests.model_fixtures import TOKENIZER_FILES, gpt2_tokenizer

    if not (TOKENIZER_FILES / "vocab.json").exists():
        pytest.skip("GPT-2 tokenizer files are not available here")
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=64, n_head=4, n_positions=64)).save_pretrained(folder)
    gpt2_tokenizer(TOKENIZER_FILES).save_pretrained(folder)
    return folder


def test_nan_gradients_inside_the_model_fail(tiny_gpt2: Path, out: Path) -> None:
    folder = out / "model"
    folder.mkdir()
    (folder / "autograder.toml").write_text(FAST_CONFIG.replace("enabled = false", "enabled = true\nheatmaps = false"))
    checks = by_id(grade_quick(variant(folder, "nan_gradient.py", NAN_GRADIENT), folder, model=str(tiny_gpt2)))
    assert checks["model.logits"]["status"] == "passed"  # the values are right ...
    assert checks["model.gradients"]["status"] == "failed"  # ... the gradients are NaN
    assert "NaN" in checks["model.gradients"]["message"]


ZEROED = '''

import functools as _functools

import torch as _torch


def _zeroed(fn):
    """The right shapes and dtypes, still connected to the graph (gradients 0, not missing), values 0."""
    @_functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        zero = lambda t: _torch.zeros_like(t) if t.dtype == _torch.bool else t * 0  # noqa: E731
        return tuple(zero(t) for t in out) if isinstance(out, tuple) else zero(out)
    return wrapper


for _name in {names}:
    globals()[_name] = _zeroed(globals()[_name])
'''


@pytest.mark.parametrize("assignment, names", [
    ("multihead", ("split_heads", "merge_heads", "causal_mask", "multi_head_attention")),
    ("block", ("layer_norm", "gelu", "feed_forward", "transformer_block")),
])
def test_right_shaped_zeros_earn_the_shapes_only_in_every_assignment(tmp_path: Path, assignment: str,
                                                                      names: tuple) -> None:
    """Each assignment's correct file with every output multiplied by 0 (shapes, dtypes and the graph
    kept): contract, gradient and property checks need the reference's values first. Refusing a bad
    n_heads with ValueError is its own contract, kept."""
    source = (CORRECT.parent / assignment / "correct.py").read_text() + ZEROED.format(names=repr(names))
    (tmp_path / "autograder.toml").write_text(fast_config(max_examples=3, assignment=assignment))
    document = grade_quick(variant(tmp_path, f"zeroed_{assignment}.py", source), tmp_path,
                           assignment=assignment)
    assert {c.split(".")[1] for c in passed(document)} <= {"shapes", "not_divisible"}, sorted(passed(document))
    assert any(c.endswith(".shapes") for c in passed(document))
