"""Guards around student code: banned APIs raise a clear error, the grader's answers cannot be imported.

Used by the worker around the import and every call. Inside the sandbox these are a courtesy that names
the rule; the filesystem layer (Landlock) is what actually keeps `reference/` unreadable.

A banned API is refused in three layers. (1) Under every Python name torch gives it: the public name and
its aliases (the same object elsewhere in torch: `torch._C._nn.scaled_dot_product_attention`,
`torch.nn.modules.activation.MultiheadAttention`). (2) A torch function mode names the operator a call
reached (`torch.ops.aten.scaled_dot_product_attention`, `torch._scaled_dot_product_flash_attention_for_cpu`).
(3) In the dispatcher itself: inside the block, every aten operator of the banned API's family has its
kernels (CompositeImplicitAutograd and each backend's) replaced by one that refuses (`torch.library`), so
`torch._C.DisableTorchFunction()`, inference mode, `OpOverload.decompose` or a reference kept from before
all end in the refusal; and a refusal the student's code catches and swallows still fails the call (the
block yields the list of refusals; the worker checks it after every call).

What it cannot guarantee: code in the same process can still take any in-process guard apart with enough
effort (find the registration with gc and destroy it, patch memory with ctypes), or reimplement the
library's kernel in Python, which is then the student's own code. The ban names the rule for honest
students and makes a bypass deliberate work; it is not a sandbox.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import re
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.library import Library
from torch.overrides import TorchFunctionMode

# Packages holding the right answers or the checks: a submission importing them would grade itself.
BLOCKED_IMPORTS: Tuple[str, ...] = ("reference", "autograder")

# The operators and internal functions behind a banned API (names matched after leading underscores), and
# public functions that are the same computation under another name.
OPERATOR_FAMILIES: Dict[str, str] = {
    "torch.nn.functional.scaled_dot_product_attention":
        r"(scaled_dot_product|flash_attention|efficient_attention|cudnn_attention|triton_scaled_dot_attention)",
    "torch.nn.MultiheadAttention":
        r"(native_multi_head_attention|triton_multi_head_attention|multi_head_attention_forward"
        r"|transformer_encoder_layer_fwd)",
}
RELATED: Dict[str, Tuple[str, ...]] = {
    "torch.nn.MultiheadAttention": ("torch.nn.functional.multi_head_attention_forward",),
}


class BannedAPIError(RuntimeError):
    """Raised inside student code when it calls an API the course has banned for this assignment."""


class _ImportBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in BLOCKED_IMPORTS:
            raise ImportError(f"importing '{fullname}' is not allowed in a submission: write the code yourself")
        return None


def refusal(dotted: str, called_as: Optional[str] = None) -> str:
    via = f" (called as {called_as})" if called_as and called_as != dotted else ""
    return f"{dotted} is not allowed in this assignment{via}: implement it yourself from the sections"


def _banned_stand_in(dotted: str, called_as: Optional[str] = None, record: Optional[List[str]] = None) -> Any:
    """A function that refuses (BannedAPIError), noting its message in `record` first."""
    message = refusal(dotted, called_as)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        if record is not None:
            record.append(message)
        raise BannedAPIError(message)

    refuse.__qualname__ = refuse.__name__ = (called_as or dotted).rsplit(".", 1)[-1]
    refuse.banned = dotted  # type: ignore[attr-defined]
    refuse._autograder_stand_in = True  # type: ignore[attr-defined]
    return refuse


# The real object behind each banned name, kept the first time a guard replaces it: a guarded block that
# outlives a later one (a call abandoned at its time limit in its thread) must never leave a stand-in behind.
_ORIGINALS: Dict[Tuple[int, str], Any] = {}


def _resolve(dotted: str) -> Tuple[Any, str]:
    module_name, attr = dotted.rsplit(".", 1)
    owner: Any = importlib.import_module(module_name.split(".")[0])
    for part in module_name.split(".")[1:]:
        owner = getattr(owner, part)
    return owner, attr


_scan: Tuple[int, Tuple[str, ...]] = (-1, ())


def _blocked_loaded() -> Tuple[str, ...]:
    """Names of loaded modules under BLOCKED_IMPORTS; rescanned only when sys.modules grew or shrank
    (a full scan on every call cost a third of a grading run)."""
    global _scan
    if _scan[0] != len(sys.modules):
        names = tuple(n for n in list(sys.modules) if n.partition(".")[0] in BLOCKED_IMPORTS)  # a copy: threads import
        _scan = (len(sys.modules), names)
    return _scan[1]


# banned names -> [(banned name, name it is reached by, owner, attribute)]: every place in torch's modules
# holding a banned object, found once per process (a scan of every module on every call costs milliseconds)
_PLACES: Dict[Tuple[str, ...], List[Tuple[str, str, Any, str]]] = {}


def _places(banned: Tuple[str, ...]) -> List[Tuple[str, str, Any, str]]:
    if banned in _PLACES:
        return _PLACES[banned]
    targets: Dict[int, Tuple[str, Any]] = {}  # id(object) -> (banned name, object)
    places: Dict[Tuple[int, str], Tuple[str, str, Any, str]] = {}
    for dotted in banned:
        for name in (dotted, *RELATED.get(dotted, ())):
            try:
                owner, attr = _resolve(name)
                target = getattr(owner, attr)
            except (ImportError, AttributeError):
                continue  # an API this torch does not have cannot be called anyway
            targets.setdefault(id(target), (dotted, target))
            places[(id(owner), attr)] = (dotted, name, owner, attr)
    for module_name, module in list(sys.modules.items()):
        if module_name != "torch" and not module_name.startswith("torch."):
            continue
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        for attr, value in items:
            hit = targets.get(id(value))
            if hit is not None and hit[1] is value:
                places.setdefault((id(module), attr), (hit[0], f"{module_name}.{attr}", module, attr))
    _PLACES[banned] = list(places.values())
    return _PLACES[banned]


class _OperatorBan(TorchFunctionMode):
    """Refuses torch functions and aten operators whose names belong to a banned API's family."""

    def __init__(self, banned: Sequence[str], record: List[str]) -> None:
        super().__init__()
        self.record = record
        self.families = [(dotted, re.compile(r"_*" + OPERATOR_FAMILIES[dotted]))
                         for dotted in banned if dotted in OPERATOR_FAMILIES]

    @staticmethod
    def _name(func: Any) -> Tuple[Optional[str], str]:
        """(name to match, name to show) of a torch function or aten operator; (None, "") for others."""
        qualified = getattr(func, "_qualified_op_name", None)  # torch.ops.aten.x
        if qualified is None and hasattr(func, "_schema"):     # torch.ops.aten.x.default
            qualified = func._schema.name
        if isinstance(qualified, str):
            namespace, _, name = qualified.rpartition("::")
            return name, f"torch.ops.{namespace}.{name}"
        module = str(getattr(func, "__module__", "") or "")
        name = getattr(func, "__name__", None)
        if module.startswith("torch") and isinstance(name, str):
            return name, f"{module}.{name}"
        return None, ""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name, shown = self._name(func)
        if name is not None:
            for dotted, family in self.families:
                if family.match(name):
                    self.record.append(refusal(dotted, shown))
                    raise BannedAPIError(self.record[-1])
        return func(*args, **(kwargs or {}))


