"""The HTML views: a student page per report and a batch index, escaped, self-contained, opened in Chromium."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Tuple
from urllib.parse import unquote

import numpy
import PIL.Image
import pytest
import torch

from autograder import cli
from autograder.batch import inputs
from autograder.batch import runner as batch
from autograder.report import document as report_mod
from autograder.report import html as page
from autograder.report import html_batch, source
from autograder.runtime import notebook
from tests.chromium import CHROMIUM, needs_chromium, probed, screenshot
from tests.grading_helpers import FAST_CONFIG, SUBMISSIONS, fast_config
from tests.model_fixtures import gpt2_dir  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(600, method="thread")

# Text a student controls, each piece trying another way out of HTML text or attribute context.
HOSTILE = [
    '<script>window.__pwned="script"</script>',
    "<img src=x onerror=\"window.__pwned='img'\">",
    '</script><script>window.__pwned="close"</script>',
    "\"'><svg onload=\"window.__pwned='attr'\">",
    "<!-- <style>body{display:none}</style>",
]
EVIL = " ".join(HOSTILE)
EVIL_FILE = "x\"><img src=y onerror=window.__pwned=1>.py"
EVIL_SOURCE = ("import torch\n\n\ndef attention_scores(Q, K):\n"
               "    note = \"</script><script>window.__pwned='source'</script>\"\n"
               "    raise ValueError(note)\n")

TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "div", "span",
        "small", "h1", "h2", "h3", "p", "b", "code", "pre", "table", "thead", "tbody", "tfoot", "tr", "th", "td",
        "figure", "img", "figcaption", "details", "summary", "a", "svg", "line", "rect", "text"}
ATTRIBUTES = {"class", "style", "id", "src", "alt", "href", "data-sort", "lang", "charset", "http-equiv",
              "content", "name", "role", "aria-label", "viewbox", "width", "height", "x", "y", "x1", "y1", "x2",
              "y2", "fill", "stroke", "text-anchor"}


class Markup(HTMLParser):
    """Every tag, attribute, script body and text node of a page, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: List[Tuple[str, Dict[str, str]]] = []
        self.scripts: List[str] = []
        self.comments: List[str] = []
        self.text: List[str] = []
        self._in: List[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Any]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in ("meta", "img", "line", "rect"):
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.scripts.append(data)
        elif not (self._in and self._in[-1] == "style"):
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def assert_inert(text: str, scripts: Tuple[str, ...] = ()) -> Markup:
    """The page is only the grader's markup: known tags and attributes, no handler, no comment, images from
    data:image/png only, links to sibling pages only, styles that set a width, and exactly `scripts`."""
    markup = Markup(text)
    for tag, attrs in markup.tags:
        assert tag in TAGS or (tag == "script" and scripts), (tag, attrs)
        assert set(attrs) <= ATTRIBUTES, (tag, attrs)
        if "style" in attrs:
            assert re.fullmatch(r"width:[0-9.]+%", attrs["style"]), attrs
        if tag == "img":
            assert re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]+", attrs["src"]), attrs["src"][:80]
        if tag == "a":
            assert re.fullmatch(r"[A-Za-z0-9%._~-]+\.html", attrs["href"]), attrs["href"]
    assert markup.comments == []
    assert tuple(markup.scripts) == scripts
    return markup


