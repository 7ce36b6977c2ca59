"""Fitted mistakes (a parameter read off the student's output), errors explained by input kind, and the
numbers in messages: unit tests on synthetic outputs, no grading run."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pytest
import torch

from autograder.assignments.attention.contract import ASSIGNMENT
from autograder.assignments.attention.inputs import CHECK, Case, section_args
from autograder.assignments.attention.mistakes import diagnose
from autograder.checks.support import difference, worst
from autograder.diagnosis import errors
from autograder.diagnosis.parametric import name_factor, nice
from autograder.feedback import hint_for
from autograder.runtime.submission import Submission, SubmissionError

CORRECT = Path(__file__).resolve().parents[1] / "student_submissions" / "correct.py"
GEN = torch.Generator().manual_seed(3)
Q, K, V = (torch.randn(2, n, d, generator=GEN, dtype=torch.float64) for n, d in ((4, 16), (9, 16), (9, 8)))
UNSCALED = Q @ K.transpose(-2, -1)
MASK = torch.rand(2, 4, 9, generator=GEN) < 0.6
MASK[..., 0] = True


def weights_of(scores: torch.Tensor, fill: float = float("-inf")) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~MASK, fill), dim=-1)


@pytest.mark.parametrize("divisor, named", [
    (math.sqrt(384), "sqrt(384) = 19.6 (a whole model's width)"),
    (9.0, "seq_k = 9 (the number of keys)"),
    (1 / 4, "multiplied by sqrt(d_k) = 4"),
])
def test_a_constant_scale_is_named_by_the_quantity_it_matches(divisor: float, named: str) -> None:
    found = diagnose("attention_scores", (Q, K), {}, UNSCALED / divisor)
    assert found is not None and found.id == "wrong_scale" and named in found.hint, found


def test_an_unexplained_scale_is_still_given_as_a_number() -> None:
    found = diagnose("attention_scores", (Q, K), {}, UNSCALED / 3.7)
    assert found.id == "wrong_scale" and "Q K^T / 3.7," in found.hint and "sqrt(d_k) = 4" not in found.hint


def test_the_scale_is_read_through_the_softmax_of_the_composed_attention() -> None:
    weights = weights_of(UNSCALED / math.sqrt(8))  # sqrt(d_v)
    found = diagnose("scaled_dot_product_attention", (Q, K, V, MASK), {}, (weights @ V, weights))
    assert found.id == "wrong_scale" and "sqrt(d_v) = 2.828 (the width of V)" in found.hint


@pytest.mark.parametrize("on_weights", [True, False])
def test_a_scale_after_the_softmax_is_named(on_weights: bool) -> None:
    weights = weights_of(UNSCALED)
    output = (weights @ V / 4, weights / 4) if on_weights else (weights @ V / 4, weights)
    found = diagnose("scaled_dot_product_attention", (Q, K, V, MASK), {}, output)
    assert found.id == "scale_after_softmax" and "divided by sqrt(d_k) = 4" in found.hint


@pytest.mark.parametrize("fill, mistake, shown", [
    (-1e4, "mask_fill_too_small", "-10000"), (-1000.0, "mask_fill_too_small", "-1000"),
    (-1e-12, "mask_fill_no_effect", "-1e-12"), (0.0, "multiplicative_mask", None),
])
def test_a_finite_mask_fill_is_named_with_its_value(fill: float, mistake: str, shown: Optional[str]) -> None:
    # a large fill shows on scores of order 1e4 (some rows entirely below it), a fill near 0 on any scores
    scores = UNSCALED / 4 * 1e4 - 3e4 if fill < -1 else UNSCALED / 4
    found = diagnose("attention_weights", (scores, MASK), {}, weights_of(scores, fill))
    assert found is not None and found.id == mistake, found
    if shown:
        assert f"value {shown}" in found.hint


def test_a_fill_below_every_score_is_no_mistake() -> None:
    scores = UNSCALED / 4
    assert diagnose("attention_weights", (scores, MASK), {}, weights_of(scores, -1e4)) is None


def test_mask_after_softmax_renormalised_is_named_where_it_gives_nan() -> None:
    scores = UNSCALED / 4 * 1e4
    zeroed = torch.softmax(scores, dim=-1) * MASK
    found = diagnose("attention_weights", (scores, MASK), {}, zeroed / zeroed.sum(-1, keepdim=True))
    assert found is not None and found.id == "mask_after_softmax"


def test_a_float32_detour_is_named_and_float64_noise_is_not() -> None:
    detour = (Q.float() @ K.float().transpose(-2, -1) / 4).double()
    found = diagnose("attention_scores", (Q, K), {}, detour)
    assert found is not None and found.id == "float32_detour" and "relative error up to" in found.hint
    assert diagnose("attention_scores", (Q, K), {}, UNSCALED / 4 * (1 + 1e-3)).id == "wrong_scale"


def test_name_factor_and_nice() -> None:
    quantities = (("d_k", 16.0, ""), ("seq_k", 16.0, "the number of keys"))
    assert name_factor(4.0, quantities) == "sqrt(d_k) = sqrt(seq_k) = 4 (the number of keys)"
    assert name_factor(5.0, quantities) is None
    assert [nice(v) for v in (-10000.0, 19.595917942265423, -1e-12, 3.4e38)] == ["-10000", "19.6", "-1e-12",
                                                                                 "3.4e+38"]


# ---------------------------------------------------------------- errors, by input kind


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    source = CORRECT.read_text()
    assert old in source
    path = tmp_path / "student.py"
    path.write_text(source.replace(old, new))
    return path


def explained(path: Path, section: str, case: Case) -> SubmissionError:
    """The error the section's op raises on `case`, diagnosed as the plugin does (in-process seam)."""
    with Submission(path, sandbox=False, contract=ASSIGNMENT.wire()) as submission:
        args = section_args(section, case)
        with pytest.raises(SubmissionError) as caught:
            CHECK.call_checked(submission, section, args, CHECK.expected_of(section, args))
        caught.value.resolve()
    return caught.value