# dispatch keys whose kernels a banned operator loses inside the block (where it has one): the composite
# kernel that decomposes it before any backend, and every backend's own
KERNEL_KEYS = ("CompositeImplicitAutograd", "CPU", "CUDA", "MPS", "XPU")
_OPERATORS: Dict[Tuple[str, ...], List[Tuple[str, str, str]]] = {}


def banned_operators(banned: Sequence[str]) -> List[Tuple[str, str, str]]:
    """(banned name, "op.overload", dispatch key) for every kernel of every aten operator in the banned APIs'
    families (OPERATOR_FAMILIES), as this torch registers them; found once per process."""
    key = tuple(banned)
    if key not in _OPERATORS:
        families = [(d, re.compile(r"_*" + OPERATOR_FAMILIES[d])) for d in banned if d in OPERATOR_FAMILIES]
        found = []
        for qualified in torch._C._dispatch_get_all_op_names():
            namespace, _, name = qualified.partition("::")
            dotted = next((d for d, family in families if family.match(name)), None)
            if namespace != "aten" or dotted is None:
                continue
            found += [(dotted, name, k) for k in KERNEL_KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, k)]
        _OPERATORS[key] = found
    return _OPERATORS[key]


_RECORDS: List[List[str]] = [[]]  # the refusal record of the innermost guarded block (the dispatcher's kernels
                                 # note theirs here; outside any block, in a list nobody reads)
_PERMANENT: Dict[Tuple[str, ...], Library] = {}


def _refuse_operator(dotted: str, op: str) -> Any:
    message = refusal(dotted, f"torch.ops.aten.{op}")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        _RECORDS[-1].append(message)
        raise BannedAPIError(message)

    return refuse


def _dispatcher_ban(banned: Sequence[str]) -> Library:
    """Replace the banned operators' kernels with refusals (undone by the returned Library's `_destroy()`)."""
    library = Library("aten", "IMPL")
    with warnings.catch_warnings():  # "overriding a previously registered kernel": that is the point
        warnings.simplefilter("ignore")
        for dotted, op, key in banned_operators(banned):
            library.impl(op, _refuse_operator(dotted, op), key)
    return library


def ban_for_this_process(banned: Sequence[str]) -> None:
    """For a process that runs nothing but student code (the worker): the banned operators refuse from now
    on, outside guarded blocks too, and no block pays for registering them again (0.6 ms a call)."""
    if tuple(banned) not in _PERMANENT:
        _PERMANENT[tuple(banned)] = _dispatcher_ban(banned)


@contextlib.contextmanager
def guarded(banned: Sequence[str]) -> Iterator[List[str]]:
    """Within the block, each dotted name in `banned` raises BannedAPIError (under any of the names torch
    gives it, and in the dispatcher) and BLOCKED_IMPORTS fail. Yields the list of refusals made in the
    block (their messages), which the caller checks: a refusal the student's code swallowed still counts."""
    record: List[str] = []
    saved: List[Tuple[Any, str, Any]] = []
    for dotted, called_as, owner, attr in _places(tuple(banned)):
        current = getattr(owner, attr)
        if not getattr(current, "_autograder_stand_in", False):
            _ORIGINALS[(id(owner), attr)] = current
        saved.append((owner, attr, _ORIGINALS[(id(owner), attr)]))
        setattr(owner, attr, _banned_stand_in(dotted, called_as, record))
    hidden = {name: sys.modules[name] for name in _blocked_loaded() if name in sys.modules}
    for name in hidden:
        del sys.modules[name]
    blocker = _ImportBlocker()
    sys.meta_path.insert(0, blocker)
    mode = _OperatorBan(banned, record) if any(d in OPERATOR_FAMILIES for d in banned) else contextlib.nullcontext()
    library = None if tuple(banned) in _PERMANENT else _dispatcher_ban(banned)
    _RECORDS.append(record)
    try:
        with mode:
            yield record
    finally:
        # this block's own list (list.remove compares by ==, and every empty record equals every other)
        del _RECORDS[max(i for i, r in enumerate(_RECORDS) if r is record)]
        if library is not None:
            library._destroy()
        if blocker in sys.meta_path:
            sys.meta_path.remove(blocker)
        sys.modules.update(hidden)
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)