def evil_document(tmp: Path) -> Dict[str, Any]:
    """A valid report whose every student-controlled string is hostile: file name, source lines, printed
    output, function names, messages, hints, mistakes, the model's tokens and text, picture captions."""
    folder = tmp / "evil"
    folder.mkdir()
    path = folder / EVIL_FILE
    path.write_text(EVIL_SOURCE)
    from autograder.model.heatmaps import HeatmapFigure

    picture = HeatmapFigure(["<b>The</b>", " cat", " sat"], 3).render(
        torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]]), torch.full((3, 3), 1 / 3), folder / "h0.png",
        "head 0")

    def check(cid: str, status: str, score: float, top: float, message: str = "", hint: Any = None,
              hidden: bool = False) -> Dict[str, Any]:
        return report_mod.public_check({"id": cid, "section": cid.split(".")[0], "status": status, "score": score,
                                        "max_score": top, "message": message, "hint": hint,
                                        "mistake": EVIL if status == "failed" else None, "duration_s": 0.01,
                                        "hidden": hidden})

    checks = [
        check("projections.values", "passed", 3.0, 3.0),
        check("scores.values", "error", 0.0, 4.0, f"attention_scores raised ValueError: {EVIL} at line 6 "
              "(raise ValueError(note))", hint=EVIL),
        check("softmax.values", "failed", 0.0, 3.0, f"attention_weights: {EVIL}", hint="a hint " + EVIL),
        check("values.values", "failed", 0.0, 3.0, EVIL, hidden=True),
        check("model.runs", "failed", 0.0, 2.0, f"inside the model {EVIL}", hint=EVIL),
    ]
    model = {"model_name": EVIL, "layer_idx": 0, "heads": 12, "prompts": [EVIL], "tokens": [HOSTILE],
             "attention": {"cosine": {"mean": 0.5, "min": None, "per_head": [0.5]}},
             "block_output_max_abs_diff": 0.25, "logits_max_abs_diff": None,
             "next_token": {"kl": [0.1], "top1_agreement": [0.0], "top5_agreement": [0.2],
                            "reference_top5": [HOSTILE], "student_top5": [HOSTILE]},
             "continuation": {"reference": EVIL, "student": EVIL[::-1], "match": False},
             "heatmaps_error": EVIL}
    artifacts = [{"kind": "heatmap", "path": str(picture), "description": EVIL},
                 {"kind": "heatmap", "path": str(folder / (EVIL + ".png")), "description": EVIL}]
    submission = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                  "functions": ["attention_scores", EVIL], "load_error": None,
                  "output": f"{EVIL}\n\u202eevil\x1b[2J{EVIL}"}
    env = {"python": "3", "torch": EVIL, "autograder": EVIL, "seeds": {}, "sandbox": {"enabled": True, "layers": []}}
    return report_mod.assemble(checks, submission, env, time.time(), 1.0, metrics={"model": model},
                               artifacts=artifacts)


def colour_pixels(png: Path, rgb: Tuple[int, int, int], tolerance: int = 12) -> int:
    pixels = numpy.asarray(PIL.Image.open(png).convert("RGB")).astype(int)
    return int((numpy.abs(pixels - numpy.array(rgb)).max(axis=-1) <= tolerance).sum())


GREEN, RED, VIRIDIS_YELLOW = (0x1A, 0x7F, 0x37), (0xCF, 0x22, 0x2E), (253, 231, 37)


# -- where the failure arose ------------------------------------------------------------------------

def test_excerpt_points_at_the_named_line_or_the_named_function(tmp_path: Path) -> None:
    lines = ["import torch", "", "def attention_scores(Q, K):", "    s = Q @ K", "    return s / 0", "",
             "def attention_weights(scores, mask=None):", *[f"    x{i} = {i}" for i in range(40)], "    return x0"]
    module = notebook.assemble(["\n".join(lines)], notebook=False)
    at = source.excerpt(module, "attention_scores raised ZeroDivisionError: at line 1 is a lie at line 5 (s / 0)")
    assert at.mark == 5 and at.numbered()[0] == (3, lines[2]) and at.numbered()[-1] == (7, lines[6])
    whole = source.excerpt(module, "attention_weights: weights differ (aggregate_values is fine)")
    assert whole.mark is None and whole.first == 7 and len(whole.lines) == source.MAX_FUNCTION_LINES
    assert whole.more == 42 - source.MAX_FUNCTION_LINES
    assert source.excerpt(module, "scaled_dot_product_attention is not defined in your file") is None
    assert source.excerpt(module, "at line 999 (out of range)") is None
    long = source.excerpt(notebook.assemble(["x = '" + "a" * 500 + "'"], notebook=False), "at line 1")
    assert len(long.lines[0]) <= source.MAX_LINE_CHARS + 2


