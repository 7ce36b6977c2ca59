"""The generic check library: seeded inputs, validation, comparison and diagnosis, for any assignment.

Trusted side only. A `Checker` binds these to one `Assignment`: it knows each op's outputs, label,
signature, reference function and mistake catalogue, so an assignment's checks read

    CHECK = Checker(ASSIGNMENT)
    CHECK.against_reference(submission, "scores", args, course, where=str(case))
"""
from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import torch
from hypothesis import strategies as st

from autograder.assignments.spec import Assignment
from autograder.config import Config
from autograder.diagnosis import errors
from autograder.feedback import CheckFailed, is_stub
from autograder.runtime import notebook
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


def difference(got: Tensor, want: Tensor, what: str, where: str = "", rtol: float = 0.0,
               atol: Union[float, Tensor] = 0.0) -> str:
    """What is wrong with `got` against `want` at tolerance |got - want| <= atol + rtol |want|, honestly
    (atol may be a tensor broadcast against them: a tolerance per entry, e.g. per row):

    - NaN or inf where the reference has none: how many, the first place, and the reference's value there;
    - otherwise the element that misses the tolerance by most (|a - b| - (atol + rtol |b|), NaN-safe), with
      enough digits to see the difference, and the tolerance it missed;
    - for bool tensors (masks), how many entries differ and the first of them.
    """
    context = f" ({where})" if where else ""
    if want.dtype == torch.bool:  # masks: how many entries differ, and the first of them
        wrong = got != want
        first = [int(i) for i in wrong.nonzero()[0]]
        return (f"{what} differ from the reference in {int(wrong.sum())} of {want.numel()} entries, first at index "
                f"{first} (yours {bool(got[tuple(first)])}, expected {bool(want[tuple(first)])}){context}")
    got64, want64 = got.detach().to(torch.float64), want.detach().to(torch.float64)
    for name, bad_got, bad_want in (("NaN", got64.isnan(), want64.isnan()),
                                    ("inf", got64.isinf(), want64.isinf())):
        wrong = bad_got & ~bad_want
        if wrong.any():
            first = tuple(int(i) for i in wrong.nonzero()[0])
            expected = float(want64[first])
            return (f"{what} contain {name} at {int(wrong.sum())} of {got.numel()} entries, first at index "
                    f"{list(first)}, where the reference is {_digits(expected, expected)} (finite){context}")
    allowed = atol + rtol * want64.abs()
    excess = (got64 - want64).abs() - allowed
    both_nan = got64.isnan() & want64.isnan()
    excess = torch.where(both_nan, torch.zeros_like(excess), excess)
    excess = torch.where(excess.isnan(), torch.full_like(excess, float("inf")), excess)  # NaN where one is
    worst = tuple(int(i) for i in (excess == excess.max()).nonzero()[0])
    a, b = float(got64[worst]), float(want64[worst])
    gap = abs(a - b)
    bad = int((excess > 0).sum())
    if isinstance(atol, Tensor):
        tolerance = f"; the tolerance there is {float(torch.broadcast_to(allowed, excess.shape)[worst]):.3g}"
    else:
        tolerance = f"; the tolerance is {atol:.0e} + {rtol:.0e} * |expected|" if (rtol or atol) else ""
    return (f"{what} differ from the reference at {bad} of {got.numel()} entries (largest miss at index "
            f"{list(worst)}: yours {_digits(a, b)}, expected {_digits(b, a)}, off by {gap:.3g}{tolerance})"
            f"{context}")


def worst(gaps: Tensor) -> str:
    """How far off `gaps` (differences from what was expected) are, for a message: 'by up to 0.73', or
    'with NaN at 3 of 20 entries (first at index [0, 2])' (never 'up to nan')."""
    nan = gaps.isnan()
    if nan.any():
        first = [int(i) for i in nan.nonzero()[0]]
        return f"with NaN at {int(nan.sum())} of {gaps.numel()} entries (first at index {first})"
    return f"by up to {float(gaps.abs().max()):.3g}"


