"""The diagnosis catalogue: names the classic mistake behind a wrong answer.

Trusted side only: runs in the grader process on the plain tensors a worker sent back, never on student
code. For a failing call, `diagnose` recomputes every known mistake of that function on the exact inputs
the student was given, with reference-like code, and returns the first one the student's output matches.

Each mistake is defined next to a tiny generator (a "rule") that yields what a student making it returns.
A rule yields several outputs where students differ in a detail the mistake leaves open: what a line with
no allowed entry becomes (NaN, uniform, zeros), which fill value blocks a score (-inf or -1e9). A rule that
cannot apply to the inputs (a shape that only works when square) simply raises and is skipped. The composed
`scaled_dot_product_attention` reuses the section rules: a scores mistake flows through the right softmax
and values, a softmax mistake through the right values, a values mistake takes the right weights.

A candidate that equals the reference on the given inputs is never reported: a mistake that these inputs
cannot tell apart from the right answer is no diagnosis. Rows whose mask allows no key are not graded,
so they are not compared either.
"""
from __future__ import annotations

import ast
import inspect
import itertools
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor

from autograder.contract import (
    COMPOSED_FROM,
    EXAMPLE_D,
    RETURN_ARITY,
    SECTION_FUNCTIONS,
)
from autograder.runtime.protocol import ERROR_TEXT, clip
from reference import attention as ref

ANY_SECTION = "any"  # the section of a mistake that any function can make (the gradient ones)
ATTENTION = SECTION_FUNCTIONS["attention"]

Output = Union[Tensor, Tuple[Tensor, ...]]
Rule = Callable[..., Iterable[Output]]  # called with the function's named inputs, yields candidate outputs

_LARGE_NEGATIVE = -1e9  # the finite fill students use instead of -inf
_MODEL_WIDTHS = (512, 768)  # d_model of the original paper and of distilgpt2
# (rtol, atol) by dtype; a comparison uses the coarser of the two dtypes
_TOLERANCES: Dict[torch.dtype, Tuple[float, float]] = {
    torch.float64: (1e-6, 1e-8),
    torch.float32: (1e-4, 1e-6),
    torch.float16: (1e-2, 1e-4),
    torch.bfloat16: (5e-2, 1e-3),
}


@dataclass(frozen=True)
class Mistake:
    """A classic mistake: a stable `id`, the contract `section` that loses the points, the `hint` we teach."""

    id: str
    section: str  # a key of contract.SECTION_FUNCTIONS, or ANY_SECTION
    hint: str  # second person and concrete: what the student's output is, and what to write instead


_RULES: Dict[str, List[Tuple[Mistake, Rule]]] = {function: [] for function in SECTION_FUNCTIONS.values()}


def _mistake(id: str, section: str, hint: str) -> Callable[[Rule], Rule]:
    """Register the decorated rule as the detector of a new Mistake; definition order is priority order."""

    def register(rule: Rule) -> Rule:
        _RULES[SECTION_FUNCTIONS[section]].append((Mistake(id, section, hint), rule))
        return rule

    return register


# ---------------------------------------------------------------- helpers shared by the rules


def _qk(Q: Tensor, K: Tensor) -> Tensor:
    """Unscaled scores Q K^T: `[..., seq_q, d_k] @ [..., d_k, seq_k] -> [..., seq_q, seq_k]`."""
    return Q @ K.transpose(-2, -1)


def _serial_softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """torch.softmax written out. The fused kernel wakes torch's thread pool even for a 6 x 6 tensor, which
    costs about a millisecond on a busy machine, and diagnose computes dozens; these ops stay serial."""
    exp = torch.exp(scores - scores.amax(dim, keepdim=True))
    return exp / exp.sum(dim, keepdim=True)


def _serial_log_softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """torch.log_softmax written out, for the same reason as _serial_softmax."""
    shifted = scores - scores.amax(dim, keepdim=True)
    return shifted - torch.exp(shifted).sum(dim, keepdim=True).log()


def _blocked(scores: Tensor, mask: Optional[Tensor], fill: float) -> Tensor:
    """scores with the entries the bool mask blocks (False) replaced by fill; unchanged without a mask."""
    return scores if mask is None else scores.masked_fill(~mask, fill)


