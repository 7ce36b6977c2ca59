"""The diagnosis catalogue against the example submissions in student_submissions/.

The submissions are our own files, so they are imported in-process. Every correct*.py must match the
reference and get no diagnosis; every buggy_<id>.py must be diagnosed as exactly <id> wherever its output
is wrong (for a section mistake, also through the composed attention), and be right everywhere else.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Optional, Tuple

import pytest
import torch
from torch import Tensor

from autograder.assignments.attention.contract import (
    COMPOSED_FROM,
    EXAMPLE_D,
    EXAMPLE_SEQ,
    RETURN_ARITY,
    SECTION_FUNCTIONS,
)
from autograder.assignments.attention.mistakes import (
    CANDIDATE_RULES,
    ANY_SECTION,
    GRADIENT_MISTAKES,
    MISTAKES,
    Mistake,
    diagnose,
    diagnose_error,
    gradient_mistake,
    mistake,
)
from reference import attention as ref

SUBMISSIONS = Path(__file__).resolve().parents[1] / "student_submissions"
CORRECT = sorted(SUBMISSIONS.glob("correct*.py"))
BUGGY = sorted(SUBMISSIONS.glob("buggy_*.py"))
ATTENTION = SECTION_FUNCTIONS["attention"]
GRADIENT_IDS = {m.id for m in GRADIENT_MISTAKES}
# mistakes whose wrong output inherently has another shape than the right one (on some of CASES)
SHAPE_CHANGING = {
    "same_matrix_for_all", "transposed_scores", "summed_wrong_axis", "outputs_swapped", "weights_transposed"
}

Call = Tuple[tuple, dict]  # (args, kwargs) of one contract function


@dataclass(frozen=True)
class Case:
    """One seeded float64 problem: batch dims [2, 3], its sizes, a mask kind and how large the logits are."""

    name: str
    seq_q: int
    seq_k: int
    d_model: int
    d_k: int
    d_v: int
    mask: Optional[str]  # "causal", "random" (at least one True per row) or None
    logit_scale: float = 1.0  # the scores' standard deviation; 1000 makes a naive exp overflow

    def calls(self) -> Dict[str, Call]:
        """The inputs of every contract function for this case."""
        generator = torch.Generator().manual_seed(sum(map(ord, self.name)))

        def randn(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=generator, dtype=torch.float64)

        batch = (2, 3)
        x = randn(*batch, self.seq_k, self.d_model)
        W_q, W_k, W_v = (randn(self.d_model, d) / math.sqrt(self.d_model) for d in (self.d_k, self.d_k, self.d_v))
        Q = randn(*batch, self.seq_q, self.d_k) * math.sqrt(self.logit_scale)
        K = randn(*batch, self.seq_k, self.d_k) * math.sqrt(self.logit_scale)
        V = randn(*batch, self.seq_k, self.d_v)
        mask = self._mask(batch, generator)
        scores = ref.attention_scores(Q, K)
        return {
            "linear_projections": ((x, W_q, W_k, W_v), {}),
            "attention_scores": ((Q, K), {}),
            "attention_weights": ((scores,), {"mask": mask}),
            "aggregate_values": ((ref.attention_weights(scores, mask), V), {}),
            ATTENTION: ((Q, K, V), {"mask": mask}),
        }

    def _mask(self, batch: Tuple[int, ...], generator: torch.Generator) -> Optional[Tensor]:
        if self.mask == "causal":
            return ref.causal_mask(self.seq_q, self.seq_k)
        if self.mask == "random":
            shape = (*batch, self.seq_q, self.seq_k)
            mask = torch.rand(shape, generator=generator) < 0.5
            one_per_row = torch.randint(self.seq_k, shape[:-1] + (1,), generator=generator)
            return mask.scatter(-1, one_per_row, True)
        return None


CASES = (
    Case("rect_causal", seq_q=4, seq_k=6, d_model=8, d_k=5, d_v=7, mask="causal"),
    Case("rect_random", seq_q=4, seq_k=6, d_model=8, d_k=5, d_v=7, mask="random"),
    Case("rect_unmasked", seq_q=4, seq_k=6, d_model=8, d_k=5, d_v=7, mask=None),
    Case("square_causal", seq_q=5, seq_k=5, d_model=5, d_k=5, d_v=5, mask="causal"),
    Case("large_logits", seq_q=4, seq_k=6, d_model=8, d_k=5, d_v=7, mask="random", logit_scale=1000.0),
)
CALLS = {case.name: case.calls() for case in CASES}


def load(path: Path) -> ModuleType:
    """Import a submission file under a private module name."""
    spec = importlib.util.spec_from_file_location(f"submission_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def contract_functions(module: ModuleType) -> Dict[str, Callable]:
    """The submission's contract functions, with the composed attention derived when it is absent."""
    functions = {name: getattr(module, name) for name in RETURN_ARITY if hasattr(module, name)}
    if ATTENTION not in functions:
        scores, softmax, values = (functions[name] for name in COMPOSED_FROM)

        def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
            weights = softmax(scores(Q, K), mask)
            return values(weights, V), weights

        functions[ATTENTION] = composed
    return functions