def _digits(value: float, other: float) -> str:
    """`value` with enough significant digits to tell it from `other` (at least 6, at most 17)."""
    if value == other or not (math.isfinite(value) and math.isfinite(other)):
        return f"{value:.6g}"
    scale = max(abs(value), abs(other))
    needed = math.ceil(-math.log10(abs(value - other) / scale)) + 2 if scale else 6
    return f"{value:.{min(max(needed, 6), 17)}g}"


def _shapes(shapes: list) -> str:
    """'[2, 4, 4]', or '([2, 4, 8], [2, 4, 4])' for several outputs ('?' for one that is not a tensor)."""
    text = [str(s) if s is not None else "?" for s in shapes]
    return text[0] if len(text) == 1 else f"({', '.join(text)})"


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
        with self.explaining(submission, op, args):  # some classic mistakes raise (Q @ K with K not square)
            value = submission.call(op, *args, expect=expected)
        try:
            return self.validate(value, op, expected)
        except CheckFailed as failure:  # a wrong shape can be a classic mistake too (V @ weights, K Q^T, ...)
            if failure.diagnose is None:
                catalogued = self.diagnoser(op, args, value)
                failure.diagnose = lambda: catalogued() or self.explain_shape(submission, op)
            raise

    @contextlib.contextmanager
    def explaining(self, submission: Any, op: str, args: Sequence[Any]) -> Iterator[None]:
        """Calls of `op` on `args` inside: an exception the student's code raises gets its diagnosis (the
        catalogued mistake, else the input kind that makes it raise), as in `call_checked`."""
        try:
            yield
        except SubmissionError as error:
            if error.raised is not None:
                error.diagnose = error.diagnose or self.error_diagnoser(self.op(op), args, error.raised, submission,
                                                                        error.message)
            raise

    def compare(self, actual: Any, expected: Any, op: str, args: Sequence[Any], config: Config,
                where: str = "") -> None:
        """Fail with the largest difference and its position; the diagnosis names the classic mistake."""
        op = self.op(op)
        names = self.assignment.outputs(op)
        for got, want, name in zip(outputs_of(actual), outputs_of(expected), names):
            if matches(got, want, config):
                continue
            tol = config.tolerance(want.dtype) if want.is_floating_point() else {"rtol": 0.0, "atol": 0.0}
            raise CheckFailed(difference(got, want, f"{self.label(op)}: {name}", where, tol["rtol"], tol["atol"]),
                              diagnose=self.diagnoser(op, args, actual))

    def require_values(self, actual: Any, expected: Any, op: str, args: Sequence[Any], config: Config,
                       where: str = "") -> None:
        """Unless the course turned `values_first` off, a check's points need the reference's values first (a
        function that ignores its inputs, such as right-shaped zeros, earns the shape points only)."""
        if config.values_first:
            self.compare(actual, expected, op, args, config, where)

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

    def error_diagnoser(self, op: str, args: Sequence[Any], raised: Tuple[str, str], submission: Any = None,
                        message: str = "") -> Callable[[], Any]:
        """A deferred diagnosis of the exception (type name, message) the student's code raised for `args`:
        the catalogued mistake that raises it, else (given the `submission` and the error's `message`) the
        input kind that makes it raise, found by re-running the op through the seam (`explain_error`)."""
        catalogued = self._deferred("diagnose_error", op, args, *raised)
        frozen = tuple(copied(a) for a in args)

        def run() -> Any:
            found = catalogued()
            # a template's stub raises on every input: its hint (feedback.STUB) says more than the ladder would
            if found is None and submission is not None and not is_stub(raised):
                found = self.explain_error(submission, op, frozen, raised, message)
            return found

        return run

    def explain_error(self, submission: Any, op: str, args: Sequence[Any], raised: Tuple[str, str],
                      message: str) -> Any:
        """Why the op raised on `args` (a Mistake whose hint ends with a three-line reproducer): the input kind
        that makes it raise, else the kind on which it answers with the wrong shape (a gradient check's
        cotangents then cannot fit), else these sizes; None when the assignment has no ladder of input kinds."""
        found = self._explain(submission, op, shapes=False) or self._explain(submission, op, shapes=True)
        if found is None and self._ladder() is not None:  # every kind works: the failure needs these sizes
            op = self.op(op)
            found = errors.raises_on_input(errors.raised_from(*raised, message), self._your(op),
                                           self._section(op), self.snippet(op, args, submission.functions))
        return found

    def explain_shape(self, submission: Any, op: str) -> Any:
        """Why the op answers with the wrong structure or shape: the input kind that shows it (with a
        reproducer ending in .shape), or None when every kind shows it or none does."""
        return self._explain(submission, op, shapes=True)

    def _explain(self, submission: Any, op: str, shapes: bool) -> Any:
        """The ladder's explanation of what fails on some input kinds: exceptions (`shapes` False: probes
        that answer count as working) or answers of the wrong shape (`shapes` True: exceptions stop it)."""
        ladder = self._ladder()
        if ladder is None:
            return None
        op = self.op(op)

        def call(probe_args: Tuple[Any, ...]) -> Optional[errors.Raised]:
            try:
                value = submission.call(op, *probe_args)
            except SubmissionError as error:
                if shapes or error.kind != "raised" or error.raised is None:
                    raise errors.Stop(error.kind) from None
                return errors.raised_from(*error.raised, error.message)
            if not shapes:
                return None
            got, want = (outputs_of(v) for v in (value, self.expected_of(op, probe_args)))
            got_shapes = [list(g.shape) if isinstance(g, Tensor) else None for g in got]
            want_shapes = [list(w.shape) for w in want]
            if got_shapes == want_shapes:
                return None
            return errors.Raised(errors.WRONG_SHAPE, f"returns {_shapes(got_shapes)} for {_shapes(want_shapes)}")

        def snippet(probe_args: Tuple[Any, ...]) -> str:
            text = self.snippet(op, probe_args, submission.functions)
            if not shapes:
                return text
            head, call = text.rsplit("\n", 1)  # the last line shows the shape(s) it returns
            several = len(self.assignment.outputs(op)) > 1
            return f"{head}\n" + (f"[out.shape for out in {call}]" if several else f"{call}.shape")

        return errors.explain(ladder, op, self._your(op), call, snippet, self._section(op))

    def _ladder(self) -> Any:
        return getattr(self.assignment.catalogue(), "ladder", None)

    def _your(self, op: str) -> str:
        """How a hint names the op: "your attention_scores", "your attention (...)"."""
        return self.label(op) if self.label(op).startswith("your") else f"your {self.label(op)}"

    def _section(self, op: str) -> str:
        return self.assignment.function(self.assignment.function_of(op)).section

    def snippet(self, op: str, args: Sequence[Any], functions: Sequence[str]) -> str:
        """Three lines that call the student's op on tensors of `args`' shapes and dtypes (a composition the
        file does not define as one function is written as its steps, nested)."""
        names = list(inspect.signature(self.reference(op)).parameters)
        composition = self.assignment.composition(op)
        if composition is None or composition.own in functions:
            call = f"{self.assignment.function_of(op)}({', '.join(names[:len(args)])})"
        else:
            scope = {name: name for name in composition.params}
            for step in composition.steps:
                scope[step.output] = f"{step.function}({', '.join(scope[i] for i in step.inputs)})"
            call = ", ".join(scope[r] for r in composition.returns[:1])
        return errors.write_snippet(names, args, call)

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

        try:  # the module the worker imported (a notebook's code cells, IPython lines neutralised)
            source = notebook.module_source(submission.path, Path(submission.path).read_bytes()).text
        except (OSError, ValueError):  # unreadable, not UTF-8, not a notebook
            source = ""
        found = diagnosis.gradient_mistake(source)
        return CheckFailed(message, found.hint, found.id)