def test_source_is_read_only_when_it_is_the_graded_file(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text("def f():\n    return 1\n")
    sub = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert source.graded_source(sub).cells[0].source == "def f():\n    return 1\n"
    path.write_text("def f():\n    return 2\n")  # edited after grading: its lines would mislead
    assert source.graded_source(sub) is None
    assert source.graded_source({**sub, "path": str(tmp_path / "gone.py")}) is None
    assert source.graded_source({**sub, "sha256": None}) is None


# -- the student page ---------------------------------------------------------------------------------

def test_student_page_escapes_every_student_string(tmp_path: Path) -> None:
    document = evil_document(tmp_path)
    text = page.render(document)
    markup = assert_inert(text)
    shown = "".join(markup.text)
    for piece in HOSTILE:  # displayed as the text it is, where it is shown at all
        assert piece in shown
    assert EVIL_FILE in shown and "window.__pwned='source'" in shown  # the file name, its source line
    assert "<script" not in text.lower() and "<!--" not in text and "<svg" not in text
    assert text.count("<img ") == 1  # the one heatmap that exists
    assert "\u202e" not in text and "\x1b" not in text and "?evil?[2J" in shown  # bidi override, terminal escape
    policy = next(a["content"] for t, a in markup.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'none'" in policy and "img-src data:" in policy
    # the hidden check says nothing of its own and shows no source
    assert report_mod.HIDDEN_MESSAGE in shown and shown.count(EVIL_SOURCE.splitlines()[4].strip()) == 1


def test_student_page_shows_points_lost_checks_source_model_and_heatmaps(tmp_path: Path) -> None:
    document = evil_document(tmp_path)
    markup = Markup(page.render(document))
    shown = "".join(markup.text)
    sections = [t for t in markup.tags if t[0] == "tr" and t[1].get("class") in ("ok", "bad", "part")]
    assert len(sections) == len(document["sections"])
    assert "3 / 3" in shown and "0 / 4" in shown and "3 / 15 points" in shown.replace("\xa0", " ")
    assert "−4 points" in shown and "Hint:" in shown
    marked = [a for t, a in markup.tags if t == "tr" and a.get("class") == "mark"]
    assert len(marked) == 1  # the line the error names, once (the hidden check shows none)
    assert "raise ValueError(note)" in shown
    assert "with your attention" in shown and "different continuation" in shown
    images = [a for t, a in markup.tags if t == "img"]
    assert len(images) == 1 and "not embedded" in shown  # the missing picture is named, not linked


def test_a_nan_logits_gap_is_shown_as_such_and_an_encoder_has_no_logits_row(tmp_path: Path) -> None:
    """The report writes NaN as null: a causal LM's null logits gap is said, not dropped."""
    document = evil_document(tmp_path)
    shown = "".join(Markup(page.render(document)).text)
    assert "logits, largest difference" in shown and "not a number: NaN or inf appeared" in shown
    del document["metrics"]["model"]["next_token"]  # an encoder: no logits at all
    shown = "".join(Markup(page.render(document)).text)
    assert "logits, largest difference" not in shown and "block output, largest difference" in shown


def test_not_gradable_page_shows_the_load_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def attention_scores(Q, K):\n    return Q @ K.T +\n")
    submission = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "functions": [],
                  "load_error": "broken.py has a syntax error at line 2: invalid syntax <b>", "output": ""}
    checks = [report_mod.public_check({"id": "scores.values", "section": "scores", "status": "error", "score": 0,
                                       "max_score": 4, "message": submission["load_error"], "duration_s": 0})]
    env = {"python": "3", "torch": "2", "autograder": "0", "seeds": {}, "sandbox": {"enabled": False, "layers": []}}
    markup = Markup(page.render(report_mod.assemble(checks, submission, env, time.time(), 0.1)))
    shown = "".join(markup.text)
    assert "could not be graded" in shown and "invalid syntax <b>" in shown and "All 1 checks score 0" in shown
    assert [a for t, a in markup.tags if t == "tr" and a.get("class") == "mark"]


@needs_chromium
def test_student_page_in_chromium(tmp_path: Path) -> None:
    """Rendered by a real browser: nothing the student wrote runs (even with the CSP removed), the heatmap
    decodes, and the screenshot shows the green and red statuses and the heatmap."""
    document = evil_document(tmp_path)
    out = tmp_path / "student_page.html"
    page.write(document, out)
    seen = probed(out, tmp_path / "probe.html", keep_csp=False)
    assert seen["pwned"] == "undefined"
    assert seen["widths"] and all(int(w) > 0 for w in seen["widths"].split(","))
    assert "&lt;script&gt;window.__pwned" in seen["dom"]  # shown as text by the browser
    png = screenshot(out, tmp_path / "student_page.png", height=3600)  # tall enough for the heatmap
    assert PIL.Image.open(png).size == (1200, 3600)
    assert colour_pixels(png, GREEN) > 200 and colour_pixels(png, RED) > 200
    assert colour_pixels(png, VIRIDIS_YELLOW, 20) > 100


def test_grade_html_writes_the_page_of_the_report(tmp_path: Path) -> None:
    """`autograder grade --html` (through the plugin's --grade-html): the page of the very report written,
    with the student's own failing line marked and the exception's markup escaped."""
    submission = tmp_path / "scores_raise.py"
    shutil.copy(SUBMISSIONS / "correct.py", submission)
    lines = submission.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("return") and i > next(
        j for j, l in enumerate(lines) if l.startswith("def attention_scores")))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at, f"{indent}raise ValueError('<img src=x onerror=alert(1)>')")
    submission.write_text("\n".join(lines) + "\n")
    config = tmp_path / "autograder.toml"
    config.write_text(FAST_CONFIG)
    report, out = tmp_path / "report.json", tmp_path / "pages" / "report.html"
    code = cli.main(["grade", str(submission), "--json", str(report), "--html", str(out), "--config", str(config)])
    assert code == 1
    document = json.loads(report.read_text())
    text = out.read_text()
    assert page.render(document).split("<footer>")[0] == text.split("<footer>")[0]
    markup = assert_inert(text)
    marked = [a for t, a in markup.tags if t == "tr" and a.get("class") == "mark"]
    assert marked and f">{at + 1}</td>" in text  # the inserted raise, marked at its line
    assert "raise ValueError('<img src=x onerror=alert(1)>')" in "".join(markup.text)