def reproduces(path: Path, hint: str) -> str:
    """Run the hint's three-line reproducer against the student's file; the exception type it raises."""
    lines = errors.snippet_lines(hint)
    assert len(lines) == 3 and lines[0] == "import torch", hint
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own test file
    with pytest.raises(Exception) as caught:
        exec("\n".join(lines), namespace)  # noqa: S102
    return type(caught.value).__name__


def test_an_error_on_4d_inputs_names_the_dims_and_the_line(tmp_path: Path) -> None:
    path = mutated(tmp_path, "Q @ K.transpose(-2, -1)", "Q @ K.transpose(1, 2)")
    error = explained(path, "scores", Case(batch=(2, 3), seq_q=5, seq_k=7, d_k=8))
    assert error.mistake == "raises_for_dims_2d_4d"
    assert "works on [batch, seq, d] inputs (3-D) but raises on [seq, d] inputs (2-D) and [batch, heads" in error.hint
    assert "`return Q @ K.transpose(1, 2) / math.sqrt(d_k)`" in error.hint and "transpose(-2, -1)" in error.hint
    assert reproduces(path, error.hint) == "IndexError"


def test_an_error_for_mask_none_says_so(tmp_path: Path) -> None:
    path = mutated(tmp_path, '    if mask is not None:\n        scores = scores.masked_fill(~mask, float("-inf"))',
                   '    scores = scores.masked_fill(~mask, float("-inf"))')
    error = explained(path, "attention", Case(batch=(2,), seq_q=3, seq_k=5))
    assert error.mistake == "raises_for_mask_none" and "raises when mask is None (the default)" in error.hint
    assert reproduces(path, error.hint) == "TypeError"


def test_a_missing_module_attribute_gets_the_module_that_has_it(tmp_path: Path) -> None:
    path = mutated(tmp_path, "torch.softmax(scores, dim=-1)", "torch.functional.softmax(scores, dim=-1)")
    error = explained(path, "softmax", Case(batch=(2,), mask="causal"))
    assert error.mistake == "wrong_module"
    assert "torch.functional.softmax, which does not exist: use torch.softmax" in error.hint
    assert reproduces(path, error.hint) == "AttributeError"


def test_the_generic_error_hint_never_sends_a_student_to_an_example_that_passes() -> None:
    error = SubmissionError("raised", "f raised ValueError: no", raised=("ValueError", "no"))
    assert "example" in hint_for(error) and "example" in hint_for(error, example_passed=False)
    assert "runs on the worked example" in hint_for(error, example_passed=True)


# ---------------------------------------------------------------- numbers in messages


