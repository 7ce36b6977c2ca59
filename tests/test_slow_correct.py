"""Slow but correct code gets every point its answers earn: a check that runs past its time limit is
reported as a time limit, and nothing that check left behind (a worker still computing the interrupted
call, its late reply) is held against the next check."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.plugin import _timed_out
from tests.grading_helpers import CORRECT, by_id, grade_quick, variant

DELAY_S = 0.3
CHECK_S = 5  # a property check (20 examples, most with two calls) cannot finish; any other check can

SLOW = CORRECT.read_text() + f'''

import functools as _functools
import time as _time


_depth = [0]


def _slow(fn):
    """Each call from the grader takes DELAY_S longer (calls between the student's own functions do not)."""
    @_functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _depth[0]:
            _time.sleep({DELAY_S})
        _depth[0] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _depth[0] -= 1
    return wrapper


for _name in ("linear_projections", "attention_scores", "attention_weights", "aggregate_values",
              "scaled_dot_product_attention"):
    globals()[_name] = _slow(globals()[_name])
'''

PROPERTIES = {"projections.any_shapes", "scores.any_shapes", "softmax.rows_sum_to_one", "softmax.masked_exact_zero",
              "softmax.shift_invariance", "values.convex_combination", "attention.any_shapes",
              "attention.permutation_equivariance"}


@pytest.fixture(scope="module", params=[True, False], ids=["sandbox", "in-process"])
def slow_report(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    out = tmp_path_factory.mktemp("slow")
    (out / "autograder.toml").write_text(
        f"[hypothesis]\nmax_examples = 20\nshrink = false\n[timeouts]\ncall_s = 3\nimport_s = 20\n"
        f"check_s = {CHECK_S}\n[model]\nenabled = false\n")
    return grade_quick(variant(out, "slow_correct.py", SLOW), out, sandbox=request.param)


def test_every_check_passes_or_says_time_limit(slow_report) -> None:
    checks = by_id(slow_report)
    for cid, check in checks.items():
        if check["status"] != "passed":
            assert "time limit" in check["message"], (cid, check["message"])
            assert cid in PROPERTIES, (cid, check["message"])  # only checks with many calls run out of time
    assert any(c["status"] != "passed" for c in checks.values()), "no check timed out: the test proves nothing"


def test_every_answer_earns_its_points(slow_report) -> None:
    """All points except those of the checks that ran out of time."""
    timed_out = sum(c["max_score"] for c in slow_report["checks"] if c["status"] != "passed")
    assert slow_report["score"] == slow_report["max_score"] - timed_out
    for check in slow_report["checks"]:
        assert "ended the Python process" not in check["message"]
        assert "differently" not in check["message"]


def test_a_time_limit_that_hypothesis_replayed_is_still_a_time_limit() -> None:
    """pytest-timeout's Failed caught by hypothesis, the example replayed and passing: a Flaky failure that
    wraps the time limit, reported as the time limit (not as an answer given differently)."""
    calls = []

    @settings(derandomize=True, database=None, max_examples=3)
    @given(st.integers())
    def check(x: int) -> None:
        calls.append(x)
        if len(calls) == 1:
            pytest.fail("Timeout >5.0s")

    with pytest.raises(BaseException) as raised:
        check()
    assert type(raised.value).__name__ == "FlakyFailure" and _timed_out(raised.value)
