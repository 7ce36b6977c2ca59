"""The production-model layer: load distilgpt2, put a student's attention into one block, compare.

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
import os
import re
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from torch import Tensor, nn
from transformers import (
    AttentionInterface,
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pytorch_utils import Conv1D

from autograder.contract import PROMPT_EXAMPLE
from autograder.heatmaps import attention_heatmap_pair, visualize_model_comparison
from autograder.metrics import (
    cosine_per_row,
    emd_per_row,
    js_divergence,
    kl_from_logits,
    max_abs_diff,
    topk_agreement,
)

__all__ = [
    "DEFAULT_MODEL",
    "exact_float32",
    "Injection",
    "ModelComparison",
    "ModelIntegrationError",
    "ModelUnavailableError",
    "attention_heatmap_pair",
    "compare_attention_implementations",
    "default_cache_dir",
    "extract_attention_layer",
    "extract_attention_weights",
    "injected_attention",
    "load_mini_transformer",
    "model_identity",
    "one_cpu_thread",
    "replace_attention_mechanism",
    "run_inference_comparison",
    "visualize_model_comparison",
]

DEFAULT_MODEL = "distilgpt2"
KERNEL_NAME = "autograder_student"
_STATE_ATTR = "_autograder_injection"
_REPO_ROOT = Path(__file__).resolve().parents[1]

StudentAttention = Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tuple[Tensor, Tensor]]
StudentProjections = Callable[[Tensor, Tensor, Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]
Prompt = Union[str, Sequence[str], Mapping[str, Tensor], Tensor]


class ModelUnavailableError(RuntimeError):
    """The model is neither cached nor downloadable; the message says what to run to cache it."""


class ModelIntegrationError(RuntimeError):
    """The student's code failed inside the model; the message says what went wrong in student terms."""


# ----------------------------------------------------------------------------------------------------
# loading


def default_cache_dir() -> Path:
    """`$AUTOGRADER_CACHE/models` if set, else `cache/models` in the repository (or the working directory)."""
    env = os.environ.get("AUTOGRADER_CACHE")
    if env:
        return Path(env).expanduser() / "models"
    root = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / "cache" / "models"


def is_causal_lm(config: Any) -> bool:
    architectures = getattr(config, "architectures", None) or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) or bool(
        getattr(config, "is_decoder", False)
    )


def _load_dir(directory: str, device: torch.device) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    config = AutoConfig.from_pretrained(directory)
    model_class = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    model = model_class.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return model.to(device).eval(), tokenizer


def _cached_snapshot(model_name: str, cache: Path) -> Optional[str]:
    """The hub cache's snapshot folder holding `model_name`'s config, or None when it is not cached."""
    config_file = try_to_load_from_cache(model_name, "config.json", cache_dir=str(cache))
    return str(Path(config_file).parent) if isinstance(config_file, str) else None


def _download(model_name: str, cache: Path) -> None:
    """Fetch exactly the files transformers needs for the config, the weights and the tokenizer."""
    config = AutoConfig.from_pretrained(model_name, cache_dir=str(cache))
    model_class = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    model_class.from_pretrained(model_name, cache_dir=str(cache))
    AutoTokenizer.from_pretrained(model_name, cache_dir=str(cache))


def _unavailable(model_name: str, cache: Path, cache_dir: Any, reason: str) -> ModelUnavailableError:
    args = [] if model_name == DEFAULT_MODEL else [repr(model_name)]
    if cache_dir is not None:
        args.append(f"cache_dir={str(cache_dir)!r}")
    command = (
        'python -c "from autograder.model_utils import load_mini_transformer; '
        f'load_mini_transformer({", ".join(args)})"'
    )
    return ModelUnavailableError(
        f"The model {model_name!r} is not in the model cache ({cache}) and cannot be downloaded: {reason}. "
        f"Cache it once on a machine with internet access:\n    {command}\n"
        f"then copy {cache} to this machine (or set AUTOGRADER_CACHE to a folder whose models/ has it)."
    )


