"""Check helpers for any assignment described by a `Spec`: call through the seam, validate, compare with
the reference, and name the classic mistake behind a wrong answer (trusted side only).

A Spec lists an assignment's functions with their reference and output names, and its mistake
catalogue (`candidate_rules`: per function, (Mistake, rule) pairs in priority order, a rule yielding what
a student making that mistake returns on the same named inputs). Outputs may be float tensors (compared
with the config's tolerance for their dtype) or bool tensors (compared exactly).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from autograder.config import Config
from autograder.feedback import CheckFailed
from autograder.runtime.protocol import ERROR_TEXT, Foreign, clip, describe
from autograder.runtime.submission import SubmissionError

Rule = Callable[..., Iterable[Any]]
# (rtol, atol) used by diagnosis only, by the coarser dtype of the two outputs compared
_DIAGNOSIS_TOLERANCE = {torch.float64: (1e-8, 1e-11), torch.float32: (1e-4, 1e-5)}


@dataclass(frozen=True)
class Spec:
    """What the generic checks need to know about an assignment's functions."""

    reference: Mapping[str, Callable[..., Any]]  # function -> the reference implementation
    outputs: Mapping[str, Tuple[str, ...]]  # function -> names of its outputs (one name: a bare tensor)
    signatures: Mapping[str, str]  # function -> the contract line shown in hints
    candidate_rules: Mapping[str, Sequence[Tuple[Any, Rule]]]  # function -> (Mistake, rule), priority order
    axes_hint: str = "index from the end (-1, -2, ...), never hard-coded sizes or axes"


