"""What an assignment declares: its contract, where its checks, defaults, reference and mistakes live.

An `Assignment` is plain data. The generic machinery reads it and never names an assignment itself:
the plugin collects `checks_dir`, the config merges `defaults_file`, the worker learns the function names
and `compositions` over the wire, the report and gradebook take `name` and `sections`, diagnosis loads
the `mistakes` catalogue, the sandbox hides `answer_paths()` from student code.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Function:
    """One function the student writes.

    `outputs` names what it returns, in order: one name is a bare tensor, several a tuple of tensors.
    `section` is the report section that holds its points; `optional` functions may be absent when a
    `Composition` in the assignment builds the same op from the others.
    """

    name: str
    signature: str  # as students read it: "attention_scores(Q, K) -> scores [..., seq_q, seq_k]"
    outputs: Tuple[str, ...]
    section: str
    optional: bool = False

    @property
    def arity(self) -> int:
        return len(self.outputs)


@dataclass(frozen=True)
class Step:
    """One call of a composition: `output = function(*inputs)`, names bound in the composition's scope."""

    function: str
    inputs: Tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Composition:
    """An op the checks call by `op` name: the student's `own` function when the file defines it, else the
    `steps` over the student's other functions (a dataflow the worker runs without knowing the assignment).

    `params` are the op's positional parameters; the trailing `optional_params` default to None when the
    caller leaves them out. `returns` names the values the op returns (one: bare, several: a tuple).
    `label` is how messages name the op.
    """

    op: str
    own: str
    params: Tuple[str, ...]
    steps: Tuple[Step, ...]
    returns: Tuple[str, ...]
    label: str
    optional_params: Tuple[str, ...] = ()

    @property
    def parts(self) -> Tuple[str, ...]:
        """The student functions the fallback needs, in call order, without repeats."""
        return tuple(dict.fromkeys(step.function for step in self.steps))

    def to_wire(self) -> Dict[str, Any]:
        """The plain-JSON form the worker receives (`autograder.runtime.worker.compose`) and the seam reads."""
        return {"own": self.own, "params": list(self.params), "optional": list(self.optional_params),
                "steps": [[s.function, list(s.inputs), s.output] for s in self.steps], "returns": list(self.returns),
                "label": self.label}


@dataclass(frozen=True)
class Example:
    """The worked example of the contract: its prompt and the shapes its tensors have (for docs, messages)."""

    prompt: str
    shapes: Mapping[str, Tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """An assignment of the course, as the grader sees it.

    - `functions`: the contract; `sections`: the report's sections in order (each function's section, the
      composed ops' sections and the `capstone` section); `section_ops`: the op each section's checks call
      (a function name or a composition's op).
    - `package`: the Python package that holds `defaults.toml` and `checks/` (its folder is hidden from
      student code); `reference`: the module with one reference function per op, called like the student's;
      `mistakes`: the module whose `CATALOGUE` (an `autograder.diagnosis.Catalogue`) names classic mistakes.
    - `example_args`: "module:function", the function `(section) -> args` giving the worked-example inputs of
      a section's op: called once before a section's checks, a function that fails there fails them all.
    - `capstone`: the section whose checks put the submission into the production model (dropped when the
      config's `[model] enabled` is false), or None.
    """

    name: str
    title: str
    functions: Tuple[Function, ...]
    sections: Tuple[str, ...]
    package: str
    reference: str
    mistakes: Optional[str] = None
    compositions: Tuple[Composition, ...] = ()
    section_ops: Mapping[str, str] = field(default_factory=dict)
    example: Optional[Example] = None
    example_args: Optional[str] = None
    capstone: Optional[str] = None

    # -- the contract -----------------------------------------------------------------------------
    @property
    def function_names(self) -> Tuple[str, ...]:
        return tuple(f.name for f in self.functions)

    @property
    def required(self) -> Tuple[str, ...]:
        """The functions a complete submission must define."""
        return tuple(f.name for f in self.functions if not f.optional)

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)

    def composition(self, op: str) -> Optional[Composition]:
        return next((c for c in self.compositions if c.op == op), None)

    def op(self, section: str) -> str:
        """The op a section's checks call: `section_ops[section]`, else the section's one function."""
        if section in self.section_ops:
            return self.section_ops[section]
        found = [f.name for f in self.functions if f.section == section]
        if len(found) != 1:
            raise KeyError(f"assignment {self.name}: section {section!r} has {len(found)} functions and no "
                           "entry in section_ops")
        return found[0]

    def outputs(self, op: str) -> Tuple[str, ...]:
        """What `op` returns, by name: a function's outputs, or a composition's (those of its own function)."""
        composed = self.composition(op)
        return self.function(composed.own if composed else op).outputs

    def label(self, op: str) -> str:
        composed = self.composition(op)
        return composed.label if composed else op

    def signature(self, op: str) -> str:
        composed = self.composition(op)
        return self.function(composed.own if composed else op).signature

    def function_of(self, op: str) -> str:
        """The contract function behind an op (a composition's own function)."""
        composed = self.composition(op)
        return composed.own if composed else op

    @property
    def graded_sections(self) -> Tuple[str, ...]:
        """Sections whose function is called once on the worked example before their checks (smoke test)."""
        return tuple(s for s in self.sections if s != self.capstone)

    def wire(self) -> Dict[str, Any]:
        """What the worker needs to know: the function names and how to compose ops (plain JSON)."""
        return {"functions": list(self.function_names),
                "compositions": {c.op: c.to_wire() for c in self.compositions}}

    # -- where its parts live ---------------------------------------------------------------------
    def module(self, what: str) -> ModuleType:
        """Import one of the assignment's modules: "reference" or "mistakes"."""
        return importlib.import_module(getattr(self, what))

    @property
    def folder(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent

    @property
    def checks_dir(self) -> Path:
        return self.folder / "checks"

    @property
    def defaults_file(self) -> Path:
        return self.folder / "defaults.toml"

    def answer_paths(self) -> Tuple[str, ...]:
        """What student code must not read: the assignment's folder and its reference module."""
        reference = Path(self.module("reference").__file__).resolve()
        return (str(self.folder.resolve()), str(reference))

    def worked_example(self, section: str) -> Optional[Tuple[Any, ...]]:
        """The worked-example inputs of a section's op (None: no smoke call for it)."""
        if self.example_args is None or section not in self.graded_sections:
            return None
        module, _, name = self.example_args.partition(":")
        return getattr(importlib.import_module(module), name)(section)

    def catalogue(self) -> Any:
        """The mistake catalogue (`autograder.diagnosis.Catalogue`), or None when the assignment has none."""
        return self.module("mistakes").CATALOGUE if self.mistakes else None