def load_mini_transformer(
    model_name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a small pretrained transformer and its tokenizer, in eval mode, float32, eager attention.

    model_name: a hub id (default "distilgpt2") or a local model directory. Hub models are cached under
    `cache_dir` (default `default_cache_dir()`) and read from there without touching the network.
    Causal LMs (per config.architectures / is_decoder) load with AutoModelForCausalLM, encoders with
    AutoModel. device: CUDA when available, else CPU. Raises ModelUnavailableError when the model is
    neither cached nor downloadable (e.g. HF_HUB_OFFLINE=1 and an empty cache).
    """
    name = model_name or DEFAULT_MODEL
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if Path(name).expanduser().is_dir():
        try:
            return _load_dir(str(Path(name).expanduser()), target)
        except (OSError, ValueError) as error:
            message = f"{name} is not a loadable model directory: {_first_line(error)}"
            raise ModelUnavailableError(message) from None

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    snapshot = _cached_snapshot(name, cache)
    if snapshot is not None:
        try:
            return _load_dir(snapshot, target)
        except OSError:
            pass  # partly cached: download the rest below
    if _hub_offline():
        raise _unavailable(name, cache, cache_dir, "the Hugging Face Hub is off (HF_HUB_OFFLINE=1)") from None
    unreachable = _hub_unreachable()
    if unreachable:  # fail in milliseconds: the hub client retries for ~20 s before giving up
        raise _unavailable(name, cache, cache_dir, unreachable) from None
    try:
        _download(name, cache)
        snapshot = _cached_snapshot(name, cache)
        if snapshot is None:
            raise OSError("the download left no config.json in the cache")
        return _load_dir(snapshot, target)
    except Exception as error:  # any hub/network failure becomes one clear message
        raise _unavailable(name, cache, cache_dir, _first_line(error)) from None


def _hub_offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; honour a later setting too
    late = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
    return bool(hub_constants.HF_HUB_OFFLINE) or late


def _hub_unreachable(timeout_s: float = 3.0) -> Optional[str]:
    """Why the hub's host cannot be reached (no DNS, no route), or None when it answers or a proxy decides.

    Probes the endpoint's own host and port (HF_ENDPOINT may name a mirror), with one TCP connect.
    """
    endpoint = urlparse(hub_constants.ENDPOINT)
    scheme = (endpoint.scheme or "https").lower()
    proxies = (f"{scheme.upper()}_PROXY", f"{scheme}_proxy", "ALL_PROXY", "all_proxy")
    if any(os.environ.get(v) for v in proxies):
        return None
    try:
        host, port = endpoint.hostname, endpoint.port or (80 if scheme == "http" else 443)
    except ValueError:  # a malformed port: let the hub client report it
        return None
    if not host:
        return None
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        return f"{host} cannot be reached ({error.strerror or error})"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


_SNAPSHOT = re.compile(r"models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\](?P<revision>[0-9a-f]{40})")


def model_identity(model: PreTrainedModel) -> Tuple[str, Optional[str]]:
    """(hub id or directory name, commit hash or None) of a model that `load_mini_transformer` loaded."""
    path = str(getattr(model, "name_or_path", "") or "")
    found = _SNAPSHOT.search(path)
    if found:
        return found["repo"].replace("--", "/"), found["revision"]
    return (Path(path).name or path or type(model).__name__), None


def one_cpu_thread() -> ContextManager[None]:
    """Torch on one CPU thread inside the block, the previous count restored afterwards.

    A forward of distilgpt2 on a few tokens is bound by reading its weights, not by arithmetic: one
    thread is as fast as two on a quiet machine, and when other processes share the cores (batch
    grading, a busy runner) two OpenMP threads spin-waiting on each other make forwards 3-10x slower
    (2 cores: the whole model section took 1.9 s on one thread, 1.9-8.6 s on two). Not thread-safe
    (the count is process-wide): use it around sequential work.
    """
    return _temporarily(torch.get_num_threads, torch.set_num_threads, 1)


def exact_float32() -> ContextManager[None]:
    """float32 matrix products in full float32 inside the block (no TF32 on CUDA), restored afterwards.

    The model checks compare at 1e-5 to 1e-4, and TF32 rounds each product to about 2^-11 = 5e-4: with
    it on (a process-wide setting some code turns on for speed), production's own gradients on the GPU
    are that far from the student's, computed in float32 on the CPU.
    """
    return _temporarily(torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, "highest")


@contextmanager
def _temporarily(get: Callable[[], Any], set_: Callable[[Any], None], value: Any) -> Iterator[None]:
    """A process-wide torch setting at `value` inside the block, its previous value restored afterwards."""
    saved = get()
    set_(value)
    try:
        yield
    finally:
        set_(saved)


# ----------------------------------------------------------------------------------------------------
# finding the attention modules


def _attention_modules(model: nn.Module) -> List[nn.Module]:
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
    modules = _attention_modules(model)
    if not modules:
        raise ModelIntegrationError(f"cannot find the attention layers of {type(model).__name__}")
    if not -len(modules) <= layer_idx < len(modules):
        raise IndexError(f"layer_idx {layer_idx} is out of range: the model has {len(modules)} attention layers")
    return modules[layer_idx]


def _head_layout(module: nn.Module) -> Tuple[int, int]:
    """(number of heads, head dim) of an attention module."""
    heads = getattr(module, "num_heads", None) or getattr(module, "num_attention_heads", None)
    dim = getattr(module, "head_dim", None) or getattr(module, "attention_head_size", None)
    if not heads or not dim:
        raise ModelIntegrationError(f"cannot read the heads of {type(module).__name__}")
    return int(heads), int(dim)


def _projection_params(module: nn.Module) -> Tuple[Tensor, ...]:
    """(W_q, W_k, W_v) `[d_model, H * d]` laid out for `x @ W`, then their biases `[H * d]` (or None)."""
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


# Registered at import: a spawned or forkserver worker that unpickles a student model must import this module.
AttentionInterface.register(KERNEL_NAME, _student_kernel)


def _inject(model: nn.Module, student_attention: StudentAttention, layer_idx: int,
            route_projections: Optional[StudentProjections]) -> Tuple[Injection, Callable[[], None]]:
    """Attach the student to block `layer_idx` of `model` in place; returns the record and an undo function."""
    module = extract_attention_layer(model, layer_idx)
    if getattr(module, _STATE_ATTR, None) is not None:
        raise ModelIntegrationError(f"block {layer_idx} already runs a student attention")
    heads, dim = _head_layout(module)
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


def _share_weights_copy(model: nn.Module) -> nn.Module:
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
    student_model = _share_weights_copy(model)
    _inject(student_model, student_attention, layer_idx, route_projections)
    return student_model


def _injection_of(student_model: nn.Module) -> Tuple[int, Injection]:
    for index, module in enumerate(_attention_modules(student_model)):
        injection = getattr(module, _STATE_ATTR, None)
        if injection is not None:
            return index, injection
    raise ModelIntegrationError("this model runs no student attention: make it with replace_attention_mechanism")


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
    expected = len(_attention_modules(model))
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


def _reference_part(model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor, layer_idx: int,
                    reference: Optional[Mapping[str, Tensor]]) -> Dict[str, Tensor]:
    """The reference_* tensors: taken from `reference` when it ran on the same input and block, else one forward."""
    if (reference is not None and "layer_idx" in reference and int(reference["layer_idx"]) == layer_idx
            and torch.equal(reference["input_ids"], input_ids.cpu())
            and torch.equal(reference["attention_mask"], attention_mask.cpu())):
        return {k: reference[k].to(input_ids.device) for k in _REFERENCE_KEYS if k in reference}
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
    layer_idx, injection = _injection_of(student_model)
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

    ref_ids = _greedy(model, first, steps, known(run["reference_logits"]))
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
    prompt: Prompt = PROMPT_EXAMPLE,
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

    heads, head_dim = _head_layout(extract_attention_layer(model, layer_idx))
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
