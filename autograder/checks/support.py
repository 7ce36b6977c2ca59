"""Inputs, validation and comparison shared by the grading checks (trusted side only)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from hypothesis import strategies as st

from autograder.config import Config
from autograder.contract import EXAMPLE_D, EXAMPLE_SEQ, RETURN_ARITY, SECTION_FUNCTIONS
from autograder.feedback import CheckFailed
from autograder.runtime.protocol import Foreign, describe
from autograder.runtime.submission import SubmissionError
from reference import attention as ref

Tensor = torch.Tensor


@dataclass(frozen=True)
class Case:
    """One random problem: Q `[*batch, seq_q, d_k]`, K `[*batch, seq_k, d_k]`, V `[*batch, seq_k, d_v]`."""

    batch: Tuple[int, ...] = (1,)
    seq_q: int = EXAMPLE_SEQ
    seq_k: int = EXAMPLE_SEQ
    d_k: int = EXAMPLE_D
    d_v: int = EXAMPLE_D
    mask: str = "none"  # "none" | "causal" | "random"
    seed: int = 0
    dtype: torch.dtype = torch.float64

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def randn(self, *shape: int, salt: int) -> Tensor:
        return torch.randn(*shape, generator=self.generator(salt), dtype=torch.float64).to(self.dtype)

    def qkv(self) -> Tuple[Tensor, Tensor, Tensor]:
        return (self.randn(*self.batch, self.seq_q, self.d_k, salt=1),
                self.randn(*self.batch, self.seq_k, self.d_k, salt=2),
                self.randn(*self.batch, self.seq_k, self.d_v, salt=3))

    def scores(self, scale: float = 3.0) -> Tensor:
        return self.randn(*self.batch, self.seq_q, self.seq_k, salt=4) * scale

    def weights(self) -> Tensor:
        """Rows on the simplex `[*batch, seq_q, seq_k]` (not softmax-shaped, so aggregation is tested alone)."""
        raw = torch.rand(*self.batch, self.seq_q, self.seq_k, generator=self.generator(5), dtype=torch.float64)
        return (raw / raw.sum(-1, keepdim=True)).to(self.dtype)

    def attn_mask(self) -> Optional[Tensor]:
        """Boolean mask (True = may attend) with at least one allowed key in every row, or None."""
        if self.mask == "none":
            return None
        if self.mask == "causal":
            return ref.causal_mask(self.seq_q, self.seq_k).expand(*self.batch, self.seq_q, self.seq_k).clone()
        keep = torch.rand(*self.batch, self.seq_q, self.seq_k, generator=self.generator(6)) < 0.6
        first = torch.randint(self.seq_k, (*self.batch, self.seq_q, 1), generator=self.generator(7))
        return keep.scatter(-1, first, True)

    def __str__(self) -> str:
        dims = f"batch {list(self.batch)}, seq_q {self.seq_q}, seq_k {self.seq_k}, d_k {self.d_k}, d_v {self.d_v}"
        return f"{dims}, mask {self.mask}, {str(self.dtype).replace('torch.', '')}"


EXAMPLE = Case()  # PROMPT_EXAMPLE: "The cat sat on the mat", 6 tokens, 64 dims


def cases(max_seq: int = 64, max_d: int = 128, masks: Sequence[str] = ("none",), cross: bool = True,
          dtypes: Sequence[torch.dtype] = (torch.float64,)) -> st.SearchStrategy[Case]:
    """Random problem sizes: 0-2 leading batch dims of 1..3, sequences 1..max_seq, widths 1..max_d."""
    seq = st.integers(1, max_seq)
    return st.builds(
        lambda batch, sq, sk, dk, dv, mask, seed, dtype: Case(tuple(batch), sq, sk if cross else sq, dk, dv, mask, seed, dtype),
        st.lists(st.integers(1, 3), min_size=0, max_size=2), seq, seq, st.integers(1, max_d), st.integers(1, max_d),
        st.sampled_from(list(masks)), st.integers(0, 2**16), st.sampled_from(list(dtypes)))


def shape_of(t: Tensor) -> List[int]:
    return list(t.shape)


def expect_tensor(value: Any, fn: str, what: str, shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """The student's value must be a plain tensor of this shape and dtype; explain what it is otherwise."""
    if isinstance(value, Foreign) or not isinstance(value, Tensor):
        hint = "return a torch.Tensor built with torch operations (not a list, a numpy array or None)"
        if isinstance(value, Foreign) and value.type == "ndarray":
            hint = "stay in torch: a numpy round-trip breaks autograd and the dtype; use torch operations throughout"
        raise CheckFailed(f"{fn} returned {describe(value) if not isinstance(value, Foreign) else value.desc} "
                          f"for {what}; expected a torch.Tensor of shape {list(shape)}", hint)
    if list(value.shape) != list(shape):
        raise CheckFailed(f"{fn} returned {what} of shape {shape_of(value)}; expected {list(shape)}",
                          shape_hint(fn))
    if value.dtype != dtype:
        raise CheckFailed(f"{fn} returned {what} as {str(value.dtype).replace('torch.', '')} for "
                          f"{str(dtype).replace('torch.', '')} inputs",
                          "keep the input dtype: do not hard-code dtype= or call .float()/.double()")
    return value