def run(student: Callable, call: Call, requires_grad: bool = False) -> object:
    """Call a student function on fresh copies of the inputs, so the trusted ones stay untouched."""

    def copy(value: object) -> object:
        if not isinstance(value, Tensor):
            return value
        return value.clone().requires_grad_(requires_grad and value.is_floating_point())

    args, kwargs = call
    return student(*map(copy, args), **{key: copy(value) for key, value in kwargs.items()})


def parts(output: object) -> Tuple[Tensor, ...]:
    """A function's output as a tuple (a bare tensor becomes a 1-tuple)."""
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def graded(tensor: Tensor, mask: Optional[Tensor], weights: Tensor) -> Tensor:
    """tensor on the rows that allow some key (all rows without a mask); others are not graded."""
    if mask is None or tensor.shape[:-1] != weights.shape[:-1]:
        return tensor
    rows = torch.broadcast_to(mask, weights.shape).any(-1, keepdim=True)
    return tensor[rows.expand(tensor.shape)]


def is_right(function: str, call: Call, output: object, atol: float = 1e-10, rtol: float = 0.0) -> bool:
    """Whether output equals the reference's on the graded rows, within atol + rtol |reference| (and the same
    dtype)."""
    args, kwargs = call
    expected = parts(getattr(ref, function)(*args, **kwargs))
    got, mask, weights = parts(output), kwargs.get("mask"), expected[-1]  # weights: the last output, if masked
    return len(got) == len(expected) and all(
        isinstance(g, Tensor)
        and (g.shape, g.dtype) == (e.shape, e.dtype)
        and torch.allclose(graded(g, mask, weights), graded(e, mask, weights), rtol=rtol, atol=atol, equal_nan=True)
        for g, e in zip(got, expected)
    )


def mistake_of(path: Path) -> str:
    """The mistake id a buggy_<id>.py reproduces."""
    return path.stem.removeprefix("buggy_")


def section_of(path: Path) -> str:
    """The section a buggy file says loses points (its mistake's, or where it makes an any-section one)."""
    return load(path).__doc__.splitlines()[0].split(", ")[1].split(" loses points")[0]


def affected_functions(expected: Mistake, path: Path) -> set:
    """The functions a mistake makes wrong: its section's, and the composed one when that uses it."""
    function = SECTION_FUNCTIONS[section_of(path) if expected.section == ANY_SECTION else expected.section]
    return {function, ATTENTION} if function in COMPOSED_FROM else {function}


# ---------------------------------------------------------------- the catalogue


def test_catalogue_ids_are_unique_and_sections_known() -> None:
    ids = [m.id for m in MISTAKES]
    assert len(ids) == len(set(ids))
    assert {m.section for m in MISTAKES} <= set(SECTION_FUNCTIONS) | {ANY_SECTION}
    assert set(GRADIENT_MISTAKES) <= set(MISTAKES)


@pytest.mark.parametrize("entry", MISTAKES, ids=lambda m: m.id)
def test_every_hint_teaches_in_the_second_person(entry: Mistake) -> None:
    assert entry.hint.startswith(("you", "your", "the second output of your")), entry.hint
    assert len(entry.hint) > 60


