"""Module swap: a student's function as one whole module of a copy of a GPT-2-family model, and the
comparison with production that a capstone reports (`metrics.model`).

The `multihead` capstone swaps block L's attention module (GPT2Attention: projections, heads, mask,
output projection), the `block` capstone block L itself (GPT2Block). The copy shares every weight with
the model (`surgery.share_weights_copy`); only the target module's `forward` is replaced, on the copy's
instance, so the model and transformers' classes are never changed and forward hooks (transformers'
`output_attentions` recorder) still see the module's output. The student forward receives the module (to
read its weights), the hidden states `[B, S, d_model]` and the mask as bool `[B|1, 1, S, S]` (True = may
attend), and returns what the module returns (GPT2Attention: (out, weights); GPT2Block: hidden states).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from autograder.model import compare
from autograder.model.loading import model_identity
from autograder.model.metrics import cosine_per_row, emd_per_row, js_divergence, max_abs_diff
from autograder.model.surgery import ModelIntegrationError, share_weights_copy

StudentForward = Callable[[nn.Module, Tensor, Tensor], Any]


@dataclass
class Record:
    """What the swapped module did in the latest forward: `calls` so far, and exactly what it handed back
    to the model (`output`: hidden states, `weights`: attention weights or None), detached."""

    calls: int = 0
    output: Optional[Tensor] = None
    weights: Optional[Tensor] = None
    mask: Optional[Tensor] = None


def gpt2_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a GPT-2-family model (`transformer.h`)."""
    blocks = getattr(getattr(model, "base_model", model), "h", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ModelIntegrationError(f"{type(model).__name__} is not a GPT-2-family model (no transformer.h blocks)")
    return blocks


def bool_mask(attention_mask: Optional[Tensor], hidden: Tensor) -> Tensor:
    """The module's mask as bool `[B|1, 1, S, S]`, True = may attend: eager's additive float mask (0 = attend,
    the dtype's minimum = blocked), a bool mask as it is, and the causal mask when None arrives."""
    seq = hidden.shape[-2]
    if attention_mask is None:
        return torch.ones(seq, seq, dtype=torch.bool, device=hidden.device).tril()[None, None]
    mask = attention_mask[..., -seq:, -seq:]
    if mask.dtype != torch.bool:
        mask = mask > torch.finfo(mask.dtype).min / 2
    return mask


def swap_module(model: nn.Module, layer_idx: int, target: str, student: StudentForward,
                who: str) -> Tuple[nn.Module, Record]:
    """A copy of `model` whose block `layer_idx` (target "block") or its attention (target "attn") runs
    `student`; `who` names the student's function in error messages."""
    copy = share_weights_copy(model)
    blocks = gpt2_blocks(copy)
    if not -len(blocks) <= layer_idx < len(blocks):
        raise IndexError(f"layer {layer_idx} is out of range: the model has {len(blocks)} blocks")
    module = blocks[layer_idx] if target == "block" else blocks[layer_idx].attn
    record = Record()

    def forward(hidden_states: Tensor, *args: Any, attention_mask: Optional[Tensor] = None, **kwargs: Any) -> Any:
        mask = bool_mask(attention_mask, hidden_states)
        try:
            result = student(module, hidden_states, mask)
        except ModelIntegrationError:
            raise
        except Exception as error:
            raise ModelIntegrationError(f"{who} failed inside the model's block {layer_idx}: "
                                        f"{type(error).__name__}: {error}") from error
        record.calls += 1
        record.mask = mask
        out, weights = result if isinstance(result, tuple) else (result, None)
        record.output = out.detach()
        record.weights = None if weights is None else weights.detach()
        return result

    module.forward = forward
    return copy, record


@dataclass
class SwapComparison:
    """Production vs the student's copy on one prompt; `to_dict()` is JSON-ready (the raw tensors at the end
    are for pictures only). `attention` is None when the swapped module returns no attention weights."""

    model_name: str
    revision: Optional[str]
    layer_idx: int
    replaced: str
    heads: int
    prompts: List[str]
    tokens: List[List[str]]
    token_ids: List[List[int]]
    student_ran: bool
    student_calls: int
    attention: Optional[Dict[str, Any]]
    block_output_max_abs_diff: float
    last_hidden_max_abs_diff: float
    logits_max_abs_diff: float
    next_token: Dict[str, Any]
    continuation: Optional[Dict[str, Any]]
    timing_s: Dict[str, float]
    reference_weights: Optional[Tensor] = field(repr=False, default=None)  # [B, H, S, S]
    student_weights: Optional[Tensor] = field(repr=False, default=None)
    padding_mask: Optional[Tensor] = field(repr=False, default=None)  # [B, S] bool, True = real token

    _RAW = ("reference_weights", "student_weights", "padding_mask")

    def to_dict(self) -> Dict[str, Any]:
        return compare._plain({f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._RAW})


def _forward(model: nn.Module, ids: Tensor, mask: Tensor, weights: bool) -> Tuple[Any, float]:
    start = time.perf_counter()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=weights, output_hidden_states=True,
                    use_cache=False)
    return out, time.perf_counter() - start


