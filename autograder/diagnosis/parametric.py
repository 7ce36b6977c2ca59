"""Mistakes described by a parameter, read off the student's own output: the building blocks of fitted rules
(`Catalogue.fitted`) for any assignment, and the float32 detour, which every catalogue diagnoses.

- `ratio(student, base)`: the least-squares factor c with student ~ c * base (a constant scale);
- `name_factor(value, quantities)`: which quantity of the inputs (or a constant students hard-code) a
  fitted number is: "sqrt(384) = 19.6, a model width";
- `float32_detour`: a float64 output that agrees with the reference only to float32 precision.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from autograder.diagnosis.engine import ANY_SECTION, Mistake, named

Quantities = Sequence[Tuple[str, float, str]]  # (its name, its value, what it is or ""), most telling first

# numbers students hard-code for a scale: the worked example's width, the widths of well-known models
MODEL_WIDTHS: Tuple[int, ...] = (128, 256, 384, 512, 768, 1024, 2048, 4096)

FLOAT32_DETOUR = Mistake(
    "float32_detour",
    ANY_SECTION,
    "your float64 output agrees with the reference only to float32 precision (relative error up to {error}; "
    "float64 work is exact to about 1e-15): part of your computation runs in float32 and comes back, e.g. a "
    ".float(), a dtype=torch.float32, or a constant made with torch.tensor(c) (float32 by default); keep the "
    "inputs' dtype throughout: x.new_tensor(c), torch.tensor(c, dtype=x.dtype), or a plain Python float",
)
PRECISION_MISTAKES: Tuple[Mistake, ...] = (FLOAT32_DETOUR,)


def nice(value: float) -> str:
    """A fitted number as a student wrote it: -10000, 19.6, -1e-12, 3.4e+38."""
    if value == 0 or not math.isfinite(value):
        return repr(value)
    if 1e-3 <= abs(value) < 1e6:
        rounded = round(value)
        return str(rounded) if abs(value - rounded) < 1e-9 * abs(value) else f"{value:.4g}"
    return f"{value:.3g}".replace("e+0", "e+").replace("e-0", "e-")


def ratio(student: Tensor, base: Tensor) -> float:
    """The c minimising |student - c * base|^2 over the entries finite in both; ValueError when there is none."""
    s, b = student.detach().to(torch.float64), base.detach().to(torch.float64)
    keep = torch.isfinite(s) & torch.isfinite(b)
    s, b = s[keep], b[keep]
    return finite(float((s * b).sum() / (b * b).sum()))


def finite(value: float) -> float:
    """value, or ValueError when it is NaN or infinite (a fit that read nothing: fitted rules yield nothing)."""
    if not math.isfinite(value):
        raise ValueError("no finite fit")
    return value


def name_factor(value: float, quantities: Quantities, rel: float = 1e-6) -> Optional[str]:
    """Which quantity `value` is, as 'sqrt(384) = 19.6 (a model width)' or 'd_k = 64'; None when none of
    them (nor its square root) is within `rel`. Several matching quantities are all named."""
    forms: Dict[str, Callable[[float], float]] = {"sqrt({})": math.sqrt, "{}": lambda v: v}
    for template, form in forms.items():
        found = [(template.format(label), note) for label, quantity, note in quantities
                 if quantity > 0 and abs(value - form(quantity)) <= rel * abs(form(quantity))]
        if found:
            names = " = ".join(dict.fromkeys(name for name, _ in found))
            notes = "; ".join(dict.fromkeys(note for _, note in found if note))
            return f"{names} = {nice(value)}" + (f" ({notes})" if notes else "")
    return None


def width_quantities() -> Quantities:
    """The constants students divide by instead of a head's width: well-known models' widths."""
    return tuple((str(w), float(w), "a whole model's width") for w in MODEL_WIDTHS)


def float32_detour(student: Tuple[Tensor, ...], reference: Tuple[Tensor, ...],
                   reference_fn: Callable[..., Any], inputs: Dict[str, Any]) -> Optional[Mistake]:
    """FLOAT32_DETOUR when every output is float64 and differs from the reference by no more than the
    reference itself does when computed in float32 (times 4), entries where either is not finite
    left out; None otherwise."""
    if not student or any(t.dtype != torch.float64 for t in student) or any(
            not (isinstance(t, Tensor) and t.is_floating_point()) for t in reference):
        return None
    computed32 = reference_fn(**{k: _float32(v) for k, v in inputs.items()})
    computed32 = computed32 if isinstance(computed32, tuple) else (computed32,)
    if not _within(student, reference, computed32):
        return None
    worst = max(_relative_error(s, r) for s, r in zip(student, reference))
    return named(FLOAT32_DETOUR, error=nice(worst)) if worst > 0 else None


def _float32(value: Any) -> Any:
    """float64 tensors as float32, inside dicts, lists and tuples too (the block's params are a dict)."""
    if isinstance(value, Tensor):
        return value.float() if value.dtype == torch.float64 else value
    if isinstance(value, dict):
        return {k: _float32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_float32(v) for v in value)
    return value


def _within(student: Tuple[Tensor, ...], reference: Tuple[Tensor, ...], computed32: Tuple[Tensor, ...]) -> bool:
    """Each student output differs from the reference by at most 4x what float32 arithmetic does."""
    for s, r, c in zip(student, reference, computed32):
        r64, c64 = r.to(torch.float64), c.to(torch.float64)
        keep = torch.isfinite(r64) & torch.isfinite(c64)
        if not bool((torch.isfinite(s) == torch.isfinite(r64)).all()):
            return False
        allowed = 4 * float((c64 - r64)[keep].abs().max()) if keep.any() else 0.0
        if float((s.to(torch.float64) - r64)[keep].abs().max()) > allowed:
            return False
    return True


def _relative_error(student: Tensor, reference: Tensor) -> float:
    s, r = student.to(torch.float64), reference.to(torch.float64)
    keep = torch.isfinite(s) & torch.isfinite(r)
    if not keep.any():
        return 0.0
    scale = float(r[keep].abs().max()) or 1.0
    return float((s - r)[keep].abs().max()) / scale
