"""The diagnosis on realistic buggy code: student_submissions/realistic/, graded in one batch run.

Each file is named `<expected mistake>__<style>.py`: buggy code written the way students write it (loops,
einsum, torch.nn.functional, NumPy habits, helpers, comments, their own variable names), none of them the
catalogue's own examples. Graded with the tests' fast config (model section off) through `autograder
batch`, each file must lose points with its mistake named by some failing check; an error must come with
a reproducer that, run against the file, raises the same exception; no failing check gets a generic hint
where the worked example runs; and the naming rate over the corpus must be at least 80%.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch

from autograder.assignments.attention.contract import ASSIGNMENT
from autograder.batch.runner import run_batch
from autograder.diagnosis.errors import snippet_lines
from autograder.feedback import GENERIC_HINTS
from autograder.runtime.submission import Submission, SubmissionError
from tests.grading_helpers import SUBMISSIONS, fast_config

pytestmark = pytest.mark.slow
CORPUS = sorted((SUBMISSIONS / "realistic").glob("*.py"))
RAISING = ("raises_", "wrong_module")  # ids of mistakes explained from an error
WRONG_SHAPE = "wrong_shape_for_"  # ids of wrong shapes explained by the input kind that shows them


def expected_mistake(path: Path) -> str:
    return path.stem.split("__")[0]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, Any]]:
    """Every corpus file's report, by file stem, from one batch run (fork-server workers, two at a time)."""
    out = tmp_path_factory.mktemp("realistic")
    config = out / "autograder.toml"
    config.write_text(fast_config())
    run_batch([str(path) for path in CORPUS], out / "reports", jobs=2, config_file=config, progress=False)
    return {path.stem: json.loads((out / "reports" / f"{path.stem}.json").read_text()) for path in CORPUS}


def failing(document: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [c for c in document["checks"] if c["status"] != "passed"]


def example_passes(path: Path) -> Dict[str, bool]:
    """Per section, whether the file's op runs on the worked example (our own files: in-process)."""
    runs = {}
    with Submission(path, sandbox=False, contract=ASSIGNMENT.wire()) as submission:
        for section in ASSIGNMENT.graded_sections:
            try:
                submission.call(ASSIGNMENT.op(section), *ASSIGNMENT.worked_example(section))
                runs[section] = True
            except SubmissionError:
                runs[section] = False
    return runs


def reproduced(path: Path, hint: str) -> Any:
    """Run the hint's three-line reproducer with the file's functions: the type name of what it raises, or
    the value of its last line."""
    lines = snippet_lines(hint)
    assert len(lines) == 3 and lines[0] == "import torch", hint
    namespace: Dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own corpus file
    try:
        exec("\n".join(lines[:2]), namespace)  # noqa: S102
        return eval(lines[2], namespace)  # noqa: S307
    except Exception as exc:  # noqa: BLE001 - the error is the point
        return type(exc).__name__


def test_the_corpus_covers_every_kind_of_mistake() -> None:
    kinds = {expected_mistake(p) for p in CORPUS}
    assert len(CORPUS) >= 40 and len(kinds) >= 30
    for needed in ("wrong_scale", "mask_fill_too_small", "mask_fill_no_effect", "mask_after_softmax",
                   "float32_detour", "scale_after_softmax", "raises_for_dims_2d_4d", "raises_for_mask_none",
                   "raises_for_mask_batched", "raises_for_seq_cross", "wrong_module"):
        assert sum(expected_mistake(p) == needed for p in CORPUS) >= 1, needed
    catalogue_examples = {p.read_text() for p in SUBMISSIONS.glob("buggy_*.py")}
    assert not catalogue_examples & {p.read_text() for p in CORPUS}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_each_realistic_mistake_is_named(reports: Dict[str, Dict[str, Any]], path: Path) -> None:
    expected = expected_mistake(path)
    lost = failing(reports[path.stem])
    assert lost, f"{path.name} earned full marks"
    named = [c for c in lost if c["mistake"] == expected]
    assert named, f"{path.name}: named {sorted({str(c['mistake']) for c in lost})}"
    if expected.startswith(RAISING):
        for check in named:  # the hint names the error of the smallest failing input, its reproducer raises it
            shown = re.search(r"\((\w+)(?: at `.*`)?\)[:.]", check["hint"])
            error = "AttributeError" if expected == "wrong_module" else shown and shown.group(1)
            assert error and reproduced(path, check["hint"]) == error, check["hint"]
    if expected.startswith(WRONG_SHAPE):
        for check in named:  # the reproducer's last line gives the shape(s) the hint says
            shape = re.search(r"\(it returns (\[[\d, ]*\]|\(\[[\d, \[\]]*\]\)) for", check["hint"])
            got = reproduced(path, check["hint"])
            shown = str(list(got)) if isinstance(got, torch.Size) else f"({', '.join(str(list(s)) for s in got)})"
            assert shape and shown == shape.group(1), check["hint"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_no_generic_hint_where_the_example_runs(reports: Dict[str, Dict[str, Any]], path: Path) -> None:
    runs = example_passes(path)
    for check in failing(reports[path.stem]):
        if runs.get(check["section"], False):
            assert check["hint"] not in GENERIC_HINTS, (check["id"], check["hint"])
            if check["status"] == "error":
                assert check["mistake"], (check["id"], check["message"])


def test_the_naming_rate_is_at_least_80_percent(reports: Dict[str, Dict[str, Any]]) -> None:
    named = [p for p in CORPUS if any(c["mistake"] == expected_mistake(p) for c in failing(reports[p.stem]))]
    rate = len(named) / len(CORPUS)
    print(f"named {len(named)} of {len(CORPUS)} realistic mistakes ({rate:.0%})")
    assert rate >= 0.8
