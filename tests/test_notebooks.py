"""Notebook submissions: a .ipynb is graded exactly as the same code in a .py, through every door (`grade`,
`pytest --submission`, `autograder batch`); IPython syntax never runs; errors and time-outs name the cell.

The notebooks are built here from the example .py files: the file split at its top-level definitions into
code cells, with markdown between them and the IPython lines a student's notebook carries.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import cli
from autograder.assignments.attention.contract import ASSIGNMENT as ATTENTION
from autograder.report import evaluation
from autograder.runtime import notebook
from autograder.runtime.submission import Submission, SubmissionError, precheck
from autograder.runtime.worker import Runner
from tests.grading_helpers import REPO, SUBMISSIONS, by_id, grade_quick

# few examples, no model; generous time limits: grades compared across doors must not differ by a call
# that timed out on a busy machine
CONFIG = "[hypothesis]\nmax_examples = 5\nshrink = false\n[timeouts]\ncall_s = 30\nimport_s = 60\n[model]\nenabled = false\n"
EXAMPLES = ["correct.py", "buggy_detached_output.py", "buggy_mask_ignored.py"]  # the last: batch only
JUPYTER_LINES = "%matplotlib inline\n!pip install torch --quiet\n%load_ext autoreload\n%autoreload 2"


def cells_of(source: str) -> List[str]:
    """The .py split before each top-level `def`/`class` (its imports and docstring are the first cell)."""
    starts = [0] + [m.start() for m in re.finditer(r"^(?:def|class) ", source, flags=re.M)]
    return [source[a:b].strip("\n") for a, b in zip(starts, starts[1:] + [len(source)]) if source[a:b].strip()]


def write_notebook(path: Path, code_cells: List[str]) -> Path:
    """A v4 notebook: a markdown cell before each code cell, as a lesson has."""
    nb = new_notebook()
    for i, source in enumerate(code_cells, start=1):
        nb.cells += [new_markdown_cell(f"## Part {i}\nSome $\\LaTeX$: $QK^T/\\sqrt{{d_k}}$."), new_code_cell(source)]
    nbformat.write(nb, str(path))
    return path


def notebook_like(py: Path, folder: Path, name: str = "") -> Path:
    """The .py as a student's notebook: Jupyter lines first, then its code, one cell per definition, the
    second under `%%time`."""
    cells = cells_of(py.read_text())
    cells[1] = "%%time\n" + cells[1]
    return write_notebook(folder / (name or py.with_suffix(".ipynb").name), [JUPYTER_LINES] + cells)


def exported_py(nb_path: Path, folder: Path) -> Path:
    """The notebook as Jupyter's "Download as .py" writes it (nbconvert's script exporter: IPython's own
    transformer turns magics into get_ipython() calls, cells start with `# In[ ]:`)."""
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    nb = nbformat.read(str(nb_path), as_version=4)
    body = "".join(f"\n# In[{i}]:\n\n\n{transform(c.source)}\n\n"
                   for i, c in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1))
    out = folder / f"{nb_path.stem}_exported.py"
    out.write_text("#!/usr/bin/env python\n# coding: utf-8\n" + body)
    return out


def grading_view(document: Dict[str, Any]) -> Dict[str, Any]:
    """What a grade is: score, sections and every check's outcome and message (not paths, hashes, timing)."""
    return {"score": document["score"], "max_score": document["max_score"], "status": document["status"],
            "sections": document["sections"],
            "checks": [(c["id"], c["status"], c["score"], c["message"], c["hint"], c["mistake"])
                       for c in document["checks"]]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebooks")
    (path / "autograder.toml").write_text(CONFIG)
    return path


# -- the steps -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, expected", [
    ("%matplotlib inline\nx = 1", "pass\nx = 1"),
    ("!pip install torch \\\n    numpy\nx = 1", "pass\n\nx = 1"),
    ("files = !ls\nt = %timeit -o f()", "files = None\nt = None"),
    ("torch.matmul?\n??torch\nx = 1  # why?", "pass\npass\nx = 1  # why?"),
    ("for i in range(2):\n    %time f(i)\n", "for i in range(2):\n    pass\n"),
    ("%%time\ndef f():\n    return 1", "\ndef f():\n    return 1"),
    ("%%bash\nrm -rf ~\necho done", "\n\n"),
    ("%%writefile attention.py\nimport os", "\n"),
    # Python that only looks like IPython: a modulo and `!=` continuing an expression, a docstring line
    ("x = (7\n     % 3)\ny = (1\n     != 2)", "x = (7\n     % 3)\ny = (1\n     != 2)"),
    ('s = """\n%not a magic\n!nor this\n"""', 's = """\n%not a magic\n!nor this\n"""'),
    ("x = 1 + \\\n    2\n%time x", "x = 1 + \\\n    2\npass"),
    ("d = {'a': [1,\n  2]}\n!ls", "d = {'a': [1,\n  2]}\npass"),
])
def test_neutralise_keeps_lines_and_python(cell: str, expected: str) -> None:
    assert notebook.neutralise(cell) == expected
    compile(notebook.neutralise(cell), "cell", "exec")


