"""The diagnosis engine: names the mistake behind a wrong answer, for any assignment.

Trusted side only: runs in the grader process on the plain tensors a worker sent back, never on student
code. An assignment's mistake catalogue (`Catalogue`, in its `mistakes` module) registers, per contract
function, small generators ("rules") that yield what a student making a mistake returns. For a failing
call, `Catalogue.diagnose` recomputes every rule of that function on the exact inputs the student was
given and returns the first mistake whose output the student's matches.

A rule yields several outputs where students differ in a detail the mistake leaves open; a rule that
cannot apply to the inputs (a shape that only works when square) raises and is skipped. A composed
function (a `Composition` of the assignment) also tries the rules of its parts, lifted through the right
other steps (`Catalogue.lift`). A candidate that equals the reference on the given inputs is never
reported: a mistake these inputs cannot tell from the right answer is no diagnosis. The catalogue's
`graded_rows` says which rows are graded at all (attention: rows whose mask allows some key).

A mistake described by a parameter (a scale factor, a mask fill value) is registered with `fitted`: its
rule reads the parameter off the student's own output and yields what that parameter gives, with a hint
that names it; the engine verifies the candidate like any other. Fitted rules are tried after the exact
ones, so a textbook mistake keeps its catalogue hint.

The gradient mistakes (a detached output, a NumPy round trip) belong to every catalogue: they are found
from the source by `gradient_mistake`, when a gradient check sees no gradient; so does the float32
detour (`autograder.diagnosis.parametric.float32_detour`), tried last for every function.
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor

from autograder.runtime.protocol import ERROR_TEXT, clip

ANY_SECTION = "any"  # the section of a mistake that any function can make (the gradient ones)

Output = Union[Tensor, Tuple[Tensor, ...]]
Rule = Callable[..., Iterable[Output]]  # called with the function's named inputs, yields candidate outputs
Lift = Callable[[Rule], Rule]  # a part's rule as a rule of the composed function
GradedRows = Callable[[Dict[str, Any], Tuple[Tensor, ...]], Optional[Tensor]]

# (rtol, atol) by dtype; a comparison uses the coarser of the two dtypes
_TOLERANCES: Dict[torch.dtype, Tuple[float, float]] = {
    torch.float64: (1e-9, 1e-12),  # finer than grading (1e-7): a near miss that fails is still named
    torch.float32: (1e-4, 1e-6),
    torch.float16: (1e-2, 1e-4),
    torch.bfloat16: (5e-2, 1e-3),
}


@dataclass(frozen=True)
class Mistake:
    """A classic mistake: a stable `id`, the contract `section` that loses the points, the `hint` we teach."""

    id: str
    section: str  # a section of the assignment, or ANY_SECTION
    hint: str  # second person and concrete: what the student's output is, and what to write instead


GRADIENT_MISTAKES: Tuple[Mistake, ...] = (
    Mistake(
        "detached_output",
        ANY_SECTION,
        "your output is cut off from autograd (.detach(), .data, torch.no_grad() or a tensor rebuilt from "
        "numbers): the values are right but no gradient flows back to the inputs, so a model using it cannot "
        "train; keep every step a torch operation on the input tensors",
    ),
    Mistake(
        "numpy_round_trip",
        ANY_SECTION,
        "your function goes through NumPy (.numpy(), np.* and back with torch.from_numpy or torch.tensor): "
        "the values are right but autograd cannot follow NumPy, so the gradient stops there; use the torch "
        "operations (torch.exp, torch.matmul, torch.softmax) throughout",
    ),
)
_GRADIENT_BY_ID = {m.id: m for m in GRADIENT_MISTAKES}


@dataclass(frozen=True)
class Fitted:
    """A rule for mistakes described by a parameter: `fit(student, **inputs)` reads the parameter off the
    student's outputs (a tuple of tensors) and yields (candidate output, the Mistake with a hint naming the
    parameter); the engine keeps the first candidate that matches the student and not the reference."""

    fit: Callable[..., Iterable[Tuple[Output, Mistake]]]


class Catalogue:
    """The mistakes of one assignment (`assignment`: an `autograder.assignments.Assignment`).

    Register rules with the `mistake` decorator (definition order is priority order), composed functions'
    lifted rules with `lift`; then `diagnose` and `diagnose_error` name mistakes, `lookup` finds one by id.
    """

    def __init__(self, assignment: Any, graded_rows: Optional[GradedRows] = None, ladder: Any = None) -> None:
        """ladder: the input kinds that explain an error (`autograder.diagnosis.errors.Ladder`), or None."""
        self.assignment = assignment
        self.graded_rows = graded_rows
        self.ladder = ladder
        self.rules: Dict[str, List[Tuple[Mistake, Rule]]] = {f: [] for f in assignment.function_names}
        self._lifted: Dict[str, List[Tuple[Mistake, Rule]]] = {}
        self._fitted: Dict[str, List[Fitted]] = {f: [] for f in assignment.function_names}
        self._first: Dict[str, List[Fitted]] = {f: [] for f in assignment.function_names}
        self._declared: List[Mistake] = []

    # -- building the catalogue ---------------------------------------------------------------------
    def mistake(self, id: str, section: str, hint: str) -> Callable[[Rule], Rule]:
        """Register the decorated rule as the detector of a new Mistake of the function of `section`."""

        def register(rule: Rule) -> Rule:
            function = self.assignment.function_of(self.assignment.op(section))
            self.rules[function].append((Mistake(id, section, hint), rule))
            return rule

        return register

    def fitted(self, section_or_function: str, *declared: Mistake,
               first: bool = False) -> Callable[[Callable[..., Any]], Fitted]:
        """Register the decorated fit (see `Fitted`) for a section's function (or a function by name);
        `declared` are the mistakes it may name, with their generic hints, for `lookup` and `mistakes`.
        Fits are tried after the exact rules; `first`: before them (a fit that tells apart what an exact
        rule's tolerance cannot, and yields nothing where it cannot tell)."""

        def register(fit: Callable[..., Any]) -> Fitted:
            names = self.assignment.function_names
            function = section_or_function if section_or_function in names else \
                self.assignment.function_of(self.assignment.op(section_or_function))
            rule = Fitted(fit)
            (self._first if first else self._fitted)[function].append(rule)
            self._declared.extend(m for m in declared if m not in self._declared)
            return rule

        return register

    def lift(self, part: str, into: str, how: Lift) -> None:
        """Also try every rule of the function `part` on the composed function `into`, lifted by `how`."""
        self._lifted.setdefault(into, []).extend((m, how(rule)) for m, rule in self.rules[part])

    def candidates(self, function: str) -> List[Tuple[Mistake, Rule]]:
        """What diagnose tries for `function`: its own rules, then the lifted rules of its parts."""
        return self.rules[function] + self._lifted.get(function, [])

    @property
    def mistakes(self) -> Tuple[Mistake, ...]:
        """The catalogue in contract order, each function's mistakes in the order diagnose tries them."""
        from autograder.diagnosis.parametric import PRECISION_MISTAKES

        exact = tuple(m for rules in self.rules.values() for m, _ in rules)
        return exact + tuple(m for m in self._declared if m.id not in {e.id for e in exact}) + \
            GRADIENT_MISTAKES + PRECISION_MISTAKES

    def lookup(self, id: str) -> Mistake:
        """The catalogue entry with this id (KeyError names the known ids when there is none)."""
        by_id = {m.id: m for m in self.mistakes}
        try:
            return by_id[id]
        except KeyError:
            raise KeyError(f"no mistake {id!r} in the catalogue; known: {', '.join(by_id)}") from None

    # -- diagnosing -----------------------------------------------------------------------------------
    def diagnose(self, function: str, args: tuple, kwargs: dict, student_output: object) -> Optional[Mistake]:
        """The first catalogued mistake of `function` whose output on these inputs matches the student's.

        function: a contract function name; args/kwargs: trusted copies of the inputs the student was given;
        student_output: what the student returned (a Tensor, or a tuple of Tensors). None when the output is
        right, matches no known mistake, or is not something we can compare: diagnose never raises.
        """
        try:
            return self._diagnose(function, args, kwargs, student_output)
        except Exception:  # a diagnosis is a bonus on top of the grade: an odd output must never break grading
            return None

    def _diagnose(self, function: str, args: tuple, kwargs: dict, student_output: object) -> Optional[Mistake]:
        student = _student_tensors(student_output, self.assignment.function(function).arity)
        if student is None:
            return None
        with torch.no_grad():
            inputs = self._bind(function, args, kwargs)
            reference = _as_tuple(self._reference(function)(**inputs))
            rows = self.graded_rows(inputs, reference) if self.graded_rows else None
            if _close(student, reference, rows):
                return None
            found = self._first_fit(self._first[function], student, inputs, reference, rows)
            if found is not None:
                return found
            for candidate_mistake, rule in self.candidates(function):
                for candidate in map(_as_tuple, _candidates(rule, inputs)):
                    if _close(student, candidate, rows) and not _close(candidate, reference, rows):
                        return candidate_mistake
            found = self._first_fit(self._fitted[function], student, inputs, reference, rows)
            if found is not None:
                return found
            from autograder.diagnosis.parametric import float32_detour

            return float32_detour(student, reference, self._reference(function), inputs)

    @staticmethod
    def _first_fit(fits: List[Fitted], student: Tuple[Tensor, ...], inputs: Dict[str, Any],
                   reference: Tuple[Tensor, ...], rows: Optional[Tensor]) -> Optional[Mistake]:
        """The mistake of the first fitted candidate that matches the student and not the reference."""
        for fitted in fits:
            for candidate, found in _fits(fitted, student, inputs):
                candidate = _as_tuple(candidate)
                if _close(student, candidate, rows) and not _close(candidate, reference, rows):
                    return found
        return None

    def diagnose_error(self, function: str, args: tuple, kwargs: dict, error_type: str,
                       error_text: str) -> Optional[Mistake]:
        """The catalogued mistake of `function` that raises what the student's code raised on these inputs
        (same exception type, same message): Q @ K runs only for square K. None when none or several
        different mistakes match (an error names a mistake only when it is unambiguous); never raises."""
        matches: Dict[str, Mistake] = {}
        try:
            inputs = self._bind(function, args, kwargs)
            with torch.no_grad():
                for candidate_mistake, rule in self.candidates(function):
                    try:
                        for _ in rule(**inputs):
                            pass
                    except Exception as exc:  # noqa: BLE001 - the error is what is compared
                        if type(exc).__name__ == error_type and error_text == clip(str(exc), ERROR_TEXT):
                            matches[candidate_mistake.id] = candidate_mistake
        except Exception:  # noqa: BLE001 - a bonus on top of the grade, as in diagnose
            return None
        return next(iter(matches.values())) if len(matches) == 1 else None

    def _reference(self, function: str) -> Callable[..., Any]:
        return getattr(self.assignment.module("reference"), function)

    def _bind(self, function: str, args: tuple, kwargs: dict) -> Dict[str, Any]:
        """The inputs by contract parameter name, defaults applied, a mask as bool (True = may attend)."""
        bound = inspect.signature(self._reference(function)).bind(*args, **kwargs)
        bound.apply_defaults()
        inputs = dict(bound.arguments)
        if inputs.get("mask") is not None:
            inputs["mask"] = inputs["mask"].to(torch.bool)
        return inputs


def rows_allowed_by_mask(inputs: Dict[str, Any], reference: Tuple[Tensor, ...]) -> Optional[Tensor]:
    """A `graded_rows` for attention-like functions: `[..., seq_q, 1]` bool, True for the query rows whose
    mask allows some key (the last output is the weights); None (all rows) without a mask."""
    mask = inputs.get("mask")
    if mask is None:
        return None
    weights = reference[-1]
    return torch.broadcast_to(mask, weights.shape).any(-1, keepdim=True)


def gradient_mistake(source: str) -> Mistake:
    """Which gradient mistake a submission whose output carries no gradient made: a NumPy round trip when
    its source uses NumPy, otherwise a detached output (.detach(), .data, no_grad, rebuilt tensors)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _GRADIENT_BY_ID["detached_output"]
    uses_numpy = any(
        (isinstance(node, (ast.Import, ast.ImportFrom))
         and any((alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0] == "numpy"
                 for alias in node.names))
        or (isinstance(node, ast.Attribute) and node.attr in ("numpy", "from_numpy"))
        for node in ast.walk(tree))
    return _GRADIENT_BY_ID["numpy_round_trip" if uses_numpy else "detached_output"]


def _student_tensors(output: object, arity: int) -> Optional[Tuple[Tensor, ...]]:
    """The student's output as a tuple of `arity` floating-point (or bool) tensors, or None when it is not that."""
    parts = (output,) if arity == 1 else output
    if not isinstance(parts, (tuple, list)) or len(parts) != arity:
        return None
    if not all(isinstance(part, Tensor) and (part.is_floating_point() or part.dtype == torch.bool) for part in parts):
        return None
    return tuple(parts)


def _as_tuple(output: Output) -> Tuple[Tensor, ...]:
    """One of our own outputs (reference or candidate) as a tuple of tensors."""
    return output if isinstance(output, tuple) else (output,)


def _candidates(rule: Rule, inputs: Dict[str, Any]) -> Iterator[Output]:
    """What the rule yields on these inputs; nothing from where it raises (a shape it cannot apply to)."""
    try:
        yield from rule(**inputs)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return


def _fits(fitted: Fitted, student: Tuple[Tensor, ...], inputs: Dict[str, Any]) -> Iterator[Tuple[Output, Mistake]]:
    """What a fitted rule yields for this student; nothing from where it raises."""
    try:
        yield from fitted.fit(student, **inputs)
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError):
        return