def expect_tuple(value: Any, fn: str, size: int) -> Tuple[Any, ...]:
    if not isinstance(value, tuple) or len(value) != size:
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else (
            value.desc if isinstance(value, Foreign) else describe(value) if not isinstance(value, Tensor)
            else f"a single tensor of shape {shape_of(value)}")
        raise CheckFailed(f"{fn} returned {got}; expected a tuple of {size} tensors", shape_hint(fn))
    return value


def shape_hint(fn: str) -> str:
    from autograder.contract import SIGNATURES
    return (f"the contract is {SIGNATURES.get(fn, SIGNATURES['scaled_dot_product_attention'])}; "
            "tensors are [..., seq, d] with any leading batch dims, so use -1/-2 axes (K.transpose(-2, -1)), "
            "never hard-coded sizes or axes")


def function_name(section: str) -> str:
    """The function a section calls: its contract function, or the composed op for `attention`."""
    return "attention" if section == "attention" else SECTION_FUNCTIONS[section]


def label(fn: str) -> str:
    return "your attention (scaled_dot_product_attention, or your sections composed)" if fn == "attention" else fn


def call_checked(submission: Any, section: str, args: Sequence[Any], expected: Any) -> Any:
    """Call the section's function and validate types, shapes and dtypes against `expected` (same structure)."""
    fn = function_name(section)
    try:
        value = submission.call(fn, *args, expect=expected)
    except SubmissionError as error:  # some classic mistakes raise on these shapes (Q @ K with K not square)
        if error.raised is not None:
            error.diagnose = error.diagnose or error_diagnoser(fn, args, error.raised)
        raise
    try:
        return validate(value, fn, expected)
    except CheckFailed as failure:  # a wrong shape can be a classic mistake too (V @ weights, K Q^T, ...)
        failure.diagnose = failure.diagnose or diagnoser(fn, args, value)
        raise


def validate(value: Any, fn: str, expected: Any) -> Any:
    names = OUTPUT_NAMES[fn]
    if isinstance(expected, tuple):
        items = expect_tuple(value, label(fn), len(expected))
        return tuple(expect_tensor(v, label(fn), n, e.shape, e.dtype) for v, n, e in zip(items, names, expected))
    return expect_tensor(value, label(fn), names[0], expected.shape, expected.dtype)


OUTPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    "linear_projections": ("Q", "K", "V"),
    "attention_scores": ("scores",),
    "attention_weights": ("weights",),
    "aggregate_values": ("attended values",),
    "attention": ("attended values", "weights"),
}

# the reference for each function, called like the student's
REFERENCE: Dict[str, Callable[..., Any]] = {
    "linear_projections": ref.linear_projections,
    "attention_scores": ref.attention_scores,
    "attention_weights": ref.attention_weights,
    "aggregate_values": ref.aggregate_values,
    "attention": ref.scaled_dot_product_attention,
}


def compare(actual: Any, expected: Any, fn: str, args: Sequence[Any], config: Config, where: str = "") -> None:
    """Fail with the largest difference and its position; the diagnosis names the classic mistake."""
    pairs = list(zip(actual, expected, OUTPUT_NAMES[fn])) if isinstance(expected, tuple) else [
        (actual, expected, OUTPUT_NAMES[fn][0])]
    for got, want, name in pairs:
        tol = config.tolerance(want.dtype)
        if torch.allclose(got, want, rtol=tol["rtol"], atol=tol["atol"], equal_nan=False):
            continue
        raise CheckFailed(difference(got, want, f"{label(fn)}: {name}", where), diagnose=diagnoser(fn, args, actual))