def trusted(args: Sequence[Any]) -> Tuple[Any, ...]:
    """Copies of the inputs (dicts of tensors included) that nothing else holds."""
    def copy(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.clone()
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        return value

    return tuple(copy(a) for a in args)


def expected_of(spec: Spec, fn: str, args: Sequence[Any]) -> Any:
    """The reference answer on trusted copies of the inputs."""
    with torch.no_grad():
        return spec.reference[fn](*trusted(args))


def shape_hint(spec: Spec, fn: str) -> str:
    return f"the contract is {spec.signatures[fn]}; {spec.axes_hint}"


def expect_tensor(spec: Spec, value: Any, fn: str, what: str, like: Tensor) -> Tensor:
    """The student's value must be a plain tensor with like's shape and dtype; explain what it is otherwise."""
    if isinstance(value, Foreign) or not isinstance(value, Tensor):
        got = value.desc if isinstance(value, Foreign) else describe(value)
        raise CheckFailed(f"{fn} returned {got} for {what}; expected a torch.Tensor of shape {list(like.shape)}",
                          "return a torch.Tensor built with torch operations (not a list, a numpy array or None)")
    if list(value.shape) != list(like.shape):
        raise CheckFailed(f"{fn} returned {what} of shape {list(value.shape)}; expected {list(like.shape)}",
                          shape_hint(spec, fn))
    if value.dtype != like.dtype:
        name = str(like.dtype).replace("torch.", "")
        hint = ("return a bool tensor (dtype=torch.bool): masks are True/False, not 0/1" if like.dtype == torch.bool
                else "keep the input dtype: do not hard-code dtype= or call .float()/.double()")
        raise CheckFailed(f"{fn} returned {what} as {str(value.dtype).replace('torch.', '')}; expected {name}", hint)
    return value


def validate(spec: Spec, value: Any, fn: str, expected: Any) -> Any:
    """value with the structure of expected (a tensor, or a tuple of tensors), each like its counterpart."""
    names = spec.outputs[fn]
    if len(names) == 1:
        return expect_tensor(spec, value, fn, names[0], expected)
    if not isinstance(value, tuple) or len(value) != len(names):
        got = (f"a tuple of {len(value)}" if isinstance(value, tuple) else
               value.desc if isinstance(value, Foreign) else
               f"a single tensor of shape {list(value.shape)}" if isinstance(value, Tensor) else describe(value))
        raise CheckFailed(f"{fn} returned {got}; expected a tuple ({', '.join(names)})", shape_hint(spec, fn))
    return tuple(expect_tensor(spec, v, fn, n, e) for v, n, e in zip(value, names, expected))


def call_checked(submission: Any, spec: Spec, fn: str, args: Sequence[Any], expected: Any) -> Any:
    """Call fn through the seam and validate its structure; a raised error or a wrong shape may be a
    classic mistake, diagnosed (lazily) when it is the failure reported."""
    try:
        value = submission.call(fn, *args)
    except SubmissionError as error:
        if error.raised is not None:
            error.diagnose = error.diagnose or error_diagnoser(spec, fn, args, error.raised)
        raise
    return validated(spec, value, fn, args, expected)


def validated(spec: Spec, value: Any, fn: str, args: Sequence[Any], expected: Any) -> Any:
    """validate, with a lazy diagnosis attached: a wrong shape can be a classic mistake too."""
    try:
        return validate(spec, value, fn, expected)
    except CheckFailed as failure:
        failure.diagnose = failure.diagnose or diagnoser(spec, fn, args, value)
        raise


def difference(got: Tensor, want: Tensor, what: str, where: str = "") -> str:
    """'<what> differ from the reference by up to 0.73 (at index [0, 4, 1]: yours ..., expected ...)'."""
    context = f" ({where})" if where else ""
    if want.dtype == torch.bool:
        wrong = got != want
        first = [int(i) for i in wrong.nonzero()[0]]
        return (f"{what} differ from the reference in {int(wrong.sum())} of {want.numel()} entries, first at "
                f"index {first} (yours {bool(got[tuple(first)])}, expected {bool(want[tuple(first)])}){context}")
    bad = ~torch.isfinite(got)
    if bad.any():
        first = [int(i) for i in bad.nonzero()[0]]
        return f"{what} contain {int(bad.sum())} NaN/inf value(s) of {got.numel()}, first at index {first}{context}"
    diff = (got - want).abs().nan_to_num(nan=float("inf"))  # a NaN the reference has and yours lacks counts
    idx = [int(i) for i in (diff == diff.max()).nonzero()[0]]
    return (f"{what} differ from the reference by up to {float(diff.max()):.3g} (at index {idx}: yours "
            f"{float(got[tuple(idx)]):.6g}, expected {float(want[tuple(idx)]):.6g}){context}")


def close(got: Tensor, want: Tensor, config: Config) -> bool:
    """Equal for bool tensors; allclose with the config's tolerance for want's dtype (NaN never close)."""
    if want.dtype == torch.bool:
        return bool(torch.equal(got, want))
    tol = config.tolerance(want.dtype)
    return bool(torch.allclose(got, want, rtol=tol["rtol"], atol=tol["atol"], equal_nan=False))


def compare(spec: Spec, actual: Any, expected: Any, fn: str, args: Sequence[Any], config: Config,
            where: str = "") -> None:
    """Fail with the largest difference and its position; the diagnosis names the classic mistake."""
    names = spec.outputs[fn]
    pairs = zip(actual, expected, names) if len(names) > 1 else [(actual, expected, names[0])]
    for got, want, name in pairs:
        if not close(got, want, config):
            raise CheckFailed(difference(got, want, f"{fn}: {name}", where), diagnose=diagnoser(spec, fn, args, actual))


def check_against_reference(submission: Any, spec: Spec, fn: str, args: Sequence[Any], config: Config,
                            where: str = "") -> Any:
    """Call fn on args, validate its structure, compare with the reference; returns the student's value."""
    expected = expected_of(spec, fn, args)
    actual = call_checked(submission, spec, fn, args, expected)
    compare(spec, actual, expected, fn, args, config, where)
    return actual


# ---------------------------------------------------------------- diagnosis


def diagnoser(spec: Spec, fn: str, args: Sequence[Any], actual: Any) -> Callable[[], Any]:
    """A deferred diagnosis of `actual` (the student's output for `args`), run once by the plugin."""
    frozen = trusted(args)
    return lambda: diagnose(spec, fn, frozen, actual)


def error_diagnoser(spec: Spec, fn: str, args: Sequence[Any], raised: Tuple[str, str]) -> Callable[[], Any]:
    """A deferred diagnosis of the exception (type name, message) the student's code raised for `args`."""
    frozen = trusted(args)
    return lambda: diagnose_error(spec, fn, frozen, *raised)


def _bind(spec: Spec, fn: str, args: Sequence[Any]) -> Dict[str, Any]:
    bound = inspect.signature(spec.reference[fn]).bind(*args)
    bound.apply_defaults()
    return dict(bound.arguments)


def _parts(output: Any) -> Tuple[Any, ...]:
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def _same(a: Any, b: Any) -> bool:
    """Outputs equal part by part (diagnosis tolerance, NaN equal to NaN, bool exactly)."""
    a, b = _parts(a), _parts(b)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if not (isinstance(x, Tensor) and isinstance(y, Tensor)) or x.shape != y.shape:
            return False
        if x.dtype == torch.bool or y.dtype == torch.bool:
            if not (x.dtype == y.dtype and torch.equal(x, y)):
                return False
            continue
        if not (x.is_floating_point() and y.is_floating_point()):
            return False
        coarse = max((x.dtype, y.dtype), key=lambda d: torch.finfo(d).eps)
        rtol, atol = _DIAGNOSIS_TOLERANCE.get(coarse, (5e-2, 1e-3))
        if not torch.allclose(x.detach().double(), y.detach().double(), rtol, atol, equal_nan=True):
            return False
    return True


def _outputs(rule: Rule, inputs: Dict[str, Any]) -> List[Any]:
    try:
        return list(rule(**inputs))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return []


def diagnose(spec: Spec, fn: str, args: Sequence[Any], student_output: Any) -> Any:
    """The first catalogued mistake of fn whose output on these inputs matches the student's (and differs
    from the reference's); None otherwise. Never raises: a diagnosis is a bonus on top of the grade."""
    try:
        with torch.no_grad():
            inputs = _bind(spec, fn, args)
            reference = spec.reference[fn](**inputs)
            if _same(student_output, reference):
                return None
            for mistake, rule in spec.candidate_rules.get(fn, ()):
                if any(_same(student_output, c) and not _same(c, reference) for c in _outputs(rule, inputs)):
                    return mistake
    except Exception:  # noqa: BLE001
        return None
    return None


def diagnose_error(spec: Spec, fn: str, args: Sequence[Any], error_type: str, error_text: str) -> Any:
    """The one catalogued mistake of fn that raises what the student's code raised (same type and message);
    None when none or several do. Never raises."""
    matches: Dict[str, Any] = {}
    try:
        inputs = _bind(spec, fn, args)
        with torch.no_grad():
            for mistake, rule in spec.candidate_rules.get(fn, ()):
                try:
                    for _ in rule(**inputs):
                        pass
                except Exception as exc:  # noqa: BLE001 - the error is what is compared
                    if type(exc).__name__ == error_type and error_text == clip(str(exc), ERROR_TEXT):
                        matches[mistake.id] = mistake
    except Exception:  # noqa: BLE001
        return None
    return next(iter(matches.values())) if len(matches) == 1 else None


def expect_value_error(submission: Any, fn: str, args: Sequence[Any], situation: str, hint: str) -> None:
    """fn must raise ValueError on these args (the contract's way of refusing them)."""
    try:
        value = submission.call(fn, *args)
    except SubmissionError as error:
        if error.kind == "raised" and error.raised is not None and error.raised[0] == "ValueError":
            return
        if error.kind != "raised" or error.raised is None:
            raise
        raise CheckFailed(f"{fn} raised {error.raised[0]} when {situation}; the contract asks for a ValueError",
                          hint) from None
    got = f"a tensor of shape {list(value.shape)}" if isinstance(value, Tensor) else (
        value.desc if isinstance(value, Foreign) else describe(value))
    raise CheckFailed(f"{fn} returned {got} when {situation}, instead of raising ValueError", hint)
