"""A submission's Python source, from a .py file or a Jupyter notebook, in small named steps.

Like nbgrader's preprocessors, each step of turning a notebook into the module the worker imports does
one thing, and the grader (`submission.precheck`) and the worker (`worker.Runner.load`) run the same steps:

    read_code_cells(text)    the notebook's code cells, in order (nbformat; markdown and raw cells dropped)
    neutralise(cell)         IPython syntax made inert, line for line: `%magic`, `!shell`, `obj?` lines become
                             `pass`, `x = !cmd` becomes `x = None`, a `%%bash`-style cell becomes blank lines
                             (`%%time`, `%%capture`, ... keep their Python body)
    assemble(cells)          one `ModuleSource`: the cells joined, and where each begins, so that a module
                             line maps back to "code cell 3, line 2" (`ModuleSource.where`)
    compile_cells(source)    one code object per cell (`from __future__` carries over, as in Jupyter)

A .py file is one cell and is not rewritten. A .py exported from Jupyter calls `get_ipython()`: the
module gets `ipython_stand_ins()`, a `get_ipython()` whose magics and shell commands do nothing (a
`run_cell_magic` of a Python-body magic such as `%%time` runs its body) and a `display()` that does nothing.
Nothing a magic or shell line asks for is ever executed.
"""
from __future__ import annotations

import __future__
import ast
import functools
import operator
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

SUFFIXES = (".py", ".ipynb")  # what a submission may be
NOTEBOOK = ".ipynb"
# cell magics whose body is Python that Jupyter runs (once, for our purposes); every other cell magic's
# body is another language or a file's content (%%bash, %%writefile, %%html, ...): the cell is dropped
PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "python", "python3", "debug"})
_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, name).compiler_flag
                                                for name in __future__.all_feature_names))
_HELP = re.compile(r"^(\?{1,2}[\w.]+|[\w.]+\?{1,2})$")             # `torch.matmul?`, `??x`
_ASSIGNED = re.compile(r"^(?P<target>[A-Za-z_]\w*)\s*=\s*[!%]")     # `files = !ls`, `t = %timeit -o f()`


class NotebookError(ValueError):
    """The file is not a notebook that can be read (not JSON, not nbformat, a cell that is not text)."""


class CellSyntaxError(SyntaxError):
    """A cell that does not compile; `where` names the place (`line 5`, or `code cell 3, line 2`) and
    `text` is that line of the module (never read back from the file, which for a notebook is JSON)."""

    def __init__(self, exc: SyntaxError, source: "ModuleSource", lineno: int) -> None:
        lines = source.text.split("\n")
        text = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
        super().__init__(exc.msg, (exc.filename, lineno, exc.offset, text))
        self.where = source.where(lineno)


@dataclass(frozen=True)
class Cell:
    """One code cell: `number` counts code cells from 1 (0 for a .py file, which is one cell); `source`
    is its Python after `neutralise`; `first_line` is where it begins in the module (1-based)."""

    number: int
    source: str
    first_line: int


@dataclass(frozen=True)
class ModuleSource:
    """The module a submission becomes: its cells, in order. `text` is the whole module's source."""

    cells: Tuple[Cell, ...]
    notebook: bool

    @property
    def text(self) -> str:
        return "".join(cell.source + "\n" for cell in self.cells)

    def cell_at(self, lineno: int) -> Optional[Cell]:
        """The cell that holds module line `lineno`."""
        found = None
        for cell in self.cells:
            if cell.first_line <= lineno:
                found = cell
        return found

    def where(self, lineno: int) -> str:
        """`line 7` for a .py, `code cell 3, line 2` for a notebook (module line 7 is line 2 of cell 3)."""
        cell = self.cell_at(lineno) if self.notebook else None
        if cell is None:
            return f"line {lineno}"
        return f"code cell {cell.number}, line {lineno - cell.first_line + 1}"


# -- the steps -----------------------------------------------------------------------------------

def read_code_cells(text: str) -> List[str]:
    """The sources of the notebook's code cells, in order. NotebookError when it is not a notebook."""
    import nbformat  # only notebooks pay for it

    try:
        with warnings.catch_warnings():  # missing cell ids, old minor versions: Jupyter opens those too
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
        cells = notebook["cells"]
        sources = [cell.get("source", "") for cell in cells if cell.get("cell_type") == "code"]
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a file that is not a notebook
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise NotebookError(f"is not a Jupyter notebook that can be read ({first})") from None
    if not all(isinstance(source, str) for source in sources):
        raise NotebookError("is not a Jupyter notebook that can be read (a code cell's source is not text)")
    return sources