def test_a_near_miss_shows_the_digits_and_the_tolerance_it_missed() -> None:
    want = torch.tensor([[1.0, 2.0], [3.0, 1e-3]], dtype=torch.float64)
    got = want * (1 + 3e-7)
    message = difference(got, want, "scores", rtol=1e-7, atol=1e-9)
    assert "yours 3.0000009, expected 3," in message and "tolerance is 1e-09 + 1e-07 * |expected|" in message
    assert "at 3 of 4 entries" in message  # 1e-3 * 3e-7 is within the tolerance


def test_the_element_shown_is_the_one_that_misses_most() -> None:
    want = torch.tensor([1000.0, 1.0], dtype=torch.float64)
    got = torch.tensor([1000.0 + 1e-5, 1.0 + 1e-6], dtype=torch.float64)  # the larger gap is within rtol
    message = difference(got, want, "x", rtol=1e-7, atol=1e-9)
    assert "index [1]" in message and "at 1 of 2 entries" in message


def test_a_tolerance_per_row_counts_and_shows_only_the_entries_that_miss_it() -> None:
    """positions.long allows row p atol + drift * p: an error at row 0 is the miss, not the larger,
    allowed rounding of row 1000."""
    want = torch.zeros(1024, 4, dtype=torch.float64)
    allowed = 1e-5 + 6.5e-8 * torch.arange(1024, dtype=torch.float64).unsqueeze(1)
    got = want + 0.5 * allowed
    got[0, 2] = 3e-5
    message = difference(got, want, "positions", "row p may differ by 1e-05 + 6.5e-08 * p", atol=allowed)
    assert "at 1 of 4096 entries" in message and "index [0, 2]" in message
    assert "the tolerance there is 1e-05" in message


def test_nan_is_named_with_the_reference_there_never_up_to_nan() -> None:
    want = torch.tensor([0.5, 0.25], dtype=torch.float64)
    message = difference(torch.tensor([0.5, float("nan")], dtype=torch.float64), want, "w", rtol=1e-7, atol=1e-9)
    assert "contain NaN at 1 of 2 entries, first at index [1], where the reference is 0.25 (finite)" in message
    assert "up to nan" not in message


def test_property_messages_say_nan_rather_than_up_to_nan() -> None:
    assert worst(torch.tensor([0.1, -0.5])) == "by up to 0.5"
    assert worst(torch.tensor([[0.1, float("nan")]])) == "with NaN at 1 of 2 entries (first at index [0, 1])"


def test_line_advice_leaves_axes_counted_from_the_end_alone() -> None:
    assert "transpose(1, 2)" in errors.line_advice(errors.Raised("IndexError", "", "k.transpose(1, 2)"))
    assert errors.line_advice(errors.Raised("RuntimeError", "", "weights.transpose(-2, -1) @ V")) == ""


def test_an_ignored_mask_is_named_as_ignored_never_as_a_fitted_fill() -> None:
    """Ignoring the mask equals "adding a fill near 0", and with one blocked entry any fill "replacing" it
    fits exactly: the fitted fill must not win over the catalogue's mask_ignored (it used to say "your mask
    fill value 0.2193 does not block anything")."""
    scores = UNSCALED / 4
    found = diagnose("attention_weights", (scores, MASK), {}, torch.softmax(scores, dim=-1))
    assert found is not None and found.id == "mask_ignored", found
    q, k, v = Q[:1, :1, :2], K[:1, :2, :2], V[:1, :2, :1]
    one_blocked = torch.tensor([[[True, False]]])
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(2), dim=-1)
    found = diagnose("scaled_dot_product_attention", (q, k, v, one_blocked), {}, (weights @ v, weights))
    assert found is None or found.id == "mask_ignored", found


def test_a_float32_detour_is_named_where_the_parameters_come_in_a_dict() -> None:
    """The block's parameters are a dict of tensors: the float32 band is computed with them in float32 too."""
    import reference.block as block_ref
    from autograder.assignments.block.inputs import Problem
    from autograder.diagnosis.parametric import float32_detour

    problem = Problem(dtype=torch.float64, seq=5, d_model=8, n_heads=2)
    x, params, heads, mask = problem.args("transformer_block")
    reference = block_ref.transformer_block(x, params, heads, mask)
    detour = block_ref.transformer_block(x.float(), {k: v.float() for k, v in params.items()}, heads, mask).double()
    inputs = {"x": x, "params": params, "n_heads": heads, "mask": mask}
    found = float32_detour((detour,), (reference,), block_ref.transformer_block, inputs)
    assert found is not None and found.id == "float32_detour"
    assert float32_detour((reference * (1 + 1e-3),), (reference,), block_ref.transformer_block, inputs) is None
