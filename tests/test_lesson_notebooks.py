"""The lesson notebooks (student_submissions/notebooks/) run end to end in a real Jupyter kernel (nbclient,
kernel `python3` from ipykernel), offline: the model is a small seeded GPT-2 saved here and named through
AUTOGRADER_MODEL, the course config through AUTOGRADER_CONFIG.

- attention_lesson.ipynb with its TODOs filled in runs every cell, and its last cell grades the notebook
  file itself to full marks, with the result table and the heatmaps inline;
- left as handed out (TODOs open), the grader still imports it: the demo cells are Jupyter-only;
- model_comparison.ipynb loads the model, injects the reference attention (and a buggy one), compares and
  draws the heatmaps.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Dict, List

import nbformat
import pytest
import torch

from autograder.assignments.attention.contract import ASSIGNMENT as ATTENTION
from autograder.runtime.submission import Submission, SubmissionError
from tests.grading_helpers import REPO
from tests.model_fixtures import TOKENIZER_FILES, gpt2_tokenizer

LESSONS = REPO / "student_submissions" / "notebooks"
LESSON, DEMO = LESSONS / "attention_lesson.ipynb", LESSONS / "model_comparison.ipynb"
FUNCTIONS = ["linear_projections", "attention_scores", "attention_weights", "aggregate_values"]
SOLUTION = {  # what replaces each TODO's `raise NotImplementedError(...)`
    "section 1: linear_projections": "return x @ W_q, x @ W_k, x @ W_v",
    "section 2: attention_scores": "return Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])",
    "section 3: attention_weights": "if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                                    "    return torch.softmax(scores, dim=-1)",
    "section 4: aggregate_values": "return weights @ V",
}
CONFIG = ("[hypothesis]\nmax_examples = 5\nshrink = false\n[timeouts]\ncall_s = 30\nimport_s = 60\n"
          "[model]\nenabled = true\ncontinuation_tokens = 2\n")

pytestmark = pytest.mark.timeout(900, method="thread")


def solved(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every TODO cell's `raise NotImplementedError("section N: ...")` replaced by a
    correct body."""
    todo = [c for c in notebook.cells if "todo" in c.metadata.get("tags", [])]
    assert len(todo) == 4
    for cell in todo:
        key = re.search(r'raise NotImplementedError\("(.+?)"\)', cell.source).group(1)
        cell.source = cell.source.replace(f'raise NotImplementedError("{key}")', SOLUTION[key])
    return notebook


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell of the notebook at `path` in a fresh python3 kernel started in its folder (as
    Jupyter does); raises nbclient's CellExecutionError at the first cell that fails."""
    from nbclient import NotebookClient

    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def outputs(cell: nbformat.NotebookNode) -> Dict[str, Any]:
    """A code cell's output: its printed text, and how many PNG images it displayed."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    images = sum("image/png" in o.get("data", {}) for o in cell.outputs)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    return {"text": text, "images": images, "errors": errors}


def code_cells(notebook: nbformat.NotebookNode) -> List[nbformat.NotebookNode]:
    return [c for c in notebook.cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def small_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 with 64-dimensional heads (2 blocks, 2 heads), seeded weights and GPT-2's tokenizer."""
    if not (TOKENIZER_FILES / "vocab.json").exists():
        pytest.skip(f"GPT-2 tokenizer files not found at {TOKENIZER_FILES}")
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("models") / "small-gpt2"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=128, n_head=2, n_positions=64, vocab_size=50257))
    model.save_pretrained(folder)
    gpt2_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def offline_course(tmp_path: Path, small_gpt2: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel (and the grader it starts) see the small model and the course config; no hub."""
    config = tmp_path / "course.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("AUTOGRADER_CONFIG", str(config))
    monkeypatch.setenv("AUTOGRADER_MODEL", str(small_gpt2))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # this checkout's autograder, in the kernel and the grader
    return tmp_path


def test_the_lesson_as_handed_out_is_importable_by_the_grader(tmp_path: Path) -> None:
    """Its TODOs raise, but only when called: the worked-example cells are under __main__, so the grader
    imports the four functions (and would grade the sections a student has done)."""
    copy = shutil.copy(LESSON, tmp_path / LESSON.name)
    with Submission(copy, import_timeout=60, contract=ATTENTION.wire()) as sub:
        assert sub.load_error is None
        assert list(sub.functions) == FUNCTIONS
        with pytest.raises(SubmissionError, match="NotImplementedError: section 2: attention_scores"):
            sub.call("attention_scores", torch.zeros(1, 6, 64), torch.zeros(1, 6, 64))


def test_the_lesson_has_theory_shapes_and_the_worked_example() -> None:
    notebook = nbformat.read(str(LESSON), as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for formula in (r"\mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V", r"Q = X W_Q", r"\sqrt{d_k}",
                    r"e^{S_{ij} - m_i}", r"\mathrm{out} = A V"):
        assert formula in markdown
    for shape in ("$[1, 6, 64]$", "$[1, 6, 6]$"):
        assert shape in markdown
    assert 'PROMPT_EXAMPLE = "The cat sat on the mat"' in code_cells(notebook)[1].source
    assert "D_MODEL = D_K = 64" in code_cells(notebook)[1].source


@pytest.mark.slow
def test_solved_lesson_runs_and_grades_itself_to_full_marks(offline_course: Path) -> None:
    path = offline_course / LESSON.name
    nbformat.write(solved(nbformat.read(str(LESSON), as_version=4)), str(path))
    notebook = execute(path)
    cells = [outputs(c) for c in code_cells(notebook)]
    assert all(not c["errors"] for c in cells)
    assert "Q (1, 6, 64) K (1, 6, 64) V (1, 6, 64)" in "".join(c["text"] for c in cells)
    assert any(c["images"] for c in cells[:-1])  # the worked example's weights, drawn inline
    last = cells[-1]
    assert "Your score: 100 / 100" in last["text"], last["text"][-3000:]
    table = re.search(r"section\s+points\s+checks\n(.*?)\ntotal\s+100 / 100", last["text"], re.S)
    assert table and all(re.search(rf"^{s}\s+(\d+) / \1\b", table.group(1), re.M)
                         for s in ("projections", "scores", "softmax", "values", "attention", "model"))
    assert last["images"] == 2  # heatmaps of the student's attention inside the model, inline


@pytest.mark.slow
def test_model_comparison_demonstration_runs(offline_course: Path) -> None:
    path = Path(shutil.copy(DEMO, offline_course / DEMO.name))
    notebook = execute(path)
    cells = [outputs(c) for c in code_cells(notebook)]
    assert all(not c["errors"] for c in cells)
    text = "".join(c["text"] for c in cells)
    assert "small-gpt2: 2 blocks, 2 heads of 64 dimensions" in text
    assert "6 tokens: ['The', ' cat', ' sat', ' on', ' the', ' mat']" in text
    gaps = [float(g) for g in re.findall(r"attention weights: max \|difference\| (\S+),", text)]
    assert len(gaps) == 2 and gaps[0] < 1e-5 < 1e-2 < gaps[1]  # the reference matches; no scaling does not
    assert "our attention ran inside the model: True" in text
    assert sum(c["images"] for c in cells) == 3  # two heads with the reference, one with the mistake