def test_mistake_lookup() -> None:
    assert mistake("no_scaling").section == "scores"
    assert mistake("detached_output").section == ANY_SECTION
    with pytest.raises(KeyError, match="no_scaling"):
        mistake("not_a_mistake")


def test_every_mistake_has_a_buggy_submission() -> None:
    assert len(BUGGY) >= 10
    assert {mistake_of(path) for path in BUGGY} == {m.id for m in MISTAKES}


@pytest.mark.parametrize("path", BUGGY, ids=lambda path: path.stem)
def test_buggy_submission_names_its_mistake_and_section(path: Path) -> None:
    first_line = load(path).__doc__.splitlines()[0]
    assert first_line.startswith(f"Buggy {mistake_of(path)}, ") and " loses points: " in first_line
    assert section_of(path) in SECTION_FUNCTIONS


# ---------------------------------------------------------------- the submissions


def test_template_teaches_the_contract_and_raises() -> None:
    template = load(SUBMISSIONS / "template.py")
    for function in RETURN_ARITY:
        stub = getattr(template, function)
        assert "[..." in stub.__doc__, function
        args, kwargs = CALLS["rect_causal"][function]
        with pytest.raises(NotImplementedError):
            stub(*args, **kwargs)
    assert f"[1, {EXAMPLE_SEQ}, {EXAMPLE_D}]" in template.__doc__


@pytest.mark.parametrize("path", CORRECT, ids=lambda path: path.stem)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_correct_submission_matches_reference_and_is_not_diagnosed(path: Path, case: Case) -> None:
    for function, student in contract_functions(load(path)).items():
        call = CALLS[case.name][function]
        output = run(student, call)
        assert is_right(function, call, output), function
        assert diagnose(function, *call, output) is None, function


@pytest.mark.parametrize("path", [p for p in BUGGY if mistake_of(p) not in GRADIENT_IDS], ids=lambda path: path.stem)
def test_buggy_submission_is_diagnosed_as_its_mistake(path: Path) -> None:
    expected = mistake(mistake_of(path))
    affected = affected_functions(expected, path)
    for function, student in contract_functions(load(path)).items():
        diagnosed_cases = []
        for case in CASES:
            call = CALLS[case.name][function]
            try:
                output = run(student, call)
            except RuntimeError:  # a shape that only works when square
                assert function in affected, (function, case.name)
                continue
            if is_right(function, call, output, atol=1e-9, rtol=1e-7):  # right within the grade's tolerance
                continue
            assert function in affected, f"{function} is wrong on {case.name}: only {expected.section} should be"
            if expected.id not in SHAPE_CHANGING:
                reference = parts(getattr(ref, function)(*call[0], **call[1]))
                assert [(p.shape, p.dtype) for p in parts(output)] == [(r.shape, r.dtype) for r in reference]
            found = diagnose(function, *call, output)
            assert found is not None and found.id == expected.id, f"{function} on {case.name}: {found and found.id}"
            assert found.hint.startswith(expected.hint.split("{")[0]), found.hint  # a fitted hint fills the template
            diagnosed_cases.append(case.name)
        assert diagnosed_cases or function not in affected, f"{function} never shows {expected.id}"


GRADIENT_BUGGY = [p for p in BUGGY if mistake_of(p) in GRADIENT_IDS]


@pytest.mark.parametrize("path", GRADIENT_BUGGY, ids=lambda path: path.stem)
def test_gradient_mistake_keeps_values_and_loses_gradients(path: Path) -> None:
    lost = []
    for function, student in contract_functions(load(path)).items():
        call = CALLS["rect_causal"][function]
        output = run(student, call, requires_grad=True)
        assert is_right(function, call, tuple(p.detach() for p in parts(output))), function
        assert diagnose(function, *call, output) is None, function
        if not all(p.requires_grad for p in parts(output)):
            lost.append(function)
    assert lost, "every output still carries a gradient"
    assert gradient_mistake(path.read_text()).id == mistake_of(path)  # named from the source


# ---------------------------------------------------------------- robustness


def test_large_negative_fill_is_not_a_mistake() -> None:
    args, kwargs = CALLS["rect_causal"]["attention_weights"]
    (scores,), mask = args, kwargs["mask"]
    output = torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
    assert diagnose("attention_weights", args, kwargs, output) is None


