"""Errors explained by the input that causes them, for any assignment with a `Ladder`.

When student code raises, `explain` re-runs the op through the seam (student code runs only in its
worker) on a lattice of input kinds, e.g. [seq, d] / [batch, seq, d] / [batch, heads, seq, d] inputs,
no mask / a shared mask / a mask with batch dims, seq_q == seq_k or not, float64 or float32. It finds the
smallest kind that raises and a kind one step away that works, and says which: "works on [batch, seq,
d] (3-D) but raises on [batch, heads, seq, d] (4-D)", quoting the line the worker's traceback names,
with advice read off that line, and ends with a three-line snippet that reproduces the failing call.
An `AttributeError` naming a module that lacks a function gets the module that has it.
"""
from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from autograder.diagnosis.engine import Mistake

Kind = Tuple[Tuple[str, str], ...]  # ((feature, value), ...) in the ladder's feature order


class Stop(Exception):
    """A probe could not run to an answer (the function hung or crashed): explain no further."""


@dataclass(frozen=True)
class Raised:
    """What a probe's call raised: the exception type, its text, the source line the traceback names; or,
    with type WRONG_SHAPE, an answer of the wrong shape (text: 'returns [2, 2, 4] for [2, 4]')."""

    type: str
    text: str
    line: str = ""


WRONG_SHAPE = "wrong shape"


@dataclass(frozen=True)
class Feature:
    """One way inputs differ: `values` simplest first, `works`/`raises` phrase each value in a sentence
    ("works on [seq, d] (2-D)", "raises when mask is None (the default)"), `advice` per value the hint."""

    name: str
    values: Tuple[str, ...]
    works: Dict[str, str]
    raises: Dict[str, str]
    advice: Dict[str, str]


@dataclass(frozen=True)
class Ladder:
    """An assignment's input kinds: `features(op)` those that apply to an op (most telling first), `probe(op,
    kind)` the op's arguments for a kind (None: no such input, e.g. a batched mask for 2-D inputs)."""

    features: Callable[[str], Tuple[Feature, ...]]
    probe: Callable[[str, Dict[str, str]], Optional[Tuple[Any, ...]]]


_WHERE = re.compile(r" at line \d+ \((.*)\)$", re.S)
_MODULE_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_HOMES = ("torch", "torch.nn.functional", "torch.linalg", "torch.Tensor")
# (pattern in the failing line, advice): hard-coded axes and shapes, the usual causes
_LINE_ADVICE: Tuple[Tuple[str, str], ...] = (
    (r"transpose\(\s*\d+\s*,\s*\d+\s*\)", ("`transpose({args})` names axes counted from the front, which "
                                          "move when batch dims come or go: use `transpose(-2, -1)`")),
    (r"\.permute\(", ("`permute(...)` lists every axis, so it fits one number of dims only: use "
                      "`transpose(-2, -1)`")),
    (r"\.T\b|\.t\(\)", "`.T` / `.t()` reverse every axis (or need 2-D): use `transpose(-2, -1)`"),
    (r"\bbmm\(", "`torch.bmm` takes exactly 3-D tensors: use `@` (torch.matmul), which broadcasts batch dims"),
    (r"(\.view|\.reshape)\(", ("`view`/`reshape` with fixed sizes assumes one shape: index axes from the end "
                               "(`x.shape[-1]`) and keep the leading dims as they are")),
)