def test_module_lines_map_back_to_cells(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", ["import math", "%time 1\n\ndef f():\n    return 1", "x = 2"])
    source = notebook.module_source(path, path.read_bytes())
    assert [c.number for c in source.cells] == [1, 2, 3]
    def_line = source.cells[1].first_line + 2  # line 3 of cell 2
    assert source.text.splitlines()[def_line - 1] == "def f():"
    assert source.where(def_line) == "code cell 2, line 3"
    assert source.where(source.cells[2].first_line) == "code cell 3, line 1"
    py = notebook.module_source(tmp_path / "a.py", b"x = 1\n")
    assert py.where(1) == "line 1" and py.text == "x = 1\n\n"


def test_future_imports_hold_for_later_cells(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", ["from __future__ import annotations", "def f(x: Undefined): pass"])
    runner = Runner(path)
    assert runner.load()["ok"] is True  # without the carried flag, the annotation would raise NameError


# -- errors name the cell ----------------------------------------------------------------------------

def test_syntax_error_names_cell_and_line(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", ["import math", "x = 1\ndef broken(:\n    pass"])
    error = precheck(path, tmp_path)
    assert error is not None and error.kind == "load"
    assert error.message == "nb.ipynb has a syntax error at code cell 2, line 2: invalid syntax\n    def broken(:"
    outside = write_notebook(tmp_path / "ret.ipynb", ["x = 1", "return x"])  # seen by the compiler only
    assert "at code cell 2, line 1: 'return' outside function" in precheck(outside, tmp_path).message


def test_code_too_deep_for_the_compiler_is_refused_not_a_crash(tmp_path: Path) -> None:
    deep = "x = " + "-" * 200_000 + "1"
    py = tmp_path / "deep.py"
    py.write_text(deep)
    for path in (py, write_notebook(tmp_path / "deep.ipynb", ["import math", deep])):
        assert f"{path.name} cannot be compiled" in precheck(path, tmp_path).message


@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "is not a Jupyter notebook that can be read"),
    (b'{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "is not a Jupyter notebook"),
    (b"[]", "is not a Jupyter notebook"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_files_that_are_not_notebooks(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(content)
    assert fragment in precheck(path, tmp_path).message
    empty = write_notebook(tmp_path / "empty.ipynb", ["", "  \n"])
    assert "has no code" in precheck(empty, tmp_path).message


def test_errors_at_import_and_in_calls_name_the_cell(folder: Path) -> None:
    cells = cells_of((SUBMISSIONS / "correct.py").read_text())
    raising = write_notebook(folder / "raises_at_import.ipynb", cells + ["x = 1\nraise RuntimeError('demo cell failed')"])
    with Submission(raising, import_timeout=60, contract=ATTENTION.wire()) as sub:
        assert sub.load_error is not None
        assert (f"importing raises_at_import.ipynb raised RuntimeError: demo cell failed at code cell {len(cells) + 1}, "
                "line 2 (raise RuntimeError('demo cell failed'))") == sub.load_error.message
        assert 'File "raises_at_import.ipynb", code cell' in sub.load_error.detail
    weights = next(i for i, c in enumerate(cells) if c.startswith("def attention_weights"))
    cells[weights] = "def attention_weights(scores, mask=None):\n    raise ValueError('not yet')\n"
    path = write_notebook(folder / "raises_in_call.ipynb", cells)
    with Submission(path, import_timeout=60, contract=ATTENTION.wire()) as sub:
        with pytest.raises(SubmissionError) as raised:
            sub.call("attention_weights", torch.zeros(2, 2))
    assert f"attention_weights raised ValueError: not yet at code cell {weights + 1}, line 2" in str(raised.value)


def test_a_long_cell_runs_out_of_the_import_limit_and_is_named(folder: Path) -> None:
    cells = cells_of((SUBMISSIONS / "correct.py").read_text())
    path = write_notebook(folder / "trains.ipynb", cells + ["import time\nfor epoch in range(1000):\n    time.sleep(1)"])
    with Submission(path, import_timeout=8, contract=ATTENTION.wire()) as sub:
        assert sub.load_error is not None
        message = sub.load_error.message
    assert message.startswith(f"trains.ipynb did not finish importing within 8 s (code cell {len(cells) + 1} was running)")
    assert 'if __name__ == "__main__":' in message


def test_a_flood_of_forged_progress_does_not_extend_the_limit(folder: Path) -> None:
    """Hostile: a cell finds the worker's socket and sends "running" frames without end (then forged
    numbers): the import limit still holds, and what reaches the message is a number or nothing."""
    flood = ("import gc, json, socket, struct, time\n"
             "sock = next(o for o in gc.get_objects() if isinstance(o, socket.socket) and o.fileno() >= 0)\n"
             "def frame(h):\n    b = json.dumps(h).encode()\n    return struct.pack('!Q', len(b)) + b + struct.pack('!Q', 0)\n"
             "while True:\n"
             "    sock.sendall(frame({'running': {'cell': 7}}) + frame({'running': {'cell': 'x' * 1000}}))\n"
             "    time.sleep(0.001)")
    path = write_notebook(folder / "floods.ipynb", ["import torch", flood])
    started = time.monotonic()
    with Submission(path, import_timeout=6, contract=ATTENTION.wire()) as sub:
        message = sub.load_error.message
    assert time.monotonic() - started < 60
    assert message.startswith("floods.ipynb did not finish importing within 6 s") and "xxx" not in message


def test_forged_progress_is_only_a_number() -> None:
    from autograder.runtime.submission import _cell_number

    assert [_cell_number(v) for v in ({"cell": 3}, {"cell": "3"}, {"cell": True}, {"cell": -1}, [], None)] \
        == [3, None, None, None, None, None]


# -- nothing of IPython's runs -------------------------------------------------------------------

def test_magics_and_shell_lines_never_run(tmp_path: Path) -> None:
    """In-process (no sandbox to stop them), so a line that ran would leave its file behind."""
    marks = [tmp_path / f"ran{i}" for i in range(6)]
    cells = [f"!touch {marks[0]}", f"%system touch {marks[1]}", f"%%bash\ntouch {marks[2]}",
             f"%%writefile {marks[3]}\nx = 1", f"get_ipython().system('touch {marks[4]}')",
             f"out = !touch {marks[5]}\nassert out is None\ndisplay('shown nowhere')\n"
             "get_ipython().run_line_magic('matplotlib', 'inline')\n"
             "get_ipython().run_cell_magic('time', '', 'def timed():\\n    return 7\\n')\nassert timed() == 7"]
    runner = Runner(write_notebook(tmp_path / "shell.ipynb", cells))
    assert runner.load() == {"ok": True, "functions": []}
    assert [m.exists() for m in marks] == [False] * 6


# -- the same grade through every door ------------------------------------------------------------

@pytest.fixture(scope="module")
def pairs(folder: Path) -> Dict[str, Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]]:
    """name -> (grade of the .py, of its notebook, of the notebook's Jupyter export), with `grade`."""
    found = {}
    for name in EXAMPLES[:2]:
        py = shutil.copy(SUBMISSIONS / name, folder / name)
        nb = notebook_like(Path(py), folder)
        exported = exported_py(nb, folder)
        found[name] = tuple(grade_quick(p, folder) for p in (Path(py), nb, exported))
    return found


def test_grade_gives_a_notebook_the_grade_of_its_py(pairs) -> None:
    for name, (py, nb, exported) in pairs.items():
        assert grading_view(nb) == grading_view(py) == grading_view(exported), name
        assert nb["submission"]["load_error"] is None and exported["submission"]["load_error"] is None
        code = [evaluation.functions(evaluation.graded_source(d)[0])[0] for d in (py, nb)]
        assert code[0] == code[1] and len(code[0]) == 5  # the evaluation step reads the same functions
    correct, buggy = pairs["correct.py"][1], pairs["buggy_detached_output.py"][1]
    assert correct["score"] == correct["max_score"] == 80
    assert by_id(buggy)["softmax.gradients"]["mistake"] == "detached_output"  # read from the notebook's code


def test_pytest_submission_takes_a_notebook(folder: Path, pairs) -> None:
    nb = folder / "buggy_detached_output.ipynb"
    report = folder / "plugin.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--submission", str(nb),
                          "--grade-json", str(report), "--grading-config", str(folder / "autograder.toml")],
                         cwd=folder, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert grading_view(json.loads(report.read_text())) == grading_view(pairs["buggy_detached_output.py"][0])


def test_batch_grades_notebooks_and_gives_every_input_a_row(tmp_path: Path, folder: Path, pairs) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in EXAMPLES:
        shutil.copy(SUBMISSIONS / name, subs / name)
        notebook_like(SUBMISSIONS / name, subs, name=f"nb_{Path(name).stem}.ipynb")
    (subs / "notes.txt").write_text("I could not finish")
    (subs / "work.zip").write_bytes(b"PK\x03\x04")
    (subs / ".ipynb_checkpoints").mkdir()  # Jupyter's: never a row
    shutil.copy(subs / "nb_correct.ipynb", subs / ".ipynb_checkpoints" / "nb_correct-checkpoint.ipynb")
    empty = tmp_path / "absent_student"
    empty.mkdir()
    out = tmp_path / "out"
    assert cli.main(["batch", str(subs), str(empty), "--out", str(out), "--jobs", "2",
                     "--config", str(folder / "autograder.toml")]) == cli.EXIT_OK
    reports = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json") if p.name != "summary.json"}
    stems = [Path(n).stem for n in EXAMPLES]
    assert sorted(reports) == sorted(stems + [f"nb_{s}" for s in stems] + ["notes", "work", "absent_student"])
    for stem in stems:
        assert grading_view(reports[f"nb_{stem}"]) == grading_view(reports[stem]), stem
    assert grading_view(reports["correct"]) == grading_view(pairs["correct.py"][0])
    for stem, fragment in (("notes", "notes.txt is not a Python file (.py) or a Jupyter notebook (.ipynb)"),
                           ("work", "work.zip is not a Python file"),
                           ("absent_student", "absent_student is a folder without a file to grade in it")):
        assert reports[stem]["status"] == "not_gradable" and reports[stem]["score"] == 0
        assert fragment in reports[stem]["submission"]["load_error"], stem
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 1 + len(reports)
