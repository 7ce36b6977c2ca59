"""Shared by the multihead and block catalogue tests: import example submissions, match outputs to rules.

The submissions are our own files, so they are imported in-process; `matches` runs a catalogue rule on
the same inputs the student function got and tells whether one of its outputs equals the student's.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

SUBMISSIONS = Path(__file__).resolve().parents[1] / "student_submissions"


def load(path: Path) -> ModuleType:
    """Import a submission file under a private module name."""
    spec = importlib.util.spec_from_file_location(f"submission_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mistake_of(path: Path) -> str:
    return path.stem.removeprefix("buggy_")


def parts(output: Any) -> Tuple[Any, ...]:
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def same(a: Any, b: Any, atol: float = 1e-9) -> bool:
    """Outputs equal part by part: same shapes and dtypes, values within atol, NaN where NaN."""
    a, b = parts(a), parts(b)
    return len(a) == len(b) and all(
        isinstance(x, Tensor) and isinstance(y, Tensor) and x.shape == y.shape and x.dtype == y.dtype
        and (torch.equal(x, y) if not x.is_floating_point() else
             torch.allclose(x, y, rtol=0.0, atol=atol, equal_nan=True))
        for x, y in zip(a, b))


def outputs(rule: Callable[..., Iterable[Any]], inputs: Dict[str, Any]) -> List[Any]:
    """What the rule yields on these inputs (nothing where it raises)."""
    try:
        return list(rule(**inputs))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return []


def raised(call: Callable[[], Any]) -> Optional[Tuple[str, str]]:
    """(type name, message) of what call raises, or None."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the error is the evidence
        return type(exc).__name__, str(exc)
    return None


def random_params(d_model: int, d_ff: int, g: torch.Generator) -> Dict[str, torch.Tensor]:
    """Every contract key, float64, biases and shifts clearly non-zero, scales around 1."""
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    p = {f"ln_{i}.{k}": (1 + 0.3 * randn(d_model)) if k == "gamma" else 0.3 * randn(d_model)
         for i in (1, 2) for k in ("gamma", "beta")}
    p.update({f"attn.W_{n}": randn(d_model, d_model) / math.sqrt(d_model) for n in "qkvo"})
    p.update({f"attn.b_{n}": 0.3 * randn(d_model) for n in "qkvo"})
    p.update({"mlp.W_1": randn(d_model, d_ff) / math.sqrt(d_model), "mlp.b_1": 0.3 * randn(d_ff),
              "mlp.W_2": randn(d_ff, d_model) / math.sqrt(d_ff), "mlp.b_2": 0.3 * randn(d_model)})
    return p