def difference(got: Tensor, want: Tensor, what: str, where: str = "") -> str:
    """'<what> differ from the reference by up to 0.73 (at index [0, 4, 1]: yours ..., expected ...)'."""
    bad = ~torch.isfinite(got)
    context = f" ({where})" if where else ""
    if bad.any():
        first = [int(i) for i in bad.nonzero()[0]]
        return f"{what} contain {int(bad.sum())} NaN/inf value(s) of {got.numel()}, first at index {first}{context}"
    diff = (got - want).abs()
    idx = [int(i) for i in (diff == diff.max()).nonzero()[0]]
    return (f"{what} differ from the reference by up to {float(diff.max()):.3g} (at index {idx}: yours "
            f"{float(got[tuple(idx)]):.6g}, expected {float(want[tuple(idx)]):.6g}){context}")


def diagnoser(fn: str, args: Sequence[Any], actual: Any) -> Callable[[], Any]:
    """A deferred diagnosis of `actual` (the student's output for `args`), run once by the plugin."""
    return _deferred("diagnose", fn, args, actual)


def error_diagnoser(fn: str, args: Sequence[Any], raised: Tuple[str, str]) -> Callable[[], Any]:
    """A deferred diagnosis of the exception (type name, message) the student's code raised for `args`."""
    return _deferred("diagnose_error", fn, args, *raised)


def _deferred(how: str, fn: str, args: Sequence[Any], *evidence: Any) -> Callable[[], Any]:
    name = SECTION_FUNCTIONS["attention"] if fn == "attention" else fn
    frozen = tuple(a.clone() if isinstance(a, Tensor) else a for a in args)

    def run() -> Any:
        from autograder import diagnosis  # only failures need it

        return getattr(diagnosis, how)(name, frozen, {}, *evidence)

    return run


def no_gradient(submission: Any, message: str) -> CheckFailed:
    """The failure for an output that carries no gradient, naming how the student cut it off."""
    from autograder import diagnosis

    try:
        source = Path(submission.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        source = ""
    found = diagnosis.gradient_mistake(source)
    return CheckFailed(message, found.hint, found.id)


def require_values(actual: Any, expected: Any, fn: str, args: Sequence[Any], config: Config, where: str = "") -> None:
    """Unless the course turned `values_first` off: the check's points need the reference's values first."""
    if config.values_first:
        compare(actual, expected, fn, args, config, where)


def reference_vjp(fn: str, args: Sequence[Any], wrt: Sequence[int], cotangents: Sequence[Tensor]) -> List[Tensor]:
    """The reference's vector-Jacobian products for args[wrt] (zeros where an input does not matter)."""
    inputs = [a.detach().clone().requires_grad_(i in wrt) if isinstance(a, Tensor) and i in wrt
              else (a.clone() if isinstance(a, Tensor) else a) for i, a in enumerate(args)]
    with torch.enable_grad():
        outputs = REFERENCE[fn](*inputs)
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    grads = torch.autograd.grad(outputs, [inputs[i] for i in wrt], list(cotangents), allow_unused=True)
    return [torch.zeros_like(inputs[i]) if g is None else g for i, g in zip(wrt, grads)]


def expected_of(fn: str, args: Sequence[Any]) -> Any:
    """The reference answer on trusted copies of the inputs."""
    return REFERENCE[fn](*[a.clone() if isinstance(a, Tensor) else a for a in args])


def check_against_reference(submission: Any, section: str, args: Sequence[Any], config: Config,
                            where: str = "") -> Any:
    """Call the section on args, validate its structure, compare with the reference; returns the student's value."""
    fn = function_name(section)
    expected = expected_of(fn, args)
    actual = call_checked(submission, section, args, expected)
    compare(actual, expected, fn, args, config, where)
    return actual


def projection_args(case: Case, d_model: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """x `[*batch, seq_q, d_model]` and W_q, W_k, W_v `[d_model, d_k]` (W_v `[d_model, d_v]`)."""
    d_model = case.d_k if d_model is None else d_model
    x = case.randn(*case.batch, case.seq_q, d_model, salt=8)
    scale = 1 / math.sqrt(d_model)
    return (x, case.randn(d_model, case.d_k, salt=9) * scale, case.randn(d_model, case.d_k, salt=10) * scale,
            case.randn(d_model, case.d_v, salt=11) * scale)


def section_args(section: str, case: Case) -> Tuple[Any, ...]:
    """Inputs for one call of a section's function on `case`."""
    Q, K, V = case.qkv()
    if section == "projections":
        return projection_args(case)
    if section == "scores":
        return (Q, K)
    if section == "softmax":
        return (case.scores(), case.attn_mask())
    if section == "values":
        return (case.weights(), V)
    return (Q, K, V, case.attn_mask())


def arity(fn: str) -> int:
    return 2 if fn == "attention" else RETURN_ARITY[fn]
