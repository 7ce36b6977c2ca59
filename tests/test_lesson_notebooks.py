"""The lesson notebooks (student_submissions/notebooks/) run end to end in a real Jupyter kernel (nbclient,
kernel `python3` from ipykernel), offline: the model is a small seeded GPT-2 saved here and named through
AUTOGRADER_MODEL, the course config through AUTOGRADER_CONFIG, GPT-2's tokenizer files through
AUTOGRADER_GPT2_TOKENIZER (the tokenization lesson's GPT-2 checks), Tiny Shakespeare through the config's
[milestone] corpus (the tinygpt lesson; a shorter training budget and a gate still below the bigram
baseline keep the test quick: test_tinygpt_assignment holds the default budget to the default gate).

- each lesson (<assignment>_lesson.ipynb for every assignment: attention, multihead, block, embeddings,
  tokenization, tinygpt) with its TODOs filled in from the assignment's correct submission runs every
  cell, and its last cell grades the notebook file itself to full marks, model section (or milestone)
  included, with the result table (and, where the capstone draws them, the heatmaps) inline, as plain
  text (Jupyter's kernel sets FORCE_COLOR: the grading cell turns colour off);
- left as handed out (TODOs open), the grader still imports it and grades it (0 points, no crash): the
  demo cells are Jupyter-only;
- model_comparison.ipynb loads the model, injects the reference attention (and a buggy one), compares and
  draws the heatmaps.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List

import nbformat
import pytest
import torch

from autograder.assignments import registry
from autograder.runtime.submission import Submission, SubmissionError
from tests.grading_helpers import REPO, SUBMISSIONS, fast_config, grade_quick
from tests.model_fixtures import TINYSHAKESPEARE, TOKENIZER_FILES, gpt2_tokenizer

LESSONS = REPO / "student_submissions" / "notebooks"
LESSON, DEMO = LESSONS / "attention_lesson.ipynb", LESSONS / "model_comparison.ipynb"
ASSIGNMENTS = ["attention", "multihead", "block", "embeddings", "tokenization", "tinygpt"]
CORRECT = {name: SUBMISSIONS / "correct.py" if name == "attention" else SUBMISSIONS / name / "correct.py"
           for name in ASSIGNMENTS}  # what fills each lesson's TODOs
# what each solved lesson prints on its way (its worked example's shapes), and the heatmaps its grade draws
PRINTED = {"attention": "Q (1, 6, 64) K (1, 6, 64) V (1, 6, 64)", "multihead": "out (1, 6, 768) weights (1, 12, 6, 6)",
           "block": "out (1, 6, 768)", "embeddings": "positions (1024, 768) torch.float32",
           "tokenization": "GPT-2 ids [464, 3797, 3332, 319, 262, 2603]", "tinygpt": "logits (1, 6, 66)"}
# the block capstone returns no attention weights; embeddings, tokenization and tinygpt have no capstone
HEATMAPS = {"attention": 2, "multihead": 2, "block": 0, "embeddings": 0, "tokenization": 0, "tinygpt": 0}
CONFIG = ("[hypothesis]\nmax_examples = 5\nshrink = false\n[timeouts]\ncall_s = 30\nimport_s = 60\n"
          "[model]\nenabled = true\ncontinuation_tokens = 2\n")
# tinygpt's milestone in the lesson test: 300 steps (~10 s) reach ~2.36 nats/char; the gate stays below the
# bigram baseline (2.48), so a forward that trains nothing still fails
MILESTONE = f"[milestone]\ncorpus = {json.dumps(str(TINYSHAKESPEARE))}\nsteps = 300\ngate = 2.45\n"
# the theory each lesson's markdown states (formulas and the example's shapes), and its setup cell's constants
THEORY = {
    "attention": ([r"\mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V", r"Q = X W_Q", r"\sqrt{d_k}",
                   r"e^{S_{ij} - m_i}", r"\mathrm{out} = A V", "$[1, 6, 64]$", "$[1, 6, 6]$"], "D_MODEL = D_K = 64"),
    "multihead": ([r"\mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W_O", r"\sqrt{d_{head}}",
                   r"\mathrm{mask}_{tk} = [\,k \le t\,]", r"\mathrm{merge}(A V_h)\, W_O",
                   "$[1, 6, 768] \\to [1, 12, 6, 64]$", "$[6, 6]$", "weights $[1, 12, 6, 6]$"], "D_MODEL, N_HEADS"),
    "block": ([r"h = x + \mathrm{Attn}\big(\mathrm{LN}_1(x)\big)", r"\sqrt{\sigma^2 + \epsilon}",
               r"0.044715\, x^3", r"\mathrm{GELU}(x W_1 + b_1)\, W_2 + b_2", "$[1, 6, 768]$", "[1, 6, 3072]",
               "d_{ff} = 3072"], "D_MODEL, N_HEADS"),
    "embeddings": ([r"x_t = E_{\mathrm{id}_t} + PE_t",
                    r"PE_{p,\,2i} = \sin\!\left(\frac{p}{10000^{2i/d_{model}}}\right)",
                    r"PE_{p,\,2i+1} = \cos\!\left(\frac{p}{10000^{2i/d_{model}}}\right)",
                    r"\sum_{i} \cos\big((p - q)\, \omega_i\big)", r"X = \mathrm{emb}(\mathrm{ids}) + PE[:s]",
                    "ids $[1, 6]$", "$[1024, 768]$", "$[1, 6, 768]$"], "D_MODEL, MAX_SEQ = 768, 1024"),
    "tokenization": ([r"\mathrm{decode}(\mathrm{encode}(t)) = t",
                      r"\mathrm{count}(a, b) = \#\{\, j : (x_j, x_{j+1}) = (a, b) \,\}",
                      r"(a^*, b^*) \mapsto 256 + k", r"k^* = \min\,\{\, k : \mathrm{merges}_k",
                      r"\mathrm{bytes}(256 + k) = \mathrm{bytes}(a_k) \,\|\, \mathrm{bytes}(b_k)",
                      "int64 $[22]$", "$[n, 2]$", "$[50000, 2]$: ids $[6]$"], "SPLIT_PATTERN = r"),
    "tinygpt": ([r"X^{(0)} = W_{te}[\mathrm{ids}] + W_{pe}[:s]", r"\mathrm{LN}_f\big(X^{(L)}\big)\, W_{te}^\top",
                 r"M_{tk} = [\,k \le t\,]", r"\log \mathrm{softmax}(\mathrm{logits}_t)_{y_t}", "$[1, 6]$",
                 "$[1, 6, 64]$", "logits $[1, 6, 66]$"], "N_LAYERS, D_MODEL, N_HEADS, MAX_SEQ = 2, 64, 2, 32"),
}
PROMPTS = {"tinygpt": 'PROMPT_EXAMPLE = "ROMEO:"'}  # the milestone's sample prompt; the others' worked example
# inputs of the second function (encode_chars) where the contract has no worked example
EXAMPLE_ARGS = {"tokenization": ("cat", "act")}

pytestmark = pytest.mark.timeout(900, method="thread")


def lesson(assignment: str) -> Path:
    return LESSONS / f"{assignment}_lesson.ipynb"


def required(assignment: str) -> List[str]:
    """The contract's functions a submission must define, in section order: one TODO cell each."""
    return [f.name for f in registry.get(assignment).functions if not f.optional]