def _attention(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """The right (scores, weights, attended); a row with no allowed key is NaN (it is not graded)."""
    scores = _qk(Q, K) / math.sqrt(Q.shape[-1])
    weights = _serial_softmax(_blocked(scores, mask, float("-inf")))
    return scores, weights, weights @ V


def _softmax_variants(scores: Tensor, mask: Optional[Tensor], dim: int = -1) -> Iterator[Tensor]:
    """Masked softmax of scores along dim (blocked entries 0), once per way students' code fills a line
    along dim that has no allowed entry: NaN (-inf fill), uniform (finite fill), the unmasked softmax
    (additive -1e9) or zeros (guarded like the reference). Without such lines, one output."""
    weights = _serial_softmax(_blocked(scores, mask, float("-inf")), dim)
    yield weights
    if mask is None:
        return
    empty = ~torch.broadcast_to(mask, scores.shape).any(dim, keepdim=True)
    if empty.any():
        uniform = torch.full_like(scores, 1.0 / scores.shape[dim])
        for line in (uniform, _serial_softmax(scores, dim), torch.zeros_like(scores)):
            yield torch.where(empty, line, weights)


# ---------------------------------------------------------------- 1 projections: (x, W_q, W_k, W_v) -> (Q, K, V)


@_mistake(
    "swapped_projections",
    "projections",
    "your Q, K and V come out in the wrong order (for example K computed with W_q): return "
    "(x @ W_q, x @ W_k, x @ W_v) in exactly that order, each matrix learns a different role",
)
def _swapped_projections(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    right = (x @ W_q, x @ W_k, x @ W_v)
    yield from itertools.islice(itertools.permutations(right), 1, None)  # every order but the right one


@_mistake(
    "transposed_weight_matrix",
    "projections",
    "you multiplied x by W transposed (x @ W.T, the nn.Linear weight layout), but here W is [d_model, d_k]: "
    "compute x @ W_q, x @ W_k and x @ W_v without transposing",
)
def _transposed_weight_matrix(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    yield tuple(x @ W.transpose(-2, -1) for W in (W_q, W_k, W_v))


@_mistake(
    "same_matrix_for_all",
    "projections",
    "you projected Q, K and V all with W_q, so every token's query, key and value are the same vector: "
    "use W_k for K and W_v for V",
)
def _same_matrix_for_all(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor) -> Iterator[Output]:
    yield (x @ W_q,) * 3


# ---------------------------------------------------------------- 2 scores: (Q, K) -> [..., seq_q, seq_k]


@_mistake(
    "no_scaling",
    "scores",
    "your scores equal Q K^T without the 1/sqrt(d_k) factor: divide by math.sqrt(d_k) so the softmax does "
    "not saturate as d_k grows",
)
def _no_scaling(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(Q, K)


@_mistake(
    "divide_by_dk",
    "scores",
    "you divided Q K^T by d_k instead of by sqrt(d_k), which makes the scores too small and the softmax too "
    "flat: divide by math.sqrt(d_k)",
)
def _divide_by_dk(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(Q, K) / Q.shape[-1]


@_mistake(
    "scale_by_sqrt_seq",
    "scores",
    "you divided Q K^T by the square root of a sequence length (Q.shape[-2] or K.shape[-2]) instead of "
    "sqrt(d_k): the scale depends on the size of the vectors being dotted, d_k = Q.shape[-1], not on how "
    "many tokens there are",
)
def _scale_by_sqrt_seq(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for seq in (Q.shape[-2], K.shape[-2]):
        yield _qk(Q, K) / math.sqrt(seq)


@_mistake(
    "scale_by_d_model",
    "scores",
    "you divided Q K^T by the square root of a whole model's width (sqrt(512) or sqrt(768)) instead of "
    "sqrt(d_k) of the Q and K you were given: the scale is per head, d_k = Q.shape[-1]",
)
def _scale_by_d_model(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for width in _MODEL_WIDTHS:
        yield _qk(Q, K) / math.sqrt(width)


@_mistake(
    "hardcoded_scale",
    "scores",
    "your scale is a fixed number from the worked example (8 = sqrt(64), or 64) rather than computed from "
    "the input, so it is only right when d_k = 64: use math.sqrt(Q.shape[-1])",
)
def _hardcoded_scale(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    for constant in (math.sqrt(EXAMPLE_D), EXAMPLE_D):
        yield _qk(Q, K) / constant


@_mistake(
    "transposed_scores",
    "scores",
    "your scores are K Q^T, with the keys on the rows: row i must hold query i's score for every key, "
    "so compute Q @ K.transpose(-2, -1)",
)
def _transposed_scores(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield _qk(K, Q) / math.sqrt(Q.shape[-1])


@_mistake(
    "missing_transpose",
    "scores",
    "you computed Q @ K without transposing K; it only ran because K happens to be square: use "
    "Q @ K.transpose(-2, -1) (not K.T, which reverses every axis of a batched tensor)",
)
def _missing_transpose(Q: Tensor, K: Tensor) -> Iterator[Tensor]:
    yield Q @ K / math.sqrt(Q.shape[-1])


# ---------------------------------------------------------------- 3 softmax: (scores, mask) -> [..., seq_q, seq_k]


@_mistake(
    "softmax_wrong_axis",
    "softmax",
    "your softmax normalises over the wrong axis (dim=-2, or dim=1 of a batched tensor), so columns instead "
    "of each query's row sum to 1: use dim=-1, the key axis",
)
def _softmax_wrong_axis(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for dim in range(-2, -scores.ndim - 1, -1):
        yield from _softmax_variants(scores, mask, dim)


@_mistake(
    "mask_ignored",
    "softmax",
    "you ignored the mask, so blocked positions still get weight: fill the scores where mask is False with "
    "-inf before the softmax, e.g. scores.masked_fill(~mask, float('-inf'))",
)
def _mask_ignored(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield _serial_softmax(scores)


@_mistake(
    "mask_inverted",
    "softmax",
    "you blocked the positions where the mask is True, but True means 'may attend': block where it is "
    "False, e.g. scores.masked_fill(~mask, float('-inf'))",
)
def _mask_inverted(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        yield from _softmax_variants(scores, ~mask)


@_mistake(
    "mask_after_softmax",
    "softmax",
    "you zeroed the blocked weights after the softmax, so the rows no longer sum to 1: block the scores "
    "with -inf before the softmax instead",
)
def _mask_after_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        yield _serial_softmax(scores).masked_fill(~mask, 0.0)


@_mistake(
    "multiplicative_mask",
    "softmax",
    "you multiplied the scores by the mask, which makes blocked scores 0 rather than -inf, and exp(0) = 1 "
    "still gives them weight: use scores.masked_fill(~mask, float('-inf')) before the softmax",
)
def _multiplicative_mask(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    if mask is not None:
        yield _serial_softmax(scores * mask)


@_mistake(
    "unstable_softmax",
    "softmax",
    "your softmax takes exp(scores) directly, which overflows to inf and gives NaN for large scores: "
    "subtract each row's maximum first (the result is mathematically the same) or call torch.softmax",
)
def _unstable_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    exp = torch.exp(_blocked(scores, mask, float("-inf")))
    yield exp / exp.sum(-1, keepdim=True)


@_mistake(
    "no_normalisation",
    "softmax",
    "you returned exp(scores) without dividing by the row sum, so the weights do not sum to 1: divide by "
    "the sum over the last axis (keepdim=True), or call torch.softmax(scores, dim=-1)",
)
def _no_normalisation(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    yield torch.exp(_blocked(scores, mask, float("-inf")))


@_mistake(
    "log_softmax",
    "softmax",
    "you returned log-probabilities (log_softmax), but attention weights are probabilities that sum to 1: "
    "use torch.softmax(scores, dim=-1)",
)
def _log_softmax(scores: Tensor, mask: Optional[Tensor]) -> Iterator[Tensor]:
    for fill in (float("-inf"), _LARGE_NEGATIVE):
        yield _serial_log_softmax(_blocked(scores, mask, fill))


# ---------------------------------------------------------------- 4 values: (weights, V) -> [..., seq_q, d_v]


@_mistake(
    "transposed_weights",
    "values",
    "you multiplied the transposed weights with V: output i is the sum over keys j of weights[i, j] * V[j], "
    "which is weights @ V with no transpose",
)
def _transposed_weights(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield weights.transpose(-2, -1) @ V


@_mistake(
    "wrong_matmul_order",
    "values",
    "you computed V @ weights, but matrix products do not commute: attended = weights @ V, "
    "[..., seq_q, seq_k] @ [..., seq_k, d_v]",
)
def _wrong_matmul_order(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield V @ weights


@_mistake(
    "elementwise_product",
    "values",
    "you multiplied weights * V entry by entry; attention needs a matrix product that sums over the keys: "
    "weights @ V",
)
def _elementwise_product(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield weights * V


@_mistake(
    "summed_wrong_axis",
    "values",
    "you multiplied each weight with its value vector but summed over the queries instead of the keys: "
    "attended[i] = sum over keys j of weights[i, j] * V[j], i.e. weights @ V",
)
def _summed_wrong_axis(weights: Tensor, V: Tensor) -> Iterator[Tensor]:
    yield (weights.unsqueeze(-1) * V.unsqueeze(-3)).sum(-3)


# ---------------------------------------------------------------- composed: (Q, K, V, mask) -> (attended, weights)


@_mistake(
    "returns_scores_not_weights",
    "attention",
    "the second output of your scaled_dot_product_attention is the scores, not the softmax weights: "
    "return (attended, weights) with the weights you multiplied V by",
)
def _returns_scores_not_weights(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    scores, _, attended = _attention(Q, K, V, mask)
    for fill in (float("-inf"), _LARGE_NEGATIVE):
        yield attended, _blocked(scores, mask, fill)
    yield attended, scores


@_mistake(
    "outputs_swapped",
    "attention",
    "you returned (weights, attended), but the contract is (attended, weights): swap the two outputs",
)
def _outputs_swapped(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    _, weights, attended = _attention(Q, K, V, mask)
    yield weights, attended


@_mistake(
    "weights_transposed",
    "attention",
    "your attended output is right but the weights you return are transposed ([seq_k, seq_q]): return the "
    "weights exactly as you multiplied V by them, one row per query",
)
def _weights_transposed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
    _, weights, attended = _attention(Q, K, V, mask)
    yield attended, weights.transpose(-2, -1)


def _through_scores(rule: Rule) -> Rule:
    """A scores rule as a composed rule: its scores go through the right softmax and values."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        for scores in rule(Q=Q, K=K):
            weights = _serial_softmax(_blocked(scores, mask, float("-inf")))
            yield weights @ V, weights

    return composed


def _through_softmax(rule: Rule) -> Rule:
    """A softmax rule as a composed rule: on the right scores, then through the right values."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        scores, _, _ = _attention(Q, K, V, mask)
        for weights in rule(scores=scores, mask=mask):
            yield weights @ V, weights

    return composed


def _through_values(rule: Rule) -> Rule:
    """A values rule as a composed rule: applied to the right weights, which are returned alongside."""

    def composed(Q: Tensor, K: Tensor, V: Tensor, mask: Optional[Tensor]) -> Iterator[Output]:
        _, weights, _ = _attention(Q, K, V, mask)
        for attended in rule(weights=weights, V=V):
            yield attended, weights

    return composed


_LIFTS: Dict[str, Callable[[Rule], Rule]] = {
    "attention_scores": _through_scores,
    "attention_weights": _through_softmax,
    "aggregate_values": _through_values,
}
# what diagnose tries, per function: the composed function's own rules, then every section rule lifted
_CANDIDATE_RULES: Dict[str, List[Tuple[Mistake, Rule]]] = {
    **_RULES,
    ATTENTION: _RULES[ATTENTION]
    + [(mistake, _LIFTS[function](rule)) for function in COMPOSED_FROM for mistake, rule in _RULES[function]],
}

# ---------------------------------------------------------------- gradient mistakes: found by the gradient check

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

# the catalogue, in contract section order, each section's mistakes in the order diagnose tries them
MISTAKES: Tuple[Mistake, ...] = tuple(m for rules in _RULES.values() for m, _ in rules) + GRADIENT_MISTAKES
_BY_ID: Dict[str, Mistake] = {m.id: m for m in MISTAKES}


def mistake(id: str) -> Mistake:
    """The catalogue entry with this id (KeyError names the known ids when there is none)."""
    try:
        return _BY_ID[id]
    except KeyError:
        raise KeyError(f"no mistake {id!r} in the catalogue; known: {', '.join(_BY_ID)}") from None


# ---------------------------------------------------------------- diagnose


def diagnose(function: str, args: tuple, kwargs: dict, student_output: object) -> Optional[Mistake]:
    """The first catalogued mistake of `function` whose output on these inputs matches the student's.

    function: a contract function name; args/kwargs: trusted copies of the inputs the student was given;
    student_output: what the student returned (a Tensor, or a tuple of Tensors for linear_projections and
    scaled_dot_product_attention). None when the output is right, matches no known mistake, or is not
    something we can compare (wrong type, arity or dtype kind): diagnose never raises.
    """
    try:
        return _diagnose(function, args, kwargs, student_output)
    except Exception:  # a diagnosis is a bonus on top of the grade: an odd output must never break grading
        return None


def _diagnose(function: str, args: tuple, kwargs: dict, student_output: object) -> Optional[Mistake]:
    student = _student_tensors(student_output, RETURN_ARITY[function])
    if student is None:
        return None
    with torch.no_grad():
        inputs = _bind(function, args, kwargs)
        reference = _as_tuple(getattr(ref, function)(**inputs))
        rows = _graded_rows(inputs.get("mask"), reference)
        if _close(student, reference, rows):
            return None
        for candidate_mistake, rule in _CANDIDATE_RULES[function]:
            for candidate in map(_as_tuple, _candidates(rule, inputs)):
                if _close(student, candidate, rows) and not _close(candidate, reference, rows):
                    return candidate_mistake
    return None


def diagnose_error(function: str, args: tuple, kwargs: dict, error_type: str, error_text: str) -> Optional[Mistake]:
    """The catalogued mistake of `function` that raises what the student's code raised on these inputs (same
    exception type, same message): Q @ K runs only for square K, V @ weights only when d_v equals seq_q.
    None when none or several different mistakes match (Q @ K and V @ weights raise alike on the example
    shapes: an error names a mistake only when it is unambiguous); never raises."""
    matches: Dict[str, Mistake] = {}
    try:
        inputs = _bind(function, args, kwargs)
        with torch.no_grad():
            for candidate_mistake, rule in _CANDIDATE_RULES[function]:
                try:
                    for _ in rule(**inputs):
                        pass
                except Exception as exc:  # noqa: BLE001 - the error is what is compared
                    if type(exc).__name__ == error_type and error_text == clip(str(exc), ERROR_TEXT):
                        matches[candidate_mistake.id] = candidate_mistake
    except Exception:  # noqa: BLE001 - a bonus on top of the grade, as in diagnose
        return None
    return next(iter(matches.values())) if len(matches) == 1 else None


def gradient_mistake(source: str) -> Mistake:
    """Which gradient mistake a submission whose output carries no gradient made: a NumPy round trip when
    its source uses NumPy, otherwise a detached output (.detach(), .data, no_grad, rebuilt tensors)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _BY_ID["detached_output"]
    uses_numpy = any(
        (isinstance(node, (ast.Import, ast.ImportFrom))
         and any((alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0] == "numpy"
                 for alias in node.names))
        or (isinstance(node, ast.Attribute) and node.attr in ("numpy", "from_numpy"))
        for node in ast.walk(tree))
    return _BY_ID["numpy_round_trip" if uses_numpy else "detached_output"]


def _student_tensors(output: object, arity: int) -> Optional[Tuple[Tensor, ...]]:
    """The student's output as a tuple of `arity` floating-point tensors, or None when it is not that."""
    parts = (output,) if arity == 1 else output
    if not isinstance(parts, (tuple, list)) or len(parts) != arity:
        return None
    if not all(isinstance(part, Tensor) and part.is_floating_point() for part in parts):
        return None
    return tuple(parts)


def _as_tuple(output: Output) -> Tuple[Tensor, ...]:
    """One of our own outputs (reference or candidate) as a tuple of tensors."""
    return output if isinstance(output, tuple) else (output,)


def _bind(function: str, args: tuple, kwargs: dict) -> Dict[str, object]:
    """The inputs by contract parameter name, defaults applied, a mask as bool (True = may attend)."""
    bound = inspect.signature(getattr(ref, function)).bind(*args, **kwargs)
    bound.apply_defaults()
    inputs = dict(bound.arguments)
    if inputs.get("mask") is not None:
        inputs["mask"] = inputs["mask"].to(torch.bool)
    return inputs


def _graded_rows(mask: Optional[Tensor], reference: Tuple[Tensor, ...]) -> Optional[Tensor]:
    """`[..., seq_q, 1]` bool, True for the query rows that allow some key (the graded ones); None = all."""
    if mask is None:
        return None
    weights = reference[-1]  # attention_weights' output, or scaled_dot_product_attention's second one
    return torch.broadcast_to(mask, weights.shape).any(-1, keepdim=True)


def _candidates(rule: Rule, inputs: Dict[str, object]) -> Iterator[Output]:
    """What the rule yields on these inputs; nothing from where it raises (a shape it cannot apply to)."""
    try:
        yield from rule(**inputs)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return


def _close(a: Tuple[Tensor, ...], b: Tuple[Tensor, ...], rows: Optional[Tensor]) -> bool:
    """Whether the outputs a and b match, tensor by tensor."""
    return len(a) == len(b) and all(_tensor_close(x, y, rows) for x, y in zip(a, b))


def _tensor_close(a: Tensor, b: Tensor, rows: Optional[Tensor]) -> bool:
    """Same shape and allclose (NaN and inf at the same places) on the graded rows `[..., seq_q, 1]`, with
    the tolerance of the coarser dtype."""
    if a.shape != b.shape:
        return False
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
