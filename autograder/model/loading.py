"""Loading the production model: distilgpt2 from the hub or `cache/models/`, a local save_pretrained folder, or
the built-in model (the course's TinyGPT on Tiny Shakespeare, shipped in the package: `--model builtin`).

`load_capstone_model` is what the capstone uses: the configured model, else the built-in one, and a
`ModelChoice` saying which ran and why (the report's environment.model).

Also the process-wide torch settings the model checks run under (`one_cpu_thread`, `exact_float32`).
"""
from __future__ import annotations

import os
import re
import socket
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, Iterator, Optional, Tuple
from urllib.parse import urlparse

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache

from autograder.lm import BUILTIN_DIR

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# transformers (~2 s to import, twice `import torch`) is imported where a model is loaded: grading
# imports this module for its settings and names, and loads the model in the background

DEFAULT_MODEL = "distilgpt2"
BUILTIN_MODEL = "builtin"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class ModelUnavailableError(RuntimeError):
    """The model is neither cached nor downloadable; the message says what to run to cache it, `reason`
    (one line) why it could not be loaded."""

    def __init__(self, message: str, reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.reason = reason or _first_line(self)


@dataclass(frozen=True)
class ModelChoice:
    """Which model the capstone ran on: its name, where it was read from, and why it was that one."""

    name: str
    source: str
    why: str

    def to_dict(self) -> Dict[str, str]:
        return asdict(self)

class MissingTokenizer(OSError):
    """A model folder without tokenizer files (transformers then builds an empty tokenizer that silently
    encodes every prompt to zero tokens)."""


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
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(directory)
    model_class = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    model = model_class.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if not tokenizer("The cat sat")["input_ids"]:
        present = ", ".join(sorted(p.name for p in Path(directory).iterdir())[:20]) or "nothing"
        raise MissingTokenizer(
            f"it has no tokenizer files (it holds {present}): save the tokenizer next to the model with "
            "tokenizer.save_pretrained(folder), which writes tokenizer.json (or vocab.json + merges.txt, vocab.txt)")
    return model.to(device).eval(), tokenizer


def _cached_snapshot(model_name: str, cache: Path) -> Optional[str]:
    """The hub cache's snapshot folder holding `model_name`'s config, or None when it is not cached."""
    config_file = try_to_load_from_cache(model_name, "config.json", cache_dir=str(cache))
    return str(Path(config_file).parent) if isinstance(config_file, str) else None


def _download(model_name: str, cache: Path) -> None:
    """Fetch exactly the files transformers needs for the config, the weights and the tokenizer."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(model_name, cache_dir=str(cache))
    model_class = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    model_class.from_pretrained(model_name, cache_dir=str(cache))
    AutoTokenizer.from_pretrained(model_name, cache_dir=str(cache))


def _unavailable(model_name: str, cache: Path, cache_dir: Any, reason: str) -> ModelUnavailableError:
    args = [] if model_name == DEFAULT_MODEL else [repr(model_name)]
    if cache_dir is not None:
        args.append(f"cache_dir={str(cache_dir)!r}")
    command = (
        'python -c "from autograder.model.loading import load_mini_transformer; '
        f'load_mini_transformer({", ".join(args)})"'
    )
    return ModelUnavailableError(
        f"The model {model_name!r} is not in the model cache ({cache}) and cannot be downloaded: {reason}. "
        f"Cache it once on a machine with internet access:\n    {command}\n"
        f"then copy {cache} to this machine (or set AUTOGRADER_CACHE to a folder whose models/ has it).",
        reason=f"{model_name} is not cached and cannot be downloaded: {reason}",
    )


def load_mini_transformer(
    model_name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a small pretrained transformer and its tokenizer, in eval mode, float32, eager attention.

    model_name: a hub id (default "distilgpt2"), a local model directory, or "builtin" (the model shipped in
    the package). Hub models are cached under
    `cache_dir` (default `default_cache_dir()`) and read from there without touching the network.
    Causal LMs (per config.architectures / is_decoder) load with AutoModelForCausalLM, encoders with
    AutoModel. device: CUDA when available, else CPU. Raises ModelUnavailableError when the model is
    neither cached nor downloadable (e.g. HF_HUB_OFFLINE=1 and an empty cache).
    """
    name = model_name or DEFAULT_MODEL
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if name == BUILTIN_MODEL:
        if not (BUILTIN_DIR / "config.json").exists():
            raise ModelUnavailableError(f"the built-in model is missing from the package ({BUILTIN_DIR}): "
                                        "reinstall the package, or retrain it with `autograder train --builtin`")
        name = str(BUILTIN_DIR)
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


def load_capstone_model(model_name: Optional[str] = None, fallback: bool = True,
                        ) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelChoice]:
    """The capstone's model: `model_name` (default distilgpt2) or, when it cannot be loaded and `fallback`
    holds, the built-in model; with the choice that says which ran and why. Raises ModelUnavailableError
    (its `reason` naming every model tried) when none can be loaded."""
    name = model_name or DEFAULT_MODEL
    if name == BUILTIN_MODEL:
        model, tokenizer = load_mini_transformer(BUILTIN_MODEL)
        return model, tokenizer, ModelChoice(BUILTIN_MODEL, str(BUILTIN_DIR), "selected by name (builtin)")
    try:
        model, tokenizer = load_mini_transformer(name)
        return model, tokenizer, ModelChoice(name, str(model.name_or_path), "the configured model")
    except ModelUnavailableError as error:
        if not fallback:
            raise
        first = error
    try:
        model, tokenizer = load_mini_transformer(BUILTIN_MODEL)
    except ModelUnavailableError as error:
        raise ModelUnavailableError(f"{first}\nThe built-in model cannot be loaded either: {error}",
                                    reason=f"{first.reason}; the built-in model: {error.reason}") from None
    why = f"{first.reason}; the built-in model ran instead"
    return model, tokenizer, ModelChoice(BUILTIN_MODEL, str(BUILTIN_DIR), why)


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
