"""Model surgery: put a student's attention into one block of a copy of the model, never the original.

How the surgery works (transformers 5): GPT2Attention and BertSelfAttention look their kernel up by
name on every call (`ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, ...)`).
This module registers one kernel, `autograder_student`, and gives only the target attention module a
shallow copy of the config that names it; the other layers keep the model's "eager" config. The
module and its class stay the same, so `output_attentions=True` still records its weights. The kernel
finds the student's callable on the module itself, in an `Injection`.

A student attention is a callable `(Q, K, V, mask) -> (attended, weights)`. It is called once per
forward with all heads as leading dims: Q, K, V `[B, H, S_q|S_k, d]` (contiguous copies) and a bool
mask broadcastable to `[B, H, S_q, S_k]`, True = may attend (None = every key visible).
"""
from __future__ import annotations

import copy
import itertools
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from autograder.model.loading import model_identity

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# transformers is imported by the functions that need it (a model is loaded by then): a cold grade imports
# it in the background while the other checks run (`autograder.checks.model_section.preload`)

KERNEL_NAME = "autograder_student"
_STATE_ATTR = "_autograder_injection"

StudentAttention = Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tuple[Tensor, Tensor]]
StudentProjections = Callable[[Tensor, Tensor, Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]


class ModelIntegrationError(RuntimeError):
    """The student's code failed inside the model; the message says what went wrong in student terms."""



# ----------------------------------------------------------------------------------------------------
# finding the attention modules


def attention_modules(model: nn.Module) -> List[nn.Module]:
    """The modules whose weights `output_attentions` records, in call order (GPT2Attention, BertSelfAttention)."""
    spec = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    # each entry is a module class or an OutputRecorder(target_class, layer_name=".attn", ...)
    specs = spec if isinstance(spec, list) else [spec]
    targets = [(getattr(s, "target_class", s), getattr(s, "layer_name", None)) for s in specs]
    targets = [(cls, f".{layer.strip('.')}." if layer else ".") for cls, layer in targets if isinstance(cls, type)]
    return [module for name, module in model.named_modules()
            if any(isinstance(module, cls) and layer in f".{name}." for cls, layer in targets)]


def extract_attention_layer(model: nn.Module, layer_idx: int = 0) -> nn.Module:
    """The attention module of block `layer_idx` (GPT-2: `transformer.h[i].attn`; BERT: `...attention.self`)."""
    modules = attention_modules(model)
    if not modules:
        raise ModelIntegrationError(f"cannot find the attention layers of {type(model).__name__}")
    if not -len(modules) <= layer_idx < len(modules):
        raise IndexError(f"layer_idx {layer_idx} is out of range: the model has {len(modules)} attention layers")
    return modules[layer_idx]


def head_layout(module: nn.Module) -> Tuple[int, int]:
    """(number of heads, head dim) of an attention module."""
    heads = getattr(module, "num_heads", None) or getattr(module, "num_attention_heads", None)
    dim = getattr(module, "head_dim", None) or getattr(module, "attention_head_size", None)
    if not heads or not dim:
        raise ModelIntegrationError(f"cannot read the heads of {type(module).__name__}")
    return int(heads), int(dim)


def _projection_params(module: nn.Module) -> Tuple[Tensor, ...]:
    """(W_q, W_k, W_v) `[d_model, H * d]` laid out for `x @ W`, then their biases `[H * d]` (or None)."""
    from transformers.pytorch_utils import Conv1D

    c_attn = getattr(module, "c_attn", None)
    if isinstance(c_attn, Conv1D) and not getattr(module, "is_cross_attention", False):
        # GPT-2's Conv1D already computes x @ weight + bias, weight [d_model, 3 * d_model]
        d_model = c_attn.weight.shape[0]
        biases = c_attn.bias.split(d_model) if c_attn.bias is not None else (None,) * 3
        return (*c_attn.weight.split(d_model, dim=1), *biases)
    linears = [getattr(module, n, None) for n in ("query", "key", "value")]
    if all(isinstance(layer, nn.Linear) for layer in linears):
        # nn.Linear computes x @ weight.T + bias, weight [H * d, d_model]
        return (*(layer.weight.t() for layer in linears), *(layer.bias for layer in linears))
    raise ModelIntegrationError(f"route_projections needs GPT-2 or BERT attention, not {type(module).__name__}")


# ----------------------------------------------------------------------------------------------------
# surgery


def _shape(value: Any) -> str:
    if isinstance(value, Tensor):
        return str(list(value.shape))
    return "None" if value is None else type(value).__name__


class Injection:
    """A student attention attached to one attention module: runs it, checks what it returns, keeps a record.

    Record of the latest call: `calls` (total so far), `last_weights` `[B, H, S_q, S_k]` (detached, exactly
    what the kernel handed back to the model), `last_mask` (the bool mask the student got, or None) and
    `unmasked_rows` `[B, S_q]` (rows that saw no key, e.g. left padding, were opened to every key so no
    NaN can spread; never grade them).
    """

    def __init__(self, student_attention: StudentAttention, route_projections: Optional[StudentProjections],
                 model_label: str, layer_idx: int, is_causal: bool) -> None:
        self.student_attention = student_attention
        self.route_projections = route_projections
        self.model_label, self.layer_idx, self.is_causal = model_label, layer_idx, is_causal
        self.calls = 0
        self.last_weights: Optional[Tensor] = None
        self.last_mask: Optional[Tensor] = None
        self.unmasked_rows: Optional[Tensor] = None
        self.hidden_states: Optional[Tensor] = None  # the module's input x, captured in projections mode

    def where(self, heads: int, dim: int) -> str:
        return f"{self.model_label}'s block {self.layer_idx} ({heads} heads x {dim} dims)"

    def attend(self, module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
               attention_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """The kernel: q, k, v `[B, H, S, d]` -> (output `[B, S_q, H, d]`, weights `[B, H, S_q, S_k]`)."""
        batch, heads, seq_q, dim = query.shape
        seq_k, where = key.shape[-2], self.where(heads, query.shape[-1])
        mask = self._bool_mask(attention_mask, batch, seq_q, seq_k, query.device)
        if self.route_projections is None:
            q, k, v = (t.clone(memory_format=torch.contiguous_format) for t in (query, key, value))
        else:
            q, k, v = self._project(module, key, value, heads, dim, where)
        try:
            result = self.student_attention(q, k, v, mask)
        except Exception as error:
            raise ModelIntegrationError(
                f"{_describe(error, 'your attention')}\n"
                f"  inside {where}, called once for all heads with Q, K, V of shape {_shape(q)} "
                f"(batch, heads, seq, d) and a bool mask of shape {_shape(mask)} (True = may attend)"
            ) from error
        who = "your attention"
        attended, weights = _unpack(result, ("attended", "weights"), who, where)
        attended = _check(attended, "attended values", (batch, heads, seq_q, value.shape[-1]), who, where, query)
        weights = _check(weights, "weights", (batch, heads, seq_q, seq_k), who, where, query)
        self.calls += 1
        self.last_weights, self.last_mask = weights.detach(), mask
        return attended.transpose(1, 2), weights

    def _bool_mask(self, attention_mask: Optional[Tensor], batch: int, seq_q: int, seq_k: int,
                   device: torch.device) -> Optional[Tensor]:
        """The model's mask as bool `[B|1, 1, S_q, S_k]`, True = may attend; None when every key is visible."""
        if attention_mask is None:
            self.unmasked_rows = torch.zeros(batch, seq_q, dtype=torch.bool, device=device)
            if not self.is_causal:
                return None
            # sdpa-style callers pass None for a purely causal mask; query i sits at position S_k - S_q + i
            return torch.ones(seq_q, seq_k, dtype=torch.bool, device=device).tril(seq_k - seq_q)[None, None]
        mask = attention_mask[..., :seq_k]
        if mask.dtype != torch.bool:
            # eager masks are additive: 0 = attend, the dtype's minimum (or -inf) = masked
            mask = mask > torch.finfo(mask.dtype).min / 2
        empty = ~mask.any(-1, keepdim=True)  # [B, 1, S_q, 1]
        self.unmasked_rows = empty.squeeze(-1).any(1).expand(batch, seq_q)
        return mask | empty

    def _project(self, module: nn.Module, key: Tensor, value: Tensor, heads: int, dim: int,
                 where: str) -> Tuple[Tensor, Tensor, Tensor]:
        """Q, K, V `[B, H, S, d]` from the student's projections of the captured x, one head at a time."""
        x, self.hidden_states = self.hidden_states, None
        if x is None:
            raise ModelIntegrationError(f"no input was captured for {where}")
        *weights, b_q, b_k, b_v = _projection_params(module)
        per_head = []
        for head in range(heads):
            cols = slice(head * dim, (head + 1) * dim)
            w_q, w_k, w_v = (w[:, cols].clone(memory_format=torch.contiguous_format) for w in weights)
            try:
                result = self.route_projections(x.clone(), w_q, w_k, w_v)
            except Exception as error:
                raise ModelIntegrationError(
                    f"{_describe(error, 'your linear_projections')}\n"
                    f"  inside {where}, head {head}, with x of shape {_shape(x)} "
                    f"and W_q, W_k, W_v of shape {_shape(w_q)}"
                ) from error
            expected = (*x.shape[:-1], dim)
            projected = _unpack(result, ("Q", "K", "V"), "your linear_projections", where)
            projected = [_check(t, name, expected, "your linear_projections", where, x)
                         for t, name in zip(projected, ("Q", "K", "V"))]
            per_head.append([t if b is None else t + b[cols] for t, b in zip(projected, (b_q, b_k, b_v))])
        q, k, v = (torch.stack(ts, dim=1) for ts in zip(*per_head))  # [B, H, S_new, d]
        past = key.shape[-2] - k.shape[-2]
        if past > 0:  # with a KV cache the module already holds the earlier keys and values
            k, v = torch.cat([key[:, :, :past], k], dim=2), torch.cat([value[:, :, :past], v], dim=2)
        return q, k, v


def _describe(error: BaseException, who: str) -> str:
    """What the student's code did. The grader's own exceptions (SubmissionError, CheckFailed from the
    worker seam) already say it in student terms ("linear_projections raised RuntimeError: ... at line 8")
    and are used as they are; any other exception is the student's and is named: "your attention raised
    ValueError: ..."."""
    message = getattr(error, "message", None)
    if type(error).__module__.startswith("autograder.") and isinstance(message, str) and message:
        return message
    return f"{who} raised {type(error).__name__}: {error}"


def _unpack(result: Any, names: Tuple[str, ...], who: str, where: str) -> Tuple[Any, ...]:
    expected = f"a tuple ({', '.join(names)})"
    if not isinstance(result, (tuple, list)):
        kind = type(result).__name__
        raise ModelIntegrationError(f"{who} returned a {kind} inside {where}; expected {expected}")
    if len(result) != len(names):
        raise ModelIntegrationError(f"{who} returned {len(result)} values inside {where}; expected {expected}")
    return tuple(result)


def _check(value: Any, name: str, expected: Tuple[int, ...], who: str, where: str, like: Tensor) -> Tensor:
    """The student's tensor cast to `like`'s dtype and device, if it has the expected shape and is finite."""
    if not isinstance(value, Tensor):
        raise ModelIntegrationError(f"{who} returned {name} as a {type(value).__name__} inside {where}; "
                                    f"expected a torch.Tensor of shape {list(expected)}")
    if not value.is_floating_point():
        raise ModelIntegrationError(f"{who} returned {name} with dtype {value.dtype} inside {where}; "
                                    "expected floating point")
    if tuple(value.shape) != tuple(expected):
        raise ModelIntegrationError(
            f"{who} returned {name} of shape {list(value.shape)} inside {where}; expected {list(expected)}"
        )
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ModelIntegrationError(
            f"{who} returned {name} with {bad} NaN/inf entries (of {value.numel()}) inside {where}"
        )
    return value.to(dtype=like.dtype, device=like.device)


def _student_kernel(module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
                    attention_mask: Optional[Tensor], **kwargs: Any) -> Tuple[Tensor, Tensor]:
    # `scaling` is checked once at injection; dropout is not applied (grade in eval mode)
    injection = getattr(module, _STATE_ATTR, None)
    if injection is None:
        raise ModelIntegrationError(f"{type(module).__name__} asks for {KERNEL_NAME} but has no student attention")
    return injection.attend(module, query, key, value, attention_mask)


def register_kernel() -> None:
    """Make KERNEL_NAME a transformers attention implementation (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(KERNEL_NAME, _student_kernel)


def _inject(model: nn.Module, student_attention: StudentAttention, layer_idx: int,
            route_projections: Optional[StudentProjections]) -> Tuple[Injection, Callable[[], None]]:
    """Attach the student to block `layer_idx` of `model` in place; returns the record and an undo function."""
    register_kernel()
    module = extract_attention_layer(model, layer_idx)
    if getattr(module, _STATE_ATTR, None) is not None:
        raise ModelIntegrationError(f"block {layer_idx} already runs a student attention")
    heads, dim = head_layout(module)
    scaling = float(getattr(module, "scaling", dim**-0.5))
    if not math.isclose(scaling, dim**-0.5, rel_tol=1e-6):
        raise ModelIntegrationError(
            f"block {layer_idx} scales its scores by {scaling:g}, not 1/sqrt({dim}): "
            "the course's attention cannot match it"
        )
    if route_projections is not None:
        _projection_params(module)  # fail now, not in the middle of a forward
    injection = Injection(student_attention, route_projections, model_identity(model)[0], layer_idx,
                          bool(getattr(module, "is_causal", False)))
    original_config = module.config
    own_config = copy.copy(original_config)
    # the raw field: the `_attn_implementation` setter would also recurse into sub-configs
    own_config._attn_implementation_internal = KERNEL_NAME
    module.config = own_config
    setattr(module, _STATE_ATTR, injection)
    handle = None
    if route_projections is not None:
        def capture_input(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            injection.hidden_states = args[0] if args else kwargs["hidden_states"]

        handle = module.register_forward_pre_hook(capture_input, with_kwargs=True)

    def undo() -> None:
        module.config = original_config
        delattr(module, _STATE_ATTR)
        if handle is not None:
            handle.remove()

    return injection, undo


@contextmanager
def injected_attention(model: nn.Module, student_attention: StudentAttention, layer_idx: int = 0,
                       route_projections: Optional[StudentProjections] = None) -> Iterator[Injection]:
    """Run `model` with the student's attention in block `layer_idx`, in place, undone on exit.

    Yields the `Injection` (call count, last weights). Cheaper than `replace_attention_mechanism`, but the
    model is modified while the block runs: do not share it with other threads meanwhile.
    """
    injection, undo = _inject(model, student_attention, layer_idx, route_projections)
    try:
        yield injection
    finally:
        undo()


def share_weights_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree and config that shares every parameter and buffer with `model`."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


def replace_attention_mechanism(model: PreTrainedModel, student_attention: StudentAttention, layer_idx: int = 0,
                                route_projections: Optional[StudentProjections] = None) -> PreTrainedModel:
    """A student model: `model` with the student's attention in block `layer_idx` only.

    The student model shares all weights with `model` (no copy of the 300 MB of tensors) but has its own
    modules and config, so `model` itself is never changed. Same forward signature and outputs;
    `output_attentions=True` records the student's weights at `layer_idx`. Gradients flow through the
    student's attention into the block's projections (e.g. `transformer.h[0].attn.c_attn.weight`).

    route_projections: the student's `linear_projections(x, W_q, W_k, W_v) -> (Q, K, V)`; when given, Q, K, V
    come from it, called per head with the block's input x `[B, S, d_model]` and the head's weight slices
    `[d_model, d]` (Q = x @ W); the block's biases are added here.
    """
    student_model = share_weights_copy(model)
    _inject(student_model, student_attention, layer_idx, route_projections)
    return student_model


def injection_of(student_model: nn.Module) -> Tuple[int, Injection]:
    for index, module in enumerate(attention_modules(student_model)):
        injection = getattr(module, _STATE_ATTR, None)
        if injection is not None:
            return index, injection
    raise ModelIntegrationError("this model runs no student attention: make it with replace_attention_mechanism")