def explain(ladder: Ladder, op: str, label: str, call: Callable[[Tuple[Any, ...]], Optional[Raised]],
            snippet: Callable[[Tuple[Any, ...]], str], section: str) -> Optional[Mistake]:
    """Why `op` raises (`label`: how hints name it, starting with "your"): the smallest kind that raises,
    the feature in which a neighbour of it works, the line and advice, and a snippet of the failing call.

    `call(args)` runs the student's op through the seam: None when it answered, a Raised (an exception, or
    a wrong shape), or Stop when it could not run (hung, crashed); `snippet(args)` writes the three lines.
    None when every kind works (the failure needs something else), a wrong shape shows on every kind, or a
    probe could not run.
    """
    probes: Dict[Kind, Optional[Tuple[Any, ...]]] = {}
    results: Dict[Kind, Optional[Raised]] = {}

    def args_of(kind: Kind) -> Optional[Tuple[Any, ...]]:
        if kind not in probes:
            probes[kind] = ladder.probe(op, dict(kind))
        return probes[kind]

    def raised_on(kind: Kind) -> Optional[Raised]:
        """What the op raises on this kind (None: it runs, or there is no such input)."""
        if kind not in results:
            args = args_of(kind)
            results[kind] = None if args is None else call(args)
        return results[kind]

    features = ladder.features(op)
    try:
        smallest = next((k for k in _kinds(features) if raised_on(k) is not None), None)
        if smallest is None:
            return None
        raised = raised_on(smallest)
        assert raised is not None
        reproducer = snippet(args_of(smallest) or ())
        for feature in features:
            kinds = {v: _with(smallest, feature.name, v) for v in feature.values}
            working = [v for v, k in kinds.items() if args_of(k) is not None and raised_on(k) is None]
            if working:
                failing = [v for v, k in kinds.items() if raised_on(k) is not None]
                return _contrast(feature, working, failing, raised, label, section, reproducer)
    except Stop:
        return None
    return None if raised.type == WRONG_SHAPE else _everywhere(raised, label, section, reproducer)


def _kinds(features: Sequence[Feature]) -> Iterator[Kind]:
    """Every kind, simplest first (by the sum of the values' ranks, then in feature order)."""
    ranked = itertools.product(*[list(enumerate(f.values)) for f in features])
    for combo in sorted(ranked, key=lambda c: (sum(rank for rank, _ in c), [rank for rank, _ in c])):
        yield tuple((f.name, value) for f, (_, value) in zip(features, combo))


def _with(kind: Kind, name: str, value: str) -> Kind:
    return tuple((n, value if n == name else v) for n, v in kind)


def _contrast(feature: Feature, working: List[str], failing: List[str], raised: Raised, label: str, section: str,
              reproducer: str) -> Mistake:
    """The mistake 'works on A but raises on B' for a feature whose `working` values run, `failing` raise."""
    shape = raised.type == WRONG_SHAPE
    works = _joined([feature.works[v] for v in working])
    breaks = _joined([feature.raises[v].replace("raises", "returns the wrong shape", 1) if shape
                      else feature.raises[v] for v in failing])
    advice = line_advice(raised) or " ".join(dict.fromkeys(feature.advice[v] for v in failing if feature.advice[v]))
    hint = (f"{label} {works} but {breaks}{quoted(raised)}{': ' + advice if advice else ''}. "
            f"To reproduce:\n{reproducer}")
    return Mistake(f"{'wrong_shape' if shape else 'raises'}_for_{feature.name}_{'_'.join(failing)}", section, hint)


def _joined(phrases: List[str]) -> str:
    """'raises on A and B' from ['raises on A', 'raises on B'] (the shared first two words said once)."""
    lead = " ".join(phrases[0].split()[:2]) + " "
    if all(p.startswith(lead) for p in phrases):
        return lead + " and ".join(p[len(lead):] for p in phrases)
    return " and ".join(phrases)


def _everywhere(raised: Raised, label: str, section: str, reproducer: str) -> Mistake:
    """A function that raises on every kind: the missing attribute's real home, or the line itself."""
    home = module_for(raised)
    if home is not None:
        module, attribute, found = home
        return Mistake("wrong_module", section,
                       f"your code calls {module}.{attribute}, which does not exist: {found}. To reproduce:\n"
                       f"{reproducer}")
    hint = (f"{label} raises {raised.type} on every input kind, even the simplest{quoted(raised)}"
            f"{': ' + line_advice(raised) if line_advice(raised) else ''}. To reproduce:\n{reproducer}")
    return Mistake("raises_always", section, hint)