def test_diagnosis_in_float32() -> None:
    Q, K = (t.float() for t in CALLS["rect_causal"]["attention_scores"][0])
    assert diagnose("attention_scores", (Q, K), {}, Q @ K.transpose(-2, -1)) == mistake("no_scaling")


def test_mask_passed_positionally_and_as_ints() -> None:
    (scores,), kwargs = CALLS["rect_random"]["attention_weights"]
    mask = kwargs["mask"]
    output = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    assert diagnose("attention_weights", (scores, mask.long()), {}, output) == mistake("mask_inverted")


def nan_like_reference(function: str) -> object:
    """An output of the right shapes, all NaN."""
    args, kwargs = CALLS["rect_causal"][function]
    output = tuple(torch.full_like(p, float("nan")) for p in parts(getattr(ref, function)(*args, **kwargs)))
    return output if RETURN_ARITY[function] > 1 else output[0]


GARBAGE = {
    "none": lambda function: None,
    "list": lambda function: [1.0, 2.0],
    "string": lambda function: "attention",
    "wrong_shape": lambda function: torch.zeros(3),
    "wrong_arity": lambda function: (torch.zeros(2, 3, 4, 6),) * 4,
    "integer": lambda function: torch.zeros(2, 3, 4, 6, dtype=torch.long),
    "nan": nan_like_reference,
}


@pytest.mark.parametrize("function", RETURN_ARITY)
@pytest.mark.parametrize("garbage", GARBAGE, ids=str)
def test_diagnose_never_raises_on_garbage(function: str, garbage: str) -> None:
    args, kwargs = CALLS["rect_causal"][function]
    assert diagnose(function, args, kwargs, GARBAGE[garbage](function)) is None


def test_diagnose_never_raises_on_bad_calls() -> None:
    output = torch.zeros(2, 3, 4, 6)
    assert diagnose("not_a_function", (), {}, output) is None
    assert diagnose("attention_scores", (1, 2), {}, output) is None
    assert diagnose("attention_scores", (), {"Q": torch.zeros(2)}, output) is None
    assert diagnose("attention_weights", (output,), {"mask": "causal"}, output) is None


def _raised(call: Callable[[], object]) -> Tuple[str, str]:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the error is the evidence
        return type(exc).__name__, str(exc)
    raise AssertionError("expected the call to raise")


@pytest.mark.parametrize("mistake_id, function, make_args", [
    ("missing_transpose", "attention_scores", lambda: (torch.randn(1, 6, 64), torch.randn(1, 6, 64))),
    ("elementwise_product", "aggregate_values", lambda: (torch.softmax(torch.randn(1, 6, 6), -1), torch.randn(1, 6, 64))),
    ("wrong_matmul_order", "aggregate_values", lambda: (torch.softmax(torch.randn(1, 6, 6), -1), torch.randn(1, 6, 64))),
])
def test_an_error_that_a_classic_mistake_raises_names_it(mistake_id: str, function: str, make_args) -> None:
    args = make_args()
    rule = {m.id: r for m, r in CANDIDATE_RULES[function]}[mistake_id]
    error_type, text = _raised(lambda: list(rule(*args)))
    assert diagnose_error(function, args, {}, error_type, text) == mistake(mistake_id)
    assert diagnose_error(function, args, {}, error_type, "some other message") is None
    assert diagnose_error(function, args, {}, "ValueError", text) is None


def test_an_error_two_mistakes_raise_alike_names_neither() -> None:
    Q = K = V = torch.randn(1, 6, 64)  # Q @ K and V @ weights fail with the same bmm message here
    error_type, text = _raised(lambda: Q @ K)
    assert diagnose_error(ATTENTION, (Q, K, V), {}, error_type, text) is None


def test_gradient_mistake_tells_numpy_from_detach() -> None:
    assert gradient_mistake("import numpy as np\ndef f(x):\n    return x").id == "numpy_round_trip"
    assert gradient_mistake("def f(x):\n    return torch.from_numpy(x.numpy())").id == "numpy_round_trip"
    assert gradient_mistake("def f(x):\n    return x.detach()").id == "detached_output"
    assert gradient_mistake("def f(:").id == "detached_output"