def named(mistake: Mistake, **facts: Any) -> Mistake:
    """`mistake` with its hint template filled in with the fitted facts (`str.format` fields)."""
    return replace(mistake, hint=mistake.hint.format(**facts))


def _close(a: Tuple[Tensor, ...], b: Tuple[Tensor, ...], rows: Optional[Tensor]) -> bool:
    """Whether the outputs a and b match, tensor by tensor."""
    return len(a) == len(b) and all(_tensor_close(x, y, rows) for x, y in zip(a, b))


def _tensor_close(a: Tensor, b: Tensor, rows: Optional[Tensor]) -> bool:
    """Same shape and allclose (NaN and inf at the same places) on the graded rows `[..., seq_q, 1]`, with
    the tolerance of the coarser dtype."""
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool or b.dtype == torch.bool:  # masks: equal, entry for entry
        return a.dtype == b.dtype and bool(torch.equal(a.cpu(), b.cpu()))
    rtol, atol = _tolerance(a.dtype, b.dtype)
    a, b = (t.detach().to("cpu", torch.float64) for t in (a, b))
    if rows is not None and a.shape[:-1] == rows.shape[:-1]:
        graded = rows.cpu().expand(a.shape)
        a, b = a[graded], b[graded]
    return torch.allclose(a, b, rtol, atol, equal_nan=True)


def _tolerance(*dtypes: torch.dtype) -> Tuple[float, float]:
    """(rtol, atol) for comparing tensors of these floating dtypes: that of the least precise one."""
    coarsest = max(dtypes, key=lambda dtype: torch.finfo(dtype).eps)
    return _TOLERANCES.get(coarsest, _TOLERANCES[torch.bfloat16])