def solved(notebook: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """The notebook with every TODO cell's function replaced by the one of the assignment's correct .py;
    its other functions (helpers, an optional composition) go into the first TODO cell, before the check
    cells that may need them (tokenization's learn_bpe calls its helpers in section 4's check)."""
    text = CORRECT[assignment].read_text()
    functions = {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
                 if isinstance(node, ast.FunctionDef)}
    todo = [c for c in notebook.cells if "todo" in c.metadata.get("tags", [])]
    named = [re.search(r"^def (\w+)\(", cell.source, re.M).group(1) for cell in todo]
    assert named == required(assignment)
    for cell, name in zip(todo, named):
        cell.source = functions[name]
    todo[0].source = "\n\n\n".join([source for name, source in functions.items() if name not in named]
                                    + [todo[0].source])
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
    monkeypatch.setenv("AUTOGRADER_GPT2_TOKENIZER", str(TOKENIZER_FILES))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # this checkout's autograder, in the kernel and the grader
    return tmp_path


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_lesson_as_handed_out_is_importable_by_the_grader(assignment: str, tmp_path: Path) -> None:
    """Its TODOs raise, but only when called: the worked-example cells are under __main__, so the grader
    imports the contract's functions (and would grade the sections a student has done)."""
    contract = registry.get(assignment)
    copy = shutil.copy(lesson(assignment), tmp_path / lesson(assignment).name)
    with Submission(copy, import_timeout=60, contract=contract.wire()) as sub:
        assert sub.load_error is None
        assert list(sub.functions) == required(assignment)
        number = min(2, len(required(assignment)))  # the second function (tinygpt's only one), called with
        name = required(assignment)[number - 1]      # its worked example's inputs
        args = contract.worked_example(contract.function(name).section) or EXAMPLE_ARGS[assignment]
        with pytest.raises(SubmissionError, match=f"NotImplementedError: section {number}: {name}"):
            sub.call(name, *args)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_lesson_as_handed_out_is_graded_without_crashing(assignment: str, tmp_path: Path) -> None:
    """Graded as handed out (model section off): every section scores 0, each failure says which TODO."""
    (tmp_path / "autograder.toml").write_text(fast_config(max_examples=2, assignment=assignment))
    copy = Path(shutil.copy(lesson(assignment), tmp_path / lesson(assignment).name))
    document = grade_quick(copy, tmp_path, assignment=assignment)
    assert document["assignment"] == assignment and document["submission"]["load_error"] is None
    assert document["score"] == 0 and document["checks"]
    assert any("NotImplementedError: section 1:" in c["message"] for c in document["checks"])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_lesson_has_theory_shapes_and_the_worked_example(assignment: str) -> None:
    """The formulas and the example's shapes in the markdown; the course constants in the setup cell (the
    second code cell); one TODO cell per contract function, each raising as the handed-out file does."""
    notebook = nbformat.read(str(lesson(assignment)), as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    formulas_and_shapes, constants = THEORY[assignment]
    for piece in formulas_and_shapes:
        assert piece in markdown, (assignment, piece)
    setup = code_cells(notebook)[1].source
    assert PROMPTS.get(assignment, 'PROMPT_EXAMPLE = "The cat sat on the mat"') in setup and constants in setup
    todo = [c.source for c in notebook.cells if "todo" in c.metadata.get("tags", [])]
    assert len(todo) == len(required(assignment))
    for number, (source, function) in enumerate(zip(todo, required(assignment)), start=1):
        assert f'raise NotImplementedError("section {number}: {function}")' in source, (assignment, function)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_lesson_runs_and_grades_itself_to_full_marks(assignment: str, offline_course: Path) -> None:
    if assignment == "tinygpt":
        if not TINYSHAKESPEARE.is_file():
            pytest.skip(f"Tiny Shakespeare not at {TINYSHAKESPEARE}")
        with (offline_course / "course.toml").open("a") as config:
            config.write(MILESTONE)
    path = offline_course / lesson(assignment).name
    nbformat.write(solved(nbformat.read(str(lesson(assignment)), as_version=4), assignment), str(path))
    notebook = execute(path)
    cells = [outputs(c) for c in code_cells(notebook)]
    assert all(not c["errors"] for c in cells)
    assert PRINTED[assignment] in "".join(c["text"] for c in cells)
    assert any(c["images"] for c in cells[:-1])  # the worked example, drawn inline
    last = cells[-1]
    assert "Your score: 100 / 100" in last["text"], last["text"][-3000:]
    assert "\x1b[" not in last["text"], "the grading cell shows plain text, no terminal colour codes"
    table = re.search(r"section\s+points\s+checks\n(.*?)\ntotal\s+100 / 100", last["text"], re.S)
    assert table and all(re.search(rf"^{s}\s+(\d+) / \1\b", table.group(1), re.M)
                         for s in registry.get(assignment).sections), last["text"][-3000:]
    assert last["images"] == HEATMAPS[assignment]  # the student's attention inside the model, inline


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