def compare_swap(model: nn.Module, tokenizer: Any, student_model: nn.Module, record: Record, prompt: str,
                 layer_idx: int, replaced: str, continuation_tokens: int = 5) -> SwapComparison:
    """Run `model` and the student's copy (from `swap_module`) on `prompt` and measure the gap: block
    `layer_idx`'s output, the last hidden state, the logits, the next token, a greedy continuation, and the
    attention weights when the swapped module returns them. Raises ModelIntegrationError when the student's
    code fails inside the model."""
    ids, real = compare._encode(tokenizer, prompt, model.device)
    weights = replaced == "attention module"
    ref, ref_s = compare.production(model, ("swap forward", str(ids.tolist()), str(real.tolist()), weights),
                                    lambda: _forward(model, ids, real, weights))
    calls_before = record.calls
    stu, stu_s = _forward(student_model, ids, real, weights)
    calls, seen_mask = record.calls - calls_before, record.mask  # before the continuation's forwards
    produced = stu.hidden_states[layer_idx + 1] if not weights else None
    ran = calls == 1 and (torch.equal(stu.attentions[layer_idx], record.weights) if weights
                          else torch.equal(produced, record.output))  # also before the continuation
    run = {"input_ids": ids.cpu(), "attention_mask": real.cpu(), "reference_logits": ref.logits.cpu(),
           "student_logits": stu.logits.cpu()}
    continuation = (compare._continuation(model, student_model, run, continuation_tokens, tokenizer.decode)
                    if continuation_tokens > 0 else None)
    rows = real.bool()[..., None]
    attention, ref_w, stu_w = None, None, None
    if weights:
        ref_w, stu_w = ref.attentions[layer_idx].cpu(), stu.attentions[layer_idx].cpu()  # [B, H, S, S]
        visible = torch.broadcast_to(seen_mask.cpu(), ref_w.shape).sum(-1).amin(1)  # [B, S]
        graded = real.bool().cpu() & (visible >= 2)  # a row that sees one key is trivially right
        attention = {
            "cosine": compare._row_summary(cosine_per_row(stu_w, ref_w), graded, "min"),
            "emd": compare._row_summary(emd_per_row(stu_w, ref_w), graded, "max"),
            "js": compare._row_summary(js_divergence(stu_w, ref_w), graded, "max"),
            "max_abs_diff": max_abs_diff(ref_w, stu_w, real.bool().cpu()[:, None, :, None]),
        }
    name, revision = model_identity(model)
    return SwapComparison(
        model_name=name, revision=revision, layer_idx=layer_idx, replaced=replaced,
        heads=int(model.config.n_head), prompts=[prompt],
        tokens=[[tokenizer.decode([t]) for t in row] for row in ids.tolist()], token_ids=ids.tolist(),
        student_ran=bool(ran), student_calls=calls, attention=attention,
        block_output_max_abs_diff=max_abs_diff(ref.hidden_states[layer_idx + 1], stu.hidden_states[layer_idx + 1],
                                               rows),
        last_hidden_max_abs_diff=max_abs_diff(ref.hidden_states[-1], stu.hidden_states[-1], rows),
        logits_max_abs_diff=max_abs_diff(ref.logits, stu.logits, rows),
        next_token=compare._next_token(run, tokenizer.decode), continuation=continuation,
        timing_s={"reference": ref_s, "student": stu_s, "ratio": stu_s / ref_s if ref_s > 0 else float("nan")},
        reference_weights=ref_w, student_weights=stu_w, padding_mask=real.bool().cpu(),
    )


def gradients(model: nn.Module, ids: Tensor, params: List[nn.Parameter]) -> List[Optional[Tensor]]:
    """Gradients for `params` of the base model's last hidden state along one fixed random direction."""
    value = model.base_model(input_ids=ids, use_cache=False).last_hidden_state.float()
    direction = torch.randn(value.shape, generator=torch.Generator().manual_seed(0)).to(value.device)
    return list(torch.autograd.grad((value * direction).sum(), params, allow_unused=True))
