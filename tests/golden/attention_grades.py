"""Golden grades of the `attention` assignment: what every example submission scores, check by check.

First recorded before the assignment moved into autograder/assignments/attention/ (the move changed
nothing); regenerated since where a change meant to change grades or hints (see git log of the JSON).

    PYTHONPATH=$PWD GOLDEN_MODEL_DIR=DIR python -m tests.golden.attention_grades   # regenerate the JSON

(DIR: a seeded distilgpt2-shaped model saved by tests.model_fixtures.save_seeded_gpt2; without it the
model entries are left out.)

Grades every `student_submissions/*.py` in one `autograder batch` run per config: the project's fast test
config, the packaged defaults with the model section off, and, for a few files (MODEL_FILES), the packaged
defaults with the model section on the seeded distilgpt2-shaped model of tests/model_fixtures.py (where
../shared/data has the GPT-2 tokenizer). The JSON keeps, per
file, each check's id, status, score, max_score, mistake and hint, and the total score and status;
tests/test_assignment_golden.py regrades the same files and asserts the same.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Sequence

from tests.grading_helpers import FAST_CONFIG, REPO, SUBMISSIONS

GOLDEN = Path(__file__).with_name("attention_grades.json")
CONFIGS = {"fast": FAST_CONFIG, "default_no_model": "[model]\nenabled = false\n"}
CHECK_KEYS = ("id", "status", "score", "max_score", "mistake", "hint")
MODEL_FILES = ("correct.py", "correct_sections_only.py", "buggy_no_scaling.py", "buggy_mask_ignored.py",
               "buggy_detached_output.py", "buggy_transposed_weight_matrix.py")


def summarize(document: Dict[str, Any]) -> Dict[str, Any]:
    """The parts of a report that must not change when the assignment moves: checks, score, status."""
    return {"score": document["score"], "max_score": document["max_score"], "status": document["status"],
            "checks": [{k: c[k] for k in CHECK_KEYS} for c in document["checks"]]}


def grade_all(files: Sequence[Path], config_text: str, extra: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
    """Grade `files` in one batch under `config_text`; summaries by file name."""
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        config = Path(tmp) / "autograder.toml"
        config.write_text(config_text)
        out = Path(tmp) / "out"
        env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
        subprocess.run([sys.executable, "-m", "autograder", "batch", *map(str, files), "--out", str(out),
                        "--config", str(config), "--jobs", "2", *extra],
                       check=True, env=env, cwd=tmp, capture_output=True, timeout=1800)
        return {f.name: summarize(json.loads((out / f"{f.stem}.json").read_text())) for f in files}


def grade_with_model(model_dir: Path) -> Dict[str, Dict[str, Any]]:
    """MODEL_FILES under the packaged defaults, model section on `model_dir` (heatmaps off: faster)."""
    return grade_all([SUBMISSIONS / name for name in MODEL_FILES], "[model]\nheatmaps = false\n",
                     ["--model", str(model_dir)])


def main() -> None:
    files = sorted(SUBMISSIONS.glob("*.py"))
    golden = {name: grade_all(files, text) for name, text in CONFIGS.items()}
    model_dir = os.environ.get("GOLDEN_MODEL_DIR")  # a folder written by tests.model_fixtures.save_seeded_gpt2
    if model_dir:
        golden["model"] = grade_with_model(Path(model_dir))
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {len(files)} files x {len(golden)} configs")


if __name__ == "__main__":
    main()