def test_grade_html_of_a_notebook_shows_the_cell_and_its_line(tmp_path: Path) -> None:
    """A notebook submission's page shows the student's own lines, numbered within the code cell the
    failure names ("code cell 3, line N"), not the notebook's JSON."""
    import nbformat

    lines = (SUBMISSIONS / "correct.py").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("return") and i > next(
        j for j, l in enumerate(lines) if l.startswith("def attention_scores")))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at, f"{indent}raise ValueError('<b>cell</b>')")
    cells = [nbformat.v4.new_markdown_cell("# My attention"), nbformat.v4.new_code_cell("%matplotlib inline"),
             nbformat.v4.new_code_cell("x = 1\ny = 2"), nbformat.v4.new_code_cell("\n".join(lines))]
    submission = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(submission))
    config = tmp_path / "autograder.toml"
    config.write_text(FAST_CONFIG)
    report, out = tmp_path / "report.json", tmp_path / "report.html"
    assert cli.main(["grade", str(submission), "--json", str(report), "--html", str(out), "--config", str(config)]) == 1
    assert any(f"at code cell 3, line {at + 1} (" in c["message"] for c in json.loads(report.read_text())["checks"])
    text = out.read_text()
    markup = assert_inert(text)
    shown = "".join(markup.text)
    assert "your code, code cell 3 (its lines):" in shown and "Your source lines are not shown" not in shown
    assert "raise ValueError('<b>cell</b>')" in shown and '"cell_type"' not in shown  # its Python, not JSON
    marked = text.index('<tr class=mark><td class="ln">')
    assert text[marked:].startswith(f'<tr class=mark><td class="ln">{at + 1}</td>')


def test_excerpt_of_a_notebook_stays_in_the_cell_it_names() -> None:
    from autograder.runtime import notebook

    module = notebook.assemble(["import torch", "def attention_scores(Q, K):\n    s = Q @ K\n    return s / 0",
                                "z = 3"], notebook=True)
    at = source.excerpt(module, "ZeroDivisionError at code cell 2, line 3 (return s / 0)")
    assert (at.cell, at.mark, at.numbered()) == (2, 3, [(1, "def attention_scores(Q, K):"), (2, "    s = Q @ K"),
                                                        (3, "    return s / 0")])
    whole = source.excerpt(module, "attention_scores: scores differ")
    assert (whole.cell, whole.first, whole.mark, len(whole.lines)) == (2, 1, None, 3)
    assert source.excerpt(module, "at line 3 (a module line is not how a notebook's lines are named)") is None
    assert source.excerpt(module, "at code cell 3, line 2 (out of the cell)") is None


