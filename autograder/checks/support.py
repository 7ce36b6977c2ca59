"""The generic check library: seeded inputs, validation, comparison and diagnosis, for any assignment.

Trusted side only. A `Checker` binds these to one `Assignment`: it knows each op's outputs, label,
signature, reference function and mistake catalogue, so an assignment's checks read

    CHECK = Checker(ASSIGNMENT)
    CHECK.against_reference(submission, "scores", args, course, where=str(case))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Tuple

import torch
from hypothesis import strategies as st

from autograder.assignments.spec import Assignment
from autograder.config import Config
from autograder.feedback import CheckFailed
from autograder.runtime.protocol import Foreign, describe
from autograder.runtime.submission import SubmissionError

Tensor = torch.Tensor


@dataclass(frozen=True)
class Seeded:
    """Base of an assignment's random problem: its tensors come from `seed` and a per-tensor `salt`, so a
    problem is reproducible from its printed description. Subclasses add the sizes and the builders."""

    seed: int = 0
    dtype: torch.dtype = torch.float64

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def randn(self, *shape: int, salt: int) -> Tensor:
        """Standard normal `shape`, drawn in float64 (same values whatever the dtype), then cast."""
        return torch.randn(*shape, generator=self.generator(salt), dtype=torch.float64).to(self.dtype)


def batch_dims(max_dims: int = 2, max_size: int = 3) -> st.SearchStrategy[Tuple[int, ...]]:
    """0..max_dims leading batch dims of 1..max_size each."""
    return st.lists(st.integers(1, max_size), min_size=0, max_size=max_dims).map(tuple)


def shape_of(t: Tensor) -> list:
    return list(t.shape)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def difference(got: Tensor, want: Tensor, what: str, where: str = "") -> str:
    """'<what> differ from the reference by up to 0.73 (at index [0, 4, 1]: yours ..., expected ...)'; for
    bool tensors (masks), how many entries differ and the first of them."""
    context = f" ({where})" if where else ""
    if want.dtype == torch.bool:
        wrong = got != want
        first = [int(i) for i in wrong.nonzero()[0]]
        return (f"{what} differ from the reference in {int(wrong.sum())} of {want.numel()} entries, first at index "
                f"{first} (yours {bool(got[tuple(first)])}, expected {bool(want[tuple(first)])}){context}")
    bad = ~torch.isfinite(got)
    if bad.any():
        first = [int(i) for i in bad.nonzero()[0]]
        return f"{what} contain {int(bad.sum())} NaN/inf value(s) of {got.numel()}, first at index {first}{context}"
    diff = (got - want).abs().nan_to_num(nan=float("inf"))  # where the reference is NaN and yours is not
    idx = [int(i) for i in (diff == diff.max()).nonzero()[0]]
    return (f"{what} differ from the reference by up to {float(diff.max()):.3g} (at index {idx}: yours "
            f"{float(got[tuple(idx)]):.6g}, expected {float(want[tuple(idx)]):.6g}){context}")


def copied(value: Any) -> Any:
    """A trusted copy of an input: tensors cloned, dicts of them (a block's params) copied entry by entry."""
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    return value


def matches(got: Tensor, want: Tensor, config: Config) -> bool:
    """got equals want: exactly for bool tensors (masks), within the config's tolerance for want's dtype."""
    if want.dtype == torch.bool:
        return bool(torch.equal(got, want))
    tol = config.tolerance(want.dtype)
    return bool(torch.allclose(got, want, rtol=tol["rtol"], atol=tol["atol"], equal_nan=False))


def outputs_of(value: Any) -> list:
    """An op's value as a list of its outputs (a bare tensor is one)."""
    return list(value) if isinstance(value, tuple) else [value]


class Checker:
    """The check helpers of one assignment (see the module docstring)."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment

    # -- names ------------------------------------------------------------------------------------
    def op(self, section_or_op: str) -> str:
        """An op name, given a section name or an op name."""
        spec = self.assignment
        if section_or_op in spec.function_names or spec.composition(section_or_op):
            return section_or_op
        return spec.op(section_or_op)

    def label(self, op: str) -> str:
        return self.assignment.label(op)

    def shape_hint(self, op: str) -> str:
        return (f"the contract is {self.assignment.signature(op)}; tensors are [..., seq, d] with any leading "
                "batch dims, so use -1/-2 axes (K.transpose(-2, -1)), never hard-coded sizes or axes")

    # -- the reference ----------------------------------------------------------------------------
    def reference(self, op: str) -> Callable[..., Any]:
        """The reference function of an op: the reference module's function of the same contract name."""
        return getattr(self.assignment.module("reference"), self.assignment.function_of(op))

    def expected_of(self, op: str, args: Sequence[Any]) -> Any:
        """The reference answer on trusted copies of the inputs."""
        return self.reference(self.op(op))(*[copied(a) for a in args])

    # -- validation -------------------------------------------------------------------------------
    def expect_tensor(self, value: Any, op: str, what: str, shape: Sequence[int], dtype: torch.dtype) -> Tensor:
        """The student's value must be a plain tensor of this shape and dtype; explain what it is otherwise."""
        fn = self.label(op)
        if isinstance(value, Foreign) or not isinstance(value, Tensor):
            hint = "return a torch.Tensor built with torch operations (not a list, a numpy array or None)"
            if isinstance(value, Foreign) and value.type == "ndarray":
                hint = ("stay in torch: a numpy round-trip breaks autograd and the dtype; use torch operations "
                        "throughout")
            raise CheckFailed(f"{fn} returned {describe(value) if not isinstance(value, Foreign) else value.desc} "
                              f"for {what}; expected a torch.Tensor of shape {list(shape)}", hint)
        if list(value.shape) != list(shape):
            raise CheckFailed(f"{fn} returned {what} of shape {shape_of(value)}; expected {list(shape)}",
                              self.shape_hint(op))
        if value.dtype != dtype and dtype == torch.bool:
            raise CheckFailed(f"{fn} returned {what} as {dtype_name(value.dtype)}; expected bool",
                              "a mask is True/False: build it with dtype=torch.bool (or compare, e.g. j <= i)")
        if value.dtype != dtype:
            raise CheckFailed(f"{fn} returned {what} as {dtype_name(value.dtype)} for {dtype_name(dtype)} inputs",
                              "keep the input dtype: do not hard-code dtype= or call .float()/.double()")
        return value

    def expect_tuple(self, value: Any, op: str, size: int) -> Tuple[Any, ...]:
        if not isinstance(value, tuple) or len(value) != size:
            got = f"a tuple of {len(value)}" if isinstance(value, tuple) else (
                value.desc if isinstance(value, Foreign) else describe(value) if not isinstance(value, Tensor)
                else f"a single tensor of shape {shape_of(value)}")
            raise CheckFailed(f"{self.label(op)} returned {got}; expected a tuple of {size} tensors",
                              self.shape_hint(op))
        return value

    def validate(self, value: Any, op: str, expected: Any) -> Any:
        """The student's value, checked to have `expected`'s structure, shapes and dtypes."""
        op = self.op(op)
        names = self.assignment.outputs(op)
        if isinstance(expected, tuple):
            items = self.expect_tuple(value, op, len(expected))
            return tuple(self.expect_tensor(v, op, n, e.shape, e.dtype) for v, n, e in zip(items, names, expected))
        return self.expect_tensor(value, op, names[0], expected.shape, expected.dtype)

    # -- calling and comparing ----------------------------------------------------------------------
    def call_checked(self, submission: Any, section: str, args: Sequence[Any], expected: Any) -> Any:
        """Call the section's op and validate types, shapes and dtypes against `expected` (same structure)."""
        op = self.op(section)
        try:
            value = submission.call(op, *args)
        except SubmissionError as error:  # some classic mistakes raise on these shapes (Q @ K with K not square)
            if error.raised is not None:
                error.diagnose = error.diagnose or self.error_diagnoser(op, args, error.raised)
            raise
        try:
            return self.validate(value, op, expected)
        except CheckFailed as failure:  # a wrong shape can be a classic mistake too (V @ weights, K Q^T, ...)
            failure.diagnose = failure.diagnose or self.diagnoser(op, args, value)
            raise

    def compare(self, actual: Any, expected: Any, op: str, args: Sequence[Any], config: Config,
                where: str = "") -> None:
        """Fail with the largest difference and its position; the diagnosis names the classic mistake."""
        op = self.op(op)
        names = self.assignment.outputs(op)
        for got, want, name in zip(outputs_of(actual), outputs_of(expected), names):
            if matches(got, want, config):
                continue
            raise CheckFailed(difference(got, want, f"{self.label(op)}: {name}", where),
                              diagnose=self.diagnoser(op, args, actual))

    def against_reference(self, submission: Any, section: str, args: Sequence[Any], config: Config,
                          where: str = "") -> Any:
        """Call the section's op on args, validate it, compare it with the reference; the student's value."""
        op = self.op(section)
        expected = self.expected_of(op, args)
        actual = self.call_checked(submission, op, args, expected)
        self.compare(actual, expected, op, args, config, where)
        return actual

    def expect_value_error(self, submission: Any, op: str, args: Sequence[Any], situation: str, hint: str) -> None:
        """The op must refuse these args with ValueError (a contract's way of saying "not like this")."""
        try:
            value = submission.call(op, *args)
        except SubmissionError as error:
            if error.kind != "raised" or error.raised is None:
                raise
            if error.raised[0] == "ValueError":
                return
            raise CheckFailed(f"{self.label(op)} raised {error.raised[0]} when {situation}; the contract asks for a "
                              "ValueError", hint) from None
        got = (f"a tensor of shape {shape_of(value)}" if isinstance(value, Tensor) else
               value.desc if isinstance(value, Foreign) else describe(value))
        raise CheckFailed(f"{self.label(op)} returned {got} when {situation}, instead of raising ValueError", hint)

    # -- diagnosis ----------------------------------------------------------------------------------
    def diagnoser(self, op: str, args: Sequence[Any], actual: Any) -> Callable[[], Any]:
        """A deferred diagnosis of `actual` (the student's output for `args`), run once by the plugin."""
        return self._deferred("diagnose", op, args, actual)

    def error_diagnoser(self, op: str, args: Sequence[Any], raised: Tuple[str, str]) -> Callable[[], Any]:
        """A deferred diagnosis of the exception (type name, message) the student's code raised for `args`."""
        return self._deferred("diagnose_error", op, args, *raised)

    def _deferred(self, how: str, op: str, args: Sequence[Any], *evidence: Any) -> Callable[[], Any]:
        name = self.assignment.function_of(self.op(op))
        frozen = tuple(copied(a) for a in args)
        assignment = self.assignment

        def run() -> Any:
            catalogue = assignment.catalogue()
            return None if catalogue is None else getattr(catalogue, how)(name, frozen, {}, *evidence)

        return run

    def no_gradient(self, submission: Any, message: str) -> CheckFailed:
        """The failure for an output that carries no gradient, naming how the student cut it off."""
        from autograder import diagnosis

        try:
            source = Path(submission.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            source = ""
        found = diagnosis.gradient_mistake(source)
        return CheckFailed(message, found.hint, found.id)

