"""Running the production model and its student copy side by side: weights, logits, continuation, metrics.

`compare_attention_implementations` is what the model section reports (`metrics.model`) and grades.
"""
from __future__ import annotations

import math
import sys
import time
import weakref
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from autograder.model.loading import model_identity
from autograder.model.metrics import (
    cosine_per_row,
    emd_per_row,
    js_divergence,
    kl_from_logits,
    max_abs_diff,
    topk_agreement,
)
from autograder.model.surgery import (
    ModelIntegrationError,
    StudentAttention,
    StudentProjections,
    attention_modules,
    extract_attention_layer,
    head_layout,
    injection_of,
    replace_attention_mechanism,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Prompt = Union[str, Sequence[str], Mapping[str, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------------
# running both models


def _encode(tokenizer: Optional[PreTrainedTokenizerBase], prompt: Prompt,
            device: torch.device) -> Tuple[Tensor, Tensor]:
    """input_ids and attention_mask `[B, S]` for a prompt, a list of prompts (padded on the tokenizer's
    padding side) or already encoded inputs (a mapping with input_ids, or an input_ids tensor)."""
    if isinstance(prompt, (Mapping, Tensor)):
        ids = torch.as_tensor(prompt["input_ids"] if isinstance(prompt, Mapping) else prompt)
        mask = prompt.get("attention_mask") if isinstance(prompt, Mapping) else None
        ids = ids[None] if ids.dim() == 1 else ids
        mask = torch.ones_like(ids) if mask is None else torch.as_tensor(mask).reshape(ids.shape)
        return ids.to(device), mask.to(device)
    if tokenizer is None:
        raise TypeError("a text prompt needs the tokenizer: pass tokenizer=... or encoded input_ids")
    rows = [tokenizer(text)["input_ids"] for text in ([prompt] if isinstance(prompt, str) else prompt)]
    width = max(len(r) for r in rows)
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    left = tokenizer.padding_side == "left"
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span], mask[i, span] = torch.tensor(row, dtype=torch.long), 1
    return ids.to(device), mask.to(device)


def _peak_memory_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory_bytes(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak RSS (monotonic, whole process)."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)


def _forward(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor) -> Tuple[Any, float, float]:
    """(outputs with attentions and hidden states, seconds, peak memory bytes) of one no-grad forward."""
    device = input_ids.device
    _peak_memory_reset(device)
    start = time.perf_counter()
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True,
                    output_hidden_states=True, use_cache=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    expected = len(attention_modules(model))
    recorded = 0 if out.attentions is None else len(out.attentions)
    if recorded != expected:
        raise ModelIntegrationError(
            f"the model recorded {recorded} of {expected} attention maps: load it with attn_implementation='eager'"
        )
    return out, seconds, _peak_memory_bytes(device)


def _last_real_index(attention_mask: Tensor) -> Tensor:
    """`[B]` index of each row's last real token (works for left and right padding)."""
    width = attention_mask.shape[-1]
    return width - 1 - attention_mask.flip(-1).argmax(-1)


def extract_attention_weights(model: PreTrainedModel, input_ids: Tensor, layer_idx: int = 0,
                              attention_mask: Optional[Tensor] = None) -> Tensor:
    """Attention weights `[B, H, S, S]` of block `layer_idx` for input_ids `[B, S]` (or `[S]`), no grad."""
    ids = (input_ids[None] if input_ids.dim() == 1 else input_ids).to(model.device)
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask.reshape(ids.shape).to(ids.device)
    out, _, _ = _forward(model, ids, mask)
    return out.attentions[layer_idx]


_REFERENCE_KEYS = ("reference_weights", "reference_block_output", "reference_last_hidden", "reference_logits",
                   "reference_seconds", "reference_peak_bytes")


# What the untouched model computes never depends on the submission: per model, its forwards and greedy
# continuations are kept for the process, so repeated grades (batch grading's and watch's children, forked
# from a warm-up that graded the reference) run the student's model only. The model's weights are never
# changed (the surgery works on a copy of one block).
_PRODUCTION: "weakref.WeakKeyDictionary[PreTrainedModel, Dict[Tuple[Any, ...], Any]]" = weakref.WeakKeyDictionary()


def production(model: PreTrainedModel, key: Tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """`compute()` for the untouched `model`, once per process and key (the key names what is computed and
    on which input: a forward, a greedy continuation, the gradients of a block's weights)."""
    known = _PRODUCTION.setdefault(model, {})
    if key not in known:
        known[key] = compute()
    return known[key]


def _reference_part(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor, layer_idx: int,
                    reference: Optional[Mapping[str, Tensor]]) -> Dict[str, Tensor]:
    """The reference_* tensors: taken from `reference` when it ran on the same input and block, else one forward
    (once per process for a model, input and block)."""
    if (reference is not None and "layer_idx" in reference and int(reference["layer_idx"]) == layer_idx
            and torch.equal(reference["input_ids"], input_ids.cpu())
            and torch.equal(reference["attention_mask"], attention_mask.cpu())):
        return {k: reference[k].to(input_ids.device) for k in _REFERENCE_KEYS if k in reference}
    key = ("forward", layer_idx, str(input_ids.tolist()), str(attention_mask.tolist()))
    return dict(production(model, key, lambda: _reference_forward(model, input_ids, attention_mask, layer_idx)))


def _reference_forward(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor,
                       layer_idx: int) -> Dict[str, Tensor]:
    ref, seconds, peak = _forward(model, input_ids, attention_mask)
    part = {
        "reference_weights": ref.attentions[layer_idx],
        "reference_block_output": ref.hidden_states[layer_idx + 1],
        "reference_last_hidden": ref.hidden_states[-1],
        "reference_seconds": torch.tensor(seconds, dtype=torch.float64),
        "reference_peak_bytes": torch.tensor(peak, dtype=torch.float64),
    }
    if getattr(ref, "logits", None) is not None:
        part["reference_logits"] = ref.logits
    return part


def run_inference_comparison(model: PreTrainedModel, student_model: PreTrainedModel, prompt: Prompt,
                             tokenizer: Optional[PreTrainedTokenizerBase] = None,
                             reference: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
    """One forward of each model on the same input; every tensor comes back on the CPU.

    prompt: text (needs `tokenizer`), a list of texts (a padded batch) or encoded inputs.
    reference: the result of an earlier call with `model` on the same input and block; its reference_*
    tensors are reused instead of running `model` again (ignored when the input or block differs). Keys:
      input_ids, attention_mask          [B, S]     (attention_mask 1 = real token)
      layer_idx                          0-d: the block that runs the student's attention
      reference_weights, student_weights [B, H, S, S] at the student's block
      reference_block_output, student_block_output   [B, S, d_model] (that block's output)
      reference_last_hidden, student_last_hidden     [B, S, d_model]
      reference_logits, student_logits   [B, S, V]  (causal LMs only)
      reference_next_token_probs, student_next_token_probs [B, V] at each prompt's last real token (causal LMs)
      compared_rows [B, S] bool: real query rows that saw at least one key (unmasked rows excluded)
      graded_rows   [B, S] bool: compared rows that saw at least two keys (row 0 of a causal map is trivial)
      student_calls, student_ran: calls during the student forward, and whether exactly one call happened
        and the recorded weights are exactly what the student returned
      reference_seconds, student_seconds, reference_peak_bytes, student_peak_bytes (0-d float64)
    """
    layer_idx, injection = injection_of(student_model)
    input_ids, attention_mask = _encode(tokenizer, prompt, model.device)
    result: Dict[str, Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask,
                                 "layer_idx": torch.tensor(layer_idx)}
    result.update(_reference_part(model, input_ids, attention_mask, layer_idx, reference))
    calls_before = injection.calls
    stu, stu_seconds, stu_peak = _forward(student_model, input_ids, attention_mask)
    calls = injection.calls - calls_before
    recorded = stu.attentions[layer_idx]
    ran = calls == 1 and injection.last_weights is not None and torch.equal(recorded, injection.last_weights)

    real = attention_mask.bool()
    batch, seq = real.shape
    mask = injection.last_mask
    visible = (torch.full((batch, seq), seq, device=real.device) if mask is None
               else mask.expand(batch, -1, seq, -1).sum(-1).amax(1))
    compared = real & ~injection.unmasked_rows.to(real.device)

    result.update({
        "student_weights": recorded,
        "student_block_output": stu.hidden_states[layer_idx + 1],
        "student_last_hidden": stu.hidden_states[-1],
        "compared_rows": compared,
        "graded_rows": compared & (visible >= 2),
        "student_calls": torch.tensor(calls),
        "student_ran": torch.tensor(ran),
        "student_seconds": torch.tensor(stu_seconds, dtype=torch.float64),
        "student_peak_bytes": torch.tensor(stu_peak, dtype=torch.float64),
    })
    if "reference_logits" in result:
        last = _last_real_index(attention_mask)
        rows = torch.arange(batch, device=last.device)
        result["student_logits"] = stu.logits
        result["reference_next_token_probs"] = result["reference_logits"][rows, last].softmax(-1)
        result["student_next_token_probs"] = stu.logits[rows, last].softmax(-1)
    return {name: tensor.detach().cpu() for name, tensor in result.items()}


# ----------------------------------------------------------------------------------------------------
# the comparison the report shows


@dataclass
class ModelComparison:
    """Production vs student model on one prompt (or a padded batch); `to_dict()` is JSON-ready.

    Per-row attention metrics are `[B][H][S]` lists with None for rows not graded (padding, unmasked
    rows, rows with a single visible key). The raw tensors at the end are for pictures only.
    """

    model_name: str
    revision: Optional[str]
    layer_idx: int
    heads: int
    head_dim: int
    mode: str
    prompts: List[str]
    tokens: List[List[str]]
    token_ids: List[List[int]]
    student_ran: bool
    student_calls: int
    graded_rows: int
    attention: Dict[str, Any]
    block_output_max_abs_diff: float
    last_hidden_max_abs_diff: float
    logits_max_abs_diff: Optional[float]
    next_token: Optional[Dict[str, Any]]
    continuation: Optional[Dict[str, Any]]
    timing_s: Dict[str, float]
    peak_memory_mb: Dict[str, Any]
    reference_weights: Tensor = field(repr=False)  # [B, H, S, S]
    student_weights: Tensor = field(repr=False)  # [B, H, S, S]
    padding_mask: Tensor = field(repr=False)  # [B, S] bool, True = real token
    graded_mask: Tensor = field(repr=False)  # [B, S] bool
    reference_run: Dict[str, Tensor] = field(repr=False, default_factory=dict)  # production's forward, for reuse

    _RAW = ("reference_weights", "student_weights", "padding_mask", "graded_mask", "reference_run")

    def to_dict(self) -> Dict[str, Any]:
        return _plain({f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._RAW})


def _plain(value: Any) -> Any:
    """Plain JSON values: NaN and inf become None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row_summary(values: Tensor, graded: Tensor, worst: str) -> Dict[str, Any]:
    """values `[B, H, S]` and graded rows `[B, S]` -> mean, worst (min or max), per-head means `[H]` and
    per-row values `[B][H][S]` (None = not graded)."""
    graded = graded[:, None, :].expand_as(values)
    kept = values.masked_fill(~graded, math.nan)
    if not graded.any():
        return {"mean": None, worst: None, "per_head": [None] * values.shape[1], "per_row": kept.tolist()}
    picked = values[graded]
    return {
        "mean": float(picked.mean()),
        worst: float(picked.min() if worst == "min" else picked.max()),
        "per_head": kept.nanmean(dim=(0, 2)).tolist(),
        "per_row": kept.tolist(),
    }


def _greedy(model: PreTrainedModel, ids: Tensor, steps: int, known: Sequence[int] = ()) -> List[int]:
    """`steps` greedy next tokens after ids `[1, S]` (no KV cache, so the student sees whole sequences).

    known: the first of them when already computed (the comparison's forward on the same ids gave one).
    """
    new = list(known)[:steps]
    ids = torch.cat([ids, torch.tensor([new], dtype=ids.dtype, device=ids.device)], dim=1) if new else ids
    with torch.no_grad():
        for _ in range(steps - len(new)):
            token = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1].argmax(-1)
            new.append(int(token))
            ids = torch.cat([ids, token[:, None]], dim=1)
    return new


def _continuation(model: PreTrainedModel, student_model: PreTrainedModel, run: Dict[str, Tensor],
                  steps: int, decode: Callable[[List[int]], str]) -> Dict[str, Any]:
    """Greedy continuation of the first prompt (padding dropped) under both models.

    When that prompt has no padding, the comparison's forward already gave both first tokens: the
    continuation then costs steps - 1 forwards per model.
    """
    real = run["attention_mask"][0].bool()
    first = run["input_ids"][0][real][None].to(model.device)  # [1, S_real]
    def known(logits: Tensor) -> List[int]:
        return [int(logits[0, -1].argmax())] if bool(real.all()) else []

    ref_ids = list(production(model, ("greedy", tuple(first[0].tolist()), steps),
                               lambda: _greedy(model, first, steps, known(run["reference_logits"]))))
    stu_ids = _greedy(student_model, first, steps, known(run["student_logits"]))
    return {"reference": decode(ref_ids), "student": decode(stu_ids),
            "reference_ids": ref_ids, "student_ids": stu_ids, "match": ref_ids == stu_ids}


def _next_token(run: Dict[str, Tensor], decode: Callable[[List[int]], str]) -> Dict[str, Any]:
    """KL, top-1/top-5 agreement and both top-5 lists at each prompt's last real token (a list per key)."""
    last = _last_real_index(run["attention_mask"])
    rows = torch.arange(len(last))
    ref, stu = run["reference_logits"][rows, last], run["student_logits"][rows, last]  # [B, V]
    return {
        "kl": kl_from_logits(ref, stu).tolist(),
        "top1_agreement": topk_agreement(ref, stu, 1).tolist(),
        "top5_agreement": topk_agreement(ref, stu, 5).tolist(),
        "reference_top5": [[decode([i]) for i in row] for row in ref.topk(5).indices.tolist()],
        "student_top5": [[decode([i]) for i in row] for row in stu.topk(5).indices.tolist()],
    }


def compare_attention_implementations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    student_attention: StudentAttention,
    prompt: Prompt = "The cat sat on the mat",
    layer_idx: int = 0,
    route_projections: Optional[StudentProjections] = None,
    continuation_tokens: int = 5,
    reference: Optional["ModelComparison"] = None,
) -> ModelComparison:
    """Run `model` untouched and with the student's attention in block `layer_idx`, and measure the gap.

    prompt: text, a list of texts (a padded batch: the only way a padding mask gets tested) or encoded
    inputs. The student model shares `model`'s weights and is dropped before returning. For causal LMs
    it also compares next-token distributions and a greedy continuation of the first prompt.
    reference: an earlier comparison of `model` on the same prompt and block (e.g. attention-only mode
    before projections mode): its production forward is reused instead of run again.
    Raises ModelIntegrationError when the student's code fails inside the model.
    """
    decode = tokenizer.decode
    student_model = replace_attention_mechanism(model, student_attention, layer_idx, route_projections)
    try:
        run = run_inference_comparison(model, student_model, prompt, tokenizer,
                                       reference=None if reference is None else reference.reference_run)
        causal = "reference_logits" in run
        continuation = (_continuation(model, student_model, run, continuation_tokens, decode)
                        if causal and continuation_tokens > 0 else None)
    finally:
        # The student model holds no reference cycles, so `del` frees it at once (gc.collect() would add
        # ~0.2 s, two thirds of a comparison, for nothing).
        del student_model
        if model.device.type == "cuda":
            torch.cuda.empty_cache()

    heads, head_dim = head_layout(extract_attention_layer(model, layer_idx))
    ref_w, stu_w = run["reference_weights"], run["student_weights"]  # [B, H, S, S]
    graded, compared = run["graded_rows"], run["compared_rows"]  # [B, S]
    real = run["attention_mask"].bool()
    token_ids = run["input_ids"].tolist()
    if isinstance(prompt, str) or (isinstance(prompt, Sequence) and all(isinstance(p, str) for p in prompt)):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    else:
        prompts = [decode([t for t, keep in zip(ids, row) if keep]) for ids, row in zip(token_ids, real.tolist())]
    name, revision = model_identity(model)
    ref_s, stu_s = float(run["reference_seconds"]), float(run["student_seconds"])
    on_cuda = model.device.type == "cuda"

    def rows_diff(reference: Tensor, student: Tensor) -> float:  # [B, S, ...] over compared rows
        return max_abs_diff(reference, student, compared[..., None])

    return ModelComparison(
        model_name=name,
        revision=revision,
        layer_idx=layer_idx,
        heads=heads,
        head_dim=head_dim,
        mode="attention" if route_projections is None else "projections+attention",
        prompts=prompts,
        tokens=[[decode([t]) for t in ids] for ids in token_ids],
        token_ids=token_ids,
        student_ran=bool(run["student_ran"]),
        student_calls=int(run["student_calls"]),
        graded_rows=int(graded.sum()),
        attention={
            "cosine": _row_summary(cosine_per_row(stu_w, ref_w), graded, "min"),
            "emd": _row_summary(emd_per_row(stu_w, ref_w), graded, "max"),
            "js": _row_summary(js_divergence(stu_w, ref_w), graded, "max"),
            "max_abs_diff": max_abs_diff(ref_w, stu_w, compared[:, None, :, None]),
        },
        block_output_max_abs_diff=rows_diff(run["reference_block_output"], run["student_block_output"]),
        last_hidden_max_abs_diff=rows_diff(run["reference_last_hidden"], run["student_last_hidden"]),
        logits_max_abs_diff=rows_diff(run["reference_logits"], run["student_logits"]) if causal else None,
        next_token=_next_token(run, decode) if causal else None,
        continuation=continuation,
        timing_s={"reference": ref_s, "student": stu_s, "ratio": stu_s / ref_s if ref_s > 0 else math.nan},
        peak_memory_mb={
            "reference": float(run["reference_peak_bytes"]) / 2**20,
            "student": float(run["student_peak_bytes"]) / 2**20,
            "measure": ("torch.cuda.max_memory_allocated per forward" if on_cuda else
                        "process peak RSS after each forward (ru_maxrss; includes everything loaded before)"),
        },
        reference_weights=ref_w,
        student_weights=stu_w,
        padding_mask=real,
        graded_mask=graded,
        reference_run={k: v for k, v in run.items()
                       if k in ("input_ids", "attention_mask", "layer_idx", *_REFERENCE_KEYS)},
    )