def test_page_of_a_real_model_section(gpt2_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """A grade with the model section (seeded distilgpt2-shaped GPT-2): the continuation under both
    attentions as the report has it, and every head's heatmap embedded and decoded."""
    config = tmp_path / "autograder.toml"
    config.write_text("[hypothesis]\nmax_examples = 5\n")
    out = tmp_path / "model_page.html"
    from autograder.grade import grade

    document = grade(SUBMISSIONS / "buggy_no_scaling.py", tmp_path / "report.json", model=str(gpt2_dir),
                     config_file=config, echo=False, html=out)
    model = document["metrics"]["model"]
    markup = assert_inert(out.read_text())
    shown = "".join(markup.text)
    assert model["prompts"][0] + model["continuation"]["student"] in shown
    assert model["prompts"][0] + model["continuation"]["reference"] in shown
    images = [a for t, a in markup.tags if t == "img"]
    assert len(images) == len(document["artifacts"]) == model["heads"]
    assert sum(t == "details" for t, _ in markup.tags) == 1  # heads after the first two, one click away
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    seen = probed(out, tmp_path / "probe.html", keep_csp=True)
    assert [int(w) for w in seen["widths"].split(",")] == [int(w) for w in seen["widths"].split(",") if int(w) > 0]
    assert len(seen["widths"].split(",")) == model["heads"]
    png = screenshot(out, tmp_path / "model_page.png", height=3600)
    assert colour_pixels(png, VIRIDIS_YELLOW, 20) > 100


# -- the batch ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch_site(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, batch.Result]:
    root = tmp_path_factory.mktemp("html-batch")
    folder = root / "submissions"
    folder.mkdir()
    for name in ("correct.py", "buggy_mask_ignored.py"):
        shutil.copy(SUBMISSIONS / name, folder / name)
    shutil.copy(SUBMISSIONS / "template.py", folder / "<img src=x onerror=window.__pwned=1>.py")
    config = root / "autograder.toml"
    config.write_text(fast_config(max_examples=5))
    result = batch.run_batch([str(folder)], root / "out", jobs=2, config_file=config, progress=False, html=True)
    return root / "out", result


def test_batch_html_has_a_page_per_submission_and_an_index(batch_site: Tuple[Path, batch.Result]) -> None:
    out, result = batch_site
    index = (out / "html" / "index.html").read_text()
    markup = assert_inert(index, scripts=(html_batch.SORTER,))
    links = [a["href"] for t, a in markup.tags if t == "a"]
    assert len(links) == result.summary["count"] == 3
    for link in links:  # each link opens that submission's page, which is its report's view
        name = unquote(link)[: -len(".html")]
        document = json.loads((out / f"{name}.json").read_text())
        written = (out / "html" / unquote(link)).read_text()
        assert written.split("<footer>")[0] == page.render(document).split("<footer>")[0]
    shown = "".join(markup.text)
    assert inputs.safe_name("<img src=x onerror=window.__pwned=1>") in shown  # its report name: no markup left
    rows = [a for t, a in markup.tags if t == "tr" and a.get("class") in ("ok", "bad", "part")]
    assert len(rows) == 3 + len(result.summary["pass_rates"])
    assert any(t == "svg" for t, _ in markup.tags) and sum(t == "rect" for t, _ in markup.tags) == 10
    for cid, rate in result.summary["pass_rates"].items():
        assert f"{rate * 100:.0f}%" in shown and cid in shown


@needs_chromium
def test_batch_index_in_chromium(batch_site: Tuple[Path, batch.Result], tmp_path: Path) -> None:
    """The sorter runs under the page's CSP (by hash) and sorts by score; nothing else runs."""
    out, _ = batch_site
    index = out / "html" / "index.html"
    seen = probed(index, tmp_path / "probe.html", keep_csp=True, click_header="score")
    scores = {n: json.loads((out / f"{n}.json").read_text())["score"]
              for n in ("correct", "buggy_mask_ignored", inputs.safe_name("<img src=x onerror=window.__pwned=1>"))}
    order = seen["order"].replace("&lt;", "<").replace("&gt;", ">").split("|")
    assert order == sorted(scores, key=scores.get)  # ascending after one click
    assert seen["pwned"] == "undefined"
    assert probed(index, tmp_path / "bare.html", keep_csp=False)["pwned"] == "undefined"
    png = screenshot(index, tmp_path / "batch_index.png", height=1400)
    assert colour_pixels(png, (0x09, 0x69, 0xDA)) > 500  # the histogram's bars
    assert colour_pixels(png, GREEN) > 200
    page_png = screenshot(out / "html" / "buggy_mask_ignored.html", tmp_path / "batch_student_page.png")
    assert colour_pixels(page_png, RED) > 200