def raises_on_input(raised: Raised, label: str, section: str, reproducer: str) -> Mistake:
    """For an error every kind of the ladder runs without: it needs the sizes of the input that raised."""
    return Mistake("raises_on_input", section, f"{label} works on the usual input kinds but raises on this one "
                   f"(sizes in the message){quoted(raised)}. To reproduce:\n{reproducer}")


def module_for(raised: Raised) -> Optional[Tuple[str, str, str]]:
    """For "module 'torch.functional' has no attribute 'softmax'": (module, attribute, where it is)."""
    if raised.type != "AttributeError":
        return None
    match = _MODULE_ATTRIBUTE.search(raised.text)
    if match is None:
        return None
    module, attribute = match.groups()
    homes = [h for h in _HOMES if h != module and hasattr(_resolve(h), attribute)]
    if homes:
        return module, attribute, "use " + ", or ".join(f"{h}.{attribute}" for h in homes)
    close = sorted({f"{h}.{n}" for h in _HOMES for n in difflib.get_close_matches(attribute, dir(_resolve(h)), 2)})
    return module, attribute, ("did you mean " + " or ".join(close[:3]) + "?") if close else "check the spelling"


def _resolve(dotted: str) -> Any:
    import importlib

    if dotted == "torch.Tensor":
        return torch.Tensor
    return importlib.import_module(dotted)


def quoted(raised: Raised) -> str:
    """': `the line`' (neutralised: printable, no backticks, clipped) or ''."""
    line = "".join(ch for ch in raised.line if ch.isprintable()).replace("`", "'").strip()
    line = line if len(line) <= 120 else line[:117] + "..."
    if raised.type == WRONG_SHAPE:
        return f" (it {raised.text})"
    return f" ({raised.type} at `{line}`)" if line else f" ({raised.type})"


def line_advice(raised: Raised) -> str:
    """What the failing line (and the error's text) says is hard-coded."""
    advice = []
    unpack = re.search(r"unpack \(expected (\d+), got (\d+)\)", raised.text)
    if unpack:
        advice.append(f"it unpacks a shape into exactly {unpack.group(1)} names: read only what you need, e.g. "
                      "`d_k = Q.shape[-1]`")
    for pattern, text in _LINE_ADVICE:
        found = re.search(pattern, raised.line)
        if found:
            inner = re.search(r"\(([^()]*)\)", found.group(0))
            advice.append(text.format(args=inner.group(1) if inner else ""))
    return "; ".join(advice)


def raised_from(type_name: str, text: str, message: str) -> Raised:
    """A Raised from a SubmissionError's raised (type, text) and its message ('... at line 12 (the line)')."""
    found = _WHERE.search(message)
    return Raised(type_name, text, found.group(1) if found else "")


def write_snippet(names: Sequence[str], args: Sequence[Any], call: str) -> str:
    """Three lines: `import torch`, the arguments (random tensors of their shapes and dtypes, bool masks as
    lower-triangular ones), and `call` (an expression over `names`)."""
    values = ", ".join(_literal(a) for a in args)
    return f"import torch\n{', '.join(names[:len(args)])} = {values}{',' if len(args) == 1 else ''}\n{call}"


def _literal(value: Any) -> str:
    if isinstance(value, Tensor):
        shape = ", ".join(str(s) for s in value.shape)
        if value.dtype == torch.bool:
            return f"torch.ones({shape}, dtype=torch.bool).tril()"
        return f"torch.randn({shape}, dtype={value.dtype})"
    return repr(value)


def snippet_lines(text: str) -> List[str]:
    """The reproducer's lines at the end of a hint written by `explain` (for tests and views)."""
    return text.split("To reproduce:\n", 1)[1].splitlines() if "To reproduce:\n" in text else []