def neutralise(source: str) -> str:
    """The cell with its IPython syntax made inert, line for line (line numbers stay those of the cell).

    Only lines where a statement starts are IPython syntax (`%` or `!` never start Python, nor does a
    `name?` line); a `%` inside an expression that spans lines is Python's modulo and is left alone.
    """
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_BODY_MAGICS:
            return "\n".join("" for _ in lines)  # %%bash, %%writefile, %%html: not Python, nothing runs
        lines[first] = ""
    depth, quote = 0, ""          # Python's state at the end of the line before (brackets, open string)
    python_continued = False      # that line ended in a backslash
    magic_continued = False       # that line was IPython syntax ending in a backslash: this one belongs to it
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if magic_continued:
            lines[i], magic_continued = "", stripped.endswith("\\")
            continue
        if depth == 0 and not quote and not python_continued:  # a statement starts here
            assigned = _ASSIGNED.match(stripped)
            if stripped[:1] in ("%", "!") or _HELP.match(stripped) or assigned:
                lines[i] = f"{indent}{assigned.group('target')} = None" if assigned else f"{indent}pass"
                magic_continued = stripped.endswith("\\")
                continue
        depth, quote = _scan(line, depth, quote)
        python_continued = not quote and stripped.endswith("\\") and not stripped.startswith("#")
    return "\n".join(lines)


def _scan(line: str, depth: int, quote: str) -> Tuple[int, str]:
    """Bracket depth and the open string quote ('' when none) after `line`, given those before it."""
    i = 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            i += 1
            continue
        char = line[i]
        if char == "#":
            break
        if char in "\"'":
            quote = char * 3 if line.startswith(char * 3, i) else char
            i += len(quote)
            continue
        depth += char in "([{"
        depth -= char in ")]}" and depth > 0
        i += 1
    return depth, "" if len(quote) == 1 else quote  # a one-quote string ends with its line


def assemble(sources: List[str], notebook: bool) -> ModuleSource:
    """The module made of these cell sources, in order, each starting on a line of its own."""
    cells, line = [], 1
    for number, source in enumerate(sources, start=1 if notebook else 0):
        cells.append(Cell(number, source, line))
        line += source.count("\n") + 1
    return ModuleSource(tuple(cells), notebook)


def module_source(path: Path, raw: bytes) -> ModuleSource:
    """The module that the file at `path` (its content `raw`) becomes. UnicodeDecodeError when it is not
    UTF-8, NotebookError for a .ipynb that is not a notebook."""
    text = raw.decode("utf-8-sig")
    if Path(path).suffix != NOTEBOOK:
        return assemble([text], notebook=False)
    return assemble([neutralise(source) for source in read_code_cells(text)], notebook=True)


def compile_cells(source: ModuleSource, filename: str) -> Iterator[Tuple[Cell, CodeType]]:
    """Each cell compiled on its own (as Jupyter runs them), with the module's line numbers; a cell's
    `from __future__` imports hold for the cells after it. CellSyntaxError at the first cell that does not
    compile (ValueError for null bytes)."""
    flags = 0
    for cell in source.cells:
        try:
            tree = ast.parse(cell.source, filename)
        except SyntaxError as exc:
            raise CellSyntaxError(exc, source, cell.first_line + (exc.lineno or 1) - 1) from None
        ast.increment_lineno(tree, cell.first_line - 1)
        try:  # what only the compiler sees: `return` outside a function, a misplaced `from __future__`, ...
            code = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
        except SyntaxError as exc:
            raise CellSyntaxError(exc, source, exc.lineno or cell.first_line) from None
        flags |= code.co_flags & _FUTURE_FLAGS
        yield cell, code


# -- running a Jupyter-exported .py ----------------------------------------------------------------

def _nothing(*args: Any, **kwargs: Any) -> None:
    """A magic, a shell command or a display while grading: nothing happens."""


class InertShell:
    """What `get_ipython()` returns while a submission is graded: every method does nothing and returns
    None (`run_line_magic`, `system`, `getoutput`, ...), except that `run_cell_magic` of a magic whose body
    is Python (`%%time`, `%%capture`) runs that body in the module, as Jupyter would."""

    def __init__(self, namespace: Dict[str, Any]) -> None:
        self._namespace = namespace

    def run_cell_magic(self, magic: str, line: str, cell: str) -> None:
        if magic in PYTHON_BODY_MAGICS and isinstance(cell, str):
            exec(compile(cell, "<cell magic>", "exec", dont_inherit=True), self._namespace)  # noqa: S102 - the student's own cell

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _nothing


def ipython_stand_ins(namespace: Dict[str, Any]) -> Dict[str, Any]:
    """The names Jupyter provides without an import, made harmless, for a module's namespace."""
    shell = InertShell(namespace)
    return {"get_ipython": lambda: shell, "display": _nothing}
