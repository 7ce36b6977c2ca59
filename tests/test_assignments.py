"""The assignment registry, inference, per-assignment config and the worker's compositions (fast, in-process)."""
from __future__ import annotations


import pytest

from autograder.assignments import Assignment, AssignmentError, Function, defined_names, get, infer, installed
from autograder.assignments.attention.contract import ASSIGNMENT as ATTENTION
from autograder.cli import main
from autograder.config import ConfigError, load_config
from autograder.runtime.worker import compose
from tests.grading_helpers import SUBMISSIONS


def spec(name: str, *functions: str, optional: tuple = ()) -> Assignment:
    """A made-up assignment with these functions (for inference only: nothing is imported from it)."""
    return Assignment(name=name, title=name, package="nowhere", reference="nowhere",
                      functions=tuple(Function(f, f"{f}()", ("out",), f, optional=f in optional)
                                      for f in functions + optional),
                      sections=functions + optional)


MULTIHEAD = spec("multihead", "split_heads", "merge_heads", "causal_mask", "multi_head_attention")
BLOCK = spec("block", "layer_norm", "gelu", "feed_forward", "transformer_block")
GPT = spec("tinygpt", "gpt_forward", "embed", optional=("split_heads", "layer_norm"))
COURSE = {a.name: a for a in (ATTENTION, MULTIHEAD, BLOCK, GPT)}


def test_attention_is_built_in_and_found_by_name():
    assert installed()["attention"] is ATTENTION and get("attention") is ATTENTION
    with pytest.raises(AssignmentError, match="no assignment 'nope'; installed: attention"):
        get("nope")


def test_defined_names_reads_the_source_without_running_it(tmp_path):
    path = tmp_path / "s.py"
    path.write_text("import torch as t\nfrom x import gelu\nraise SystemExit\ndef layer_norm(): pass\nfeed_forward = 1\n")
    assert defined_names(path) == {"t", "gelu", "layer_norm", "feed_forward"}
    path.write_text("def broken(:\n")
    assert defined_names(path) == set()


@pytest.mark.parametrize("name", ["correct.py", "correct_sections_only.py", "template.py", "buggy_no_scaling.py"])
def test_every_attention_example_is_inferred_as_attention(name):
    assert infer(defined_names(SUBMISSIONS / name), available=COURSE) is ATTENTION


def test_inference_prefers_the_complete_and_most_specific_assignment():
    assert infer({"split_heads", "merge_heads", "causal_mask", "multi_head_attention"}, available=COURSE) is MULTIHEAD
    # a tinygpt file that also defines multihead's and block's functions: all of tinygpt's are there
    everything = {"gpt_forward", "embed", "split_heads", "layer_norm", "merge_heads", "gelu"}
    assert infer(everything, available=COURSE) is GPT
    # incomplete files: the assignment sharing most functions
    assert infer({"layer_norm", "gelu"}, available=COURSE) is BLOCK


def test_ambiguity_falls_back_on_the_course_config_else_names_the_candidates():
    assert infer({"helper"}, configured="block", available=COURSE) is BLOCK
    # split_heads alone: multihead and tinygpt tie
    assert infer({"split_heads"}, configured="tinygpt", available=COURSE) is GPT
    with pytest.raises(AssignmentError, match=r"candidates: multihead, tinygpt\)"):
        infer({"split_heads"}, available=COURSE)
    with pytest.raises(AssignmentError, match=r"candidates: attention, block, multihead, tinygpt\); give --assignment"):
        infer(set(), available=COURSE)
    with pytest.raises(AssignmentError, match="names assignment 'nope', which is not installed"):
        infer(set(), configured="nope", available=COURSE)


def test_course_config_tables_apply_to_their_assignment_only(tmp_path):
    (tmp_path / "autograder.toml").write_text(
        '[points]\n"scores.values" = 7\n[timeouts]\ncall_s = 4\n'
        '[assignments.attention.points]\n"scores.values" = 9\n[assignments.other.timeouts]\ncall_s = 1\n')
    config = load_config(tmp_path / "autograder.toml", assignment="attention")
    assert config.points("scores.values") == 9 and config.points("softmax.values") == 3
    assert config.timeout("call_s") == 4 and config.data["assignment"] == "attention"
    assert config.data["sandbox"]["banned"] == ["torch.nn.functional.scaled_dot_product_attention",
                                                "torch.nn.MultiheadAttention"]
    assert "assignments" not in config.data


def test_the_course_config_chooses_the_assignment_and_its_typos_are_errors(tmp_path):
    (tmp_path / "autograder.toml").write_text('assignment = "attention"\n')
    assert load_config(tmp_path / "autograder.toml").points("model.logits") == 6
    (tmp_path / "autograder.toml").write_text('[assignments.attention]\npoints_typo = 1\n')
    with pytest.raises(ConfigError, match=r"assignments\.attention\.points_typo"):
        load_config(tmp_path / "autograder.toml")


def test_the_worker_composes_an_op_from_plain_data():
    wire = ATTENTION.wire()["compositions"]["attention"]
    calls = []

    def part(name):
        return lambda *args: calls.append(name) or (name, args)

    composed = compose(wire, {n: part(n) for n in ("attention_scores", "attention_weights", "aggregate_values")})
    attended, weights = composed("Q", "K", "V")  # mask left out: None
    assert calls == ["attention_scores", "attention_weights", "aggregate_values"]
    assert weights == ("attention_weights", (("attention_scores", ("Q", "K")), None))
    assert attended == ("aggregate_values", (weights, "V"))
    with pytest.raises(TypeError, match="expected 3 to 4 arguments"):
        composed("Q")


def test_assignments_command_lists_functions_and_points(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["assignments"]) == 0
    out = capsys.readouterr().out
    assert "attention: Scaled dot-product attention (single head)" in out
    assert "[scaled_dot_product_attention]" in out and "points: 100 (projections 10, scores 15" in out


def test_grade_with_an_unknown_assignment_is_a_usage_error(capsys):
    assert main(["grade", str(SUBMISSIONS / "correct.py"), "--assignment", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "autograder: no assignment 'nope'; installed: attention, block, embeddings, multihead, tinygpt, tokenization"
